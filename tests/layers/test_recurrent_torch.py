"""Parity with PyTorch's nn.RNN, nn.LSTM and nn.GRU: same weights copied in, forward and backward.

The gate orders are PyTorch's (i, f, g, o and r, z, n), so the mapping is a
transpose: ``W = weight_ih.T``, ``U = weight_hh.T``; ``b = bias_ih + bias_hh``
(RNN, LSTM) or ``b = bias_ih``, ``b_h = bias_hh`` (GRU, reset after). Padded
batches go through ``pack_padded_sequence`` on the PyTorch side and
``lengths=`` on ours. Peepholes and the GRU with the reset before the product
have no PyTorch counterpart; their gradients are checked in test_recurrent.py.
"""

from __future__ import annotations

import numpy as np
import pytest

from layers import GRU, LSTM, Bidirectional, SimpleRNN

torch = pytest.importorskip("torch", reason="PyTorch is not installed; the parity checks need it")

B, T, I, H = 3, 5, 4, 6
LENGTHS = np.array([5, 2, 4])


def _ours(kind, **kw):
    if kind == "lstm":
        return LSTM(I, H, **kw)
    if kind == "gru":
        return GRU(I, H, **kw)
    return SimpleRNN(I, H, activation=kind.split("_")[1], **kw)


def _theirs(kind, bidirectional):
    torch.manual_seed(0)
    if kind == "lstm":
        module = torch.nn.LSTM(I, H, batch_first=True, bidirectional=bidirectional)
    elif kind == "gru":
        module = torch.nn.GRU(I, H, batch_first=True, bidirectional=bidirectional)
    else:
        module = torch.nn.RNN(I, H, nonlinearity=kind.split("_")[1], batch_first=True, bidirectional=bidirectional)
    with torch.no_grad():
        for p in module.parameters():
            p.uniform_(-0.6, 0.6)  # PyTorch's default range is narrow for H = 6; nonzero biases too
    return module.double()


def _copy_in(layer, module, suffix):
    get = lambda name: getattr(module, f"{name}_l0{suffix}").detach().numpy()  # noqa: E731
    layer.W[...] = get("weight_ih").T
    layer.U[...] = get("weight_hh").T
    if isinstance(layer, GRU):
        layer.b[...] = get("bias_ih")
        layer.b_h[...] = get("bias_hh")
    else:
        layer.b[...] = get("bias_ih") + get("bias_hh")


def _their_grads(layer, module, suffix):
    grad = lambda name: getattr(module, f"{name}_l0{suffix}").grad.numpy()  # noqa: E731
    out = [grad("weight_ih").T, grad("weight_hh").T]
    if isinstance(layer, GRU):
        return out + [grad("bias_ih"), grad("bias_hh")]
    np.testing.assert_allclose(grad("bias_ih"), grad("bias_hh"))
    return out + [grad("bias_ih")]


def _run_theirs(module, x, state, lengths):
    xt = torch.from_numpy(x).requires_grad_()
    state_t = tuple(torch.from_numpy(s).requires_grad_() for s in state)
    packed = xt
    if lengths is not None:
        packed = torch.nn.utils.rnn.pack_padded_sequence(xt, torch.from_numpy(lengths), batch_first=True,
                                                         enforce_sorted=False)
    out, final = module(packed, state_t if len(state_t) == 2 else state_t[0])
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=T)
    final = final if isinstance(final, tuple) else (final,)
    return xt, state_t, out, final


@pytest.mark.parametrize("kind", ["rnn_tanh", "rnn_relu", "lstm", "gru"])
@pytest.mark.parametrize("padded", [False, True], ids=["full", "padded"])
def test_one_direction(kind, padded):
    rng = np.random.default_rng(0)
    module = _theirs(kind, bidirectional=False)
    layer = _ours(kind, return_sequences=True, return_state=True).astype(np.float64)
    _copy_in(layer, module, "")
    x = rng.standard_normal((B, T, I))
    state = [rng.standard_normal((1, B, H)) for _ in layer.states]
    lengths = LENGTHS if padded else None
    xt, state_t, out_t, final_t = _run_theirs(module, x, state, lengths)

    ours_state = tuple(s[0] for s in state)
    y, final = layer.forward((x, ours_state[0] if len(ours_state) == 1 else ours_state), lengths=lengths)
    final = final if isinstance(final, tuple) else (final,)
    np.testing.assert_allclose(y, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(final, final_t):
        np.testing.assert_allclose(ours, theirs.detach().numpy()[0], rtol=1e-10, atol=1e-12)

    dy = rng.standard_normal(y.shape)
    if padded:
        dy *= (np.arange(T)[None, :] < LENGTHS[:, None])[:, :, None]  # padded outputs are constants in both
    d_final = [rng.standard_normal((B, H)) for _ in final]
    loss = (out_t * torch.from_numpy(dy)).sum() + sum((f[0] * torch.from_numpy(d)).sum()
                                                      for f, d in zip(final_t, d_final))
    loss.backward()
    (dx, d_initial), grads = layer.backward((dy, d_final[0] if len(d_final) == 1 else tuple(d_final)))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    d_initial = d_initial if isinstance(d_initial, tuple) else (d_initial,)
    for ours, theirs in zip(d_initial, state_t):
        np.testing.assert_allclose(ours, theirs.grad.numpy()[0], rtol=1e-9, atol=1e-11)
    for ours, theirs in zip(grads, _their_grads(layer, module, "")):
        np.testing.assert_allclose(ours, theirs, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("kind", ["rnn_tanh", "lstm", "gru"])
def test_bidirectional_concat_is_pytorchs_bidirectional(kind):
    rng = np.random.default_rng(1)
    module = _theirs(kind, bidirectional=True)
    block = Bidirectional(_ours(kind, return_sequences=True, return_state=True)).astype(np.float64)
    _copy_in(block.forward_layer, module, "")
    _copy_in(block.backward_layer, module, "_reverse")
    x = rng.standard_normal((B, T, I))
    xt, _, out_t, final_t = _run_theirs(module, x, [np.zeros((2, B, H))] * len(block.forward_layer.states),
                                        LENGTHS)
    y, (state_f, state_b) = block.forward(x, lengths=LENGTHS)
    np.testing.assert_allclose(y, out_t.detach().numpy(), rtol=1e-10, atol=1e-12)
    parts_f = state_f if isinstance(state_f, tuple) else (state_f,)
    parts_b = state_b if isinstance(state_b, tuple) else (state_b,)
    for ours_f, ours_b, theirs in zip(parts_f, parts_b, final_t):
        np.testing.assert_allclose(ours_f, theirs.detach().numpy()[0], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(ours_b, theirs.detach().numpy()[1], rtol=1e-10, atol=1e-12)
    dy = rng.standard_normal(y.shape) * (np.arange(T)[None, :] < LENGTHS[:, None])[:, :, None]
    (out_t * torch.from_numpy(dy)).sum().backward()
    dx, grads = block.backward((dy, None))
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-9, atol=1e-11)
    theirs = _their_grads(block.forward_layer, module, "") + _their_grads(block.backward_layer, module, "_reverse")
    for ours, their in zip(grads, theirs):
        np.testing.assert_allclose(ours, their, rtol=1e-9, atol=1e-11)


def test_float32_lstm_agrees_to_float32_precision():
    rng = np.random.default_rng(2)
    module = _theirs("lstm", bidirectional=False).float()
    layer = LSTM(I, H, return_sequences=True)
    _copy_in(layer, module, "")
    x = rng.standard_normal((B, T, I)).astype(np.float32)
    out_t, _ = module(torch.from_numpy(x))
    y = layer.forward(x)
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, out_t.detach().numpy(), rtol=1e-5, atol=1e-6)
