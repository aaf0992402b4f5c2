"""Accuracy "where it applies": how predictions become class decisions for each loss.

The rule is decided once per call from the loss and the targets
(:func:`accuracy_kind`); every classification metric (accuracy, precision,
recall, F1, the confusion matrix) reads predictions this way:

==================================  =====================================================
loss                                accuracy compares
==================================  =====================================================
SparseCategoricalCrossEntropy       ``argmax(y_pred, -1)`` with the integer labels
CategoricalCrossEntropy,            ``argmax(y_pred, -1)`` with ``argmax(y_true, -1)``
MulticlassHinge, KLDivergence       (or with the labels when ``y_true`` is 1-D)
BinaryCrossEntropy                  ``y_pred > 0.5`` (``> 0`` with ``from_logits=True``)
                                    with ``y_true > 0.5``, element by element
Hinge                               ``y_pred > 0`` with ``y_true > 0`` (labels ±1 or 0/1)
                                    (kind ``"sign"``)
any other loss (MSE, MAE, Huber)    only when every target is 0 or 1: one output column
                                    (or multi-label 0/1 targets) -> ``y_pred > 0.5``;
                                    one-hot rows -> argmax; otherwise no accuracy
==================================  =====================================================

So an XOR network trained with MeanSquaredError on 0/1 targets reports
accuracy, a regression on real targets does not. An output holding NaN has
no accuracy: the batch's accuracy is NaN (never the argmax of NaN), and so is
the epoch's in ``History``, as its loss is.
"""

from __future__ import annotations

import backend
from backend.checks import first_violation

SPARSE = "sparse"
CATEGORICAL = "categorical"
BINARY = "binary"
SIGN = "sign"

_CATEGORICAL_LOSSES = ("CategoricalCrossEntropy", "MulticlassHinge", "KLDivergence")


def _loss_name(loss) -> str:
    return type(loss).__name__


def _is_zero_one(y) -> bool:
    return first_violation(y, lambda c, xp: ~((c == 0) | (c == 1))) is None  # chunked: no y-sized temporary


def accuracy_kind(loss, y_true, y_pred_shape=None):
    """How accuracy is computed for ``loss`` on targets ``y_true``.

    Returns
    -------
    tuple (kind, threshold) or None
        ``kind`` is ``"sparse"``, ``"categorical"``, ``"binary"`` or
        ``"sign"``; ``threshold`` is the decision threshold applied to
        ``y_pred`` for ``"binary"``/``"sign"`` (``None`` otherwise). ``None`` when accuracy does not apply.
    """
    name = _loss_name(loss)
    width = y_pred_shape[-1] if y_pred_shape is not None and len(y_pred_shape) > 1 else 1
    if name == "SparseCategoricalCrossEntropy":
        return SPARSE, None
    if name in _CATEGORICAL_LOSSES:
        labels = y_true.ndim == 1 or (y_true.shape[-1] == 1 and width > 1)
        return (SPARSE, None) if labels else (CATEGORICAL, None)
    if name == "BinaryCrossEntropy":
        return BINARY, 0.0 if getattr(loss, "from_logits", False) else 0.5
    if name == "Hinge":
        return SIGN, 0.0
    if y_true.dtype.kind not in "biuf" or not _is_zero_one(y_true):
        return None
    if width > 1 and y_true.ndim > 1 and y_true.shape[-1] == width:
        if first_violation(y_true, lambda c, xp: c.sum(axis=-1) != 1) is None:
            return CATEGORICAL, None
    return BINARY, 0.5


def accuracy_counts(y_pred, y_true, kind, threshold=None):
    """``(correct, total)`` for one batch; see the module table for ``kind``.

    Parameters
    ----------
    y_pred : array, shape (batch, ...)
        Model outputs.
    y_true : array
        Targets: labels (batch,) for ``"sparse"``, the shape of ``y_pred``
        otherwise (a 1-D ``y_true`` is compared with a one-column ``y_pred``).

    Returns
    -------
    (float, int)
        ``correct`` is NaN when ``y_pred`` holds a NaN (no prediction to count).
    """
    xp = backend.get_array_module(y_pred, y_true)
    if bool(xp.isnan(y_pred).any()):
        total = y_pred.size // y_pred.shape[-1] if kind in (SPARSE, CATEGORICAL) else y_pred.size
        return float("nan"), int(total)
    if kind == SPARSE:
        hits = xp.argmax(y_pred, axis=-1) == y_true.reshape(y_pred.shape[:-1]).astype(xp.int64)
    elif kind == CATEGORICAL:
        if y_true.ndim == y_pred.ndim - 1:
            hits = xp.argmax(y_pred, axis=-1) == y_true
        else:
            hits = xp.argmax(y_pred, axis=-1) == xp.argmax(y_true, axis=-1)
    elif kind in (BINARY, SIGN):
        truth = y_true.reshape(y_pred.shape) > (0.0 if kind == SIGN else 0.5)
        hits = (y_pred > (threshold if threshold is not None else 0.5 if kind == BINARY else 0.0)) == truth
    else:
        raise ValueError(f"kind: expected 'sparse', 'categorical', 'binary' or 'sign', got {kind!r}")
    return float(xp.count_nonzero(hits)), int(hits.size)


def accuracy(y_pred, y_true, loss=None, kind=None, threshold=None) -> float:
    """Fraction of correct predictions, the rule chosen from ``loss`` (see the module table).

    Parameters
    ----------
    y_pred, y_true : arrays on the same device
    loss : Loss, optional
        Used to pick ``kind`` when ``kind`` is not given.
    kind : {"sparse", "categorical", "binary", "sign"}, optional
    threshold : float, optional
        Decision threshold on ``y_pred`` (default 0.5 for ``"binary"``, 0 for ``"sign"``).

    Raises
    ------
    ValueError
        Accuracy does not apply (regression targets that are not all 0/1).
    """
    if kind is None:
        found = accuracy_kind(loss, y_true, tuple(y_pred.shape))
        if found is None:
            raise ValueError(
                f"accuracy: does not apply to loss {_loss_name(loss)} with targets that are not all 0 or 1"
            )
        kind, threshold = found
    correct, total = accuracy_counts(y_pred, y_true, kind, threshold)
    return correct / max(total, 1)
