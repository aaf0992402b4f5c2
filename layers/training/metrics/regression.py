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
    """Per-column running sums of the errors; subclasses say how a column's value comes from them."""

    state_names: tuple = ("count", "abs_sum", "sq_sum")

    def __init__(self, name: str | None = None):
        self.name = name or type(self).name
        self.reset()

    def prepare(self, loss, y_true, output_shape):
        self.width = int(output_shape[-1]) if len(output_shape) > 1 else 1
        return True

    def reset(self):
        self.count, self.abs_sum, self.sq_sum = 0, None, None

    def _errors(self, y_pred, y_true):
        xp = backend.get_array_module(y_pred)
        true = as_columns(y_true, self.width)
        err = true - as_columns(y_pred, self.width)
        self.count += len(true)
        self.abs_sum = _added(self.abs_sum, xp.abs(err).sum(axis=0))
        self.sq_sum = _added(self.sq_sum, xp.square(err).sum(axis=0))
        return xp, true

    def update(self, y_pred, y_true):
        self._errors(y_pred, y_true)

    def merge(self, other):
        self.count += other.count
        self.abs_sum = _added(self.abs_sum, other.abs_sum)
        self.sq_sum = _added(self.sq_sum, other.sq_sum)

    def columns(self):
        """The metric of each output column (host float64)."""
        raise NotImplementedError

    def result(self):
        if not self.count:
            return float("nan")
        return float(np.mean(self.columns()))


def _added(total, value):
    """``total + value`` as a new array; None (nothing yet) on either side adds nothing."""
    if value is None:
        return total
    return value if total is None else total + value


class MeanAbsoluteError(_ColumnMetric):
    """MAE: the mean of |y - ŷ| per output column, averaged over the columns (module docstring)."""

    name = "mae"

    def columns(self):
        return backend.to_numpy(self.abs_sum) / self.count


class RootMeanSquaredError(_ColumnMetric):
    """RMSE: sqrt of the mean of (y - ŷ)² per output column, averaged over the columns."""

    name = "rmse"

    def columns(self):
        return np.sqrt(backend.to_numpy(self.sq_sum) / self.count)


class R2Score(_ColumnMetric):
    """R², the coefficient of determination, per output column and averaged (module docstring).

    1 for a perfect fit, 0 for predicting the mean of the targets, negative
    when worse than that.
    """

    name = "r2"
    state_names = _ColumnMetric.state_names + ("mean", "m2")

    def reset(self):
        super().reset()
        self.mean = self.m2 = None

    def update(self, y_pred, y_true):
        xp, true = self._errors(y_pred, y_true)
        n_b = len(true)
        mean_b = true.mean(axis=0)
        m2_b = xp.square(true - mean_b).sum(axis=0)
        if self.mean is None:
            self.mean, self.m2 = mean_b, m2_b
            return
        n_a = self.count - n_b
        delta = mean_b - self.mean
        self.mean = self.mean + delta * (n_b / self.count)
        self.m2 = self.m2 + m2_b + xp.square(delta) * (n_a * n_b / self.count)

    def merge(self, other):
        """Chan's pairwise update of the target mean and Σ(y - ȳ)², then the error sums."""
        n_a, n_b = self.count, other.count
        super().merge(other)
        if other.mean is None:
            return
        if self.mean is None:
            self.mean, self.m2 = other.mean, other.m2
            return
        delta = other.mean - self.mean
        self.mean = self.mean + delta * (n_b / self.count)
        self.m2 = self.m2 + other.m2 + delta * delta * (n_a * n_b / self.count)

    def columns(self):
        residual, spread = backend.to_numpy(self.sq_sum), backend.to_numpy(self.m2)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores = 1.0 - residual / spread
        scores = np.where(spread == 0, np.where(residual == 0, 1.0, 0.0), scores)
        return np.where(np.isnan(residual) | np.isnan(spread), np.nan, scores)
