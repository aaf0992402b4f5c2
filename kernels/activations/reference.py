"""The book's NumPy expressions for every activation: the executable spec and the benchmark baseline.

Each function below is the formula of the book (chapters 7-9) written as the
book writes its code blocks, with whole-array NumPy operations and temporaries
(the "book code" of the benchmark), generic over ``xp`` so it runs on CuPy too.
The fast kernels in :mod:`kernels.activations.cpu` and
:mod:`kernels.activations.gpu` are tested against these, and the dispatcher
falls back to them for what the kernels do not cover (float16, non-contiguous
arrays, mixed dtypes).

Where the printed code is wrong or unsafe, the math is kept and the code fixed:

* Softsign's backward names an undefined variable (7.6.1); here it is
  ``1 / (1 + |x|)^2``.
* ``np.where(cond, 1, alpha)`` and ``np.where(cond, 1, 0)`` build float64/int64
  arrays that promote float32 gradients to float64; masks here keep the dtype.
* ``np.maximum(x * alpha, x)`` (LeakyReLU, 8.4.1.1) is only right for
  ``0 <= alpha <= 1``; other slopes use ``where(x > 0, x, alpha x)``.
* ``exp`` that overflows to ``inf`` where the limit is still right
  (sigmoid at x = -1000: ``1 / (1 + inf) = 0``) runs under
  ``np.errstate(over="ignore")``, so no RuntimeWarning is raised.

Derivatives at the kinks (the book's equations): ReLU'(0) = 0 (8.2),
LeakyReLU'(0) = alpha (8.4), PReLU'(0) = alpha (8.6 leaves it undefined),
RReLU'(0) = slope (8.8), ELU'(0) = alpha (8.10), SELU'(0) = scale alpha (8.12),
NoisyReLU'(0) = 0 (8.14), HardSigmoid' = 1/6 on the closed interval [-3, 3]
and HardTanh' = 1 on the closed interval [-1, 1] (the linear pieces of 7.8 and
7.10 include their end points; the book's HardSigmoid code does the same, its
HardTanh code and PyTorch use the open interval; they differ only at exactly +-1).

Backward functions read the tensor named in :data:`catalog.BACKWARD_NEEDS`
(``x`` or ``y``); the other may be ``None``.
"""

from __future__ import annotations

import math

import numpy as np

import backend

from .catalog import (
    GELU_TANH_C,
    GELU_TANH_K,
    INV_SQRT_2PI,
    SELU_ALPHA,
    SELU_SCALE,
    SQRT2,
    resolve_params,
)

__all__ = ["forward", "backward", "prelu_backward", "erfc"]


def erfc(x):
    """Complementary error function on NumPy or CuPy arrays, keeping the dtype.

    Uses ``scipy.special.erfc`` / ``cupyx.scipy.special.erfc``; without SciPy,
    ``math.erfc`` element by element (slow, but right).
    """
    xp = backend.get_array_module(x)
    if xp is not np:
        from cupyx.scipy.special import erfc as cupy_erfc

        return cupy_erfc(x).astype(x.dtype, copy=False)
    try:
        from scipy.special import erfc as scipy_erfc
    except ImportError:  # SciPy is not a dependency of camadas
        return np.vectorize(math.erfc, otypes=[x.dtype])(x)
    return scipy_erfc(x).astype(x.dtype, copy=False)  # float16 comes back as float32/64


def _sigmoid(xp, x):
    with np.errstate(over="ignore"):
        return 1 / (1 + xp.exp(-x))


def _softplus(xp, x):
    return xp.maximum(x, 0) + xp.log1p(xp.exp(-xp.abs(x)))


def _as_param(xp, value, dtype):
    """A scalar stays a Python float; an array moves to x's dtype (no float64 promotion)."""
    if hasattr(value, "dtype"):
        return xp.asarray(value).astype(dtype, copy=False)
    return float(value)


# ----------------------------------------------------------------------------- forward
def forward(name: str, x, **kwargs):
    """The book's expression for activation ``name`` applied to ``x``.

    Parameters
    ----------
    name : str
        One of :data:`kernels.activations.ACTIVATIONS`.
    x : array, any shape
        NumPy or CuPy floating-point array.
    **kwargs
        The activation's parameters (:data:`kernels.activations.catalog.DEFAULTS`).

    Returns
    -------
    y : array, same shape (and, for float32/float64 inputs, same dtype) as ``x``
    """
    p = resolve_params(name, kwargs)
    xp = backend.get_array_module(x, *(v for v in p.values() if hasattr(v, "shape")))
    if name == "sigmoid":  # eq. 7.2, code block 7.4.1
        return _sigmoid(xp, x)
    if name == "tanh":  # eq. 7.4, code block 7.5.1
        return xp.tanh(x)
    if name == "softsign":  # eq. 7.6, code block 7.6.1
        return x / (1 + xp.abs(x))
    if name == "hard_sigmoid":  # eq. 7.8, code block 7.7.1
        return xp.clip(x / 6 + 0.5, 0, 1)
    if name == "hard_tanh":  # eq. 7.10, code block 7.7.1
        return xp.clip(x, -1, 1)
    if name == "relu":  # eq. 8.1, code block 8.2.1
        return xp.maximum(0, x)
    if name == "leaky_relu":  # eq. 8.3, code block 8.4.1.1
        alpha = float(p["alpha"])
        if 0.0 <= alpha <= 1.0:
            return xp.maximum(x * alpha, x)
        return xp.where(x > 0, x, alpha * x)
    if name == "prelu":  # eq. 8.5; alpha scalar or per channel (last axis)
        alpha = _as_param(xp, p["alpha"], x.dtype)
        return xp.where(x > 0, x, alpha * x)
    if name == "rrelu":  # eq. 8.7; slopes drawn by the caller, mean slope in evaluation
        slopes = p["slopes"]
        if slopes is None:
            slopes = (float(p["lower"]) + float(p["upper"])) / 2.0
        return xp.where(x > 0, x, slopes * x)
    if name == "elu":  # eq. 8.9
        with np.errstate(over="ignore"):
            return xp.where(x > 0, x, float(p["alpha"]) * xp.expm1(x))
    if name == "selu":  # eq. 8.11
        with np.errstate(over="ignore"):
            return SELU_SCALE * xp.where(x > 0, x, SELU_ALPHA * xp.expm1(x))
    if name == "noisy_relu":  # eq. 8.13: noise added to the active units only
        noise = p["noise"]
        if noise is None:
            return xp.maximum(0, x)
        return xp.where(x > 0, x + noise, 0)
    if name == "gelu":
        if p["approximate"] == "tanh":
            # 0.5 x (1 + tanh(u)) written as x sigmoid(2u): the same function without
            # the cancellation 1 + tanh(u) -> 0 for x << 0.
            u = GELU_TANH_K * (x + GELU_TANH_C * x * x * x)
            with np.errstate(over="ignore"):
                return x / (1 + xp.exp(-2 * u))
        return 0.5 * x * erfc(-x / SQRT2)  # x Phi(x)
    if name == "silu":  # x sigmoid(x)
        with np.errstate(over="ignore"):
            return x / (1 + xp.exp(-x))
    if name == "softplus":  # log(1 + e^x) without overflow
        return _softplus(xp, x)
    if name == "mish":  # x tanh(softplus(x))
        return x * xp.tanh(_softplus(xp, x))
    raise AssertionError(name)  # unreachable: resolve_params checked the name


# ----------------------------------------------------------------------------- backward
def backward(name: str, grad_output, x, y, **kwargs):
    """dE/dx = dE/dy * f'(x), by the book's expression for ``name``.

    Parameters
    ----------
    name : str
        One of :data:`kernels.activations.ACTIVATIONS`.
    grad_output : array, shape of x
        dE/dy.
    x, y : array or None
        The forward's input and output; only the one named in
        :data:`kernels.activations.catalog.BACKWARD_NEEDS` is read.
    **kwargs
        The same parameters as the forward pass (the same ``slopes``/``noise``).

    Returns
    -------
    grad_input : array, shape of x
    """
    p = resolve_params(name, kwargs)
    g = grad_output
    xp = backend.get_array_module(g, x, y, *(v for v in p.values() if hasattr(v, "shape")))
    if name == "sigmoid":  # eq. 7.3 as sigma (1 - sigma)
        return g * (y * (1 - y))
    if name == "tanh":  # eq. 7.5 as 1 - tanh^2
        return g * (1 - y**2)
    if name == "softsign":  # eq. 7.7
        return g * (1 / (1 + xp.abs(x)) ** 2)
    if name == "hard_sigmoid":  # eq. 7.9 on the closed interval (the book's code)
        grad = xp.full_like(x, 1 / 6)
        grad[x < -3] = 0
        grad[x > 3] = 0
        return g * grad
    if name == "hard_tanh":  # eq. 7.11 on the closed interval
        return xp.where((x < -1) | (x > 1), 0, g)
    if name == "relu":  # eq. 8.2, read from the output (y > 0 iff x > 0)
        return g * (y > 0)
    if name == "leaky_relu":  # eq. 8.4
        return xp.where(x > 0, g, float(p["alpha"]) * g)
    if name == "prelu":  # eq. 8.6 with PReLU'(0) = alpha
        alpha = _as_param(xp, p["alpha"], x.dtype)
        return xp.where(x > 0, g, alpha * g)
    if name == "rrelu":  # eq. 8.8
        slopes = p["slopes"]
        if slopes is None:
            slopes = (float(p["lower"]) + float(p["upper"])) / 2.0
        return xp.where(x > 0, g, slopes * g)
    if name == "elu":  # eq. 8.10 as alpha e^x = y + alpha for x <= 0
        return xp.where(y > 0, g, g * (y + float(p["alpha"])))
    if name == "selu":  # eq. 8.12 as scale alpha e^x = y + scale alpha
        return xp.where(y > 0, g * SELU_SCALE, g * (y + SELU_SCALE * SELU_ALPHA))
    if name == "noisy_relu":  # eq. 8.14; the noise is a constant of the step
        return xp.where(x > 0, g, 0)
    if name == "gelu":
        if p["approximate"] == "tanh":
            u = GELU_TANH_K * (x + GELU_TANH_C * x * x * x)
            with np.errstate(over="ignore"):
                s = 1 / (1 + xp.exp(-2 * u))
            inner = 1 + (3 * GELU_TANH_C) * x * x
            return g * (s + x * s * (1 - s) * (2 * GELU_TANH_K) * inner)
        return g * (0.5 * erfc(-x / SQRT2) + x * xp.exp(-0.5 * x * x) * INV_SQRT_2PI)
    if name == "silu":
        s = _sigmoid(xp, x)
        return g * (s * (1 + x * (1 - s)))
    if name == "softplus":  # softplus' = sigmoid
        return g * _sigmoid(xp, x)
    if name == "mish":
        t = xp.tanh(_softplus(xp, x))
        s = _sigmoid(xp, x)
        return g * (t + x * s * (1 - t * t))
    raise AssertionError(name)


def prelu_backward(grad_output, x, alpha):
    """PReLU's input gradient and the gradient of its slopes (eq. 8.6).

    Parameters
    ----------
    grad_output, x : array, shape (..., C)
    alpha : array, shape (1,) or (C,)

    Returns
    -------
    grad_input : array, shape of x
    grad_alpha : array, shape of alpha: sum over every axis but the last
        (all axes when alpha has one element) of ``where(x > 0, 0, x * grad_output)``.
    """
    xp = backend.get_array_module(grad_output, x, alpha)
    a = xp.asarray(alpha).astype(x.dtype, copy=False)
    grad_input = xp.where(x > 0, grad_output, a * grad_output)
    contrib = xp.where(x > 0, 0, x * grad_output)
    if a.size == 1:
        grad_alpha = xp.sum(contrib).reshape(a.shape)
    else:
        grad_alpha = contrib.reshape(-1, a.shape[-1]).sum(axis=0).reshape(a.shape)
    return grad_input, grad_alpha.astype(alpha.dtype if hasattr(alpha, "dtype") else x.dtype, copy=False)
