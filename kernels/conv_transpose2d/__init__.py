"""Transposed 2-D convolution, NHWC (the upsampling layers of fully convolutional networks, book section 22.7).

The transposed convolution is the adjoint of the convolution: its forward is
the convolution's input gradient, its input gradient is the convolution's
forward, and its kernel gradient is the convolution's with the roles of
input and output gradient swapped. So it runs on :mod:`kernels.conv2d`'s fast
paths (Numba on the CPU, cuDNN or numba-cuda + cuBLAS on the GPU) with no
kernels of its own; :mod:`kernels.conv_transpose2d.reference` keeps the loops
(each input pixel scatters a scaled copy of the kernel) as the specification.

Layouts: inputs ``(B, H, W, C_in)``; kernels ``(C_in, C_out / groups, kh, kw)``
(PyTorch's ``ConvTranspose2d`` and ONNX's ``ConvTranspose`` layout); biases
``(C_out, 1)``. Output size, for an integer ``padding``::

    OH = (H - 1) sh - 2 ph + dh (kh - 1) + 1 + oph        (0 <= oph < sh: output_padding)

and ``OH = H sh`` for ``padding="same"`` (TensorFlow's ``Conv2DTranspose``).
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_positive_int

from .. import conv2d
from ..geometry import as_pair, check_padding
from ..normalization.cpu import wide_rows
from . import reference

__all__ = ["conv_transpose2d_backward_input", "conv_transpose2d_backward_kernels", "conv_transpose2d_forward",
           "conv_transpose2d_output_size", "reference"]


def conv_transpose2d_output_size(input_hw, kernel_hw, stride=1, padding=0, output_padding=0, dilation=1):
    """``(OH, OW)`` of the transposed convolution (the formula above).

    Raises
    ------
    ValueError
        ``output_padding`` not below the stride (it would not be the adjoint of any convolution), or
        a padding that leaves no output, each naming the argument.
    """
    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    extra = as_pair(output_padding, "output_padding", 0)
    if any(e >= s for e, s in zip(extra, stride)):
        raise ValueError(f"conv_transpose2d: output_padding: expected values below the stride {stride}, got {extra}")
    padding = check_padding(padding)
    if padding == "same":
        if any(extra):
            raise ValueError(f"conv_transpose2d: output_padding: expected 0 with padding='same' (the output is "
                             f"input * stride), got {extra}")
        return tuple(int(n) * s for n, s in zip(input_hw, stride))
    out = tuple((int(n) - 1) * s - 2 * p + d * (k - 1) + 1 + e
                for n, k, s, p, d, e in zip(input_hw, kernel_hw, stride, padding, dilation, extra))
    if min(out) < 1:
        raise ValueError(f"conv_transpose2d: padding: {padding} leaves an output of {out} for the input "
                         f"{tuple(input_hw)} and kernel_size {tuple(kernel_hw)}; expected a smaller padding")
    return out


def conv_transpose2d_forward(x, kernels, biases, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Transposed convolution forward: :func:`kernels.conv2d.conv2d_backward_input` of ``x``, plus the bias.

    Parameters
    ----------
    x : array, shape (B, H, W, C_in)
    kernels : array, shape (C_in, C_out / groups, kh, kw)
    biases : array, shape (C_out, 1)
    stride, dilation, output_padding : int or (int, int)
    padding : int, (int, int), "valid" or "same"
    groups : int

    Returns
    -------
    array, shape (B, OH, OW, C_out)::

        y[b, h*sh + i*dh - ph, w*sw + j*dw - pw, o] += Σ_c x[b, h, w, c] K[c, o, i, j]   (+ bias[o])
    """
    groups = check_positive_int(groups, "groups", where="conv_transpose2d")
    out_hw = conv_transpose2d_output_size(x.shape[1:3], kernels.shape[2:], stride, padding, output_padding, dilation)
    out_shape = (x.shape[0], *out_hw, kernels.shape[1] * groups)
    y = conv2d.conv2d_backward_input(x, kernels, out_shape, stride, padding, dilation, groups)
    _add_bias(y, biases.reshape(-1).astype(y.dtype, copy=False))
    return y


def _add_bias(y, bias):
    """``y += bias`` over the last axis, in place; on the CPU over rows of at least 256 values (NumPy's loop
    over rows of 16 took 3x as long)."""
    channels = bias.size
    if backend.is_cupy_array(y) or y.size < 256:
        y += bias
        return
    k = wide_rows(y.size // channels, channels)
    y.reshape(-1, k * channels)[...] += np.tile(bias, k)


def conv_transpose2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dx: the convolution of ``grad_output`` (B, OH, OW, C_out) with the kernels; shape ``input_shape``."""
    xp = backend.get_array_module(grad_output)
    zero = xp.zeros((kernels.shape[0], 1), dtype=grad_output.dtype)
    dx = conv2d.conv2d_forward(grad_output, kernels, zero, stride, padding, dilation, groups)
    if tuple(dx.shape) != tuple(int(s) for s in input_shape):
        raise ValueError(f"conv_transpose2d: grad_output: shape {tuple(grad_output.shape)} does not come from an "
                         f"input of shape {tuple(input_shape)}")
    return dx


def conv_transpose2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dK, shape (C_in, C_out / groups, kh, kw)::

        dK[c, o, i, j] = Σ_{b, h, w} x[b, h, w, c] gpad[b, h*sh + i*dh, w*sw + j*dw, o]

    (the convolution's kernel gradient with ``x`` as its output gradient and ``grad_output`` as its input).
    The bias gradient is :func:`kernels.conv2d.conv2d_backward_bias` of ``grad_output``.
    """
    return conv2d.conv2d_backward_kernels(x, grad_output, kernel_shape, stride, padding, dilation, groups)
