"""2-D convolution layer, NHWC (book section 22.2, code block "Classe completa de Convolution2D")."""

from __future__ import annotations

import backend
from backend.checks import check_input, check_pair, check_positive_int, check_seed
from kernels import conv2d
from kernels.geometry import conv2d_output_size

from ..base import Layer
from ..initializers import filled, make_param


def _padding_pair(value):
    """``padding`` as ``(ph, pw)``: an int or pair of ints >= 0."""
    return check_pair(value, "padding", minimum=0)


class Convolution2D(Layer):
    """2-D convolution (cross-correlation) with learnable kernels and biases.

    Parameters
    ----------
    input_channels : int
        C, the number of channels of the input.
    num_filters : int
        F, the number of kernels (output channels).
    kernel_size : int or (int, int)
        ``(kh, kw)``; an int ``k`` means ``(k, k)``.
    stride : int or (int, int)
        Step of the window, default 1.
    padding : int or (int, int)
        Zeros added on both sides of the height and width, default 0.
    weight_init : str or callable
        Kernel initializer (see :mod:`layers.initializers`), with
        ``fan_in = C * kh * kw`` and ``fan_out = F * kh * kw``. Default
        ``"he_normal"`` (convolutions are followed by rectifiers);
        ``"book"`` reproduces the book's ``np.random.randn(...) * 0.01``.
    seed : int, optional
        Seed of the initializer's generator.

    Shapes
    ------
    input ``(B, H, W, C)`` (NHWC) -> output ``(B, OH, OW, F)`` with
    ``OH = (H + 2 ph - kh) // sh + 1``, ``OW = (W + 2 pw - kw) // sw + 1``.
    ``params = [kernels (F, C, kh, kw), biases (F, 1)]`` as in the book.

    Formulas (``xpad`` is the zero-padded input)::

        out[b, oh, ow, f] = Σ_{i, j, c} xpad[b, oh*sh + i, ow*sw + j, c] K[f, c, i, j] + bias[f]
        dK[f, c, i, j]    = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i, ow*sw + j, c]
        dbias[f]          = Σ_{b, oh, ow} g[b, oh, ow, f]
        dxpad[b, oh*sh + i, ow*sw + j, c] += Σ_f g[b, oh, ow, f] K[f, c, i, j]

    The work is done by :mod:`kernels.conv2d` (im2col + BLAS on the CPU,
    im2col + cuBLAS on the GPU); :mod:`kernels.reference` keeps the book's
    loops. The computation runs in the input's dtype (the kernels are cast to
    it); gradients of the parameters come back in the parameters' dtype.
    """

    def __init__(self, input_channels, num_filters, kernel_size, stride=1, padding=0,
                 weight_init="he_normal", seed=None):
        super().__init__()
        self.input_channels = check_positive_int(input_channels, "input_channels")
        self.num_filters = check_positive_int(num_filters, "num_filters")
        self.kernel_size = check_pair(kernel_size, "kernel_size")
        self.stride = check_pair(stride, "stride")
        self.padding = _padding_pair(padding)
        kh, kw = self.kernel_size
        shape = (self.num_filters, self.input_channels, kh, kw)
        seed = check_seed(seed, "Convolution2D")
        self.kernels = make_param(weight_init, shape, self.input_channels * kh * kw, self.num_filters * kh * kw, seed)
        self.biases = filled((self.num_filters, 1), 0.0)
        self.params = [self.kernels, self.biases]
        self.input = None

    def _check(self, input_data):
        check_input(input_data, ndim=4, layer="Convolution2D")
        _, height, width, channels = input_data.shape
        if channels != self.input_channels:
            raise ValueError(
                f"Convolution2D: input_data: expected {self.input_channels} channels in NHWC layout "
                f"(batch, height, width, {self.input_channels}), got shape {tuple(input_data.shape)}"
            )
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        if height + 2 * ph < kh or width + 2 * pw < kw:
            raise ValueError(
                f"Convolution2D: kernel_size {self.kernel_size} is larger than the padded input "
                f"{(height + 2 * ph, width + 2 * pw)} (input {(height, width)}, padding {self.padding})"
            )
        backend.get_array_module(input_data, self.kernels)  # mixed-device TypeError

    def forward(self, input_data):
        self._check(input_data)
        self.input = input_data
        dtype = input_data.dtype
        return conv2d.conv2d_forward(input_data, self.kernels.astype(dtype, copy=False),
                                     self.biases.astype(dtype, copy=False), self.stride, self.padding)

    def backward(self, grad_output):
        if self.input is None:
            raise RuntimeError("Convolution2D.backward called before forward")
        expected = self.output_shape(self.input.shape)
        if tuple(grad_output.shape) != expected:
            raise ValueError(
                f"Convolution2D: grad_output: expected shape {expected} (the forward output), "
                f"got {tuple(grad_output.shape)}"
            )
        x = self.input
        grad_output = grad_output.astype(x.dtype, copy=False)
        grad_input = conv2d.conv2d_backward_input(grad_output, self.kernels.astype(x.dtype, copy=False),
                                                  x.shape, self.stride, self.padding)
        grad_kernels = conv2d.conv2d_backward_kernels(grad_output, x, self.kernels.shape, self.stride, self.padding)
        grad_biases = conv2d.conv2d_backward_bias(grad_output)
        return grad_input, [grad_kernels.astype(self.kernels.dtype, copy=False),
                            grad_biases.astype(self.biases.dtype, copy=False)]

    def output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        out_h, out_w = conv2d_output_size((height, width), self.kernel_size, self.stride, self.padding)
        return (batch, out_h, out_w, self.num_filters)
