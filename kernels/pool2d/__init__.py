"""2-D pooling, NHWC, forward and backward (book section 22.3): one dispatcher per op.

Max pooling (22.3.1), average pooling (22.3.2) and global average pooling
(22.3.3). Each dispatcher sends NumPy arrays to :mod:`kernels.pool2d.cpu`
(Numba kernels) and CuPy arrays to :mod:`kernels.pool2d.gpu` (numba-cuda
kernels; average pooling through cuDNN where it loads);
:mod:`kernels.pool2d.reference` holds the book's loops.

Windows have no padding; ``stride=None`` means ``stride = pool_size``; windows
may overlap and need not tile the input (rows and columns no window covers get
a zero gradient). Max pooling returns the window-local index of the first
maximum (int32, NaN wins) and its backward takes it. The names of the CPU
module stay readable here as ``kernels.pool2d.<name>``; tune them on
:mod:`kernels.pool2d.cpu`, where the kernels read them.
"""

from __future__ import annotations

import backend

from . import cpu, reference

__all__ = [
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "cpu",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "reference",
]


def __getattr__(name):
    """``kernels.pool2d.<name>`` for the names of :mod:`kernels.pool2d.cpu` (the flat module of 0.1)."""
    if not name.startswith("__") and hasattr(cpu, name):
        return getattr(cpu, name)
    if name == "gpu":
        import importlib

        return importlib.import_module(f"{__name__}.gpu")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _on(x, op: str):
    """``<op>_cpu`` of :mod:`.cpu` for NumPy arrays, ``<op>_gpu`` of :mod:`.gpu` for CuPy arrays."""
    if backend.is_cupy_array(x):
        from . import gpu

        return getattr(gpu, f"{op}_gpu")
    return getattr(cpu, f"{op}_cpu")


def max_pool2d_forward(x, pool_size=(2, 2), stride=None):
    """Max pooling forward (book section 22.3.1), NHWC.

    Parameters
    ----------
    x : array, shape (B, H, W, C)
    pool_size : int or (int, int)
    stride : int or (int, int) or None (``pool_size``)

    Returns
    -------
    out : array, shape (B, OH, OW, C), ``OH = (H - ph) // sh + 1``; dtype of ``x``
        ``out[b, oh, ow, c] = max_{i < ph, j < pw} x[b, oh*sh + i, ow*sw + j, c]``
    argmax : int32 array, shape (B, OH, OW, C)
        Window-local index ``i * pw + j`` of the first maximum (row-major; NaN wins).
    """
    return _on(x, "max_pool2d_forward")(x, pool_size, stride)


def max_pool2d_backward(grad_output, argmax, input_shape, pool_size=(2, 2), stride=None):
    """Max pooling backward: the gradient goes to each window's recorded maximum.

    ``dx[b, h, w, c] = Σ_{windows (oh, ow) with argmax at (h, w)} g[b, oh, ow, c]``;
    returns shape ``input_shape``, dtype of ``grad_output``.
    """
    return _on(grad_output, "max_pool2d_backward")(grad_output, argmax, input_shape, pool_size, stride)


def avg_pool2d_forward(x, pool_size=(2, 2), stride=None):
    """Average pooling forward (book section 22.3.2), NHWC.

    ``out[b, oh, ow, c] = 1/(ph pw) Σ_{i, j} x[b, oh*sh + i, ow*sw + j, c]``,
    shape (B, OH, OW, C), ``OH = (H - ph) // sh + 1``.
    """
    return _on(x, "avg_pool2d_forward")(x, pool_size, stride)


def avg_pool2d_backward(grad_output, input_shape, pool_size=(2, 2), stride=None):
    """Average pooling backward: ``dx[b, h, w, c] = Σ_{windows ∋ (h, w)} g[b, oh, ow, c] / (ph pw)``."""
    return _on(grad_output, "avg_pool2d_backward")(grad_output, input_shape, pool_size, stride)


def global_avg_pool2d_forward(x):
    """Global average pooling (book section 22.3.3): (B, H, W, C) -> (B, 1, 1, C), the mean over H and W."""
    return _on(x, "global_avg_pool2d_forward")(x)


def global_avg_pool2d_backward(grad_output, input_shape):
    """Global average pooling backward: ``dx[b, h, w, c] = g[b, 0, 0, c] / (H W)``."""
    return _on(grad_output, "global_avg_pool2d_backward")(grad_output, input_shape)
