"""1-D convolution over sequences ``(batch, time, channels)`` (book section 22.2 along one axis; chapter 24's data)."""

from __future__ import annotations

from backend.checks import check_positive_int, check_seed
from kernels import conv1d
from kernels.geometry import check_padding, conv2d_output_size

from ..base import Layer
from ..initializers import filled, make_param
from .common import check_groups, check_images, check_kernel_fits, convolution_backward


def _check_padding_1d(padding):
    value = check_padding(padding)
    if isinstance(value, str):
        return value
    if isinstance(padding, (tuple, list)):
        raise ValueError(f"Convolution1D: padding: expected 'same', 'valid' or an int >= 0, got {padding!r}")
    return value[0]


class Convolution1D(Layer):
    """1-D convolution of sequences with learnable kernels and biases.

    The convolution of section 22.2 along the time axis, for sequences
    ``(batch, time, channels)`` (text, audio, the series of chapter 24).
    Runs on :mod:`kernels.conv1d` (the 2-D kernels with height 1).

    Parameters
    ----------
    input_channels : int
        C.
    num_filters : int
        F.
    kernel_size : int
        k, the window along time.
    stride, dilation : int
        Default 1.
    padding : int, "valid" or "same"
        Zeros on both ends of the time axis (default 0); ``"same"`` keeps
        ``OT = ceil(T / stride)`` (the odd zero at the end).
    groups : int
        Divides C and F (default 1).
    weight_init : str or callable
        With ``fan_in = (C / groups) k``, ``fan_out = F k`` (default ``"he_normal"``).
    seed : int, optional

    Shapes
    ------
    input ``(B, T, C)`` -> output ``(B, OT, F)``, ``OT = (T + 2 p - d (k - 1) - 1) // s + 1``.
    ``params = [kernels (F, C / groups, k), biases (F, 1)]`` (PyTorch's Conv1d layout).

    Formulas::

        out[b, t, f] = Σ_{i, c} xpad[b, t*s + i*d, c] K[f, c, i] + bias[f]
        dK[f, c, i]  = Σ_{b, t} g[b, t, f] xpad[b, t*s + i*d, c],     dbias[f] = Σ_{b, t} g[b, t, f]
        dxpad[b, t*s + i*d, c] += Σ_f g[b, t, f] K[f, c, i]
    """

    def __init__(self, input_channels, num_filters, kernel_size, stride=1, padding=0, dilation=1, groups=1,
                 weight_init="he_normal", seed=None):
        super().__init__()
        self.input_channels = check_positive_int(input_channels, "input_channels")
        self.num_filters = check_positive_int(num_filters, "num_filters")
        self.kernel_size = check_positive_int(kernel_size, "kernel_size")
        self.stride = check_positive_int(stride, "stride")
        self.padding = _check_padding_1d(padding)
        self.dilation = check_positive_int(dilation, "dilation")
        self.groups = check_groups("Convolution1D", groups, self.input_channels, self.num_filters)
        per_group = self.input_channels // self.groups
        seed = check_seed(seed, "Convolution1D")
        k = self.kernel_size
        self.kernels = make_param(weight_init, (self.num_filters, per_group, k), per_group * k, self.num_filters * k,
                                  seed)
        self.biases = filled((self.num_filters, 1), 0.0)
        self.params = [self.kernels, self.biases]
        self.input = None

    def _geometry(self):
        return self.stride, self.padding, self.dilation, self.groups

    def forward(self, input_data):
        check_images("Convolution1D", input_data, self.input_channels, self.params, ndim=3, layout="NTC")
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding)
        check_kernel_fits("Convolution1D", (1, input_data.shape[1]), (1, self.kernel_size), padding,
                          (1, self.dilation))
        self.input = input_data
        dtype = input_data.dtype
        return conv1d.conv1d_forward(input_data, self.kernels.astype(dtype, copy=False),
                                     self.biases.astype(dtype, copy=False), *self._geometry())

    def backward(self, grad_output):
        geometry = self._geometry()
        return convolution_backward(
            self, "Convolution1D", grad_output,
            lambda g, kernels, x: conv1d.conv1d_backward_input(g, kernels, x.shape, *geometry),
            lambda g, x: conv1d.conv1d_backward_kernels(g, x, self.kernels.shape, *geometry))

    def output_shape(self, input_shape):
        padding = self.padding if isinstance(self.padding, str) else (0, self.padding)
        _, steps = conv2d_output_size((1, input_shape[1]), (1, self.kernel_size), (1, self.stride), padding,
                                      (1, self.dilation))
        return (input_shape[0], steps, self.num_filters)
