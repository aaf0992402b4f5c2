"""The book's nested loops for convolution (section 22.2.1): the executable specification.

Plain Python loops over NumPy slices, written the way the book's code blocks
are: slow, obvious and correct. The fast kernels (:mod:`kernels.conv2d.cpu`,
:mod:`kernels.conv2d.gpu`) are tested against these functions, and they are
the fallback for dtypes the fast kernels do not handle.

Layouts (the book's): images NHWC ``(batch, height, width, channels)``;
kernels ``(num_filters, input_channels, kh, kw)``; biases ``(num_filters, 1)``;
``stride`` and ``padding`` are ``(h, w)`` pairs (ints accepted), ``padding``
adds zeros on both sides. Output size (integer division)::

    OH = (H + 2 ph - kh) // sh + 1,   OW = (W + 2 pw - kw) // sw + 1

Every function returns arrays of the input's dtype.
"""

from __future__ import annotations

import numpy as np

from ..geometry import as_pair, conv2d_output_size


def _pad(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="constant")


def conv2d_forward(x, kernels, biases, stride=1, padding=0):
    """Convolution forward by the book's four loops.

    Parameters
    ----------
    x : ndarray, shape (B, H, W, C)
    kernels : ndarray, shape (F, C, kh, kw)
    biases : ndarray, shape (F, 1)
    stride, padding : int or (int, int)

    Returns
    -------
    out : ndarray, shape (B, OH, OW, F)

    Formula (cross-correlation, as in every deep-learning library)::

        out[b, oh, ow, f] = Σ_{i, j, c} xpad[b, oh*sh + i, ow*sw + j, c] * K[f, c, i, j] + bias[f]
    """
    stride, padding = as_pair(stride, "stride"), as_pair(padding, "padding")
    batch, height, width, _ = x.shape
    filters, _, kh, kw = kernels.shape
    sh, sw = stride
    oh_size, ow_size = conv2d_output_size((height, width), (kh, kw), stride, padding)
    x_padded = _pad(x, padding)
    out = np.zeros((batch, oh_size, ow_size, filters), dtype=x.dtype)
    for b in range(batch):
        for f in range(filters):
            kernel = kernels[f].transpose(1, 2, 0)  # (kh, kw, C), the window's layout
            for h in range(oh_size):
                for w in range(ow_size):
                    hs, ws = h * sh, w * sw
                    window = x_padded[b, hs:hs + kh, ws:ws + kw, :]
                    out[b, h, w, f] = np.sum(window * kernel) + biases[f, 0]
    return out


def conv2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0):
    """dE/dx of the convolution: every output gradient is spread back over its window.

    Parameters
    ----------
    grad_output : ndarray, shape (B, OH, OW, F)
    kernels : ndarray, shape (F, C, kh, kw)
    input_shape : tuple (B, H, W, C)

    Returns
    -------
    grad_input : ndarray, shape (B, H, W, C)

    Formula::

        dxpad[b, oh*sh + i, ow*sw + j, c] += g[b, oh, ow, f] * K[f, c, i, j]

    then the padding rows/columns are cropped.
    """
    stride, padding = as_pair(stride, "stride"), as_pair(padding, "padding")
    batch, height, width, channels = input_shape
    filters, _, kh, kw = kernels.shape
    sh, sw = stride
    ph, pw = padding
    _, oh_size, ow_size, _ = grad_output.shape
    grad_padded = np.zeros((batch, height + 2 * ph, width + 2 * pw, channels), dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            kernel = kernels[f].transpose(1, 2, 0)
            for h in range(oh_size):
                for w in range(ow_size):
                    hs, ws = h * sh, w * sw
                    grad_padded[b, hs:hs + kh, ws:ws + kw, :] += kernel * grad_output[b, h, w, f]
    return np.ascontiguousarray(grad_padded[:, ph:ph + height, pw:pw + width, :])


def conv2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0):
    """dE/dK of the convolution.

    Parameters
    ----------
    grad_output : ndarray, shape (B, OH, OW, F)
    x : ndarray, shape (B, H, W, C), the forward input
    kernel_shape : tuple (F, C, kh, kw)

    Returns
    -------
    grad_kernels : ndarray, shape (F, C, kh, kw)

    Formula::

        dK[f, c, i, j] = Σ_{b, oh, ow} g[b, oh, ow, f] * xpad[b, oh*sh + i, ow*sw + j, c]
    """
    stride, padding = as_pair(stride, "stride"), as_pair(padding, "padding")
    filters, channels, kh, kw = kernel_shape
    sh, sw = stride
    batch, oh_size, ow_size, _ = grad_output.shape
    x_padded = _pad(x, padding)
    grad_kernels = np.zeros(kernel_shape, dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            for h in range(oh_size):
                for w in range(ow_size):
                    hs, ws = h * sh, w * sw
                    window = x_padded[b, hs:hs + kh, ws:ws + kw, :]
                    grad_kernels[f] += window.transpose(2, 0, 1) * grad_output[b, h, w, f]
    return grad_kernels


def conv2d_backward_bias(grad_output):
    """dE/dbias: ``db[f] = Σ_{b, oh, ow} g[b, oh, ow, f]``; returns shape (F, 1)."""
    batch, oh_size, ow_size, filters = grad_output.shape
    grad_biases = np.zeros((filters, 1), dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            for h in range(oh_size):
                for w in range(ow_size):
                    grad_biases[f, 0] += grad_output[b, h, w, f]
    return grad_biases
