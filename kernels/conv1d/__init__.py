"""1-D convolution of sequences ``(batch, time, channels)`` (book section 22.2 along one axis; chapter 24's data).

A sequence is an image of height 1: each op views its arrays as NHWC with
``H = 1`` and kernels ``(F, C / groups, 1, k)`` (no copies) and runs
:mod:`kernels.conv2d`'s fast paths (Numba on the CPU, cuDNN or numba-cuda +
cuBLAS on the GPU). :mod:`kernels.conv1d.reference` keeps the loops.

Layouts: inputs ``(B, T, C)``; kernels ``(F, C / groups, k)``; biases ``(F, 1)``;
``stride``, ``dilation`` ints; ``padding`` an int, ``"valid"`` or ``"same"``::

    out[b, t, f] = Σ_{i, c} xpad[b, t*s + i*d, c] K[f, c, i] + bias[f],    OT = (T + 2p - d (k - 1) - 1) // s + 1
"""

from __future__ import annotations

from .. import conv2d
from . import reference

__all__ = ["conv1d_backward_input", "conv1d_backward_kernels", "conv1d_forward", "reference"]


def _pair_padding(padding):
    return padding if isinstance(padding, str) else (0, padding)


def conv1d_forward(x, kernels, biases, stride=1, padding=0, dilation=1, groups=1):
    """Forward: ``x`` (B, T, C), ``kernels`` (F, C / groups, k), ``biases`` (F, 1) -> (B, OT, F)."""
    out = conv2d.conv2d_forward(x[:, None], kernels[:, :, None, :], biases, (1, stride), _pair_padding(padding),
                                (1, dilation), groups)
    return out[:, 0]


def conv1d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dx of :func:`conv1d_forward`, shape ``input_shape`` = (B, T, C)."""
    batch, steps, channels = (int(s) for s in input_shape)
    dx = conv2d.conv2d_backward_input(grad_output[:, None], kernels[:, :, None, :], (batch, 1, steps, channels),
                                      (1, stride), _pair_padding(padding), (1, dilation), groups)
    return dx[:, 0]


def conv1d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dK of :func:`conv1d_forward`, shape ``kernel_shape`` = (F, C / groups, k)."""
    filters, cg, k = (int(s) for s in kernel_shape)
    dk = conv2d.conv2d_backward_kernels(grad_output[:, None], x[:, None], (filters, cg, 1, k), (1, stride),
                                        _pair_padding(padding), (1, dilation), groups)
    return dk[:, :, 0, :]
