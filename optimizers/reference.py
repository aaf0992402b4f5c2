"""The array formulas of the optimizers as camadas 0.1 wrote them: the executable spec of the fused kernels.

Each function updates ``param`` IN PLACE from ``grad`` with NumPy/CuPy array
expressions (several temporaries per step), keeping its state in the dict
``state``; ``t`` counts the steps from 1. They are the book's equations as
printed in each optimizer's docstring (chapter 6), kept to test the fused
kernels of :mod:`optimizers.fused` against ("equal to float rounding") and as
the "before" of ``python -m bench optimizers``. They square the gradient as
written, so a gradient above about 1.8e19 in float32 makes the second moment
inf, which is why the optimizers no longer use them.
"""

from __future__ import annotations

import backend


def _zeros(state, key, param):
    if key not in state:
        state[key] = backend.get_array_module(param).zeros_like(param)
    return state[key]


def sgd(param, grad, state, t, *, learning_rate):
    """θ <- θ - ε g (eq. 6.1)."""
    param -= learning_rate * grad


def momentum(param, grad, state, t, *, learning_rate, momentum=0.9):
    """v <- μ v - ε g;  θ <- θ + v (eq. 6.14)."""
    v = _zeros(state, "velocity", param)
    v *= momentum
    v -= learning_rate * grad
    param += v


def nesterov(param, grad, state, t, *, learning_rate, momentum=0.9):
    """v <- μ v - ε g;  θ <- θ + μ v - ε g (section 6.4.1, look-ahead variables)."""
    v = _zeros(state, "velocity", param)
    v *= momentum
    v -= learning_rate * grad
    param += momentum * v - learning_rate * grad


def adagrad(param, grad, state, t, *, learning_rate, epsilon=1e-7):
    """s <- s + g ⊙ g;  θ <- θ - ε g ⊘ (sqrt(s) + δ) (section 6.4.2)."""
    xp = backend.get_array_module(param)
    s = _zeros(state, "sum_squares", param)
    s += grad * grad
    param -= learning_rate * grad / (xp.sqrt(s) + epsilon)


def rmsprop(param, grad, state, t, *, learning_rate, rho=0.9, epsilon=1e-7):
    """s <- ρ s + (1 - ρ) g ⊙ g;  θ <- θ - ε g ⊘ (sqrt(s) + δ) (section 6.4.3)."""
    xp = backend.get_array_module(param)
    s = _zeros(state, "mean_square", param)
    s *= rho
    s += (1.0 - rho) * (grad * grad)
    param -= learning_rate * grad / (xp.sqrt(s) + epsilon)


def _moments(grad, state, param, beta_1, beta_2):
    m = _zeros(state, "m", param)
    s = _zeros(state, "s", param)
    m *= beta_1
    m += (1.0 - beta_1) * grad
    s *= beta_2
    s += (1.0 - beta_2) * (grad * grad)
    return m, s


def adam(param, grad, state, t, *, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """m, s moments; θ <- θ - ε m̂ ⊘ (sqrt(ŝ) + δ) (section 6.4.4)."""
    xp = backend.get_array_module(param)
    m, s = _moments(grad, state, param, beta_1, beta_2)
    m_hat = m / (1.0 - beta_1 ** t)
    s_hat = s / (1.0 - beta_2 ** t)
    param -= learning_rate * m_hat / (xp.sqrt(s_hat) + epsilon)


def nadam(param, grad, state, t, *, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7):
    """θ <- θ - ε (β1 m̂ + (1 - β1) g / (1 - β1^t)) ⊘ (sqrt(ŝ) + δ) (section 6.4.5)."""
    xp = backend.get_array_module(param)
    m, s = _moments(grad, state, param, beta_1, beta_2)
    m_hat = m / (1.0 - beta_1 ** t)
    s_hat = s / (1.0 - beta_2 ** t)
    lookahead = beta_1 * m_hat + ((1.0 - beta_1) / (1.0 - beta_1 ** t)) * grad
    param -= learning_rate * lookahead / (xp.sqrt(s_hat) + epsilon)


def adamw(param, grad, state, t, *, learning_rate, weight_decay=0.01, decay=True, beta_1=0.9, beta_2=0.999,
          epsilon=1e-7):
    """θ <- θ (1 - ε λ), then Adam (Loshchilov & Hutter, 2019; PyTorch's order); ``decay=False`` is Adam."""
    if decay:
        param *= 1.0 - learning_rate * weight_decay
    adam(param, grad, state, t, learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)


#: name for :func:`optimizers.get_optimizer` -> formula
UPDATES = {"sgd": sgd, "momentum": momentum, "nesterov": nesterov, "adagrad": adagrad, "rmsprop": rmsprop,
           "adam": adam, "nadam": nadam, "adamw": adamw}
