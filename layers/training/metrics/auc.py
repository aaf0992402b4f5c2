"""Area under the ROC curve of a binary classifier, exact, from every score of the epoch.

AUC = P(score of a random positive > score of a random negative) + ½ P(tie),
computed from ranks (the Mann-Whitney U statistic)::

    AUC = (R_+ - n_+ (n_+ + 1) / 2) / (n_+ n_-)

with R_+ the sum of the positives' ranks among all scores (ties get their
average rank). It needs every score at once, so the state is the scores and
labels seen (kept on the host, 9 bytes per sample); the value equals
scikit-learn's ``roc_auc_score``.
"""

from __future__ import annotations

import numpy as np

import backend

from .accuracy_rules import BINARY, SIGN
from .base import ClassDecisions, Metric


def roc_auc(y_true, scores) -> float:
    """Exact ROC AUC of ``scores`` for the binary labels ``y_true`` (1 = positive); NaN with one class only.

    Parameters
    ----------
    y_true : array (n,) of 0/1 (bool or numbers)
    scores : array (n,) of floats
        Any increasing function of the positive class's probability (probabilities or logits).
    """
    y = np.asarray(backend.to_numpy(y_true)).reshape(-1).astype(bool)
    s = np.asarray(backend.to_numpy(scores), dtype=np.float64).reshape(-1)
    positives = int(y.sum())
    negatives = y.size - positives
    if positives == 0 or negatives == 0 or np.isnan(s).any():
        return float("nan")
    order = np.argsort(s, kind="mergesort")
    ordered = s[order]
    ranks = np.empty(s.size, dtype=np.float64)
    starts = np.flatnonzero(np.r_[True, ordered[1:] != ordered[:-1]])   # first index of each run of ties
    ends = np.r_[starts[1:], s.size]
    average = (starts + ends + 1) / 2.0                                     # mean of the 1-based ranks of a run
    ranks[order] = np.repeat(average, ends - starts)
    return float((ranks[y].sum() - positives * (positives + 1) / 2.0) / (positives * negatives))


class AUC(Metric):
    """ROC AUC of a binary classifier over the epoch (exact; see the module docstring).

    The score of a sample is its output for one output column (a logit or a
    probability), or ``z_1 - z_0`` for two class columns; the positive class
    is a target above 0.5 (above 0 for the Hinge loss's ±1 labels), or label
    1. NaN when the epoch saw only one class, or a NaN output.
    """

    name = "auc"
    state_names = ("scores", "labels")

    def __init__(self, name: str = "auc"):
        self.name = name
        self.decisions: ClassDecisions | None = None
        self.reset()

    def prepare(self, loss, y_true, output_shape):
        self.decisions = ClassDecisions(loss, y_true, output_shape, self.name)
        if self.decisions.classes != 2:
            raise ValueError(f"metrics: {self.name!r}: AUC needs a binary classifier (one output column or two "
                             f"classes), got {self.decisions.classes} classes")
        return True

    def reset(self):
        self.scores, self.labels = [], []

    def update(self, y_pred, y_true):
        decisions = self.decisions
        if decisions is None:
            raise RuntimeError("AUC: prepare(loss, y_true, output_shape) was not called")
        _, truth = decisions.labels(y_pred, y_true)
        if decisions.kind in (BINARY, SIGN):
            scores = y_pred.reshape(-1)
        else:
            scores = (y_pred[..., 1] - y_pred[..., 0]).reshape(-1)
        self.scores.append(backend.to_numpy(scores).astype(np.float64))
        self.labels.append(backend.to_numpy(truth).reshape(-1) == 1)

    def merge(self, other):
        self.scores, self.labels = self.scores + other.scores, self.labels + other.labels

    def result(self):
        if not self.scores:
            return float("nan")
        return roc_auc(np.concatenate(self.labels), np.concatenate(self.scores))
