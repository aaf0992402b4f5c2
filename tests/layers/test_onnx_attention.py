"""ONNX export of the attention layers and Transformer blocks (chapter 26) checked by ONNX Runtime (float32, 1e-5).

Every layer alone in several configurations, against ``predict``; the
causal mask and the positional tables at other lengths than the export's
(``dynamic_axes``); the ViT front end on NHWC images. The models built from
them are in tests/models/test_onnx_models.py.
"""

from __future__ import annotations

import pytest

from layers import (ClassToken, LearnedPositionalEmbedding, MultiHeadAttention, PatchEmbedding,
                    ScaledDotProductAttention, Sequential, SinusoidalPositionalEncoding, TokenPooling,
                    TransformerEncoderBlock)
from layers.saving.onnx import OnnxExportError, register_converter
from layers.saving.onnx.registry import CHECKS, CONVERTERS
from tests.layers.onnx_checks import assert_same_as_onnx, onnx, randn, randomize

TOKENS = (3, 5, 8)  # batch, tokens, features


@pytest.mark.parametrize("layer, shape", [
    (ScaledDotProductAttention(), TOKENS),
    (ScaledDotProductAttention(causal=True), TOKENS),
    (ScaledDotProductAttention(scale=0.7, dropout=0.3, seed=0), TOKENS),      # dropout: none in evaluation
    (ScaledDotProductAttention(causal=True), (2, 3, 5, 4)),                   # (B, H, T, d) with a head axis
], ids=["self", "causal", "scale-dropout", "heads-axis"])
def test_scaled_dot_product_attention(layer, shape, tmp_path):
    assert_same_as_onnx(layer, tmp_path, randn(*shape), more=[randn(1, *shape[1:], seed=1)])


@pytest.mark.parametrize("layer", [
    MultiHeadAttention(8, 1, seed=0),
    MultiHeadAttention(8, 2, seed=0),
    MultiHeadAttention(8, 4, causal=True, seed=0),
    MultiHeadAttention(8, 2, use_bias=False, dropout=0.2, seed=0),
], ids=["one-head", "two-heads", "four-heads-causal", "no-bias"])
def test_multi_head_attention(layer, tmp_path):
    assert_same_as_onnx(randomize(layer), tmp_path, randn(*TOKENS))


@pytest.mark.parametrize("layer", [SinusoidalPositionalEncoding(9, 8), SinusoidalPositionalEncoding(5, 7, base=100.0),
                                   LearnedPositionalEmbedding(12, 8), LearnedPositionalEmbedding(5, 7)],
                         ids=["sinusoidal", "sinusoidal-odd-full", "learned", "learned-full"])
def test_positional_tables(layer, tmp_path):
    """Tables longer than the sequence (sliced) or exactly as long."""
    assert_same_as_onnx(randomize(layer), tmp_path, randn(3, 5, layer.dim))


@pytest.mark.parametrize("patch_size, channels", [(2, 1), ((2, 4), 3), (8, 2)])
def test_patch_embedding_on_nhwc_images(patch_size, channels, tmp_path):
    """Patches in (row, column, channel) order, taken row by row: every token must match ours."""
    layer = randomize(PatchEmbedding(patch_size, 6, input_channels=channels, seed=0))
    assert_same_as_onnx(layer, tmp_path, randn(3, 8, 8, channels))


def test_class_token_and_pooling(tmp_path):
    front = [PatchEmbedding(4, 6, input_channels=2, seed=0), ClassToken(6)]
    assert_same_as_onnx(randomize(Sequential(front)), tmp_path, randn(3, 8, 8, 2), more=[randn(1, 8, 8, 2, seed=1)])


@pytest.mark.parametrize("mode", ["mean", "first"])
def test_token_pooling(mode, tmp_path):
    assert_same_as_onnx(TokenPooling(mode), tmp_path, randn(*TOKENS))


@pytest.mark.parametrize("options", [
    {},
    {"norm_first": False},
    {"causal": True, "activation": "relu", "mlp_ratio": 2},
    {"norm_first": False, "causal": True, "dropout": 0.1, "activation": "silu"},
], ids=["pre-norm", "post-norm", "causal-relu", "post-norm-causal-dropout"])
def test_transformer_encoder_block(options, tmp_path):
    block = randomize(TransformerEncoderBlock(8, 2, seed=0, **options), scale=0.5)
    assert_same_as_onnx(block, tmp_path, randn(*TOKENS))


def test_causal_mask_and_positions_follow_the_dynamic_length(tmp_path):
    """Exported at 5 tokens, run at 1, 3 and 12 (the table's length): the triangle and the table are cut there."""
    model = randomize(Sequential([LearnedPositionalEmbedding(12, 8, seed=0),
                                  TransformerEncoderBlock(8, 2, causal=True, seed=1),
                                  SinusoidalPositionalEncoding(12, 8), ScaledDotProductAttention(causal=True)]),
                      scale=0.5)
    path = assert_same_as_onnx(model, tmp_path, randn(*TOKENS), dynamic_axes=(1,),
                               more=[randn(2, 1, 8, seed=1), randn(2, 3, 8, seed=2), randn(4, 12, 8, seed=3)])
    output = onnx.load(path).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in output] == ["batch", "input_axis_1", 8]


@pytest.mark.parametrize("dynamic_axes, error, match", [
    ((0,), ValueError, r"dynamic_axes: expected an integer >= 1, got 0"),
    ((3,), ValueError, r"dynamic_axes: expected axes of the input \(batch, \*input_shape\) in \[1, 2\]"),
    ((1, 1), ValueError, r"axis 1 given twice"),
    ({1: "batch"}, ValueError, r"dynamic_axes\[1\]: expected a new non-empty name"),
    ("1", TypeError, r"dynamic_axes: expected axes"),
    ((2,), ValueError, r"the model takes no other size on axes \[2\] than input_shape's"),
])
def test_bad_dynamic_axes(dynamic_axes, error, match, tmp_path):
    with pytest.raises(error, match=match):
        Sequential([MultiHeadAttention(8, 2, seed=0)]).export_onnx(tmp_path / "m.onnx", (5, 8),
                                                                   dynamic_axes=dynamic_axes)
    assert list(tmp_path.iterdir()) == []


def test_a_converter_may_refuse_a_configuration(tmp_path):
    """``register_converter(..., check=)``: the export names the layer, its path and the converter's reason."""
    saved = CONVERTERS[TokenPooling], CHECKS.get(TokenPooling)
    register_converter(TokenPooling, check=lambda layer: "no first tokens today" if layer.mode == "first" else None)(
        saved[0])
    try:
        assert_same_as_onnx(TokenPooling("mean"), tmp_path, randn(*TOKENS))
        with pytest.raises(OnnxExportError, match=r"layer '1' \(TokenPooling\) cannot .*: no first tokens today"):
            Sequential([ClassToken(8), TokenPooling("first")]).export_onnx(tmp_path / "first.onnx", (5, 8))
    finally:
        register_converter(TokenPooling, check=saved[1])(saved[0])
    assert TokenPooling not in CHECKS
    with pytest.raises(TypeError, match="check: expected a function"):
        register_converter(TokenPooling, check="no")
