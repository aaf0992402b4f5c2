"""Metrics of ``fit(metrics=...)`` and ``evaluate``: by name or as objects, reduced correctly over batches.

======================  =============================  ==================================================
name                    object                         what
======================  =============================  ==================================================
``"accuracy"``          :class:`Accuracy`              correct / total (left out where it does not apply)
``"top_k_accuracy"``    :class:`TopKAccuracy` (k = 5)  true class among the k highest scores
``"precision"``         :class:`Precision`             tp / (tp + fp): class 1 (binary) or macro
``"recall"``            :class:`Recall`                tp / (tp + fn): class 1 (binary) or macro
``"f1"``                :class:`F1Score`               2 tp / (2 tp + fp + fn): class 1 (binary) or macro
``"f1_macro"``          ``F1Score(average="macro")``   mean of the per-class F1
``"f1_micro"``          ``F1Score(average="micro")``   from the summed counts
``"confusion_matrix"``  :class:`ConfusionMatrix`       counts (true, predicted), an array
``"mae"``               :class:`MeanAbsoluteError`     mean |y - ŷ|
``"rmse"``              :class:`RootMeanSquaredError`  sqrt(mean (y - ŷ)²)
``"r2"``                :class:`R2Score`               1 - SS_res / SS_tot
``"auc"``               :class:`AUC`                   ROC AUC of a binary classifier (exact)
======================  =============================  ==================================================

Each keeps a running state over the epoch (counts, a confusion matrix, sums,
the scores) and is read once at its end (:mod:`.base`), so F1, AUC and R² are
the epoch's values, not means of batch values. Classification metrics read
predictions with the accuracy rules of :mod:`.accuracy_rules` (argmax of
class scores; thresholds for binary outputs, from logits or probabilities).
A metric of NaN outputs is NaN. A plain function ``fn(y_pred, y_true) ->
float`` is averaged over batches weighted by batch size (:class:`BatchMean`).
"""

from __future__ import annotations

from .accuracy import Accuracy, TopKAccuracy
from .accuracy_rules import BINARY, CATEGORICAL, SIGN, SPARSE, accuracy, accuracy_counts, accuracy_kind
from .auc import AUC, roc_auc
from .base import BatchMean, Metric
from .classification import ConfusionMatrix, F1Score, Precision, Recall, confusion_matrix
from .regression import MeanAbsoluteError, R2Score, RootMeanSquaredError

#: name -> a function building the metric (a fresh object per call)
METRICS = {
    "accuracy": lambda: Accuracy(required=False),
    "acc": lambda: Accuracy(required=False),
    "top_k_accuracy": lambda: TopKAccuracy(5, name="top_k_accuracy"),
    "precision": Precision,
    "recall": Recall,
    "f1": F1Score,
    "f1_macro": lambda: F1Score(average="macro"),
    "f1_micro": lambda: F1Score(average="micro"),
    "confusion_matrix": ConfusionMatrix,
    "mae": MeanAbsoluteError,
    "rmse": RootMeanSquaredError,
    "r2": R2Score,
    "auc": AUC,
}


def get_metric(metric) -> Metric:
    """A fresh :class:`Metric` from a name of :data:`METRICS`, a Metric object (copied) or a function.

    Raises
    ------
    ValueError
        An unknown name (the message lists the known ones).
    TypeError
        Anything else.
    """
    if isinstance(metric, Metric):
        return metric.fresh()
    if isinstance(metric, str):
        key = metric.lower()
        if key not in METRICS:
            raise ValueError(f"metrics: expected one of {', '.join(repr(k) for k in METRICS)}, a Metric or a "
                             f"callable metric(y_pred, y_true), got {metric!r}")
        made = METRICS[key]()
        if key == "acc":
            made.name = "accuracy"
        return made
    if callable(metric):
        return BatchMean(metric)
    raise TypeError(f"metrics: expected a name, a Metric or a callable metric(y_pred, y_true), "
                    f"got {type(metric).__name__}")


__all__ = ["AUC", "BINARY", "CATEGORICAL", "METRICS", "SIGN", "SPARSE", "Accuracy", "BatchMean", "ConfusionMatrix",
           "F1Score", "MeanAbsoluteError", "Metric", "Precision", "R2Score", "Recall", "RootMeanSquaredError",
           "TopKAccuracy", "accuracy", "accuracy_counts", "accuracy_kind", "confusion_matrix", "get_metric", "roc_auc"]
