"""An encoder-decoder Transformer (book section 26.6.3, "Encoder-Decoder (Ex: T5)") and greedy decoding."""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_bool, check_positive_int, check_rate, check_seed
from layers import (Dense, Embedding, LayerNormalization, LearnedPositionalEmbedding, Sequential,
                    TransformerDecoderBlock, TransformerEncoderBlock)
from layers.attention.multi_head import derived_seed
from layers.containers import Container
from layers.containers.base import child_backward
from layers import training
from layers.saving import onnx as onnx_export
from layers.saving import checkpoint
from layers.training.loop import evaluation_mode


class EncoderDecoder(Container):
    """Source ids -> encoder -> memory; target ids + memory -> decoder -> logits of the next target id.

    ::

        memory = LN(Encoder(Embed_s(src) + P_s))                    (B, S, dim)
        h      = Embed_t(tgt) + P_t                                 (B, T, dim)
        h      = DecoderBlock_i((h, memory))  for i = 1..depth      causal self-attention, cross-attention
        logits = Dense(LN(h))                                       (B, T, target_vocab)

    Trained with teacher forcing: the decoder reads the target shifted right
    (a start id first) and predicts every next target id at once.

    Parameters
    ----------
    source_vocab, target_vocab : int
    source_length, target_length : int
        The longest source and target (position tables).
    dim, depth, num_heads, mlp_ratio : int
        Width, blocks in the encoder and in the decoder, heads, MLP width / dim.
    dropout : float in [0, 1)
    norm_first : bool
        Pre-norm blocks (default).
    seed : int

    Shapes
    ------
    ``input_data``: ``(source (B, S), target (B, T))`` integer ids, or one
    integer array ``(B, S' + T)`` whose first ``source_length`` columns are the
    source (what ``fit`` passes: ``X = np.concatenate([source, target_in], 1)``).
    Output: logits ``(B, T, target_vocab)``. The ids get no gradient
    (``grad_input`` is None).
    ``sublayers()``: source embedding, source positions, encoder (a Sequential
    of blocks and a LayerNorm), target embedding, target positions, the decoder
    blocks, the final LayerNorm, the head.
    """

    def __init__(self, source_vocab, target_vocab, source_length, target_length, dim=64, depth=2, num_heads=4,
                 mlp_ratio=4, dropout=0.0, norm_first=True, seed=0):
        super().__init__()
        where = "EncoderDecoder"
        self.source_vocab = check_positive_int(source_vocab, "source_vocab", where=where)
        self.target_vocab = check_positive_int(target_vocab, "target_vocab", where=where)
        self.source_length = check_positive_int(source_length, "source_length", where=where)
        self.target_length = check_positive_int(target_length, "target_length", where=where)
        dim = check_positive_int(dim, "dim", where=where)
        depth = check_positive_int(depth, "depth", where=where)
        dropout = check_rate(dropout, "dropout", where=where)
        norm_first = check_bool(norm_first, "norm_first", where=where)
        seed = check_seed(seed, where=where)
        self.source_embedding = Embedding(self.source_vocab, dim, weight_init="small_normal", seed=seed)
        self.source_positions = LearnedPositionalEmbedding(self.source_length, dim, seed=derived_seed(seed, 1))
        self.encoder = Sequential(
            [TransformerEncoderBlock(dim, num_heads, mlp_ratio=mlp_ratio, dropout=dropout, norm_first=norm_first,
                                     seed=derived_seed(seed, 100 * (i + 1))) for i in range(depth)]
            + [LayerNormalization(dim)])
        self.target_embedding = Embedding(self.target_vocab, dim, weight_init="small_normal",
                                          seed=derived_seed(seed, 2))
        self.target_positions = LearnedPositionalEmbedding(self.target_length, dim, seed=derived_seed(seed, 3))
        self.decoder = [TransformerDecoderBlock(dim, num_heads, mlp_ratio=mlp_ratio, dropout=dropout,
                                                norm_first=norm_first, seed=derived_seed(seed, 1000 * (i + 1)))
                        for i in range(depth)]
        self.final_norm = LayerNormalization(dim)
        self.head = Dense(dim, self.target_vocab, seed=derived_seed(seed, 4))

    fit = training.fit
    evaluate = training.evaluate
    predict = training.predict
    export_onnx = onnx_export.export

    def save(self, path) -> str:
        """Save architecture and weights to one ``.npz`` (:func:`layers.saving.checkpoint.save_model`)."""
        return checkpoint.save_model(self, path)

    def sublayers(self) -> list:
        return [self.source_embedding, self.source_positions, self.encoder, self.target_embedding,
                self.target_positions, *self.decoder, self.final_norm, self.head]

    def _split(self, input_data):
        if isinstance(input_data, (tuple, list)):
            if len(input_data) != 2:
                raise ValueError(f"EncoderDecoder: input_data: expected (source, target) or one array, got "
                                 f"{len(input_data)} items")
            return input_data
        if input_data.ndim != 2 or input_data.shape[1] <= self.source_length:
            raise ValueError(f"EncoderDecoder: input_data: expected ids (batch, source_length + T) = (batch, "
                             f"{self.source_length} + T), T >= 1, got shape {tuple(input_data.shape)}")
        return input_data[:, : self.source_length], input_data[:, self.source_length:]

    def encode(self, source):
        """``memory (B, S, dim)`` of source ids ``(B, S)``."""
        return self.encoder.forward(self.source_positions.forward(self.source_embedding.forward(source)))

    def decode(self, target, memory):
        """Logits ``(B, T, target_vocab)`` of target ids ``(B, T)`` reading ``memory`` (from :meth:`encode`)."""
        h = self.target_positions.forward(self.target_embedding.forward(target))
        for block in self.decoder:
            h = block.forward((h, memory))
        return self.head.forward(self.final_norm.forward(h))

    def forward(self, input_data):
        source, target = self._split(input_data)
        return self.decode(target, self.encode(source))

    def backward(self, grad_output):
        grads_by_layer = {}
        g, grads_by_layer["head"] = child_backward(self.head, grad_output, "EncoderDecoder.head")
        g, grads_by_layer["final_norm"] = child_backward(self.final_norm, g, "EncoderDecoder.final_norm")
        grad_memory = None
        for i in reversed(range(len(self.decoder))):
            (g, gm), grads_by_layer[f"decoder{i}"] = child_backward(self.decoder[i], g, f"EncoderDecoder.decoder[{i}]")
            grad_memory = gm if grad_memory is None else grad_memory + gm
        g, grads_by_layer["target_positions"] = child_backward(self.target_positions, g, "target_positions")
        _, grads_by_layer["target_embedding"] = child_backward(self.target_embedding, g, "target_embedding")
        g, grads_by_layer["encoder"] = child_backward(self.encoder, grad_memory, "EncoderDecoder.encoder")
        g, grads_by_layer["source_positions"] = child_backward(self.source_positions, g, "source_positions")
        _, grads_by_layer["source_embedding"] = child_backward(self.source_embedding, g, "source_embedding")
        order = (["source_embedding", "source_positions", "encoder", "target_embedding", "target_positions"]
                 + [f"decoder{i}" for i in range(len(self.decoder))] + ["final_norm", "head"])
        self.grads = [p for name in order for p in grads_by_layer[name]]
        return None, self.grads


def encoder_decoder(source_vocab, target_vocab, source_length, target_length, dim=64, depth=2, num_heads=4,
                    mlp_ratio=4, dropout=0.0, norm_first=True, seed=0):
    """Build an :class:`EncoderDecoder` (section 26.6.3); the arguments are its constructor's."""
    return EncoderDecoder(source_vocab, target_vocab, source_length, target_length, dim=dim, depth=depth,
                          num_heads=num_heads, mlp_ratio=mlp_ratio, dropout=dropout, norm_first=norm_first, seed=seed)


def greedy_decode(model, source, start_id, length):
    """Decode ``length`` target ids for each source, feeding back the most likely id at every step.

    Parameters
    ----------
    model : EncoderDecoder
    source : int array ``(B, S)``
    start_id : int
        The id the decoder reads first.
    length : int
        Ids to produce (at most ``model.target_length``).

    Returns
    -------
    int64 NumPy array ``(B, length)`` (the start id not included).
    """
    length = check_positive_int(length, "length", where="greedy_decode")
    if length > model.target_length:
        raise ValueError(f"greedy_decode: length: expected at most target_length={model.target_length}, got {length}")
    source = np.asarray(backend.to_numpy(source)).astype(np.int64)
    device = backend.device_of(model.params[0])
    target = np.full((len(source), 1), int(start_id), dtype=np.int64)
    with evaluation_mode(model):
        memory = model.encode(backend.to_device(source, device))
        for _ in range(length):
            logits = model.decode(backend.to_device(target, device), memory)
            next_ids = backend.to_numpy(logits[:, -1]).argmax(axis=-1)
            target = np.concatenate([target, next_ids[:, None]], axis=1)
    return target[:, 1:]
