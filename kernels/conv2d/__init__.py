"""2-D convolution, NHWC, forward and backward (book section 22.2): one dispatcher per op.

Public API: :func:`conv2d_forward`, :func:`conv2d_backward_input`,
:func:`conv2d_backward_kernels`, :func:`conv2d_backward_bias`. Each sends NumPy
arrays to :mod:`kernels.conv2d.cpu` (Numba kernels) and CuPy arrays to
:mod:`kernels.conv2d.gpu` (cuDNN where it loads, else numba-cuda im2col +
cuBLAS); :mod:`kernels.conv2d.reference` holds the book's loops.

Layouts: inputs NHWC ``(B, H, W, C)``, kernels ``(F, C / groups, kh, kw)``,
biases ``(F, 1)``. Every op takes ``stride``, ``padding`` (an int, a pair,
``"valid"`` or ``"same"``: :mod:`kernels.geometry`), ``dilation`` and
``groups`` (:mod:`kernels.conv2d.groups`); "same" with an odd number of zeros
pads the input's last row/column here, so the implementations see symmetric
padding only. The names of the CPU module (``im2col``, ``gemm_kf``,
``NUMBA_GEMM_MIN_MACS``, ...) stay readable here as ``kernels.conv2d.<name>``;
tune them on :mod:`kernels.conv2d.cpu`, where the kernels read them.
"""

from __future__ import annotations

import backend
from backend.checks import check_positive_int

from ..dispatch import flat_names, implementation
from ..geometry import as_pair, split_padding
from . import cpu, reference

__all__ = [
    "check_groups",
    "conv2d_backward_bias",
    "conv2d_backward_input",
    "conv2d_backward_kernels",
    "conv2d_forward",
    "cpu",
    "crop_after",
    "pad_after",
    "reference",
]

__getattr__ = flat_names(__name__, cpu)


def check_groups(groups, channels, filters, kernel_channels, where="conv2d"):
    """``groups`` as an int after checking it divides ``channels`` and ``filters`` and matches the kernels.

    Raises
    ------
    ValueError
        Naming ``groups`` (or the kernels), the expected and the received values.
    """
    groups = check_positive_int(groups, "groups", where=where)
    if channels % groups or filters % groups:
        raise ValueError(f"{where}: groups: expected a divisor of both the input channels ({channels}) and the "
                         f"filters ({filters}), got {groups}")
    if kernel_channels != channels // groups:
        raise ValueError(f"{where}: kernels: expected {channels // groups} input channels per filter "
                         f"(channels {channels} / groups {groups}), got {kernel_channels}")
    return groups


def _layout(input_shape, kernel_shape, stride, padding, dilation, groups):
    """``(stride, (ph, pw), (eh, ew), dilation, groups)`` checked, with ``"same"``/``"valid"`` resolved."""
    filters, kernel_channels, kh, kw = (int(s) for s in kernel_shape)
    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    groups = check_groups(groups, int(input_shape[3]), filters, kernel_channels)
    symmetric, extra = split_padding(padding, tuple(input_shape[1:3]), (kh, kw), stride, dilation)
    return stride, symmetric, extra, dilation, groups


def pad_after(x, extra):
    """``x`` with ``extra = (eh, ew)`` zero rows/columns added at the bottom/right (``x`` itself when none)."""
    if not any(extra):
        return x
    return backend.get_array_module(x).pad(x, ((0, 0), (0, extra[0]), (0, extra[1]), (0, 0)))


def crop_after(a, extra):
    """The inverse of :func:`pad_after` (a contiguous copy when anything is cropped)."""
    if not any(extra):
        return a
    xp = backend.get_array_module(a)
    return xp.ascontiguousarray(a[:, :a.shape[1] - extra[0], :a.shape[2] - extra[1]])


def conv2d_forward(x, kernels, biases, stride=1, padding=0, dilation=1, groups=1):
    """Convolution forward (book section 22.2.1), NHWC.

    Parameters
    ----------
    x : array, shape (B, H, W, C)
    kernels : array, shape (F, C / groups, kh, kw)
    biases : array, shape (F, 1)
    stride, dilation : int or (int, int)
    padding : int, (int, int), "valid" or "same"
        Zero padding on both sides of the height and width.
    groups : int
        Divides C and F; filter ``f`` sees the input channels of group ``f // (F / groups)``.

    Returns
    -------
    array, shape (B, OH, OW, F), ``OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1``; dtype of ``x``.

    Formula (``c`` over the group of ``f``)::

        out[b, oh, ow, f] = Σ_{i, j, c} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] K[f, c, i, j] + bias[f]
    """
    stride, symmetric, extra, dilation, groups = _layout(x.shape, kernels.shape, stride, padding, dilation, groups)
    function = implementation(__name__, "conv2d_forward", x)
    return function(pad_after(x, extra), kernels, biases, stride, symmetric, dilation, groups)


def conv2d_backward_input(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dx of :func:`conv2d_forward`.

    Parameters
    ----------
    grad_output : array, shape (B, OH, OW, F)
    kernels : array, shape (F, C / groups, kh, kw)
    input_shape : tuple (B, H, W, C)

    Returns
    -------
    array, shape (B, H, W, C)::

        dx[b, h, w, c] = Σ_{oh*sh + i*dh - ph = h, ow*sw + j*dw - pw = w} Σ_f g[b, oh, ow, f] K[f, c, i, j]
    """
    input_shape = tuple(int(s) for s in input_shape)
    stride, symmetric, extra, dilation, groups = _layout(input_shape, kernels.shape, stride, padding, dilation,
                                                         groups)
    padded_shape = (input_shape[0], input_shape[1] + extra[0], input_shape[2] + extra[1], input_shape[3])
    function = implementation(__name__, "conv2d_backward_input", grad_output)
    return crop_after(function(grad_output, kernels, padded_shape, stride, symmetric, dilation, groups), extra)


def conv2d_backward_kernels(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1, groups=1):
    """dE/dK of :func:`conv2d_forward`.

    Parameters
    ----------
    grad_output : array, shape (B, OH, OW, F)
    x : array, shape (B, H, W, C), the forward input
    kernel_shape : tuple (F, C / groups, kh, kw)

    Returns
    -------
    array, shape (F, C / groups, kh, kw)::

        dK[f, c, i, j] = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i*dh, ow*sw + j*dw, c]
    """
    kernel_shape = tuple(int(s) for s in kernel_shape)
    stride, symmetric, extra, dilation, groups = _layout(x.shape, kernel_shape, stride, padding, dilation, groups)
    function = implementation(__name__, "conv2d_backward_kernels", grad_output)
    return function(grad_output, pad_after(x, extra), kernel_shape, stride, symmetric, dilation, groups)


def conv2d_backward_bias(grad_output):
    """dE/dbias of :func:`conv2d_forward`: ``db[f] = Σ_{b, oh, ow} g[b, oh, ow, f]``, shape (F, 1)."""
    return implementation(__name__, "conv2d_backward_bias", grad_output)(grad_output)
