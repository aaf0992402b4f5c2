"""The Transformer builders (chapter 26): shapes, gradients, training steps, decoding, save/load, bad arguments."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from layers import SparseCategoricalCrossEntropy
from layers.attention import reset_rng_inside
from layers.saving.checkpoint import load_model
from layers.testing import check_gradients
from models import (EncoderDecoder, TransformerClassifier, encoder_decoder, generate, gpt, greedy_decode,
                    sample_next, vit)
from optimizers import Adam

LOSS = SparseCategoricalCrossEntropy(from_logits=True)


def _ids(shape, high, seed=0):
    return np.random.default_rng(seed).integers(0, high, size=shape)


def test_vit_shapes_training_and_save_load(device, tmp_path):
    model = vit((8, 8, 1), 10, patch_size=4, dim=16, depth=1, num_heads=2, seed=0)
    x = np.random.default_rng(0).random((6, 8, 8, 1)).astype(np.float32)
    y = np.arange(6)
    model.fit(x, y, loss=LOSS, optimizer=Adam(1e-3), epochs=1, batch_size=3, verbose=0, seed=0)
    out = model.predict(x)
    assert out.shape == (6, 10) and out.dtype == np.float32
    model.save(tmp_path / "vit.npz")
    loaded = load_model(tmp_path / "vit.npz")
    np.testing.assert_allclose(loaded.predict(x), out, rtol=1e-6)
    mean = vit((8, 8, 1), 3, patch_size=(2, 4), dim=8, depth=1, num_heads=2, pool="mean")
    assert mean.predict(x).shape == (6, 3)


def test_vit_gradients(float64):
    model = vit((4, 4, 2), 3, patch_size=2, dim=4, depth=1, num_heads=2, dropout=0.2, seed=0)
    x = np.random.default_rng(0).standard_normal((2, 4, 4, 2))
    report = check_gradients(model, x, reset=reset_rng_inside)
    assert report.ok(1e-6), str(report)


@pytest.mark.parametrize("kwargs, match", [
    ({"patch_size": 3}, (r"vit: patch_size: expected a divisor of the image size \(height, width\) = \(8, 8\), "
                         r"got \(3, 3\)")),
    ({"dim": 10, "num_heads": 4}, r"vit: dim: expected a multiple of num_heads=4 .*got 10"),
    ({"pool": "max"}, r"vit: pool: expected one of 'cls', 'mean', got 'max'"),
])
def test_vit_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        vit((8, 8, 1), 10, **kwargs)
    with pytest.raises(ValueError, match=r"vit: input_shape: expected \(height, width, channels\)"):
        vit((8, 8), 10)


def test_gpt_trains_on_next_tokens_and_is_causal(device):
    model = gpt(12, 8, dim=16, depth=1, num_heads=2, dropout=0.0, seed=0)
    ids = _ids((16, 9), 12)
    history = model.fit(ids[:, :-1], ids[:, 1:], loss=LOSS, optimizer=Adam(1e-2), epochs=3, batch_size=8,
                        verbose=0, seed=0)
    assert history.history["loss"][-1] < history.history["loss"][0]
    x = backend.to_device(ids[:2, :8])
    logits = backend.to_numpy(model.predict(x))
    assert logits.shape == (2, 8, 12)
    changed = backend.to_numpy(x).copy()
    changed[:, 5:] = (changed[:, 5:] + 1) % 12  # the future cannot change the past
    np.testing.assert_allclose(backend.to_numpy(model.predict(backend.to_device(changed)))[:, :5], logits[:, :5],
                               rtol=1e-5, atol=1e-6)


def test_gpt_gradients_with_integer_ids(float64):
    model = gpt(5, 4, dim=4, depth=1, num_heads=2, dropout=0.1, seed=1)
    report = check_gradients(model, _ids((2, 4), 5), reset=reset_rng_inside)
    assert "input" not in report.errors and report.ok(1e-6), str(report)


def test_generate_and_sample_next():
    model = gpt(7, 4, dim=8, depth=1, num_heads=2, seed=0)
    out = generate(model, [1, 2], 6, temperature=0.7, top_k=3, seed=0)
    assert out.shape == (8,) and out.dtype == np.int64 and list(out[:2]) == [1, 2]
    np.testing.assert_array_equal(out, generate(model, [1, 2], 6, temperature=0.7, top_k=3, seed=0))
    batch = generate(model, np.array([[1], [3]]), 5, top_k=1)  # longer than the context: a sliding window
    assert batch.shape == (2, 6)
    logits = np.array([[0.0, 5.0, 1.0, -2.0]])
    assert sample_next(logits, top_k=1)[0] == 1
    draws = sample_next(np.repeat(logits, 2000, axis=0), top_k=2, rng=0)
    assert set(np.unique(draws)) == {1, 2}
    assert np.mean(draws == 1) == pytest.approx(1 / (1 + np.exp(-4.0)), abs=0.03)
    with pytest.raises(ValueError, match="generate: prompt: expected integer ids"):
        generate(model, np.array([0.5]), 2)


def test_encoder_decoder_learns_to_copy_and_decodes_greedily(device, tmp_path):
    model = encoder_decoder(5, 6, 4, 4, dim=16, depth=1, num_heads=2, seed=0)
    src = _ids((256, 4), 5)
    tgt_in = np.concatenate([np.full((256, 1), 5), src[:, :-1]], axis=1)
    X = np.concatenate([src, tgt_in], axis=1)
    history = model.fit(X, src, loss=LOSS, optimizer=Adam(1e-2), epochs=8, batch_size=32, verbose=0, seed=0)
    assert history.history["loss"][-1] < 0.6 * history.history["loss"][0]
    decoded = greedy_decode(model, src[:32], 5, 4)
    assert decoded.shape == (32, 4) and decoded.dtype == np.int64
    assert np.mean(decoded == src[:32]) > 0.4  # chance is 0.2
    out = model.predict(X[:3])
    model.save(tmp_path / "s2s.npz")
    np.testing.assert_allclose(load_model(tmp_path / "s2s.npz").predict(X[:3]), out, rtol=1e-6)
    with pytest.raises(ValueError, match="greedy_decode: length: expected at most target_length=4"):
        greedy_decode(model, src[:1], 5, 5)


def test_encoder_decoder_gradients(float64):
    model = EncoderDecoder(4, 5, 3, 2, dim=4, depth=1, num_heads=2, dropout=0.1, seed=0)
    for table in model.params[:2]:  # source embeddings and positions of order 1, so their gradients are too
        table *= 50
    report = check_gradients(model, (_ids((2, 3), 4), _ids((2, 2), 5, seed=1)), reset=reset_rng_inside)
    assert report.ok(1e-6), str(report)
    with pytest.raises(ValueError, match=r"EncoderDecoder: input_data: expected ids \(batch, source_length \+ T\)"):
        model.forward(_ids((2, 3), 4))


def test_transformer_classifier_masks_padding(float64):
    model = TransformerClassifier(6, 3, 5, dim=4, depth=1, num_heads=2, pad_id=5, seed=0)
    ids = np.array([[1, 2, 3, 5, 5], [0, 4, 4, 4, 1]])
    report = check_gradients(model, ids)
    assert report.ok(1e-6), str(report)
    out = model.forward(ids)
    ids2 = ids.copy()
    ids2[0, 3:] = 5  # still padding: same output
    np.testing.assert_allclose(model.forward(ids2), out)
    longer = np.array([[1, 2, 3, 5, 5]])
    np.testing.assert_allclose(model.forward(longer[:, :3]), out[:1], rtol=1e-10)
    with pytest.raises(ValueError, match=r"TransformerClassifier: pad_id: expected an id in \[0, 6\), got 6"):
        TransformerClassifier(6, 3, 5, pad_id=6)
