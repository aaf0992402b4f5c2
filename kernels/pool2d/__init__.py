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

from ..dispatch import flat_names, implementation
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

__getattr__ = flat_names(__name__, cpu)


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
    return implementation(__name__, "max_pool2d_forward", x)(x, pool_size, stride)


def max_pool2d_backward(grad_output, argmax, input_shape, pool_size=(2, 2), stride=None):
    """Max pooling backward: the gradient goes to each window's recorded maximum.

    ``dx[b, h, w, c] = Σ_{windows (oh, ow) with argmax at (h, w)} g[b, oh, ow, c]``;
    returns shape ``input_shape``, dtype of ``grad_output``.
    """
    function = implementation(__name__, "max_pool2d_backward", grad_output)
    return function(grad_output, argmax, input_shape, pool_size, stride)


def avg_pool2d_forward(x, pool_size=(2, 2), stride=None):
    """Average pooling forward (book section 22.3.2), NHWC.

    ``out[b, oh, ow, c] = 1/(ph pw) Σ_{i, j} x[b, oh*sh + i, ow*sw + j, c]``,
    shape (B, OH, OW, C), ``OH = (H - ph) // sh + 1``.
    """
    return implementation(__name__, "avg_pool2d_forward", x)(x, pool_size, stride)


def avg_pool2d_backward(grad_output, input_shape, pool_size=(2, 2), stride=None):
    """Average pooling backward: ``dx[b, h, w, c] = Σ_{windows ∋ (h, w)} g[b, oh, ow, c] / (ph pw)``."""
    return implementation(__name__, "avg_pool2d_backward", grad_output)(grad_output, input_shape, pool_size, stride)


def global_avg_pool2d_forward(x):
    """Global average pooling (book section 22.3.3): (B, H, W, C) -> (B, 1, 1, C), the mean over H and W."""
    return implementation(__name__, "global_avg_pool2d_forward", x)(x)


def global_avg_pool2d_backward(grad_output, input_shape):
    """Global average pooling backward: ``dx[b, h, w, c] = g[b, 0, 0, c] / (H W)``."""
    return implementation(__name__, "global_avg_pool2d_backward", grad_output)(grad_output, input_shape)
