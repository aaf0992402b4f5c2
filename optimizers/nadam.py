"""Nadam: Adam with Nesterov momentum (book section 6.4.5; Dozat, 2016; Géron)."""

from __future__ import annotations

from .adam import Adam


class Nadam(Adam):
    """Adam whose momentum term looks ahead, as Nesterov's does (Dozat, 2016).

    m, s, m̂, ŝ as in :class:`~optimizers.adam.Adam`, then

    θ <- θ - ε (β1 m̂ + (1 - β1) g / (1 - β1^t)) ⊘ (sqrt(ŝ) + δ)

    i.e. the bias-corrected momentum of the *next* step combined with the
    current gradient (the form in Ruder, 2016, "An overview of gradient descent
    optimization algorithms"). Dozat's momentum warm-up schedule μ_t (used by
    Keras) is not applied: β1 is constant.

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.001).
    beta_1, beta_2 : float in [0, 1)
        Defaults 0.9, 0.999.
    epsilon : float > 0
        δ (default 1e-7).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["m"]``, ``state[i]["s"]``; t is ``self.iterations``.
    """

    def _update(self, param, grad, state, xp):
        m, s = self._moments(grad, state, param, xp)
        t = self.iterations
        b1 = self.beta_1
        m_hat = m / (1.0 - b1 ** t)
        s_hat = s / (1.0 - self.beta_2 ** t)
        lookahead = b1 * m_hat + ((1.0 - b1) / (1.0 - b1 ** t)) * grad
        param -= self.learning_rate * lookahead / (xp.sqrt(s_hat) + self.epsilon)
