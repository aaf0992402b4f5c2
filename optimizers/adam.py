"""Adam (book section 6.4.4; Kingma & Ba, 2015; Géron, slides 002; slides 003)."""

from __future__ import annotations

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

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.001).
    beta_1, beta_2 : float in [0, 1)
        Decay of the first and second moment estimates (defaults 0.9, 0.999).
    epsilon : float > 0
        δ (default 1e-7).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["m"]``, ``state[i]["s"]``; t is ``self.iterations``.
    """

    def __init__(self, learning_rate: float = 0.001, beta_1: float = 0.9, beta_2: float = 0.999,
                 epsilon: float = 1e-7, **options):
        super().__init__(learning_rate, **options)
        self.beta_1 = check_decay(beta_1, "beta_1")
        self.beta_2 = check_decay(beta_2, "beta_2")
        self.epsilon = check_learning_rate(epsilon, "epsilon")

    def _moments(self, grad, state, param, xp):
        m = self._zeros(state, "m", param, xp)
        s = self._zeros(state, "s", param, xp)
        m *= self.beta_1
        m += (1.0 - self.beta_1) * grad
        s *= self.beta_2
        s += (1.0 - self.beta_2) * (grad * grad)
        return m, s

    def _update(self, param, grad, state, xp):
        m, s = self._moments(grad, state, param, xp)
        t = self.iterations
        m_hat = m / (1.0 - self.beta_1 ** t)
        s_hat = s / (1.0 - self.beta_2 ** t)
        param -= self.learning_rate * m_hat / (xp.sqrt(s_hat) + self.epsilon)
