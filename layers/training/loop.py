"""The training loop: fit, evaluate and predict for any Layer (book chapter 6; slides 001-003).

One loop for every model: it uses only the Layer protocol (``forward``,
``backward -> (grad_input, param_grads)``, ``params``, ``train``/``eval`` and
:func:`layers.base.walk` to visit sublayers), so it trains a Sequential, a
residual block or a user's own Layer alike. ``Sequential.fit``,
``Sequential.evaluate`` and ``Sequential.predict`` are these functions.

One training step (section 6.2): forward a batch, ``E = loss.forward``,
``loss.backward``, ``model.backward`` (the chain rule, eqs. 6.5-6.12), then
``optimizer.step(params, grads)``, which applies penalties and clipping
(:mod:`optimizers.regularization`) to the weights the model's mask names.
"""

from __future__ import annotations

import math
from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

import backend
from backend.checks import check_bool, check_nonnegative, check_positive_int, check_positive_or_none, check_seed

from ..base import restore_modes, set_mode, takes_integer_input, walk, weight_mask
from . import distributed
from . import metrics as metrics_module
from .callbacks import Callback
from .data import batch_error, check_data, check_targets, take_batch
from .diagnostics import (
    DeadReluMonitor,
    gradient_norms_by_layer,
    is_relu,
    parameter_layers,
)
from .history import History, learning_rate_of


def fit(model, X, y, loss="mse", optimizer="sgd", epochs=1, batch_size=32, validation_data=None,
        callbacks=(), shuffle=True, seed=None, verbose=1, metrics=("accuracy",), clipnorm=None,
        clipvalue=None, l1=0.0, l2=0.0, track_gradients=False, communicator=None) -> History:
    """Train ``model`` with mini-batch gradient descent; return the :class:`~layers.training.history.History`.

    Each step (book section 6.2): forward a batch, ``E = loss.forward``,
    ``loss.backward``, ``model.backward``, then ``optimizer.step(params,
    grads)`` (in place), which adds the L1/L2 gradients of the weights and clips.

    Parameters
    ----------
    model : Layer
        Any object with the Layer protocol (``forward``, ``backward``,
        ``params``); its sublayers are visited with :func:`layers.base.walk`.
        ``Sequential.fit(X, y, ...)`` is this function with ``model=self``.
    X : array, shape (samples, ...)
        Inputs, NumPy (moved to the model's device one batch at a time) or
        on the model's device. Float data is cast to the model's dtype;
        integer/bool data too (XOR tables written as ints).
    y : array, shape (samples, ...)
        Targets (floats, cast to the model's dtype; integer class labels kept).
    loss : str or Loss
        See :func:`layers.losses.get_loss` (default ``"mse"``). A string naming
        a cross-entropy (``"bce"``, ``"categorical_crossentropy"``,
        ``"sparse_categorical_crossentropy"``) is built with
        ``from_logits=True`` unless the model's last layer is a Softmax,
        Sigmoid or HardSigmoid (:func:`layers.losses.loss_for_model`); pass a
        Loss instance to choose yourself.
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
        named ``b``/``bias``/``biases``/``gamma``/``beta``:
        :func:`layers.base.weight_mask`). Added as gradients; not part of the
        reported loss. These four options mean exactly what the optimizer's
        options of the same names mean (one implementation,
        :func:`optimizers.regularization.process_gradients`, with the model's
        weight mask); set each in one place only, here or in the optimizer.
        Order: penalties, clipnorm, clipvalue.
    track_gradients : bool
        Record ``"grad_norms"`` (per layer with parameters) and
        ``"dead_relu_fraction"`` (per ReLU layer, nested ones included) per
        epoch (see :class:`~layers.training.history.History`).
    communicator : backend.distributed.Communicator, optional
        Train data-parallel over its ranks (:mod:`layers.training.distributed`;
        also when ``optimizer`` is an :class:`optimizers.DataParallel`): every
        rank runs this same call on the same data; rank r trains on its slice
        of every global batch of ``batch_size`` samples, the gradients are
        averaged over the ranks, the epoch logs and validation metrics are
        combined over them (the same History and callback decisions on every
        rank); rank 0 alone shows progress and writes checkpoints; an
        exception on one rank ends every rank with a message naming it.

    Returns
    -------
    History
        ``history.history`` keys: ``"loss"``, ``"accuracy"`` (where it
        applies), other metrics by name, ``"lr"`` (the learning rate),
        ``"val_*"`` with validation data,
        ``"grad_norms"`` and ``"dead_relu_fraction"`` with ``track_gradients``.

    Raises
    ------
    ValueError
        NaN/inf in X or y, X and y of different lengths, an empty set,
        batch_size or epochs < 1, data that does not fit the model (checked on
        one sample of ``X``/``y`` and of ``validation_data`` before training:
        the message names the argument), targets the loss refuses anywhere in
        ``y`` or ``y_val`` (``Loss.check_targets``, run once on the whole
        array: a label out of range at sample 500 is reported, with its value
        and position, before training starts), an option set both here and in
        the optimizer, before training starts. A failure that only a later
        batch can reveal names the argument, the batch and the epoch.
    TypeError
        Non-numeric data, a non-callback in callbacks.
    """
    from ..losses import loss_for_model

    epochs = check_positive_int(epochs, "epochs")
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    if verbose not in (0, 1, 2) or isinstance(verbose, bool):
        raise ValueError(f"verbose: expected 0, 1 or 2, got {verbose!r}")
    shuffle, track_gradients = check_bool(shuffle, "shuffle"), check_bool(track_gradients, "track_gradients")
    seed = check_seed(seed)
    options = {"clipnorm": check_positive_or_none(clipnorm, "clipnorm"),
               "clipvalue": check_positive_or_none(clipvalue, "clipvalue"),
               "l1": check_nonnegative(l1, "l1"), "l2": check_nonnegative(l2, "l2")}
    params = list(getattr(model, "params", None) or [])
    if not params:
        raise ValueError(f"fit: model: expected a model with trainable parameters, {type(model).__name__} has none")
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
    loss = loss_for_model(loss, model)
    optimizer = _resolve_optimizer(optimizer, options)
    dev, dtype = model_device(model), model_dtype(model)
    cast = not takes_integer_input(model)
    specs = _metric_specs(metrics, loss, y)
    _dry_run(model, loss, X, y, dev, dtype, "X", "y", cast)
    if validation_data is not None:
        _dry_run(model, loss, X_val, y_val, dev, dtype, "validation_data[0] (X_val)", "validation_data[1] (y_val)",
                 cast, target_name="y_val")

    n = len(X)
    batch_size = n if batch_size is None else min(batch_size, n)
    steps = math.ceil(n / batch_size)
    # [distributed 1] data-parallel over the ranks of `communicator` (None in one process): checks, broadcast, seed
    parallel = distributed.start(model, communicator, optimizer, n=n, batch_size=batch_size, epochs=epochs,
                                 shuffle=shuffle, seed=seed, loss=loss, callbacks=callbacks)
    if parallel is not None:
        optimizer, seed, verbose = parallel.optimizer, parallel.seed, parallel.verbose(verbose)
    mask = weight_mask(model)
    process = _gradient_processing(options, params, mask)
    refined = False
    rng = np.random.default_rng(seed)
    if track_gradients:
        layer_labels, layer_of_param = parameter_layers(model)
        relus = [(path, layer) for path, layer in walk(model) if is_relu(layer)]
        monitor = DeadReluMonitor(range(len(relus)))

    history = History()
    history.params = {"epochs": epochs, "batch_size": batch_size, "samples": n, "steps": steps,
                      "loss": repr(loss), "optimizer": repr(optimizer), "device": str(dev)}
    if track_gradients:
        history.labels["grad_norms"] = layer_labels
        history.labels["dead_relu_fraction"] = [_label(path, layer) for path, layer in relus]
    model.history, model.loss, model.optimizer = history, loss, optimizer
    model.stop_training = False
    saved_modes = [(layer, getattr(layer, "training", True)) for _, layer in walk(model)]
    for cb in callbacks:
        cb.set_model(model)
    observing = _observe_outputs([layer for _, layer in relus], monitor) if track_gradients else _nothing()
    try:
        with observing:
            for cb in callbacks:
                cb.on_train_begin({})
            for epoch in range(epochs):
                set_mode(model, True)
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                order = rng.permutation(n) if shuffle else None
                loss_sum, seen, sums, counts = 0.0, 0, {}, {}
                norm_sums = [0.0] * (len(layer_labels) if track_gradients else 0)
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
                        if parallel is not None:  # [distributed 2] this rank's slice of the global batch
                            index = parallel.shard(index, epoch, step)
                        xb = take_batch(X, index, dev, dtype, cast_integers=cast)
                        yb = take_batch(y, index, dev, dtype, cast_integers=False)
                        try:
                            out = model.forward(xb)
                        except (ValueError, TypeError) as exc:
                            raise batch_error(exc, "X", epoch, step, index) from exc
                        if not refined:
                            specs = _refine_metric_specs(specs, loss, y, out.shape)
                            refined = True
                        try:
                            batch_loss = loss.forward(out, yb)
                        except (ValueError, TypeError) as exc:
                            raise batch_error(exc, "y", epoch, step, index) from exc
                        grad_output = loss.backward()
                        if parallel is not None:  # [distributed 3] the gradients averaged over the ranks
                            grad_output = parallel.local_gradient(grad_output)
                        _, grads = model.backward(grad_output)
                        if parallel is not None:
                            grads = parallel.reduce(params, grads)
                        if track_gradients:
                            for j, value in enumerate(gradient_norms_by_layer(grads, layer_of_param, len(norm_sums))):
                                norm_sums[j] = norm_sums[j] + value
                        grads = process(grads)
                        _step(optimizer, params, grads, mask)

                        bs = len(out)
                        loss_sum += batch_loss * bs
                        seen += bs
                        _add_metric_sums(specs, out, yb, sums, counts)
                        logs = {"loss": batch_loss, "size": bs}
                        for cb in callbacks:
                            cb.on_batch_end(step, logs)
                        if parallel is not None:  # [distributed 4] one rank's stop stops every rank
                            parallel.agree_to_stop(model, batch=True)
                        if verbose == 1:
                            bar.set_postfix(_postfix(loss_sum / seen, sums, counts), refresh=False)
                            bar.update(1)
                        if model.stop_training:
                            break
                    if parallel is not None:  # [distributed 5] epoch sums and validation over the ranks
                        loss_sum, seen, sums, counts = parallel.reduce_epoch(loss_sum, seen, sums, counts)
                        parallel.average_buffers(model)
                    logs = {"loss": loss_sum / max(seen, 1)}
                    for name in sums:
                        logs[name] = sums[name] / max(counts[name], 1)
                    if validation_data is not None:
                        args = (model, X_val, y_val, loss, specs, batch_size, dev, dtype)
                        val = _evaluate_batches(*args) if parallel is None else parallel.evaluate(_evaluate_batches,
                                                                                                   *args)
                        logs.update({f"val_{k}": v for k, v in val.items()})
                    if (rate := learning_rate_of(optimizer)) is not None:
                        logs["lr"] = rate
                    if track_gradients:
                        logs["grad_norms"] = [float(s) / max(step + 1, 1) for s in norm_sums]
                        logs["dead_relu_fraction"] = monitor.fractions()
                    if parallel is not None:
                        logs = parallel.same_logs(logs)
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
                if parallel is not None:  # [distributed 6] the same stop decision on every rank
                    parallel.agree_to_stop(model)
                if model.stop_training:
                    break
            for cb in callbacks:
                cb.on_train_end({})
    except Exception as exc:
        if parallel is not None:  # [distributed 7] a failing rank ends every rank, naming itself
            parallel.fail(exc)
        raise
    finally:
        restore_modes(saved_modes)
        if parallel is not None:
            parallel.close()
    return history


def evaluate(model, X, y, loss=None, metrics=("accuracy",), batch_size=None) -> dict:
    """Loss and metrics of ``model`` on ``(X, y)`` in evaluation mode (the layers' modes are restored).

    Parameters
    ----------
    model : Layer
        ``Sequential.evaluate(X, y, ...)`` is this function with ``model=self``.
    X, y : arrays
        As for :func:`fit` (NaN/inf rejected).
    loss : str or Loss, optional
        Default: the loss of the last :func:`fit`. Strings as in :func:`fit`.
    metrics : sequence
        As for :func:`fit`; accuracy only where it applies.
    batch_size : int, optional
        Evaluate in batches of this size (default: one batch).

    Returns
    -------
    dict
        ``{"loss": float, "accuracy": float, ...}``; the loss is the
        batch-size-weighted mean of the batch losses.
    """
    from ..losses import loss_for_model

    if loss is None:
        if getattr(model, "loss", None) is None:
            raise ValueError("evaluate: loss: expected a loss (e.g. loss='mse'); the model was never fit")
        loss = model.loss
    loss = loss_for_model(loss, model)
    if batch_size is not None:
        batch_size = check_positive_int(batch_size, "batch_size")
    X, y = check_data(X, y)
    specs = _metric_specs(metrics, loss, y)
    dev, dtype = model_device(model), model_dtype(model)
    _dry_run(model, loss, X, y, dev, dtype, "X", "y", not takes_integer_input(model))
    return _evaluate_batches(model, X, y, loss, specs, batch_size, dev, dtype)


def predict(model, X, batch_size=None):
    """Outputs of ``model`` for ``X`` in evaluation mode (the layers' modes are restored afterwards).

    Parameters
    ----------
    model : Layer
        ``Sequential.predict(X, ...)`` is this function with ``model=self``.
    X : array, shape (samples, ...)
        Moved to the model's device batch by batch; float/int data cast to the model's dtype.
    batch_size : int, optional
        Default: everything in one batch.

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
    dev, dtype = model_device(model), model_dtype(model)
    cast = not takes_integer_input(model)
    with evaluation_mode(model):
        outputs = [model.forward(take_batch(X, slice(s, s + batch_size), dev, dtype, cast_integers=cast))
                   for s in range(0, n, batch_size)]
    out = outputs[0] if len(outputs) == 1 else backend.get_array_module(outputs[0]).concatenate(outputs)
    return backend.to_numpy(out) if not backend.is_cupy_array(X) else out


# -- the model's device and dtype, from its parameters --------------------------------------------------------
def model_device(model):
    """Where ``model``'s parameters live (the current device when it has none)."""
    params = getattr(model, "params", None) or []
    return backend.device_of(params[0]) if params else backend.get_device()


def model_dtype(model):
    """The dtype of ``model``'s parameters (the default dtype when it has none)."""
    params = getattr(model, "params", None) or []
    return params[0].dtype if params else backend.get_default_dtype()


@contextmanager
def evaluation_mode(model):
    """``model`` and everything inside it in evaluation mode inside the block; previous modes restored after."""
    modes = [(layer, getattr(layer, "training", True)) for _, layer in walk(model)]
    set_mode(model, False)
    try:
        yield model
    finally:
        restore_modes(modes)


# -- before training: the optimizer, the options, the data against the model -----------------------------------
def _resolve_optimizer(optimizer, options):
    from optimizers import Optimizer, get_optimizer

    if isinstance(optimizer, str):
        optimizer = get_optimizer(optimizer)
    elif not callable(getattr(optimizer, "step", None)):
        raise TypeError(f"optimizer: expected a name or an object with step(params, grads), got {optimizer!r}")
    if isinstance(optimizer, Optimizer):
        for name, value in options.items():
            if value and getattr(optimizer, name, None):
                raise ValueError(
                    f"{name}: set both in fit ({value}) and in the optimizer ({getattr(optimizer, name)}); "
                    "they mean the same, set it in one place"
                )
    return optimizer


def _gradient_processing(options, params, mask):
    """The function applying fit's penalties and clipping (identity when none is set)."""
    if not any(options.values()):
        return lambda grads: grads
    from optimizers.regularization import process_gradients

    return lambda grads: process_gradients(params, grads, weight_mask=mask, **options)


def _step(optimizer, params, grads, mask):
    from optimizers import Optimizer

    if isinstance(optimizer, Optimizer):
        optimizer.step(params, grads, weight_mask=mask)
    else:
        optimizer.step(params, grads)


def _dry_run(model, loss, X, y, dev, dtype, xname, yname, cast, target_name="y"):
    """Forward one sample in evaluation mode, check every target of ``y`` once, and compute one sample's loss.

    Bad data fails here, before anything changes, naming the argument. ``cast``: integer inputs are cast
    to the model's dtype (False when the model takes integer ids).
    """
    with evaluation_mode(model):
        try:
            out = model.forward(take_batch(X, slice(0, 1), dev, dtype, cast_integers=cast))
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{xname}: does not fit the model: {exc}") from exc
        check_targets(loss, y, out.shape, target_name)
        try:
            loss.forward(out, take_batch(y, slice(0, 1), dev, dtype, cast_integers=False))
        except (ValueError, TypeError) as exc:
            raise type(exc)(f"{yname}: does not fit the model's output {tuple(out.shape)[1:]} "
                            f"and the loss {type(loss).__name__}: {exc}") from exc


# -- evaluation ---------------------------------------------------------------------------------------------
def _evaluate_batches(model, X, y, loss, specs, batch_size, dev, dtype) -> dict:
    """Batch-size-weighted mean loss and metrics over ``(X, y)``, in evaluation mode."""
    cast = not takes_integer_input(model)
    with evaluation_mode(model):
        n = len(X)
        batch_size = n if batch_size is None else min(batch_size, n)
        loss_sum, sums, counts = 0.0, {}, {}
        for start in range(0, n, batch_size):
            index = slice(start, start + batch_size)
            xb = take_batch(X, index, dev, dtype, cast_integers=cast)
            yb = take_batch(y, index, dev, dtype, cast_integers=False)
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
def _label(path: str, layer) -> str:
    return f"{path}:{type(layer).__name__}"


@contextmanager
def _observe_outputs(watched, monitor):
    """Report the output of every layer in ``watched`` to ``monitor`` while the block runs (restored after).

    The observer wraps each layer's public ``forward`` on the instance (any
    object works, the book's own classes included) and removes the wrapper on exit.
    """
    wrapped = []
    for index, layer in enumerate(watched):
        original = layer.forward
        had_own = "forward" in vars(layer)

        def observed(input_data, _layer=layer, _original=original, _index=index):
            output = _original(input_data)
            if getattr(_layer, "training", True):  # training batches only, not the validation pass
                monitor.observe(_index, output)
            return output

        layer.forward = observed
        wrapped.append((layer, original, had_own))
    try:
        yield
    finally:
        for layer, original, had_own in wrapped:
            if had_own:
                layer.forward = original
            else:
                del layer.forward


@contextmanager
def _nothing():
    yield


def _postfix(loss, sums, counts) -> dict:
    out = {"loss": f"{loss:.4g}"}
    for name in sums:
        out[name] = f"{sums[name] / max(counts[name], 1):.4g}"
    return out


def _postfix_logs(logs) -> dict:
    return {k: v for k, v in logs.items() if isinstance(v, float)}
