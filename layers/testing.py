"""Gradient checking for your own layers (the book teaches backprop by hand, section 6.2).

``check_gradients(layer, x)`` compares ``layer.backward`` with central
differences in float64:

    dL/dθ_i ≈ (L(θ + ε e_i) - L(θ - ε e_i)) / (2ε),   L = Σ forward(x) ⊙ R

where ``R`` is a fixed random projection of the output, so one scalar
function exercises every output element. The error reported per tensor is the
worst absolute difference scaled by the tensor's gradient magnitude:

    error = max_i |analytic_i - numeric_i| / max(max_i |analytic_i|, max_i |numeric_i|, 1e-8)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np

import backend


@dataclass
class GradientReport:
    """Worst relative error per tensor: ``"input"``, ``"params[0]"``, ...

    ``report.ok(tol)`` is True when every error is below ``tol``;
    ``str(report)`` prints one line per tensor.
    """

    errors: dict = field(default_factory=dict)

    @property
    def max_error(self) -> float:
        """The largest relative error over every checked array (0.0 when nothing was checked)."""
        return max(self.errors.values()) if self.errors else 0.0

    def ok(self, tol: float = 1e-6) -> bool:
        """True when the largest relative error between analytic and numerical gradients is below ``tol``."""
        return self.max_error < tol

    def __str__(self) -> str:
        return "\n".join(f"{name:>12s}: {err:.3e}" for name, err in self.errors.items())


def _relative_error(analytic, numeric) -> float:
    a = backend.to_numpy(analytic).astype(np.float64).ravel()
    n = np.asarray(numeric, dtype=np.float64).ravel()
    if a.shape != n.shape:
        raise ValueError(f"gradient shape {a.shape} does not match the tensor's shape {n.shape}")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(n), initial=0.0), 1e-8)
    return float(np.max(np.abs(a - n), initial=0.0) / scale)


def _numeric_gradient(scalar_fn, array, eps):
    """Central differences of ``scalar_fn()`` w.r.t. every element of ``array`` (perturbed in place)."""
    grad = np.zeros(array.shape, dtype=np.float64)
    flat_index = np.ndindex(*array.shape)
    for idx in flat_index:
        original = float(array[idx])
        array[idx] = original + eps
        plus = scalar_fn()
        array[idx] = original - eps
        minus = scalar_fn()
        array[idx] = original
        grad[idx] = (plus - minus) / (2.0 * eps)
    return grad


def check_gradients(layer, x, *, eps: float = 1e-6, seed: int = 0, reset=None, forward_kwargs=None) -> GradientReport:
    """Check ``layer.backward`` (input and parameter gradients) against central differences.

    Parameters
    ----------
    layer : Layer
        Any object with ``forward``, ``backward`` and ``params``. It is deep-copied
        and cast to float64; the original is not modified.
    x : array, shape (batch, ...), or a tuple of arrays
        Input, NumPy or CuPy; float inputs are cast to float64. Sample it away
        from kinks (ReLU at 0) and ties (max pooling) for a meaningful check.
        A tuple is a multi-input layer's ``input_data`` (attention's
        ``(query, key, value)``): ``backward`` must return a tuple of gradients,
        reported as ``"input[i]"``. Integer inputs (ids) are passed unchanged
        and not differentiated.
    eps : float
        Finite-difference step.
    seed : int
        Seed of the random output projection ``R``.
    reset : callable(layer) or None
        Called before every forward pass; use it to re-seed stochastic layers
        (Dropout, RReLU, NoisyReLU) so every evaluation sees the same noise.
    forward_kwargs : dict, optional
        Extra keyword arguments of ``forward`` (an attention ``mask``).

    Returns
    -------
    GradientReport
        ``errors["input"]`` (``"input[i]"`` per array of a tuple) and ``errors["params[i]"]``
        for each parameter.
    """
    layer = copy.deepcopy(layer)
    if hasattr(layer, "astype"):
        layer.astype(np.float64)
    else:
        layer.params = [p.astype(np.float64) for p in layer.params]
    inputs = list(x) if isinstance(x, (tuple, list)) else [x]
    xp = backend.get_array_module(*inputs)
    inputs = [xp.array(a, dtype=np.float64, copy=True) if a.dtype.kind == "f" else a for a in inputs]
    data = tuple(inputs) if isinstance(x, (tuple, list)) else inputs[0]
    kwargs = dict(forward_kwargs or {})

    def run_forward(inp):
        if reset is not None:
            reset(layer)
        return layer.forward(inp, **kwargs)

    out = run_forward(data)
    projection = xp.asarray(np.random.default_rng(seed).standard_normal(tuple(out.shape)))

    def scalar():
        return float(xp.sum(run_forward(data) * projection))

    run_forward(data)
    grad_input, param_grads = layer.backward(projection)

    report = GradientReport()
    if grad_input is None:  # integer inputs only (ids): nothing to differentiate
        grads = [None] * len(inputs)
    else:
        grads = list(grad_input) if isinstance(x, (tuple, list)) else [grad_input]
    if len(grads) != len(inputs):
        raise AssertionError(f"{type(layer).__name__}.backward returned {len(grads)} input gradients for "
                             f"{len(inputs)} inputs")
    for i, (a, g) in enumerate(zip(inputs, grads)):
        if a.dtype.kind != "f":
            continue  # integer ids are not differentiable
        name = f"input[{i}]" if isinstance(x, (tuple, list)) else "input"
        if g is None:
            raise AssertionError(f"{type(layer).__name__}.backward returned no gradient for the float {name}")
        report.errors[name] = _relative_error(g, _numeric_gradient(scalar, a, eps))
    params = list(getattr(layer, "params", []))
    if params and param_grads is None:
        raise AssertionError(f"{type(layer).__name__}.backward returned param_grads=None but the layer has params")
    for i, p in enumerate(params):
        report.errors[f"params[{i}]"] = _relative_error(param_grads[i], _numeric_gradient(scalar, p, eps))
    return report


def check_loss_gradients(loss, y_pred, y_true, *, eps: float = 1e-6) -> GradientReport:
    """Check ``loss.backward()`` (dE/dy_pred) against central differences of ``loss.forward``.

    ``y_pred`` is cast to float64; ``y_true`` is passed as given (labels stay integers).
    Returns a :class:`GradientReport` with ``errors["y_pred"]``.
    """
    xp = backend.get_array_module(y_pred)
    y_pred = xp.array(y_pred, dtype=np.float64, copy=True)
    loss.forward(y_pred, y_true)
    analytic = loss.backward()

    def scalar():
        return float(loss.forward(y_pred, y_true))

    report = GradientReport()
    report.errors["y_pred"] = _relative_error(analytic, _numeric_gradient(scalar, y_pred, eps))
    return report
