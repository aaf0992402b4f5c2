"""Convolution2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D and Flatten (book chapter 22)."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from kernels import reference
from layers import (AveragePooling2D, Convolution2D, Flatten, GlobalAveragePooling2D, MaxPooling2D)
from layers.testing import check_gradients


def _distinct_input(shape, seed=0):
    """Values spaced >= 0.01 apart in random order: no ties for max pooling, whatever the finite-difference step."""
    rng = np.random.default_rng(seed)
    n = int(np.prod(shape))
    return (rng.permutation(n) * 0.01 - 0.005 * n).reshape(shape)


# ---------------------------------------------------------------------------
# gradient checks (float64, central differences) on every device
# ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    "kwargs, x_shape",
    [
        (dict(input_channels=2, num_filters=3, kernel_size=3, stride=1, padding=1), (2, 5, 5, 2)),
        (dict(input_channels=1, num_filters=2, kernel_size=(2, 3), stride=(2, 1), padding=(0, 2)), (2, 6, 4, 1)),
        (dict(input_channels=3, num_filters=2, kernel_size=2, stride=3, padding=0), (1, 7, 7, 3)),
    ],
)
def test_convolution_gradients(device, float64, kwargs, x_shape):
    layer = Convolution2D(**kwargs, seed=1)
    layer.biases[...] = backend.to_device(np.linspace(-0.5, 0.5, kwargs["num_filters"]).reshape(-1, 1))
    x = backend.to_device(np.random.default_rng(2).standard_normal(x_shape))
    report = check_gradients(layer, x)
    assert set(report.errors) == {"input", "params[0]", "params[1]"}
    assert report.ok(1e-7), str(report)


@pytest.mark.parametrize(
    "layer_cls, pool, stride, x_shape",
    [
        (MaxPooling2D, (2, 2), None, (2, 4, 6, 2)),
        (MaxPooling2D, (3, 2), (1, 2), (1, 5, 5, 2)),     # overlapping rows, input not divided
        (MaxPooling2D, 2, 3, (1, 7, 8, 1)),                # gaps between windows
        (AveragePooling2D, (2, 2), None, (2, 4, 6, 2)),
        (AveragePooling2D, (3, 3), (2, 1), (1, 6, 5, 2)),  # overlapping
    ],
)
def test_pooling_gradients(device, float64, layer_cls, pool, stride, x_shape):
    layer = layer_cls(pool_size=pool, stride=stride)
    report = check_gradients(layer, backend.to_device(_distinct_input(x_shape)))
    assert report.ok(1e-7), str(report)


def test_global_average_pooling_and_flatten_gradients(device, float64):
    x = backend.to_device(_distinct_input((2, 3, 4, 3)))
    assert check_gradients(GlobalAveragePooling2D(), x).ok(1e-8)
    assert check_gradients(Flatten(), x).ok(1e-8)


# ---------------------------------------------------------------------------
# forward values, shapes, dtypes
# ---------------------------------------------------------------------------
def test_convolution_matches_the_book_loops_and_keeps_params(device, float64):
    layer = Convolution2D(3, 4, (3, 2), stride=(1, 2), padding=1, seed=0)
    assert layer.params[0] is layer.kernels and layer.params[1] is layer.biases
    assert layer.kernels.shape == (4, 3, 3, 2) and layer.biases.shape == (4, 1)
    assert layer.count_params() == 4 * 3 * 3 * 2 + 4
    x_host = np.random.default_rng(3).standard_normal((2, 6, 7, 3))
    out = layer.forward(backend.to_device(x_host))
    expected = reference.conv2d_forward(x_host, backend.to_numpy(layer.kernels), backend.to_numpy(layer.biases),
                                        (1, 2), 1)
    assert out.shape == layer.output_shape(x_host.shape) == expected.shape
    np.testing.assert_allclose(backend.to_numpy(out), expected, rtol=1e-10, atol=1e-12)


def test_layers_keep_float32():
    x = np.random.default_rng(4).standard_normal((2, 6, 6, 2)).astype(np.float32)
    conv = Convolution2D(2, 3, 3, padding=1)
    assert conv.kernels.dtype == np.float32
    y = conv.forward(x)
    grad_input, (grad_kernels, grad_biases) = conv.backward(np.ones_like(y))
    assert y.dtype == grad_input.dtype == grad_kernels.dtype == grad_biases.dtype == np.float32
    for layer in (MaxPooling2D(), AveragePooling2D(), GlobalAveragePooling2D(), Flatten()):
        out = layer.forward(y)
        assert out.dtype == np.float32 and out.shape == layer.output_shape(y.shape)
        grad, params = layer.backward(np.ones_like(out))
        assert grad.dtype == np.float32 and grad.shape == y.shape and params is None


def test_book_defaults_and_shapes():
    pool = MaxPooling2D()
    assert pool.pool_size == (2, 2) and pool.stride == (2, 2)
    assert AveragePooling2D(3, stride=1).stride == (1, 1)
    assert GlobalAveragePooling2D().output_shape((5, 7, 9, 4)) == (5, 1, 1, 4)
    assert Flatten().output_shape((5, 7, 9, 4)) == (5, 7 * 9 * 4)
    assert Convolution2D(3, 8, 5, stride=2, padding=2).output_shape((1, 28, 28, 3)) == (1, 14, 14, 8)
    x = np.arange(2 * 4 * 4 * 1, dtype=np.float64).reshape(2, 4, 4, 1)
    np.testing.assert_array_equal(MaxPooling2D().forward(x)[0, :, :, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(AveragePooling2D().forward(x)[0, :, :, 0], [[2.5, 4.5], [10.5, 12.5]])


def test_max_pooling_tie_gives_gradient_to_first_maximum():
    layer = MaxPooling2D()
    layer.forward(np.ones((1, 2, 2, 1)))
    grad, _ = layer.backward(np.full((1, 1, 1, 1), 2.0))
    np.testing.assert_array_equal(grad[0, :, :, 0], [[2.0, 0.0], [0.0, 0.0]])


def test_weight_init_book_and_seed_reproducibility():
    a = Convolution2D(2, 3, 3, weight_init="book", seed=5)
    b = Convolution2D(2, 3, 3, weight_init="book", seed=5)
    np.testing.assert_array_equal(a.kernels, b.kernels)
    assert 0.002 < float(np.std(a.kernels)) < 0.03  # 0.01 * randn
    he = Convolution2D(4, 16, 3, seed=0)  # he_normal: std sqrt(2 / (C kh kw))
    assert abs(float(np.std(he.kernels)) - np.sqrt(2 / 36)) < 0.05


def test_get_config_rebuilds_the_layer():
    layer = Convolution2D(3, 4, (3, 2), stride=2, padding=(1, 0), weight_init="he_uniform", seed=1)
    config = layer.get_config()
    clone = Convolution2D(*config["args"], **config["kwargs"])
    assert (clone.kernel_size, clone.stride, clone.padding) == ((3, 2), (2, 2), (1, 0))
    np.testing.assert_array_equal(clone.kernels, layer.kernels)
    pool = MaxPooling2D(pool_size=3, stride=1)
    assert MaxPooling2D(**pool.get_config()["kwargs"]).stride == (1, 1)


# ---------------------------------------------------------------------------
# bad input: messages name the argument, the expected and the received value
# ---------------------------------------------------------------------------
def test_convolution_rejects_wrong_channel_count():
    layer = Convolution2D(3, 4, 3)
    with pytest.raises(ValueError, match=r"expected 3 channels.*got shape \(2, 8, 8, 4\)"):
        layer.forward(np.zeros((2, 8, 8, 4), np.float32))


def test_convolution_rejects_kernel_larger_than_padded_input():
    layer = Convolution2D(1, 2, 5, padding=1)
    with pytest.raises(ValueError, match=r"kernel_size \(5, 5\) is larger than the padded input \(4, 4\)"):
        layer.forward(np.zeros((1, 2, 2, 1), np.float32))


def test_pooling_rejects_pool_larger_than_input():
    with pytest.raises(ValueError, match=r"pool_size \(3, 3\) is larger than the input"):
        MaxPooling2D(3).forward(np.zeros((1, 2, 5, 1)))
    with pytest.raises(ValueError, match=r"AveragePooling2D: pool_size \(1, 6\)"):
        AveragePooling2D((1, 6)).forward(np.zeros((1, 2, 5, 1)))


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Convolution2D(3, 4, 3, stride=0), r"stride: expected an integer >= 1, got 0"),
        (lambda: Convolution2D(3, 4, 3, stride=(1, 0)), r"stride\[1\]: expected an integer >= 1, got 0"),
        (lambda: Convolution2D(3, 4, 0), r"kernel_size: expected an integer >= 1, got 0"),
        (lambda: Convolution2D(3, 4, 3, padding=-1), r"padding: expected an integer >= 0, got -1"),
        (lambda: Convolution2D(0, 4, 3), r"input_channels: expected an integer >= 1, got 0"),
        (lambda: MaxPooling2D(pool_size=0), r"pool_size: expected an integer >= 1, got 0"),
        (lambda: AveragePooling2D(pool_size=(2, 2), stride=-1), r"stride: expected an integer >= 1, got -1"),
        (lambda: MaxPooling2D(pool_size=(2, 2, 2)), r"pool_size: expected an int or a pair"),
    ],
)
def test_constructor_arguments_are_checked(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_constructor_rejects_non_integer_sizes():
    with pytest.raises(TypeError, match=r"kernel_size: expected an integer >= 1, got float 2.5"):
        Convolution2D(3, 4, 2.5)


@pytest.mark.parametrize(
    "layer",
    [Convolution2D(1, 1, 1), MaxPooling2D(), AveragePooling2D(), GlobalAveragePooling2D(), Flatten()],
    ids=lambda layer: type(layer).__name__,
)
def test_integer_input_is_rejected(layer):
    with pytest.raises(TypeError, match=r"expected a floating-point array .* got dtype int64"):
        layer.forward(np.zeros((1, 4, 4, 1), dtype=np.int64))


@pytest.mark.parametrize(
    "layer",
    [Convolution2D(1, 1, 1), MaxPooling2D(), AveragePooling2D(), GlobalAveragePooling2D()],
    ids=lambda layer: type(layer).__name__,
)
def test_wrong_ndim_is_rejected(layer):
    with pytest.raises(ValueError, match=r"expected a 4-D array, got shape \(4, 4, 1\) \(3-D\)"):
        layer.forward(np.zeros((4, 4, 1)))


def test_flatten_needs_a_batch_axis():
    with pytest.raises(ValueError, match=r"at least 2 dimensions .* got shape \(5,\)"):
        Flatten().forward(np.zeros(5))


def test_backward_checks_shape_and_order():
    conv = Convolution2D(1, 2, 3)
    with pytest.raises(RuntimeError, match="before forward"):
        conv.backward(np.zeros((1, 2, 2, 2)))
    conv.forward(np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(1, 2, 2, 2\)"):
        conv.backward(np.zeros((1, 3, 3, 2)))
    pool = MaxPooling2D()
    pool.forward(np.zeros((1, 4, 4, 1)))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(1, 2, 2, 1\)"):
        pool.backward(np.zeros((1, 4, 4, 1)))
