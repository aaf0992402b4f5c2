"""The training loop of :class:`layers.Sequential`: fit, evaluate and predict (book chapter 6; slides 001-003).

Functions taking the model; ``Sequential.fit``, ``Sequential.evaluate`` and
``Sequential.predict`` are thin methods over them (their docstrings hold the
full parameter lists). One training step (section 6.2): forward a batch,
``E = loss.forward``, ``loss.backward``, ``model.backward`` (the chain rule,
eqs. 6.5-6.12), add the L1/L2 gradients, clip, ``optimizer.step(params, grads)``
(in place).

Data checks and batching live in :mod:`layers.training_data`, the dead-ReLU
diagnostic in :mod:`layers.dead_relu`, the accuracy rules in :mod:`layers.metrics`.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

import backend

from . import metrics as metrics_module
from .callbacks import Callback
from .dead_relu import DeadReluMonitor, is_relu
from .history import History
from .training_data import check_data, take_batch
from .validation import check_positive_int


def fit(model, X, y, loss="mse", optimizer="sgd", epochs=1, batch_size=32, validation_data=None,
        callbacks=(), shuffle=True, seed=None, verbose=1, metrics=("accuracy",), clipnorm=None,
        clipvalue=None, l1=0.0, l2=0.0, track_gradients=False) -> History:
    """Train ``model`` with mini-batch gradient descent; return the :class:`~layers.history.History`.

    Parameters and errors: see :meth:`layers.Sequential.fit`. ``model`` is a
    :class:`~layers.Sequential` (anything with its ``layers``, ``params``,
    ``backward``, ``device`` and ``dtype``); its layers are in training mode
    during the epochs and get their previous modes back at the end, also on error.
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
    if not model.layers:
        raise ValueError("Sequential.fit: the model has no layers")
    X, y = check_data(X, y)
    if validation_data is not None:
        if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
            raise TypeError("validation_data: expected a tuple (X_val, y_val)")
        X_val, y_val = check_data(*validation_data, xname="X_val", yname="y_val")
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
    dev, dtype = model.device, model.dtype
    penalized = model._penalized() if (l1 or l2) else []
    specs = _metric_specs(metrics, loss, y)
    refined = False
    rng = np.random.default_rng(seed)
    param_layers = [i for i, layer in enumerate(model.layers) if getattr(layer, "params", None)]
    monitor = DeadReluMonitor(i for i, layer in enumerate(model.layers) if is_relu(layer)) \
        if track_gradients else None

    history = History()
    history.params = {"epochs": epochs, "batch_size": batch_size, "samples": n, "steps": steps,
                      "loss": repr(loss), "optimizer": repr(optimizer), "device": str(dev)}
    if track_gradients:
        history.labels["grad_norms"] = [_label(i, model.layers[i]) for i in param_layers]
        history.labels["dead_relu_fraction"] = [_label(i, model.layers[i]) for i in monitor.indices]
    model.history, model.loss, model.optimizer = history, loss, optimizer
    model.stop_training = False
    saved_modes, saved_own = model._modes(), model.training
    for cb in callbacks:
        cb.set_model(model)
    try:
        for cb in callbacks:
            cb.on_train_begin({})
        for epoch in range(epochs):
            model.train()
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
                    xb = take_batch(X, index, dev, dtype, cast_integers=True)
                    yb = take_batch(y, index, dev, model.dtype, cast_integers=False)
                    out = model._forward(xb, monitor)
                    if not refined:
                        specs = _refine_metric_specs(specs, loss, y, out.shape)
                        refined = True
                    batch_loss = loss.forward(out, yb)
                    _, grads = model.backward(loss.backward())
                    if track_gradients:
                        for j, i in enumerate(param_layers):
                            norm_sums[j] = norm_sums[j] + _layer_norm(model._layer_grads[i])
                    if penalized:
                        params = model.params
                        sub = add_penalty_gradients([params[k] for k in penalized],
                                                    [grads[k] for k in penalized], l1, l2)
                        grads = list(grads)
                        for k, g in zip(penalized, sub):
                            grads[k] = g
                    if clipnorm is not None:
                        grads = clip_by_global_norm(grads, clipnorm)
                    if clipvalue is not None:
                        grads = clip_by_value(grads, clipvalue)
                    optimizer.step(model.params, grads)

                    bs = len(out)
                    loss_sum += batch_loss * bs
                    seen += bs
                    _add_metric_sums(specs, out, yb, sums, counts)
                    logs = {"loss": batch_loss, "size": bs}
                    for cb in callbacks:
                        cb.on_batch_end(step, logs)
                    if verbose == 1:
                        bar.set_postfix(_postfix(loss_sum / seen, sums, counts), refresh=False)
                        bar.update(1)
                    if model.stop_training:
                        break
                logs = {"loss": loss_sum / max(seen, 1)}
                for name in sums:
                    logs[name] = sums[name] / max(counts[name], 1)
                if validation_data is not None:
                    val = _evaluate_batches(model, X_val, y_val, loss, specs, batch_size, dev)
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
            if model.stop_training:
                break
        for cb in callbacks:
            cb.on_train_end({})
    finally:
        model._restore_modes(saved_modes, saved_own)
    return history


def evaluate(model, X, y, loss=None, metrics=("accuracy",), batch_size=None) -> dict:
    """Loss and metrics of ``model`` on ``(X, y)`` in evaluation mode; see :meth:`layers.Sequential.evaluate`.

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float, ...}``.
    """
    from .losses import get_loss

    if loss is None:
        if model.loss is None:
            raise ValueError("evaluate: loss: expected a loss (e.g. loss='mse'); the model was never fit")
        loss = model.loss
    loss = get_loss(loss)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    X, y = check_data(X, y)
    specs = _metric_specs(metrics, loss, y)
    return _evaluate_batches(model, X, y, loss, specs, batch_size, model.device)


def predict(model, X, batch_size=None):
    """Outputs of ``model`` for ``X`` (shape (samples, ...)) in evaluation mode; see :meth:`layers.Sequential.predict`.

    Returns
    -------
    array, shape (samples, ...) as the last layer gives
        NumPy when ``X`` is a NumPy array (or list), else on the model's device.
    """
    X, _ = check_data(X, None)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    n = len(X)
    batch_size = n if batch_size is None else min(batch_size, n)
    dev = model.device
    with _evaluation_mode(model):
        outputs = [model.forward(take_batch(X, slice(s, s + batch_size), dev, model.dtype, cast_integers=True))
                   for s in range(0, n, batch_size)]
    out = outputs[0] if len(outputs) == 1 else backend.get_array_module(outputs[0]).concatenate(outputs)
    return backend.to_numpy(out) if not backend.is_cupy_array(X) else out


# -- evaluation ---------------------------------------------------------------------------------------------
@contextmanager
def _evaluation_mode(model):
    """Every layer in evaluation mode inside the block; the previous modes restored afterwards."""
    modes, own = model._modes(), model.training
    model.eval()
    try:
        yield model
    finally:
        model._restore_modes(modes, own)


def _evaluate_batches(model, X, y, loss, specs, batch_size, dev) -> dict:
    """Batch-size-weighted mean loss and metrics over ``(X, y)``, in evaluation mode."""
    with _evaluation_mode(model):
        n = len(X)
        batch_size = n if batch_size is None else min(batch_size, n)
        loss_sum, sums, counts = 0.0, {}, {}
        for start in range(0, n, batch_size):
            index = slice(start, start + batch_size)
            xb = take_batch(X, index, dev, model.dtype, cast_integers=True)
            yb = take_batch(y, index, dev, model.dtype, cast_integers=False)
            out = model.forward(xb)
            if start == 0:
                specs = _refine_metric_specs(specs, loss, y, out.shape)
            loss_sum += loss.forward(out, yb) * len(out)
            _add_metric_sums(specs, out, yb, sums, counts)
    result = {"loss": loss_sum / n}
    for name in sums:
        result[name] = sums[name] / max(counts[name], 1)
    return result


# -- metrics ------------------------------------------------------------------------------------------------
def _metric_specs(metrics, loss, y):
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


def _refine_metric_specs(specs, loss, y, out_shape):
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


def _add_metric_sums(specs, out, yb, sums, counts):
    """Add one batch's metric sums and counts (accuracy: correct/total; callables: value x batch size)."""
    for name, fn, kind, threshold in specs:
        if fn is None:
            correct, total = metrics_module.accuracy_counts(out, yb, kind, threshold)
            sums[name] = sums.get(name, 0.0) + correct
            counts[name] = counts.get(name, 0) + total
        else:
            sums[name] = sums.get(name, 0.0) + float(fn(out, yb)) * len(out)
            counts[name] = counts.get(name, 0) + len(out)


# -- progress and diagnostics -------------------------------------------------------------------------------
def _label(index: int, layer) -> str:
    return f"{index}:{type(layer).__name__}"


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
