"""Multi-head attention (book section 26.3, "Escalando a Atenção: Multi-Head Attention").

The embedding is projected to queries, keys and values, cut into ``H`` heads
of ``d = E / H`` features that attend independently (each learns its own
notion of relevance), and the heads' outputs are joined and projected back.
Self-attention takes one array; cross-attention (a decoder reading the
encoder, section 26.6.3) takes ``(query, key_value)`` or ``(query, key,
value)``, and ``backward`` returns one gradient per input, in a tuple.
"""

from __future__ import annotations

import backend
from backend.checks import check_bool, check_positive_int, check_rate, check_seed

from ..base import Layer
from ..initializers import filled, make_param
from .scaled_dot_product import ScaledDotProductAttention


def derived_seed(seed, offset: int):
    """``seed + offset`` (a distinct, reproducible seed per sublayer), or None when ``seed`` is None."""
    return None if seed is None else seed + offset


def check_heads(embed_dim, num_heads, where, name="embed_dim"):
    """``(embed_dim, num_heads)`` as ints after checking that the heads split the features evenly."""
    embed_dim = check_positive_int(embed_dim, name, where=where)
    num_heads = check_positive_int(num_heads, "num_heads", where=where)
    if embed_dim % num_heads:
        raise ValueError(f"{where}: {name}: expected a multiple of num_heads={num_heads} (each head gets "
                         f"{name} / num_heads features), got {embed_dim}")
    return embed_dim, num_heads


class MultiHeadAttention(Layer):
    """``MHA(Q, K, V) = Concat(head_1, ..., head_H) W_O + b_O``, ``head_h = Attention(Q W_Q^h, K W_K^h, V W_V^h)``.

    Forward (section 26.3; Vaswani et al., 2017), with ``W_in = [W_Q | W_K | W_V]``::

        Q = query W_Q + b_Q,  K = key W_K + b_K,  V = value W_V + b_V      (B, T, E) each
        split E into H heads of d = E / H:                                  (B, H, T, d)
        head_h = softmax(Q_h K_h^T / sqrt(d) + M) V_h                       (ScaledDotProductAttention)
        Y = Concat_h(head_h) W_O + b_O                                       (B, Tq, E)

    Backward: the chain rule through the output projection, the attention of
    each head (:class:`ScaledDotProductAttention`) and the input projections;
    an input used for several of Q, K, V (self-attention) sums its gradients.

    Parameters
    ----------
    embed_dim : int
        E, the features of every token; a multiple of ``num_heads``.
    num_heads : int
        H.
    dropout : float in [0, 1)
        Dropout on the attention weights in training.
    causal : bool
        Query i attends to keys ``j <= i`` only (a decoder's self-attention).
    use_bias : bool
        Learn ``b_in`` and ``b_out`` (default True).
    weight_init : str or callable
        Initializer of ``W_in`` and ``W_out`` (default ``"xavier_uniform"``, as PyTorch).
    seed : int, optional
        Seed of the weights (``W_out`` uses ``seed + 1``) and of the dropout masks.

    Shapes
    ------
    ``input_data``: ``x (B, T, E)`` (self-attention), ``(query (B, Tq, E),
    key_value (B, Tk, E))`` or ``(query, key, value)``. Output ``(B, Tq, E)``.
    ``params = [W_in (E, 3E), b_in (3E,), W_out (E, E), b_out (E,)]`` (no biases
    when ``use_bias=False``). ``W_in`` columns ``[:E]``, ``[E:2E]``, ``[2E:]`` are
    W_Q, W_K, W_V (PyTorch's ``in_proj_weight`` transposed).

    ``forward(input_data, mask=None)``: ``mask`` is boolean (True = attend, as
    ``scaled_dot_product_attention``; the opposite of ``nn.MultiheadAttention``'s
    boolean ``attn_mask`` and ``key_padding_mask``, where True means ignore) or
    additive float, of shape ``(Tk,)``, ``(Tq, Tk)``, ``(B, Tq, Tk)`` (one mask per
    sample, for every head), ``(B, 1, 1, Tk)`` (key padding) or ``(B, H, Tq, Tk)``.
    A query with every key masked outputs ``b_out`` (its attention is 0) and
    passes no gradient through the attention.
    """

    def __init__(self, embed_dim, num_heads, dropout=0.0, causal=False, use_bias=True, weight_init="xavier_uniform",
                 seed=None):
        super().__init__()
        where = "MultiHeadAttention"
        self.embed_dim, self.num_heads = check_heads(embed_dim, num_heads, where)
        self.head_dim = self.embed_dim // self.num_heads
        self.dropout = check_rate(dropout, "dropout", where=where)
        self.causal = check_bool(causal, "causal", where=where)
        self.use_bias = check_bool(use_bias, "use_bias", where=where)
        seed = check_seed(seed, where=where)
        E = self.embed_dim
        self.W_in = make_param(weight_init, (E, 3 * E), E, 3 * E, seed)
        self.W_out = make_param(weight_init, (E, E), E, E, derived_seed(seed, 1))
        if self.use_bias:
            self.b_in = filled((3 * E,), 0.0)
            self.b_out = filled((E,), 0.0)
            self.params = [self.W_in, self.b_in, self.W_out, self.b_out]
        else:
            self.b_in = self.b_out = None
            self.params = [self.W_in, self.W_out]
        self.core = ScaledDotProductAttention(causal=self.causal, dropout=self.dropout, seed=derived_seed(seed, 2))
        self._cache = None

    def reset_rng(self, seed=None):
        """Restart the attention-dropout generator (see :meth:`ScaledDotProductAttention.reset_rng`); returns self."""
        self.core.reset_rng(seed)
        return self

    def _inputs(self, input_data):
        """``[(array, first projection, number of projections)]``: which of Q, K, V each input makes."""
        where = "MultiHeadAttention"
        if not isinstance(input_data, (tuple, list)):
            groups = [(input_data, 0, 3)]
        elif len(input_data) == 2:
            groups = [(input_data[0], 0, 1), (input_data[1], 1, 2)]
        elif len(input_data) == 3:
            groups = [(input_data[0], 0, 1), (input_data[1], 1, 1), (input_data[2], 2, 1)]
        else:
            raise ValueError(f"{where}: input_data: expected x, (query, key_value) or (query, key, value), got a "
                             f"{type(input_data).__name__} of {len(input_data)} arrays")
        names = {1: ["x"], 2: ["query", "key_value"], 3: ["query", "key", "value"]}[len(groups)]
        for (a, _, _), name in zip(groups, names):
            backend.check_float_array(a, name, where=where)
            if a.ndim != 3 or a.shape[-1] != self.embed_dim:
                raise ValueError(f"{where}: {name}: expected shape (batch, tokens, {self.embed_dim}), "
                                 f"got {tuple(a.shape)}")
        arrays = [a for a, _, _ in groups]
        if len({a.shape[0] for a in arrays}) > 1 or len({a.dtype for a in arrays}) > 1:
            raise ValueError(f"{where}: {', '.join(names)}: expected one batch size and dtype, got shapes "
                             f"{[tuple(a.shape) for a in arrays]} and dtypes {[str(a.dtype) for a in arrays]}")
        if len(groups) == 3 and arrays[1].shape[1] != arrays[2].shape[1]:
            raise ValueError(f"{where}: value: expected as many tokens as key ({arrays[1].shape[1]}), "
                             f"got shape {tuple(arrays[2].shape)}")
        backend.get_array_module(*arrays, self.W_in)  # mixed-device TypeError
        return groups

    def _columns(self, first, count):
        E = self.embed_dim
        return slice(first * E, (first + count) * E)

    def forward(self, input_data, mask=None):
        groups = self._inputs(input_data)
        H, d, E = self.num_heads, self.head_dim, self.embed_dim
        heads, flats = [], []
        for x, first, count in groups:
            B, T, _ = x.shape
            cols = self._columns(first, count)
            flat = x.reshape(B * T, E)
            proj = flat @ self.W_in[:, cols]
            if self.use_bias:
                proj += self.b_in[cols]
            # (B, T, count, H, d) -> one (B, H, T, d) view per projection, no copy
            split = proj.reshape(B, T, count, H, d)
            heads += [split[:, :, c].transpose(0, 2, 1, 3) for c in range(count)]
            flats.append(flat)
        query, key, value = heads
        if mask is not None and getattr(mask, "ndim", 0) == 3:
            mask = mask[:, None]  # (B, Tq, Tk): the same mask for every head
        context = self.core.attend(query, key, value, mask, training=self.training, where="MultiHeadAttention")
        B, _, Tq, _ = context.shape
        joined = context.transpose(0, 2, 1, 3).reshape(B * Tq, E)
        out = joined @ self.W_out
        if self.use_bias:
            out += self.b_out
        self._cache = (groups, flats, joined)
        return out.reshape(B, Tq, E)

    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError("MultiHeadAttention.backward called before forward")
        groups, flats, joined = self._cache
        xp = backend.get_array_module(grad_output, self.W_in)
        H, d, E = self.num_heads, self.head_dim, self.embed_dim
        B, Tq = grad_output.shape[:2]
        g = grad_output.reshape(B * Tq, E)
        grad_W_out = joined.T @ g
        grad_joined = (g @ self.W_out.T).reshape(B, Tq, H, d).transpose(0, 2, 1, 3)
        grad_heads = self.core.attend_backward(grad_joined)
        grad_W_in = xp.empty_like(self.W_in)
        grad_b_in = xp.empty((3 * E,), dtype=g.dtype) if self.use_bias else None
        grad_inputs = []
        for (x, first, count), flat in zip(groups, flats):
            T = x.shape[1]
            cols = self._columns(first, count)
            grad_proj = xp.empty((B, T, count, H, d), dtype=g.dtype)
            for c in range(count):
                grad_proj[:, :, c] = grad_heads[first + c].transpose(0, 2, 1, 3)
            grad_proj = grad_proj.reshape(B * T, count * E)
            grad_W_in[:, cols] = flat.T @ grad_proj
            if self.use_bias:
                grad_b_in[cols] = grad_proj.sum(axis=0)
            grad_inputs.append((grad_proj @ self.W_in[:, cols].T).reshape(x.shape))
        grads = [grad_W_in, grad_b_in, grad_W_out, g.sum(axis=0)] if self.use_bias else [grad_W_in, grad_W_out]
        grad_input = grad_inputs[0] if len(grad_inputs) == 1 else tuple(grad_inputs)
        return grad_input, grads

    def output_shape(self, input_shape):
        """``input_shape``: the shape of ``x``, or the shapes of the tuple's arrays -> the query's shape."""
        if input_shape and isinstance(input_shape[0], (tuple, list)):
            return tuple(input_shape[0])
        return tuple(input_shape)
