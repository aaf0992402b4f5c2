"""Nesterov accelerated gradient (book section 6.4.1; Géron, slides 002)."""

from __future__ import annotations

from .base import Optimizer, check_decay


class Nesterov(Optimizer):
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

    State: ``state[i]["velocity"]``.
    """

    def __init__(self, learning_rate: float = 0.01, momentum: float = 0.9, **options):
        super().__init__(learning_rate, **options)
        self.momentum = check_decay(momentum, "momentum")

    def _update(self, param, grad, state, xp):
        v = self._zeros(state, "velocity", param, xp)
        v *= self.momentum
        v -= self.learning_rate * grad
        param += self.momentum * v - self.learning_rate * grad
