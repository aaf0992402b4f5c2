"""Depthwise convolution by the book's loops (section 22.2.1's code, one channel at a time): the specification.

Each input channel ``c`` is convolved with its own ``depth_multiplier = M``
kernels, giving output channels ``c M + m`` (MobileNet, Xception: section
22.9.6). Layouts: images NHWC ``(B, H, W, C)``; kernels ``(C M, 1, kh, kw)``
(PyTorch's and ONNX's grouped layout with ``groups = C``); biases ``(C M, 1)``
or None; ``stride``, ``padding`` (symmetric) and ``dilation`` are ``(h, w)``
pairs. Slow, obvious and correct: the fast kernels (:mod:`kernels.depthwise2d.cpu`,
:mod:`kernels.depthwise2d.gpu`) are tested against these functions and the
benchmark measures how far they are from them.
"""

from __future__ import annotations

import numpy as np

from ..geometry import as_pair, conv2d_output_size


def _pad(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="constant")


def _window(a, b, hs, ws, kh, kw, dilation, c):
    dh, dw = dilation
    return a[b, hs:hs + dh * (kh - 1) + 1:dh, ws:ws + dw * (kw - 1) + 1:dw, c]


def _geometry(shape, kernel_shape, stride, padding, dilation):
    stride, padding, dilation = as_pair(stride, "stride", 1), as_pair(padding, "padding"), as_pair(dilation,
                                                                                                    "dilation", 1)
    out_hw = conv2d_output_size(shape[1:3], kernel_shape[2:], stride, padding, dilation)
    return stride, padding, dilation, out_hw


def depthwise2d_forward(x, kernels, biases=None, stride=1, padding=0, dilation=1):
    """Depthwise convolution forward by loops.

    Parameters
    ----------
    x : ndarray, shape (B, H, W, C)
    kernels : ndarray, shape (C M, 1, kh, kw)
    biases : ndarray, shape (C M, 1), or None
    stride, padding, dilation : int or (int, int)

    Returns
    -------
    out : ndarray, shape (B, OH, OW, C M)::

        out[b, oh, ow, c M + m] = Σ_{i, j} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] K[c M + m, 0, i, j] + bias[c M + m]
    """
    (sh, sw), padding, dilation, (oh_size, ow_size) = _geometry(x.shape, kernels.shape, stride, padding, dilation)
    batch, channels = x.shape[0], x.shape[3]
    filters, _, kh, kw = kernels.shape
    mult = filters // channels
    x_padded = _pad(x, padding)
    out = np.zeros((batch, oh_size, ow_size, filters), dtype=x.dtype)
    for b in range(batch):
        for f in range(filters):
            for h in range(oh_size):
                for w in range(ow_size):
                    window = _window(x_padded, b, h * sh, w * sw, kh, kw, dilation, f // mult)
                    out[b, h, w, f] = np.sum(window * kernels[f, 0]) + (0 if biases is None else biases[f, 0])
    return out


def depthwise2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1):
    """dE/dx of the depthwise convolution: ``dxpad[b, oh*sh + i*dh, ow*sw + j*dw, c] += g[b, oh, ow, f] K[f, 0, i, j]``
    for the ``M`` filters ``f`` of channel ``c``; returns shape ``input_shape``."""
    (sh, sw), (ph, pw), dilation, _ = _geometry(input_shape, kernels.shape, stride, padding, dilation)
    batch, height, width, channels = input_shape
    filters, _, kh, kw = kernels.shape
    mult = filters // channels
    _, oh_size, ow_size, _ = grad_output.shape
    grad_padded = np.zeros((batch, height + 2 * ph, width + 2 * pw, channels), dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            for h in range(oh_size):
                for w in range(ow_size):
                    window = _window(grad_padded, b, h * sh, w * sw, kh, kw, dilation, f // mult)
                    window += kernels[f, 0] * grad_output[b, h, w, f]  # a view: adds into grad_padded
    return np.ascontiguousarray(grad_padded[:, ph:ph + height, pw:pw + width, :])


def depthwise2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1):
    """dE/dK of the depthwise convolution: ``dK[f, 0, i, j] = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i*dh,
    ow*sw + j*dw, f // M]``; returns shape ``kernel_shape``."""
    (sh, sw), padding, dilation, _ = _geometry(x.shape, kernel_shape, stride, padding, dilation)
    filters, _, kh, kw = kernel_shape
    mult = filters // x.shape[3]
    batch, oh_size, ow_size, _ = grad_output.shape
    x_padded = _pad(x, padding)
    grad_kernels = np.zeros(kernel_shape, dtype=grad_output.dtype)
    for b in range(batch):
        for f in range(filters):
            for h in range(oh_size):
                for w in range(ow_size):
                    window = _window(x_padded, b, h * sh, w * sw, kh, kw, dilation, f // mult)
                    grad_kernels[f, 0] += window * grad_output[b, h, w, f]
    return grad_kernels
