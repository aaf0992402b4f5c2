"""Batch and layer normalization: fused CPU/GPU kernels behind one dispatcher (book section 25.3).

Public API (every function takes NumPy or CuPy arrays and returns arrays on
the same device, in the input's dtype):

``batch_norm_forward(x, gamma, beta, epsilon, axis=-1)`` -> ``(y, mean, var, inv_std)``
    Training: statistics of the batch over every axis but ``axis``.
``batch_norm_forward_eval(x, gamma, beta, running_mean, running_var, epsilon, axis=-1)`` -> ``(y, inv_std)``
``batch_norm_backward(grad_output, x, gamma, mean, inv_std, axis=-1, training=True)``
    -> ``(grad_input, grad_gamma, grad_beta)``; ``training=False`` is the fixed affine map of evaluation.
``layer_norm_forward(x, gamma, beta, epsilon, normalized_ndim=1)`` -> ``(y, mean, inv_std)``
    Statistics of each sample over its last ``normalized_ndim`` axes; ``gamma``/``beta`` may be None.
``layer_norm_backward(grad_output, x, gamma, mean, inv_std, normalized_ndim=1)``
    -> ``(grad_input, grad_gamma, grad_beta)``

NumPy float32/float64 arrays go to :mod:`kernels.normalization.cpu` (Numba),
CuPy arrays to :mod:`kernels.normalization.gpu` (CUDA kernels, source in
:func:`kernels.normalization.gpu.module_source`), anything else to
:mod:`kernels.normalization.reference`, the NumPy formulas that specify them.
The statistics are accumulated in float64 and the reductions run in a fixed
order (the same bits on any number of threads). A batch-norm feature axis
other than the last is moved last (a copy) and back.
"""

from __future__ import annotations

import importlib

import numpy as np

import backend

from . import cpu, reference

__all__ = [
    "batch_norm_backward",
    "batch_norm_forward",
    "batch_norm_forward_eval",
    "cpu",
    "implementation",
    "layer_norm_backward",
    "layer_norm_forward",
    "reference",
]


def __getattr__(name):  # ``kernels.normalization.gpu`` without importing CuPy's side at import
    if name == "gpu":
        return importlib.import_module(f"{__name__}.gpu")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def implementation(x):
    """The module that computes on ``x``: ``cpu``, ``gpu`` (a CuPy array) or ``reference``."""
    if backend.is_cupy_array(x):
        module = importlib.import_module(f"{__name__}.gpu")
    else:
        module = cpu
    return module if np.dtype(x.dtype) in module.SUPPORTED_DTYPES else reference


def _rows(x, axis):
    """``x`` as a C-contiguous ``(N, C)`` array with ``axis`` last, and a function that restores the layout."""
    xp = backend.get_array_module(x)
    axis = axis % x.ndim
    if axis == x.ndim - 1:
        shape = x.shape
        return xp.ascontiguousarray(x).reshape(-1, x.shape[-1]), lambda a: a.reshape(shape)
    moved = xp.moveaxis(x, axis, -1)
    moved_shape = moved.shape
    return (xp.ascontiguousarray(moved).reshape(-1, x.shape[axis]),
            lambda a: xp.ascontiguousarray(xp.moveaxis(a.reshape(moved_shape), -1, axis)))


def _vector(a, like):
    return None if a is None else a.reshape(-1).astype(like.dtype, copy=False)


def batch_norm_forward(x, gamma, beta, epsilon, axis=-1):
    """Batch normalization in training (book section 25.3.2): statistics of this batch.

    Parameters
    ----------
    x : array, shape (B, ..., C, ...), C on ``axis``
    gamma, beta : array, shape (C,)
    epsilon : float > 0
    axis : int, the feature axis (default -1)

    Returns
    -------
    y : array, shape and dtype of ``x``: ``γ (x - μ) / sqrt(σ² + ε) + β``
    mean, var, inv_std : arrays of shape (C,), dtype of ``x``: μ, the biased σ², ``1 / sqrt(σ² + ε)``
        (μ and σ² over every axis but ``axis``, accumulated in float64).
    """
    x2d, restore = _rows(x, axis)
    impl = implementation(x2d)
    y2d, mean, var, inv_std = impl.batch_norm_forward(x2d, _vector(gamma, x2d), _vector(beta, x2d), epsilon)
    return restore(y2d), mean, var, inv_std


def batch_norm_forward_eval(x, gamma, beta, running_mean, running_var, epsilon, axis=-1):
    """Batch normalization in evaluation: ``y = γ (x - running_mean) inv_std + β``.

    Returns
    -------
    y : array, shape and dtype of ``x``
    inv_std : array (C,), ``1 / sqrt(running_var + ε)`` in the dtype of ``x``
    """
    x2d, restore = _rows(x, axis)
    y2d, inv_std = implementation(x2d).batch_norm_forward_eval(
        x2d, _vector(gamma, x2d), _vector(beta, x2d), _vector(running_mean, x2d), _vector(running_var, x2d),
        epsilon)
    return restore(y2d), inv_std


def batch_norm_backward(grad_output, x, gamma, mean, inv_std, axis=-1, training=True):
    """Gradients of :func:`batch_norm_forward` (``training``) or :func:`batch_norm_forward_eval`.

    Parameters
    ----------
    grad_output, x : arrays of the forward's shape (``x``: the forward's input)
    gamma : array (C,)
    mean, inv_std : arrays (C,): the forward's μ and ``inv_std`` (the running mean in evaluation)

    Returns
    -------
    grad_input : array, shape and dtype of ``x``. Training (through the batch statistics, ``g' = g γ``,
        ``x̂ = (x - μ) inv_std``, means over every axis but ``axis``)::

            dE/dx = inv_std (g' - mean(g') - x̂ mean(g' x̂))

        evaluation: ``g γ inv_std``.
    grad_gamma, grad_beta : arrays (C,): ``Σ g x̂`` and ``Σ g`` (float64 sums rounded to the dtype).
    """
    g2d, _ = _rows(grad_output, axis)
    x2d, restore = _rows(x, axis)
    impl = implementation(x2d)
    function = impl.batch_norm_backward if training else impl.batch_norm_backward_eval
    dx2d, grad_gamma, grad_beta = function(g2d, x2d, _vector(gamma, x2d), _vector(mean, x2d), _vector(inv_std, x2d))
    return restore(dx2d), grad_gamma, grad_beta


def _samples(x, normalized_ndim):
    xp = backend.get_array_module(x)
    d_total = int(np.prod(x.shape[x.ndim - normalized_ndim:]))
    return xp.ascontiguousarray(x).reshape(-1, d_total)


def layer_norm_forward(x, gamma, beta, epsilon, normalized_ndim=1):
    """Layer normalization (book section 25.3.1): each sample over its last ``normalized_ndim`` axes.

    Parameters
    ----------
    x : array, shape (B, ..., *S), ``S`` the normalized shape (``normalized_ndim`` axes)
    gamma, beta : array of shape ``S``, or None (no scale / no shift)
    epsilon : float > 0

    Returns
    -------
    y : array, shape and dtype of ``x``: ``γ (x - μ) / sqrt(σ² + ε) + β``
    mean, inv_std : arrays of shape (B, ...) (the leading axes), dtype of ``x`` (float64 sums)
    """
    x2d = _samples(x, normalized_ndim)
    y2d, mean, inv_std = implementation(x2d).layer_norm_forward(x2d, _vector(gamma, x2d), _vector(beta, x2d),
                                                                epsilon)
    lead = x.shape[:x.ndim - normalized_ndim]
    return y2d.reshape(x.shape), mean.reshape(lead), inv_std.reshape(lead)


def layer_norm_backward(grad_output, x, gamma, mean, inv_std, normalized_ndim=1):
    """Gradients of :func:`layer_norm_forward`.

    Returns
    -------
    grad_input : array, shape and dtype of ``x``: ``inv_std (g' - mean(g') - x̂ mean(g' x̂))``, ``g' = g γ``,
        means over the normalized axes of each sample
    grad_gamma, grad_beta : arrays of the normalized shape: ``Σ g x̂`` and ``Σ g`` over the leading axes
    """
    g2d = _samples(grad_output, normalized_ndim)
    x2d = _samples(x, normalized_ndim)
    dx2d, grad_gamma, grad_beta = implementation(x2d).layer_norm_backward(
        g2d, x2d, _vector(gamma, x2d), mean.reshape(-1), inv_std.reshape(-1))
    normalized = x.shape[x.ndim - normalized_ndim:]
    return dx2d.reshape(x.shape), grad_gamma.reshape(normalized), grad_beta.reshape(normalized)
