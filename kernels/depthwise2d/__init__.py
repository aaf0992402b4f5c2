"""Depthwise 2-D convolution, NHWC, forward and backward (Xception and MobileNet, book section 22.9.6).

Each input channel is convolved with its own ``M`` kernels (the depth
multiplier): a grouped convolution with ``groups = C``, run by kernels of its
own instead of ``C`` tiny matrix products. Each dispatcher sends NumPy arrays
to :mod:`kernels.depthwise2d.cpu` (Numba) and CuPy arrays to
:mod:`kernels.depthwise2d.gpu` (cuDNN where it loads, else numba-cuda);
:mod:`kernels.depthwise2d.reference` holds the loops.

Layouts: inputs ``(B, H, W, C)``; kernels ``(C M, 1, kh, kw)`` (output channel
``c M + m`` belongs to input channel ``c``); biases ``(C M, 1)`` or None.
``padding`` is an int, a pair, ``"valid"`` or ``"same"`` (:mod:`kernels.geometry`).
"""

from __future__ import annotations

from backend.checks import check_positive_int

from ..conv2d import crop_after, pad_after
from ..dispatch import implementation
from ..geometry import as_pair, split_padding
from . import cpu, reference

__all__ = ["cpu", "depthwise2d_backward_input", "depthwise2d_backward_kernels", "depthwise2d_forward", "reference"]


def _layout(input_shape, kernel_shape, stride, padding, dilation):
    filters, one, kh, kw = (int(s) for s in kernel_shape)
    channels = int(input_shape[3])
    if one != 1 or filters % channels:
        raise ValueError(f"depthwise2d: kernels: expected shape (C M, 1, kh, kw) with C = {channels} input channels, "
                         f"got {tuple(kernel_shape)}")
    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    check_positive_int(filters // channels, "depth_multiplier")
    symmetric, extra = split_padding(padding, tuple(input_shape[1:3]), (kh, kw), stride, dilation)
    return stride, symmetric, extra, dilation


def depthwise2d_forward(x, kernels, biases=None, stride=1, padding=0, dilation=1):
    """Depthwise convolution forward.

    Parameters
    ----------
    x : array, shape (B, H, W, C)
    kernels : array, shape (C M, 1, kh, kw)
    biases : array, shape (C M, 1), or None (no bias)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"

    Returns
    -------
    array, shape (B, OH, OW, C M), dtype of ``x``::

        out[b, oh, ow, c M + m] = Σ_{i, j} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] K[c M + m, 0, i, j] + bias[c M + m]
    """
    stride, symmetric, extra, dilation = _layout(x.shape, kernels.shape, stride, padding, dilation)
    function = implementation(__name__, "depthwise2d_forward", x)
    return function(pad_after(x, extra), kernels, biases, stride, symmetric, dilation)


def depthwise2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1):
    """dE/dx of :func:`depthwise2d_forward`, shape ``input_shape``::

        dx[b, h, w, c] = Σ_m Σ_{oh*sh + i*dh - ph = h, ow*sw + j*dw - pw = w} g[b, oh, ow, c M + m] K[c M + m, 0, i, j]
    """
    input_shape = tuple(int(s) for s in input_shape)
    stride, symmetric, extra, dilation = _layout(input_shape, kernels.shape, stride, padding, dilation)
    padded = (input_shape[0], input_shape[1] + extra[0], input_shape[2] + extra[1], input_shape[3])
    function = implementation(__name__, "depthwise2d_backward_input", grad_output)
    return crop_after(function(grad_output, kernels, padded, stride, symmetric, dilation), extra)


def depthwise2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1):
    """dE/dK of :func:`depthwise2d_forward`, shape ``kernel_shape`` = (C M, 1, kh, kw)::

        dK[f, 0, i, j] = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i*dh, ow*sw + j*dw, f // M]

    The bias gradient is :func:`kernels.conv2d.conv2d_backward_bias`.
    """
    kernel_shape = tuple(int(s) for s in kernel_shape)
    stride, symmetric, extra, dilation = _layout(x.shape, kernel_shape, stride, padding, dilation)
    function = implementation(__name__, "depthwise2d_backward_kernels", grad_output)
    return function(grad_output, pad_after(x, extra), kernel_shape, stride, symmetric, dilation)
