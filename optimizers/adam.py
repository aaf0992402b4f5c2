"""Adam (book section 6.4.4; Kingma & Ba, 2015; Géron, slides 002; slides 003)."""

from __future__ import annotations

import math

from .base import Optimizer, check_decay, check_learning_rate


class Adam(Optimizer):
    """Adaptive moment estimation: momentum on the gradient plus RMSProp's scaling, bias-corrected.

    m <- β1 m + (1 - β1) g
    s <- β2 s + (1 - β2) g ⊙ g
    m̂ = m / (1 - β1^t),   ŝ = s / (1 - β2^t)        (t = 1, 2, ... counts the steps)
    θ <- θ - ε m̂ ⊘ (sqrt(ŝ) + δ)

    (Géron writes m <- β1 m - (1 - β1) g and θ <- θ + ε m̂ ⊘ sqrt(ŝ + δ): the
    same rule with m's sign flipped and δ inside the root; slides 003 print
    (1 + β) for (1 - β), a typo.) δ sits outside the square root, as in the
    paper, Keras and PyTorch.

    Computed in one fused pass per parameter (:mod:`optimizers.fused`, kernel
    ``"adam"``) in PyTorch's order, θ <- θ - (ε / (1 - β1^t)) m ⊘ (sqrt(s) /
    sqrt(1 - β2^t) + δ), keeping r = sqrt(s) instead of s: no finite gradient
    overflows r (s = (1 - β2) g² overflows float32 for |g| > 5.8e20, g ⊙ g
    already for |g| > 1.8e19), so one huge gradient cannot freeze a parameter.

    Parameters
    ----------
    learning_rate : float > 0 or schedule
        ε (default 0.001).
    beta_1, beta_2 : float in [0, 1)
        Decay of the first and second moment estimates (defaults 0.9, 0.999).
    epsilon : float > 0
        δ (default 1e-7).
    l1, l2, clipnorm, clipvalue, on_nonfinite :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["m"]`` and ``state[i]["rms"]`` (= sqrt(s)); t is ``self.iterations``.
    """

    _kernel = "adam"
    _slots = ("m", "rms")

    def __init__(self, learning_rate=0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **options):
        super().__init__(learning_rate, **options)
        self.beta_1 = check_decay(beta_1, "beta_1")
        self.beta_2 = check_decay(beta_2, "beta_2")
        self.epsilon = check_learning_rate(epsilon, "epsilon")

    def _coefficients(self, lr, t, decayed):
        """(β1, 1 - β1, sqrt(β2), sqrt(1 - β2), c_m, c_g, 1 / sqrt(1 - β2^t), δ, keep) of the ``adam`` kernel."""
        b1, b2 = self.beta_1, self.beta_2
        correction = 1.0 - b1 ** t
        cm, cg = self._momentum_coefficients(lr, correction)
        keep = 1.0 - lr * self._decay_rate() if decayed else 1.0
        return (b1, 1.0 - b1, math.sqrt(b2), math.sqrt(1.0 - b2), cm, cg, 1.0 / math.sqrt(1.0 - b2 ** t),
                self.epsilon, keep)

    def _momentum_coefficients(self, lr, correction):
        """θ moves by (c_m m + c_g g) / denominator: Adam's c_m = ε / (1 - β1^t), c_g = 0."""
        return lr / correction, 0.0

    def _decay_rate(self) -> float:
        return 0.0
