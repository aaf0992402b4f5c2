"""Callbacks for :meth:`layers.Sequential.fit`: hooks at the start and end of training, epochs and batches.

Slides 002 ("Early stopping"), book chapter 25. Epoch and batch indices passed
to the hooks are 0-based (as in Keras); messages meant for people count from 1.

A callback stops training by setting ``self.model.stop_training = True``;
``fit`` finishes the current batch, records the epoch, calls ``on_epoch_end``
and ``on_train_end`` and returns.
"""

from __future__ import annotations

import logging
import math
import numbers
import os

from backend.checks import (
    check_bool,
    check_choice,
    check_nonnegative,
    check_positive_int,
    check_rate,
)

logger = logging.getLogger("camadas.training")


class Callback:
    """Base class: override the hooks you need; every hook does nothing by default.

    Attributes
    ----------
    model : Sequential
        Set by ``fit`` before ``on_train_begin``. ``model.history`` is the
        :class:`layers.training.history.History` being filled.
    """

    model = None

    def set_model(self, model) -> None:
        """Attach the model being trained (``fit`` calls this before ``on_train_begin``)."""
        self.model = model

    def on_train_begin(self, logs=None):
        """Called once when ``fit`` starts, before the first epoch; ``logs`` is empty."""

    def on_train_end(self, logs=None):
        """Called once when ``fit`` ends (also after a stop); ``logs`` holds the last epoch's values."""

    def on_epoch_begin(self, epoch, logs=None):
        """Called before epoch ``epoch`` (0-based) starts."""

    def on_epoch_end(self, epoch, logs=None):
        """Called after epoch ``epoch`` (0-based) with its ``logs``: ``loss``, metrics, ``val_*``, ``lr``."""

    def on_batch_begin(self, batch, logs=None):
        """Called before training batch ``batch`` (0-based within the epoch)."""

    def on_batch_end(self, batch, logs=None):
        """Called after training batch ``batch`` with ``logs["loss"]``, that batch's loss."""


def _stop(model, reason: str) -> None:
    model.stop_training = True
    history = getattr(model, "history", None)
    if history is not None:
        history.stop_reason = reason
    logger.warning(reason)


class MonitorCallback(Callback):
    """Base of the callbacks that watch one value of the epoch logs (EarlyStopping, ReduceLROnPlateau,
    ModelCheckpoint): ``monitor``, ``mode`` and ``min_delta`` mean the same in all of them.

    Parameters
    ----------
    monitor : str
        A key of the epoch logs: ``"val_loss"``, ``"loss"``, ``"val_accuracy"``, ...
    min_delta : float >= 0
        An improvement must beat the best value by more than this.
    mode : {"auto", "min", "max"}
        ``"auto"``: maximise keys containing ``"acc"``, minimise the rest.
    """

    def __init__(self, monitor="val_loss", min_delta=0.0, mode="auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a str such as 'val_loss', got {type(monitor).__name__} {monitor!r}")
        self.monitor = monitor
        self.min_delta = check_nonnegative(min_delta, "min_delta")
        check_choice(mode, "mode", ("auto", "min", "max"))
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self.best = math.inf if self.mode == "min" else -math.inf

    def _current(self, logs) -> float:
        """The monitored value in ``logs``; KeyError listing the keys there are when it is missing."""
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"{type(self).__name__}: monitor={self.monitor!r} is not in the epoch logs; available keys: "
                f"{sorted(logs)} (monitor 'val_*' needs fit(..., validation_data=(X_val, y_val)))"
            )
        return float(logs[self.monitor])

    def _improved(self, current: float) -> bool:
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta


class EarlyStopping(MonitorCallback):
    """Stop when ``monitor`` has not improved for ``patience`` epochs.

    Parameters
    ----------
    monitor : str
        A key of the epoch logs: ``"val_loss"`` (default; needs
        ``validation_data``), ``"loss"``, ``"val_accuracy"``, ...
    patience : int
        Number of epochs without improvement after which training stops (as
        in Keras: 0 and 1 both stop at the first epoch that does not improve).
    restore_best_weights : bool
        At the end of training, copy back (in place) the parameters and
        buffers of the best epoch seen, whether training stopped early or
        ran every epoch.
    min_delta : float
        An improvement must beat the best value by more than this.
    mode : {"auto", "min", "max"}
        ``"auto"``: maximise keys containing ``"acc"``, minimise the rest.

    Attributes
    ----------
    best : float
        Best value of ``monitor`` seen.
    best_epoch : int or None
        0-based epoch of ``best``.
    stopped_epoch : int or None
        0-based epoch at which training was stopped (None: it was not).

    Raises
    ------
    KeyError
        At the end of the first epoch, when the logs have no ``monitor`` key
        (the message lists the keys there are).
    """

    def __init__(self, monitor="val_loss", patience=0, restore_best_weights=False, min_delta=0.0, mode="auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a str such as 'val_loss', got {type(monitor).__name__} {monitor!r}")
        patience = check_positive_int(patience, "patience", minimum=0)
        super().__init__(monitor, min_delta, mode)
        self.patience = patience
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.wait = 0

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if self._improved(current):
            self.best = current
            self.best_epoch = epoch
            self.wait = 0
            if self.restore_best_weights:
                self.best_weights = self.model.get_weights()
            return
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            _stop(
                self.model,
                f"EarlyStopping: {self.monitor} did not improve for {self.wait} epoch(s) "
                f"(best {self.best:.6g} at epoch {self.best_epoch + 1 if self.best_epoch is not None else '-'}); "
                f"stopped after epoch {epoch + 1}",
            )

    def on_train_end(self, logs=None):
        if self.restore_best_weights and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ReduceLROnPlateau(MonitorCallback):
    """Multiply the learning rate by ``factor`` when ``monitor`` has not improved for ``patience`` epochs.

    At the end of each epoch (Keras' and PyTorch's ReduceLROnPlateau)::

        improved:     best <- current, wait <- 0          (improved: beats best by more than min_delta)
        otherwise:    wait <- wait + 1
        in cooldown:  cooldown_counter <- cooldown_counter - 1, wait <- 0
        else if wait >= patience:  lr <- max(lr · factor, min_learning_rate), wait <- 0,
                                   cooldown_counter <- cooldown

    PyTorch's ``ReduceLROnPlateau(patience=p - 1, threshold=min_delta,
    threshold_mode="abs")`` gives the same rates (its patience counts the bad
    epochs it tolerates, ours the bad epochs that trigger the reduction, as
    :class:`EarlyStopping`'s). The rate is the optimizer's ``learning_rate``
    attribute; ``history["lr"]`` records the rate each epoch trained with.

    Parameters
    ----------
    monitor : str
        Default ``"val_loss"`` (needs ``validation_data``).
    factor : float in (0, 1)
        Default 0.1.
    patience : int >= 0
        Epochs without improvement that trigger a reduction (default 10; 0 and 1 alike).
    min_delta : float >= 0
        Default 1e-4 (absolute, as Keras').
    cooldown : int >= 0
        Epochs after a reduction during which bad epochs are not counted (default 0).
    min_learning_rate : float >= 0
        The rate is never reduced below it (default 0).
    mode : {"auto", "min", "max"}

    Raises
    ------
    TypeError
        At the start of training, when the optimizer's rate follows a schedule
        (:mod:`optimizers.schedules`) or it has no numeric ``learning_rate``.
    KeyError
        At the end of the first epoch, when the logs have no ``monitor`` key.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0,
                 min_learning_rate=0.0, mode="auto"):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor: expected a str such as 'val_loss', got {type(monitor).__name__} {monitor!r}")
        factor = check_rate(factor, "factor", 0.0, 1.0)
        if factor == 0.0:
            raise ValueError("factor: expected a number in (0, 1), got 0.0")
        super().__init__(monitor, min_delta, mode)
        self.factor = factor
        self.patience = check_positive_int(patience, "patience", minimum=0)
        self.cooldown = check_positive_int(cooldown, "cooldown", minimum=0)
        self.min_learning_rate = check_nonnegative(min_learning_rate, "min_learning_rate")
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.wait = 0
        self.cooldown_counter = 0

    def on_train_begin(self, logs=None):
        optimizer = getattr(self.model, "optimizer", None)
        if getattr(optimizer, "schedule", None) is not None:
            raise TypeError(f"ReduceLROnPlateau: the optimizer's learning rate follows the schedule "
                            f"{optimizer.schedule!r}; give it a constant learning rate, or drop this callback")
        rate = getattr(optimizer, "learning_rate", None)
        if isinstance(rate, bool) or not isinstance(rate, numbers.Real):
            raise TypeError(f"ReduceLROnPlateau: expected an optimizer with a numeric learning_rate, got "
                            f"{type(optimizer).__name__} with learning_rate={rate!r}")
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        current = self._current(logs)
        if self._improved(current):
            self.best = current
            self.wait = 0
        else:
            self.wait += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        elif self.wait >= max(self.patience, 1):
            optimizer = self.model.optimizer
            old = float(optimizer.learning_rate)
            new = max(old * self.factor, self.min_learning_rate)
            if new < old:
                optimizer.learning_rate = new
                logger.info(f"ReduceLROnPlateau: {self.monitor} did not improve for {self.wait} epoch(s); "
                            f"learning rate {old:.6g} -> {new:.6g} after epoch {epoch + 1}")
            self.cooldown_counter = self.cooldown
            self.wait = 0


class ModelCheckpoint(MonitorCallback):
    """Save the model at the end of every epoch, or only when ``monitor`` improves, with the atomic save.

    Each save is ``layers.saving.checkpoint.save_model`` (what
    ``Sequential.save`` does): written to a temporary file and renamed, so a
    crash never leaves a partial checkpoint at ``path``.

    Parameters
    ----------
    path : str or path-like
        Where to save. It may hold ``{epoch}`` (counted from 1) and keys of the
        epoch logs, in ``str.format`` syntax: ``"ckpt-{epoch:03d}-{val_loss:.4f}.npz"``
        keeps one file per save; a fixed path is overwritten.
    monitor : str
        Default ``"val_loss"``; read only with ``save_best_only``.
    save_best_only : bool
        Save only the epochs where ``monitor`` improves on the best so far
        (the first epoch always does).
    min_delta : float >= 0
    mode : {"auto", "min", "max"}

    Attributes
    ----------
    best : float
        Best value of ``monitor`` saved (``save_best_only``).
    best_epoch : int or None
        0-based epoch of the last save with ``save_best_only``.
    saved : list of str
        The paths written, in order.

    Raises
    ------
    FileNotFoundError
        At the start of training, when the directory of ``path`` does not exist.
    KeyError
        When ``path`` names a key the logs do not have, or ``monitor`` is not
        in the logs (``save_best_only``).
    """

    def __init__(self, path, monitor="val_loss", save_best_only=False, min_delta=0.0, mode="auto"):
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path: expected a str or path-like, got {type(path).__name__} {path!r}")
        super().__init__(monitor, min_delta, mode)
        self.path = os.fspath(path)
        self.save_best_only = check_bool(save_best_only, "save_best_only")
        self.best_epoch = None
        self.saved = []

    def on_train_begin(self, logs=None):
        directory = os.path.dirname(os.path.abspath(self.path))
        if "{" not in directory and not os.path.isdir(directory):
            raise FileNotFoundError(f"ModelCheckpoint: path: the directory {directory!r} does not exist "
                                    f"(path {self.path!r}); create it before training")
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.saved = []

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.save_best_only:
            current = self._current(logs)
            if not self._improved(current):
                return
            self.best, self.best_epoch = current, epoch
        try:
            path = self.path.format(epoch=epoch + 1, **{k: v for k, v in logs.items() if k != "epoch"})
        except (KeyError, IndexError) as exc:
            raise KeyError(f"ModelCheckpoint: path {self.path!r} names {exc} which the epoch logs do not have; "
                           f"available: epoch, {', '.join(sorted(logs))}") from exc
        from ..saving.checkpoint import save_model

        save_model(self.model, path)
        self.saved.append(path)


class TerminateOnNaN(Callback):
    """Stop training as soon as a batch loss is NaN or infinite.

    The message (logged as a warning on ``"camadas.training"``, kept in
    :attr:`message` and in ``history.stop_reason``) names the epoch and the
    batch, counting from 1, and the loss value. The update of that batch has
    already been applied, so the weights may hold NaN.
    """

    def __init__(self):
        self.message = None
        self._epoch = 0

    def on_train_begin(self, logs=None):
        self.message = None

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch

    def on_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.message = (
                f"TerminateOnNaN: loss is {float(loss)} at epoch {self._epoch + 1}, batch {batch + 1}; "
                "training stopped (lower the learning rate, clip gradients or check the data)"
            )
            _stop(self.model, self.message)
