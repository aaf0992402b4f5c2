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

    State: ``state[i]["root_sum_squares"]``, sqrt(s) (starts at 0), updated as
    hypot(sqrt(s), g) without squaring: s itself is not representable in
    float32 after one gradient of 1e20, its root is (see :mod:`optimizers.fused`).
    """

    _kernel = "rms"
    _slots = ("root_sum_squares",)

    def __init__(self, learning_rate=0.01, epsilon: float = 1e-7, **options):
        super().__init__(learning_rate, **options)
        self.epsilon = check_learning_rate(epsilon, "epsilon")

    def _coefficients(self, lr, t, decayed):
        return (lr, 1.0, 1.0, self.epsilon)  # r <- sqrt(r² + g²)
