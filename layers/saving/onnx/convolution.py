"""ONNX converters of Convolution2D and the pooling layers (book chapter 22), NHWC made explicit.

Our images are NHWC ``(B, H, W, C)``; ONNX's Conv, MaxPool and AveragePool are
defined on NCHW. Each converter transposes its input to NCHW, applies the
operator and transposes back, so every tensor between layers keeps our layout
(Flatten and Concatenate then see the same order as ours); ONNX Runtime's
optimizer removes the back-to-back transposes between two such layers. Our
kernels ``(F, C, kh, kw)`` are ONNX's OIHW weights as they are.
"""

from __future__ import annotations

from kernels.geometry import padding_amounts

from ...convolution import AveragePooling2D, Convolution2D, GlobalAveragePooling2D, MaxPooling2D
from .registry import register_converter

TO_NCHW = (0, 3, 1, 2)
TO_NHWC = (0, 2, 3, 1)


def _in_nchw(graph, x, op_type, *inputs, **attributes):
    """``Transpose(op_type(Transpose(x, NCHW), *inputs), NHWC)``."""
    nchw = graph.node("Transpose", [x.name], perm=list(TO_NCHW))
    out = graph.node(op_type, [nchw, *inputs], **attributes)
    return graph.node("Transpose", [out], perm=list(TO_NHWC))


def conv_pads(layer, input_hw) -> list:
    """ONNX's ``pads`` ``[top, left, bottom, right]`` of the layer's padding (``"same"`` resolved for ``input_hw``)."""
    (top, bottom), (left, right) = padding_amounts(layer.padding, input_hw, layer.kernel_size, layer.stride,
                                                   layer.dilation)
    return [top, left, bottom, right]


@register_converter(Convolution2D)
def _convolution2d(layer, graph, x):
    """out = conv(xpad, K) + bias with the layer's stride, padding, dilation and groups (section 22.2)."""
    return _in_nchw(graph, x, "Conv", graph.constant(layer.kernels, "kernels"),
                    graph.constant(layer.biases.reshape(-1), "biases"),
                    kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                    pads=conv_pads(layer, x.shape[1:3]), dilations=list(layer.dilation), group=layer.groups)


@register_converter(MaxPooling2D)
def _max_pooling2d(layer, graph, x):
    """Max over each window, no padding, floor of the output size (section 22.3.1)."""
    return _in_nchw(graph, x, "MaxPool", kernel_shape=list(layer.pool_size), strides=list(layer.stride))


@register_converter(AveragePooling2D)
def _average_pooling2d(layer, graph, x):
    """Mean over each window, no padding (section 22.3.2)."""
    return _in_nchw(graph, x, "AveragePool", kernel_shape=list(layer.pool_size), strides=list(layer.stride))


@register_converter(GlobalAveragePooling2D)
def _global_average_pooling2d(layer, graph, x):
    """(B, H, W, C) -> (B, 1, 1, C): the mean over H and W, in NHWC directly (section 22.3.3)."""
    return graph.node("ReduceMean", [x.name], axes=[1, 2], keepdims=1)
