"""Regression metrics over the epoch: MAE, RMSE and R² per output column, then averaged over the columns.

Outputs are compared column by column (the last axis of ``y_pred``; a 1-D
output is one column) and the column values are averaged with equal weights,
as scikit-learn's ``multioutput="uniform_average"``::

    MAE_j  = (1/n) Σ_i |y_ij - ŷ_ij|
    RMSE_j = sqrt((1/n) Σ_i (y_ij - ŷ_ij)²)
    R²_j   = 1 - Σ_i (y_ij - ŷ_ij)² / Σ_i (y_ij - ȳ_j)²   (1 when both sums are 0, 0 when only the second is)

The state is float64 sums per column; R²'s Σ(y - ȳ)² is merged batch by
batch with Chan's update (no cancellation from Σy² - (Σy)²/n). NaN outputs
give NaN.
"""

from __future__ import annotations

import numpy as np

import backend

from .base import Metric, as_columns


class _ColumnMetric(Metric):
    """Per-column running sums of the errors (subclasses read them)."""

    def prepare(self, loss, y_true, output_shape):
        self.width = int(output_shape[-1]) if len(output_shape) > 1 else 1
        return True

    def reset(self):
        self.count, self.abs_sum, self.sq_sum = 0, None, None

    def _errors(self, y_pred, y_true):
        xp = backend.get_array_module(y_pred)
        pred = as_columns(y_pred, self.width)
        true = as_columns(y_true, self.width)
        self.count += len(pred)
        return xp, pred, true, true - pred

    def update(self, y_pred, y_true):
        xp, _, _, err = self._errors(y_pred, y_true)
        self._add(xp.abs(err).sum(axis=0), xp.square(err).sum(axis=0))

    def _add(self, abs_sum, sq_sum):
        self.abs_sum = abs_sum if self.abs_sum is None else self.abs_sum + abs_sum
        self.sq_sum = sq_sum if self.sq_sum is None else self.sq_sum + sq_sum


class MeanAbsoluteError(_ColumnMetric):
    """MAE: the mean of |y - ŷ| per output column, averaged over the columns (module docstring)."""

    name = "mae"

    def __init__(self, name: str = "mae"):
        self.name = name
        self.reset()

    def result(self):
        if self.abs_sum is None:
            return float("nan")
        return float(np.mean(backend.to_numpy(self.abs_sum) / self.count))


class RootMeanSquaredError(_ColumnMetric):
    """RMSE: sqrt of the mean of (y - ŷ)² per output column, averaged over the columns."""

    name = "rmse"

    def __init__(self, name: str = "rmse"):
        self.name = name
        self.reset()

    def result(self):
        if self.sq_sum is None:
            return float("nan")
        return float(np.mean(np.sqrt(backend.to_numpy(self.sq_sum) / self.count)))


class R2Score(_ColumnMetric):
    """R², the coefficient of determination, per output column and averaged (module docstring).

    1 for a perfect fit, 0 for predicting the mean of the targets, negative
    when worse than that.
    """

    name = "r2"

    def __init__(self, name: str = "r2"):
        self.name = name
        self.reset()

    def reset(self):
        super().reset()
        self.mean = self.m2 = None

    def update(self, y_pred, y_true):
        xp, _, true, err = self._errors(y_pred, y_true)
        self._add(xp.abs(err).sum(axis=0), xp.square(err).sum(axis=0))
        n_b = len(true)
        mean_b = true.mean(axis=0)
        m2_b = xp.square(true - mean_b).sum(axis=0)
        if self.mean is None:
            self.mean, self.m2 = mean_b, m2_b
            return
        n_a = self.count - n_b
        delta = mean_b - self.mean
        total = n_a + n_b
        self.mean = self.mean + delta * (n_b / total)
        self.m2 = self.m2 + m2_b + xp.square(delta) * (n_a * n_b / total)

    def result(self):
        if self.sq_sum is None:
            return float("nan")
        residual, spread = backend.to_numpy(self.sq_sum), backend.to_numpy(self.m2)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = 1.0 - residual / spread
        scores = np.where(spread == 0, np.where(residual == 0, 1.0, 0.0), scores)
        scores = np.where(np.isnan(residual) | np.isnan(spread), np.nan, scores)
        return float(np.mean(scores))
