"""Attention layers against PyTorch (float64, forward and every gradient): SDPA, nn.MultiheadAttention,
nn.TransformerEncoderLayer and nn.TransformerDecoderLayer with the same weights."""

from __future__ import annotations

import numpy as np
import pytest

from layers import MultiHeadAttention, ScaledDotProductAttention, TransformerDecoderBlock, TransformerEncoderBlock

torch = pytest.importorskip("torch", reason="PyTorch is the reference of these parity tests")
F = torch.nn.functional

RTOL, ATOL = 1e-10, 1e-12


def _t(a, grad=True):
    return torch.tensor(a, dtype=torch.float64, requires_grad=grad)


def _close(ours, theirs, what):
    np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=RTOL, atol=ATOL, err_msg=what)


@pytest.mark.parametrize("mask_kind", ["none", "bool", "float", "causal"])
def test_scaled_dot_product_matches_torch(mask_kind):
    rng = np.random.default_rng(0)
    q, k, v = rng.standard_normal((2, 3, 5, 4)), rng.standard_normal((2, 3, 6, 4)), rng.standard_normal((2, 3, 6, 2))
    mask = {"none": None, "bool": rng.random((5, 6)) > 0.3, "float": rng.standard_normal((2, 1, 5, 6)),
            "causal": None}[mask_kind]
    if mask_kind == "bool":
        mask[:, 0] = True  # every query keeps a key (PyTorch gives NaN for a fully masked row)
    layer = ScaledDotProductAttention(causal=mask_kind == "causal")
    out = layer.forward((q, k, v), mask=mask)
    g = rng.standard_normal(out.shape)
    (dq, dk, dv), _ = layer.backward(g)
    tq, tk, tv = _t(q), _t(k), _t(v)
    ref = F.scaled_dot_product_attention(tq, tk, tv, attn_mask=None if mask is None else torch.tensor(mask),
                                         is_causal=mask_kind == "causal")
    ref.backward(torch.tensor(g))
    _close(out, ref, "output")
    for ours, theirs, name in ((dq, tq, "dq"), (dk, tk, "dk"), (dv, tv, "dv")):
        _close(ours, theirs.grad, name)


def _copy_attention(ours: MultiHeadAttention, theirs):
    """Our W_in is PyTorch's in_proj_weight transposed ([W_Q | W_K | W_V] as columns)."""
    ours.W_in[...] = theirs.in_proj_weight.detach().numpy().T
    ours.b_in[...] = theirs.in_proj_bias.detach().numpy()
    ours.W_out[...] = theirs.out_proj.weight.detach().numpy().T
    ours.b_out[...] = theirs.out_proj.bias.detach().numpy()


def _attention_grads(theirs):
    return [theirs.in_proj_weight.grad.numpy().T, theirs.in_proj_bias.grad.numpy(),
            theirs.out_proj.weight.grad.numpy().T, theirs.out_proj.bias.grad.numpy()]


def _randomize(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(0.3 * torch.randn(p.shape, generator=gen, dtype=torch.float64))


@pytest.mark.parametrize("case", ["self", "self causal", "cross", "cross padded"])
def test_multi_head_attention_matches_torch(case):
    rng = np.random.default_rng(1)
    E, H = 8, 2
    theirs = torch.nn.MultiheadAttention(E, H, batch_first=True, dtype=torch.float64)
    _randomize(theirs, 0)
    ours = MultiHeadAttention(E, H, causal=case == "self causal").astype(np.float64)
    _copy_attention(ours, theirs)
    x, memory = rng.standard_normal((2, 5, E)), rng.standard_normal((2, 7, E))
    tx, tm = _t(x), _t(memory)
    if case.startswith("self"):
        causal = case == "self causal"
        out = ours.forward(x)
        torch_mask = torch.triu(torch.ones(5, 5, dtype=torch.bool), 1) if causal else None
        ref, _ = theirs(tx, tx, tx, attn_mask=torch_mask, need_weights=False, is_causal=causal)
    else:
        allowed = np.ones((2, 1, 1, 7), bool)
        if case == "cross padded":
            allowed[1, ..., -3:] = False
        out = ours.forward((x, memory), mask=allowed)
        # PyTorch's key_padding_mask marks the keys to *ignore* (True = padding)
        ref, _ = theirs(tx, tm, tm, key_padding_mask=torch.tensor(~allowed[:, 0, 0]), need_weights=False)
    g = rng.standard_normal(out.shape)
    grad_input, grads = ours.backward(g)
    ref.backward(torch.tensor(g))
    _close(out, ref, "output")
    if case.startswith("self"):
        _close(grad_input, tx.grad, "dx")
    else:
        _close(grad_input[0], tx.grad, "dquery")
        _close(grad_input[1], tm.grad, "dmemory")
    for ours_g, theirs_g, name in zip(grads, _attention_grads(theirs), ours.param_names()):
        np.testing.assert_allclose(ours_g, theirs_g, rtol=RTOL, atol=ATOL, err_msg=name)


def _copy_dense(dense, linear):
    dense.W[...] = linear.weight.detach().numpy().T
    dense.b[...] = linear.bias.detach().numpy()


def _copy_norm(norm, theirs):
    norm.gamma[...] = theirs.weight.detach().numpy()
    norm.beta[...] = theirs.bias.detach().numpy()


def _mlp_parts(block):
    """(norm of the MLP branch, first Dense, second Dense) of our block, pre- or post-norm."""
    ff = block.feed_forward
    if block.norm_first:
        norm, dense1, _, _, dense2, _ = ff.block.layers
    else:
        residual, norm = ff.layers
        dense1, _, _, dense2, _ = residual.block.layers
    return norm, dense1, dense2


def _torch_grads_by_our_order(ours, pairs):
    """PyTorch's gradients in the order of ``ours.params`` (matching by identity through ``pairs``)."""
    grads = {}
    for our_param, theirs_grad in pairs:
        grads[id(our_param)] = theirs_grad
    return [grads[id(p)] for p in ours.params]


def _norm_pairs(norm, theirs):
    return [(norm.gamma, theirs.weight.grad.numpy()), (norm.beta, theirs.bias.grad.numpy())]


def _dense_pairs(dense, linear):
    return [(dense.W, linear.weight.grad.numpy().T), (dense.b, linear.bias.grad.numpy())]


def _attention_pairs(ours, theirs):
    return list(zip([ours.W_in, ours.b_in, ours.W_out, ours.b_out], _attention_grads(theirs)))


@pytest.mark.parametrize("norm_first", [True, False])
def test_encoder_block_matches_torch_encoder_layer(norm_first):
    rng = np.random.default_rng(2)
    E, H = 8, 2
    theirs = torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=16, dropout=0.0, activation="gelu",
                                              batch_first=True, norm_first=norm_first, dtype=torch.float64)
    _randomize(theirs, 1)
    ours = TransformerEncoderBlock(E, H, mlp_ratio=2, norm_first=norm_first).astype(np.float64)
    norm2, dense1, dense2 = _mlp_parts(ours)
    _copy_attention(ours.attention, theirs.self_attn)
    _copy_norm(ours.norm1, theirs.norm1)
    _copy_norm(norm2, theirs.norm2)
    _copy_dense(dense1, theirs.linear1)
    _copy_dense(dense2, theirs.linear2)
    x = rng.standard_normal((3, 6, E))
    allowed = np.ones((3, 1, 1, 6), bool)
    allowed[2, ..., -2:] = False
    out = ours.forward(x, mask=allowed)
    tx = _t(x)
    theirs.train()  # the eval fast path has no backward
    ref = theirs(tx, src_key_padding_mask=torch.tensor(~allowed[:, 0, 0]))
    g = rng.standard_normal(out.shape)
    grad_input, grads = ours.backward(g)
    ref.backward(torch.tensor(g))
    _close(out, ref, "output")
    _close(grad_input, tx.grad, "dx")
    expected = _torch_grads_by_our_order(ours, _norm_pairs(ours.norm1, theirs.norm1) + _norm_pairs(norm2, theirs.norm2)
                                         + _attention_pairs(ours.attention, theirs.self_attn)
                                         + _dense_pairs(dense1, theirs.linear1) + _dense_pairs(dense2, theirs.linear2))
    for ours_g, theirs_g, name in zip(grads, expected, ours.param_names()):
        np.testing.assert_allclose(ours_g, theirs_g, rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("norm_first", [True, False])
def test_decoder_block_matches_torch_decoder_layer(norm_first):
    rng = np.random.default_rng(3)
    E, H = 8, 4
    theirs = torch.nn.TransformerDecoderLayer(E, H, dim_feedforward=32, dropout=0.0, activation="gelu",
                                              batch_first=True, norm_first=norm_first, dtype=torch.float64)
    _randomize(theirs, 2)
    ours = TransformerDecoderBlock(E, H, norm_first=norm_first).astype(np.float64)
    norm3, dense1, dense2 = _mlp_parts(ours)
    _copy_attention(ours.self_attention, theirs.self_attn)
    _copy_attention(ours.cross_attention, theirs.multihead_attn)
    for n_ours, n_theirs in ((ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2), (norm3, theirs.norm3)):
        _copy_norm(n_ours, n_theirs)
    _copy_dense(dense1, theirs.linear1)
    _copy_dense(dense2, theirs.linear2)
    x, memory = rng.standard_normal((2, 5, E)), rng.standard_normal((2, 4, E))
    out = ours.forward((x, memory))
    tx, tm = _t(x), _t(memory)
    ref = theirs(tx, tm, tgt_mask=torch.nn.Transformer.generate_square_subsequent_mask(5, dtype=torch.float64),
                 tgt_is_causal=True)
    g = rng.standard_normal(out.shape)
    (dx, dmemory), grads = ours.backward(g)
    ref.backward(torch.tensor(g))
    _close(out, ref, "output")
    _close(dx, tx.grad, "dx")
    _close(dmemory, tm.grad, "dmemory")
    pairs = (_norm_pairs(ours.norm1, theirs.norm1) + _norm_pairs(ours.norm2, theirs.norm2)
             + _norm_pairs(norm3, theirs.norm3) + _attention_pairs(ours.self_attention, theirs.self_attn)
             + _attention_pairs(ours.cross_attention, theirs.multihead_attn)
             + _dense_pairs(dense1, theirs.linear1) + _dense_pairs(dense2, theirs.linear2))
    for ours_g, theirs_g, name in zip(grads, _torch_grads_by_our_order(ours, pairs), ours.param_names()):
        np.testing.assert_allclose(ours_g, theirs_g, rtol=RTOL, atol=ATOL, err_msg=name)
