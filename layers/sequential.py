"""A model made of layers applied in order (book chapter 6; slides 001-003).

``Sequential`` is itself a :class:`~layers.base.Layer`: its forward is the
composition of its layers' forwards, its backward runs their backwards in
reverse order (the chain rule of section 6.2, eqs. 6.5-6.12), so a Sequential
can be gradient-checked with :func:`layers.testing.check_gradients` and nested
inside another one. Its ``fit``, ``evaluate`` and ``predict`` are thin methods
over :mod:`layers.training` (the training loop).

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

from . import checkpoint, training
from .base import Layer
from .history import History
from .validation import check_positive_int

#: Attribute names of parameters that L1/L2 penalties leave alone (biases).
BIAS_NAMES = frozenset({"b", "bias", "biases", "beta", "gamma"})


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
        self._layer_grads = []
        if layers is None:
            layers = []
        if isinstance(layers, Layer) or not isinstance(layers, (list, tuple)):
            raise TypeError(f"layers: expected a list of layers, got {type(layers).__name__}")
        for layer in layers:
            self.add(layer)

    def add(self, layer):
        """Append a layer; returns self."""
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
        for i, (t, w) in enumerate(zip(targets, weights)):
            if tuple(t.shape) != tuple(w.shape):
                raise ValueError(f"weights[{i}]: expected shape {tuple(t.shape)}, got shape {tuple(w.shape)}")
            t[...] = backend.to_device(w, backend.device_of(t))

    # -- the Layer protocol ---------------------------------------------------
    def forward(self, input_data):
        return self._forward(input_data)

    def _forward(self, x, monitor=None):
        for i, layer in enumerate(self.layers):
            x = layer.forward(x)
            if monitor is not None:
                monitor.observe(i, x)
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
        self._layer_grads = per_layer
        self.grads = [g for layer_grads in per_layer if layer_grads for g in layer_grads]
        return grad, self.grads

    def output_shape(self, input_shape):
        shape = tuple(input_shape)
        for layer in self.layers:
            shape = tuple(layer.output_shape(shape))
        return shape

    # -- modes and devices ------------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode on every layer (``mode=False``: evaluation); returns self."""
        self.training = bool(mode)
        for layer in self.layers:
            if hasattr(layer, "train"):
                layer.train(mode)
            else:
                layer.training = bool(mode)
        return self

    def _modes(self) -> list:
        return [getattr(layer, "training", True) for layer in self.layers]

    def _restore_modes(self, modes, own: bool) -> None:
        for layer, mode in zip(self.layers, modes):
            if hasattr(layer, "train"):
                layer.train(mode)
            else:
                layer.training = mode
        self.training = own

    def to(self, device):
        """Move every layer's params and buffers to ``device``; returns self."""
        dev = backend.resolve_device(device)
        for layer in self._movable("to"):
            layer.to(dev)
        return self

    def astype(self, dtype):
        """Cast every layer's params and buffers to ``dtype``; returns self."""
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

    # -- training ---------------------------------------------------------------
    def _penalized(self) -> list:
        """Indices in :attr:`params` of the weights L1/L2 penalise: arrays of ndim >= 2 not named as biases."""
        return [k for k, weight in enumerate(_weight_mask(self)) if weight]

    def fit(self, X, y, loss="mse", optimizer="sgd", epochs=1, batch_size=32, validation_data=None,
            callbacks=(), shuffle=True, seed=None, verbose=1, metrics=("accuracy",), clipnorm=None,
            clipvalue=None, l1=0.0, l2=0.0, track_gradients=False) -> History:
        """Train with mini-batch gradient descent; return the :class:`~layers.history.History`.

        Each step (book section 6.2): forward a batch, ``E = loss.forward``,
        ``loss.backward``, :meth:`backward`, add the L1/L2 gradients, clip,
        ``optimizer.step(params, grads)`` (in place).

        Parameters
        ----------
        X : array, shape (samples, ...)
            Inputs, NumPy (moved to the model's device one batch at a time) or
            on the model's device. Float data is cast to the model's dtype;
            integer/bool data too (XOR tables written as ints).
        y : array, shape (samples, ...)
            Targets (floats, cast to the model's dtype; integer class labels kept).
        loss : str or Loss
            See :func:`layers.losses.get_loss` (default ``"mse"``).
        optimizer : str or optimizer
            An object with ``step(params, grads)`` or a name for
            :func:`optimizers.get_optimizer` (default ``"sgd"``).
        epochs : int >= 1
        batch_size : int >= 1 or None
            ``None``: the whole set in one batch (batch gradient descent).
        validation_data : (X_val, y_val), optional
            Evaluated after every epoch (evaluation mode): ``val_loss``, ``val_accuracy``.
        callbacks : sequence of Callback
            E.g. :class:`~layers.callbacks.EarlyStopping`, :class:`~layers.callbacks.TerminateOnNaN`.
        shuffle : bool
            Reshuffle the samples every epoch.
        seed : int, optional
            Seed of the shuffling (layers draw their own randomness).
        verbose : {0, 1, 2}
            0 silent, 1 a tqdm bar per epoch (loss and metrics), 2 one line per epoch.
        metrics : sequence of "accuracy" or callables
            Accuracy is reported where it applies (see :mod:`layers.metrics`).
        clipnorm : float > 0, optional
            Rescale the gradients when their global norm exceeds it.
        clipvalue : float > 0, optional
            Clip every gradient element to [-clipvalue, clipvalue].
        l1, l2 : float >= 0
            Penalties l1 Σ|w| + l2 Σw² on the weights (params of ndim >= 2 not
            named ``b``/``bias``/``biases``; biases and normalisation scales are
            not penalised). Added as gradients; not part of the reported loss.
            Order: penalties, clipnorm, clipvalue (``optimizers.regularization``).
        track_gradients : bool
            Record ``"grad_norms"`` and ``"dead_relu_fraction"`` per epoch
            (see :class:`~layers.history.History`).

        Returns
        -------
        History
            ``history.history`` keys: ``"loss"``, ``"accuracy"`` (where it
            applies), other metrics by name, ``"val_*"`` with validation data,
            ``"grad_norms"`` and ``"dead_relu_fraction"`` with ``track_gradients``.

        Raises
        ------
        ValueError
            NaN/inf in X or y, X and y of different lengths, an empty set,
            batch_size or epochs < 1, before training starts.
        TypeError
            Non-numeric data, a non-callback in callbacks.
        """
        return training.fit(self, X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch_size,
                            validation_data=validation_data, callbacks=callbacks, shuffle=shuffle, seed=seed,
                            verbose=verbose, metrics=metrics, clipnorm=clipnorm, clipvalue=clipvalue, l1=l1, l2=l2,
                            track_gradients=track_gradients)

    # -- inference ----------------------------------------------------------------
    def evaluate(self, X, y, loss=None, metrics=("accuracy",), batch_size=None) -> dict:
        """Loss and metrics on ``(X, y)`` in evaluation mode (the layers' modes are restored).

        Parameters
        ----------
        X, y : arrays
            As for :meth:`fit` (NaN/inf rejected).
        loss : str or Loss, optional
            Default: the loss of the last :meth:`fit`.
        metrics : sequence
            As for :meth:`fit`; accuracy only where it applies.
        batch_size : int, optional
            Evaluate in batches of this size (default: one batch).

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float, ...}``; the loss is the
            batch-size-weighted mean of the batch losses.
        """
        return training.evaluate(self, X, y, loss=loss, metrics=metrics, batch_size=batch_size)

    def predict(self, X, batch_size=None):
        """Outputs for ``X`` in evaluation mode (the layers' modes are restored afterwards).

        Parameters
        ----------
        X : array, shape (samples, ...)
            Moved to the model's device batch by batch; float/int data cast to the model's dtype.
        batch_size : int, optional
            Default: everything in one batch.

        Returns
        -------
        array
            NumPy when ``X`` is a NumPy array (or list), else on the model's device.
        """
        return training.predict(self, X, batch_size=batch_size)

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
            if current is not None:
                try:
                    current = tuple(layer.output_shape(current))
                except Exception:  # a user layer that cannot say: keep going without shapes
                    current = None
            shown = "?" if current is None else str((None,) + tuple(current[1:]))
            count = layer.count_params() if hasattr(layer, "count_params") else sum(
                int(np.prod(p.shape)) for p in getattr(layer, "params", []) or [])
            rows.append((f"{i}: {type(layer).__name__}", shown, f"{count:,}"))
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


def _weight_mask(layer) -> list:
    """For each of ``layer.params``: is it a weight (ndim >= 2, attribute name not in BIAS_NAMES)?"""
    if isinstance(layer, Sequential):
        return [flag for sub in layer.layers for flag in _weight_mask(sub)]
    names = {id(v): name for name, v in vars(layer).items()}
    return [p.ndim >= 2 and names.get(id(p), "") not in BIAS_NAMES for p in getattr(layer, "params", None) or []]

