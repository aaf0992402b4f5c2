"""A model made of layers applied in order (book chapter 6; slides 001-003).

``Sequential`` is itself a :class:`~layers.base.Layer`: its forward is the
composition of its layers' forwards, its backward runs their backwards in
reverse order (the chain rule of section 6.2, eqs. 6.5-6.12), so a Sequential
can be gradient-checked with :func:`layers.testing.check_gradients` and nested
inside another one. Its ``fit``, ``evaluate`` and ``predict`` are the functions
of :mod:`layers.training` (the one training loop, which trains any Layer).

Example
-------
>>> import numpy as np, layers, optimizers
>>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
>>> y = np.array([[0], [1], [1], [0]], dtype=np.float32)
>>> model = layers.Sequential([layers.Dense(2, 8, seed=0), layers.get_activation("tanh"),
...                            layers.Dense(8, 1, seed=1), layers.get_activation("sigmoid")])
>>> history = model.fit(X, y, loss="mse", optimizer=optimizers.SGD(0.5), epochs=500,
...                     batch_size=4, verbose=0, seed=0)         # doctest: +SKIP
>>> history.history["accuracy"][-1]                              # doctest: +SKIP
1.0
"""

from __future__ import annotations

import numbers

import numpy as np

import backend
from backend.checks import check_dtype, check_positive_int

from .. import training
from ..base import BIAS_NAMES, Layer, param_owners, sublayers, walk  # noqa: F401 (BIAS_NAMES re-exported)
from ..saving import checkpoint


class Sequential(Layer):
    """Layers applied one after the other: ``output = f_n(... f_2(f_1(x)))``.

    Parameters
    ----------
    layers : list of Layer
        Any objects with ``forward`` and ``backward`` (``Layer`` subclasses,
        including the book's code blocks); another Sequential is allowed.
    input_shape : tuple of int, optional
        Shape of one sample (no batch axis), e.g. ``(28, 28, 1)``; only used
        by :meth:`summary`. Without it, :meth:`summary` takes ``(input_size,)``
        from a first layer that has one (Dense).

    Attributes
    ----------
    layers : list
    params : list of arrays
        Every layer's params, in layer order: the very array objects the
        layers hold (optimizers update them in place).
    grads : list of arrays or None
        Aligned with ``params``, set by :meth:`backward`.
    buffers : dict
        Every layer's buffers, keyed ``"<layer index>.<name>"``.
    history : History or None
        Of the last :meth:`fit`.
    loss, optimizer
        The loss and optimizer objects of the last :meth:`fit` (``evaluate``
        uses that loss when none is given).
    stop_training : bool
        Set by callbacks to end :meth:`fit` after the current batch.

    Shapes
    ------
    input (batch, ...) as the first layer expects -> output of the last layer.

    Backward (chain rule, section 6.2)::

        g_n = dE/dy;   (g_{k-1}, dE/dθ_k) = layer_k.backward(g_k),  k = n..1
    """

    def __init__(self, layers=None, input_shape=None):
        # Layer.__init__ is not called: params and buffers are views over the layers.
        self.layers = []
        self.training = True
        self.input_shape = None
        if input_shape is not None:
            shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
            self.input_shape = tuple(check_positive_int(s, f"input_shape[{i}]") for i, s in enumerate(shape))
        self.grads = None
        self.history = None
        self.loss = None
        self.optimizer = None
        self.stop_training = False
        if layers is None:
            layers = []
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers: expected a list of layers, got {type(layers).__name__}")
        for layer in layers:
            self.add(layer)

    def add(self, layer):
        """Append a layer; returns self."""
        if isinstance(layer, type):
            raise TypeError(f"layers[{len(self.layers)}]: expected a Layer instance, got the class {layer.__name__} "
                            f"(call it: {layer.__name__}(...))")
        if not (callable(getattr(layer, "forward", None)) and callable(getattr(layer, "backward", None))):
            raise TypeError(
                f"layers[{len(self.layers)}]: expected a Layer (an object with forward and backward), "
                f"got {type(layer).__name__}"
            )
        self.layers.append(layer)
        return self

    def __len__(self) -> int:
        return len(self.layers)

    def __getitem__(self, index):
        return self.layers[index]

    def __iter__(self):
        return iter(self.layers)

    def sublayers(self) -> list:
        """The layers, in order (the Layer protocol's way to visit a block)."""
        return list(self.layers)

    # -- parameters -----------------------------------------------------------
    @property
    def params(self) -> list:
        return [p for layer in self.layers for p in (getattr(layer, "params", None) or [])]

    @property
    def buffers(self) -> dict:
        return {
            f"{i}.{key}": value
            for i, layer in enumerate(self.layers)
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

    def get_weights(self) -> list:
        """Copies of every parameter, then every buffer (on their device)."""
        return [p.copy() for p in self.params] + [b.copy() for b in self.buffers.values()]

    def set_weights(self, weights) -> None:
        """Copy ``weights`` (as returned by :meth:`get_weights`) into the parameters and buffers, in place."""
        targets = self.params + list(self.buffers.values())
        weights = list(weights)
        if len(weights) != len(targets):
            raise ValueError(f"weights: expected {len(targets)} arrays (params then buffers), got {len(weights)}")
        for i, (t, w) in enumerate(zip(targets, weights)):  # every check before the first copy
            if not hasattr(w, "shape") or not hasattr(w, "dtype"):
                raise TypeError(f"weights[{i}]: expected an array, got {type(w).__name__}")
            if tuple(t.shape) != tuple(w.shape):
                raise ValueError(f"weights[{i}]: expected shape {tuple(t.shape)}, got shape {tuple(w.shape)}")
            if w.dtype.kind not in "fiu":
                raise TypeError(f"weights[{i}]: expected a numeric (float) array, got dtype {w.dtype}")
        for t, w in zip(targets, weights):
            t[...] = backend.to_device(w, backend.device_of(t))

    # -- the Layer protocol ---------------------------------------------------
    def forward(self, input_data):
        x = input_data
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        """Backpropagate through every layer; return ``(grad_input, param_grads)``.

        ``param_grads`` is a flat list aligned with :attr:`params` (also kept in :attr:`grads`).
        """
        per_layer = [None] * len(self.layers)
        grad = grad_output
        for i in range(len(self.layers) - 1, -1, -1):
            layer = self.layers[i]
            result = layer.backward(grad)
            if not (isinstance(result, tuple) and len(result) == 2):
                raise TypeError(
                    f"layers[{i}] ({type(layer).__name__}).backward: expected a tuple (grad_input, param_grads), "
                    f"got {type(result).__name__}"
                )
            grad, layer_grads = result
            params = getattr(layer, "params", None) or []
            if params:
                if layer_grads is None or len(layer_grads) != len(params):
                    got = "None" if layer_grads is None else f"{len(layer_grads)} gradients"
                    raise ValueError(
                        f"layers[{i}] ({type(layer).__name__}).backward: expected {len(params)} parameter "
                        f"gradients (one per param), got {got}"
                    )
                per_layer[i] = list(layer_grads)
        self.grads = [g for layer_grads in per_layer if layer_grads for g in layer_grads]
        return grad, self.grads

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
        return shape

    # -- modes and devices ------------------------------------------------------
    def to(self, device):
        """Move every layer's params and buffers to ``device``; returns self."""
        dev = backend.resolve_device(device)
        for layer in self._movable("to"):
            layer.to(dev)
        return self

    def astype(self, dtype):
        """Cast every layer's params and buffers to ``dtype`` (float32 or float64); returns self.

        Raises
        ------
        TypeError
            ``dtype`` is not float32 or float64 (float16 is refused, see
            :mod:`backend.dtypes`); nothing is changed.
        """
        dtype = check_dtype(dtype, where="Sequential.astype")
        for layer in self._movable("astype"):
            layer.astype(dtype)
        return self

    def _movable(self, method: str) -> list:
        """Layers that have ``method``; a layer with params but without it is an error."""
        out = []
        for i, layer in enumerate(self.layers):
            if hasattr(layer, method):
                out.append(layer)
            elif getattr(layer, "params", None):
                raise TypeError(
                    f"layers[{i}] ({type(layer).__name__}) has params but no .{method}(); subclass layers.base.Layer"
                )
        return out

    # -- training and inference (one loop, in layers.training; these are its functions) ----------------------
    fit = training.fit
    evaluate = training.evaluate
    predict = training.predict

    # -- description ------------------------------------------------------------------
    def _guess_input_shape(self):
        if self.input_shape is not None:
            return self.input_shape
        first = self.layers[0] if self.layers else None
        size = getattr(first, "input_size", None)
        return (int(size),) if isinstance(size, numbers.Integral) else None

    def summary(self, input_shape=None, print_fn=print) -> str:
        """Table of layers with output shape and parameter count; printed and returned.

        Parameters
        ----------
        input_shape : tuple of int, optional
            One sample's shape (no batch axis). Default: the constructor's
            ``input_shape``, else ``(input_size,)`` of a first Dense layer;
            without one, output shapes show as ``?``.
        print_fn : callable or None
            Called with the text (``None``: do not print).
        """
        if input_shape is not None and not isinstance(input_shape, (tuple, list)):
            input_shape = (input_shape,)
        shape = tuple(input_shape) if input_shape is not None else self._guess_input_shape()
        current = None if shape is None else (1,) + tuple(shape)
        rows = []
        for i, layer in enumerate(self.layers):
            current = _summary_rows(layer, str(i), 0, current, rows)
        widths = [max([len(h)] + [len(r[c]) for r in rows]) for c, h in
                  enumerate(("Layer (type)", "Output shape", "Param #"))]
        line = "=" * (sum(widths) + 4)

        def fmt(cols):
            return f"{cols[0]:<{widths[0]}}  {cols[1]:<{widths[1]}}  {cols[2]:>{widths[2]}}"

        lines = ["Model: Sequential", fmt(("Layer (type)", "Output shape", "Param #")), line]
        lines += [fmt(r) for r in rows]
        lines += [line, f"Total params: {self.count_params():,}",
                  f"Input shape: {'?' if shape is None else (None,) + tuple(shape)}  "
                  f"device: {self.device}  dtype: {np.dtype(self.dtype).name}"]
        if shape is None:
            lines.append("(give summary(input_shape=...) or Sequential(..., input_shape=...) for output shapes)")
        text = "\n".join(lines)
        if print_fn is not None:
            print_fn(text)
        return text

    def get_config(self) -> dict:
        kwargs = {"input_shape": self.input_shape} if self.input_shape is not None else {}
        return {"args": [list(self.layers)], "kwargs": kwargs}

    def __repr__(self) -> str:
        return f"Sequential([{', '.join(repr(layer) for layer in self.layers)}])"

    # -- persistence --------------------------------------------------------------------
    def save(self, path) -> str:
        """Save architecture, parameters and buffers to one ``.npz`` at ``path`` (atomic); return the path.

        See :mod:`layers.checkpoint` for the format. Arrays are saved from any
        device as NumPy; the file is written to a temporary name in the same
        directory and renamed, so an interrupted save never leaves a partial file.
        """
        return checkpoint.save_model(self, path)

    @classmethod
    def load(cls, path, device=None) -> "Sequential":
        """Rebuild a model saved with :meth:`save` on ``device`` (default: the current device).

        Raises
        ------
        FileNotFoundError
            No file at ``path``.
        layers.checkpoint.CheckpointError
            (a ValueError) truncated, foreign or incompatible file; the
            message names the path. No partially built model is returned.
        """
        model = checkpoint.load_model(path, device)
        if not isinstance(model, cls):
            raise checkpoint.CheckpointError(
                f"Sequential.load: {str(path)!r} holds a {type(model).__name__}, not a {cls.__name__}"
            )
        return model


def _output_shape(layer, shape):
    """``layer.output_shape(shape)``, or None when the shape is unknown or the layer cannot say."""
    if shape is None:
        return None
    try:
        return tuple(layer.output_shape(shape))
    except Exception:  # a user layer that cannot say: keep going without shapes
        return None


def _summary_rows(layer, label, depth, shape, rows):
    """Append the summary rows of ``layer`` and everything inside it; return its output shape (or None).

    A Sequential's children are chained; the children of any other block all
    receive the block's input (residual and parallel branches).
    """
    out = _output_shape(layer, shape)
    shown = "?" if out is None else str((None,) + tuple(out[1:]))
    count = layer.count_params() if hasattr(layer, "count_params") else sum(
        int(np.prod(p.shape)) for p in getattr(layer, "params", []) or [])
    rows.append((f"{'  ' * depth}{label}: {type(layer).__name__}", shown, f"{count:,}"))
    children = sublayers(layer)
    current = shape
    for i, child in enumerate(children):
        child_out = _summary_rows(child, f"{label}.{i}", depth + 1, current, rows)
        if isinstance(layer, Sequential):
            current = child_out
    return out
