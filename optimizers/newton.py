"""Newton's method for function minimisation (book section 6.5; slides 004)."""

from __future__ import annotations

import numpy as np

import backend

from .base import Optimizer


class Newton(Optimizer):
    """Second-order step with a user-given Hessian (slides 004: w(k+1) = w(k) - α H⁻¹(w(k)) ∇J(w(k))).

    x <- x - ε H(x)⁻¹ g

    computed with a linear solve of H Δ = g (never an explicit inverse). On a
    quadratic f(x) = 1/2 xᵀA x - bᵀx with ε = 1 it lands on the minimum in one
    step. H must be invertible (and positive definite for a descent step) at
    every iterate; the Hessian costs O(n²) memory and the solve O(n³), which is
    why the book and slides 004 turn to first-order and quasi-Newton methods for
    networks.

    Parameters
    ----------
    hessian : callable(x) -> array (n, n), optional
        The Hessian of the function at ``x`` (any shape with n = x.size
        elements; a scalar for n = 1). It may also be given later, to
        :func:`optimizers.minimize` (``hessian=``) or by setting ``self.hessian``.
    learning_rate : float > 0
        ε (α in slides 004), default 1.0 (the pure Newton step).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer` (applied to g).

    Notes
    -----
    ``step(params, grads)`` takes exactly one parameter array (the point x).

    Raises
    ------
    ValueError
        No Hessian set, more than one parameter, a Hessian of the wrong shape,
        or a singular Hessian (NumPy).
    """

    def __init__(self, hessian=None, learning_rate: float = 1.0, **options):
        super().__init__(learning_rate, **options)
        if hessian is not None and not callable(hessian):
            raise TypeError(f"Newton: hessian: expected a callable x -> H(x), got {type(hessian).__name__}")
        self.hessian = hessian

    def step(self, params, grads) -> None:
        params = list(params)
        if len(params) != 1:
            raise ValueError(f"Newton.step: expected exactly one parameter array (the point x), got {len(params)}")
        if self.hessian is None:
            raise ValueError("Newton: no Hessian: pass Newton(hessian=fn) or minimize(..., hessian=fn)")
        super().step(params, grads)

    def _update(self, param, grad, state, xp):
        n = int(param.size)
        H = self.hessian(param)
        H = H if hasattr(H, "shape") else xp.asarray(H)
        backend.get_array_module(param, H)  # mixed-device TypeError
        if int(H.size) != n * n:
            raise ValueError(f"Newton: hessian(x) for x with {n} elements: expected shape ({n}, {n}), "
                             f"got shape {tuple(H.shape)}")
        H = H.astype(param.dtype, copy=False).reshape(n, n)
        try:
            direction = xp.linalg.solve(H, grad.reshape(n, 1).astype(param.dtype, copy=False))
        except np.linalg.LinAlgError as err:
            raise ValueError(f"Newton: the Hessian is singular at x = {backend.to_numpy(param).ravel()}; "
                             f"Newton's step needs an invertible (positive definite) Hessian ({err})") from err
        param -= self.last_learning_rate * direction.reshape(param.shape)
