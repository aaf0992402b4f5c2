"""The worked backpropagation example of slides 003 (``003_801f8a568d974c66.txt``).

x = (2, 3), W = [[.11, .12], [.21, .08]], w2 = [.14, .15], identity activation,
no bias, y = 1, E = 1/2 (o - y)^2 (the book's eq. 6.4, MeanSquaredError(reduction="book")),
one step of gradient descent with learning rate 0.05.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend
import layers
from layers.losses import MeanSquaredError
from optimizers import SGD

X = np.array([[2.0, 3.0]])
Y = np.array([[1.0]])


def slide_model():
    hidden = layers.Dense(2, 2, use_bias=False)
    output = layers.Dense(2, 1, use_bias=False)
    hidden.W[...] = backend.to_device(np.array([[0.11, 0.12], [0.21, 0.08]]), backend.device_of(hidden.W))
    output.W[...] = backend.to_device(np.array([[0.14], [0.15]]), backend.device_of(output.W))
    # identity activation: nothing between the two Dense layers
    return layers.Sequential([hidden, output])


def test_forward_before_the_step(float64, device):
    model = slide_model()
    assert model.params[0].dtype == np.float64
    x = backend.to_device(X, device)
    hidden = model.layers[0].forward(x)
    np.testing.assert_allclose(backend.to_numpy(hidden), [[0.85, 0.48]], atol=1e-12)
    o = model.forward(x)
    assert o.shape == (1, 1) and o.dtype == np.float64
    assert float(o[0, 0]) == pytest.approx(0.191, abs=1e-12)
    error = MeanSquaredError(reduction="book").forward(o, backend.to_device(Y, device))
    assert round(error, 3) == 0.327
    assert error == pytest.approx(0.5 * 0.809**2, abs=1e-12)


def test_one_gradient_descent_step(float64, device):
    model = slide_model()
    loss = MeanSquaredError(reduction="book")
    x, y = backend.to_device(X, device), backend.to_device(Y, device)
    o = model.forward(x)
    loss.forward(o, y)
    grad_o = loss.backward()
    assert float(grad_o[0, 0]) == pytest.approx(-0.809)  # Δ = o - y
    _, grads = model.backward(grad_o)
    SGD(learning_rate=0.05).step(model.params, grads)

    # The slides' updated weights, printed with two decimals.
    np.testing.assert_allclose(backend.to_numpy(model.params[1]).ravel(), [0.17, 0.17], atol=0.005)
    np.testing.assert_allclose(backend.to_numpy(model.params[0]), [[0.12, 0.13], [0.23, 0.10]], atol=0.005)
    # Exact values: w2' = w2 - 0.05 Δ h, W' = W - 0.05 Δ x^T w2^T.
    np.testing.assert_allclose(backend.to_numpy(model.params[1]).ravel(),
                               [0.14 + 0.05 * 0.809 * 0.85, 0.15 + 0.05 * 0.809 * 0.48], rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(model.params[0]),
                               np.array([[0.11, 0.12], [0.21, 0.08]]) + 0.05 * 0.809 * np.outer([2, 3], [0.14, 0.15]),
                               rtol=1e-12)

    o_after = float(model.forward(x)[0, 0])
    error_after = loss.forward(model.forward(x), y)
    assert round(o_after, 2) == 0.26
    # The slide prints "Erro = 0.273": that is 1/2 (0.26 - 1)^2 = 0.2738, with o rounded to
    # 0.26 first. With the exact o = 0.25575 the error is 0.27696, about 0.277: test the exact value.
    assert o_after == pytest.approx(0.255746, abs=1e-6)
    assert error_after == pytest.approx(0.5 * (o_after - 1.0) ** 2, abs=1e-15)
    assert round(error_after, 3) == 0.277


def test_same_step_through_fit(float64):
    model = slide_model()
    history = model.fit(X, Y, loss=MeanSquaredError(reduction="book"), optimizer=SGD(0.05), epochs=1,
                        batch_size=1, shuffle=False, verbose=0)
    # The loss logged for the epoch is the error before the update.
    assert history.history["loss"] == [pytest.approx(0.5 * 0.809**2)]
    assert float(model.predict(X)[0, 0]) == pytest.approx(0.255746, abs=1e-6)
