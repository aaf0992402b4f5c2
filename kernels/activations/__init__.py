"""Elementwise activations: fused CPU/GPU kernels behind one dispatcher (book chapters 7-9).

Public API
----------
``ACTIVATIONS``
    The 16 elementwise activations (Softmax is a layer, not elementwise).
``FAMILIES``
    ``{"sigmoidal": (...), "rectifier": (...), "modern": (...)}`` (chapters 7, 8, 9).
``forward(name, x, **kw)`` / ``backward(name, grad_output, x, y, **kw)`` (both take ``out=``)
    The fast path the layers use: NumPy float32/float64 C-contiguous arrays go
    to the Numba kernels of :mod:`kernels.activations.cpu`, CuPy float32/float64
    arrays to the CuPy kernels of :mod:`kernels.activations.gpu`, anything else
    (float16, non-contiguous NumPy arrays, mixed dtypes) to
    :mod:`kernels.activations.reference`, the book's NumPy code: never a wrong answer.
``reference.forward`` / ``reference.backward``
    The book's code, the spec and the benchmark's baseline.
``prelu_backward(grad_output, x, alpha)``
    PReLU's ``(grad_input, grad_alpha)`` in one pass (``backward("prelu", ...)``
    runs the same kernel and returns only ``grad_input``).
``draw_rrelu_slopes``, ``draw_noise``, ``training_kwargs``
    The random inputs of RReLU and NoisyReLU, drawn on the array's device; the
    kernels take them as arrays, so the kernels themselves are deterministic.

``backward`` reads the tensor named in ``BACKWARD_NEEDS[name]`` (the input x
or the output y, whichever makes the derivative cheaper); the other may be None.

Example
-------
>>> import numpy as np
>>> from kernels import activations as act
>>> x = np.linspace(-3, 3, 7, dtype=np.float32)
>>> y = act.forward("sigmoid", x)
>>> dx = act.backward("sigmoid", np.ones_like(x), None, y)
"""

from __future__ import annotations

import importlib

import numpy as np

import backend

from . import cpu, reference
from .catalog import (
    ACTIVATIONS,
    BACKWARD_NEEDS,
    DEFAULTS,
    FAMILIES,
    SELU_ALPHA,
    SELU_SCALE,
    check_name,
    resolve_params,
)

__all__ = [
    "ACTIVATIONS",
    "BACKWARD_NEEDS",
    "DEFAULTS",
    "FAMILIES",
    "SELU_ALPHA",
    "SELU_SCALE",
    "backward",
    "draw_noise",
    "draw_rrelu_slopes",
    "forward",
    "implementation",
    "prelu_backward",
    "reference",
    "training_kwargs",
]



def __getattr__(name):  # ``kernels.activations.gpu`` without importing CuPy's side at ``import kernels.activations``
    if name == "gpu":
        return importlib.import_module(f"{__name__}.gpu")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: Parameters that are arrays of x's shape (split and checked with x).
_ELEMENTWISE_PARAMS = ("slopes", "noise")

#: The fast path's kernels: ``(direction, name, dtype, *kwargs.items())`` -> a :func:`cpu.forward_plan` /
#: :func:`cpu.backward_plan`, or None (the call goes the checked way). Filled on first use, bounded.
_PLANS: dict = {}
_PLANS_MAX = 512


def _plan(direction: str, name: str, dtype, kwargs: dict):
    """The cached CPU kernel plan of a call with these scalar keyword arguments, or None.

    Built once per (name, dtype, keywords) through :func:`resolve_params`, so a bad name or
    keyword raises exactly as on the checked path; array keywords (unhashable) get None.
    """
    try:
        key = (direction, name, dtype, *kwargs.items())
        return _PLANS[key]
    except TypeError:  # an array among the keywords
        return None
    except KeyError:
        pass
    params = resolve_params(name, kwargs)
    plan = None
    if dtype in cpu.SUPPORTED_DTYPES:
        plan = (cpu.forward_plan if direction == "forward" else cpu.backward_plan)(name, dtype, params)
    if len(_PLANS) >= _PLANS_MAX:
        _PLANS.clear()
    _PLANS[key] = plan
    return plan


def _check_float(a, what: str, name: str):
    backend.check_float_array(a, what, where=name)


def _elementwise_params(name: str, params: dict, shape) -> list:
    arrays = []
    for key in _ELEMENTWISE_PARAMS:
        value = params.get(key)
        if value is None:
            continue
        _check_float(value, key, name)
        if tuple(value.shape) != tuple(shape):
            raise ValueError(f"{name}: {key}: expected shape {tuple(shape)} (the shape of x), got {tuple(value.shape)}")
        arrays.append(value)
    return arrays


def _check_out(out, like, name: str):
    """``out`` must be an array of ``like``'s shape and dtype on its device."""
    _check_float(out, "out", name)
    if tuple(out.shape) != tuple(like.shape) or out.dtype != like.dtype:
        raise ValueError(
            f"{name}: out: expected shape {tuple(like.shape)} and dtype {like.dtype}, "
            f"got shape {tuple(out.shape)} and dtype {out.dtype}"
        )


def _finish(result, out):
    if out is None:
        return result
    out[...] = result
    return out


def implementation(*arrays):
    """The module that computes on these arrays: ``cpu``, ``gpu`` or ``reference``.

    Raises TypeError when NumPy and CuPy arrays are mixed.
    """
    xp = backend.get_array_module(*arrays)
    fast = cpu if xp is np else importlib.import_module(f"{__name__}.gpu")  # imported with the first CuPy array
    return fast if fast.supports(*arrays) else reference


def forward(name: str, x, *, out=None, **kwargs):
    """y = f(x) for activation ``name`` on the fast path of x's device.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    x : array, any shape
        NumPy or CuPy floating-point array.
    **kwargs
        The activation's parameters (:data:`DEFAULTS`): ``alpha`` (leaky_relu,
        prelu, elu), ``slopes``/``lower``/``upper`` (rrelu), ``noise`` (noisy_relu),
        ``approximate`` (gelu).
    out : array, optional
        Where to write y (shape and dtype of x, on x's device); allocated when None.

    Returns
    -------
    y : array, shape and dtype of x (``out`` when given)
    """
    if out is None and type(x) is np.ndarray and x.flags.c_contiguous:  # the common case, checked once per plan
        plan = _plan("forward", name, x.dtype, kwargs)
        if plan is not None:
            return cpu.run_forward(plan, x)
    params = resolve_params(name, kwargs)
    _check_float(x, "x", name)
    arrays = _elementwise_params(name, params, x.shape)
    if out is not None:
        _check_out(out, x, name)
        arrays.append(out)
    if name == "prelu" and hasattr(params["alpha"], "shape"):
        backend.get_array_module(x, params["alpha"])  # mixed-device TypeError
    impl = implementation(x, *arrays)
    if impl is reference:
        return _finish(reference.forward(name, x, **params), out)
    return impl.forward(name, x, out=out, **params)


def backward(name: str, grad_output, x, y, *, out=None, **kwargs):
    """dE/dx = dE/dy f'(x) for activation ``name`` on the fast path of the arrays' device.

    Parameters
    ----------
    name : str
        One of :data:`ACTIVATIONS`.
    grad_output : array, shape of x
        dE/dy.
    x, y : array or None
        The forward's input and output; ``BACKWARD_NEEDS[name]`` says which one is read.
    **kwargs
        The forward's parameters (the same ``slopes``/``noise`` arrays).
    out : array, optional
        Where to write dE/dx (shape and dtype of grad_output); allocated when None.

    Returns
    -------
    grad_input : array, shape and dtype of grad_output (``out`` when given)
    """
    needed = y if BACKWARD_NEEDS.get(name) == "output" else x
    if (out is None and type(grad_output) is np.ndarray and type(needed) is np.ndarray
            and grad_output.dtype == needed.dtype and grad_output.shape == needed.shape
            and grad_output.flags.c_contiguous and needed.flags.c_contiguous):
        plan = _plan("backward", name, needed.dtype, kwargs)
        if plan is not None:
            return cpu.run_backward(plan, grad_output, needed)
    params = resolve_params(name, kwargs)
    _check_float(grad_output, "grad_output", name)
    if needed is None:
        which = "y (the output)" if BACKWARD_NEEDS[name] == "output" else "x (the input)"
        raise ValueError(f"{name}: backward reads {which}, got None")
    _check_float(needed, "y" if BACKWARD_NEEDS[name] == "output" else "x", name)
    if tuple(grad_output.shape) != tuple(needed.shape):
        raise ValueError(
            f"{name}: grad_output: expected shape {tuple(needed.shape)}, got {tuple(grad_output.shape)}"
        )
    arrays = _elementwise_params(name, params, needed.shape)
    if out is not None:
        _check_out(out, grad_output, name)
        arrays.append(out)
    if name == "prelu" and hasattr(params["alpha"], "shape"):
        backend.get_array_module(needed, params["alpha"])
    impl = implementation(grad_output, needed, *arrays)
    if impl is reference:
        return _finish(reference.backward(name, grad_output, x, y, **params), out)
    return impl.backward(name, grad_output, x, y, out=out, **params)


def prelu_backward(grad_output, x, alpha):
    """PReLU's gradients (eq. 8.6, PReLU'(0) = alpha) in one pass.

    Parameters
    ----------
    grad_output, x : array, shape (..., C)
    alpha : array, shape (1,) or (C,)
        Slopes; per channel along the last axis.

    Returns
    -------
    grad_input : array, shape and dtype of x
    grad_alpha : array, shape of alpha, dtype of x
        ``sum(where(x > 0, 0, x * grad_output))`` over every axis but the last
        (over all axes when alpha has one element).
    """
    _check_float(grad_output, "grad_output", "prelu")
    _check_float(x, "x", "prelu")
    if tuple(grad_output.shape) != tuple(x.shape):
        raise ValueError(f"prelu: grad_output: expected shape {tuple(x.shape)}, got {tuple(grad_output.shape)}")
    backend.get_array_module(grad_output, x, alpha)
    return implementation(grad_output, x).prelu_backward(grad_output, x, alpha)


# ----------------------------------------------------------------------------- random inputs
def _random(rng, shape, dtype, draw):
    dtype = np.dtype(dtype)
    native = dtype if dtype in (np.dtype(np.float32), np.dtype(np.float64)) else np.dtype(np.float64)
    out = draw(rng, shape, native)
    return out if native == dtype else out.astype(dtype)


def draw_rrelu_slopes(x, lower: float = 1.0 / 8.0, upper: float = 1.0 / 3.0, rng=None):
    """Random RReLU slopes, one per element of x, uniform in [lower, upper), on x's device.

    ``rng``: a NumPy/CuPy generator or a seed (see :func:`backend.generator_for`).
    Returns an array of x's shape and dtype.
    """
    xp = backend.get_array_module(x)
    gen = backend.generator_for(xp, rng)

    def draw(g, shape, dtype):
        u = g.random(shape, dtype=dtype)
        u *= upper - lower
        u += lower
        return u

    return _random(gen, x.shape, x.dtype, draw)


def draw_noise(x, std: float = 0.1, rng=None):
    """Gaussian noise N(0, std^2), one value per element of x, on x's device (NoisyReLU)."""
    xp = backend.get_array_module(x)
    gen = backend.generator_for(xp, rng)

    def draw(g, shape, dtype):
        n = g.standard_normal(shape, dtype=dtype)
        n *= std
        return n

    return _random(gen, x.shape, x.dtype, draw)


def training_kwargs(name: str, x, seed: int = 0) -> dict:
    """Keyword arguments that exercise ``name`` as a layer does in training (for benchmarks).

    RReLU: ``slopes`` drawn in [1/8, 1/3); NoisyReLU: ``noise`` with std 0.1;
    PReLU: ``alpha = 0.25`` as a (1,) array of x's dtype; other activations: their defaults.
    """
    check_name(name)
    if name == "rrelu":
        return {"slopes": draw_rrelu_slopes(x, rng=seed)}
    if name == "noisy_relu":
        return {"noise": draw_noise(x, rng=seed)}
    if name == "prelu":
        xp = backend.get_array_module(x)
        return {"alpha": xp.full((1,), 0.25, dtype=x.dtype)}
    return {}
