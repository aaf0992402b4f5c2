"""The ONNX graph under construction: nodes, constants, the layer being converted and its path.

Converters (one small function per layer class, :mod:`layers.saving.onnx.registry`)
receive a :class:`GraphBuilder` and the input :class:`Value`, add nodes with
:meth:`GraphBuilder.node` and constants with :meth:`GraphBuilder.constant`, and
return the name of their output; blocks call :meth:`GraphBuilder.convert` on
each child, which keeps the child's path in the model for error messages.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

import backend

from .registry import converter_for


class Value(NamedTuple):
    """A tensor of the graph: its name and its shape (batch axis first, given as 1)."""

    name: str
    shape: tuple


class GraphBuilder:
    """Collects the nodes and initializers of one exported model.

    Parameters
    ----------
    dtype : numpy dtype
        The float type of the exported tensors (parameters are cast to it).
    """

    def __init__(self, dtype=np.float32):
        import onnx.helper  # the optional dependency, imported where it is used

        self._helper = onnx.helper
        self.dtype = np.dtype(dtype)
        #: The ONNX element type of :attr:`dtype` (for Cast).
        self.tensor_type = onnx.helper.np_dtype_to_tensor_dtype(self.dtype)
        self.nodes: list = []
        self.initializers: list = []
        self._names: set = set()
        self._path: list = []

    # -- names and paths ---------------------------------------------------------------
    @property
    def path(self) -> str:
        """The path of the layer being converted, as :func:`layers.base.walk` writes it (``""`` for the root)."""
        return ".".join(self._path)

    def fresh(self, hint: str) -> str:
        """A tensor or node name not used yet, made of the current path and ``hint``."""
        base = f"{self.path or 'model'}/{hint}"
        name, k = base, 1
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    # -- building ----------------------------------------------------------------------
    def constant(self, array, hint: str) -> str:
        """Add ``array`` as an initializer (floats cast to :attr:`dtype`, moved to the CPU); return its name."""
        array = np.asarray(backend.to_numpy(array))
        if array.dtype.kind == "f":
            array = array.astype(self.dtype, copy=False)
        from onnx import numpy_helper

        name = self.fresh(hint)
        self.initializers.append(numpy_helper.from_array(np.array(array, order="C"), name))  # 0-d stays 0-d
        return name

    def node(self, op_type: str, inputs, outputs: int = 1, **attributes):
        """Add one node ``op_type(inputs)`` with ``attributes``; return the name of its output.

        ``outputs > 1``: the node has that many outputs (LSTM's Y, Y_h, Y_c) and the list of their names is
        returned. An input ``""`` is an omitted optional input.
        """
        names = [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, list(inputs), names, name=names[0], **attributes))
        return names[0] if outputs == 1 else names

    def shape(self, name: str, start: int = 0, end=None) -> str:
        """The int64 vector ``shape(name)[start:end]``, computed when the file runs (dynamic axes stay dynamic)."""
        return self.node("Shape", [name], start=start, **({} if end is None else {"end": end}))

    def convert(self, layer, x, child=None, **options) -> Value:
        """Convert ``layer`` applied to ``x`` (``child``: its index in the parent block, for the path).

        ``x`` is a :class:`Value`, or a tuple of them for a layer that takes a
        tuple (cross-attention's ``(query, key_value)``); ``options`` go to the
        converter (an attention mask, as forward's keyword).
        """
        if child is not None:
            self._path.append(str(child))
        try:
            out = converter_for(layer, self.path)(layer, self, x, **options)
            shape = x.shape if isinstance(x, Value) else tuple(v.shape for v in x)
            return Value(out, tuple(layer.output_shape(shape)))
        finally:
            if child is not None:
                self._path.pop()

    def rename(self, old: str, new: str) -> None:
        """Give the tensor ``old`` (a node output) the name ``new`` everywhere (for the graph's output)."""
        for node in self.nodes:
            for names in (node.input, node.output):
                for i, name in enumerate(names):
                    if name == old:
                        names[i] = new
