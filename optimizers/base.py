"""The network optimizer protocol (book chapter 6): ``optimizer.step(params, grads)``.

``step`` updates every parameter array IN PLACE (in-place operators on the
array's own module, NumPy or CuPy), so a layer's attributes (``Dense.W``)
stay valid and nothing moves between devices.
"""

from __future__ import annotations

import backend
from backend.checks import (  # noqa: F401
    check_decay,
    check_nonnegative,
    check_positive,
    check_positive_or_none,
)

from .regularization import process_gradients


def check_learning_rate(value, name: str = "learning_rate") -> float:
    """Return ``value`` as float after checking it is a finite real number > 0."""
    return check_positive(value, name)


class Optimizer:
    """Base class of the network optimizers.

    Parameters
    ----------
    learning_rate : float > 0
        ε in the book's equations (6.1, 6.8-6.11, 6.13, 6.14).
    l1, l2 : float >= 0
        Weight penalties added to the gradient before the update:
        g <- g + l1 sign(θ) + 2 l2 θ (the gradient of l1 Σ|θ| + l2 Σθ²), applied
        to the parameters ``step``'s ``weight_mask`` marks (``fit`` passes the
        model's mask: weights, not biases or normalization scales), or to every
        parameter passed to :meth:`step` when no mask is given.
    clipnorm : float > 0 or None
        Rescale all gradients together when their *global* norm exceeds it.
    clipvalue : float > 0 or None
        Clip every gradient element to [-clipvalue, clipvalue].

    Notes
    -----
    Penalties, then clipnorm, then clipvalue are applied (see
    :mod:`optimizers.regularization`); the caller's gradient arrays are never
    modified.

    State
    -----
    Per-parameter state (velocities, moment estimates) is kept in
    ``self.state[i]``, a dict keyed by the parameter's *position* ``i`` in the
    ``params`` list; so always pass the parameters in the same order (as
    ``Sequential.params`` does). ``self.iterations`` counts the calls to
    :meth:`step` (the t of Adam's bias correction). :meth:`reset` forgets all state.
    """

    def __init__(self, learning_rate: float = 0.01, *, l1: float = 0.0, l2: float = 0.0,
                 clipnorm=None, clipvalue=None):
        self.learning_rate = check_learning_rate(learning_rate)
        self.l1 = check_nonnegative(l1, "l1")
        self.l2 = check_nonnegative(l2, "l2")
        self.clipnorm = check_positive_or_none(clipnorm, "clipnorm")
        self.clipvalue = check_positive_or_none(clipvalue, "clipvalue")
        self.state = {}
        self.iterations = 0

    def reset(self):
        """Forget every per-parameter state and set ``iterations`` to 0; returns self."""
        self.state = {}
        self.iterations = 0
        return self

    # -- subclass hook --------------------------------------------------------
    def _update(self, param, grad, state: dict, xp) -> None:
        """Update ``param`` in place from ``grad``; ``state`` is this parameter's dict."""
        raise NotImplementedError(f"{type(self).__name__}._update is not implemented")

    # -- the protocol ---------------------------------------------------------
    def step(self, params, grads, weight_mask=None) -> None:
        """Apply one update to every parameter, in place.

        Parameters
        ----------
        params : list of float arrays
            The arrays to update (NumPy or CuPy); same order on every call.
        grads : list of arrays or None
            dE/dθ aligned with ``params`` (same shapes). A ``None`` entry skips
            that parameter (frozen).
        weight_mask : list of bool, optional
            Which parameters ``l1``/``l2`` penalise (default: all).

        Raises
        ------
        ValueError
            Lists of different lengths, a gradient whose shape differs from its
            parameter, or a parameter whose shape changed since the state was created.
        TypeError
            A non-float parameter, or NumPy and CuPy arrays mixed in one pair.
        """
        params, grads = list(params), list(grads)
        name = type(self).__name__
        if len(params) != len(grads):
            raise ValueError(f"{name}.step: expected one gradient per parameter, got {len(params)} params "
                             f"and {len(grads)} grads")
        for i, (p, g) in enumerate(zip(params, grads)):
            if not hasattr(p, "dtype") or p.dtype.kind != "f":
                what = f"dtype {p.dtype}" if hasattr(p, "dtype") else type(p).__name__
                raise TypeError(f"{name}.step: params[{i}]: expected a float NumPy/CuPy array, got {what}")
            if g is None:
                continue
            if tuple(g.shape) != tuple(p.shape):
                raise ValueError(f"{name}.step: grads[{i}]: expected the shape of params[{i}] {tuple(p.shape)}, "
                                 f"got shape {tuple(g.shape)}")
            backend.get_array_module(p, g)  # mixed-device TypeError
        if weight_mask is not None and len(weight_mask) != len(params):
            raise ValueError(f"{name}.step: weight_mask: expected one flag per parameter ({len(params)}), "
                             f"got {len(weight_mask)}")
        grads = process_gradients(params, grads, l1=self.l1, l2=self.l2, clipnorm=self.clipnorm,
                                  clipvalue=self.clipvalue, weight_mask=weight_mask)
        self.iterations += 1
        for i, (p, g) in enumerate(zip(params, grads)):
            if g is None:
                continue
            state = self.state.setdefault(i, {})
            shape = state.setdefault("shape", tuple(p.shape))
            if shape != tuple(p.shape):
                raise ValueError(
                    f"{name}.step: params[{i}]: the optimizer's state was created for shape {shape}, got shape "
                    f"{tuple(p.shape)}; call optimizer.reset() before training a different model"
                )
            self._update(p, g, state, backend.get_array_module(p))

    def _zeros(self, state: dict, key: str, param, xp):
        """The state array ``state[key]`` (zeros like ``param`` on first use)."""
        if key not in state:
            state[key] = xp.zeros_like(param)
        return state[key]

    def get_config(self) -> dict:
        """Constructor arguments (hyper-parameters), for saving and ``repr``."""
        config = {k: v for k, v in vars(self).items() if k not in ("state", "iterations") and not k.startswith("_")}
        return config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"
