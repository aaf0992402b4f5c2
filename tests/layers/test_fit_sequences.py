"""Variable-length sequences through fit, evaluate and predict (book chapter 24): the padded steps are ignored."""

from __future__ import annotations

import numpy as np
import pytest

import layers
import optimizers
from layers.recurrent import sequence_mask
from layers.training.data import SequenceLengths

STEPS, FEATURES = 7, 3


def _padded(seed=0, n=24, garbage=0.0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(1, STEPS + 1, n)
    X = rng.standard_normal((n, STEPS, FEATURES)).astype(np.float32)
    padding = np.arange(STEPS)[None, :] >= lengths[:, None]
    X[padding] = garbage
    y = (X[np.arange(n), lengths - 1, 0] > 0).astype(np.int64)   # the class of the last real step
    return X, y, lengths


def _model():
    return layers.Sequential([layers.LSTM(FEATURES, 5, seed=0), layers.Dense(5, 2, seed=1)])


def _fit(model, X, y=None, **kwargs):
    options = dict(loss=layers.SparseCategoricalCrossEntropy(from_logits=True), optimizer=optimizers.Adam(0.05),
                   epochs=3, batch_size=8, shuffle=True, seed=0, verbose=0)
    options.update(kwargs)
    return model.fit(X, y, **options)


def _same(a, b):
    return all(p.tobytes() == q.tobytes() for p, q in zip(a.params, b.params))


def test_padded_steps_change_nothing_when_the_lengths_are_given():
    X, y, lengths = _padded()
    X_other, _, _ = _padded(garbage=123.0)
    a, b, c = _model(), _model(), _model()
    _fit(a, X, y, sample_lengths=lengths)
    _fit(b, X_other, y, sample_lengths=lengths)
    assert _same(a, b)
    _fit(c, X_other, y)                                  # without the lengths the padding is read
    assert not _same(a, c)


def test_fit_with_lengths_is_the_masked_step_by_hand():
    X, y, lengths = _padded()
    model, by_hand = _model(), _model()
    _fit(model, X, y, sample_lengths=lengths, shuffle=False, epochs=1)
    loss = layers.SparseCategoricalCrossEntropy(from_logits=True)
    optimizer = optimizers.Adam(0.05)
    for s in range(0, len(X), 8):
        mask = sequence_mask(lengths[s:s + 8], STEPS)
        loss.forward(by_hand.forward((X[s:s + 8], None, mask)), y[s:s + 8])
        _, grads = by_hand.backward(loss.backward())
        optimizer.step(by_hand.params, grads)
    assert _same(model, by_hand)


def test_predict_and_evaluate_read_the_lengths():
    X, y, lengths = _padded()
    model = _model()
    _fit(model, X, y, sample_lengths=lengths, validation_data=((X, None, SequenceLengths(lengths, STEPS)), y))
    padded = model.predict(X, batch_size=5, sample_lengths=lengths)
    for i in (0, 3, 11):
        alone = model.predict(X[i:i + 1, :lengths[i]])   # the sequence without its padding
        np.testing.assert_allclose(padded[i:i + 1], alone, rtol=1e-5, atol=1e-6)
    result = model.evaluate(X, y, batch_size=5, sample_lengths=lengths)
    assert result["loss"] == pytest.approx(model.history["val_loss"][-1], rel=1e-6)


def test_a_generator_of_masked_batches_trains_the_same():
    X, y, lengths = _padded()
    model, streamed = _model(), _model()
    _fit(model, X, y, sample_lengths=lengths, shuffle=False, epochs=2)
    batches = [((X[s:s + 8], None, sequence_mask(lengths[s:s + 8], STEPS)), y[s:s + 8]) for s in range(0, 24, 8)]
    _fit(streamed, batches, epochs=2)
    assert _same(model, streamed)


def test_lengths_that_do_not_fit_are_refused():
    X, y, lengths = _padded()
    with pytest.raises(ValueError, match=r"^sample_lengths: expected every length in \[0, 7\]"):
        _fit(_model(), X, y, sample_lengths=lengths + 7)
    with pytest.raises(ValueError, match=r"^sample_lengths: expected one length per sample \(24\), got 3"):
        _fit(_model(), X, y, sample_lengths=lengths[:3])
    with pytest.raises(ValueError, match=r"^sample_lengths: expected X of shape \(samples, steps, features\)"):
        _fit(_model(), X[:, :, 0], y, sample_lengths=lengths)
