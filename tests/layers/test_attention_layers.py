"""Attention layers (chapter 26): float64 gradient checks with masks and dropout, shapes, dtypes, bad input."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import backend
import layers
from layers import (
    ClassToken,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    PatchEmbedding,
    ScaledDotProductAttention,
    SinusoidalPositionalEncoding,
    TokenPooling,
    TransformerDecoderBlock,
    TransformerEncoderBlock,
)
from layers.attention import reset_rng_inside, sinusoidal_table
from layers.testing import check_gradients

TOL = 1e-6


def _normal(shape, seed=0):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def _assert_ok(report):
    assert report.ok(TOL), str(report)


def _padding_mask(batch, keys):
    """(B, 1, 1, Tk): sample 1 cannot see its last two keys."""
    mask = np.ones((batch, 1, 1, keys), dtype=bool)
    mask[1, ..., -2:] = False
    return backend.to_device(mask)


# -- ScaledDotProductAttention ------------------------------------------------------------------------------
@pytest.mark.parametrize("causal", [False, True])
def test_scaled_dot_product_gradients(float64, device, causal):
    q, k, v = _normal((2, 4, 3), 0), _normal((2, 4, 3), 1), _normal((2, 4, 5), 2)
    mask = backend.to_device(np.random.default_rng(3).random((4, 4)) > 0.3)
    layer = ScaledDotProductAttention(causal=causal)
    _assert_ok(check_gradients(layer, (q, k, v), forward_kwargs={"mask": mask}))
    _assert_ok(check_gradients(layer, q))  # self-attention: one input, the sum of three gradients


def test_scaled_dot_product_gradients_with_heads_dropout_and_an_additive_mask(float64, device):
    q, k, v = _normal((2, 2, 3, 4), 0), _normal((2, 2, 5, 4), 1), _normal((2, 2, 5, 2), 2)
    additive = _normal((3, 5), 4)
    layer = ScaledDotProductAttention(dropout=0.3, seed=7)
    _assert_ok(check_gradients(layer, (q, k, v), reset=lambda layer: layer.reset_rng(),
                               forward_kwargs={"mask": additive}))


def test_scaled_dot_product_forward_is_the_formula(device):
    rng = np.random.default_rng(5)
    q, k, v = (rng.standard_normal((2, 3, 4)).astype(np.float32) for _ in range(3))
    out = ScaledDotProductAttention().forward(tuple(backend.to_device(a) for a in (q, k, v)))
    s = q @ k.transpose(0, 2, 1) / 2.0
    w = np.exp(s - s.max(-1, keepdims=True))
    w /= w.sum(-1, keepdims=True)
    assert out.dtype == np.float32 and out.shape == (2, 3, 4)
    np.testing.assert_allclose(backend.to_numpy(out), w @ v, rtol=1e-5, atol=1e-6)


def test_fully_masked_query_outputs_zero_and_passes_no_gradient():
    q = k = v = np.random.default_rng(6).standard_normal((1, 3, 2))
    mask = np.ones((3, 3), bool)
    mask[2] = False
    layer = ScaledDotProductAttention()
    out = layer.forward((q, k, v), mask=mask)
    np.testing.assert_array_equal(out[0, 2], 0.0)
    (dq, dk, dv), _ = layer.backward(np.ones_like(out))
    assert np.isfinite(dq).all() and np.isfinite(dk).all() and np.isfinite(dv).all()
    np.testing.assert_array_equal(dq[0, 2], 0.0)


def test_attention_dropout_is_deterministic_with_a_seed_and_off_in_evaluation():
    x = np.random.default_rng(0).standard_normal((2, 6, 4)).astype(np.float32)
    a = ScaledDotProductAttention(dropout=0.5, seed=3)
    b = ScaledDotProductAttention(dropout=0.5, seed=3)
    np.testing.assert_array_equal(a.forward(x), b.forward(x))
    assert not np.array_equal(a.forward(x), b.reset_rng(4).forward(x))
    a.eval()
    np.testing.assert_allclose(a.forward(x), ScaledDotProductAttention().forward(x))


# -- MultiHeadAttention -------------------------------------------------------------------------------------
@pytest.mark.parametrize("inputs", ["self", "query, key_value", "query, key, value"])
def test_multi_head_gradients(float64, device, inputs):
    layer = MultiHeadAttention(6, 3, seed=0)
    for p in layer.params[1::2]:  # non-zero biases, so their gradients are checked too
        p[...] = _normal(p.shape, 9)
    x, memory, value = _normal((2, 4, 6), 1), _normal((2, 5, 6), 2), _normal((2, 5, 6), 3)
    data = {"self": x, "query, key_value": (x, memory), "query, key, value": (x, memory, value)}[inputs]
    keys = 4 if inputs == "self" else 5
    _assert_ok(check_gradients(layer, data, forward_kwargs={"mask": _padding_mask(2, keys)}))


def test_multi_head_gradients_causal_with_dropout(float64, device):
    layer = MultiHeadAttention(4, 2, dropout=0.25, causal=True, use_bias=False, seed=1)
    assert len(layer.params) == 2
    _assert_ok(check_gradients(layer, _normal((2, 5, 4)), reset=lambda layer: layer.reset_rng()))


def test_multi_head_shapes_dtype_and_per_sample_mask():
    layer = MultiHeadAttention(8, 2, seed=0)
    x = np.random.default_rng(0).standard_normal((3, 5, 8)).astype(np.float32)
    out = layer.forward((x, x[:, :4]), mask=np.ones((3, 5, 4), bool))
    assert out.shape == (3, 5, 8) and out.dtype == np.float32
    (gq, gkv), grads = layer.backward(np.ones_like(out))
    assert gq.shape == (3, 5, 8) and gkv.shape == (3, 4, 8)
    assert [g.shape for g in grads] == [p.shape for p in layer.params]
    assert all(g.dtype == np.float32 for g in grads)
    assert layer.param_names() == ["W_in", "b_in", "W_out", "b_out"]


def test_multi_head_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match=r"MultiHeadAttention: embed_dim: expected a multiple of num_heads=3 .*got 8"):
        MultiHeadAttention(8, 3)
    layer = MultiHeadAttention(4, 2)
    with pytest.raises(ValueError,
                       match=r"MultiHeadAttention: x: expected shape \(batch, tokens, 4\), got \(2, 3, 5\)"):
        layer.forward(np.zeros((2, 3, 5), np.float32))
    with pytest.raises(ValueError, match=r"expected x, \(query, key_value\) or \(query, key, value\)"):
        layer.forward((np.zeros((2, 3, 4), np.float32),) * 4)
    with pytest.raises(ValueError, match=r"value: expected as many tokens as key \(3\)"):
        layer.forward((np.zeros((2, 3, 4), np.float32), np.zeros((2, 3, 4), np.float32),
                       np.zeros((2, 2, 4), np.float32)))
    x = np.zeros((2, 3, 4), np.float32)
    with pytest.raises(ValueError, match=r"MultiHeadAttention: mask: expected a shape that broadcasts"):
        layer.forward(x, mask=np.ones((3, 2), bool))
    with pytest.raises(TypeError, match=r"MultiHeadAttention: mask: expected a bool .* got dtype int64"):
        layer.forward(x, mask=np.ones((3, 3), np.int64))


# -- positional encodings ---------------------------------------------------------------------------------
def test_sinusoidal_table_is_the_formula():
    table = sinusoidal_table(50, 6)
    pos, i = 7, 2  # features 4 and 5
    np.testing.assert_allclose(table[pos, 2 * i], np.sin(pos / 10000 ** (2 * i / 6)))
    np.testing.assert_allclose(table[pos, 2 * i + 1], np.cos(pos / 10000 ** (2 * i / 6)))
    assert sinusoidal_table(4, 5).shape == (4, 5)  # odd dim: the last feature is a sine


def test_positional_layers_add_their_table(float64, device):
    x = _normal((2, 3, 4))
    fixed = SinusoidalPositionalEncoding(10, 4)
    np.testing.assert_allclose(backend.to_numpy(fixed.forward(x) - x), np.broadcast_to(sinusoidal_table(10, 4)[:3],
                                                                                           (2, 3, 4)))
    _assert_ok(check_gradients(fixed, x))
    learned = LearnedPositionalEmbedding(6, 4, seed=0)
    _assert_ok(check_gradients(learned, x))
    learned.forward(x)
    _, (grad_P,) = learned.backward(x)
    assert not backend.to_numpy(grad_P[3:]).any()


def test_positional_layers_keep_float32_and_refuse_long_sequences():
    x = np.zeros((1, 5, 4), np.float32)
    for layer in (SinusoidalPositionalEncoding(4, 4), LearnedPositionalEmbedding(4, 4)):
        with pytest.raises(ValueError, match=r"expected at most max_len=4 tokens .* got 5"):
            layer.forward(x)
        assert layer.forward(x[:, :3]).dtype == np.float32


# -- ViT pieces -----------------------------------------------------------------------------------------------
def test_patch_embedding_is_a_strided_convolution(float64, device):
    layer = PatchEmbedding(2, 5, input_channels=3, seed=0)
    x = _normal((2, 4, 6, 3))
    out = layer.forward(x)
    assert out.shape == (2, 6, 5)
    xn, W = backend.to_numpy(x), backend.to_numpy(layer.W)
    patch = xn[1, 2:4, 4:6, :].reshape(-1)  # row 1, column 2 of the 2x3 grid of patches
    np.testing.assert_allclose(backend.to_numpy(out)[1, 1 * 3 + 2], patch @ W)
    _assert_ok(check_gradients(layer, x))


def test_patch_sizes_that_do_not_divide_the_image_are_refused():
    with pytest.raises(ValueError, match=r"PatchEmbedding: patch_size: expected a divisor of the image size "
                                         r"\(height, width\) = \(8, 8\), got \(3, 3\)"):
        PatchEmbedding(3, 4).forward(np.zeros((1, 8, 8, 1), np.float32))
    with pytest.raises(ValueError, match="expected NHWC images with 1 channel"):
        PatchEmbedding(2, 4).forward(np.zeros((1, 8, 8, 3), np.float32))


def test_class_token_and_pooling(float64, device):
    x = _normal((2, 3, 4))
    token = ClassToken(4, weight_init="normal", seed=0)
    out = token.forward(x)
    assert out.shape == (2, 4, 4)
    np.testing.assert_array_equal(backend.to_numpy(out[:, 0]), np.broadcast_to(backend.to_numpy(token.token[0]),
                                                                                (2, 4)))
    _assert_ok(check_gradients(token, x))
    for mode in ("mean", "first"):
        pool = TokenPooling(mode)
        assert pool.forward(x).shape == (2, 4)
        _assert_ok(check_gradients(pool, x))
    with pytest.raises(ValueError, match=r"TokenPooling: mode: expected one of 'mean', 'first', got 'max'"):
        TokenPooling("max")


# -- blocks ---------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_gradients(float64, device, norm_first):
    block = TransformerEncoderBlock(4, 2, mlp_ratio=2, dropout=0.2, norm_first=norm_first, seed=0)
    _assert_ok(check_gradients(block, _normal((2, 3, 4)), reset=reset_rng_inside,
                               forward_kwargs={"mask": _padding_mask(2, 3)}))


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_gradients(float64, device, norm_first):
    block = TransformerDecoderBlock(4, 2, mlp_ratio=2, dropout=0.2, norm_first=norm_first, seed=0)
    _assert_ok(check_gradients(block, (_normal((2, 3, 4), 1), _normal((2, 5, 4), 2)), reset=reset_rng_inside,
                               forward_kwargs={"memory_mask": _padding_mask(2, 5)}))


def test_blocks_list_their_sublayers_and_params_in_order():
    block = TransformerEncoderBlock(8, 2, seed=0)
    assert [type(c).__name__ for c in block.sublayers()] == ["LayerNormalization", "MultiHeadAttention", "Dropout",
                                                             "Residual"]
    assert block.count_params() == 2 * 8 + (8 * 24 + 24 + 64 + 8) + 2 * 8 + (8 * 32 + 32) + (32 * 8 + 8)
    names = block.param_names()
    assert names[:6] == ["0.gamma", "0.beta", "1.W_in", "1.b_in", "1.W_out", "1.b_out"]
    decoder = TransformerDecoderBlock(8, 2, seed=0)
    assert decoder.self_attention.causal and not decoder.cross_attention.causal
    assert len(decoder.params) == len(block.params) + 2 + 4
    with pytest.raises(TypeError, match=r"TransformerDecoderBlock: input_data: expected a tuple \(x, memory\)"):
        decoder.forward(np.zeros((1, 2, 8), np.float32))
    with pytest.raises(ValueError, match="TransformerEncoderBlock: embed_dim|MultiHeadAttention: embed_dim"):
        TransformerEncoderBlock(6, 4)


def test_blocks_save_and_load(tmp_path):
    from layers.saving.checkpoint import load_model, save_model

    model = layers.Sequential([TransformerEncoderBlock(8, 2, dropout=0.1, seed=0),
                               TransformerEncoderBlock(8, 2, norm_first=False, causal=True, seed=1)])
    x = np.random.default_rng(0).standard_normal((2, 5, 8)).astype(np.float32)
    model.eval()
    expected = model.forward(x)
    save_model(model, tmp_path / "blocks.npz")
    loaded = load_model(tmp_path / "blocks.npz").eval()
    np.testing.assert_array_equal(loaded.forward(x), expected)


def test_blocks_train_and_eval_reach_every_dropout():
    block = TransformerEncoderBlock(4, 2, dropout=0.5, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 3, 4)).astype(np.float32)
    block.eval()
    first = block.forward(x)
    np.testing.assert_array_equal(block.forward(x), first)
    assert not block.attention.training
    trained = copy.deepcopy(block).train()
    assert not np.allclose(trained.forward(x), first)


def test_dense_applies_to_every_token(float64, device):
    dense = layers.Dense(4, 3, seed=0)
    x = _normal((2, 5, 4))
    out = dense.forward(x)
    assert out.shape == (2, 5, 3) and dense.output_shape((2, 5, 4)) == (2, 5, 3)
    np.testing.assert_allclose(backend.to_numpy(out[1, 2]), backend.to_numpy(dense.forward(x[1, 2][None])[0]))
    _assert_ok(check_gradients(dense, x))
    with pytest.raises(ValueError, match=r"Dense: input_data: expected 4 features .*got shape \(2, 5, 3\)"):
        dense.forward(_normal((2, 5, 3)))


def test_output_shapes_of_multi_input_layers():
    assert ScaledDotProductAttention().output_shape(((2, 3, 4), (2, 5, 4), (2, 5, 7))) == (2, 3, 7)
    assert MultiHeadAttention(4, 2).output_shape(((2, 3, 4), (2, 5, 4))) == (2, 3, 4)
    assert TransformerDecoderBlock(4, 2).output_shape(((2, 3, 4), (2, 5, 4))) == (2, 3, 4)
    assert TransformerEncoderBlock(4, 2).output_shape((2, 3, 4)) == (2, 3, 4)
