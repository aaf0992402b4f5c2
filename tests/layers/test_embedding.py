"""Embedding: lookup forward, scatter-add backward, integer ids through fit, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import backend
import layers
import optimizers
from layers import Embedding


def test_forward_is_a_row_lookup(device):
    emb = Embedding(10, 4, seed=0)
    ids = backend.to_device(np.array([[1, 3, 3], [9, 0, 1]]))
    out = emb.forward(ids)
    assert out.shape == (2, 3, 4) and out.dtype == emb.W.dtype
    np.testing.assert_array_equal(backend.to_numpy(out[1, 0]), backend.to_numpy(emb.W[9]))


def test_gradient_against_finite_differences(float64, device):
    emb = Embedding(6, 3, seed=0)
    ids = backend.to_device(np.array([[0, 2, 2, 5], [2, 1, 0, 0]]))
    projection = backend.to_device(np.random.default_rng(1).standard_normal((2, 4, 3)))
    emb.forward(ids)
    grad_input, (grad_w,) = emb.backward(projection)
    assert grad_input is None
    numeric = np.zeros((6, 3))
    W = emb.W
    for v in range(6):
        for d in range(3):
            old = float(W[v, d])
            W[v, d] = old + 1e-6
            plus = float((emb.forward(ids) * projection).sum())
            W[v, d] = old - 1e-6
            minus = float((emb.forward(ids) * projection).sum())
            W[v, d] = old
            numeric[v, d] = (plus - minus) / 2e-6
    np.testing.assert_allclose(backend.to_numpy(grad_w), numeric, rtol=1e-7, atol=1e-9)
    np.testing.assert_array_equal(backend.to_numpy(grad_w)[3:5], 0.0)  # ids 3 and 4 never used


def test_against_pytorch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed; the parity check needs it")
    emb = Embedding(7, 5, seed=0)
    ids = np.random.default_rng(0).integers(0, 7, (3, 8))
    g = np.random.default_rng(1).standard_normal((3, 8, 5)).astype(np.float32)
    ref = torch.nn.Embedding(7, 5)
    with torch.no_grad():
        ref.weight.copy_(torch.from_numpy(emb.W))
    out_ref = ref(torch.from_numpy(ids))
    out_ref.backward(torch.from_numpy(g))
    np.testing.assert_allclose(emb.forward(ids), out_ref.detach().numpy(), rtol=0, atol=0)
    _, (grad_w,) = emb.backward(g)
    np.testing.assert_allclose(grad_w, ref.weight.grad.numpy(), rtol=1e-6, atol=1e-6)


def test_bad_ids_are_refused_naming_the_largest():
    emb = Embedding(5, 2)
    with pytest.raises(ValueError, match=r"ids must be in \[0, 5\) \(num_embeddings=5\), got id 9 \(largest id 9\)"):
        emb.forward(np.array([[1, 9, 2]]))
    with pytest.raises(ValueError, match="got id -1"):
        emb.forward(np.array([[1, -1]]))
    with pytest.raises(TypeError, match="expected integer ids.*float32"):
        emb.forward(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match="num_embeddings: expected an integer >= 1, got 0"):
        Embedding(0, 3)


def test_fit_passes_integer_ids_to_an_embedding_model():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 20, (256, 6))
    y = (ids[:, 0] >= 10).astype(np.int64)  # is the first id in the upper half
    model = layers.Sequential([Embedding(20, 8, seed=0), layers.Flatten(), layers.Dense(48, 2, seed=1)])
    history = model.fit(ids, y, loss=layers.SparseCategoricalCrossEntropy(from_logits=True),
                        optimizer=optimizers.Adam(0.02), epochs=20, batch_size=32, verbose=0, seed=0)
    assert history.history["accuracy"][-1] > 0.95
    assert model.predict(ids[:4]).shape == (4, 2)
