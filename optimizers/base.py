"""The network optimizer protocol (book chapter 6): ``optimizer.step(params, grads)``.

``step`` updates every parameter array IN PLACE, so a layer's attributes
(``Dense.W``) stay valid and nothing moves between devices. It checks every
argument and the state before it changes anything, so a step that raises
leaves the parameters, the state and ``iterations`` as they were. The rules
of chapter 6 run as fused kernels (:mod:`optimizers.fused`: one pass per
parameter, or per flat buffer, see :mod:`optimizers.runs`); a subclass may
instead implement the per-array hook ``_update`` (as :class:`~optimizers.newton.Newton` does).
"""

from __future__ import annotations

import warnings

import numpy as np

import backend
from backend.checks import (  # noqa: F401
    check_choice,
    check_decay,
    check_nonnegative,
    check_positive,
    check_positive_or_none,
)

from . import fused
from .regularization import process_gradients
from .runs import Plan, plan_runs
from .schedules import LearningRateSchedule

#: What ``step`` does when a parameter or its state becomes non-finite.
NONFINITE_ACTIONS = ("warn", "raise", "ignore")


class NonFiniteWarning(UserWarning):
    """A parameter or its optimizer state holds inf or NaN after a step (see ``on_nonfinite``).

    A UserWarning, not a RuntimeWarning: it is the library's own report (shown
    by default), not NumPy's floating-point warning that test suites turn into errors.
    """


def check_learning_rate(value, name: str = "learning_rate") -> float:
    """Return ``value`` as float after checking it is a finite real number > 0."""
    return check_positive(value, name)


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype")


class Optimizer:
    """Base class of the network optimizers.

    Parameters
    ----------
    learning_rate : float > 0, or a schedule
        ε in the book's equations (6.1, 6.8-6.11, 6.13, 6.14). A
        :class:`~optimizers.schedules.LearningRateSchedule` (or any callable
        ``step -> rate``) gives the rate of each update from the number of
        updates already made.
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
    on_nonfinite : {"warn", "raise", "ignore"}
        What to do when a step leaves inf or NaN in a parameter or its state
        (a gradient of inf or NaN, or an update too large for the dtype):
        ``"warn"`` (default) issues a :class:`NonFiniteWarning` naming the
        parameter (``params[i]``, its shape and dtype, which arrays) and the
        step, once per parameter; ``"raise"`` raises ``FloatingPointError``
        (the step has been applied); ``"ignore"`` trains on silently.

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
    :meth:`step` (the t of Adam's bias correction); ``self.last_learning_rate``
    is the rate of the latest update (None before the first). :meth:`reset`
    forgets all state. State arrays follow their parameter when it moves
    (``model.to``, ``astype``), and are views of one buffer per slot when the
    parameters are (:func:`optimizers.flatten_parameters`).
    """

    #: name of the kernel in :mod:`optimizers.fused` (None: the per-array ``_update`` hook)
    _kernel: str | None = None
    #: names of the state arrays the kernel updates, in its argument order
    _slots: tuple[str, ...] = ()

    def __init__(self, learning_rate=0.01, *, l1: float = 0.0, l2: float = 0.0,
                 clipnorm=None, clipvalue=None, on_nonfinite: str = "warn"):
        self.learning_rate = learning_rate
        self.l1 = check_nonnegative(l1, "l1")
        self.l2 = check_nonnegative(l2, "l2")
        self.clipnorm = check_positive_or_none(clipnorm, "clipnorm")
        self.clipvalue = check_positive_or_none(clipvalue, "clipvalue")
        self.on_nonfinite = check_choice(on_nonfinite, "on_nonfinite", NONFINITE_ACTIONS)
        self.state: dict = {}
        self.iterations = 0
        self.last_learning_rate: float | None = None
        self._plan: Plan | None = None
        self._reported: set = set()

    # -- the learning rate ------------------------------------------------------
    @property
    def learning_rate(self) -> float:
        """The rate of the next update: the constant, or ``schedule(iterations)``."""
        if self.schedule is not None:
            return self._scheduled_rate(self.iterations)
        return self._learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        if isinstance(value, LearningRateSchedule) or callable(value):
            self.schedule, self._learning_rate = value, None
        else:
            self.schedule, self._learning_rate = None, check_learning_rate(value)

    def _scheduled_rate(self, step) -> float:
        value = self.schedule(step)
        try:
            rate = float(value)
        except (TypeError, ValueError):
            rate = float("nan")
        if not (rate >= 0 and np.isfinite(rate)):
            raise ValueError(f"{type(self).__name__}: learning_rate: the schedule {self.schedule!r} gave {value!r} "
                             f"at step {step}; expected a finite number >= 0")
        return rate

    def reset(self):
        """Forget every per-parameter state and set ``iterations`` to 0; returns self."""
        self.state = {}
        self.iterations = 0
        self.last_learning_rate = None
        self._plan = None
        self._reported = set()
        return self

    # -- subclass hooks ---------------------------------------------------------
    def _update(self, param, grad, state: dict, xp) -> None:
        """Per-array rule: update ``param`` in place from ``grad`` (``state`` is its dict; the rate of this
        step is ``self.last_learning_rate``, t is ``self.iterations``)."""
        raise NotImplementedError(f"{type(self).__name__}._update is not implemented")

    def _coefficients(self, lr: float, t: int, decayed: bool) -> tuple:
        """Scalars of :attr:`_kernel` for step ``t`` (from 1) at rate ``lr`` (see :mod:`optimizers.fused.cpu`)."""
        raise NotImplementedError(f"{type(self).__name__}._coefficients is not implemented")

    def _decay_flags(self, params, weight_mask) -> list | None:
        """Per parameter: does a decoupled weight decay apply (AdamW)? None: no decay at all."""
        return None

    # -- the protocol -----------------------------------------------------------
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
            Which parameters ``l1``/``l2`` penalise (default: all) and, for
            :class:`~optimizers.adamw.AdamW`, which ones decay.

        Raises
        ------
        TypeError
            ``params`` or ``grads`` is a bare array instead of a list, a
            non-float parameter, or NumPy and CuPy arrays mixed in one pair.
        ValueError
            Lists of different lengths, a gradient whose shape differs from its
            parameter, a parameter whose shape changed since the state was
            created, or a schedule giving an invalid rate. Nothing has changed then.
        FloatingPointError
            With ``on_nonfinite="raise"``, after a step that left inf or NaN.
        """
        name = type(self).__name__
        params, grads = _check_lists(params, grads, name)
        weight_mask = _check_mask(weight_mask, len(params), name)
        stepped = [i for i, g in enumerate(grads) if g is not None]
        per_array = self._kernel is None or type(self)._update is not Optimizer._update
        plan: Plan | None = None
        key: tuple = ((), None)
        if not per_array:
            decayed = self._decay_flags(params, weight_mask)
            key = (tuple(stepped), None if decayed is None else tuple(decayed))
            if self._plan is not None and self._plan.matches(params, key):
                plan = self._plan            # the same arrays as last step: their state fits them
        if plan is None:
            self._check_state_shapes(params, stepped, name)
        t = self.iterations + 1
        lr = self._scheduled_rate(self.iterations) if self.schedule is not None else self._learning_rate
        if self.l1 or self.l2 or self.clipnorm is not None or self.clipvalue is not None:
            grads = process_gradients(params, grads, l1=self.l1, l2=self.l2, clipnorm=self.clipnorm,
                                      clipvalue=self.clipvalue, weight_mask=weight_mask)
        # -- every check passed: from here on, the step changes things --------------------------------
        if per_array:
            self.iterations, self.last_learning_rate = t, lr
            bad = self._step_arrays(params, grads, stepped)
        else:
            if plan is None:
                runs = plan_runs(params, stepped, list(key[1] or [False] * len(params)), self.state, self._slots)
                plan = self._plan = Plan(params, key, runs)
            self.iterations, self.last_learning_rate = t, lr
            bad = self._step_fused(plan, grads, lr, t)
        if bad:
            self._report_nonfinite(params, bad)

    def _check_state_shapes(self, params, stepped, name) -> None:
        for i in stepped:
            shape = self.state.get(i, {}).get("shape")
            if shape is not None and shape != tuple(params[i].shape):
                raise ValueError(
                    f"{name}.step: params[{i}]: the optimizer's state was created for shape {shape}, got shape "
                    f"{tuple(params[i].shape)}; call optimizer.reset() before training a different model"
                )

    def _step_arrays(self, params, grads, stepped) -> list:
        bad = []
        for i in stepped:
            p = params[i]
            state = self.state.setdefault(i, {})
            state.setdefault("shape", tuple(p.shape))
            xp = backend.get_array_module(p)
            self._update(p, grads[i], state, xp)
            if self.on_nonfinite != "ignore" and not bool(xp.isfinite(p).all()):
                bad.append(i)
        return bad

    def _step_fused(self, plan, grads, lr, t) -> list:
        scalars = {}
        plan.clear_flags()
        plan.gather(grads)
        kernel = self._kernel
        for run in plan.runs:
            param = run.param
            key = (run.decayed, param.dtype, type(param))
            values = scalars.get(key)
            if values is None:
                values = scalars[key] = fused.scalars(self._coefficients(lr, t, run.decayed), param)
            fused.update(kernel, param, run.gradient(grads), run.states, values, run.flag)
        return [] if self.on_nonfinite == "ignore" else plan.flagged()

    def _report_nonfinite(self, params, candidates) -> None:
        """Warn (or raise) about the parameters among ``candidates`` holding inf/NaN, each once."""
        found = {}
        for i in candidates:
            if i in self._reported:
                continue
            xp = backend.get_array_module(params[i])
            arrays = [("the parameter", params[i])] + [(f"state {k!r}", v) for k, v in self.state.get(i, {}).items()
                                                       if _is_array(v)]
            where = [label for label, a in arrays if not bool(xp.isfinite(a).all())]
            if where:
                found[i] = f"params[{i}] (shape {tuple(params[i].shape)}, {params[i].dtype}): {', '.join(where)}"
        if not found:
            return
        message = (f"{type(self).__name__}.step: step {self.iterations}: inf or NaN in " + "; ".join(found.values())
                   + ". Their updates are meaningless from now on (frozen or NaN): lower the learning rate, clip the "
                   "gradients (clipnorm=...), check the data and the loss, or call reset()")
        if self.on_nonfinite == "raise":
            raise FloatingPointError(message)
        self._reported.update(found)
        warnings.warn(message, NonFiniteWarning, stacklevel=3)

    def _zeros(self, state: dict, key: str, param, xp):
        """The state array ``state[key]`` (zeros like ``param`` on first use), for ``_update`` hooks."""
        if key not in state:
            state[key] = xp.zeros_like(param)
        return state[key]

    def get_config(self) -> dict:
        """Constructor arguments (hyper-parameters), for saving and ``repr``."""
        config = {"learning_rate": self.schedule if self.schedule is not None else self._learning_rate}
        hidden = ("state", "iterations", "last_learning_rate", "schedule")
        config.update({k: v for k, v in vars(self).items() if k not in hidden and not k.startswith("_")})
        return config

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


def _check_lists(params, grads, name):
    """``params`` and ``grads`` as lists after checking each entry (nothing is changed here)."""
    for arg, value in (("params", params), ("grads", grads)):
        if type(value) is not list and (_is_array(value) or isinstance(value, (str, bytes))
                                        or not hasattr(value, "__iter__")):
            shape = f" of shape {tuple(value.shape)}" if _is_array(value) else ""
            raise TypeError(f"{name}.step: {arg}: expected a list of arrays (e.g. [W, b] or model.params), got "
                            f"{type(value).__name__}{shape}; wrap a single array in a list: step([x], [g])")
    params, grads = list(params), list(grads)
    if len(params) != len(grads):
        raise ValueError(f"{name}.step: expected one gradient per parameter, got {len(params)} params "
                         f"and {len(grads)} grads")
    for i, (p, g) in enumerate(zip(params, grads)):
        if type(p) is not np.ndarray and not _is_array(p) or p.dtype.kind != "f":
            what = f"dtype {p.dtype}" if _is_array(p) else type(p).__name__
            raise TypeError(f"{name}.step: params[{i}]: expected a float NumPy/CuPy array, got {what}")
        if g is None:
            continue
        if type(g) is not type(p):
            if not _is_array(g):
                raise TypeError(f"{name}.step: grads[{i}]: expected an array or None, got {type(g).__name__}")
            backend.get_array_module(p, g)  # mixed-device TypeError
        if g.shape != p.shape:
            raise ValueError(f"{name}.step: grads[{i}]: expected the shape of params[{i}] {tuple(p.shape)}, "
                             f"got shape {tuple(g.shape)}")
    return params, grads


def _check_mask(weight_mask, n, name):
    if weight_mask is None:
        return None
    if _is_array(weight_mask) and weight_mask.ndim != 1:
        raise TypeError(f"{name}.step: weight_mask: expected a list of bools, got an array of shape "
                        f"{tuple(weight_mask.shape)}")
    mask = [bool(flag) for flag in weight_mask]
    if len(mask) != n:
        raise ValueError(f"{name}.step: weight_mask: expected one flag per parameter ({n}), got {len(mask)}")
    return mask
