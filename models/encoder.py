"""An encoder-only Transformer classifier of token sequences (book section 26.6.1, "Encoder-Only (Ex: BERT)")."""

from __future__ import annotations

import backend
from backend.checks import check_bool, check_positive_int, check_rate, check_seed
from layers import Dense, Embedding, LayerNormalization, LearnedPositionalEmbedding, TransformerEncoderBlock
from layers import training
from layers.saving import onnx as onnx_export
from layers.attention.multi_head import derived_seed
from layers.containers import Container
from layers.containers.base import child_backward


class TransformerClassifier(Container):
    """Ids -> embeddings + positions -> encoder blocks -> LayerNorm -> mean over the real tokens -> logits.

    ::

        h = Embed(ids) + P                                      (B, T, dim)
        h = EncoderBlock_i(h, mask)   i = 1..depth              padding tokens are never attended to
        z = Σ_t m_t LN(h)_t / Σ_t m_t                           m_t = [ids_t != pad_id]
        logits = z W + b                                        (B, num_classes)

    Every token sees the whole sequence at once (no recurrence: the argument
    of section 26.1), so the first and the last token of a long sequence are
    one attention step apart.

    Parameters
    ----------
    vocab_size : int
        Ids are in ``[0, vocab_size)`` (the padding id included).
    num_classes : int
    max_len : int
        The longest sequence.
    dim, depth, num_heads, mlp_ratio : int
    dropout : float in [0, 1)
    pad_id : int, optional
        The id that pads short sequences: masked out of the attention and the
        pooling. None: every token counts.
    norm_first : bool
    seed : int

    Shapes
    ------
    input: integer ids ``(B, T <= max_len)`` -> logits ``(B, num_classes)``;
    ``grad_input`` is None. A row made only of padding pools to zeros.
    """

    def __init__(self, vocab_size, num_classes, max_len, dim=64, depth=2, num_heads=4, mlp_ratio=4, dropout=0.0,
                 pad_id=None, norm_first=True, seed=0):
        super().__init__()
        where = "TransformerClassifier"
        vocab_size = check_positive_int(vocab_size, "vocab_size", where=where)
        num_classes = check_positive_int(num_classes, "num_classes", where=where)
        max_len = check_positive_int(max_len, "max_len", where=where)
        depth = check_positive_int(depth, "depth", where=where)
        dropout = check_rate(dropout, "dropout", where=where)
        norm_first = check_bool(norm_first, "norm_first", where=where)
        seed = check_seed(seed, where=where)
        if pad_id is not None and not 0 <= check_positive_int(pad_id, "pad_id", minimum=0, where=where) < vocab_size:
            raise ValueError(f"{where}: pad_id: expected an id in [0, {vocab_size}), got {pad_id}")
        self.pad_id = pad_id
        self.embedding = Embedding(vocab_size, dim, weight_init="small_normal", seed=seed)
        self.positions = LearnedPositionalEmbedding(max_len, dim, seed=derived_seed(seed, 1))
        self.blocks = [TransformerEncoderBlock(dim, num_heads, mlp_ratio=mlp_ratio, dropout=dropout,
                                               norm_first=norm_first, seed=derived_seed(seed, 100 * (i + 1)))
                       for i in range(depth)]
        self.norm = LayerNormalization(dim)
        self.head = Dense(dim, num_classes, seed=derived_seed(seed, 2))
        self._pool = None

    fit = training.fit
    evaluate = training.evaluate
    predict = training.predict
    export_onnx = onnx_export.export

    def sublayers(self) -> list:
        return [self.embedding, self.positions, *self.blocks, self.norm, self.head]

    def forward(self, input_data):
        h = self.positions.forward(self.embedding.forward(input_data))
        if self.pad_id is None:
            keep, mask = None, None
        else:
            keep = (input_data != self.pad_id).astype(h.dtype)          # (B, T)
            mask = (input_data != self.pad_id)[:, None, None, :]       # (B, 1, 1, T): keys to attend to
        for block in self.blocks:
            h = block.forward(h, mask=mask)
        h = self.norm.forward(h)
        xp = backend.get_array_module(h)
        if keep is None:
            keep = xp.ones(h.shape[:2], dtype=h.dtype)
        count = xp.maximum(keep.sum(axis=1, keepdims=True), 1)
        weights = keep / count                                          # (B, T), rows sum to 1 (or 0)
        self._pool = weights
        return self.head.forward((h * weights[..., None]).sum(axis=1))

    def backward(self, grad_output):
        if self._pool is None:
            raise RuntimeError("TransformerClassifier.backward called before forward")
        g, head_grads = child_backward(self.head, grad_output, "TransformerClassifier.head")
        g = g[:, None, :] * self._pool[..., None]
        g, norm_grads = child_backward(self.norm, g, "TransformerClassifier.norm")
        block_grads = []
        for i in reversed(range(len(self.blocks))):
            g, grads = child_backward(self.blocks[i], g, f"TransformerClassifier.blocks[{i}]")
            block_grads = grads + block_grads
        g, position_grads = child_backward(self.positions, g, "TransformerClassifier.positions")
        _, embedding_grads = child_backward(self.embedding, g, "TransformerClassifier.embedding")
        self.grads = embedding_grads + position_grads + block_grads + norm_grads + head_grads
        return None, self.grads
