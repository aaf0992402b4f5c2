"""Depthwise and depthwise-separable convolutions, NHWC (Xception and MobileNet, book section 22.9.6)."""

from __future__ import annotations

from backend.checks import check_bool, check_pair, check_positive_int, check_seed
from kernels import depthwise2d
from kernels.geometry import check_padding, conv2d_output_size

from ..base import Layer
from ..containers.base import Container
from ..initializers import filled, make_param
from .common import check_images, check_kernel_fits, convolution_backward
from .conv2d import Convolution2D


class DepthwiseConvolution2D(Layer):
    """Depthwise convolution: every input channel convolved with its own ``depth_multiplier`` kernels.

    The spatial half of Xception's separable convolution (section 22.9.6):
    a grouped :class:`Convolution2D` with ``groups = channels``, run by
    :mod:`kernels.depthwise2d` (Numba on the CPU, cuDNN or numba-cuda on the
    GPU) instead of ``channels`` tiny matrix products.

    Parameters
    ----------
    channels : int
        C, the input channels.
    kernel_size : int or (int, int)
        ``(kh, kw)``.
    depth_multiplier : int
        M, kernels per input channel (default 1): ``C M`` output channels.
    stride, dilation : int or (int, int)
        Default 1.
    padding : int, (int, int), "valid" or "same"
        As :class:`Convolution2D` (default 0).
    use_bias : bool
        Add a bias per output channel (default True; :class:`SeparableConvolution2D`
        leaves it to the pointwise convolution).
    weight_init : str or callable
        With ``fan_in = kh kw`` and ``fan_out = M kh kw`` (default ``"he_normal"``).
    seed : int, optional

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, OH, OW, C M)``, ``OH`` as :class:`Convolution2D`'s.
    ``params = [kernels (C M, 1, kh, kw), biases (C M, 1)]`` (PyTorch's and ONNX's layout), without
    ``biases`` when ``use_bias=False``.

    Formulas (output channel ``f = c M + m`` belongs to input channel ``c``)::

        out[b, oh, ow, f] = Σ_{i, j} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] K[f, 0, i, j] + bias[f]
        dK[f, 0, i, j]    = Σ_{b, oh, ow} g[b, oh, ow, f] xpad[b, oh*sh + i*dh, ow*sw + j*dw, c]
        dxpad[b, oh*sh + i*dh, ow*sw + j*dw, c] += Σ_m g[b, oh, ow, c M + m] K[c M + m, 0, i, j]
    """

    def __init__(self, channels, kernel_size, depth_multiplier=1, stride=1, padding=0, dilation=1, use_bias=True,
                 weight_init="he_normal", seed=None):
        super().__init__()
        self.channels = check_positive_int(channels, "channels")
        self.kernel_size = check_pair(kernel_size, "kernel_size")
        self.depth_multiplier = check_positive_int(depth_multiplier, "depth_multiplier")
        self.stride = check_pair(stride, "stride")
        self.padding = check_padding(padding)
        self.dilation = check_pair(dilation, "dilation")
        self.use_bias = check_bool(use_bias, "use_bias")
        seed = check_seed(seed, "DepthwiseConvolution2D")
        kh, kw = self.kernel_size
        filters = self.channels * self.depth_multiplier
        self.kernels = make_param(weight_init, (filters, 1, kh, kw), kh * kw, self.depth_multiplier * kh * kw, seed)
        self.params = [self.kernels]
        self.biases = None
        if self.use_bias:
            self.biases = filled((filters, 1), 0.0)
            self.params.append(self.biases)
        self.input = None

    def _geometry(self):
        return self.stride, self.padding, self.dilation

    def forward(self, input_data):
        check_images("DepthwiseConvolution2D", input_data, self.channels, self.params)
        check_kernel_fits("DepthwiseConvolution2D", input_data.shape[1:3], self.kernel_size, self.padding,
                          self.dilation)
        self.input = input_data
        dtype = input_data.dtype
        biases = None if self.biases is None else self.biases.astype(dtype, copy=False)
        return depthwise2d.depthwise2d_forward(input_data, self.kernels.astype(dtype, copy=False), biases,
                                               *self._geometry())

    def backward(self, grad_output):
        geometry = self._geometry()
        return convolution_backward(
            self, "DepthwiseConvolution2D", grad_output,
            lambda g, kernels, x: depthwise2d.depthwise2d_backward_input(g, kernels, x.shape, *geometry),
            lambda g, x: depthwise2d.depthwise2d_backward_kernels(g, x, self.kernels.shape, *geometry))

    def output_shape(self, input_shape):
        out_h, out_w = conv2d_output_size(input_shape[1:3], self.kernel_size, self.stride, self.padding,
                                          self.dilation)
        return (input_shape[0], out_h, out_w, self.channels * self.depth_multiplier)


class SeparableConvolution2D(Container):
    """Depthwise-separable convolution (Xception, section 22.9.6): a depthwise, then a 1x1 ("pointwise") one.

    ``y = pointwise(depthwise(x))``: the spatial filtering per channel
    (:class:`DepthwiseConvolution2D`, no bias) and the mixing of channels (a
    1x1 :class:`Convolution2D` with bias). For C inputs, F outputs and a k x k
    kernel it has ``C M k² + C M F + F`` parameters instead of ``C F k² + F``.

    Parameters
    ----------
    input_channels : int
        C.
    num_filters : int
        F, the output channels.
    kernel_size : int or (int, int)
        Of the depthwise part.
    depth_multiplier : int
        M, depthwise kernels per input channel (default 1).
    stride, padding, dilation
        Of the depthwise part (as :class:`DepthwiseConvolution2D`).
    weight_init : str or callable
        Of both parts (default ``"he_normal"``).
    seed : int, optional
        The depthwise part's seed; the pointwise part takes ``seed + 1``.

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, OH, OW, F)``. ``params = [depthwise kernels (C M, 1, kh, kw),
    pointwise kernels (F, C M, 1, 1), biases (F, 1)]``.

    Backward: the pointwise block's backward, then the depthwise block's.
    """

    def __init__(self, input_channels, num_filters, kernel_size, depth_multiplier=1, stride=1, padding=0,
                 dilation=1, weight_init="he_normal", seed=None):
        super().__init__()
        check_positive_int(input_channels, "input_channels", where="SeparableConvolution2D")
        check_positive_int(num_filters, "num_filters", where="SeparableConvolution2D")
        seed = check_seed(seed, "SeparableConvolution2D")
        self.depthwise = DepthwiseConvolution2D(input_channels, kernel_size, depth_multiplier, stride, padding,
                                                dilation, use_bias=False, weight_init=weight_init, seed=seed)
        channels = self.depthwise.channels * self.depthwise.depth_multiplier
        self.pointwise = Convolution2D(channels, num_filters, 1, weight_init=weight_init,
                                       seed=None if seed is None else seed + 1)
        self.input_channels, self.num_filters = self.depthwise.channels, self.pointwise.num_filters

    def sublayers(self) -> list:
        return [self.depthwise, self.pointwise]

    def forward(self, input_data):
        return self.pointwise.forward(self.depthwise.forward(input_data))

    def backward(self, grad_output):
        grad_mid, pointwise_grads = self.pointwise.backward(grad_output)
        grad_input, depthwise_grads = self.depthwise.backward(grad_mid)
        self.grads = list(depthwise_grads) + list(pointwise_grads)
        return grad_input, self.grads

    def output_shape(self, input_shape):
        return self.pointwise.output_shape(self.depthwise.output_shape(input_shape))
