"""Plain (stochastic) gradient descent (book section 6.1, Algorithm 1; eqs. 6.8-6.11; section 6.3.2)."""

from __future__ import annotations

from .base import Optimizer


class SGD(Optimizer):
    """Gradient descent step on each (mini-)batch's gradient.

    θ <- θ - ε g          (eq. 6.1 / 6.10: w_{t+1} = w_t - ε ∇_w E)

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.01).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    Stochastic when the gradient comes from a random mini-batch (section 6.3.2);
    the update rule itself is the book's gradient descent. One fused kernel
    pass per parameter (``optimizers.fused``, kernel ``"sgd"``).
    """

    _kernel = "sgd"

    def __init__(self, learning_rate=0.01, **options):
        super().__init__(learning_rate, **options)

    def _coefficients(self, lr, t, decayed):
        return (lr,)
