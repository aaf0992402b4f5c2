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

from backend.checks import check_positive_int

from .. import training
from ..base import BIAS_NAMES, Layer, input_gradient_needed, input_gradient_unused, sublayers  # noqa: F401 (BIAS_NAMES)
from ..saving import checkpoint
from .base import Container, check_layer, child_backward


class Sequential(Container):
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
        super().__init__()  # params and buffers are views over the layers
        self.layers = []
        self.input_shape = None
        if input_shape is not None:
            shape = tuple(input_shape) if isinstance(input_shape, (tuple, list)) else (input_shape,)
            self.input_shape = tuple(check_positive_int(s, f"input_shape[{i}]") for i, s in enumerate(shape))
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
        self.layers.append(check_layer(layer, f"layers[{len(self.layers)}]"))
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

    # -- the Layer protocol ---------------------------------------------------
    def forward(self, input_data):
        x = input_data
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, grad_output):
        """Backpropagate through every layer; return ``(grad_input, param_grads)``.

        ``param_grads`` is a flat list aligned with :attr:`params` (also kept in :attr:`grads`).
        Inside :func:`layers.base.input_gradient_unused` for this block, its first
        layer may skip ``grad_input`` (then None).
        """
        per_layer = [None] * len(self.layers)
        grad = grad_output
        for i in range(len(self.layers) - 1, 0, -1):
            grad, per_layer[i] = child_backward(self.layers[i], grad, f"layers[{i}]")
        if self.layers:
            if input_gradient_needed(self):
                grad, per_layer[0] = child_backward(self.layers[0], grad, "layers[0]")
            else:  # nobody reads this block's dE/dx: nor its first layer's, the only one that sees its input
                with input_gradient_unused(self.layers[0]):
                    grad, per_layer[0] = child_backward(self.layers[0], grad, "layers[0]")
        self.grads = [g for layer_grads in per_layer if layer_grads for g in layer_grads]
        return grad, self.grads

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
        return shape

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

    def export_onnx(self, path, input_shape=None, dynamic_axes=None) -> str:
        """Write the model to ``path`` as an ONNX file (evaluation mode, float32, dynamic batch); return the path.

        ``input_shape`` is one sample's shape (no batch axis); default: the
        constructor's ``input_shape``, else ``(input_size,)`` of a first Dense
        layer; ``dynamic_axes``: input axes besides the batch that may vary (``(1,)``
        for sequences). See :func:`layers.saving.onnx.export` (needs ``pip install "camadas[onnx]"``).
        """
        from ..saving import onnx

        if input_shape is None:
            input_shape = self._guess_input_shape()
            if input_shape is None:
                raise ValueError("export_onnx: input_shape: expected one sample's shape, e.g. (8, 8, 1), got None "
                                 "(the model cannot guess it: its first layer is not a Dense)")
        return onnx.export(self, path, input_shape, dynamic_axes)

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
