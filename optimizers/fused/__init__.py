"""Fused optimizer updates: one kernel call per parameter (or per run of a flat buffer) and step.

``update(name, param, grad, states, coefficients, flag)`` runs the kernel
``name`` ("sgd", "momentum", "rms", "adam") in place on ``param`` and its
state arrays: Numba on NumPy arrays (:mod:`.cpu`), a CuPy ``ElementwiseKernel``
on CuPy arrays (:mod:`.gpu`). One pass over memory, no temporaries; float16
is computed in float32 (on the CPU through float32 copies, on the GPU inside
the kernel); a non-contiguous NumPy array goes through a contiguous copy.

Why the second moment is stored as its root r = sqrt(s): Adam's
s <- β2 s + (1 - β2) g² is written ``g * g`` first, which overflows float32 at
|g| > 1.8e19 (float16 at |g| > 256) although (1 - β2) g² is representable, and
AdaGrad's Σg² itself is not representable after one gradient of 1e20. The root
r <- sqrt(β2 r² + (1 - β2) g²) is at most max(r, |g|): no finite gradient can
overflow it, and the update divides by r directly (no square root per step).
"""

from __future__ import annotations

import numpy as np

from kernels.threads import PARALLEL_MIN_ELEMENTS, run_rows

from . import cpu, gpu

#: kernel name -> number of state arrays it updates
STATE_COUNTS = {name: count for name, (_, count) in cpu.KERNELS.items()}
_CPU_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def new_flag(xp):
    """A one-element int32 array on ``xp``'s current device, for :func:`update` to set on non-finite values."""
    return xp.zeros(1, dtype=np.int32)


def scalars(coefficients, param):
    """The kernel coefficients (Python floats) in the dtype the arithmetic runs in for ``param``.

    On the CPU one small array of ``param``'s dtype (float16: float32); on the
    GPU a tuple of NumPy scalars, float32 for float16/float32 and float64 for float64.
    """
    if isinstance(param, np.ndarray):
        return np.array(coefficients, param.dtype if param.dtype in _CPU_DTYPES else np.float32)
    return gpu.scalars(coefficients, param.dtype)


def update(name, param, grad, states, scalars, flag) -> None:
    """Apply kernel ``name`` to ``param`` and ``states`` in place.

    Parameters
    ----------
    name : {"sgd", "momentum", "rms", "adam"}
    param : float array (NumPy or CuPy), any shape
    grad : array of ``param``'s shape (cast to its dtype when needed)
    states : list of arrays of ``param``'s shape and dtype (``STATE_COUNTS[name]`` of them)
    scalars : array or tuple
        The kernel's coefficients in their order (see :mod:`.cpu`), converted
        by :func:`scalars`.
    flag : int32 array of one element on ``param``'s device
        Set to 1 when a non-finite value is stored.
    """
    if not isinstance(param, np.ndarray):
        gpu.update(name, param, grad, states, scalars, flag)
        return
    kernel = cpu.KERNELS[name][0]
    if param.dtype in _CPU_DTYPES and param.flags.c_contiguous and all(s.flags.c_contiguous for s in states):
        if param.ndim != 1:
            param, states = param.reshape(-1), [s.reshape(-1) for s in states]
        _run(kernel, param, grad, states, scalars, flag)
        return
    # float16 or a non-contiguous array: through float32/contiguous copies, written back after.
    work = np.float32 if param.dtype not in _CPU_DTYPES else param.dtype
    arrays = [np.ascontiguousarray(a, dtype=work).reshape(-1) for a in (param, *states)]
    _run(kernel, arrays[0], grad, arrays[1:], scalars, flag)
    for target, source in zip((param, *states), arrays):
        with np.errstate(over="ignore"):  # reported through flag below
            target[...] = source.reshape(target.shape)
        if target.dtype != work and not np.isfinite(target).all():  # rounded to float16, out of its range
            flag[0] = 1


def _run(kernel, param, grad, states, scalars, flag) -> None:
    dtype = param.dtype
    if grad.ndim != 1:
        grad = grad.reshape(-1)
    if grad.dtype != dtype or not grad.flags.c_contiguous:
        grad = np.ascontiguousarray(grad, dtype=dtype)
    args = (param, grad, *states, flag, scalars)
    n = param.size
    if n >= PARALLEL_MIN_ELEMENTS:
        run_rows(kernel, n, n, *args, min_elements=PARALLEL_MIN_ELEMENTS)
    else:
        kernel(*args, 0, n)
