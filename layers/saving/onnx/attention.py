"""ONNX converters of the attention layers and Transformer blocks (book chapter 26).

Attention is written with MatMul, Softmax, Transpose and Reshape; every size
that depends on the sequence is read from the tensors when the file runs
(``Shape``), so the batch and the number of tokens may vary. Masks are
boolean (True = attend): the causal one is built from two ``Range`` of the
query and key lengths (query i sees keys j <= i, top-left aligned as ours),
a padding mask is given by the converter of the model that computes it
(``mask=`` of :meth:`GraphBuilder.convert`, as forward's keyword). Masked
scores become the lowest float before the softmax, and with a padding mask
the weights are multiplied by it, so a query with no key left gets zero
weights as ours (never NaN). Positional tables are sliced to the length.
PatchEmbedding is the convolution it equals (kernel = stride = the patch).
"""

from __future__ import annotations

import math

import numpy as np

import backend

from ...attention import (ClassToken, LearnedPositionalEmbedding, MultiHeadAttention, PatchEmbedding,
                          ScaledDotProductAttention, SinusoidalPositionalEncoding, TokenPooling,
                          TransformerDecoderBlock, TransformerEncoderBlock)
from .convolution import _in_nchw
from .graph import Value
from .registry import register_converter


def _positions(graph, tokens) -> str:
    """``[0, 1, ..., T - 1]`` for the tokens axis (-2) of ``tokens``, T read when the file runs."""
    length = graph.node("Squeeze", [graph.shape(tokens, -2, -1), graph.constant(np.array([0]), "axes")])
    return graph.node("Range", [graph.constant(np.array(0), "zero"), length, graph.constant(np.array(1), "one")])


def _causal_mask(graph, query, key) -> str:
    """``allowed[i, j] = j <= i`` of shape (Tq, Tk), from the tokens axes (-2) of ``query`` and ``key``."""
    rows, cols = _positions(graph, query), _positions(graph, key)
    rows = graph.node("Unsqueeze", [rows, graph.constant(np.array([1]), "axes")])  # (Tq, 1)
    return graph.node("LessOrEqual", [cols, rows])                                   # (1, Tk) <= (Tq, 1)


def _attend(graph, query, key, value, rank, scale, causal, mask=None) -> str:
    """``softmax(scale Q K^T, masked) V`` on ``(B, [H,] T, d)`` tensors of ``rank`` axes.

    ``mask``: a boolean tensor (True = attend) broadcasting to the scores
    ``(B, [H,] Tq, Tk)``, e.g. ``(B, 1, 1, Tk)`` for padding.
    """
    swap = list(range(rank - 2)) + [rank - 1, rank - 2]
    scores = graph.node("MatMul", [query, graph.node("Transpose", [key], perm=swap)])
    scores = graph.node("Mul", [scores, graph.constant(np.array(scale), "scale")])
    allowed = _causal_mask(graph, query, key) if causal else None
    if mask is not None:
        allowed = mask if allowed is None else graph.node("And", [allowed, mask])
    if allowed is not None:
        lowest = graph.constant(np.array(np.finfo(graph.dtype).min), "lowest")
        scores = graph.node("Where", [allowed, scores, lowest])
    weights = graph.node("Softmax", [scores], axis=-1)
    if mask is not None:  # a row whose keys are all masked: uniform above, zero here (as ours)
        weights = graph.node("Mul", [weights, graph.node("Cast", [allowed], to=graph.tensor_type)])
    return graph.node("MatMul", [weights, value])


@register_converter(ScaledDotProductAttention)
def _scaled_dot_product_attention(layer, graph, x, mask=None):
    """``softmax(s Q K^T + M) V``; ``x`` is one tensor (Q = K = V) or ``(query, key, value)``."""
    query, key, value = (x,) * 3 if isinstance(x, Value) else x
    scale = layer.scale if layer.scale is not None else 1.0 / math.sqrt(query.shape[-1])
    return _attend(graph, query.name, key.name, value.name, len(query.shape), scale, layer.causal, mask)


def _host(array) -> np.ndarray:
    return np.asarray(backend.to_numpy(array))


@register_converter(MultiHeadAttention)
def _multi_head_attention(layer, graph, x, mask=None):
    """Q, K, V = inputs W_Q/K/V + b, split into (B, H, T, d) heads, attended, joined, projected by W_O + b_O."""
    E, H, d = layer.embed_dim, layer.num_heads, layer.head_dim
    sources = [x] * 3 if isinstance(x, Value) else [x[0], x[1], x[1]] if len(x) == 2 else list(x)
    W_in = _host(layer.W_in)
    heads = []
    for c, (source, hint) in enumerate(zip(sources, "QKV")):
        projected = graph.node("MatMul", [source.name, graph.constant(W_in[:, c * E:(c + 1) * E], f"W_{hint}")])
        if layer.use_bias:
            projected = graph.node("Add", [projected, graph.constant(_host(layer.b_in)[c * E:(c + 1) * E],
                                                                     f"b_{hint}")])
        split = graph.node("Reshape", [projected, graph.constant(np.array([0, 0, H, d]), "heads")])
        heads.append(graph.node("Transpose", [split], perm=[0, 2, 1, 3]))  # (B, T, H, d) -> (B, H, T, d)
    context = _attend(graph, *heads, 4, 1.0 / math.sqrt(d), layer.causal, mask)
    joined = graph.node("Reshape", [graph.node("Transpose", [context], perm=[0, 2, 1, 3]),
                                    graph.constant(np.array([0, 0, E]), "joined")])
    out = graph.node("MatMul", [joined, graph.constant(layer.W_out, "W_out")])
    return graph.node("Add", [out, graph.constant(layer.b_out, "b_out")]) if layer.use_bias else out


def _add_positions(graph, x, table) -> str:
    """``x + table[:T]``, T read from x's tokens axis when the file runs."""
    rows = graph.node("Slice", [table, graph.constant(np.array([0]), "start"), graph.shape(x.name, 1, 2),
                                graph.constant(np.array([0]), "axis")])
    return graph.node("Add", [x.name, rows])


@register_converter(SinusoidalPositionalEncoding)
def _sinusoidal_positional_encoding(layer, graph, x):
    """``y[:, t] = x[:, t] + PE[t]`` (the fixed table, in the file's dtype as ours casts it)."""
    return _add_positions(graph, x, graph.constant(layer.table, "table"))


@register_converter(LearnedPositionalEmbedding)
def _learned_positional_embedding(layer, graph, x):
    """``y[:, t] = x[:, t] + P[t]``."""
    return _add_positions(graph, x, graph.constant(layer.P, "P"))


@register_converter(PatchEmbedding)
def _patch_embedding(layer, graph, x):
    """A Conv with kernel = stride = the patch (W's rows, in (row, col, channel) order, as OIHW), then (B, N, dim)."""
    (ph, pw), C = layer.patch_size, layer.input_channels
    kernels = _host(layer.W).reshape(ph, pw, C, layer.dim).transpose(3, 2, 0, 1)
    grid = _in_nchw(graph, x, "Conv", graph.constant(kernels, "kernels"), graph.constant(layer.b, "b"),
                    kernel_shape=[ph, pw], strides=[ph, pw])                          # (B, rows, cols, dim)
    return graph.node("Reshape", [grid, graph.constant(np.array([0, -1, layer.dim]), "tokens")])


@register_converter(ClassToken)
def _class_token(layer, graph, x):
    """``[c; x]``: the token expanded to (B, 1, dim), B read when the file runs, concatenated before the tokens."""
    shape = graph.node("Concat", [graph.shape(x.name, 0, 1), graph.constant(np.array([1, layer.dim]), "one_dim")],
                       axis=0)
    token = graph.node("Expand", [graph.constant(layer.token, "token"), shape])
    return graph.node("Concat", [token, x.name], axis=1)


@register_converter(TokenPooling)
def _token_pooling(layer, graph, x):
    """The mean over the tokens (ReduceMean), or the first token (Gather 0 on axis 1)."""
    if layer.mode == "mean":
        return graph.node("ReduceMean", [x.name], axes=[1], keepdims=0)
    return graph.node("Gather", [x.name, graph.constant(np.array(0), "first")], axis=1)


def _attention_branch(graph, block, x, first, others=(), mask=None) -> Value:
    """Pre-norm ``x + Dropout(MHA(LN(x), ...))`` or post-norm ``LN(x + Dropout(MHA(x, ...)))``.

    ``first``: the index in ``block.sublayers()`` of the branch's norm; its
    attention and dropout follow it.
    """
    norm, attention, dropout = block.sublayers()[first:first + 3]
    h = graph.convert(norm, x, first) if block.norm_first else x
    inputs = (h, *others) if others else h
    attended = graph.convert(attention, inputs, first + 1, mask=mask)
    total = Value(graph.node("Add", [x.name, graph.convert(dropout, attended, first + 2).name]), x.shape)
    return total if block.norm_first else graph.convert(norm, total, first)


@register_converter(TransformerEncoderBlock)
def _transformer_encoder_block(layer, graph, x, mask=None):
    """The self-attention branch, then the MLP branch (a Residual/Sequential of converted layers)."""
    return graph.convert(layer.feed_forward, _attention_branch(graph, layer, x, 0, mask=mask), 3).name


@register_converter(TransformerDecoderBlock)
def _transformer_decoder_block(layer, graph, x, mask=None, memory_mask=None):
    """``x`` is ``(target, memory)``: self-attention, cross-attention to the memory, then the MLP."""
    target, memory = x
    h = _attention_branch(graph, layer, target, 0, mask=mask)
    h = _attention_branch(graph, layer, h, 3, others=(memory,), mask=memory_mask)
    return graph.convert(layer.feed_forward, h, 6).name
