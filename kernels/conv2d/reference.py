"""The book's nested loops for convolution (section 22.2.1): the executable specification.

Plain Python loops over NumPy slices, written the way the book's code blocks
are: slow, obvious and correct. The fast kernels (:mod:`kernels.conv2d.cpu`,
:mod:`kernels.conv2d.gpu`) are tested against these functions, and they are
the fallback for dtypes the fast kernels do not handle.

Layouts (the book's): images NHWC ``(batch, height, width, channels)``;
kernels ``(num_filters, input_channels // groups, kh, kw)``; biases
``(num_filters, 1)``; ``stride``, ``padding`` and ``dilation`` are ``(h, w)``
pairs (ints accepted), ``padding`` adds zeros on both sides. A dilation ``d``
spaces the kernel's taps ``d`` pixels apart; ``groups`` splits the channels
into groups convolved separately (filter ``f`` sees the input channels of its
group, ``f // (F / groups)``). Output size (integer division)::

    OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1

Every function returns arrays of the input's dtype.
"""

from __future__ import annotations

import numpy as np

from ..geometry import as_pair, conv2d_output_size


def _pad(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="constant")


def _window(a, b, hs, ws, kh, kw, dilation, channels):
    """``a[b, hs + i dh, ws + j dw, channels]`` for every tap ``(i, j)``: shape (kh, kw, len(channels))."""
    dh, dw = dilation
    return a[b, hs:hs + dh * (kh - 1) + 1:dh, ws:ws + dw * (kw - 1) + 1:dw, channels]


def _group_channels(f, filters, channels_per_group, groups):
    """The slice of input channels filter ``f`` sees."""
    g = f // (filters // groups)
    return slice(g * channels_per_group, (g + 1) * channels_per_group)


def conv2d_forward(x, kernels, biases, stride=1, padding=0, dilation=1, groups=1):
    """Convolution forward by the book's four loops.

    Parameters
    ----------
    x : ndarray, shape (B, H, W, C)
    kernels : ndarray, shape (F, C // groups, kh, kw)
    biases : ndarray, shape (F, 1)
    stride, padding, dilation : int or (int, int)
    groups : int

    Returns
    -------
    out : ndarray, shape (B, OH, OW, F)

    Formula (cross-correlation, as in every deep-learning library; ``c`` runs over the group of ``f``)::

        out[b, oh, ow, f] = Σ_{i, j, c} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] * K[f, c, i, j] + bias[f]
    """
    stride, padding = as_pair(stride, "stride"), as_pair(padding, "padding")
    dilation = as_pair(dilation, "dilation", 1)
    batch, height, width, _ = x.shape
    filters, cg, kh, kw = kernels.shape
    sh, sw = stride
    oh_size, ow_size = conv2d_output_size((height, width), (kh, kw), stride, padding, dilation)
    x_padded = _pad(x, padding)
    out = np.zeros((batch, oh_size, ow_size, filters), dtype=x.dtype)
    for b in range(batch):
        for f in range(filters):
            kernel = kernels[f].transpose(1, 2, 0)  # (kh, kw, C), the window's layout
            channels = _group_channels(f, filters, cg, groups)
            for h in range(oh_size):
                for w in range(ow_size):
                    window = _window(x_padded, b, h * sh, w * sw, kh, kw, dilation, channels)
                    out[b, h, w, f] = np.sum(window * kernel) + biases[f, 0]
    return out


def conv2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dx of the convolution: every output gradient is spread back over its window.

    Parameters
    ----------
    grad_output : ndarray, shape (B, OH, OW, F)
    kernels : ndarray, shape (F, C // groups, kh, kw)
    input_shape : tuple (B, H, W, C)

    Returns
    -------
    grad_input : ndarray, shape (B, H, W, C)

    Formula::

        dxpad[b, oh*sh + i*dh, ow*sw + j*dw, c] += g[b, oh, ow, f] * K[f, c, i, j]

    then the padding rows/columns are cropped.
    """
    stride, padding = as_pair(stride, "stride"), as_pair(padding, "padding")
    dilation = as_pair(dilation, "dilation", 1)
    batch, height, width, channels = input_shape
    filters, cg, kh, kw = kernels.shape
    sh, sw = stride
    ph, pw = padding
    _, oh_size, ow_size, _ = grad_output.shape
    grad_padded = np.zeros((batch, height + 2 * ph, width + 2 * pw, channels), dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            kernel = kernels[f].transpose(1, 2, 0)
            channels_f = _group_channels(f, filters, cg, groups)
            for h in range(oh_size):
                for w in range(ow_size):
                    window = _window(grad_padded, b, h * sh, w * sw, kh, kw, dilation, channels_f)
                    window += kernel * grad_output[b, h, w, f]  # a view: adds into grad_padded
    return np.ascontiguousarray(grad_padded[:, ph:ph + height, pw:pw + width, :])


def conv2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dK of the convolution.

    Parameters
    ----------
    grad_output : ndarray, shape (B, OH, OW, F)
    x : ndarray, shape (B, H, W, C), the forward input
    kernel_shape : tuple (F, C // groups, kh, kw)

    Returns
    -------
    grad_kernels : ndarray, shape (F, C // groups, kh, kw)

    Formula::

        dK[f, c, i, j] = Σ_{b, oh, ow} g[b, oh, ow, f] * xpad[b, oh*sh + i*dh, ow*sw + j*dw, c]
    """
    stride, padding = as_pair(stride, "stride"), as_pair(padding, "padding")
    dilation = as_pair(dilation, "dilation", 1)
    filters, cg, kh, kw = kernel_shape
    sh, sw = stride
    batch, oh_size, ow_size, _ = grad_output.shape
    x_padded = _pad(x, padding)
    grad_kernels = np.zeros(kernel_shape, dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            channels = _group_channels(f, filters, cg, groups)
            for h in range(oh_size):
                for w in range(ow_size):
                    window = _window(x_padded, b, h * sh, w * sw, kh, kw, dilation, channels)
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
