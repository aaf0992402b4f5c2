"""2-D convolution layer, NHWC (book section 22.2, code block "Classe completa de Convolution2D")."""

from __future__ import annotations

from backend.checks import check_pair, check_positive_int, check_seed
from kernels import conv2d
from kernels.geometry import check_padding, conv2d_output_size

from ..base import Layer
from ..initializers import filled, make_param
from .common import check_groups, check_images, check_kernel_fits, convolution_backward


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
    padding : int, (int, int), "valid" or "same"
        Zeros added on both sides of the height and width, default 0.
        ``"valid"`` is 0; ``"same"`` gives ``OH = ceil(H / sh)`` with the zeros
        split as TensorFlow and PyTorch do: half before, the rest after (one
        more after when the total ``(OH - 1) sh + dh (kh - 1) + 1 - H`` is
        odd, as for even kernels or strides).
    weight_init : str or callable
        Kernel initializer (see :mod:`layers.initializers`), with
        ``fan_in = (C / groups) * kh * kw`` and ``fan_out = F * kh * kw``.
        Default ``"he_normal"`` (convolutions are followed by rectifiers);
        ``"book"`` reproduces the book's ``np.random.randn(...) * 0.01``.
    seed : int, optional
        Seed of the initializer's generator.
    dilation : int or (int, int)
        Spacing of the kernel's taps (atrous convolution, the FCNs of
        section 22.7), default 1: a kernel ``k`` spans ``d (k - 1) + 1`` pixels.
    groups : int
        Splits the channels into ``groups`` independent convolutions (it must
        divide C and F; ``groups = C`` is a depthwise convolution, see
        :class:`DepthwiseConvolution2D`), default 1.

    Shapes
    ------
    input ``(B, H, W, C)`` (NHWC) -> output ``(B, OH, OW, F)`` with
    ``OH = (H + 2 ph - dh (kh - 1) - 1) // sh + 1`` (likewise ``OW``).
    ``params = [kernels (F, C / groups, kh, kw), biases (F, 1)]`` as in the book.

    Formulas (``xpad`` is the zero-padded input; ``c`` runs over the group of ``f``)::

        out[b, oh, ow, f] = Σ_{i, j, c} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] K[f, c, i, j] + bias[f]
        dK[f, c, i, j]    = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i*dh, ow*sw + j*dw, c]
        dbias[f]          = Σ_{b, oh, ow} g[b, oh, ow, f]
        dxpad[b, oh*sh + i*dh, ow*sw + j*dw, c] += Σ_f g[b, oh, ow, f] K[f, c, i, j]

    The work is done by :mod:`kernels.conv2d` (im2col + BLAS on the CPU,
    im2col + cuBLAS on the GPU); :mod:`kernels.reference` keeps the book's
    loops. The computation runs in the input's dtype (the kernels are cast to
    it); gradients of the parameters come back in the parameters' dtype.
    """

    def __init__(self, input_channels, num_filters, kernel_size, stride=1, padding=0,
                 weight_init="he_normal", seed=None, dilation=1, groups=1):
        super().__init__()
        self.input_channels = check_positive_int(input_channels, "input_channels")
        self.num_filters = check_positive_int(num_filters, "num_filters")
        self.kernel_size = check_pair(kernel_size, "kernel_size")
        self.stride = check_pair(stride, "stride")
        self.padding = check_padding(padding)
        self.dilation = check_pair(dilation, "dilation")
        self.groups = check_groups("Convolution2D", groups, self.input_channels, self.num_filters)
        kh, kw = self.kernel_size
        per_group = self.input_channels // self.groups
        shape = (self.num_filters, per_group, kh, kw)
        seed = check_seed(seed, "Convolution2D")
        self.kernels = make_param(weight_init, shape, per_group * kh * kw, self.num_filters * kh * kw, seed)
        self.biases = filled((self.num_filters, 1), 0.0)
        self.params = [self.kernels, self.biases]
        self.input = None

    def _geometry(self):
        return self.stride, self.padding, self.dilation, self.groups

    def forward(self, input_data):
        check_images("Convolution2D", input_data, self.input_channels, self.params)
        check_kernel_fits("Convolution2D", input_data.shape[1:3], self.kernel_size, self.padding, self.dilation)
        self.input = input_data
        dtype = input_data.dtype
        return conv2d.conv2d_forward(input_data, self.kernels.astype(dtype, copy=False),
                                     self.biases.astype(dtype, copy=False), *self._geometry())

    def backward(self, grad_output):
        geometry = self._geometry()
        return convolution_backward(
            self, "Convolution2D", grad_output,
            lambda g, kernels, x: conv2d.conv2d_backward_input(g, kernels, x.shape, *geometry),
            lambda g, x: conv2d.conv2d_backward_kernels(g, x, self.kernels.shape, *geometry))

    def output_shape(self, input_shape):
        batch, height, width = input_shape[0], input_shape[1], input_shape[2]
        out_h, out_w = conv2d_output_size((height, width), self.kernel_size, self.stride, self.padding,
                                          self.dilation)
        return (batch, out_h, out_w, self.num_filters)
