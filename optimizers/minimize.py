"""Run any optimizer on a plain function, to compare paths on a 2-D landscape (slides 003)."""

from __future__ import annotations

import numbers

import numpy as np

import backend

from .base import Optimizer
from .gradient_descent import gradient_norm
from .newton import Newton


def minimize(function, gradient, x0, optimizer, epochs=100, tolerance=1e-6, *, hessian=None):
    """Minimise ``function`` from ``x0`` with ``optimizer``; return ``(x, path)``.

    Each epoch: g = gradient(x); stop if ‖g‖ < tolerance; else
    ``optimizer.step([x], [g])`` (x updated in place).

    Parameters
    ----------
    function : callable(x) -> float
        f. Not needed by the iteration itself (as in the book's
        ``GradientDescent``, which keeps it as ``self.f``); it is checked to be
        callable so a path can be plotted as f(path).
    gradient : callable(x) -> array
        ∇f(x), same shape as x (a number or list is accepted).
    x0 : float, array_like or NumPy/CuPy float array
        Starting point; copied (never modified). Python numbers and lists
        become float64 NumPy arrays; float arrays keep their dtype and device.
    optimizer : Optimizer or str
        An instance (it is :meth:`~optimizers.base.Optimizer.reset` first) or a
        name for :func:`optimizers.get_optimizer` with default hyper-parameters.
    epochs : int
        Maximum number of updates (default 100).
    tolerance : float
        Stop when the gradient's norm is below it (default 1e-6).
    hessian : callable(x) -> array (n, n), optional
        For :class:`~optimizers.newton.Newton`: used when the optimizer has no
        Hessian of its own.

    Returns
    -------
    x : array, shape of x0
        The last point.
    path : array, shape (steps + 1, n)
        x0 and every iterate, flattened to n = x0.size (steps = epochs unless
        the tolerance stopped the run earlier), on x's device.
    """
    from . import get_optimizer

    if not callable(function) or not callable(gradient):
        raise TypeError("minimize: function and gradient: expected callables")
    if isinstance(epochs, bool) or not isinstance(epochs, numbers.Integral) or epochs < 0:
        raise ValueError(f"minimize: epochs: expected an integer >= 0, got {epochs!r}")
    optimizer = get_optimizer(optimizer) if isinstance(optimizer, str) else optimizer
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"minimize: optimizer: expected an Optimizer or a name, got {type(optimizer).__name__}")
    optimizer.reset()
    if isinstance(optimizer, Newton) and optimizer.hessian is None:
        if hessian is None:
            raise ValueError("minimize: Newton needs a Hessian: pass hessian=fn or Newton(hessian=fn)")
        optimizer.hessian = hessian

    if hasattr(x0, "dtype") and x0.dtype.kind == "f":
        xp = backend.get_array_module(x0)
        x = x0.copy()
    else:
        xp = np
        x = np.array(x0, dtype=np.float64)
    path = [x.reshape(-1).copy()]
    for _ in range(int(epochs)):
        g = gradient(x)
        g = g if hasattr(g, "shape") else xp.asarray(g, dtype=x.dtype)
        g = g.reshape(x.shape)
        if gradient_norm(g) < tolerance:
            break
        optimizer.step([x], [g])
        path.append(x.reshape(-1).copy())
    return x, xp.stack(path)
