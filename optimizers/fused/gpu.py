"""CuPy kernels of the optimizers: one ``ElementwiseKernel`` per update rule, the same formulas as :mod:`.cpu`.

:data:`SOURCES` holds the CUDA text of every kernel (read by the NVRTC compile
test, ``tests/optimizers/test_fused_gpu_source.py``); :func:`kernel` compiles
one on first use and memoizes it, so importing this module needs neither CuPy
nor a GPU. ``T`` is the arrays' dtype (float16, float32 or float64); ``C``, the
dtype of the coefficients, is the precision the arithmetic runs in: float for
float16 and float32, double for float64 (the dispatcher passes the
coefficients as NumPy scalars of that dtype). The second moment's root uses
CUDA's ``hypot``, which never overflows; ``flag[0]`` is set to 1 by any thread
that stores a non-finite value.
"""

from __future__ import annotations

import functools

import numpy as np

_NONFINITE = "if (!({checks})) flag[0] = 1;"


def _check(*names) -> str:
    return _NONFINITE.format(checks=" && ".join(f"isfinite((C){n})" for n in names))


#: kernel name -> (in_params, out_params, operation); the out params are updated in place. ``flag`` is an out
#: param: CuPy 14 makes raw *input* arrays const (the device run: "expression must be a modifiable lvalue").
SOURCES = {
    "sgd": (
        "T g, C lr", "T p, raw int32 flag",
        "p = (T)((C)p - lr * (C)g); " + _check("p"),
    ),
    "momentum": (
        "T g, C lr, C mu, C a, C b", "T p, T v, raw int32 flag",
        "C gi = (C)g; C vi = (C)v * mu - lr * gi; v = (T)vi; p = (T)((C)p + (a * vi - b * gi)); "
        + _check("p", "v"),
    ),
    "rms": (
        "T g, C lr, C a, C b, C eps", "T p, T r, raw int32 flag",
        "C gi = (C)g; C ri = hypot(a * (C)r, b * gi); r = (T)ri; p = (T)((C)p - lr * gi / (ri + eps)); "
        + _check("p", "r"),
    ),
    "adam": (
        "T g, C b1, C c1, C a, C b, C cm, C cg, C inv_bc2, C eps, C keep", "T p, T m, T v, raw int32 flag",
        "C gi = (C)g; C mi = b1 * (C)m + c1 * gi; C vi = hypot(a * (C)v, b * gi); m = (T)mi; v = (T)vi; "
        "p = (T)(keep * (C)p - (cm * mi + cg * gi) / (vi * inv_bc2 + eps)); " + _check("p", "m", "v"),
    ),
}

#: dtype of the coefficients (the arithmetic) for each array dtype
COMPUTE_DTYPES = {np.dtype(np.float16): np.dtype(np.float32), np.dtype(np.float32): np.dtype(np.float32),
                  np.dtype(np.float64): np.dtype(np.float64)}


def scalars(coefficients, dtype) -> tuple:
    """The coefficients as NumPy scalars of :data:`COMPUTE_DTYPES` ``[dtype]`` (what binds ``C``)."""
    compute = COMPUTE_DTYPES[np.dtype(dtype)].type
    return tuple(compute(c) for c in coefficients)


#: C type of each compute dtype (the ``typedef`` that binds ``C``).
_C_NAMES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def declaration(name: str, compute=np.float32) -> tuple:
    """``(in_params, out_params, operation, preamble)`` of kernel ``name`` with ``C`` bound to ``compute``.

    CuPy 14 no longer binds a type placeholder from a scalar argument (the
    device run raised ``KeyError: 'C'``), so the coefficients are declared with
    the compute dtype's name and the operation's ``C`` is a ``typedef`` in the preamble.
    """
    compute = np.dtype(compute)
    in_params, out_params, operation = SOURCES[name]
    items = (part.split() for part in in_params.split(","))
    in_params = ", ".join(f"{compute.name} {words[1]}" if words[0] == "C" else " ".join(words) for words in items)
    return in_params, out_params, operation, f"typedef {_C_NAMES[compute]} C;"


@functools.cache
def kernel(name: str, compute=np.float32):
    """The memoized ``cupy.ElementwiseKernel`` :func:`declaration` describes, named ``camadas_<name>_step``."""
    import cupy  # only when a CuPy array reaches the optimizers

    in_params, out_params, operation, preamble = declaration(name, compute)
    return cupy.ElementwiseKernel(in_params, out_params, operation, f"camadas_{name}_step", preamble=preamble)


def update(name, param, grad, states, scalars, flag) -> None:
    """Run kernel ``name`` on CuPy arrays of one shape (any strides): ``param`` and ``states`` in place.

    ``grad`` is cast to ``param``'s dtype; ``scalars`` are the coefficients in
    the kernel's order, from :func:`scalars`; ``flag`` is an int32 CuPy array of one element.
    """
    if grad.dtype != param.dtype:
        grad = grad.astype(param.dtype)
    kernel(name, COMPUTE_DTYPES[param.dtype])(grad, *scalars, param, *states, flag)
