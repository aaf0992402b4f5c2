"""Transposed convolution, NHWC: the learnable upsampling of fully convolutional networks (book section 22.7)."""

from __future__ import annotations

from backend.checks import check_pair, check_positive_int, check_seed
from kernels import conv_transpose2d
from kernels.geometry import check_padding

from ..base import Layer
from ..initializers import filled, make_param
from .common import check_groups, check_images, convolution_backward


class Convolution2DTranspose(Layer):
    """Transposed convolution ("deconvolution"): each input pixel spreads a copy of the kernel over the output.

    The adjoint of :class:`Convolution2D` with the same arguments, so it maps
    a ``(H, W)`` map back up to the size the convolution would have reduced
    (with ``stride`` s, about ``s`` times larger): the upsampling path of the
    fully convolutional networks of section 22.7 (and of U-Net and
    segmentation heads). Runs on :mod:`kernels.conv_transpose2d`.

    Parameters
    ----------
    input_channels : int
        C_in.
    num_filters : int
        C_out, the output channels.
    kernel_size : int or (int, int)
    stride, dilation : int or (int, int)
        Default 1.
    padding : int, (int, int), "valid" or "same"
        The padding of the convolution this layer is the adjoint of (rows and
        columns cropped from the full output), default 0; ``"same"`` gives an
        output exactly ``stride`` times the input (TensorFlow's Conv2DTranspose).
    output_padding : int or (int, int)
        Rows/columns added at the end of the output (0 <= value < stride),
        to pick among the input sizes a strided convolution maps to the same size.
    groups : int
        Divides C_in and C_out (default 1).
    weight_init : str or callable
        With ``fan_in = (C_out / groups) kh kw`` and ``fan_out = C_in kh kw`` (PyTorch's reading of this layout).
    seed : int, optional

    Shapes
    ------
    input ``(B, H, W, C_in)`` -> output ``(B, OH, OW, C_out)``,
    ``OH = (H - 1) sh - 2 ph + dh (kh - 1) + 1 + oph`` (``H sh`` for "same").
    ``params = [kernels (C_in, C_out / groups, kh, kw), biases (C_out, 1)]``
    (PyTorch's ConvTranspose2d and ONNX's ConvTranspose layout).

    Formulas (``ypad`` is the output before the padding is cropped)::

        ypad[b, h*sh + i*dh, w*sw + j*dw, o] += Σ_c x[b, h, w, c] K[c, o, i, j],   y = crop(ypad) + bias
        dx = Convolution2D's forward of g (same kernels, stride, padding, dilation)
        dK[c, o, i, j] = Σ_{b, h, w} x[b, h, w, c] gpad[b, h*sh + i*dh, w*sw + j*dw, o],  dbias[o] = Σ g[..., o]
    """

    def __init__(self, input_channels, num_filters, kernel_size, stride=1, padding=0, output_padding=0, dilation=1,
                 groups=1, weight_init="he_normal", seed=None):
        super().__init__()
        self.input_channels = check_positive_int(input_channels, "input_channels")
        self.num_filters = check_positive_int(num_filters, "num_filters")
        self.kernel_size = check_pair(kernel_size, "kernel_size")
        self.stride = check_pair(stride, "stride")
        self.padding = check_padding(padding)
        self.output_padding = check_pair(output_padding, "output_padding", minimum=0)
        self.dilation = check_pair(dilation, "dilation")
        self.groups = check_groups("Convolution2DTranspose", groups, self.input_channels, self.num_filters)
        if any(e >= s for e, s in zip(self.output_padding, self.stride)):
            raise ValueError(f"Convolution2DTranspose: output_padding: expected values below the stride "
                             f"{self.stride}, got {self.output_padding}")
        if self.padding == "same" and any(self.output_padding):
            raise ValueError(f"Convolution2DTranspose: output_padding: expected 0 with padding='same', "
                             f"got {self.output_padding}")
        kh, kw = self.kernel_size
        per_group = self.num_filters // self.groups
        seed = check_seed(seed, "Convolution2DTranspose")
        self.kernels = make_param(weight_init, (self.input_channels, per_group, kh, kw), per_group * kh * kw,
                                  self.input_channels * kh * kw, seed)
        self.biases = filled((self.num_filters, 1), 0.0)
        self.params = [self.kernels, self.biases]
        self.input = None

    def forward(self, input_data):
        check_images("Convolution2DTranspose", input_data, self.input_channels, self.params)
        self.output_shape(input_data.shape)  # a padding that leaves no output raises here, naming it
        self.input = input_data
        dtype = input_data.dtype
        return conv_transpose2d.conv_transpose2d_forward(
            input_data, self.kernels.astype(dtype, copy=False), self.biases.astype(dtype, copy=False), self.stride,
            self.padding, self.output_padding, self.dilation, self.groups)

    def backward(self, grad_output):
        geometry = (self.stride, self.padding, self.dilation, self.groups)
        return convolution_backward(
            self, "Convolution2DTranspose", grad_output,
            lambda g, kernels, x: conv_transpose2d.conv_transpose2d_backward_input(g, kernels, x.shape, *geometry),
            lambda g, x: conv_transpose2d.conv_transpose2d_backward_kernels(g, x, self.kernels.shape, *geometry))

    def output_shape(self, input_shape):
        out_h, out_w = conv_transpose2d.conv_transpose2d_output_size(
            input_shape[1:3], self.kernel_size, self.stride, self.padding, self.output_padding, self.dilation)
        return (input_shape[0], out_h, out_w, self.num_filters)
