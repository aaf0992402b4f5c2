"""Gradient descent with momentum (book section 6.3.1, eqs. 6.13 and 6.14, Algorithm 2)."""

from __future__ import annotations

from .base import Optimizer, check_decay


class Momentum(Optimizer):
    """Momentum in Rumelhart, Hinton & Williams' form (eq. 6.14, Algorithm 2).

    v <- μ v - ε g          (Δθ(t) = -ε ∇E + α Δθ(t-1); v starts at 0)
    θ <- θ + v

    This is Polyak's (1964) heavy-ball method, eq. 6.13,
    x_{n+1} = x_n - ε ∇f(x_n) + β (x_n - x_{n-1}), with β = μ: the velocity v is
    exactly the previous step x_n - x_{n-1}. Géron (slides 002) writes the same
    rule as m <- β m - η ∇J(θ), θ <- θ + m.

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.01).
    momentum : float in [0, 1)
        μ (α in eq. 6.14, β in eq. 6.13); default 0.9. 0 gives plain SGD.
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["velocity"]`` (shape of params[i]). One fused kernel pass
    per parameter and step (``optimizers.fused``, kernel ``"momentum"``).
    """

    _kernel = "momentum"
    _slots = ("velocity",)

    def __init__(self, learning_rate=0.01, momentum: float = 0.9, **options):
        super().__init__(learning_rate, **options)
        self.momentum = check_decay(momentum, "momentum")

    def _coefficients(self, lr, t, decayed):
        return (lr, self.momentum, 1.0, 0.0)  # θ <- θ + (1 v - 0 g)
