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
exported as its parent). A converter that handles some configurations of its
class only registers a ``check`` too (``check(layer) -> None``, or the reason
the configuration cannot be exported): :func:`check_exportable` asks every
layer of a model before anything is built.
"""

from __future__ import annotations

from ...base import walk

#: layer class -> converter
CONVERTERS: dict = {}
#: layer class -> check(layer) -> None or the reason the layer's configuration cannot be exported
CHECKS: dict = {}


class OnnxExportError(TypeError):
    """A layer of the model cannot be written to ONNX (the message names it and its path in the model)."""


def register_converter(*classes, check=None):
    """Decorator: ``@register_converter(Dense)`` registers the function as the converter of ``Dense``.

    Parameters
    ----------
    *classes : type
        Layer classes the function converts (a function may serve several, e.g. the unary activations).
    check : callable, optional
        ``check(layer) -> None`` when the layer's configuration can be exported, else a sentence saying
        why not (and what to do); the export then raises :class:`OnnxExportError` with it.
    """
    if not classes or not all(isinstance(cls, type) for cls in classes):
        raise TypeError(f"register_converter: expected layer classes, got {classes!r}")
    if check is not None and not callable(check):
        raise TypeError(f"register_converter: check: expected a function of the layer, got {check!r}")

    def decorate(function):
        for cls in classes:
            CONVERTERS[cls] = function
            if check is None:
                CHECKS.pop(cls, None)
            else:
                CHECKS[cls] = check
        return function

    return decorate


def _refuse(layer, path: str, reason: str):
    where = f"layer {path!r}" if path else "the model"
    return OnnxExportError(f"export_onnx: {where} ({type(layer).__name__}) cannot be exported to ONNX: {reason}")


def converter_for(layer, path: str):
    """The converter of ``type(layer)``; an :class:`OnnxExportError` naming the layer and ``path`` when none."""
    function = CONVERTERS.get(type(layer))
    if function is None:
        raise _refuse(layer, path, f"no converter is registered for {type(layer).__module__}."
                      f"{type(layer).__qualname__}; write one and register it with "
                      "layers.saving.onnx.register_converter (see its docstring)")
    return function


def check_exportable(model) -> None:
    """Raise :class:`OnnxExportError` for the first layer of ``model`` (depth first) that cannot be exported.

    A layer cannot be exported when its class has no converter, or when its
    class's ``check`` refuses its configuration; the message names the
    layer's class, its path in the model (as :func:`layers.base.walk` writes
    it) and the reason.
    """
    for path, layer in walk(model):
        converter_for(layer, path)
        check = CHECKS.get(type(layer))
        reason = check(layer) if check is not None else None
        if reason:
            raise _refuse(layer, path, reason)
