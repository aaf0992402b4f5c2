"""ONNX converters of Dense, Flatten, Dropout, Embedding and the normalizations, in evaluation form.

BatchNormalization is written with its running statistics as
``(x - mean) * inv_std * gamma + beta`` (Sub, Mul, Mul, Add, the order of our
forward pass) for any feature axis, so no NCHW transpose is needed.
LayerNormalization is ONNX's own operator (opset 17) over the trailing axes.
"""

from __future__ import annotations

import numpy as np

import backend

from ...core import Dense, Dropout, Embedding, Flatten
from ...normalization import BatchNormalization, LayerNormalization
from .registry import register_converter


@register_converter(Dense)
def _dense(layer, graph, x):
    """y = x W + b over the last axis: Gemm for (B, F); MatMul (+ Add) for (B, ..., F) and without a bias."""
    weights = graph.constant(layer.W, "W")
    if layer.use_bias and len(x.shape) == 2:
        return graph.node("Gemm", [x.name, weights, graph.constant(layer.b, "b")])
    product = graph.node("MatMul", [x.name, weights])
    return graph.node("Add", [product, graph.constant(layer.b, "b")]) if layer.use_bias else product


@register_converter(Flatten)
def _flatten(layer, graph, x):
    """(B, d1, d2, ...) -> (B, d1 d2 ...) in C order: the NHWC order of our Flatten (section 22.4)."""
    return graph.node("Flatten", [x.name], axis=1)


@register_converter(Dropout)
def _dropout(layer, graph, x):
    """The identity: inverted dropout needs no scaling in evaluation (section 25.5)."""
    return graph.node("Identity", [x.name])


@register_converter(Embedding)
def _embedding(layer, graph, x):
    """y = W[ids] (Gather along the rows of the table); the model input is int64 ids."""
    return graph.node("Gather", [graph.constant(layer.W, "W"), x.name], axis=0)


@register_converter(BatchNormalization)
def _batch_normalization(layer, graph, x):
    """y = gamma (x - running_mean) / sqrt(running_var + eps) + beta, per feature of ``layer.axis``."""
    ndim = len(x.shape)
    axis = layer.axis % ndim
    shape = tuple(layer.num_features if a == axis else 1 for a in range(ndim))[1:]  # broadcast over the batch

    def const(array, hint):
        return graph.constant(np.asarray(backend.to_numpy(array), dtype=graph.dtype).reshape(shape), hint)

    var = np.asarray(backend.to_numpy(layer.running_var), dtype=graph.dtype)
    inv_std = 1.0 / np.sqrt(var + graph.dtype.type(layer.epsilon))  # as our forward computes it
    centered = graph.node("Sub", [x.name, const(layer.running_mean, "running_mean")])
    x_hat = graph.node("Mul", [centered, const(inv_std, "inv_std")])
    return graph.node("Add", [graph.node("Mul", [x_hat, const(layer.gamma, "gamma")]), const(layer.beta, "beta")])


@register_converter(LayerNormalization)
def _layer_normalization(layer, graph, x):
    """ONNX LayerNormalization over the last ``len(normalized_shape)`` axes (ones / zeros when not learned)."""
    shape = layer.normalized_shape
    gamma = layer.gamma if layer.scale else np.ones(shape)
    beta = layer.beta if layer.center else np.zeros(shape)
    return graph.node("LayerNormalization", [x.name, graph.constant(gamma, "gamma"), graph.constant(beta, "beta")],
                      axis=-len(shape), epsilon=float(layer.epsilon))
