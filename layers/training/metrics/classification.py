"""Precision, recall, F1 and the confusion matrix, from a confusion matrix summed over the epoch's batches.

With ``M[t, p]`` the number of samples of true class t predicted as p (rows:
truth, columns: prediction, as scikit-learn), per class c::

    tp_c = M[c, c],   fp_c = Σ_t M[t, c] - tp_c,   fn_c = Σ_p M[c, p] - tp_c
    precision_c = tp_c / (tp_c + fp_c),   recall_c = tp_c / (tp_c + fn_c),
    F1_c = 2 tp_c / (2 tp_c + fp_c + fn_c)          (0 where a denominator is 0)

``average``: ``"binary"`` reports class 1 (binary decisions), ``"macro"`` the
mean over the classes that occur in the targets or the predictions,
``"micro"`` the ratio of the summed counts (for single-label problems micro
precision = recall = F1 = accuracy). These are scikit-learn's definitions
(``zero_division=0``), checked against it in the tests.
"""

from __future__ import annotations

import numpy as np

import backend

from .base import ClassDecisions, Metric, has_nan

AVERAGES = ("binary", "macro", "micro")


def confusion_matrix(y_true, y_pred, num_classes=None):
    """Counts ``M[t, p]`` of samples with true label t predicted as p (scikit-learn's layout).

    Parameters
    ----------
    y_true, y_pred : int arrays of one shape
        Class labels in ``[0, num_classes)`` (NumPy or CuPy, same device).
    num_classes : int, optional
        Default: 1 + the largest label in either array.

    Returns
    -------
    array (num_classes, num_classes) of int64, on the labels' device
    """
    xp = backend.get_array_module(y_true, y_pred)
    y_true = xp.asarray(y_true).reshape(-1).astype(xp.int64)
    y_pred = xp.asarray(y_pred).reshape(-1).astype(xp.int64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"confusion_matrix: y_pred: expected {y_true.size} labels (as y_true), got {y_pred.size}")
    if num_classes is None:
        num_classes = 1 + max((int(a.max()) for a in (y_true, y_pred) if a.size), default=0)
    counts = xp.bincount(y_true * num_classes + y_pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


class ConfusionMatrix(Metric):
    """The epoch's confusion matrix (rows: true class, columns: predicted), an int64 array.

    Predictions become classes by the accuracy rules (argmax of class scores;
    a threshold for binary outputs, element by element, 2 classes). Its
    ``result()`` is an array (host NumPy): logged in History, not on the
    progress bar.
    """

    name = "confusion_matrix"
    state_names = ("counts", "nan")

    def __init__(self, name: str = "confusion_matrix"):
        self.name = name
        self.decisions: ClassDecisions | None = None
        self.counts = None

    def prepared(self) -> ClassDecisions:
        """The decision rule of :meth:`prepare` (RuntimeError before it)."""
        if self.decisions is None:
            raise RuntimeError(f"{type(self).__name__}: prepare(loss, y_true, output_shape) was not called")
        return self.decisions

    def prepare(self, loss, y_true, output_shape):
        self.decisions = ClassDecisions(loss, y_true, output_shape, self.name)
        return True

    def reset(self):
        self.counts, self.nan = None, False

    def update(self, y_pred, y_true):
        decisions = self.prepared()
        predicted, truth = decisions.labels(y_pred, y_true)
        batch = confusion_matrix(truth, predicted, decisions.classes)
        self.counts = batch if self.counts is None else self.counts + batch
        self.nan = self.nan | has_nan(y_pred)

    def merge(self, other):
        if other.counts is not None:
            self.counts = other.counts if self.counts is None else self.counts + other.counts
        self.nan = self.nan | other.nan

    def matrix(self):
        """The summed counts as a host int64 array (zeros before any batch)."""
        classes = self.prepared().classes
        if self.counts is None:
            return np.zeros((classes, classes), np.int64)
        return backend.to_numpy(self.counts).astype(np.int64)

    def result(self):
        if bool(self.nan):
            return np.full((self.prepared().classes,) * 2, np.nan)
        return self.matrix()


def scores_from_counts(matrix, average: str) -> dict:
    """``{"precision", "recall", "f1"}`` from a confusion matrix (see the module docstring)."""
    m = np.asarray(matrix, dtype=np.float64)
    tp = np.diag(m)
    predicted, actual = m.sum(axis=0), m.sum(axis=1)
    fp, fn = predicted - tp, actual - tp
    if average == "micro":
        tp, fp, fn = tp.sum(keepdims=True), fp.sum(keepdims=True), fn.sum(keepdims=True)
    elif average == "binary":
        tp, fp, fn = tp[1:2], fp[1:2], fn[1:2]
    else:  # macro: the classes present in the targets or the predictions
        present = (predicted + actual) > 0
        tp, fp, fn = tp[present], fp[present], fn[present]
    if tp.size == 0:
        return {"precision": 0.0, "recall": 0.0, "f1": 0.0}
    return {"precision": float(np.mean(_ratio(tp, tp + fp))), "recall": float(np.mean(_ratio(tp, tp + fn))),
            "f1": float(np.mean(_ratio(2 * tp, 2 * tp + fp + fn)))}


def _ratio(num, den):
    return np.divide(num, den, out=np.zeros_like(num), where=den > 0)


class _FromConfusion(ConfusionMatrix):
    """A score of the confusion matrix: precision, recall or F1 under ``average``."""

    score = ""

    def __init__(self, average=None, name=None):
        if average is not None and average not in AVERAGES:
            raise ValueError(f"{type(self).__name__}: average: expected one of {', '.join(map(repr, AVERAGES))} "
                             f"or None, got {average!r}")
        self.average = average
        super().__init__(name or (self.score if average in (None, "binary") else f"{self.score}_{average}"))

    def prepare(self, loss, y_true, output_shape):
        super().prepare(loss, y_true, output_shape)
        classes = self.prepared().classes
        if self.average == "binary" and classes != 2:
            raise ValueError(f"metrics: {self.name!r}: average='binary' needs binary decisions, got "
                             f"{classes} classes; use 'macro' or 'micro'")
        return True

    def resolved_average(self) -> str:
        """``average``, or its default: ``"binary"`` for binary decisions, ``"macro"`` otherwise."""
        if self.average is not None:
            return self.average
        decisions = self.prepared()
        return "binary" if decisions.classes == 2 and decisions.kind in ("binary", "sign") else "macro"

    def result(self):
        if bool(self.nan):
            return float("nan")
        return scores_from_counts(self.matrix(), self.resolved_average())[self.score]


class Precision(_FromConfusion):
    """Precision tp / (tp + fp) over the epoch (module docstring for ``average``).

    Parameters
    ----------
    average : {"binary", "macro", "micro"} or None
        None: ``"binary"`` for binary decisions (one output column), ``"macro"`` for several classes.
    name : str, optional
        Default ``"precision"`` (``"precision_macro"``/``"precision_micro"`` when ``average`` is given).
    """

    score = "precision"


class Recall(_FromConfusion):
    """Recall tp / (tp + fn) over the epoch; parameters as :class:`Precision`."""

    score = "recall"


class F1Score(_FromConfusion):
    """F1 = 2 tp / (2 tp + fp + fn) over the epoch (the harmonic mean of precision and recall).

    Parameters as :class:`Precision`; ``"f1_macro"`` and ``"f1_micro"`` name
    the two averages in ``fit(metrics=...)``.
    """

    score = "f1"
