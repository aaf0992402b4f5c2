"""Accuracy and top-k accuracy as running counts (correct / total over every batch of an epoch)."""

from __future__ import annotations

import backend

from .accuracy_rules import accuracy_counts, accuracy_kind
from .base import Metric, has_nan, host_float, kind_without_loss


class Accuracy(Metric):
    """Fraction of correct decisions, the rule chosen from the loss (:mod:`~layers.training.metrics.accuracy_rules`).

    ``correct / total`` summed over the epoch's batches (exact, whatever the
    batch sizes). NaN when any prediction of the epoch was NaN.

    Parameters
    ----------
    required : bool
        True (default for an object): a ValueError when accuracy does not
        apply (a regression on real targets). ``fit(metrics=("accuracy",))``
        builds it with False: the metric is then left out, as it always was.
    name : str
    """

    state_names = ("correct", "total")

    def __init__(self, required: bool = True, name: str = "accuracy"):
        self.required, self.name = bool(required), name
        self.kind = self.threshold = None
        self.reset()

    def prepare(self, loss, y_true, output_shape):
        if loss is None:
            self.kind, self.threshold = kind_without_loss(y_true, output_shape)
            return True
        found = accuracy_kind(loss, y_true, tuple(output_shape))
        if found is None:
            if self.required:
                raise ValueError(f"metrics: {self.name!r}: accuracy does not apply to loss {type(loss).__name__} "
                                 "with targets that are not all 0 or 1")
            return False
        self.kind, self.threshold = found
        return True

    def reset(self):
        self.correct, self.total = 0.0, 0

    def update(self, y_pred, y_true):
        correct, total = accuracy_counts(y_pred, y_true, self.kind, self.threshold)
        self.correct += correct
        self.total += total

    def merge(self, other):
        self.correct, self.total = self.correct + other.correct, self.total + other.total

    def result(self):
        return self.correct / max(self.total, 1)


class TopKAccuracy(Metric):
    """Fraction of samples whose true class is among the ``k`` highest scores.

    A sample counts when fewer than ``k`` classes score strictly higher than
    its true class (ties count in its favour). Needs class scores (logits or
    probabilities, one column per class) and integer labels or one-hot rows.
    NaN when any prediction of the epoch was NaN.

    Parameters
    ----------
    k : int >= 1
        Default 5.
    name : str, optional
        Default ``"top_<k>_accuracy"``.
    """

    state_names = ("hits", "total", "nan")

    def __init__(self, k: int = 5, name: str | None = None):
        from backend.checks import check_positive_int

        self.k = check_positive_int(k, "k", where="TopKAccuracy")
        self.name = name or f"top_{self.k}_accuracy"
        self.reset()

    def prepare(self, loss, y_true, output_shape):
        width = output_shape[-1] if len(output_shape) > 1 else 1
        if width < 2:
            raise ValueError(f"metrics: {self.name!r}: top-k accuracy needs one score per class (an output of "
                             f"shape (batch, classes)), got output shape {tuple(output_shape)}")
        self.labels_given = y_true.ndim == len(output_shape) - 1 or y_true.shape[-1] == 1
        return True

    def reset(self):
        self.hits, self.total, self.nan = 0, 0, False

    def update(self, y_pred, y_true):
        xp = backend.get_array_module(y_pred)
        scores = y_pred.reshape(-1, y_pred.shape[-1])
        if self.labels_given:
            labels = y_true.reshape(-1).astype(xp.int64)
        else:
            labels = xp.argmax(y_true.reshape(-1, y_true.shape[-1]), axis=-1)
        true_scores = xp.take_along_axis(scores, labels[:, None], axis=-1)
        higher = (scores > true_scores).sum(axis=-1)
        self.hits = self.hits + xp.count_nonzero(higher < self.k)
        self.total += len(scores)
        self.nan = self.nan | has_nan(y_pred)

    def merge(self, other):
        self.hits, self.total = self.hits + other.hits, self.total + other.total
        self.nan = self.nan | other.nan

    def result(self):
        if bool(self.nan):
            return float("nan")
        return host_float(self.hits) / max(self.total, 1)
