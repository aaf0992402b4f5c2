"""Dropout (book section 25.5, slides 002): inverted dropout in training, identity in evaluation."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from layers import Dropout
from layers.testing import check_gradients


def _on(device, array):
    return backend.to_device(np.asarray(array), device)


def test_eval_is_identity(device, rng):
    layer = Dropout(0.5, seed=0).eval()
    x = _on(device, rng.standard_normal((4, 7)).astype(np.float32))
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.shape == x.shape
    np.testing.assert_array_equal(backend.to_numpy(y), backend.to_numpy(x))
    g = _on(device, rng.standard_normal((4, 7)).astype(np.float32))
    grad_input, param_grads = layer.backward(g)
    assert param_grads is None
    np.testing.assert_array_equal(backend.to_numpy(grad_input), backend.to_numpy(g))


def test_rate_zero_is_identity_in_training(device, rng):
    layer = Dropout(0.0, seed=0)
    x = _on(device, rng.standard_normal((3, 5)))
    np.testing.assert_array_equal(backend.to_numpy(layer.forward(x)), backend.to_numpy(x))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_training_output_values_and_dtype(device, rng, dtype):
    rate = 0.25
    layer = Dropout(rate, seed=3)
    x = _on(device, rng.uniform(0.5, 2.0, size=(8, 6, 5)).astype(dtype))
    y = layer.forward(x)
    assert backend.get_array_module(y) is device.xp
    assert y.dtype == dtype and y.shape == x.shape
    assert layer.mask.dtype == dtype
    y_np, x_np = backend.to_numpy(y), backend.to_numpy(x)
    kept = y_np != 0
    assert kept.any() and (~kept).any()
    np.testing.assert_allclose(y_np[kept], x_np[kept] / (1 - rate), rtol=1e-6)
    # backward uses the cached mask: the same units are dropped and scaled
    grad_input, _ = layer.backward(_on(device, np.ones(x.shape, dtype=dtype)))
    assert grad_input.dtype == dtype
    g = backend.to_numpy(grad_input)
    np.testing.assert_array_equal(g != 0, kept)
    np.testing.assert_allclose(g[kept], 1 / (1 - rate), rtol=1e-6)


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_expected_value_is_preserved(device, rate):
    layer = Dropout(rate, seed=2024)
    n = 200_000
    x = _on(device, np.full((n // 100, 100), 1.5, dtype=np.float64))
    y = backend.to_numpy(layer.forward(x))
    # mean of y/1.5 has standard deviation sqrt(rate / ((1 - rate) n)); allow 5 of them
    sigma = np.sqrt(rate / ((1 - rate) * n))
    assert abs(y.mean() / 1.5 - 1.0) < 5 * sigma
    assert abs((y == 0).mean() - rate) < 5 * np.sqrt(rate * (1 - rate) / n)


def test_seed_reproducible_and_reset(device, rng):
    x = _on(device, rng.standard_normal((10, 10)))
    a = Dropout(0.5, seed=11)
    b = Dropout(0.5, seed=11)
    first = backend.to_numpy(a.forward(x))
    np.testing.assert_array_equal(first, backend.to_numpy(b.forward(x)))
    second = backend.to_numpy(a.forward(x))
    assert not np.array_equal(first, second)  # a new mask every step
    a.reset_rng()
    np.testing.assert_array_equal(first, backend.to_numpy(a.forward(x)))


def test_gradient_check_training(device, float64, rng):
    layer = Dropout(0.4, seed=5)
    x = _on(device, rng.standard_normal((5, 6)))
    report = check_gradients(layer, x, reset=lambda layer: layer.reset_rng(5))
    assert report.ok(1e-7), str(report)


def test_gradient_check_eval(device, float64, rng):
    layer = Dropout(0.4, seed=5).eval()
    report = check_gradients(layer, _on(device, rng.standard_normal((3, 4))))
    assert report.ok(1e-7), str(report)


def test_output_shape_and_config():
    layer = Dropout(0.3, seed=1)
    assert layer.output_shape((None, 5)) == (None, 5)
    assert layer.params == [] and layer.count_params() == 0
    assert layer.get_config() == {"args": [0.3], "kwargs": {"seed": 1}}


@pytest.mark.parametrize("rate", [1.0, -0.1, 1.5])
def test_bad_rate_value(rate):
    with pytest.raises(ValueError, match=r"rate: expected a value in \[0.0, 1.0\), got"):
        Dropout(rate)


def test_bad_rate_type():
    with pytest.raises(TypeError, match="rate: expected a number, got str"):
        Dropout("0.5")


def test_bad_seed():
    with pytest.raises(TypeError, match="seed: expected an int or None, got float"):
        Dropout(0.5, seed=1.5)


def test_integer_input_rejected():
    with pytest.raises(TypeError, match="Dropout: input_data: expected a floating-point array.*got dtype int"):
        Dropout(0.5).forward(np.ones((2, 3), dtype=np.int64))


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match="Dropout.backward called before forward"):
        Dropout(0.5).backward(np.ones((2, 3)))


def test_backward_shape_mismatch():
    layer = Dropout(0.5, seed=0)
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
