"""Layers that change an image's size without parameters: ZeroPadding2D and UpSampling2D (NHWC).

Zero padding makes explicit what a convolution's ``padding`` does inside it
(book section 22.2); nearest-neighbour upsampling is the fixed counterpart of
:class:`Convolution2DTranspose` in the decoders of fully convolutional
networks (section 22.7). Both are array reshapes: vectorised, on the input's device.
"""

from __future__ import annotations

import numbers

import backend
from backend.checks import check_input, check_pair

from ..base import Layer


def _check_grad(layer, grad_output, input_shape):
    if input_shape is None:
        raise RuntimeError(f"{type(layer).__name__}.backward called before forward")
    expected = layer.output_shape(input_shape)
    if tuple(grad_output.shape) != expected:
        raise ValueError(f"{type(layer).__name__}: grad_output: expected shape {expected} (the forward output), "
                         f"got {tuple(grad_output.shape)}")


def _padding_amounts(padding):
    """``((top, bottom), (left, right))`` from an int, ``(ph, pw)`` or ``((top, bottom), (left, right))``."""
    if isinstance(padding, (tuple, list)) and len(padding) == 2 and all(
            isinstance(p, (tuple, list)) for p in padding):
        return (check_pair(padding[0], "padding[0]", 0), check_pair(padding[1], "padding[1]", 0))
    if isinstance(padding, (tuple, list)) and not all(isinstance(p, numbers.Integral) for p in padding):
        raise TypeError(f"ZeroPadding2D: padding: expected an int, (ph, pw) or ((top, bottom), (left, right)), "
                        f"got {padding!r}")
    ph, pw = check_pair(padding, "padding", 0)
    return (ph, ph), (pw, pw)


class ZeroPadding2D(Layer):
    """Adds rows and columns of zeros around every image.

    Parameters
    ----------
    padding : int, (int, int) or ((int, int), (int, int))
        ``p`` (all sides), ``(ph, pw)`` (top and bottom, left and right) or
        ``((top, bottom), (left, right))``; default 1.

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, top + H + bottom, left + W + right, C)``. No params.

    Formulas::

        y[b, top + h, left + w, c] = x[b, h, w, c], zeros elsewhere;   dx = g[:, top:top + H, left:left + W, :]
    """

    def __init__(self, padding=1):
        super().__init__()
        self.padding = _padding_amounts(padding)
        self.input_shape = None

    def forward(self, input_data):
        check_input(input_data, ndim=4, layer="ZeroPadding2D")
        self.input_shape = tuple(input_data.shape)
        xp = backend.get_array_module(input_data)
        return xp.pad(input_data, ((0, 0), self.padding[0], self.padding[1], (0, 0)))

    def backward(self, grad_output):
        _check_grad(self, grad_output, self.input_shape)
        (top, _), (left, _) = self.padding
        _, height, width, _ = self.input_shape
        xp = backend.get_array_module(grad_output)
        return xp.ascontiguousarray(grad_output[:, top:top + height, left:left + width, :]), None

    def output_shape(self, input_shape):
        (top, bottom), (left, right) = self.padding
        return (input_shape[0], input_shape[1] + top + bottom, input_shape[2] + left + right, input_shape[3])


class UpSampling2D(Layer):
    """Nearest-neighbour upsampling: every pixel repeated ``sh x sw`` times.

    Parameters
    ----------
    size : int or (int, int)
        ``(sh, sw)``, default 2.

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, H sh, W sw, C)``. No params.

    Formulas::

        y[b, h, w, c]  = x[b, h // sh, w // sw, c]
        dx[b, h, w, c] = Σ_{i < sh, j < sw} g[b, h sh + i, w sw + j, c]
    """

    def __init__(self, size=2):
        super().__init__()
        self.size = check_pair(size, "size")
        self.input_shape = None

    def forward(self, input_data):
        check_input(input_data, ndim=4, layer="UpSampling2D")
        self.input_shape = tuple(input_data.shape)
        xp = backend.get_array_module(input_data)
        batch, height, width, channels = self.input_shape
        sh, sw = self.size
        out = xp.broadcast_to(input_data[:, :, None, :, None, :], (batch, height, sh, width, sw, channels))
        return xp.ascontiguousarray(out).reshape(batch, height * sh, width * sw, channels)

    def backward(self, grad_output):
        _check_grad(self, grad_output, self.input_shape)
        batch, height, width, channels = self.input_shape
        sh, sw = self.size
        return grad_output.reshape(batch, height, sh, width, sw, channels).sum(axis=(2, 4)), None

    def output_shape(self, input_shape):
        return (input_shape[0], input_shape[1] * self.size[0], input_shape[2] * self.size[1], input_shape[3])
