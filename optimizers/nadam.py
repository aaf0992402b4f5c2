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
    Keras and by PyTorch's NAdam) is not applied: β1 is constant. Adam's fused
    kernel with c_m = ε β1 / (1 - β1^t) and c_g = ε (1 - β1) / (1 - β1^t).

    Parameters
    ----------
    learning_rate : float > 0 or schedule
        ε (default 0.001).
    beta_1, beta_2 : float in [0, 1)
        Defaults 0.9, 0.999.
    epsilon : float > 0
        δ (default 1e-7).
    l1, l2, clipnorm, clipvalue, on_nonfinite :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["m"]``, ``state[i]["rms"]`` (= sqrt(s)); t is ``self.iterations``.
    """

    def _momentum_coefficients(self, lr, correction):
        b1 = self.beta_1
        return lr * b1 / correction, lr * (1.0 - b1) / correction
