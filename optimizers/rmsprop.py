"""RMSProp (book section 6.4.3; Hinton's lecture 6e, 2012; slides 002 and 003)."""

from __future__ import annotations

import math

from .base import Optimizer, check_decay, check_learning_rate


class RMSProp(Optimizer):
    """AdaGrad with an exponentially decaying average of the squared gradients.

    s <- ρ s + (1 - ρ) g ⊙ g
    θ <- θ - ε g ⊘ (sqrt(s) + δ)

    (Slides 003 print the factor as (1 + γ): a typo for (1 - γ), as in Géron,
    slides 002.) δ sits outside the square root as in Keras and PyTorch.

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.001).
    rho : float in [0, 1)
        ρ, the decay rate (default 0.9, as Géron recommends).
    epsilon : float > 0
        δ (default 1e-7).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["rms"]``, sqrt(s) (starts at 0), updated without squaring
    g so that no finite gradient overflows it (see :mod:`optimizers.fused`).
    """

    _kernel = "rms"
    _slots = ("rms",)

    def __init__(self, learning_rate=0.001, rho: float = 0.9, epsilon: float = 1e-7, **options):
        super().__init__(learning_rate, **options)
        self.rho = check_decay(rho, "rho")
        self.epsilon = check_learning_rate(epsilon, "epsilon")

    def _coefficients(self, lr, t, decayed):
        return (lr, math.sqrt(self.rho), math.sqrt(1.0 - self.rho), self.epsilon)  # r <- sqrt(ρ r² + (1-ρ) g²)
