"""A small GPT: a decoder-only Transformer language model (book section 26.6.2), and sampling from it."""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_positive, check_positive_int, check_rate, check_seed
from layers import (Dense, Dropout, Embedding, LayerNormalization, LearnedPositionalEmbedding, Sequential,
                    TransformerEncoderBlock)
from layers.attention.multi_head import check_heads, derived_seed
from layers.base import walk
from layers.training.loop import evaluation_mode


def gpt(vocab_size, context_length, dim=128, depth=4, num_heads=4, mlp_ratio=4, dropout=0.1, seed=0):
    """A GPT (Radford et al., 2018, 2019): token and position embeddings, causal pre-norm blocks, a linear head.

    ::

        ids (B, T) -> Embedding(V, dim) -> LearnedPositionalEmbedding(context_length, dim) -> Dropout
                   -> depth x TransformerEncoderBlock(dim, num_heads, mlp_ratio, dropout, causal=True)
                   -> LayerNormalization(dim) -> Dense(dim, V)       logits (B, T, V)

    Token t only sees tokens <= t, so one forward pass trains all T
    next-token predictions at once: ``fit(ids[:, :-1], ids[:, 1:],
    loss=SparseCategoricalCrossEntropy(from_logits=True))``.

    Parameters
    ----------
    vocab_size : int
        V.
    context_length : int
        The longest sequence (rows of the position table).
    dim, depth, num_heads, mlp_ratio : int
        Width, blocks, heads, MLP width / dim.
    dropout : float in [0, 1)
    seed : int

    Returns
    -------
    Sequential
        Integer ids ``(B, T <= context_length)`` -> logits ``(B, T, V)``.
    """
    vocab_size = check_positive_int(vocab_size, "vocab_size", where="gpt")
    context_length = check_positive_int(context_length, "context_length", where="gpt")
    depth = check_positive_int(depth, "depth", where="gpt")
    dim, num_heads = check_heads(dim, num_heads, "gpt", name="dim")
    dropout = check_rate(dropout, "dropout", where="gpt")
    seed = check_seed(seed, where="gpt")
    return Sequential(
        [Embedding(vocab_size, dim, weight_init="small_normal", seed=seed),
         LearnedPositionalEmbedding(context_length, dim, seed=derived_seed(seed, 1)),
         Dropout(dropout, seed=derived_seed(seed, 2))]
        + [TransformerEncoderBlock(dim, num_heads, mlp_ratio=mlp_ratio, dropout=dropout, causal=True,
                                   seed=derived_seed(seed, 100 * (i + 1))) for i in range(depth)]
        + [LayerNormalization(dim), Dense(dim, vocab_size, seed=derived_seed(seed, 3))]
    )


def context_length_of(model) -> int:
    """The position table's length of the first LearnedPositionalEmbedding in ``model``."""
    for _, layer in walk(model):
        if isinstance(layer, LearnedPositionalEmbedding):
            return layer.max_len
    raise ValueError(f"context_length_of: model: expected a model with a LearnedPositionalEmbedding, "
                     f"got {type(model).__name__}")


def sample_next(logits, temperature=1.0, top_k=None, rng=None):
    """Draw one id per row of ``logits (B, V)``: softmax(logits / temperature) restricted to the ``top_k`` largest.

    ``temperature -> 0`` approaches the argmax; ``top_k=1`` is the argmax.
    Returns int64 NumPy ids ``(B,)``.
    """
    logits = backend.to_numpy(logits).astype(np.float64) / check_positive(temperature, "temperature")
    if top_k is not None:
        top_k = min(check_positive_int(top_k, "top_k"), logits.shape[-1])
        kth = np.sort(logits, axis=-1)[:, -top_k][:, None]
        logits = np.where(logits >= kth, logits, -np.inf)
    logits -= logits.max(axis=-1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=-1, keepdims=True)
    rng = np.random.default_rng(rng)
    cumulative = probs.cumsum(axis=-1)
    draws = rng.random((len(probs), 1))
    return np.minimum((cumulative < draws).sum(axis=-1), probs.shape[-1] - 1).astype(np.int64)


def generate(model, prompt, new_tokens, temperature=1.0, top_k=None, seed=None):
    """Extend ``prompt`` by ``new_tokens`` ids sampled one at a time (autoregressive decoding, section 26.6.2).

    Each step runs the model on the last ``context_length`` ids (evaluation
    mode) and samples the next id from the last position's logits with
    :func:`sample_next`.

    Parameters
    ----------
    model : Layer
        ids ``(B, T)`` -> logits ``(B, T, V)`` with a LearnedPositionalEmbedding (e.g. :func:`gpt`).
    prompt : int array ``(T0,)`` or ``(B, T0)``, T0 >= 1
    new_tokens : int
    temperature : float > 0
    top_k : int, optional
    seed : int, optional

    Returns
    -------
    int64 NumPy array ``(B, T0 + new_tokens)`` (``(T0 + new_tokens,)`` for a 1-D prompt).
    """
    ids = np.asarray(prompt)
    if ids.dtype.kind not in "iu" or ids.ndim not in (1, 2) or ids.shape[-1] < 1:
        raise ValueError(f"generate: prompt: expected integer ids of shape (T0,) or (B, T0), T0 >= 1, got "
                         f"{ids.dtype} {ids.shape}")
    new_tokens = check_positive_int(new_tokens, "new_tokens", minimum=0, where="generate")
    single = ids.ndim == 1
    ids = ids.reshape(1, -1) if single else ids
    ids = ids.astype(np.int64)
    window = context_length_of(model)
    device = backend.device_of(model.params[0]) if model.params else backend.get_device()
    rng = np.random.default_rng(check_seed(seed, where="generate"))
    with evaluation_mode(model):
        for _ in range(new_tokens):
            logits = model.forward(backend.to_device(ids[:, -window:], device))
            ids = np.concatenate([ids, sample_next(logits[:, -1], temperature, top_k, rng)[:, None]], axis=1)
    return ids[0] if single else ids
