"""Recurrent cells over whole sequences: fused CPU/GPU step kernels behind one dispatcher (book chapter 24).

Public API
----------
``rnn_forward`` / ``rnn_backward``
    Elman cell (24.2): ``h_t = f(x_t W + h_{t-1} U + b)``, f = tanh or ReLU.
``lstm_forward`` / ``lstm_backward``
    LSTM (24.5.1), gates i, f, g, o, with optional peepholes (24.5.2).
``gru_forward`` / ``gru_backward``
    GRU (24.5.3), gates r, z, n, the reset applied after (PyTorch/cuDNN) or before the product.
``implementation(*arrays)``
    Which module runs on these arrays: :mod:`.cpu` (Numba, NumPy float32/float64),
    :mod:`.gpu` (CuPy float32/float64) or :mod:`.reference` (the book-style
    per-step code, also the fallback for other dtypes: never a wrong answer).

Every ``*_forward(x, W, U, b, h0, ..., mask=None, reverse=False, return_sequences=True)``
takes batch-major ``x`` ``(B, T, I)``, ``W`` ``(I, G·H)``, ``U`` ``(H, G·H)``,
``b`` ``(G·H,)`` (gate blocks side by side in :data:`catalog.GATES` order) and
``mask`` ``(B, T)`` of x's dtype (1 = a real step, 0 = padding: the state is
kept and the output is 0), and returns ``(y (B, T, H) or None, final_state,
cache)``; ``*_backward(cache, dy, d_final...)`` returns ``(dx, grads, d_initial_state)``
with ``grads`` a dict keyed by parameter name. The fast path does the input
projection of all steps as one matrix product, then per step one product and
one fused kernel (:mod:`.sequence`).
"""

from __future__ import annotations

import numpy as np

import backend

from . import cpu, gpu, reference, sequence
from .catalog import GATES, PEEPHOLES, RNN_ACTIVATIONS, SequenceCache

__all__ = [
    "GATES",
    "PEEPHOLES",
    "RNN_ACTIVATIONS",
    "SequenceCache",
    "gru_backward",
    "gru_forward",
    "implementation",
    "lstm_backward",
    "lstm_forward",
    "reference",
    "rnn_backward",
    "rnn_forward",
]


def implementation(*arrays):
    """The module of step kernels for these arrays: ``cpu``, ``gpu`` or ``reference`` (None entries ignored).

    Raises TypeError when NumPy and CuPy arrays are mixed.
    """
    arrays = [a for a in arrays if a is not None]
    xp = backend.get_array_module(*arrays)
    fast = cpu if xp is np else gpu
    return fast if fast.supports(*arrays) else reference


def _zeros_like_rows(x, H):
    xp = backend.get_array_module(x)
    return xp.zeros((x.shape[0], H), dtype=x.dtype)


def rnn_forward(x, W, U, b, h0=None, mask=None, activation="tanh", reverse=False, return_sequences=True):
    """Elman cell over a sequence: ``h_t = f(x_t W + h_{t-1} U + b)`` (book 24.2).

    Parameters
    ----------
    x : (B, T, I); W : (I, H); U : (H, H); b : (H,)
    h0 : (B, H), optional (zeros)
    mask : (B, T) of x's dtype, optional
    activation : {"tanh", "relu"}
    reverse : bool
        Visit the steps from T-1 down to 0 (outputs stay aligned with the input steps).
    return_sequences : bool
        Build ``y`` (else None: only the final state is wanted).

    Returns
    -------
    y : (B, T, H) or None;  h_T : (B, H);  cache
    """
    if h0 is None:
        h0 = _zeros_like_rows(x, U.shape[0])
    impl = implementation(x, W, U, b, h0, mask)
    if impl is reference:
        return reference.rnn_forward(x, W, U, b, h0, mask, activation, reverse, return_sequences)
    return sequence.rnn_forward(impl, x, W, U, b, _contiguous(h0), mask, activation, reverse, return_sequences)


def rnn_backward(cache, dy=None, dh=None):
    """BPTT of :func:`rnn_forward`: ``(dx (B, T, I), {"W", "U", "b"}, dh0 (B, H))``.

    ``dy`` (B, T, H) and ``dh`` (B, H) are the gradients of the outputs and of
    the final state; None means zero.
    """
    return cache.module.rnn_backward(cache, dy, dh)


def lstm_forward(x, W, U, b, h0=None, c0=None, peephole=None, mask=None, reverse=False, return_sequences=True):
    """LSTM over a sequence (book 24.5.1; Hochreiter and Schmidhuber 1997, Gers et al. 2000)::

        [a_i, a_f, a_g, a_o] = x_t W + h_{t-1} U + b
        i = σ(a_i + p_i ⊙ c_{t-1}),  f = σ(a_f + p_f ⊙ c_{t-1}),  g = tanh(a_g)
        c_t = f ⊙ c_{t-1} + i ⊙ g
        o = σ(a_o + p_o ⊙ c_t),      h_t = o ⊙ tanh(c_t)

    Parameters
    ----------
    x : (B, T, I); W : (I, 4H); U : (H, 4H); b : (4H,)
    h0, c0 : (B, H), optional (zeros)
    peephole : (3, H), optional
        Rows p_i, p_f, p_o (24.5.2); None: no peephole connections.
    mask, reverse, return_sequences
        As in :func:`rnn_forward`.

    Returns
    -------
    y : (B, T, H) or None;  (h_T, c_T);  cache
    """
    H = U.shape[0]
    h0 = _zeros_like_rows(x, H) if h0 is None else h0
    c0 = _zeros_like_rows(x, H) if c0 is None else c0
    impl = implementation(x, W, U, b, h0, c0, peephole, mask)
    if impl is reference:
        return reference.lstm_forward(x, W, U, b, h0, c0, peephole, mask, reverse, return_sequences)
    return sequence.lstm_forward(impl, x, W, U, b, _contiguous(h0), _contiguous(c0), peephole, mask, reverse,
                                 return_sequences)


def lstm_backward(cache, dy=None, dh=None, dc=None):
    """BPTT of :func:`lstm_forward`: ``(dx, {"W", "U", "b"[, "peephole"]}, (dh0, dc0))``."""
    return cache.module.lstm_backward(cache, dy, dh, dc)


def gru_forward(x, W, U, b, b_h=None, h0=None, mask=None, reset_after=True, reverse=False, return_sequences=True):
    """GRU over a sequence (book 24.5.3; Cho et al. 2014)::

        r = σ(x_t W_r + h_{t-1} U_r + b_r + b_hr),  z = σ(x_t W_z + h_{t-1} U_z + b_z + b_hz)
        n = tanh(x_t W_n + b_n + r ⊙ (h_{t-1} U_n + b_hn))     reset_after=True (PyTorch, cuDNN)
        n = tanh(x_t W_n + (r ⊙ h_{t-1}) U_n + b_n)            reset_after=False (the original)
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    Parameters
    ----------
    x : (B, T, I); W : (I, 3H); U : (H, 3H); b : (3H,)
    b_h : (3H,)
        The recurrent bias (``reset_after=True`` only; None otherwise).
    h0, mask, reverse, return_sequences
        As in :func:`rnn_forward`.

    Returns
    -------
    y : (B, T, H) or None;  h_T : (B, H);  cache
    """
    if h0 is None:
        h0 = _zeros_like_rows(x, U.shape[0])
    impl = implementation(x, W, U, b, b_h, h0, mask)
    if impl is reference:
        return reference.gru_forward(x, W, U, b, b_h, h0, mask, reset_after, reverse, return_sequences)
    return sequence.gru_forward(impl, x, W, U, b, b_h, _contiguous(h0), mask, reset_after, reverse,
                                return_sequences)


def gru_backward(cache, dy=None, dh=None):
    """BPTT of :func:`gru_forward`: ``(dx, {"W", "U", "b"[, "b_h"]}, dh0)``."""
    return cache.module.gru_backward(cache, dy, dh)


def _contiguous(a):
    return backend.get_array_module(a).ascontiguousarray(a)
