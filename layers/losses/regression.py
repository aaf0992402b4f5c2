"""Regression losses: mean squared error (book eq. 6.4), mean absolute error and Huber (slides 003).

``y_true`` has the shape of ``y_pred`` and is cast to its dtype. The residual
is r = y_pred - y_true.
"""

from __future__ import annotations

from backend.checks import check_positive

from .base import Loss


class MeanSquaredError(Loss):
    """Squared error, E = c Σ (y - d)², with the book's reduction available.

    Parameters
    ----------
    reduction : {"mean", "sum", "book"}
        ``"mean"`` (default, slides 003): E = (1/N) Σ (y - d)², N = y_pred.size.
        ``"sum"``: E = Σ (y - d)².
        ``"book"``: the book's eq. 6.4, E = 1/2 Σ_c Σ_j (y_{j,c} - d_{j,c})²
        over cases c and outputs j, whose derivative is dE/dy = y - d (section 6.2).

    Shapes
    ------
    y_pred, y_true : (batch, ...) of the same shape. Gradient:
    dE/dy = 2 (y - d) / N ("mean"), 2 (y - d) ("sum"), (y - d) ("book").
    """

    reductions = ("mean", "sum", "book")

    def _scale(self, count):
        if self.reduction == "book":
            return 0.5
        return super()._scale(count)

    def _values(self, y_pred, y_true, xp):
        r = y_pred - y_true
        return r * r

    def _grad(self, y_pred, y_true, xp):
        return 2.0 * (y_pred - y_true)


class MeanAbsoluteError(Loss):
    """Absolute error, E = (1/N) Σ |y - d| (slides 003, "MAE").

    Gradient dE/dy = sign(y - d) / N; at y = d (the kink) it is 0.

    Shapes: y_pred, y_true (batch, ...) of the same shape.
    """

    def _values(self, y_pred, y_true, xp):
        return xp.abs(y_pred - y_true)

    def _grad(self, y_pred, y_true, xp):
        return xp.sign(y_pred - y_true)


class Huber(Loss):
    """Huber loss (slides 003): quadratic for small residuals, linear for large ones.

    ℓ(r) = r²/2               if |r| <= δ
    ℓ(r) = δ (|r| - δ/2)      otherwise,        r = y - d,   E = (1/N) Σ ℓ

    Gradient dℓ/dr = r for |r| <= δ, δ sign(r) otherwise (continuous at |r| = δ).

    Parameters
    ----------
    delta : float > 0
        Where the loss turns from quadratic to linear (default 1.0).
    reduction : {"mean", "sum"}

    Shapes: y_pred, y_true (batch, ...) of the same shape.
    """

    def __init__(self, delta: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.delta = check_positive(delta, "delta", "Huber")

    def _values(self, y_pred, y_true, xp):
        r = xp.abs(y_pred - y_true)
        d = self.delta
        return xp.where(r <= d, 0.5 * r * r, d * (r - 0.5 * d))

    def _grad(self, y_pred, y_true, xp):
        r = y_pred - y_true
        return xp.clip(r, -self.delta, self.delta)

    def get_config(self):
        return {"delta": self.delta, "reduction": self.reduction}
