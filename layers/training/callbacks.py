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

from backend.checks import (
    check_bool,
    check_choice,
    check_nonnegative,
    check_positive_int,
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
        self.model = model

    def on_train_begin(self, logs=None): ...

    def on_train_end(self, logs=None): ...

    def on_epoch_begin(self, epoch, logs=None): ...

    def on_epoch_end(self, epoch, logs=None): ...

    def on_batch_begin(self, batch, logs=None): ...

    def on_batch_end(self, batch, logs=None): ...


def _stop(model, reason: str) -> None:
    model.stop_training = True
    history = getattr(model, "history", None)
    if history is not None:
        history.stop_reason = reason
    logger.warning(reason)


class EarlyStopping(Callback):
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
        min_delta = check_nonnegative(min_delta, "min_delta")
        check_choice(mode, "mode", ("auto", "min", "max"))
        self.monitor = monitor
        self.patience = patience
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights")
        self.min_delta = min_delta
        if mode == "auto":
            mode = "max" if "acc" in monitor else "min"
        self.mode = mode
        self._reset()

    def _reset(self):
        self.best = math.inf if self.mode == "min" else -math.inf
        self.best_epoch = None
        self.best_weights = None
        self.stopped_epoch = None
        self.wait = 0

    def _improved(self, current: float) -> bool:
        if self.mode == "min":
            return current < self.best - self.min_delta
        return current > self.best + self.min_delta

    def on_train_begin(self, logs=None):
        self._reset()

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        if self.monitor not in logs:
            raise KeyError(
                f"EarlyStopping: monitor={self.monitor!r} is not in the epoch logs; available keys: "
                f"{sorted(logs)} (monitor 'val_*' needs fit(..., validation_data=(X_val, y_val)))"
            )
        current = float(logs[self.monitor])
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
