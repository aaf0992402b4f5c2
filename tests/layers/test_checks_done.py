"""Checks once per fit, not per call (issue 15, the lean loop): layers.base.checks_done and the training step.

The fast path must compute exactly what the checked path computes (bit for
bit), keep the public forward/backward checked outside it, and be entered by
fit only after the first, checked step of each batch signature.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest

import layers
import optimizers
from layers.base import Layer, checks_done, checks_skipped
from layers.training import loop


def _model(seed=0):
    return layers.Sequential([
        layers.Dense(6, 16, seed=seed), layers.ReLU(), layers.Dropout(0.2, seed=seed),
        layers.Residual(layers.Sequential([layers.Dense(16, 16, seed=seed + 1), layers.PReLU(16)])),
        layers.BatchNormalization(16), layers.get_activation("gelu"), layers.LeakyReLU(0.1),
        layers.Dense(16, 8, seed=seed + 2), layers.Softmax(),
    ])


def _data(n=70, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6)).astype(np.float32)
    y = rng.integers(0, 8, n)
    return X, y


def _fit(model, X, y, **kwargs):
    options = dict(loss=layers.SparseCategoricalCrossEntropy(), optimizer=optimizers.Adam(0.01), epochs=3,
                   batch_size=16, seed=0, verbose=0, l2=1e-3)
    options.update(kwargs)
    return model.fit(X, y, **options)


def test_fits_with_and_without_the_fast_path_give_identical_weights(monkeypatch):
    X, y = _data()
    fast = _model()
    history = _fit(fast, X, y)
    monkeypatch.setattr(loop, "checks_done", contextlib.nullcontext)  # every step fully checked, as before
    checked = _model()
    reference = _fit(checked, X, y)
    for a, b in zip(fast.params + list(fast.buffers.values()), checked.params + list(checked.buffers.values())):
        assert a.tobytes() == b.tobytes()
    assert history["loss"] == reference["loss"]


def test_batch_of_one_dense_gradient_is_the_matmul_one_bit_for_bit():
    rng = np.random.default_rng(0)
    dense = layers.Dense(64, 33, seed=0)
    x = rng.standard_normal((1, 64)).astype(np.float32)
    x[0, ::5] = 0.0
    g = rng.standard_normal((1, 33)).astype(np.float32)
    dense.forward(x)
    _, (grad_w, grad_b) = dense.backward(g)
    assert grad_w.tobytes() == (x.T @ g).tobytes() and grad_w.dtype == np.float32


def test_checks_are_skipped_only_inside_the_block():
    dense = layers.Dense(4, 3, seed=0)
    wrong = np.ones((2, 5), np.float32)
    with pytest.raises(ValueError, match=r"^Dense: input_data: expected 4 features"):
        dense.forward(wrong)
    assert not checks_skipped()
    with checks_done():
        assert checks_skipped()
        with pytest.raises(ValueError) as info:   # numpy's own error: no check ran
            dense.forward(wrong)
        assert not str(info.value).startswith("Dense")
    assert not checks_skipped()
    with pytest.raises(ValueError, match=r"^Dense: input_data"):
        dense.forward(wrong)


def test_checks_done_is_local_to_its_thread():
    seen = []
    with checks_done():
        thread = threading.Thread(target=lambda: seen.append(checks_skipped()))
        thread.start()
        thread.join()
        assert checks_skipped()
    assert seen == [False]


def test_a_loss_inside_the_block_skips_its_target_check_but_computes_the_same():
    loss = layers.SparseCategoricalCrossEntropy(from_logits=True)
    logits = np.random.default_rng(0).standard_normal((5, 3)).astype(np.float32)
    labels = np.array([0, 2, 1, 1, 0])
    value, grad = loss.forward(logits, labels), loss.backward()
    with checks_done():
        assert loss.forward(logits, labels) == value
        assert loss.backward().tobytes() == grad.tobytes()
    with pytest.raises(ValueError, match="label 7 is out of range"):
        loss.forward(logits, np.array([0, 2, 7, 1, 0]))


@layers.register_layer
class _Spy(Layer):
    """Records, per call, whether the layer was asked to skip its checks."""

    def __init__(self):
        super().__init__()
        self.calls = []

    def forward(self, input_data):
        self.calls.append(checks_skipped())
        return input_data

    def backward(self, grad_output):
        return grad_output, None


def test_fit_checks_the_first_step_of_each_batch_shape_and_trusts_the_others():
    X, y = _data(n=40)
    spy = _Spy()
    model = layers.Sequential([spy, layers.Dense(6, 8, seed=0)])
    model.fit(X, y, loss=layers.SparseCategoricalCrossEntropy(from_logits=True), epochs=2, batch_size=16,
              verbose=0, metrics=(), validation_data=(X, y))
    # the dry runs of X and X_val; then per epoch 3 training batches (16, 16, 8) and the validation set in
    # batches of batch_size (16, 16, 8): the first batch of each shape is checked, in training and validation
    first, second = [False, True, False], [True, True, True]
    assert spy.calls == [False, False] + first + first + second + second


def test_the_data_get_no_input_gradient_and_the_parameters_the_same_ones():
    from layers.base import input_gradient_needed, input_gradient_unused

    x = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    inner = layers.Sequential([layers.Dense(6, 5, seed=0), layers.Tanh()])
    model = layers.Sequential([inner, layers.Dense(5, 3, seed=1)])
    g = np.ones((4, 3), np.float32)
    model.forward(x)
    grad_input, grads = model.backward(g)
    with input_gradient_unused(model):
        assert not input_gradient_needed(model) and input_gradient_needed(inner)
        skipped, same = model.backward(g)
    assert grad_input.shape == x.shape and skipped is None     # the first Dense, two blocks down, skipped dE/dx
    assert all(a.tobytes() == b.tobytes() for a, b in zip(grads, same))
    # a block whose input feeds two branches still gets its dE/dx: only a Sequential passes the fact on
    branches = layers.Sequential([layers.Residual(layers.Dense(6, 6, seed=2)), layers.Dense(6, 3, seed=3)])
    branches.forward(x)
    with input_gradient_unused(branches):
        assert branches.backward(g)[0].shape == x.shape
    X, y = _data()
    _fit(layers.Sequential([layers.Residual(layers.Dense(6, 6, seed=2)), layers.Dense(6, 8, seed=3)]), X, y)
