"""ONNX converters of the activation layers (book chapters 7-9, section 11.1), in evaluation form.

Every ONNX operator used here exists at opset 17. Where ONNX has the function
as one operator (Sigmoid, Tanh, Softsign, Relu, Softplus, Elu, Selu, ...) it is
used with the book's constants; GELU, SiLU and Mish are written with Erf,
Sigmoid, Tanh and Softplus. The random rectifiers export their evaluation
forms: RReLU with the mean slope ``(lower + upper) / 2``, NoisyReLU as ReLU.
"""

from __future__ import annotations

import math

import numpy as np

from ...activations import (ELU, GELU, SELU, HardSigmoid, HardTanh, LeakyReLU, Mish, NoisyReLU, PReLU, ReLU, RReLU,
                            Sigmoid, SiLU, Softmax, Softplus, Softsign, Tanh)
from .registry import register_converter

_UNARY = {Sigmoid: "Sigmoid", Tanh: "Tanh", Softsign: "Softsign", ReLU: "Relu", NoisyReLU: "Relu",
          Softplus: "Softplus"}


@register_converter(*_UNARY)
def _unary(layer, graph, x):
    """One ONNX operator of the same name: y = f(x)."""
    return graph.node(_UNARY[type(layer)], [x.name])


@register_converter(HardSigmoid)
def _hard_sigmoid(layer, graph, x):
    """y = max(0, min(1, x/6 + 1/2)): ONNX HardSigmoid with the book's slope 1/6 (eq. 7.8), not ONNX's 0.2."""
    return graph.node("HardSigmoid", [x.name], alpha=1.0 / 6.0, beta=0.5)


@register_converter(HardTanh)
def _hard_tanh(layer, graph, x):
    """y = clip(x, -1, 1) (eq. 7.10)."""
    low = graph.constant(np.array(-1.0), "min")
    high = graph.constant(np.array(1.0), "max")
    return graph.node("Clip", [x.name, low, high])


@register_converter(LeakyReLU)
def _leaky_relu(layer, graph, x):
    """y = x if x > 0 else alpha x (eq. 8.3)."""
    return graph.node("LeakyRelu", [x.name], alpha=float(layer.alpha))


@register_converter(RReLU)
def _rrelu(layer, graph, x):
    """Evaluation form of eq. 8.7: a LeakyReLU with the mean slope (lower + upper) / 2."""
    return graph.node("LeakyRelu", [x.name], alpha=(float(layer.lower) + float(layer.upper)) / 2.0)


@register_converter(PReLU)
def _prelu(layer, graph, x):
    """y = x if x > 0 else alpha_c x (eq. 8.5); the slopes (1,) or (C,) broadcast over the last axis."""
    return graph.node("PRelu", [x.name, graph.constant(layer.alpha, "alpha")])


@register_converter(ELU)
def _elu(layer, graph, x):
    """y = x if x > 0 else alpha (e^x - 1) (eq. 8.9)."""
    return graph.node("Elu", [x.name], alpha=float(layer.alpha))


@register_converter(SELU)
def _selu(layer, graph, x):
    """y = scale (x if x > 0 else alpha (e^x - 1)) (eq. 8.11): ONNX Selu's gamma is our scale."""
    return graph.node("Selu", [x.name], alpha=float(SELU.ALPHA), gamma=float(SELU.SCALE))


@register_converter(GELU)
def _gelu(layer, graph, x):
    """Exact: y = x/2 (1 + erf(x / sqrt 2)); tanh form: y = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)."""
    if layer.approximate == "tanh":
        cube = graph.node("Mul", [x.name, graph.node("Mul", [x.name, x.name])])
        inner = graph.node("Add", [x.name, graph.node("Mul", [cube, graph.constant(np.array(0.044715), "c")])])
        two_u = graph.node("Mul", [inner, graph.constant(np.array(2.0 * math.sqrt(2.0 / math.pi)), "k")])
        return graph.node("Mul", [x.name, graph.node("Sigmoid", [two_u])])
    erf = graph.node("Erf", [graph.node("Mul", [x.name, graph.constant(np.array(1.0 / math.sqrt(2.0)), "inv_sqrt2")])])
    one_plus = graph.node("Add", [erf, graph.constant(np.array(1.0), "one")])
    return graph.node("Mul", [graph.node("Mul", [x.name, graph.constant(np.array(0.5), "half")]), one_plus])


@register_converter(SiLU)
def _silu(layer, graph, x):
    """y = x sigmoid(x)."""
    return graph.node("Mul", [x.name, graph.node("Sigmoid", [x.name])])


@register_converter(Mish)
def _mish(layer, graph, x):
    """y = x tanh(softplus(x))."""
    return graph.node("Mul", [x.name, graph.node("Tanh", [graph.node("Softplus", [x.name])])])


@register_converter(Softmax)
def _softmax(layer, graph, x):
    """Softmax along ``layer.axis`` (section 11.1; ONNX Softmax of opset 13 and later normalizes one axis)."""
    return graph.node("Softmax", [x.name], axis=int(layer.axis))
