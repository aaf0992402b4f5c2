"""A model made of layers applied in order, and its training loop (book chapter 6; slides 001-003).

``Sequential`` is itself a :class:`~layers.base.Layer`: its forward is the
composition of its layers' forwards, its backward runs their backwards in
reverse order (the chain rule of section 6.2, eqs. 6.5-6.12), so a Sequential
can be gradient-checked with :func:`layers.testing.check_gradients` and nested
inside another one.

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

import math
import numbers

import numpy as np
from tqdm.auto import tqdm

import backend

from . import checkpoint, metrics as metrics_module
from .base import Layer
from .callbacks import Callback
from .history import History
from .validation import check_positive_int

#: Attribute names of parameters that L1/L2 penalties leave alone (biases).
BIAS_NAMES = frozenset({"b", "bias", "biases", "beta", "gamma"})


def _is_relu(layer) -> bool:
    """True for ``ReLU`` layers (the library's, the book's user class, or subclasses of either)."""
    return any(cls.__name__ == "ReLU" for cls in type(layer).__mro__)


def _label(index: int, layer) -> str:
    return f"{index}:{type(layer).__name__}"


def _as_array(a, name: str):
    """NumPy/CuPy arrays as they are; lists and other array-likes through ``numpy.asarray``."""
    if isinstance(a, np.ndarray) or backend.is_cupy_array(a):
        return a
    try:
        return np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array, got {type(a).__name__} ({exc})") from exc


def _check_finite(a, name: str) -> None:
    if a.dtype.kind != "f":
        return
    xp = backend.get_array_module(a)
    bad = ~xp.isfinite(a)
    count = int(xp.count_nonzero(bad))
    if count:
        first = int(xp.argmax(bad.reshape(len(a), -1).any(axis=1))) if a.ndim else 0
        raise ValueError(
            f"{name}: expected finite values, got {count} NaN/inf value(s) (first in sample {first}); "
            "clean or impute the data before fit (training has not started)"
        )


def _check_data(X, y, xname: str = "X", yname: str = "y"):
    """Validate a data set for fit/evaluate; return ``(X, y)`` as arrays."""
    X = _as_array(X, xname)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{xname}: expected a numeric (float) array, got dtype {X.dtype}")
    if X.ndim < 1 or len(X) == 0:
        raise ValueError(f"{xname}: expected at least one sample (shape (samples, ...)), got shape {tuple(X.shape)}")
    if y is not None:
        y = _as_array(y, yname)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{yname}: expected a numeric array (floats, or integer class labels), got dtype {y.dtype}")
        if y.ndim < 1 or len(y) != len(X):
            got = len(y) if y.ndim else "a scalar"
            raise ValueError(
                f"{xname} and {yname}: expected the same number of samples, got len({xname})={len(X)} "
                f"and len({yname})={got}"
            )
        _check_finite(y, yname)
    _check_finite(X, xname)
    return X, y


class _DeadReluMonitor:
    """Which units of each ReLU layer gave a non-zero output at least once this epoch (section 8.3)."""

    def __init__(self, relu_indices):
        self.indices = list(relu_indices)
        self.alive = {}

    def observe(self, index, output) -> None:
        if index not in self.indices:
            return
        units = output.shape[-1] if output.ndim > 1 else 1
        fired = (output != 0).reshape(-1, units).any(axis=0)
        seen = self.alive.get(index)
        self.alive[index] = fired if seen is None else (seen | fired)

    def fractions(self) -> list:
        out = []
        for i in self.indices:
            alive = self.alive.get(i)
            if alive is None:
                out.append(float("nan"))
                continue
            xp = backend.get_array_module(alive)
            out.append(1.0 - int(xp.count_nonzero(alive)) / alive.size)
        self.alive = {}
        return out


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

    def _batch(self, a, index, dev, dtype):
        """One batch on the model's device; float data cast to the model's dtype, int/bool X too."""
        if isinstance(index, np.ndarray) and backend.is_cupy_array(a):
            index = backend.to_device(index, backend.device_of(a))
        part = a[index]
        if part.dtype.kind == "f" or dtype is not None and part.dtype.kind in "biu":
            part = part.astype(self.dtype if dtype is None else dtype, copy=False)
        return backend.to_device(part, dev)

    def _metric_specs(self, metrics, loss, y):
        """[(name, fn or None, kind, threshold)]; accuracy omitted where it does not apply."""
        if metrics is None:
            metrics = ()
        if isinstance(metrics, str) or callable(metrics):
            metrics = (metrics,)
        specs = []
        for m in metrics:
            if callable(m):
                specs.append((getattr(m, "__name__", "metric"), m, None, None))
            elif isinstance(m, str) and m.lower() in ("accuracy", "acc"):
                found = metrics_module.accuracy_kind(loss, y, None)
                if found is not None:
                    specs.append(("accuracy", None, found[0], found[1]))
            else:
                raise ValueError(f"metrics: expected 'accuracy' or a callable metric(y_pred, y_true), got {m!r}")
        return specs

    @staticmethod
    def _refine(specs, loss, y, out_shape):
        """Redo the accuracy decision once the output shape is known (one-hot vs one column)."""
        refined = []
        for name, fn, kind, threshold in specs:
            if fn is None:
                found = metrics_module.accuracy_kind(loss, y, tuple(out_shape))
                if found is None:
                    continue
                kind, threshold = found
            refined.append((name, fn, kind, threshold))
        return refined

    @staticmethod
    def _metric_sums(specs, out, yb, sums, counts):
        for name, fn, kind, threshold in specs:
            if fn is None:
                correct, total = metrics_module.accuracy_counts(out, yb, kind, threshold)
                sums[name] = sums.get(name, 0.0) + correct
                counts[name] = counts.get(name, 0) + total
            else:
                sums[name] = sums.get(name, 0.0) + float(fn(out, yb)) * len(out)
                counts[name] = counts.get(name, 0) + len(out)

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
        from optimizers.regularization import (add_penalty_gradients, check_nonnegative, check_positive_or_none,
                                               clip_by_global_norm, clip_by_value)

        from .losses import get_loss

        epochs = check_positive_int(epochs, "epochs")
        if batch_size is not None:
            batch_size = check_positive_int(batch_size, "batch_size")
        if verbose not in (0, 1, 2):
            raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
        clipnorm = check_positive_or_none(clipnorm, "clipnorm")
        clipvalue = check_positive_or_none(clipvalue, "clipvalue")
        l1 = check_nonnegative(l1, "l1")
        l2 = check_nonnegative(l2, "l2")
        if not self.layers:
            raise ValueError("Sequential.fit: the model has no layers")
        X, y = _check_data(X, y)
        if validation_data is not None:
            if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
                raise TypeError("validation_data: expected a tuple (X_val, y_val)")
            X_val, y_val = _check_data(*validation_data, xname="X_val", yname="y_val")
        if isinstance(callbacks, Callback):
            callbacks = [callbacks]
        callbacks = list(callbacks or ())
        for i, cb in enumerate(callbacks):
            if not isinstance(cb, Callback):
                raise TypeError(f"callbacks[{i}]: expected a layers.callbacks.Callback, got {type(cb).__name__}")
        loss = get_loss(loss)
        if isinstance(optimizer, str):
            from optimizers import get_optimizer

            optimizer = get_optimizer(optimizer)
        elif not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"optimizer: expected a name or an object with step(params, grads), got {optimizer!r}")
        n = len(X)
        batch_size = n if batch_size is None else min(batch_size, n)
        steps = math.ceil(n / batch_size)
        dev, dtype = self.device, self.dtype
        penalized = self._penalized() if (l1 or l2) else []
        specs = self._metric_specs(metrics, loss, y)
        refined = False
        rng = np.random.default_rng(seed)
        param_layers = [i for i, layer in enumerate(self.layers) if getattr(layer, "params", None)]
        monitor = _DeadReluMonitor(i for i, layer in enumerate(self.layers) if _is_relu(layer)) \
            if track_gradients else None

        history = History()
        history.params = {"epochs": epochs, "batch_size": batch_size, "samples": n, "steps": steps,
                          "loss": repr(loss), "optimizer": repr(optimizer), "device": str(dev)}
        if track_gradients:
            history.labels["grad_norms"] = [_label(i, self.layers[i]) for i in param_layers]
            history.labels["dead_relu_fraction"] = [_label(i, self.layers[i]) for i in monitor.indices]
        self.history, self.loss, self.optimizer = history, loss, optimizer
        self.stop_training = False
        saved_modes, saved_own = self._modes(), self.training
        for cb in callbacks:
            cb.set_model(self)
        try:
            for cb in callbacks:
                cb.on_train_begin({})
            for epoch in range(epochs):
                self.train()
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                order = rng.permutation(n) if shuffle else None
                loss_sum, seen, sums, counts = 0.0, 0, {}, {}
                norm_sums = [0.0] * len(param_layers)
                bar = tqdm(total=steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                           disable=verbose != 1, leave=True, dynamic_ncols=True)
                try:
                    for step in range(steps):
                        for cb in callbacks:
                            cb.on_batch_begin(step, {})
                        if order is None:
                            index = slice(step * batch_size, (step + 1) * batch_size)
                        else:
                            index = order[step * batch_size:(step + 1) * batch_size]
                        xb = self._batch(X, index, dev, dtype)
                        yb = self._batch(y, index, dev, None)
                        out = self._forward(xb, monitor)
                        if not refined:
                            specs = self._refine(specs, loss, y, out.shape)
                            refined = True
                        batch_loss = loss.forward(out, yb)
                        _, grads = self.backward(loss.backward())
                        if track_gradients:
                            for j, i in enumerate(param_layers):
                                norm_sums[j] = norm_sums[j] + _layer_norm(self._layer_grads[i])
                        if penalized:
                            params = self.params
                            sub = add_penalty_gradients([params[k] for k in penalized],
                                                        [grads[k] for k in penalized], l1, l2)
                            grads = list(grads)
                            for k, g in zip(penalized, sub):
                                grads[k] = g
                        if clipnorm is not None:
                            grads = clip_by_global_norm(grads, clipnorm)
                        if clipvalue is not None:
                            grads = clip_by_value(grads, clipvalue)
                        optimizer.step(self.params, grads)

                        bs = len(out)
                        loss_sum += batch_loss * bs
                        seen += bs
                        self._metric_sums(specs, out, yb, sums, counts)
                        logs = {"loss": batch_loss, "size": bs}
                        for cb in callbacks:
                            cb.on_batch_end(step, logs)
                        if verbose == 1:
                            bar.set_postfix(_postfix(loss_sum / seen, sums, counts), refresh=False)
                            bar.update(1)
                        if self.stop_training:
                            break
                    logs = {"loss": loss_sum / max(seen, 1)}
                    for name in sums:
                        logs[name] = sums[name] / max(counts[name], 1)
                    if validation_data is not None:
                        val = self._evaluate(X_val, y_val, loss, specs, batch_size, dev)
                        logs.update({f"val_{k}": v for k, v in val.items()})
                    if track_gradients:
                        logs["grad_norms"] = [float(s) / max(step + 1, 1) for s in norm_sums]
                        logs["dead_relu_fraction"] = monitor.fractions()
                    if verbose == 1:
                        bar.set_postfix(_postfix_logs(logs), refresh=True)
                finally:
                    bar.close()
                if verbose == 2:
                    tqdm.write(f"Epoch {epoch + 1}/{epochs} - " + " - ".join(
                        f"{k}: {v:.4g}" for k, v in _postfix_logs(logs).items()))
                history.append(epoch, logs)
                for cb in callbacks:
                    cb.on_epoch_end(epoch, logs)
                if self.stop_training:
                    break
            for cb in callbacks:
                cb.on_train_end({})
        finally:
            self._restore_modes(saved_modes, saved_own)
        return history

    # -- inference ----------------------------------------------------------------
    def _evaluate(self, X, y, loss, specs, batch_size, dev) -> dict:
        modes, own = self._modes(), self.training
        self.eval()
        try:
            n = len(X)
            batch_size = n if batch_size is None else min(batch_size, n)
            loss_sum, sums, counts = 0.0, {}, {}
            for start in range(0, n, batch_size):
                index = slice(start, start + batch_size)
                xb = self._batch(X, index, dev, self.dtype)
                yb = self._batch(y, index, dev, None)
                out = self.forward(xb)
                if start == 0:
                    specs = self._refine(specs, loss, y, out.shape)
                loss_sum += loss.forward(out, yb) * len(out)
                self._metric_sums(specs, out, yb, sums, counts)
        finally:
            self._restore_modes(modes, own)
        result = {"loss": loss_sum / n}
        for name in sums:
            result[name] = sums[name] / max(counts[name], 1)
        return result

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
        from .losses import get_loss

        if loss is None:
            if self.loss is None:
                raise ValueError("evaluate: loss: expected a loss (e.g. loss='mse'); the model was never fit")
            loss = self.loss
        loss = get_loss(loss)
        if batch_size is not None:
            batch_size = check_positive_int(batch_size, "batch_size")
        X, y = _check_data(X, y)
        specs = self._metric_specs(metrics, loss, y)
        return self._evaluate(X, y, loss, specs, batch_size, self.device)

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
        X, _ = _check_data(X, None)
        if batch_size is not None:
            batch_size = check_positive_int(batch_size, "batch_size")
        n = len(X)
        batch_size = n if batch_size is None else min(batch_size, n)
        dev = self.device
        modes, own = self._modes(), self.training
        self.eval()
        try:
            outputs = [self.forward(self._batch(X, slice(s, s + batch_size), dev, self.dtype))
                       for s in range(0, n, batch_size)]
        finally:
            self._restore_modes(modes, own)
        out = outputs[0] if len(outputs) == 1 else backend.get_array_module(outputs[0]).concatenate(outputs)
        return backend.to_numpy(out) if not backend.is_cupy_array(X) else out

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


def _layer_norm(grads):
    """sqrt(Σ g²) over one layer's gradients, as a device scalar (float64, no host sync)."""
    total = None
    for g in grads:
        xp = backend.get_array_module(g)
        s = xp.square(g.astype(np.float64, copy=False)).sum()
        total = s if total is None else total + s
    return backend.get_array_module(total).sqrt(total)


def _postfix(loss, sums, counts) -> dict:
    out = {"loss": f"{loss:.4g}"}
    for name in sums:
        out[name] = f"{sums[name] / max(counts[name], 1):.4g}"
    return out


def _postfix_logs(logs) -> dict:
    return {k: v for k, v in logs.items() if isinstance(v, float)}
