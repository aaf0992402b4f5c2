"""Nesterov accelerated gradient (book section 6.4.1; Géron, slides 002)."""

from __future__ import annotations

from .momentum import Momentum


class Nesterov(Momentum):
    """Momentum with the gradient measured ahead, at θ + μ v (Nesterov, 1983; Sutskever et al., 2013).

    Géron's form (slides 002):   v <- μ v - ε ∇E(θ + μ v);   θ <- θ + v.

    ``step`` only receives the gradient at the stored parameters, so it uses
    the equivalent change of variables θ' = θ + μ v (as Keras and PyTorch do)::

        v  <- μ v - ε g(θ')
        θ' <- θ' + μ v - ε g(θ')        (i.e. θ' += μ v_new - ε g)

    The stored parameters are the look-ahead point; they converge to the same
    minimum.

    Parameters
    ----------
    learning_rate : float > 0
        ε (default 0.01).
    momentum : float in [0, 1)
        μ (default 0.9).
    l1, l2, clipnorm, clipvalue :
        See :class:`~optimizers.base.Optimizer`.

    State: ``state[i]["velocity"]``. :class:`~optimizers.momentum.Momentum`'s
    kernel with the look-ahead coefficients.
    """

    def _coefficients(self, lr, t, decayed):
        return (lr, self.momentum, self.momentum, lr)  # θ' <- θ' + (μ v - ε g)
