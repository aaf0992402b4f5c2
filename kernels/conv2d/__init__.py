"""2-D convolution, NHWC, forward and backward (book section 22.2): one dispatcher per op.

Public API: :func:`conv2d_forward`, :func:`conv2d_backward_input`,
:func:`conv2d_backward_kernels`, :func:`conv2d_backward_bias`. Each sends NumPy
arrays to :mod:`kernels.conv2d.cpu` (Numba kernels) and CuPy arrays to
:mod:`kernels.conv2d.gpu` (cuDNN where it loads, else numba-cuda im2col +
cuBLAS); :mod:`kernels.conv2d.reference` holds the book's loops.

Layouts: inputs NHWC ``(B, H, W, C)``, kernels ``(F, C, kh, kw)``, biases
``(F, 1)``. The names of the CPU module (``im2col``, ``gemm_kf``,
``NUMBA_GEMM_MIN_MACS``, ...) stay readable here as ``kernels.conv2d.<name>``;
tune them on :mod:`kernels.conv2d.cpu`, where the kernels read them.
"""

from __future__ import annotations

from ..dispatch import flat_names, implementation
from . import cpu, reference

__all__ = [
    "conv2d_backward_bias",
    "conv2d_backward_input",
    "conv2d_backward_kernels",
    "conv2d_forward",
    "cpu",
    "reference",
]

__getattr__ = flat_names(__name__, cpu)


def conv2d_forward(x, kernels, biases, stride=1, padding=0):
    """Convolution forward (book section 22.2.1), NHWC.

    Parameters
    ----------
    x : array, shape (B, H, W, C)
    kernels : array, shape (F, C, kh, kw)
    biases : array, shape (F, 1)
    stride, padding : int or (int, int)
        Zero padding on both sides of the height and width.

    Returns
    -------
    array, shape (B, OH, OW, F), ``OH = (H + 2 ph - kh) // sh + 1``; dtype of ``x``.

    Formula::

        out[b, oh, ow, f] = Σ_{i, j, c} xpad[b, oh*sh + i, ow*sw + j, c] K[f, c, i, j] + bias[f]
    """
    return implementation(__name__, "conv2d_forward", x)(x, kernels, biases, stride, padding)


def conv2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0):
    """dE/dx of :func:`conv2d_forward`.

    Parameters
    ----------
    grad_output : array, shape (B, OH, OW, F)
    kernels : array, shape (F, C, kh, kw)
    input_shape : tuple (B, H, W, C)

    Returns
    -------
    array, shape (B, H, W, C)::

        dx[b, h, w, c] = Σ_{oh*sh + i - ph = h, ow*sw + j - pw = w} Σ_f g[b, oh, ow, f] K[f, c, i, j]
    """
    function = implementation(__name__, "conv2d_backward_input", grad_output)
    return function(grad_output, kernels, input_shape, stride, padding)


def conv2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0):
    """dE/dK of :func:`conv2d_forward`.

    Parameters
    ----------
    grad_output : array, shape (B, OH, OW, F)
    x : array, shape (B, H, W, C), the forward input
    kernel_shape : tuple (F, C, kh, kw)

    Returns
    -------
    array, shape (F, C, kh, kw)::

        dK[f, c, i, j] = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i, ow*sw + j, c]
    """
    function = implementation(__name__, "conv2d_backward_kernels", grad_output)
    return function(grad_output, x, kernel_shape, stride, padding)


def conv2d_backward_bias(grad_output):
    """dE/dbias of :func:`conv2d_forward`: ``db[f] = Σ_{b, oh, ow} g[b, oh, ow, f]``, shape (F, 1)."""
    return implementation(__name__, "conv2d_backward_bias", grad_output)(grad_output)
