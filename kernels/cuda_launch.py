"""Launching numba-cuda kernels on CuPy arrays, shared by the convolution and pooling GPU code.

* :func:`numba_cuda` binds ``numba.cuda`` on first use: importing this module
  needs neither CUDA nor CuPy (under ``NUMBA_ENABLE_CUDASIM=1`` it is Numba's
  simulator, which runs the kernels as Python on NumPy arrays).
* :func:`launch` runs a grid-stride kernel on CuPy's current stream;
  :func:`run_step` does that, or runs the same step as array operations when
  numba-cuda cannot compile (no libNVVM), logging the cause once.
* :func:`device_functions`: the index arithmetic of the kernels
  (``unravel_nhwc``, ``windows_covering``) as ``@cuda.jit(device=True)`` helpers.
* :func:`windows_view`: the strided window view the array-operation fallbacks use.

Kernels are written against ``xp = backend.get_array_module(x)``, so the same
launch code runs CuPy arrays on a GPU and NumPy arrays under the simulator.
"""

from __future__ import annotations

import functools
import logging
import math
import types

import backend

#: Threads per block of every numba-cuda kernel.
THREADS_PER_BLOCK = 256
#: Largest grid (blocks); kernels use grid-stride loops beyond it.
MAX_BLOCKS = 65535
#: Use the numba-cuda kernels when they compile (True), or always the array-operation path (False).
PREFER_NUMBA_CUDA = True

_logger = logging.getLogger(__name__)
_numba_cuda_error = None  # why the numba-cuda kernels are unusable in this process, once known

#: ``numba.cuda``, bound on first use by :func:`numba_cuda`.
cuda = None


def numba_cuda():
    """``numba.cuda`` (imported on the first call; the simulator's module under ``NUMBA_ENABLE_CUDASIM=1``)."""
    global cuda
    if cuda is None:
        import numpy

        if not hasattr(numpy, "row_stack"):  # removed in NumPy 2.5; numba-cuda 0.30 still calls it (device run)
            numpy.row_stack = numpy.vstack
        from numba import cuda as module

        cuda = module
    return cuda


def grid(n_items: int) -> tuple[int, int]:
    """``(blocks, threads)`` of a grid-stride launch over ``n_items`` (> 0) items."""
    threads = min(THREADS_PER_BLOCK, n_items)
    return min(MAX_BLOCKS, math.ceil(n_items / threads)), threads


def launch(kernel, n_items, *args):
    """Run ``kernel`` over ``n_items`` grid-stride items on CuPy's current stream.

    CuPy arrays are wrapped with ``cuda.from_cuda_array_interface(sync=False)``
    (no copy, no synchronisation; the kernel is queued on CuPy's stream, so it
    is ordered with CuPy's own work). NumPy arrays (simulator) pass unchanged.
    """
    if n_items <= 0:
        return
    cuda_module = numba_cuda()
    blocks, threads = grid(n_items)
    if not any(backend.is_cupy_array(a) for a in args):
        kernel[blocks, threads](*args)
        return
    import cupy

    wrapped = [
        cuda_module.from_cuda_array_interface(a.__cuda_array_interface__, owner=a, sync=False)
        if backend.is_cupy_array(a) else a
        for a in args
    ]
    pointer = cupy.cuda.get_current_stream().ptr
    stream = cuda_module.external_stream(pointer) if pointer else cuda_module.default_stream()
    kernel[blocks, threads, stream](*wrapped)


def run_step(kernels, name, n_items, args, fallback):
    """Launch the numba-cuda kernel ``name`` of ``kernels()``, or call ``fallback(*args)``.

    Parameters
    ----------
    kernels : callable
        Returns the namespace of compiled-on-first-use kernels (``cuda_kernels``
        of :mod:`kernels.conv2d.gpu` or :mod:`kernels.pool2d.gpu`).
    name : str
        The kernel's attribute in that namespace.
    n_items : int
        Grid-stride items (one per element the kernel writes).
    args : tuple
        The kernel's arguments; the fallback takes the same ones.
    fallback : callable
        The same step as CuPy/NumPy array operations. It runs when
        :data:`PREFER_NUMBA_CUDA` is False or a numba-cuda kernel already failed
        to compile or launch in this process (the first failure is logged as a
        warning with its cause).
    """
    global _numba_cuda_error
    if PREFER_NUMBA_CUDA and _numba_cuda_error is None:
        try:
            launch(getattr(kernels(), name), n_items, *args)
            return
        except Exception as exc:  # no libNVVM, unsupported driver, ...: keep working without numba-cuda
            _numba_cuda_error = f"{type(exc).__name__}: {exc}"
            _logger.warning(
                "numba-cuda kernels unavailable (%s); using CuPy array operations instead "
                "(pip install 'numba-cuda[cu12]' or 'numba-cuda[cu13]' provides the CUDA compiler)",
                _numba_cuda_error,
            )
    fallback(*args)


def numba_cuda_error():
    """Why the numba-cuda kernels are not used in this process, or None."""
    return _numba_cuda_error


def windows_view(xp, padded, out_h, out_w, kh, kw, sh, sw, dh=1, dw=1):
    """Read-only strided view ``(B, OH, OW, kh, kw, C)`` of the (dilated) windows of an NHWC array."""
    sb, sy, sx, sc = padded.strides
    return xp.lib.stride_tricks.as_strided(
        padded, shape=(padded.shape[0], out_h, out_w, kh, kw, padded.shape[3]),
        strides=(sb, sy * sh, sx * sw, sy * dh, sx * dw, sc))


@functools.lru_cache(maxsize=None)
def device_functions():
    """The device helpers of the kernels, compiled on first use (book sections 22.2, 22.3).

    Returns
    -------
    types.SimpleNamespace
        ``unravel_nhwc(t, H, W, C) -> (b, h, w, c)``: the position of flat
        index ``t = ((b H + h) W + w) C + c`` in a C-contiguous ``(B, H, W, C)``
        array (``b`` unbounded: the caller's grid-stride loop bounds it).

        ``windows_covering(i, size, stride, n_out) -> (lo, hi)``: the outputs
        ``lo <= o < hi`` whose window ``[o stride, o stride + size)`` contains
        input position ``i`` (unpadded)::

            lo = 0 if i < size else (i - size) // stride + 1,   hi = min(n_out, i // stride + 1)

        ``tap_output(i, padding, offset, stride, n_out) -> o``: the output
        whose tap at ``offset`` (``i_tap * dilation``) reads input position
        ``i``, ``o stride + offset - padding = i``, or -1 when there is none
        (the convolutions' gathers).

        All are ``@cuda.jit(device=True)``: callable only inside kernels.
    """
    cuda_module = numba_cuda()

    @cuda_module.jit(device=True)
    def unravel_nhwc(t, height, width, channels):
        c = t % channels
        rest = t // channels
        w = rest % width
        rest = rest // width
        h = rest % height
        b = rest // height
        return b, h, w, c

    @cuda_module.jit(device=True)
    def windows_covering(i, size, stride, n_out):
        lo = 0 if i < size else (i - size) // stride + 1
        hi = min(n_out, i // stride + 1)
        return lo, hi

    @cuda_module.jit(device=True)
    def tap_output(i, padding, offset, stride, n_out):
        t = i + padding - offset
        if t < 0 or t % stride != 0 or t // stride >= n_out:
            return -1
        return t // stride

    return types.SimpleNamespace(unravel_nhwc=unravel_nhwc, windows_covering=windows_covering,
                                 tap_output=tap_output)
