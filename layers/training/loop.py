"""The training loop: fit, evaluate and predict for any Layer (book chapter 6; slides 001-003).

One loop for every model: it uses only the Layer protocol (``forward``,
``backward -> (grad_input, param_grads)``, ``params``, ``train``/``eval``,
:func:`layers.base.walk` to visit sublayers and :func:`layers.base.checks_done`),
so it trains a Sequential, a residual block or a user's own Layer alike.
``Sequential.fit``, ``Sequential.evaluate`` and ``Sequential.predict`` are these functions.

One training step (section 6.2, :class:`TrainingStep`): forward a batch,
``E = loss.forward``, ``loss.backward``, ``model.backward`` (the chain rule,
eqs. 6.5-6.12), then ``optimizer.step(params, grads)``, which applies penalties
and clipping (:mod:`optimizers.regularization`) to the weights the model's mask
names. Everything is validated once: the data before training, the layers'
arguments on the first step of each batch shape; the other steps run inside
:func:`~layers.base.checks_done` (the same results, less Python per step).
A data-parallel fit (``communicator=...``) calls :mod:`layers.training.distributed`
at the points marked ``[distributed N]``.
"""

from __future__ import annotations

import time
from contextlib import contextmanager

import numpy as np
from tqdm.auto import tqdm

import backend
from backend.checks import check_bool, check_nonnegative, check_positive_int, check_positive_or_none, check_seed

from ..base import (checks_done, input_gradient_unused, restore_modes, set_mode, takes_integer_input, walk,
                    weight_mask)
from . import distributed
from .batches import ArrayBatches, IterableBatches, batch_stream
from .callbacks import Callback
from .data import SequenceLengths, batch_error, check_data, check_targets, is_parts, take_batch
from .diagnostics import DeadReluMonitor, gradient_norms_by_layer, is_relu, parameter_layers
from .history import History, learning_rate_of
from .metrics import get_metric

#: Seconds between two refreshes of the progress bar's metrics (reading an AUC sorts every score seen).
POSTFIX_INTERVAL = 0.5


def fit(model, X, y=None, loss="mse", optimizer="sgd", epochs=1, batch_size=32, validation_data=None,
        callbacks=(), shuffle=True, seed=None, verbose=1, metrics=("accuracy",), clipnorm=None,
        clipvalue=None, l1=0.0, l2=0.0, track_gradients=False, steps_per_epoch=None,
        sample_lengths=None, communicator=None) -> History:
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
    X : array, shape (samples, ...); a tuple of arrays; or an iterable of batches
        Inputs, NumPy (moved to the model's device one batch at a time) or
        on the model's device; a memory-mapped array (``numpy.load(path,
        mmap_mode="r")``) is read batch by batch, never whole. Float data is
        cast to the model's dtype; integer/bool data too (XOR tables written
        as ints). A tuple of arrays (and None) is given to ``model.forward``
        as a tuple, each array batched along its first axis (a recurrent
        layer's ``(x, initial_state, mask)``). Anything else iterable (a
        generator, a data loader) yields batches ``(x, y)``; ``y`` is then None.
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
        ``None``: the whole set in one batch (batch gradient descent). Not
        used with an iterable of batches.
    validation_data : (X_val, y_val) or an iterable of batches, optional
        Evaluated after every epoch (evaluation mode): ``val_loss``, ``val_accuracy``.
        An iterable must start again every epoch (a list, a data loader).
        Padded sequences: ``((X_val, None, SequenceLengths(val_lengths, steps)), y_val)``.
    callbacks : sequence of Callback
        E.g. :class:`~layers.callbacks.EarlyStopping`, :class:`~layers.callbacks.TerminateOnNaN`.
    shuffle : bool
        Reshuffle the samples every epoch (arrays; an iterable gives its own order).
    seed : int, optional
        Seed of the shuffling (layers draw their own randomness).
    verbose : {0, 1, 2}
        0 silent, 1 a tqdm bar per epoch (loss and metrics), 2 one line per epoch.
    metrics : sequence of names, Metric objects or callables
        See :mod:`layers.training.metrics` (accuracy, top-k accuracy,
        precision, recall, F1, confusion matrix, MAE, RMSE, R², AUC), reduced
        over each epoch from a running state. ``"accuracy"`` is reported where
        it applies; a callable ``fn(y_pred, y_true)`` is averaged over batches.
    clipnorm : float > 0, optional
        Rescale the gradients when their global norm exceeds it.
    clipvalue : float > 0, optional
        Clip every gradient element to [-clipvalue, clipvalue].
    l1, l2 : float >= 0
        Penalties l1 Σ|w| + l2 Σw² on the weights (:func:`layers.base.weight_mask`:
        params of ndim >= 2 that are not a bias, a normalization scale/shift
        or an embedding table). Added as gradients; not part of the reported
        loss. These four options mean exactly what the optimizer's options of
        the same names mean (one implementation,
        :func:`optimizers.regularization.process_gradients`, with the model's
        weight mask); set each in one place only, here or in the optimizer.
        Order: penalties, clipnorm, clipvalue.
    track_gradients : bool
        Record ``"grad_norms"`` (per layer with parameters) and
        ``"dead_relu_fraction"`` (per ReLU layer, nested ones included) per
        epoch (see :class:`~layers.training.history.History`).
    steps_per_epoch : int >= 1, optional
        With an iterable of batches: batches per epoch, drawn from one
        iterator over the whole run (default: until the iterable ends, every
        epoch starting it again).
    sample_lengths : int array (samples,), optional
        Variable-length sequences padded at the end (``X`` of shape
        (samples, steps, features)): the model gets ``(x, None, mask)`` per
        batch, the mask built from the batch's lengths
        (:class:`~layers.training.data.SequenceLengths`), which the recurrent
        layers read (book chapter 24).
    communicator : backend.distributed.Communicator, optional
        Train data-parallel over its ranks (:mod:`layers.training.distributed`;
        also when ``optimizer`` is an :class:`optimizers.DataParallel`): every
        rank runs this same call on the same data (arrays, in memory or
        memory-mapped; an iterable of batches is refused); rank r trains on
        its slice of every global batch of ``batch_size`` samples, the
        gradients are averaged over the ranks, the epoch logs (loss sums and
        metric states, merged) and the validation metrics (each rank
        evaluates its slice of every validation batch) are combined over
        them (the same History and callback decisions on every rank); rank 0
        alone shows progress and writes checkpoints; an exception on one rank
        ends every rank with a message naming it.

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
        batch can reveal (or any problem of a batch from an iterable) names
        the argument, the batch and the epoch.
    TypeError
        Non-numeric data, a non-callback in callbacks.
    """
    from ..losses import loss_for_model

    epochs = check_positive_int(epochs, "epochs")
    batch_size, steps_per_epoch = _optional_counts(batch_size=batch_size, steps_per_epoch=steps_per_epoch)
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
    callbacks = _check_callbacks(callbacks)
    metric_objects = [get_metric(m) for m in _as_sequence(metrics)]
    loss = loss_for_model(loss, model)
    optimizer = _resolve_optimizer(optimizer, options)
    dev, dtype = model_device(model), model_dtype(model)
    cast = not takes_integer_input(model)
    train = _source(X, y, batch_size, steps_per_epoch, sample_lengths, dev, dtype, cast, ("X", "y"), epochs)
    running = None  # the metrics, prepared once the output shape is known (before training for arrays)
    if isinstance(train, ArrayBatches):
        output_shape = _dry_run(model, loss, train.X, train.y, dev, dtype, "X", "y", cast)
        running = _prepare_metrics(metric_objects, loss, train.y, output_shape)
    val, val_shape = None, None
    if validation_data is not None:
        val = _validation_source(validation_data, batch_size, dev, dtype, cast, epochs)
        if isinstance(val, ArrayBatches):
            val_shape = _dry_run(model, loss, val.X, val.y, dev, dtype, "validation_data[0] (X_val)",
                                 "validation_data[1] (y_val)", cast, target_name="y_val")
    # [distributed 1] data-parallel over the ranks of `communicator` (None in one process): checks, broadcast,
    # seed; [distributed 2] the sources take this rank's slice of every global batch (ArrayBatches.shard)
    parallel = distributed.start(model, communicator, optimizer, train, val, epochs=epochs, shuffle=shuffle,
                                 seed=seed, loss=loss, callbacks=callbacks, metrics=metric_objects)
    if parallel is not None:
        optimizer, seed, verbose = parallel.optimizer, parallel.seed, parallel.verbose(verbose)

    mask = weight_mask(model)
    step_fn = TrainingStep(model, loss, optimizer, params, mask, options, targets_checked=train.targets_checked,
                           parallel=parallel)
    rng = np.random.default_rng(seed)
    if track_gradients:
        layer_labels, layer_of_param = parameter_layers(model)
        relus = [(path, layer) for path, layer in walk(model) if is_relu(layer)]
        monitor = DeadReluMonitor(range(len(relus)))

    history = History()
    history.params = {"epochs": epochs, "batch_size": getattr(train, "batch_size", None), "samples": train.samples,
                      "steps": train.steps, "loss": repr(loss), "optimizer": repr(optimizer), "device": str(dev)}
    if track_gradients:
        history.labels["grad_norms"] = layer_labels
        history.labels["dead_relu_fraction"] = [_label(path, layer) for path, layer in relus]
    model.history, model.loss, model.optimizer = history, loss, optimizer
    model.stop_training = False
    saved_modes = [(layer, getattr(layer, "training", True)) for _, layer in walk(model)]
    observing = _observe_outputs([layer for _, layer in relus], monitor) if track_gradients else _nothing()
    val_trusted: set = set()  # the validation batch signatures already checked
    try:
        with observing:
            for cb in callbacks:
                cb.set_model(model)
            for cb in callbacks:
                cb.on_train_begin({})
            for epoch in range(epochs):
                set_mode(model, True)
                for cb in callbacks:
                    cb.on_epoch_begin(epoch, {})
                order = rng.permutation(train.samples) if shuffle and isinstance(train, ArrayBatches) else None
                loss_sum, seen, steps_done = 0.0, 0, 0
                norm_sums = [0.0] * (len(layer_labels) if track_gradients else 0)
                bar = tqdm(total=train.steps, desc=f"Epoch {epoch + 1}/{epochs}", unit="batch",
                           disable=verbose != 1, leave=True, dynamic_ncols=True)
                shown = time.monotonic()
                try:
                    with batch_stream(train, epoch, order) as batches:
                        for step, (index, xb, yb) in enumerate(batches):
                            for cb in callbacks:
                                cb.on_batch_begin(step, {})
                            out, batch_loss, grads = step_fn(xb, yb, epoch, step, index)
                            if running is None:   # an iterable: its first batch says how to read outputs
                                running = _prepare_metrics(metric_objects, loss, yb, out.shape)
                            if track_gradients:
                                for j, value in enumerate(gradient_norms_by_layer(grads, layer_of_param,
                                                                                  len(norm_sums))):
                                    norm_sums[j] = norm_sums[j] + value
                            bs = len(out)
                            loss_sum += batch_loss * bs
                            seen += bs
                            steps_done += 1
                            for m in running:
                                m.update(out, yb)
                            logs = {"loss": batch_loss, "size": bs}
                            for cb in callbacks:
                                cb.on_batch_end(step, logs)
                            if parallel is not None:  # [distributed 4] one rank's stop stops every rank
                                parallel.agree_to_stop(model, batch=True)
                            if verbose == 1:
                                now = time.monotonic()
                                if now - shown >= POSTFIX_INTERVAL:
                                    bar.set_postfix(_postfix(loss_sum / seen, running), refresh=False)
                                    shown = now
                                bar.update(1)
                            if model.stop_training:
                                break
                    shown_metrics = running
                    if parallel is not None:  # [distributed 5] epoch sums, metric states and buffers over the ranks
                        loss_sum, seen, shown_metrics = parallel.reduce_epoch(loss_sum, seen, running)
                        parallel.average_buffers(model)
                    logs = {"loss": loss_sum / max(seen, 1)}
                    for m, shown in zip(running or (), shown_metrics or ()):
                        logs[m.name] = shown.result()
                        m.reset()
                    if val is not None:
                        result = _evaluate_source(model, val, loss, metric_objects, val_trusted, val_shape, parallel)
                        logs.update({f"val_{k}": v for k, v in result.items()})
                    if (rate := learning_rate_of(optimizer)) is not None:
                        logs["lr"] = rate
                    if track_gradients:
                        logs["grad_norms"] = [float(s) / max(steps_done, 1) for s in norm_sums]
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


class TrainingStep:
    """One training step on a batch: forward, loss, backward, update (book section 6.2).

    Built once per :func:`fit`; calling it runs a step and returns ``(output,
    batch loss, param_grads)``. The first step of each batch signature
    (shapes and dtypes of ``x`` and ``y``) runs with every layer's argument
    checks; the others inside :func:`~layers.base.checks_done`.

    Stages, in order (a data-parallel run exchanges gradients between
    :meth:`forward_backward` and :meth:`update`)::

        out, batch_loss, grads = step.forward_backward(xb, yb, ...)   # E and dE/dθ of this batch
        grads = parallel.reduce(params, grads)                         # data-parallel: the mean over the ranks
        step.update(grads)                                             # penalties, clipping, optimizer

    ``parallel``: the :class:`~layers.training.distributed.DataParallelFit`
    of a data-parallel fit (None in one process): it scales dE/d(output) of
    this rank's slice before the backward pass and averages the gradients
    after it, on the checked first step of a signature and the others alike.
    """

    def __init__(self, model, loss, optimizer, params, mask, options, targets_checked=True, parallel=None):
        self.model, self.loss, self.optimizer = model, loss, optimizer
        self.parallel = parallel
        self.params, self.mask = params, mask
        self.process = _gradient_processing(options, params, mask)
        self.takes_mask = _is_library_optimizer(optimizer)   # camadas optimizers read the weight mask
        self.targets_checked = targets_checked
        self.trusted = set()   # batch signatures whose first step passed every check

    def __call__(self, xb, yb, epoch, step, index):
        signature = (batch_signature(xb), batch_signature(yb))
        if signature in self.trusted:
            with checks_done():
                out, batch_loss, grads = self.forward_backward(xb, yb, epoch, step, index)
                if self.parallel is not None:  # [distributed 3] the gradients averaged over the ranks
                    grads = self.parallel.reduce(self.params, grads)
                self.update(grads)
        else:
            out, batch_loss, grads = self.forward_backward(xb, yb, epoch, step, index)
            if self.parallel is not None:
                grads = self.parallel.reduce(self.params, grads)
            self.update(grads)
            self.trusted.add(signature)
        return out, batch_loss, grads

    def forward_backward(self, xb, yb, epoch, step, index):
        """``(output, E, param_grads)`` of one batch; errors name the argument, the batch and the epoch."""
        try:
            out = self.model.forward(xb)
        except (ValueError, TypeError) as exc:
            raise batch_error(exc, "X", epoch, step, index) from exc
        try:
            if not self.targets_checked:  # a batch from an iterable: its targets were never seen
                check_targets(self.loss, yb, out.shape, "y")
            batch_loss = self.loss.forward(out, yb)
        except (ValueError, TypeError) as exc:
            raise batch_error(exc, "y", epoch, step, index) from exc
        grad_output = self.loss.backward()
        if self.parallel is not None:  # [distributed 3] this rank's share of the global batch's gradient
            grad_output = self.parallel.local_gradient(grad_output, epoch, step)
        with input_gradient_unused(self.model):   # the data are not differentiated: no dE/dx for them
            _, grads = self.model.backward(grad_output)
        return out, batch_loss, grads

    def update(self, grads) -> None:
        """Penalties and clipping of ``fit`` (if any), then the optimizer's step, in place."""
        grads = self.process(grads)
        if self.takes_mask:
            self.optimizer.step(self.params, grads, weight_mask=self.mask)
        else:
            self.optimizer.step(self.params, grads)


def batch_signature(batch):
    """What the one-time checks depend on: the type, shape and dtype of a batch (of each part of a tuple)."""
    if isinstance(batch, tuple):
        return tuple(None if part is None else (type(part), part.shape, part.dtype) for part in batch)
    return None if batch is None else (type(batch), batch.shape, batch.dtype)


def evaluate(model, X, y=None, loss=None, metrics=("accuracy",), batch_size=None, steps=None,
             sample_lengths=None) -> dict:
    """Loss and metrics of ``model`` on ``(X, y)`` in evaluation mode (the layers' modes are restored).

    Parameters
    ----------
    model : Layer
        ``Sequential.evaluate(X, y, ...)`` is this function with ``model=self``.
    X, y : arrays (X: or a tuple of arrays), or an iterable of ``(x, y)`` batches as ``X`` with ``y=None``
        As for :func:`fit` (NaN/inf rejected).
    loss : str or Loss, optional
        Default: the loss of the last :func:`fit`. Strings as in :func:`fit`.
    metrics : sequence
        As for :func:`fit`; accuracy only where it applies.
    batch_size : int, optional
        Evaluate in batches of this size (default: one batch).
    steps : int, optional
        With an iterable: the number of batches to read (default: until it ends).
    sample_lengths : int array (samples,), optional
        As for :func:`fit`.

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
    batch_size, steps = _optional_counts(batch_size=batch_size, steps=steps)
    metric_objects = [get_metric(m) for m in _as_sequence(metrics)]
    dev, dtype = model_device(model), model_dtype(model)
    cast = not takes_integer_input(model)
    source = _source(X, y, batch_size, steps, sample_lengths, dev, dtype, cast, ("X", "y"), 1)
    if isinstance(source, ArrayBatches):
        _dry_run(model, loss, source.X, source.y, dev, dtype, "X", "y", cast)
    return _evaluate_source(model, source, loss, metric_objects)


def predict(model, X, batch_size=None, steps=None, sample_lengths=None):
    """Outputs of ``model`` for ``X`` in evaluation mode (the layers' modes are restored afterwards).

    Parameters
    ----------
    model : Layer
        ``Sequential.predict(X, ...)`` is this function with ``model=self``.
    X : array, shape (samples, ...); a tuple of arrays; or an iterable of ``x`` batches
        Moved to the model's device batch by batch; float/int data cast to the model's dtype.
    batch_size : int, optional
        Default: everything in one batch.
    steps : int, optional
        With an iterable: the number of batches to read (default: until it ends).
    sample_lengths : int array (samples,), optional
        As for :func:`fit`.

    Returns
    -------
    array, shape (samples, ...) as the last layer gives
        NumPy when ``X`` is a NumPy array (or list, or an iterable), else on the model's device.
    """
    batch_size, steps = _optional_counts(batch_size=batch_size, steps=steps)
    dev, dtype = model_device(model), model_dtype(model)
    cast = not takes_integer_input(model)
    source = _source(X, None, batch_size, steps, sample_lengths, dev, dtype, cast, ("X", "y"), 1,
                     with_targets=False)
    outputs, trusted = [], set()
    with evaluation_mode(model), batch_stream(source, 0) as batches:
        for _, xb, _ in batches:
            outputs.append(_trusted_forward(model, xb, trusted))
    out = outputs[0] if len(outputs) == 1 else backend.get_array_module(outputs[0]).concatenate(outputs)
    on_device = isinstance(source, ArrayBatches) and any(backend.is_cupy_array(p) for p in _arrays(source.X))
    return out if on_device else backend.to_numpy(out)


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


# -- before training: the data, the optimizer, the options -----------------------------------------------------
def _source(X, y, batch_size, steps, sample_lengths, dev, dtype, cast, names, epochs, with_targets=True):
    """The batches of ``X`` (and ``y``): :class:`ArrayBatches` for arrays, :class:`IterableBatches` for iterables."""
    if _is_batch_iterable(X, y, with_targets):
        if y is not None:
            raise TypeError(f"{names[1]}: expected None when {names[0]} is an iterable of (x, y) batches, "
                            f"got {type(y).__name__}")
        if sample_lengths is not None:
            raise TypeError("sample_lengths: expected None with an iterable of batches: yield ((x, None, mask), y) "
                            "batches instead")
        return IterableBatches(X, steps, dev, dtype, cast, with_targets, names, epochs)
    if steps is not None:
        raise TypeError(f"steps_per_epoch: expected None for arrays (they give ceil(samples / batch_size) steps), "
                        f"got {steps}; it counts the batches of an iterable")
    if with_targets and y is None:
        raise ValueError(f"{names[1]}: expected targets (samples, ...), got None (only an iterable of (x, y) batches "
                         f"carries its own)")
    if sample_lengths is not None:
        X = _with_lengths(X, sample_lengths, names[0])
    X, y = check_data(X, y, *names)
    return ArrayBatches(X, y, batch_size, dev, dtype, cast, names)


def _is_batch_iterable(X, y, with_targets) -> bool:
    """An iterable of batches: not an array; with targets, anything but a list/tuple of numbers given with y."""
    if hasattr(X, "shape") or is_parts(X) or isinstance(X, (str, bytes)):
        return False
    if isinstance(X, (list, tuple)):
        return with_targets and y is None and len(X) > 0 and isinstance(X[0], (tuple, list)) and len(X[0]) == 2 \
            and hasattr(X[0][1], "shape")
    return hasattr(X, "__iter__")


def _with_lengths(X, lengths, xname):
    if is_parts(X) or not hasattr(X, "shape") or X.ndim < 3:
        raise ValueError(f"sample_lengths: expected {xname} of shape (samples, steps, features) (padded sequences), "
                         f"got {type(X).__name__}{' of shape ' + str(tuple(X.shape)) if hasattr(X, 'shape') else ''}")
    if len(lengths) != len(X):
        raise ValueError(f"sample_lengths: expected one length per sample ({len(X)}), got {len(lengths)}")
    return (X, None, SequenceLengths(lengths, X.shape[1]))


def _validation_source(validation_data, batch_size, dev, dtype, cast, epochs):
    """The batches of ``validation_data``: ``(X_val, y_val)`` or an iterable of batches."""
    if _is_batch_iterable(validation_data, None, True):
        return _source(validation_data, None, batch_size, None, None, dev, dtype, cast, ("X_val", "y_val"), epochs)
    if not (isinstance(validation_data, (tuple, list)) and len(validation_data) == 2):
        raise TypeError("validation_data: expected a tuple (X_val, y_val) or an iterable of (x, y) batches")
    source = _source(*validation_data, batch_size, None, None, dev, dtype, cast, ("X_val", "y_val"), epochs)
    source.names = ("validation_data[0] (X_val)", "validation_data[1] (y_val)")
    return source


def _optional_counts(**counts) -> list:
    """Each count (``batch_size=...``, ``steps=...``) as an int >= 1, or None when None."""
    return [None if value is None else check_positive_int(value, name) for name, value in counts.items()]


def _check_callbacks(callbacks) -> list:
    if isinstance(callbacks, Callback):
        callbacks = [callbacks]
    callbacks = list(callbacks or ())
    for i, cb in enumerate(callbacks):
        if not isinstance(cb, Callback):
            raise TypeError(f"callbacks[{i}]: expected a layers.callbacks.Callback, got {type(cb).__name__}")
    return callbacks


def _as_sequence(metrics) -> list:
    if metrics is None:
        return []
    if isinstance(metrics, str) or callable(metrics):
        return [metrics]
    return list(metrics)


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


def _is_library_optimizer(optimizer) -> bool:
    from optimizers import Optimizer

    return isinstance(optimizer, Optimizer)


def _gradient_processing(options, params, mask):
    """The function applying fit's penalties and clipping (identity when none is set)."""
    if not any(options.values()):
        return lambda grads: grads
    from optimizers.regularization import process_gradients

    return lambda grads: process_gradients(params, grads, weight_mask=mask, **options)


def _dry_run(model, loss, X, y, dev, dtype, xname, yname, cast, target_name="y"):
    """Forward one sample in evaluation mode, check every target of ``y`` once, and compute one sample's loss.

    Bad data fails here, before anything changes, naming the argument. ``cast``: integer inputs are cast
    to the model's dtype (False when the model takes integer ids). Returns the output's shape (one sample).
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
    return tuple(out.shape)


# -- evaluation ---------------------------------------------------------------------------------------------
def _trusted_forward(model, xb, trusted):
    """``model.forward(xb)``, with the layers' checks on the first batch of each signature only."""
    signature = batch_signature(xb)
    if signature in trusted:
        with checks_done():
            return model.forward(xb)
    out = model.forward(xb)
    trusted.add(signature)
    return out


def _evaluate_source(model, source, loss, metric_objects, trusted=None, output_shape=None, parallel=None) -> dict:
    """Batch-size-weighted mean loss and the metrics over ``source``, in evaluation mode.

    ``trusted``: the batch signatures already checked (kept across epochs by
    fit). ``output_shape``: the model's output shape when known (arrays: the
    metrics are prepared before the first batch, so a rank given no sample
    still holds them). ``parallel``: a data-parallel fit's
    :class:`~layers.training.distributed.DataParallelFit` (each rank
    evaluates its slice of every batch; the sums and metric states are
    combined over the ranks).
    """
    loss_sum, seen, running = 0.0, 0, None
    if output_shape is not None:
        running = _prepare_metrics([m.fresh() for m in metric_objects], loss, source.y, output_shape)
    trusted = set() if trusted is None else trusted
    with evaluation_mode(model), batch_stream(source, 0) as batches:
        for step, (index, xb, yb) in enumerate(batches):
            out = _trusted_forward(model, xb, trusted)
            if running is None:
                running = _prepare_metrics([m.fresh() for m in metric_objects], loss, _rule_targets(source, yb),
                                           out.shape)
            try:
                if not source.targets_checked:
                    check_targets(loss, yb, out.shape, source.names[1])
                batch_loss = loss.forward(out, yb)
            except (ValueError, TypeError) as exc:
                raise batch_error(exc, source.names[1], 0, step, index) from exc
            loss_sum += batch_loss * len(out)
            seen += len(out)
            for m in running:
                m.update(out, yb)
    if parallel is not None:  # [distributed 5] the ranks' slices combined, in rank order
        loss_sum, seen, running = parallel.reduce_epoch(loss_sum, seen, running)
    result = {"loss": loss_sum / seen}
    for m in running or ():
        result[m.name] = m.result()
    return result


# -- metrics ------------------------------------------------------------------------------------------------
def _prepare_metrics(metric_objects, loss, y_true, output_shape) -> list:
    """The metrics that apply, prepared for this loss, these targets and this output shape, and reset."""
    running = [m for m in metric_objects if m.prepare(loss, y_true, tuple(output_shape)) is not False]
    for m in running:
        m.reset()
    return running


def _rule_targets(source, first_targets):
    """The targets the accuracy rules read: the whole ``y`` of arrays, the first batch of an iterable."""
    return source.y if isinstance(source, ArrayBatches) else first_targets


def _arrays(X) -> list:
    return [p for p in X if p is not None and hasattr(p, "shape")] if is_parts(X) else [X]


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


def _postfix(loss, running) -> dict:
    out = {"loss": f"{loss:.4g}"}
    for m in running or ():
        value = m.result()
        if isinstance(value, float):
            out[m.name] = f"{value:.4g}"
    return out


def _postfix_logs(logs) -> dict:
    return {k: v for k, v in logs.items() if isinstance(v, float)}

