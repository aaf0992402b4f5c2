"""Index arithmetic shared by the numba-cuda kernels (book sections 22.2 and 22.3).

Two ``@cuda.jit(device=True)`` helpers, inlined by Numba into the kernels of
:mod:`kernels.conv2d_gpu` and :mod:`kernels.pool2d_gpu` that call them:

* ``unravel_nhwc(t, height, width, channels) -> (b, h, w, c)``: the position of
  flat index ``t`` in a C-contiguous array of shape ``(B, H, W, C)``::

      t = ((b * H + h) * W + w) * C + c,   0 <= h < H, 0 <= w < W, 0 <= c < C

  (``b = t // (H*W*C)`` is not bounded: the caller's grid-stride loop is).
* ``windows_covering(i, size, stride, n_out) -> (lo, hi)``: the outputs
  ``o`` in ``[lo, hi)`` whose window ``[o*stride, o*stride + size)`` contains
  input position ``i`` (unpadded, as in pooling)::

      lo = 0 if i < size else (i - size) // stride + 1
      hi = min(n_out, i // stride + 1)

  The range is empty (``lo >= hi``) when no window covers ``i``.

Like the kernels, the helpers are compiled on first use:
:func:`device_functions` imports ``numba.cuda`` when first called, so
importing this module needs neither CUDA nor CuPy. Under Numba's CUDA
simulator (``NUMBA_ENABLE_CUDASIM=1``) they run as plain Python.
"""

from __future__ import annotations

import functools
import types


@functools.lru_cache(maxsize=None)
def device_functions():
    """Compile-on-first-use namespace of the device helpers (``unravel_nhwc``, ``windows_covering``).

    Returns
    -------
    types.SimpleNamespace
        ``unravel_nhwc`` and ``windows_covering``, numba-cuda device functions
        (callable only from inside ``@cuda.jit`` kernels); see the module
        docstring for their formulas.
    """
    from numba import cuda

    @cuda.jit(device=True)
    def unravel_nhwc(t, height, width, channels):
        c = t % channels
        rest = t // channels
        w = rest % width
        rest = rest // width
        h = rest % height
        b = rest // height
        return b, h, w, c

    @cuda.jit(device=True)
    def windows_covering(i, size, stride, n_out):
        lo = 0 if i < size else (i - size) // stride + 1
        hi = min(n_out, i // stride + 1)
        return lo, hi

    return types.SimpleNamespace(unravel_nhwc=unravel_nhwc, windows_covering=windows_covering)
