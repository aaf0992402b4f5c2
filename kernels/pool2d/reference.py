"""The book's nested loops for pooling (sections 22.3.1.1, 22.3.2.1, 22.3.3.1): the executable specification.

Plain Python loops over NumPy slices, as in the book's code blocks; the fast
kernels (:mod:`kernels.pool2d.cpu`, :mod:`kernels.pool2d.gpu`) are tested
against them and fall back to them for dtypes they do not handle.

Pooling windows have no padding; ``stride=None`` means ``stride = pool_size``.
Max pooling records, for every output element, the window-local index
``i * pool_w + j`` (int32) of its maximum. Ties: the *first* maximum in
row-major window order wins and alone receives the gradient (the book's mask
``window == max`` would give it to every tied element, counting it twice).
NaN counts as larger than every number (as in ``np.argmax``), so NaN propagates.

Every function returns arrays of the input's dtype (argmax: int32).
"""

from __future__ import annotations

import numpy as np

from ..geometry import as_pair, conv2d_output_size


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
