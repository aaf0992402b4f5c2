"""Batch and layer normalization in NumPy/CuPy (book section 25.3): the specification of the fast kernels.

These are the formulas the layers ran before the fused kernels (and still run
for a feature axis other than the last, and for dtypes the kernels do not
take). Arrays are ``(N, C)`` for batch normalization (statistics over the
rows, one per column: the rows are ``B`` or ``B H W`` for NHWC) and ``(N, D)``
for layer normalization (statistics over the columns, one per row)::

    μ = mean(x),  σ² = mean((x - μ)²),  1/σ = 1 / sqrt(σ² + ε)
    y = γ ((x - μ) / σ) + β
    dE/dβ = Σ g,  dE/dγ = Σ g x̂,  g' = g γ
    dE/dx = (1/σ) (g' - mean(g') - x̂ mean(g' x̂))

Statistics, sums and outputs keep the input's dtype.
"""

from __future__ import annotations

import backend


def _standardize(x, axis, epsilon):
    xp = backend.get_array_module(x)
    mean = x.mean(axis=axis, keepdims=True)
    centered = x - mean
    var = (centered * centered).mean(axis=axis, keepdims=True)
    inv_std = 1.0 / xp.sqrt(var + x.dtype.type(epsilon))
    return centered * inv_std, mean, var, inv_std


def _standardize_backward(grad_xhat, x_hat, inv_std, axis):
    mean_g = grad_xhat.mean(axis=axis, keepdims=True)
    mean_gx = (grad_xhat * x_hat).mean(axis=axis, keepdims=True)
    return inv_std * (grad_xhat - mean_g - x_hat * mean_gx)


def batch_norm_forward(x, gamma, beta, epsilon):
    """Training forward of ``x`` ``(N, C)``: ``(y, mean, var, inv_std)``, the statistics of shape ``(C,)``."""
    x_hat, mean, var, inv_std = _standardize(x, 0, epsilon)
    return gamma * x_hat + beta, mean[0], var[0], inv_std[0]


def batch_norm_forward_eval(x, gamma, beta, running_mean, running_var, epsilon):
    """Evaluation forward: ``(y, inv_std)`` with ``inv_std = 1 / sqrt(running_var + ε)``, shape ``(C,)``."""
    xp = backend.get_array_module(x)
    inv_std = 1.0 / xp.sqrt(running_var + x.dtype.type(epsilon))
    return gamma * ((x - running_mean) * inv_std) + beta, inv_std


def batch_norm_backward(grad_output, x, gamma, mean, inv_std):
    """Training backward (through the batch statistics): ``(grad_input, grad_gamma, grad_beta)``."""
    x_hat = (x - mean) * inv_std
    grad_gamma = (grad_output * x_hat).sum(axis=0)
    grad_beta = grad_output.sum(axis=0)
    return _standardize_backward(grad_output * gamma, x_hat, inv_std, 0), grad_gamma, grad_beta


def batch_norm_backward_eval(grad_output, x, gamma, mean, inv_std):
    """Evaluation backward (the fixed affine map): ``(grad_output γ inv_std, grad_gamma, grad_beta)``."""
    x_hat = (x - mean) * inv_std
    grad_gamma = (grad_output * x_hat).sum(axis=0)
    grad_beta = grad_output.sum(axis=0)
    return grad_output * gamma * inv_std, grad_gamma, grad_beta


def layer_norm_forward(x, gamma, beta, epsilon):
    """Forward of ``x`` ``(N, D)`` over each row: ``(y, mean, inv_std)``, the statistics of shape ``(N,)``.

    ``gamma``/``beta`` of shape ``(D,)``, or None (no scale / no shift).
    """
    x_hat, mean, _, inv_std = _standardize(x, 1, epsilon)
    y = x_hat if gamma is None else x_hat * gamma
    if beta is not None:
        y = y + beta
    return y, mean[:, 0], inv_std[:, 0]


def layer_norm_backward(grad_output, x, gamma, mean, inv_std):
    """Backward of :func:`layer_norm_forward`: ``(grad_input, grad_gamma, grad_beta)`` (sums over the rows)."""
    x_hat = (x - mean[:, None]) * inv_std[:, None]
    grad_gamma = (grad_output * x_hat).sum(axis=0)
    grad_beta = grad_output.sum(axis=0)
    grad_xhat = grad_output if gamma is None else grad_output * gamma
    return _standardize_backward(grad_xhat, x_hat, inv_std[:, None], 1), grad_gamma, grad_beta
