"""CuPy kernels for the activations: one ``ElementwiseKernel`` per activation and direction.

Each kernel is built on first use and memoized (``<op>_fwd`` / ``<op>_bwd``;
CuPy also keeps the compiled binary in its on-disk cache), so importing this
module needs neither CuPy nor a GPU. ``T`` is the array dtype (float32 or
float64): arithmetic stays in that precision, as in the CPU kernels, except
GELU's ``erfc``, evaluated in double and rounded once (as SciPy does for float32).

The formulas are the CPU kernels' (:mod:`kernels.activations.cpu`) with the
CUDA math library's ``exp``, ``expm1``, ``tanh``, ``log1p``, ``erfc``; the
random slopes of RReLU and the noise of NoisyReLU are drawn on the device by
the caller (:func:`kernels.activations.draw_rrelu_slopes`, ``draw_noise``).
Elementwise kernels accept any strides, so only the dtype decides whether an
array takes this path.
"""

from __future__ import annotations

import functools

import numpy as np

from .catalog import BACKWARD_NEEDS, GELU_TANH_C, GELU_TANH_K, INV_SQRT_2PI, SELU_ALPHA, SELU_SCALE, SQRT2

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_ERFC_NEG_X_OVER_SQRT2 = f"(T)erfc((double)(-x / (T){SQRT2!r}))"

#: name -> (in_params, out_params, operation)
_SOURCES = {
    # ---- sigmoidal
    "sigmoid_fwd": ("T x", "T y", "y = (T)1 / ((T)1 + exp(-x));"),
    "sigmoid_bwd": ("T g, T y", "T dx", "dx = g * (y * ((T)1 - y));"),
    "tanh_fwd": ("T x", "T y", "y = tanh(x);"),
    "tanh_bwd": ("T g, T y", "T dx", "dx = g * ((T)1 - y * y);"),
    "softsign_fwd": ("T x", "T y", "y = x / ((T)1 + fabs(x));"),
    "softsign_bwd": ("T g, T x", "T dx", "T a = (T)1 + fabs(x); dx = g * ((T)1 / (a * a));"),
    "hard_sigmoid_fwd": (
        "T x", "T y",
        "T w = x / (T)6 + (T)0.5; w = w < (T)0 ? (T)0 : w; y = w > (T)1 ? (T)1 : w;",
    ),
    "hard_sigmoid_bwd": (
        "T g, T x", "T dx",
        "dx = (x < (T)-3 || x > (T)3) ? (T)0 : g * (T)(1.0 / 6.0);",
    ),
    "hard_tanh_fwd": ("T x", "T y", "T v = x < (T)-1 ? (T)-1 : x; y = v > (T)1 ? (T)1 : v;"),
    "hard_tanh_bwd": ("T g, T x", "T dx", "dx = (x < (T)-1 || x > (T)1) ? (T)0 : g;"),
    # ---- rectifiers
    "relu_fwd": ("T x", "T y", "y = x <= (T)0 ? (T)0 : x;"),
    "positive_mask_bwd": ("T g, T t", "T dx", "dx = t > (T)0 ? g : (T)0;"),
    "leaky_fwd": ("T x, T alpha", "T y", "y = x > (T)0 ? x : alpha * x;"),
    "leaky_bwd": ("T g, T x, T alpha", "T dx", "dx = x > (T)0 ? g : alpha * g;"),
    "prelu_channels_fwd": (
        "T x, raw T alpha, int64 channels", "T y",
        "y = x > (T)0 ? x : alpha[i % channels] * x;",
    ),
    "prelu_channels_bwd": (
        "T g, T x, raw T alpha, int64 channels", "T dx",
        "dx = x > (T)0 ? g : alpha[i % channels] * g;",
    ),
    "rrelu_fwd": ("T x, T slope", "T y", "y = x > (T)0 ? x : slope * x;"),
    "rrelu_bwd": ("T g, T x, T slope", "T dx", "dx = x > (T)0 ? g : slope * g;"),
    "scaled_elu_fwd": (
        "T x, T scale, T alpha", "T y",
        "T neg = alpha * expm1(x); y = scale * (x > (T)0 ? x : neg);",
    ),
    "scaled_elu_bwd": (
        "T g, T y, T scale, T scale_alpha", "T dx",
        "dx = y > (T)0 ? g * scale : g * (y + scale_alpha);",
    ),
    "noisy_relu_fwd": ("T x, T noise", "T y", "y = x > (T)0 ? x + noise : (T)0;"),
    # ---- modern
    "gelu_fwd": ("T x", "T y", f"y = (T)0.5 * x * {_ERFC_NEG_X_OVER_SQRT2};"),
    "gelu_bwd": (
        "T g, T x", "T dx",
        f"dx = g * ((T)0.5 * {_ERFC_NEG_X_OVER_SQRT2} + x * exp((T)-0.5 * x * x) * (T){INV_SQRT_2PI!r});",
    ),
    "gelu_tanh_fwd": (
        "T x", "T y",
        f"T u = (T){GELU_TANH_K!r} * (x + (T){GELU_TANH_C!r} * x * x * x);"
        " y = x / ((T)1 + exp((T)-2 * u));",
    ),
    "gelu_tanh_bwd": (
        "T g, T x", "T dx",
        f"T u = (T){GELU_TANH_K!r} * (x + (T){GELU_TANH_C!r} * x * x * x);"
        " T s = (T)1 / ((T)1 + exp((T)-2 * u));"
        f" T inner = (T)1 + (T){3.0 * GELU_TANH_C!r} * x * x;"
        f" dx = g * (s + x * s * ((T)1 - s) * (T){2.0 * GELU_TANH_K!r} * inner);",
    ),
    "silu_fwd": ("T x", "T y", "y = x / ((T)1 + exp(-x));"),
    "silu_bwd": (
        "T g, T x", "T dx",
        "T s = (T)1 / ((T)1 + exp(-x)); dx = g * (s * ((T)1 + x * ((T)1 - s)));",
    ),
    "softplus_fwd": ("T x", "T y", "y = (x <= (T)0 ? (T)0 : x) + log1p(exp(-fabs(x)));"),
    "softplus_bwd": ("T g, T x", "T dx", "dx = g * ((T)1 / ((T)1 + exp(-x)));"),
    "mish_fwd": (
        "T x", "T y",
        "T e = exp(x < (T)20 ? x : (T)20); T n = e * (e + (T)2); y = x * (n / (n + (T)2));",
    ),
    "mish_bwd": (
        "T g, T x", "T dx",
        "T e = exp(x < (T)20 ? x : (T)20); T n = e * (e + (T)2); T t = n / (n + (T)2);"
        " T s = (T)1 / ((T)1 + exp(-x)); dx = g * (t + x * s * ((T)1 - t * t));",
    ),
}


def _cupy():
    import cupy  # imported only when a CuPy array reaches this module

    return cupy


#: Compiled without fused multiply-add (NVRTC contracts a * b + c by default): the tanh-form
#: GELU's exponent -2u has condition number |2u|, so u is rounded as the NumPy reference does
#: (see ``_OPTS_NO_FMA`` in :mod:`kernels.activations.cpu`).
_NO_FMA = ("gelu_tanh_fwd", "gelu_tanh_bwd")


@functools.lru_cache(maxsize=None)
def kernel(name: str):
    """The memoized ``cupy.ElementwiseKernel`` called ``name`` (e.g. ``"sigmoid_fwd"``)."""
    in_params, out_params, operation = _SOURCES[name]
    options = ("--fmad=false",) if name in _NO_FMA else ()
    return _cupy().ElementwiseKernel(in_params, out_params, operation, name, options=options)


@functools.lru_cache(maxsize=None)
def _prelu_alpha_sum():
    """Reduction of where(x > 0, 0, x g) accumulated in double (``prelu_bwd_alpha``)."""
    return _cupy().ReductionKernel(
        "T g, T x", "T dalpha",
        "x > (T)0 ? 0.0 : (double)x * (double)g", "a + b", "dalpha = (T)a", "0",
        "prelu_bwd_alpha", reduce_type="double",
    )


def supports(*arrays) -> bool:
    """True when all arrays are CuPy float32/float64 arrays of one dtype and one shape (any strides)."""
    try:
        cp = _cupy()
    except ImportError:
        return False
    first = arrays[0]
    for a in arrays:
        if not isinstance(a, cp.ndarray) or a.dtype not in SUPPORTED_DTYPES:
            return False
        if a.dtype != first.dtype or a.shape != first.shape:
            return False
    return True


def prelu_alpha(alpha, x):
    """PReLU slopes as a contiguous 1-D CuPy array of x's dtype, shape (1,) or (C,)."""
    cp = _cupy()
    a = cp.ascontiguousarray(cp.asarray(alpha, dtype=x.dtype).reshape(-1))
    channels = x.shape[-1] if x.ndim else 1
    if a.size != 1 and a.size != channels:
        raise ValueError(
            f"prelu: alpha: expected 1 slope or one per channel (last axis of x, {channels}), got {a.size}"
        )
    return a


_UNARY_FORWARD = ("sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh", "relu", "silu", "softplus", "mish")
_BINARY_BACKWARD = {
    "sigmoid": "sigmoid_bwd", "tanh": "tanh_bwd", "softsign": "softsign_bwd",
    "hard_sigmoid": "hard_sigmoid_bwd", "hard_tanh": "hard_tanh_bwd", "relu": "positive_mask_bwd",
    "noisy_relu": "positive_mask_bwd", "silu": "silu_bwd", "softplus": "softplus_bwd", "mish": "mish_bwd",
}


def _mean_slope(params):
    return (float(params["lower"]) + float(params["upper"])) / 2.0


def _launch(kernel_name, args, out):
    k = kernel(kernel_name)
    return k(*args) if out is None else k(*args, out)


def forward(name, x, out=None, **params):
    """y = f(x) on the GPU into ``out`` (allocated when None); ``params`` resolved by
    :func:`kernels.activations.catalog.resolve_params`."""
    dt = x.dtype.type
    if name in _UNARY_FORWARD:
        return _launch(f"{name}_fwd", (x,), out)
    if name == "gelu":
        return _launch("gelu_tanh_fwd" if params["approximate"] == "tanh" else "gelu_fwd", (x,), out)
    if name == "leaky_relu":
        return _launch("leaky_fwd", (x, dt(params["alpha"])), out)
    if name == "prelu":
        alpha = prelu_alpha(params["alpha"], x)
        if alpha.size == 1:
            return _launch("leaky_fwd", (x, alpha[0]), out)
        return _launch("prelu_channels_fwd", (x, alpha, np.int64(alpha.size)), out)
    if name == "rrelu":
        if params["slopes"] is None:
            return _launch("leaky_fwd", (x, dt(_mean_slope(params))), out)
        return _launch("rrelu_fwd", (x, params["slopes"]), out)
    if name == "elu":
        return _launch("scaled_elu_fwd", (x, dt(1.0), dt(params["alpha"])), out)
    if name == "selu":
        return _launch("scaled_elu_fwd", (x, dt(SELU_SCALE), dt(SELU_ALPHA)), out)
    if name == "noisy_relu":
        if params["noise"] is None:
            return _launch("relu_fwd", (x,), out)
        return _launch("noisy_relu_fwd", (x, params["noise"]), out)
    raise AssertionError(name)


def backward(name, grad_output, x, y, out=None, **params):
    """dE/dx on the GPU into ``out`` (allocated when None); reads x or y as
    :data:`catalog.BACKWARD_NEEDS` says."""
    t = y if BACKWARD_NEEDS[name] == "output" else x
    g = grad_output
    dt = t.dtype.type
    if name in _BINARY_BACKWARD:
        return _launch(_BINARY_BACKWARD[name], (g, t), out)
    if name == "gelu":
        return _launch("gelu_tanh_bwd" if params["approximate"] == "tanh" else "gelu_bwd", (g, t), out)
    if name == "leaky_relu":
        return _launch("leaky_bwd", (g, t, dt(params["alpha"])), out)
    if name == "prelu":
        return prelu_backward(g, x, params["alpha"], out=out)[0]
    if name == "rrelu":
        if params["slopes"] is None:
            return _launch("leaky_bwd", (g, t, dt(_mean_slope(params))), out)
        return _launch("rrelu_bwd", (g, t, params["slopes"]), out)
    if name == "elu":
        return _launch("scaled_elu_bwd", (g, t, dt(1.0), dt(params["alpha"])), out)
    if name == "selu":
        return _launch("scaled_elu_bwd", (g, t, dt(SELU_SCALE), dt(SELU_SCALE * SELU_ALPHA)), out)
    raise AssertionError(name)


def prelu_backward(grad_output, x, alpha, out=None):
    """(grad_input, grad_alpha) of PReLU on the GPU; grad_alpha has alpha's shape and x's dtype."""
    a = prelu_alpha(alpha, x)
    shape = tuple(alpha.shape) if hasattr(alpha, "shape") else (1,)
    if a.size == 1:
        grad_input = _launch("leaky_bwd", (grad_output, x, a[0]), out)
        grad_alpha = _prelu_alpha_sum()(grad_output, x)
    else:
        c = a.size
        grad_input = _launch("prelu_channels_bwd", (grad_output, x, a, np.int64(c)), out)
        grad_alpha = _prelu_alpha_sum()(grad_output.reshape(-1, c), x.reshape(-1, c), axis=0)
    return grad_input, grad_alpha.reshape(shape)
