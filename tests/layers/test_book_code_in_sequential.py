"""The book's own code blocks, pasted as user code, train inside a Sequential.

Sigmoid (section 7.4.1), Tanh (7.5.1), HardTanh (7.7.1), ReLU (8.2.1) and
LeakyReLU (8.4.1.1) are copied from ``000_8814347de1640870.txt`` as printed
(in ``book_code_blocks.py`` beside this file). They subclass
``layers.base.Layer`` exactly as the book imports it; nothing in them knows
about Sequential, devices or dtypes. Some of them promote float32 gradients to
float64 (``np.where(..., 1, 0)`` gives int64, ``np.where(..., 1, alpha)``
float64): Sequential and the optimizers must still train them.
"""

from __future__ import annotations

import numpy as np
import pytest

import layers
from layers.testing import check_gradients
from optimizers import SGD
from tests.layers.book_code_blocks import HardTanh, LeakyReLU, ReLU, Sigmoid, Tanh


BOOK_ACTIVATIONS = [Sigmoid, Tanh, HardTanh, ReLU, LeakyReLU]

# A small smooth regression: y = sin(x1) + x2^2 / 2 on [-1.5, 1.5]^2.
_rng = np.random.default_rng(0)
X_REG = _rng.uniform(-1.5, 1.5, size=(64, 2)).astype(np.float32)
Y_REG = (np.sin(X_REG[:, :1]) + 0.5 * X_REG[:, 1:] ** 2).astype(np.float32)


def _model(activation, seed=0):
    init = "he_normal" if activation in (ReLU, LeakyReLU) else "xavier_uniform"
    return layers.Sequential([
        layers.Dense(2, 16, weight_init=init, seed=seed),
        activation(),
        layers.Dense(16, 1, weight_init="xavier_uniform", seed=seed + 1),
    ])


@pytest.mark.parametrize("activation", BOOK_ACTIVATIONS, ids=lambda c: c.__name__)
def test_book_activation_trains_inside_sequential(activation):
    model = _model(activation)
    history = model.fit(X_REG, Y_REG, loss="mse", optimizer=SGD(0.1), epochs=60, batch_size=16,
                        seed=0, verbose=0)
    losses = history.history["loss"]
    assert len(losses) == 60 and all(np.isfinite(losses))
    assert losses[-1] < 0.5 * losses[0], f"{activation.__name__}: loss {losses[0]:.4f} -> {losses[-1]:.4f}"
    # Training moved the layers' own arrays (in place, references kept).
    assert model.layers[0].params[0] is model.layers[0].W
    prediction = model.predict(X_REG)
    assert prediction.shape == (64, 1)
    assert model.evaluate(X_REG, Y_REG)["loss"] < losses[0]


@pytest.mark.parametrize("activation", BOOK_ACTIVATIONS, ids=lambda c: c.__name__)
def test_book_activation_backward_matches_central_differences(activation, float64):
    model = _model(activation)
    # Inputs drawn so that no pre-activation sits on a kink (0 for the rectifiers, ±1 for HardTanh).
    x = np.random.default_rng(3).uniform(-1.0, 1.0, size=(5, 2))
    pre = x @ model.layers[0].W + model.layers[0].b
    assert np.min(np.abs(pre)) > 1e-4 and np.min(np.abs(np.abs(pre) - 1)) > 1e-4  # eps = 1e-6
    report = check_gradients(model, x)
    assert report.ok(1e-6), str(report)


def test_book_xor_with_sigmoid_and_integer_inputs():
    """XOR written with Python ints, as a reader would type it."""
    X = [[0, 0], [0, 1], [1, 0], [1, 1]]
    y = np.array([[0], [1], [1], [0]], dtype=np.float32)
    model = layers.Sequential([layers.Dense(2, 4, seed=3), Tanh(), layers.Dense(4, 1, seed=4), Sigmoid()])
    history = model.fit(X, y, loss="bce", optimizer=SGD(1.0), epochs=400, batch_size=4, verbose=0, seed=0)
    assert history.history["accuracy"][-1] == 1.0
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_dead_units_of_the_book_relu_are_tracked():
    """The book's ReLU is recognised by its class name for the dead-unit diagnostic (section 8.3)."""
    model = _model(ReLU)
    history = model.fit(X_REG, Y_REG, loss="mse", optimizer=SGD(0.05), epochs=2, batch_size=32, verbose=0,
                        track_gradients=True)
    assert history.labels["dead_relu_fraction"] == ["1:ReLU"]
    assert all(0.0 <= f[0] <= 1.0 for f in history.history["dead_relu_fraction"])
