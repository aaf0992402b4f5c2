"""ONNX converters of the convolution variants (sections 22.7, 22.9), the resizing layers and the augmentations.

Depthwise convolution is ONNX's Conv with ``group = C`` (our kernels
``(C M, 1, kh, kw)`` are its weights as they are); the transposed convolution
is ConvTranspose (weights ``(C_in, C_out / groups, kh, kw)``, ours);
Convolution1D is a 1-D Conv on ``(B, C, T)``; ZeroPadding2D is Pad and
UpSampling2D a nearest Resize, both on NHWC directly. The augmentation layers
are the identity in evaluation mode, which is what an exported file computes.
"""

from __future__ import annotations

import numpy as np

from kernels.geometry import padding_amounts

from ...augmentation import GaussianNoise, RandomFlip, RandomRotation, RandomTranslation
from ...convolution import (Convolution1D, Convolution2DTranspose, DepthwiseConvolution2D, GlobalMaxPooling2D,
                            SeparableConvolution2D, SqueezeExcitation, UpSampling2D, ZeroPadding2D)
from .blocks import _multiply
from .convolution import _in_nchw, conv_pads
from .registry import register_converter


@register_converter(DepthwiseConvolution2D)
def _depthwise(layer, graph, x):
    """Conv with ``group = C``: every channel with its own ``M`` kernels (section 22.9.6)."""
    inputs = [graph.constant(layer.kernels, "kernels")]
    if layer.biases is not None:
        inputs.append(graph.constant(layer.biases.reshape(-1), "biases"))
    return _in_nchw(graph, x, "Conv", *inputs, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                    pads=conv_pads(layer, x.shape[1:3]), dilations=list(layer.dilation), group=layer.channels)


@register_converter(SeparableConvolution2D)
def _separable(layer, graph, x):
    """The depthwise convolution, then the pointwise one."""
    for i, child in enumerate(layer.sublayers()):
        x = graph.convert(child, x, i)
    return x.name


@register_converter(Convolution2DTranspose)
def _transpose(layer, graph, x):
    """ConvTranspose with the padding cropped (explicit pads; ``"same"`` resolved for the input's size)."""
    stride, dilation = layer.stride, layer.dilation
    out_hw = layer.output_shape(x.shape)[1:3]
    (top, bottom), (left, right) = padding_amounts(layer.padding, out_hw, layer.kernel_size, stride, dilation)
    full = [(n - 1) * s + d * (k - 1) + 1 for n, k, s, d in zip(x.shape[1:3], layer.kernel_size, stride, dilation)]
    # ONNX: out = full + output_padding - pads; the rows past the full output (padding "same" with a kernel
    # shorter than the stride, or our output_padding) are ONNX's output_padding
    extra = [o + p0 + p1 - f for o, p0, p1, f in zip(out_hw, (top, left), (bottom, right), full)]
    return _in_nchw(graph, x, "ConvTranspose", graph.constant(layer.kernels, "kernels"),
                    graph.constant(layer.biases.reshape(-1), "biases"), kernel_shape=list(layer.kernel_size),
                    strides=list(stride), pads=[top, left, bottom, right], dilations=list(dilation),
                    output_padding=extra, group=layer.groups)


@register_converter(Convolution1D)
def _convolution1d(layer, graph, x):
    """A 1-D Conv on ``(B, C, T)``, between two transposes of our ``(B, T, C)``."""
    ((_, _), (left, right)) = padding_amounts(layer.padding if isinstance(layer.padding, str) else (0, layer.padding),
                                              (1, x.shape[1]), (1, layer.kernel_size), (1, layer.stride),
                                              (1, layer.dilation))
    nct = graph.node("Transpose", [x.name], perm=[0, 2, 1])
    out = graph.node("Conv", [nct, graph.constant(layer.kernels, "kernels"),
                              graph.constant(layer.biases.reshape(-1), "biases")],
                     kernel_shape=[layer.kernel_size], strides=[layer.stride], pads=[left, right],
                     dilations=[layer.dilation], group=layer.groups)
    return graph.node("Transpose", [out], perm=[0, 2, 1])


@register_converter(GlobalMaxPooling2D)
def _global_max(layer, graph, x):
    """(B, H, W, C) -> (B, 1, 1, C): the maximum over H and W, in NHWC directly."""
    return graph.node("ReduceMax", [x.name], axes=[1, 2], keepdims=1)


@register_converter(ZeroPadding2D)
def _zero_padding(layer, graph, x):
    """Pad with zeros: ``pads`` = the begins of (B, H, W, C), then the ends."""
    (top, bottom), (left, right) = layer.padding
    pads = graph.constant(np.array([0, top, left, 0, 0, bottom, right, 0], dtype=np.int64), "pads")
    return graph.node("Pad", [x.name, pads], mode="constant")


@register_converter(UpSampling2D)
def _upsampling(layer, graph, x):
    """Nearest Resize by ``(1, sh, sw, 1)``: ``y[h] = x[floor(h / sh)]`` (asymmetric coordinates, floor)."""
    scales = graph.constant(np.array([1.0, *layer.size, 1.0], dtype=np.float32), "scales")
    return graph.node("Resize", [x.name, "", scales], mode="nearest", coordinate_transformation_mode="asymmetric",
                      nearest_mode="floor")


register_converter(SqueezeExcitation)(_multiply)


@register_converter(RandomFlip, RandomTranslation, RandomRotation, GaussianNoise)
def _augmentation(layer, graph, x):
    """The identity: augmentations act in training only (section 25.6)."""
    return graph.node("Identity", [x.name])
