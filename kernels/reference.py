"""The book's nested loops for convolution and pooling (chapter 22), kept as the
executable specification of the fast kernels and as the benchmark baseline.

Everything here is plain Python loops over NumPy slices, written the way the
book's code blocks are written (sections 22.2.1, 22.3.1.1, 22.3.2.1, 22.3.3.1):
slow, obvious, and correct. The fast kernels in :mod:`kernels.conv2d` and
:mod:`kernels.pool2d` are tested against these functions.

Layouts (the book's):

* images are NHWC, ``(batch, height, width, channels)``;
* convolution kernels are ``(num_filters, input_channels, kh, kw)`` and biases
  ``(num_filters, 1)``;
* ``stride`` and ``padding`` are pairs ``(h, w)`` (ints are accepted);
  ``padding`` adds zeros on both sides; pooling has no padding.

Output size (the book's formula, integer division)::

    OH = (H + 2 ph - kh) // sh + 1,   OW = (W + 2 pw - kw) // sw + 1

Max pooling records, for every output element, the position of its maximum
inside the window as the window-local index ``i * pool_w + j`` (int32). Ties:
the *first* maximum in row-major window order wins, and only it receives the
gradient (the book's mask ``window == max`` would give the gradient to every
tied element, counting it twice). NaN is treated as larger than every number
(like ``np.argmax``), so NaN propagates.

Every function returns arrays of the input's dtype.
"""

from __future__ import annotations

import numpy as np

from .geometry import as_pair, conv2d_geometry, conv2d_output_size, pool_geometry  # noqa: F401 (re-exported)


def _pad(x, padding):
    ph, pw = padding
    return np.pad(x, ((0, 0), (ph, ph), (pw, pw), (0, 0)), mode="constant")


# --------------------------------------------------------------------------
# Convolution (book section 22.2.1)
# --------------------------------------------------------------------------
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


# --------------------------------------------------------------------------
# Max pooling (book section 22.3.1.1)
# --------------------------------------------------------------------------
def max_pool2d_forward(x, pool_size=(2, 2), stride=None):
    """Max pooling forward by the book's loops.

    Parameters
    ----------
    x : ndarray, shape (B, H, W, C)
    pool_size : int or (int, int)
    stride : int or (int, int) or None (None means ``pool_size``)

    Returns
    -------
    out : ndarray, shape (B, OH, OW, C)
        ``out[b, oh, ow, c] = max_{i, j} x[b, oh*sh + i, ow*sw + j, c]``
    argmax : ndarray of int32, shape (B, OH, OW, C)
        Window-local index ``i * pool_w + j`` of the first maximum.
    """
    ph, pw = as_pair(pool_size, "pool_size")
    sh, sw = as_pair(pool_size if stride is None else stride, "stride")
    batch, height, width, channels = x.shape
    oh_size, ow_size = conv2d_output_size((height, width), (ph, pw), (sh, sw), 0)
    out = np.zeros((batch, oh_size, ow_size, channels), dtype=x.dtype)
    argmax = np.zeros((batch, oh_size, ow_size, channels), dtype=np.int32)
    for b in range(batch):
        for c in range(channels):
            for h in range(oh_size):
                for w in range(ow_size):
                    hs, ws = h * sh, w * sw
                    window = x[b, hs:hs + ph, ws:ws + pw, c]
                    k = int(np.argmax(window))  # first maximum (or first NaN), row-major
                    argmax[b, h, w, c] = k
                    out[b, h, w, c] = window.flat[k]
    return out, argmax


def max_pool2d_backward(grad_output, argmax, input_shape, pool_size=(2, 2), stride=None):
    """Max pooling backward: each output gradient goes to its window's recorded maximum.

    ``dx[b, oh*sh + k // pw, ow*sw + k % pw, c] += g[b, oh, ow, c]`` with
    ``k = argmax[b, oh, ow, c]`` (``+=``: overlapping windows may share a maximum).
    Returns ``grad_input`` of shape ``input_shape``.
    """
    ph, pw = as_pair(pool_size, "pool_size")
    sh, sw = as_pair(pool_size if stride is None else stride, "stride")
    batch, oh_size, ow_size, channels = grad_output.shape
    grad_input = np.zeros(input_shape, dtype=grad_output.dtype)
    for b in range(batch):
        for c in range(channels):
            for h in range(oh_size):
                for w in range(ow_size):
                    k = int(argmax[b, h, w, c])
                    grad_input[b, h * sh + k // pw, w * sw + k % pw, c] += grad_output[b, h, w, c]
    return grad_input


# --------------------------------------------------------------------------
# Average pooling (book section 22.3.2.1)
# --------------------------------------------------------------------------
def avg_pool2d_forward(x, pool_size=(2, 2), stride=None):
    """Average pooling forward (the book's loops with ``np.mean``).

    ``out[b, oh, ow, c] = 1/(ph pw) Σ_{i, j} x[b, oh*sh + i, ow*sw + j, c]``;
    returns shape (B, OH, OW, C).
    """
    ph, pw = as_pair(pool_size, "pool_size")
    sh, sw = as_pair(pool_size if stride is None else stride, "stride")
    batch, height, width, channels = x.shape
    oh_size, ow_size = conv2d_output_size((height, width), (ph, pw), (sh, sw), 0)
    out = np.zeros((batch, oh_size, ow_size, channels), dtype=x.dtype)
    for b in range(batch):
        for c in range(channels):
            for h in range(oh_size):
                for w in range(ow_size):
                    hs, ws = h * sh, w * sw
                    out[b, h, w, c] = np.mean(x[b, hs:hs + ph, ws:ws + pw, c])
    return out


def avg_pool2d_backward(grad_output, input_shape, pool_size=(2, 2), stride=None):
    """Average pooling backward: ``dx[window] += g / (ph pw)`` for every window."""
    ph, pw = as_pair(pool_size, "pool_size")
    sh, sw = as_pair(pool_size if stride is None else stride, "stride")
    batch, oh_size, ow_size, channels = grad_output.shape
    grad_input = np.zeros(input_shape, dtype=grad_output.dtype)
    scale = 1.0 / (ph * pw)
    for b in range(batch):
        for c in range(channels):
            for h in range(oh_size):
                for w in range(ow_size):
                    hs, ws = h * sh, w * sw
                    grad_input[b, hs:hs + ph, ws:ws + pw, c] += grad_output[b, h, w, c] * scale
    return grad_input


# --------------------------------------------------------------------------
# Global average pooling (book section 22.3.3.1)
# --------------------------------------------------------------------------
def global_avg_pool2d_forward(x):
    """``out[b, 0, 0, c] = mean_{h, w} x[b, h, w, c]``; shape (B, 1, 1, C) as in the book."""
    return np.mean(x, axis=(1, 2), keepdims=True).astype(x.dtype, copy=False)


def global_avg_pool2d_backward(grad_output, input_shape):
    """``dx[b, h, w, c] = g[b, 0, 0, c] / (H W)`` (the book's ``ones * distributed_grad``)."""
    _, height, width, _ = input_shape
    distributed_grad = grad_output / (height * width)
    return np.ones(input_shape, dtype=grad_output.dtype) * distributed_grad
