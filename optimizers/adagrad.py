"""AdaGrad (book section 6.4.2; Duchi, Hazan & Singer, 2011; slides 002 and 003)."""

from __future__ import annotations

from .base import Optimizer, check_learning_rate


class AdaGrad(Optimizer):
    """Per-coordinate step sizes shrinking with the sum of all past squared gradients.

    s <- s + g ⊙ g
    θ <- θ - ε g ⊘ (sqrt(s) + δ)

    δ (``epsilon``) sits outside the square root, as in Duchi et al. (2011),
    Keras and PyTorch; Géron and the slides write sqrt(s + δ), which differs
    only when s is of the order of δ.

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.01).
    epsilon : float > 0
        δ, avoids a division by zero (default 1e-7).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["sum_squares"]`` (starts at 0).
    """

    def __init__(self, learning_rate: float = 0.01, epsilon: float = 1e-7, **options):
        super().__init__(learning_rate, **options)
        self.epsilon = check_learning_rate(epsilon, "epsilon")

    def _update(self, param, grad, state, xp):
        s = self._zeros(state, "sum_squares", param, xp)
        s += grad * grad
        param -= self.learning_rate * grad / (xp.sqrt(s) + self.epsilon)
