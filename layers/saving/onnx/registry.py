"""Which function converts which layer class to ONNX nodes: one small converter per class.

A converter is ``convert(layer, graph, x) -> str``: it adds the nodes that
compute ``layer``'s evaluation-mode forward pass on the tensor ``x``
(:class:`~layers.saving.onnx.graph.Value`: its name and shape) to ``graph``
(:class:`~layers.saving.onnx.graph.GraphBuilder`) and returns the name of the
output. Adding a layer to the exporter is one function registered here::

    @register_converter(MyLayer)
    def _my_layer(layer, graph, x):
        return graph.node("Relu", [x.name])

Lookup is by the exact class (a subclass that changes ``forward`` must not be
exported as its parent).
"""

from __future__ import annotations

#: layer class -> converter
CONVERTERS: dict = {}


class OnnxExportError(TypeError):
    """A layer of the model cannot be written to ONNX (the message names it and its path in the model)."""


def register_converter(*classes):
    """Decorator: ``@register_converter(Dense)`` registers the function as the converter of ``Dense``.

    Parameters
    ----------
    *classes : type
        Layer classes the function converts (a function may serve several, e.g. the unary activations).
    """
    if not classes or not all(isinstance(cls, type) for cls in classes):
        raise TypeError(f"register_converter: expected layer classes, got {classes!r}")

    def decorate(function):
        for cls in classes:
            CONVERTERS[cls] = function
        return function

    return decorate


def converter_for(layer, path: str):
    """The converter of ``type(layer)``; an :class:`OnnxExportError` naming the layer and ``path`` when none."""
    function = CONVERTERS.get(type(layer))
    if function is None:
        where = f"layer {path!r}" if path else "the model"
        raise OnnxExportError(
            f"export_onnx: {where} ({type(layer).__name__}) cannot be exported to ONNX: no converter is "
            f"registered for {type(layer).__module__}.{type(layer).__qualname__}; write one and register it with "
            "layers.saving.onnx.register_converter (see its docstring)"
        )
    return function
