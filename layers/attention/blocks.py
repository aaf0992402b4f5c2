"""The Transformer block (book section 26.4, "A Arquitetura Completa: O Bloco Transformer").

A block is two (encoder) or three (decoder) residual branches: attention,
then a token-wise MLP, each wrapped as ``x + F(x)`` with a LayerNormalization
either inside the branch, before F (``norm_first=True``, "pre-norm": GPT-2,
ViT; trains without warm-up) or after the sum (``norm_first=False``,
"post-norm": the original Transformer). The MLP branch is a
:class:`~layers.Residual` of a :class:`~layers.Sequential`; the attention
branches are written out because they take a mask (and the decoder's
cross-attention a second input, the encoder's output).
"""

from __future__ import annotations

from backend.checks import check_bool, check_positive, check_positive_int, check_rate, check_seed

from ..activations import get_activation
from ..base import walk
from ..containers import Container, Residual, Sequential
from ..containers.base import child_backward
from ..core import Dense, Dropout
from ..normalization import LayerNormalization
from .multi_head import MultiHeadAttention, derived_seed


def feed_forward(dim, hidden, activation, dropout, norm_first, epsilon, seed):
    """The MLP branch ``Dense(dim, hidden) -> activation -> Dropout -> Dense(hidden, dim) -> Dropout`` as a residual.

    Pre-norm: ``Residual(Sequential([LayerNorm, MLP]))``; post-norm:
    ``Sequential([Residual(MLP), LayerNorm])``.
    """
    mlp = [Dense(dim, hidden, seed=derived_seed(seed, 10)), get_activation(activation),
           Dropout(dropout, seed=derived_seed(seed, 11)), Dense(hidden, dim, seed=derived_seed(seed, 12)),
           Dropout(dropout, seed=derived_seed(seed, 13))]
    if norm_first:
        return Residual(Sequential([LayerNormalization(dim, epsilon=epsilon)] + mlp))
    return Sequential([Residual(Sequential(mlp)), LayerNormalization(dim, epsilon=epsilon)])


def reset_rng_inside(model, seed=None):
    """Call ``reset_rng(seed)`` on every layer inside ``model`` that has one (Dropout, attention); returns ``model``.

    Makes every dropout mask of a block or a whole Transformer repeatable
    (gradient checks: ``check_gradients(block, x, reset=reset_rng_inside)``).
    """
    for _, layer in walk(model):
        if layer is not model and callable(getattr(layer, "reset_rng", None)):
            layer.reset_rng(seed)
    return model


def _check_block_args(where, dim, num_heads, mlp_ratio, dropout, norm_first, epsilon, seed):
    dim = check_positive_int(dim, "dim", where=where)
    num_heads = check_positive_int(num_heads, "num_heads", where=where)
    mlp_ratio = check_positive(mlp_ratio, "mlp_ratio", where=where)
    hidden = round(mlp_ratio * dim)
    if hidden < 1:
        raise ValueError(f"{where}: mlp_ratio: expected mlp_ratio * dim >= 1, got {mlp_ratio} * {dim}")
    return (dim, num_heads, hidden, check_rate(dropout, "dropout", where=where),
            check_bool(norm_first, "norm_first", where=where), check_positive(epsilon, "epsilon", where=where),
            check_seed(seed, where=where))


def _attention_parts(dim, num_heads, dropout, causal, epsilon, seed, offset):
    """``(LayerNormalization, MultiHeadAttention, Dropout)`` of one attention branch (seeds ``seed + offset``, +3)."""
    return (LayerNormalization(dim, epsilon=epsilon),
            MultiHeadAttention(dim, num_heads, dropout=dropout, causal=causal, seed=derived_seed(seed, offset)),
            Dropout(dropout, seed=derived_seed(seed, offset + 3)))


class _AttentionBranch:
    """``x + Dropout(MHA(LN(x), ...))`` (pre-norm) or ``LN(x + Dropout(MHA(x, ...)))`` (post-norm)."""

    def __init__(self, block, norm, attention, dropout, norm_first):
        self.block, self.norm, self.attention, self.dropout = block, norm, attention, dropout
        self.norm_first = norm_first

    def forward(self, x, others=(), mask=None):
        if self.norm_first:
            h = self.norm.forward(x)
            inputs = (h, *others) if others else h
            return x + self.dropout.forward(self.attention.forward(inputs, mask=mask))
        inputs = (x, *others) if others else x
        return self.norm.forward(x + self.dropout.forward(self.attention.forward(inputs, mask=mask)))

    def backward(self, grad_output):
        """``(dE/dx, [dE/d others], param grads of norm, attention)``."""
        name = type(self.block).__name__
        if self.norm_first:
            grad_sum, norm_grads = grad_output, None
        else:
            grad_sum, norm_grads = child_backward(self.norm, grad_output, f"{name}.norm")
        grad_attn, _ = child_backward(self.dropout, grad_sum, f"{name}.dropout")
        grad_in, attn_grads = child_backward(self.attention, grad_attn, f"{name}.attention")
        grad_h, others = (grad_in[0], list(grad_in[1:])) if isinstance(grad_in, tuple) else (grad_in, [])
        if self.norm_first:
            grad_x, norm_grads = child_backward(self.norm, grad_h, f"{name}.norm")
            grad_x = grad_x + grad_sum
        else:
            grad_x = grad_h + grad_sum
        return grad_x, others, norm_grads + attn_grads


class TransformerEncoderBlock(Container):
    """Self-attention and an MLP, each a residual branch with LayerNormalization (section 26.4).

    Pre-norm (``norm_first=True``)::

        h = x + Dropout(MHA(LN_1(x)))
        y = h + Dropout(W_2 Dropout(act(W_1 LN_2(h) + b_1)) + b_2)

    Post-norm (``norm_first=False``, as the original Transformer)::

        h = LN_1(x + Dropout(MHA(x)))
        y = LN_2(h + Dropout(W_2 Dropout(act(W_1 h + b_1)) + b_2))

    With ``causal=True`` it is a GPT block (decoder-only, section 26.6.2).
    Same computation as PyTorch's ``nn.TransformerEncoderLayer(dim, num_heads,
    mlp_ratio * dim, dropout, activation, batch_first=True, norm_first=...)``.

    Parameters
    ----------
    dim : int
        Features per token.
    num_heads : int
        Heads of the attention; ``dim`` must be a multiple of it.
    mlp_ratio : float
        Hidden width of the MLP is ``round(mlp_ratio * dim)`` (default 4).
    dropout : float in [0, 1)
        Rate of every dropout: attention weights, after the attention, inside and after the MLP.
    norm_first : bool
        Pre-norm (default) or post-norm.
    causal : bool
        Masked self-attention (token t sees tokens <= t).
    activation : str
        Of the MLP (default ``"gelu"``; any name of :func:`layers.get_activation`).
    epsilon : float
        Of the LayerNormalizations.
    seed : int, optional
        Seeds every weight and dropout mask of the block (distinct offsets per sublayer).

    Shapes
    ------
    ``forward(input_data, mask=None)``: input (B, T, dim) -> output (B, T, dim);
    ``mask`` goes to the attention (see :class:`MultiHeadAttention`).
    ``sublayers()``: ``[norm1, attention, dropout1, feed_forward]``, and ``params``
    is theirs in that order.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4, dropout=0.0, norm_first=True, causal=False, activation="gelu",
                 epsilon=1e-5, seed=None):
        super().__init__()
        dim, num_heads, hidden, dropout, norm_first, epsilon, seed = _check_block_args(
            "TransformerEncoderBlock", dim, num_heads, mlp_ratio, dropout, norm_first, epsilon, seed)
        self.dim, self.norm_first = dim, norm_first
        self.norm1, self.attention, self.dropout1 = _attention_parts(dim, num_heads, dropout, causal, epsilon, seed, 0)
        self.feed_forward = feed_forward(dim, hidden, activation, dropout, norm_first, epsilon, seed)
        self._branch = _AttentionBranch(self, self.norm1, self.attention, self.dropout1, norm_first)

    def sublayers(self) -> list:
        return [self.norm1, self.attention, self.dropout1, self.feed_forward]

    def reset_rng(self, seed=None):
        """Restart every dropout generator of the block (attention and Dropout layers); returns self."""
        return reset_rng_inside(self, seed)

    def forward(self, input_data, mask=None):
        return self.feed_forward.forward(self._branch.forward(input_data, mask=mask))

    def backward(self, grad_output):
        grad_h, ff_grads = child_backward(self.feed_forward, grad_output, "TransformerEncoderBlock.feed_forward")
        grad_x, _, attn_grads = self._branch.backward(grad_h)
        self.grads = attn_grads + ff_grads
        return grad_x, self.grads

    def output_shape(self, input_shape):
        return tuple(input_shape)


class TransformerDecoderBlock(Container):
    """Masked self-attention, cross-attention to the encoder's output, and an MLP (sections 26.4 and 26.6.3).

    Pre-norm (``norm_first=True``)::

        h_1 = x + Dropout(MHA_self(LN_1(x)))                  causal by default
        h_2 = h_1 + Dropout(MHA_cross(LN_2(h_1), memory))     queries from the decoder, keys/values from the encoder
        y   = h_2 + MLP(LN_3(h_2))

    Post-norm puts each LN after its sum (``h_1 = LN_1(x + ...)``), as PyTorch's
    ``nn.TransformerDecoderLayer(..., norm_first=False)``.

    Parameters
    ----------
    dim, num_heads, mlp_ratio, dropout, norm_first, activation, epsilon, seed
        As :class:`TransformerEncoderBlock`.
    causal : bool
        Masked self-attention (default True: position t sees the targets <= t).

    Shapes
    ------
    ``forward((x, memory), mask=None, memory_mask=None)``: ``x (B, T, dim)`` (the
    target tokens), ``memory (B, S, dim)`` (the encoder's output) -> ``(B, T, dim)``;
    ``mask`` goes to the self-attention, ``memory_mask`` to the cross-attention.
    ``backward`` returns ``grad_input = (dE/dx, dE/dmemory)``.
    ``sublayers()``: ``[norm1, self_attention, dropout1, norm2, cross_attention, dropout2, feed_forward]``.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4, dropout=0.0, norm_first=True, causal=True, activation="gelu",
                 epsilon=1e-5, seed=None):
        super().__init__()
        dim, num_heads, hidden, dropout, norm_first, epsilon, seed = _check_block_args(
            "TransformerDecoderBlock", dim, num_heads, mlp_ratio, dropout, norm_first, epsilon, seed)
        self.dim, self.norm_first = dim, norm_first
        self.norm1, self.self_attention, self.dropout1 = _attention_parts(dim, num_heads, dropout, causal, epsilon,
                                                                          seed, 0)
        self.norm2, self.cross_attention, self.dropout2 = _attention_parts(dim, num_heads, dropout, False, epsilon,
                                                                           seed, 4)
        self.feed_forward = feed_forward(dim, hidden, activation, dropout, norm_first, epsilon, seed)
        self._self_branch = _AttentionBranch(self, self.norm1, self.self_attention, self.dropout1, norm_first)
        self._cross_branch = _AttentionBranch(self, self.norm2, self.cross_attention, self.dropout2, norm_first)

    def sublayers(self) -> list:
        return [self.norm1, self.self_attention, self.dropout1, self.norm2, self.cross_attention, self.dropout2,
                self.feed_forward]

    def reset_rng(self, seed=None):
        """Restart every dropout generator of the block (attention and Dropout layers); returns self."""
        return reset_rng_inside(self, seed)

    def forward(self, input_data, mask=None, memory_mask=None):
        if not (isinstance(input_data, (tuple, list)) and len(input_data) == 2):
            raise TypeError(f"TransformerDecoderBlock: input_data: expected a tuple (x, memory), "
                            f"got {type(input_data).__name__}")
        x, memory = input_data
        h = self._self_branch.forward(x, mask=mask)
        h = self._cross_branch.forward(h, (memory,), mask=memory_mask)
        return self.feed_forward.forward(h)

    def backward(self, grad_output):
        grad_h2, ff_grads = child_backward(self.feed_forward, grad_output, "TransformerDecoderBlock.feed_forward")
        grad_h1, (grad_memory,), cross_grads = self._cross_branch.backward(grad_h2)
        grad_x, _, self_grads = self._self_branch.backward(grad_h1)
        self.grads = self_grads + cross_grads + ff_grads
        return (grad_x, grad_memory), self.grads

    def output_shape(self, input_shape):
        """The shape of ``x``: ``input_shape`` is ``(x_shape, memory_shape)``."""
        return tuple(input_shape[0])
