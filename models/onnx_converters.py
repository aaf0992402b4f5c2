"""ONNX converters of the models that are blocks of their own: TransformerClassifier and EncoderDecoder.

``vit`` and ``gpt`` are Sequentials, exported by the converters of their
layers; these two models compute something between their layers (a padding
mask from the ids, the split of one id array into source and target), so
each registers a converter here, where the model lives. The layers inside
are converted by :meth:`~layers.saving.onnx.graph.GraphBuilder.convert`
(their paths name them in errors). Importing this module needs no onnx.
"""

from __future__ import annotations

import numpy as np

from layers.saving.onnx import register_converter
from layers.saving.onnx.graph import Value

from .encoder import TransformerClassifier
from .seq2seq import EncoderDecoder


@register_converter(TransformerClassifier)
def _transformer_classifier(model, graph, x):
    """Embeddings + positions, the blocks (with the key padding mask ``ids != pad_id``), LN, masked mean, head."""
    h = graph.convert(model.positions, graph.convert(model.embedding, x, 0), 1)
    mask = keep = None
    if model.pad_id is not None:
        keep = graph.node("Not", [graph.node("Equal", [x.name, graph.constant(np.array(model.pad_id), "pad_id")])])
        mask = graph.node("Unsqueeze", [keep, graph.constant(np.array([1, 2]), "axes")])  # (B, 1, 1, T)
    for i, block in enumerate(model.blocks):
        h = graph.convert(block, h, 2 + i, mask=mask)
    h = graph.convert(model.norm, h, 2 + len(model.blocks))
    if keep is None:
        pooled = graph.node("ReduceMean", [h.name], axes=[1], keepdims=0)
    else:  # sum_t m_t h_t / max(sum_t m_t, 1): a row of padding only pools to zeros
        keep = graph.node("Cast", [keep], to=graph.tensor_type)
        count = graph.node("Max", [graph.node("ReduceSum", [keep, graph.constant(np.array([1]), "axes")], keepdims=1),
                                   graph.constant(np.array(1.0), "one")])
        weights = graph.node("Unsqueeze", [graph.node("Div", [keep, count]), graph.constant(np.array([2]), "axes")])
        pooled = graph.node("ReduceSum", [graph.node("Mul", [h.name, weights]), graph.constant(np.array([1]), "axes")],
                            keepdims=0)
    return graph.convert(model.head, Value(pooled, (h.shape[0], h.shape[2])), 3 + len(model.blocks)).name


@register_converter(EncoderDecoder)
def _encoder_decoder(model, graph, x):
    """ids (B, S + T): the first ``source_length`` columns are encoded, the rest decoded reading the memory."""
    S = model.source_length
    columns = graph.constant(np.array([1]), "axis")
    source = graph.node("Slice", [x.name, graph.constant(np.array([0]), "start"), graph.constant(np.array([S]), "S"),
                                  columns])
    target = graph.node("Slice", [x.name, graph.constant(np.array([S]), "S"),
                                  graph.constant(np.array([np.iinfo(np.int64).max]), "end"), columns])
    source, target = Value(source, (x.shape[0], S)), Value(target, (x.shape[0], x.shape[1] - S))
    memory = graph.convert(model.encoder, graph.convert(model.source_positions,
                                                        graph.convert(model.source_embedding, source, 0), 1), 2)
    h = graph.convert(model.target_positions, graph.convert(model.target_embedding, target, 3), 4)
    for i, block in enumerate(model.decoder):
        h = graph.convert(block, (h, memory), 5 + i)
    h = graph.convert(model.final_norm, h, 5 + len(model.decoder))
    return graph.convert(model.head, h, 6 + len(model.decoder)).name
