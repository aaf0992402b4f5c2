"""BatchNormalization and LayerNormalization (book section 25.3)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

import backend
from layers import BatchNormalization, LayerNormalization
from layers.testing import check_gradients


def _on(device, array):
    return backend.to_device(np.asarray(array), device)


def _set(array, values):
    """Write ``values`` into a (NumPy or CuPy) parameter in place."""
    array[...] = backend.to_device(np.asarray(values, dtype=array.dtype), backend.device_of(array))


def _reference_bn(x, gamma, beta, mean, var, eps, axis=-1):
    shape = [1] * x.ndim
    shape[axis] = -1
    r = lambda a: np.asarray(a).reshape(shape)  # noqa: E731
    return r(gamma) * (x - r(mean)) / np.sqrt(r(var) + eps) + r(beta)


# -- BatchNormalization: forward and running statistics -----------------------

@pytest.mark.parametrize("shape", [(16, 5), (4, 3, 3, 5)], ids=["dense", "nhwc"])
def test_bn_training_standardises_each_feature(device, rng, shape):
    layer = BatchNormalization(5)
    x_np = rng.normal(3.0, 2.0, size=shape).astype(np.float32)
    y = layer.forward(_on(device, x_np))
    assert y.dtype == np.float32 and y.shape == shape
    y = backend.to_numpy(y).reshape(-1, 5)
    np.testing.assert_allclose(y.mean(axis=0), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=0), 1.0, rtol=1e-3)


def test_bn_running_stats_update_formula(device, float64, rng):
    momentum, eps = 0.8, 1e-3
    layer = BatchNormalization(4, momentum=momentum, epsilon=eps)
    expected_mean, expected_var = np.zeros(4), np.ones(4)
    for step in range(3):
        x = rng.normal(step, 1.0 + step, size=(10, 4))
        layer.forward(_on(device, x))
        expected_mean = momentum * expected_mean + (1 - momentum) * x.mean(axis=0)
        expected_var = momentum * expected_var + (1 - momentum) * x.var(axis=0)  # biased variance
        np.testing.assert_allclose(backend.to_numpy(layer.running_mean), expected_mean, rtol=1e-12)
        np.testing.assert_allclose(backend.to_numpy(layer.running_var), expected_var, rtol=1e-12)
    # the buffers are the saved/moved state, not copies
    assert layer.buffers["running_mean"] is layer.running_mean
    assert set(layer.buffers) == {"running_mean", "running_var"}


def test_bn_nhwc_running_stats_over_batch_and_space(device, float64, rng):
    layer = BatchNormalization(3, momentum=0.5)
    x = rng.normal(size=(2, 4, 5, 3))
    layer.forward(_on(device, x))
    np.testing.assert_allclose(backend.to_numpy(layer.running_mean), 0.5 * x.mean(axis=(0, 1, 2)), rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(layer.running_var),
                               0.5 + 0.5 * x.var(axis=(0, 1, 2)), rtol=1e-12)


def test_bn_eval_uses_running_stats(device, float64, rng):
    layer = BatchNormalization(3, epsilon=1e-3)
    gamma, beta = rng.uniform(0.5, 2, 3), rng.normal(size=3)
    mean, var = rng.normal(size=3), rng.uniform(0.5, 3, 3)
    _set(layer.gamma, gamma), _set(layer.beta, beta)
    _set(layer.running_mean, mean), _set(layer.running_var, var)
    layer.eval()
    x = rng.normal(size=(1, 3))  # a batch of one is fine in evaluation
    y = layer.forward(_on(device, x))
    np.testing.assert_allclose(backend.to_numpy(y), _reference_bn(x, gamma, beta, mean, var, 1e-3), rtol=1e-12)
    # evaluation does not touch the running statistics
    np.testing.assert_array_equal(backend.to_numpy(layer.running_mean), mean)


def test_bn_training_matches_reference_with_affine(device, float64, rng):
    layer = BatchNormalization(4)
    gamma, beta = rng.uniform(0.5, 2, 4), rng.normal(size=4)
    _set(layer.gamma, gamma), _set(layer.beta, beta)
    x = rng.normal(size=(6, 4))
    y = backend.to_numpy(layer.forward(_on(device, x)))
    np.testing.assert_allclose(y, _reference_bn(x, gamma, beta, x.mean(0), x.var(0), 1e-5), rtol=1e-10)


def test_bn_axis_1_channels_first(device, float64, rng):
    layer = BatchNormalization(3, axis=1)
    x = rng.normal(size=(2, 3, 4, 4))
    y = backend.to_numpy(layer.forward(_on(device, x)))
    np.testing.assert_allclose(y.mean(axis=(0, 2, 3)), 0.0, atol=1e-12)
    assert y.shape == x.shape


def test_bn_params_and_buffers_move_with_astype():
    layer = BatchNormalization(4)
    assert [p.shape for p in layer.params] == [(4,), (4,)]
    assert layer.count_params() == 8
    assert layer.gamma.dtype == np.float32 and layer.running_var.dtype == np.float32
    layer.astype(np.float64)
    assert layer.params[0] is layer.gamma and layer.gamma.dtype == np.float64
    assert layer.running_mean.dtype == np.float64 and layer.running_var.dtype == np.float64
    assert layer.output_shape((None, 4)) == (None, 4)


def test_bn_float32_kept_in_backward(device, rng):
    for training in (True, False):
        layer = BatchNormalization(5).train(training)
        x = _on(device, rng.normal(size=(2, 3, 3, 5)).astype(np.float32))
        y = layer.forward(x)
        grad_input, (grad_gamma, grad_beta) = layer.backward(_on(device, np.ones(y.shape, np.float32)))
        assert y.dtype == grad_input.dtype == grad_gamma.dtype == grad_beta.dtype == np.float32
        assert layer.running_mean.dtype == np.float32
        assert grad_input.shape == x.shape and grad_gamma.shape == grad_beta.shape == (5,)


# -- BatchNormalization: gradients ---------------------------------------------

def _bn_with_random_affine(num_features, rng, **kwargs):
    layer = BatchNormalization(num_features, **kwargs)
    _set(layer.gamma, rng.uniform(0.5, 2, num_features))
    _set(layer.beta, rng.normal(size=num_features))
    return layer


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 4)], ids=["dense", "nhwc"])
def test_bn_gradient_check_training(device, float64, rng, shape):
    layer = _bn_with_random_affine(4, rng)
    report = check_gradients(layer, _on(device, rng.normal(1.0, 2.0, size=shape)))
    assert report.ok(1e-6), str(report)


def test_bn_gradient_check_training_axis_1(device, float64, rng):
    layer = _bn_with_random_affine(3, rng, axis=1)
    report = check_gradients(layer, _on(device, rng.normal(size=(2, 3, 2, 2))))
    assert report.ok(1e-6), str(report)


def test_bn_gradient_check_eval(device, float64, rng):
    layer = _bn_with_random_affine(4, rng)
    _set(layer.running_mean, rng.normal(size=4))
    _set(layer.running_var, rng.uniform(0.5, 2, 4))
    layer.eval()
    report = check_gradients(layer, _on(device, rng.normal(size=(5, 4))))
    assert report.ok(1e-6), str(report)


# -- BatchNormalization: bad input ---------------------------------------------

def test_bn_wrong_feature_count():
    with pytest.raises(ValueError, match=r"expected 4 features on axis -1, got shape \(2, 3\)"):
        BatchNormalization(4).forward(np.ones((2, 3), np.float32))


def test_bn_nhwc_wrong_channels():
    with pytest.raises(ValueError, match=r"expected 3 features on axis -1, got shape \(2, 4, 4, 1\)"):
        BatchNormalization(3).forward(np.ones((2, 4, 4, 1), np.float32))


def test_bn_one_dimensional_input():
    with pytest.raises(ValueError, match=r"at least 2 dimensions.*got shape \(4,\)"):
        BatchNormalization(4).forward(np.ones(4, np.float32))


def test_bn_batch_of_one_in_training():
    with pytest.raises(ValueError, match=r"more than 1 value per feature in training.*got shape \(1, 4\)"):
        BatchNormalization(4).forward(np.ones((1, 4), np.float32))


def test_bn_integer_input():
    with pytest.raises(TypeError, match="BatchNormalization: input_data: expected a floating-point array"):
        BatchNormalization(2).forward(np.ones((3, 2), np.int32))


def test_bn_axis_out_of_range():
    with pytest.raises(ValueError, match="axis: expected an axis of the 2-D input_data"):
        BatchNormalization(2, axis=3).forward(np.ones((3, 2), np.float32))


@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"num_features": 0}, ValueError, "num_features: expected an integer >= 1, got 0"),
        ({"num_features": 2.0}, TypeError, "num_features: expected an integer >= 1, got float"),
        ({"num_features": 2, "momentum": 1.0}, ValueError, r"momentum: expected a value in \[0.0, 1.0\), got 1.0"),
        ({"num_features": 2, "epsilon": 0.0}, ValueError, "epsilon: expected a number > 0, got 0.0"),
        ({"num_features": 2, "axis": "last"}, TypeError, "axis: expected an int, got str"),
    ],
)
def test_bn_bad_constructor_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):
        BatchNormalization(**kwargs)


def test_bn_backward_before_forward():
    with pytest.raises(RuntimeError, match="BatchNormalization.backward called before forward"):
        BatchNormalization(2).backward(np.ones((3, 2)))


# -- LayerNormalization --------------------------------------------------------

def test_ln_standardises_each_sample(device, rng):
    layer = LayerNormalization(6)
    x = _on(device, rng.normal(2.0, 3.0, size=(4, 6)).astype(np.float32))
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.shape == (4, 6)
    y = backend.to_numpy(y)
    np.testing.assert_allclose(y.mean(axis=1), 0.0, atol=1e-5)
    np.testing.assert_allclose(y.var(axis=1), 1.0, rtol=1e-3)


def test_ln_independent_of_batch_and_mode(device, float64, rng):
    layer = LayerNormalization(5)
    _set(layer.gamma, rng.uniform(0.5, 2, 5)), _set(layer.beta, rng.normal(size=5))
    x = rng.normal(size=(3, 5))
    whole = backend.to_numpy(layer.forward(_on(device, x)))
    single = backend.to_numpy(layer.eval().forward(_on(device, x[1:2])))
    np.testing.assert_allclose(single, whole[1:2], rtol=1e-12)


@pytest.mark.parametrize(
    "normalized_shape, shape", [(4, (5, 4)), (4, (2, 3, 4)), ((3, 4), (2, 3, 4))], ids=["2d", "3d-last", "3d-two"]
)
def test_ln_gradient_check(device, float64, rng, normalized_shape, shape):
    layer = LayerNormalization(normalized_shape)
    ns = layer.normalized_shape
    _set(layer.gamma, rng.uniform(0.5, 2, ns)), _set(layer.beta, rng.normal(size=ns))
    report = check_gradients(layer, _on(device, rng.normal(size=shape)))
    assert report.ok(1e-6), str(report)


@pytest.mark.parametrize("center, scale", [(False, True), (True, False), (False, False)])
def test_ln_without_gamma_or_beta(device, float64, rng, center, scale):
    layer = LayerNormalization(4, center=center, scale=scale)
    assert len(layer.params) == int(center) + int(scale)
    report = check_gradients(layer, _on(device, rng.normal(size=(3, 4))))
    assert report.ok(1e-6), str(report)


def test_ln_float32_kept_in_backward(device, rng):
    layer = LayerNormalization(3)
    x = _on(device, rng.normal(size=(2, 4, 3)).astype(np.float32))
    y = layer.forward(x)
    grad_input, grads = layer.backward(_on(device, np.ones(y.shape, np.float32)))
    assert grad_input.dtype == np.float32 and grad_input.shape == x.shape
    assert [g.dtype for g in grads] == [np.float32, np.float32] and [g.shape for g in grads] == [(3,), (3,)]


def test_ln_wrong_feature_size():
    with pytest.raises(ValueError,
                       match=r"LayerNormalization: input_data: expected shape \(batch, \.\.\., 4\), got \(2, 3\)"):
        LayerNormalization(4).forward(np.ones((2, 3), np.float32))


def test_ln_needs_a_batch_axis():
    with pytest.raises(ValueError, match=r"expected shape \(batch, \.\.\., 4\), got \(4,\)"):
        LayerNormalization(4).forward(np.ones(4, np.float32))


@pytest.mark.parametrize(
    "args, error, message",
    [
        ((0,), ValueError, "normalized_shape: expected an integer >= 1, got 0"),
        (((3, 0),), ValueError, r"normalized_shape\[1\]: expected an integer >= 1, got 0"),
        (((),), ValueError, "normalized_shape: expected an int or a non-empty tuple"),
        ((4, -1e-5), ValueError, "epsilon: expected a number > 0, got -1e-05"),
    ],
)
def test_ln_bad_constructor_arguments(args, error, message):
    with pytest.raises(error, match=message):
        LayerNormalization(*args)


def test_ln_deepcopy_and_config():
    layer = LayerNormalization(4, epsilon=1e-3)
    clone = copy.deepcopy(layer)
    assert clone.gamma is not layer.gamma and clone.params[0] is clone.gamma
    assert layer.get_config() == {"args": [4], "kwargs": {"epsilon": 1e-3}}
