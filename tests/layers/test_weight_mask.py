"""One rule for what is a weight (penalties, weight decay): embedding tables are not (issue 14 review item 6)."""

from __future__ import annotations

import numpy as np

import layers
import optimizers
from layers.base import weight_mask


def _token_model():
    return layers.Sequential([
        layers.Embedding(12, 4, seed=0),                   # 0.W: a table
        layers.LearnedPositionalEmbedding(5, 4, seed=1),   # 1.P: a table
        layers.LayerNormalization(4),                      # 2.gamma, 2.beta
        layers.Flatten(),
        layers.Dense(20, 3, seed=2),                       # 4.W: the only weight, 4.b a bias
    ])


def test_the_rule_leaves_out_tables_biases_and_normalization():
    model = _token_model()
    assert dict(zip(model.param_names(), weight_mask(model))) == {
        "0.W": False, "1.P": False, "2.gamma": False, "2.beta": False, "4.W": True, "4.b": False}
    vit = layers.Sequential([layers.PatchEmbedding(2, 4, input_channels=1, seed=0), layers.ClassToken(4)])
    # the patch projection is a weight (a convolution), the class token a table
    assert dict(zip(vit.param_names(), weight_mask(vit))) == {"0.W": True, "0.b": False, "1.token": False}
    assert optimizers.decay_mask(model) == weight_mask(model)   # AdamW's default rule is the same rule


def _one_step(model, ids, labels, **fit_options):
    model.fit(ids, labels, loss=layers.SparseCategoricalCrossEntropy(from_logits=True), epochs=1,
              batch_size=len(ids), shuffle=False, verbose=0, metrics=(), **fit_options)


def _gradients(model, ids, labels):
    loss = layers.SparseCategoricalCrossEntropy(from_logits=True)
    loss.forward(model.forward(ids), labels)
    return model.backward(loss.backward())[1]


def test_fit_l2_updates_the_table_without_its_penalty_by_hand():
    rng = np.random.default_rng(0)
    ids, labels = rng.integers(0, 12, (6, 5)), rng.integers(0, 3, 6)
    model = _token_model()
    before = [p.copy() for p in model.params]
    grads = _gradients(_token_model(), ids, labels)
    lr, l2 = 0.1, 0.5
    _one_step(model, ids, labels, optimizer=optimizers.SGD(lr), l2=l2)
    for name, p, p0, g, is_weight in zip(model.param_names(), model.params, before, grads, weight_mask(model)):
        expected = p0 - lr * (g + 2.0 * l2 * p0) if is_weight else p0 - lr * g
        np.testing.assert_allclose(p, expected, rtol=1e-6, atol=1e-7, err_msg=name)
    table_rows_unseen = np.setdiff1d(np.arange(12), ids)
    np.testing.assert_array_equal(model.params[0][table_rows_unseen], before[0][table_rows_unseen])


def test_adamw_without_a_mask_decays_only_the_weights_in_fit():
    rng = np.random.default_rng(1)
    ids, labels = rng.integers(0, 12, (6, 5)), rng.integers(0, 3, 6)
    plain, decayed = _token_model(), _token_model()
    _one_step(plain, ids, labels, optimizer=optimizers.Adam(0.1, epsilon=1e-7))
    _one_step(decayed, ids, labels, optimizer=optimizers.AdamW(0.1, weight_decay=0.3, epsilon=1e-7))
    for name, a, b in zip(plain.param_names(), plain.params, decayed.params):
        if name == "4.W":
            assert not np.allclose(a, b)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-7, atol=0, err_msg=name)   # not decayed
    # and the decay is the hand-computed one: zero gradients, only the decay moves the weights
    model = _token_model()
    before = [p.copy() for p in model.params]
    optimizer = optimizers.AdamW(0.1, weight_decay=0.3)
    optimizer.step(model.params, [np.zeros_like(p) for p in model.params], weight_mask=weight_mask(model))
    for name, p, p0 in zip(model.param_names(), model.params, before):
        np.testing.assert_allclose(p, p0 * (1 - 0.1 * 0.3) if name == "4.W" else p0, rtol=1e-6, err_msg=name)
