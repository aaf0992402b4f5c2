"""ONNX converters of the blocks: Sequential, Residual, Add, Concatenate, Multiply, Identity.

A block's converter converts each child on the block's input (through
:meth:`GraphBuilder.convert`, which keeps the child's path for error
messages) and combines the outputs as its forward pass does.
"""

from __future__ import annotations

from ...containers import Add, Concatenate, Identity, Multiply, Residual, Sequential
from .registry import register_converter


@register_converter(Sequential)
def _sequential(layer, graph, x):
    """The children in order, each on the previous one's output."""
    for i, child in enumerate(layer.layers):
        x = graph.convert(child, x, i)
    return x.name


def _branches(layer, graph, x) -> list:
    return [graph.convert(child, x, i).name for i, child in enumerate(layer.sublayers())]


def _fold(graph, op_type, names) -> str:
    """``op(op(n0, n1), n2) ...``, or an Identity of the single name."""
    if len(names) == 1:
        return graph.node("Identity", names)
    out = names[0]
    for name in names[1:]:
        out = graph.node(op_type, [out, name])
    return out


@register_converter(Residual, Add)
def _add(layer, graph, x):
    """y = F(x) + S(x) (Residual), y = sum_i B_i(x) (Add)."""
    return _fold(graph, "Add", _branches(layer, graph, x))


@register_converter(Multiply)
def _multiply(layer, graph, x):
    """y = prod_i B_i(x), with NumPy broadcasting (ONNX Mul broadcasts the same way)."""
    return _fold(graph, "Mul", _branches(layer, graph, x))


@register_converter(Concatenate)
def _concatenate(layer, graph, x):
    """The branches joined along ``layer.axis`` (NHWC tensors, as ours)."""
    return graph.node("Concat", _branches(layer, graph, x), axis=int(layer.axis))


@register_converter(Identity)
def _identity(layer, graph, x):
    """y = x."""
    return graph.node("Identity", [x.name])
