"""What :meth:`layers.Sequential.fit` returns: the per-epoch record of a training run."""

from __future__ import annotations

import numbers


class History:
    """Per-epoch logs of one call to :meth:`layers.Sequential.fit`.

    Attributes
    ----------
    history : dict of str -> list
        One list per key, one entry per epoch run (a run stopped early has
        fewer entries than ``epochs``):

        * ``"loss"``: training loss of the epoch, the batch losses averaged
          with the batch sizes as weights (for a mean-reduced loss this is the
          mean over every training sample, measured while the weights moved).
          L1/L2 penalty terms are not included.
        * ``"accuracy"``: where it applies (see :mod:`layers.training.metrics`),
          and any other metric by its name (``"f1"``, ``"auc"``, ...): the
          epoch's value from the metric's running state (a
          ``"confusion_matrix"`` entry is an array).
        * ``"val_loss"``, ``"val_accuracy"``, ...: on ``validation_data`` at
          the end of the epoch, in evaluation mode.
        * ``"grad_norms"`` (``track_gradients=True``): a list per epoch with
          one float per layer that has parameters, the mean over the epoch's
          batches of ``sqrt(Σ g²)`` over that layer's parameter gradients
          (the loss gradient, before L1/L2 and clipping). Book section 7.8.
        * ``"lr"``: the learning rate the epoch's last update used (a
          schedule's value at that step; before a ReduceLROnPlateau lowers it
          for the next epoch), where the optimizer has one (:func:`learning_rate_of`).
        * ``"dead_relu_fraction"`` (``track_gradients=True``): a list per
          epoch with one float per ReLU layer: the fraction of its units (the
          features of the last axis: a Dense neuron, a convolution filter)
          whose output was 0 for every training sample of the epoch.
          Book section 8.3.
    epoch : list of int
        The epoch indices run (0-based).
    labels : dict of str -> list of str
        Names of the entries of the per-layer lists: ``labels["grad_norms"]``
        and ``labels["dead_relu_fraction"]`` hold ``"<index>:<class name>"``
        of the layers they describe.
    params : dict
        The settings of the run (epochs, batch_size, samples, steps, ...).
    stop_reason : str or None
        Why training stopped before ``epochs`` (set by callbacks such as
        :class:`layers.callbacks.TerminateOnNaN` and
        :class:`layers.callbacks.EarlyStopping`).
    """

    def __init__(self):
        self.history: dict[str, list] = {}
        self.epoch: list[int] = []
        self.labels: dict[str, list[str]] = {}
        self.params: dict = {}
        self.stop_reason: str | None = None

    def append(self, epoch: int, logs: dict) -> None:
        """Record the logs of one epoch (every key gets one more entry)."""
        self.epoch.append(int(epoch))
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __getitem__(self, key):
        return self.history[key]

    def __contains__(self, key) -> bool:
        return key in self.history

    def __repr__(self) -> str:
        keys = ", ".join(self.history)
        return f"History(epochs={len(self.epoch)}, keys=[{keys}])"


def learning_rate_of(optimizer):
    """The learning rate of ``optimizer``'s latest update, as a float; None when it does not say.

    camadas optimizers keep it in ``last_learning_rate``; other objects with a
    numeric ``learning_rate`` attribute are read from that.
    """
    for name in ("last_learning_rate", "learning_rate"):
        value = getattr(optimizer, name, None)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return float(value)
    return None
