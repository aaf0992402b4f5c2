"""What every block made of layers shares: parameters, buffers, devices and gradients of its children.

A block (Sequential, Residual, Add, ...) is a :class:`~layers.base.Layer`
whose forward calls its children's forwards and whose backward calls their
backwards and sums where paths meet (Thinc's combinators, in the book's
protocol). Its ``params`` is the concatenation of its children's params in
:meth:`sublayers` order, so ``param_grads`` is the concatenation of theirs.
"""

from __future__ import annotations


import backend
from backend.checks import check_dtype

from ..base import Layer, checks_skipped


def check_layer(layer, name: str):
    """Return ``layer`` after checking it has ``forward`` and ``backward`` (a Layer or the book's own classes)."""
    if not (callable(getattr(layer, "forward", None)) and callable(getattr(layer, "backward", None))):
        raise TypeError(f"{name}: expected a Layer (an object with forward and backward), got {type(layer).__name__}")
    return layer


def check_layer_list(layers, name: str) -> list:
    """A non-empty list or tuple of layers, as a list."""
    if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
        raise TypeError(f"{name}: expected a list of layers, got {type(layers).__name__}")
    if not layers:
        raise ValueError(f"{name}: expected at least one layer, got an empty list")
    return [check_layer(layer, f"{name}[{i}]") for i, layer in enumerate(layers)]


def child_backward(layer, grad_output, where: str):
    """``layer.backward(grad_output)`` checked: ``(grad_input, param_grads)`` with one gradient per param.

    ``param_grads`` comes back as a list (``[]`` for a layer without params). Inside
    :func:`layers.base.checks_done` the result's structure is trusted (it was checked once).
    """
    result = layer.backward(grad_output)
    if checks_skipped():
        grad_input, grads = result
        return grad_input, list(grads) if grads else []
    if not (isinstance(result, tuple) and len(result) == 2):
        raise TypeError(f"{where} ({type(layer).__name__}).backward: expected a tuple (grad_input, param_grads), "
                        f"got {type(result).__name__}")
    grad_input, grads = result
    params = getattr(layer, "params", None) or []
    if params:
        if grads is None or len(grads) != len(params):
            got = "None" if grads is None else f"{len(grads)} gradients"
            raise ValueError(f"{where} ({type(layer).__name__}).backward: expected {len(params)} parameter "
                             f"gradients (one per param), got {got}")
        return grad_input, list(grads)
    return grad_input, []


class Container(Layer):
    """Base class of blocks: parameters, buffers, modes and devices come from :meth:`sublayers`.

    Subclasses keep their children in attributes and list them in
    ``sublayers()``; ``Layer.__init__`` is not called (``params`` and
    ``buffers`` are views over the children).

    Attributes
    ----------
    params : list of arrays
        Every child's params, in order (the very arrays the children hold).
    buffers : dict
        Every child's buffers, keyed ``"<child index>.<name>"``.
    grads : list or None
        Aligned with ``params``, set by ``backward``.
    """

    def __init__(self):
        self.training = True
        self.grads = None

    @property
    def params(self) -> list:
        """Every parameter array of the sublayers, in order (aligned with ``grads``)."""
        return [p for layer in self.sublayers() for p in (getattr(layer, "params", None) or [])]

    @property
    def buffers(self) -> dict:
        """Non-trained state of the sublayers (e.g. running statistics), keyed ``"<index>.<name>"``."""
        return {
            f"{i}.{key}": value
            for i, layer in enumerate(self.sublayers())
            for key, value in (getattr(layer, "buffers", None) or {}).items()
        }

    @property
    def device(self):
        """Where the parameters live (the current device when there are none)."""
        params = self.params
        return backend.device_of(params[0]) if params else backend.get_device()

    @property
    def dtype(self):
        """The parameters' dtype (the default dtype when there are none)."""
        params = self.params
        return params[0].dtype if params else backend.get_default_dtype()

    def map_arrays(self, convert) -> None:
        for i, layer in enumerate(self.sublayers()):
            if callable(getattr(layer, "map_arrays", None)):
                layer.map_arrays(convert)
            elif getattr(layer, "params", None):
                raise TypeError(f"{type(self).__name__}: child {i} ({type(layer).__name__}) has params but no "
                                "map_arrays(); subclass layers.base.Layer")

    def to(self, device):
        """Move every child's params and buffers to ``device``; returns self."""
        dev = backend.resolve_device(device)
        for layer in self._children_with("to"):
            layer.to(dev)
        return self

    def astype(self, dtype):
        """Cast every child's params and buffers to the float ``dtype``; returns self.

        Raises
        ------
        TypeError
            ``dtype`` is not float32 or float64 (float16 is refused, see :mod:`backend.dtypes`);
            nothing is changed.
        """
        dtype = check_dtype(dtype, where=f"{type(self).__name__}.astype")
        for layer in self._children_with("astype"):
            layer.astype(dtype)
        return self

    def _children_with(self, method: str) -> list:
        out = []
        for i, layer in enumerate(self.sublayers()):
            if hasattr(layer, method):
                out.append(layer)
            elif getattr(layer, "params", None):
                raise TypeError(
                    f"layers[{i}] ({type(layer).__name__}) has params but no .{method}(); subclass layers.base.Layer"
                )
        return out

    def get_weights(self) -> list:
        """Copies of every parameter, then every buffer (on their device)."""
        return [p.copy() for p in self.params] + [b.copy() for b in self.buffers.values()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (as returned by :meth:`get_weights`) into the parameters and buffers, in place.

        Every array is checked (count, shape, numeric dtype) before the first copy, so a bad list
        changes nothing.
        """
        targets = self.params + list(self.buffers.values())
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"weights: expected {len(targets)} arrays (params then buffers), got {len(weights)}")
        for i, (t, w) in enumerate(zip(targets, weights)):
            if not hasattr(w, "shape") or not hasattr(w, "dtype"):
                raise TypeError(f"weights[{i}]: expected an array, got {type(w).__name__}")
            if tuple(t.shape) != tuple(w.shape):
                raise ValueError(f"weights[{i}]: expected shape {tuple(t.shape)}, got shape {tuple(w.shape)}")
            if w.dtype.kind not in "fiu":
                raise TypeError(f"weights[{i}]: expected a numeric (float) array, got dtype {w.dtype}")
        for t, w in zip(targets, weights):
            t[...] = backend.to_device(w, backend.device_of(t))
