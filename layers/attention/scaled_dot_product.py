"""Scaled dot-product attention (book section 26.2, "Self-Attention (Query, Key, Value)").

Every query scores every key by a dot product, the scores become weights
through a softmax, and the output is the weighted sum of the values. The
softmax, its scale and its mask run fused in :mod:`kernels.attention`.

Multi-input layers in the book's protocol: ``forward(input_data)`` takes a
tuple ``(query, key, value)`` and ``backward`` returns ``grad_input`` as the
tuple ``(dE/dquery, dE/dkey, dE/dvalue)``; a single array ``x`` means
``query = key = value = x`` and gets one gradient, the sum of the three.
"""

from __future__ import annotations

import math

import numpy as np

import backend
from backend.checks import check_bool, check_positive, check_rate, check_seed
from kernels import attention as kernel

from ..base import Layer


def swap_last(a):
    """``a`` with its last two axes swapped (a view): ``K -> K^T`` per head."""
    return a.swapaxes(-1, -2)


class ScaledDotProductAttention(Layer):
    """``Attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + M) V`` (Vaswani et al., 2017; book section 26.2).

    Forward, for every sample (and head)::

        S = Q K^T                     (Tq, Tk) scores
        P = softmax(s S + M)          row-wise, s = scale (default 1/sqrt(d_k)); M the mask
        P~ = P ⊙ D / (1 - rate)       attention dropout in training (D ~ Bernoulli(1 - rate))
        Y = P~ V                      (Tq, d_v)

    Backward::

        dE/dV = P~^T G,   dE/dP = (G V^T) ⊙ D / (1 - rate)
        dE/dS = s P ⊙ (dE/dP - Σ_j dE/dP_j P_j)
        dE/dQ = dE/dS K,  dE/dK = dE/dS^T Q

    Parameters
    ----------
    causal : bool
        Query i attends to keys ``j <= i`` only (decoders, section 26.6.2).
    dropout : float in [0, 1)
        Rate of the dropout applied to the attention weights P in training.
    scale : float > 0, optional
        ``s``; default ``1 / sqrt(d_k)``.
    seed : int, optional
        Seed of the dropout masks; :meth:`reset_rng` restarts them (deterministic tests).

    Shapes
    ------
    ``input_data``: ``(query, key, value)`` with query ``(B, Tq, d_k)``, key
    ``(B, Tk, d_k)``, value ``(B, Tk, d_v)``, or the same with a head axis,
    ``(B, H, T, d)``; or one array ``x`` (``query = key = value = x``).
    Output ``(B, [H,] Tq, d_v)`` in the inputs' dtype. No params.

    ``forward(input_data, mask=None)``: ``mask`` is boolean (True = attend, as
    PyTorch's ``scaled_dot_product_attention``) or additive float, broadcast to
    the scores ``(B, [H,] Tq, Tk)`` by NumPy's rules (see
    :mod:`kernels.attention`). A query whose keys are all masked gets weights
    of zero, so its output is 0 and it passes no gradient (no NaN).
    """

    def __init__(self, causal=False, dropout=0.0, scale=None, seed=None):
        super().__init__()
        self.causal = check_bool(causal, "causal", where="ScaledDotProductAttention")
        self.dropout = check_rate(dropout, "dropout", where="ScaledDotProductAttention")
        self.scale = None if scale is None else check_positive(scale, "scale", where="ScaledDotProductAttention")
        self.seed = check_seed(seed, where="ScaledDotProductAttention")
        self._rng = None
        self._rng_xp = None
        self._cache = None
        self._single = None

    def reset_rng(self, seed=None):
        """Restart the dropout generator from ``seed`` (default: the constructor's); returns self."""
        if seed is not None:
            self.seed = check_seed(seed, where="ScaledDotProductAttention")
        self._rng = None
        return self

    def _keep_mask(self, shape, dtype, xp):
        """``D / (1 - rate)`` in ``dtype``, drawn on ``xp``'s device."""
        if self._rng is None or self._rng_xp is not xp:
            self._rng = backend.generator_for(xp, self.seed)
            self._rng_xp = xp
        draw = dtype if dtype in (np.float32, np.float64) else np.dtype(np.float32)
        keep = self._rng.random(shape, dtype=draw) >= self.dropout
        return keep.astype(dtype) * dtype.type(1.0 / (1.0 - self.dropout))

    # -- the computation, shared with MultiHeadAttention ---------------------------------------------------
    def attend(self, query, key, value, mask=None, training=None, where="ScaledDotProductAttention"):
        """``Y = dropout(softmax(s Q K^T + M)) V`` on ``(B, [H,] T, d)`` arrays; caches what the backward needs."""
        training = self.training if training is None else training
        xp = backend.get_array_module(query, key, value)
        scale = self.scale if self.scale is not None else 1.0 / math.sqrt(query.shape[-1])
        scores = query @ swap_last(key)
        probs = kernel.softmax_forward(scores, scale, mask, self.causal, out=scores, where=where)
        keep = None
        if training and self.dropout > 0.0:
            keep = self._keep_mask(probs.shape, probs.dtype, xp)
            weights = probs * keep
        else:
            weights = probs
        self._cache = (query, key, value, probs, keep, scale)
        return weights @ value

    def attend_backward(self, grad_output):
        """``(dE/dQ, dE/dK, dE/dV)`` for the last :meth:`attend`."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        query, key, value, probs, keep, scale = self._cache
        weights = probs if keep is None else probs * keep
        grad_value = swap_last(weights) @ grad_output
        grad_probs = grad_output @ swap_last(value)
        if keep is not None:
            grad_probs *= keep
        grad_scores = kernel.softmax_backward(grad_probs, probs, scale, self.causal, out=grad_probs)
        return grad_scores @ key, swap_last(grad_scores) @ query, grad_value

    # -- the protocol -----------------------------------------------------------------------------------------
    def forward(self, input_data, mask=None):
        single = not isinstance(input_data, (tuple, list))
        query, key, value = (input_data,) * 3 if single else check_qkv(input_data)
        check_attention_inputs(query, key, value, "ScaledDotProductAttention")
        self._single = single
        return self.attend(query, key, value, mask)

    def backward(self, grad_output):
        grad_query, grad_key, grad_value = self.attend_backward(grad_output)
        if self._single:
            return grad_query + grad_key + grad_value, None
        return (grad_query, grad_key, grad_value), None

    def output_shape(self, input_shape):
        """``input_shape``: one shape (self-attention) or ``(query, key, value)`` shapes -> ``query[:-1] + (d_v,)``."""
        if input_shape and isinstance(input_shape[0], (tuple, list)):
            query, _, value = input_shape
            return (*tuple(query)[:-1], value[-1])
        return tuple(input_shape)


def check_qkv(input_data, where="ScaledDotProductAttention"):
    """``(query, key, value)`` from a tuple of three arrays."""
    if len(input_data) != 3:
        raise ValueError(f"{where}: input_data: expected an array or a tuple (query, key, value), "
                         f"got a {type(input_data).__name__} of {len(input_data)} items")
    return tuple(input_data)


def check_attention_inputs(query, key, value, where):
    """Query ``(B, [H,] Tq, d)``, key ``(B, [H,] Tk, d)``, value ``(B, [H,] Tk, d_v)`` of one float dtype."""
    for name, a in (("query", query), ("key", key), ("value", value)):
        backend.check_float_array(a, name, where=where)
        if a.ndim not in (3, 4):
            raise ValueError(f"{where}: {name}: expected (B, T, d) or (B, H, T, d), got shape {tuple(a.shape)}")
    if not (query.ndim == key.ndim == value.ndim):
        raise ValueError(f"{where}: query, key and value: expected the same number of axes, got shapes "
                         f"{tuple(query.shape)}, {tuple(key.shape)}, {tuple(value.shape)}")
    if key.shape[:-2] != query.shape[:-2] or key.shape[-1] != query.shape[-1]:
        raise ValueError(f"{where}: key: expected shape (..., Tk, {query.shape[-1]}) with the query's leading axes "
                         f"{tuple(query.shape[:-2])}, got {tuple(key.shape)}")
    if value.shape[:-1] != key.shape[:-1]:
        raise ValueError(f"{where}: value: expected shape {tuple(key.shape[:-1])} + (d_v,) (one value per key), "
                         f"got {tuple(value.shape)}")
    if len({query.dtype, key.dtype, value.dtype}) != 1:
        raise TypeError(f"{where}: query, key and value: expected one dtype, got {query.dtype}, {key.dtype}, "
                        f"{value.dtype}")
    backend.get_array_module(query, key, value)  # mixed-device TypeError
