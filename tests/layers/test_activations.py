"""Activation layers (book chapters 7-9, section 11.1): gradients, dtypes, limits, train/eval, lookup, errors."""

from __future__ import annotations

import numpy as np
import pytest

import backend
import layers
from layers import (ELU, GELU, SELU, HardSigmoid, HardTanh, LeakyReLU, Mish, NoisyReLU, PReLU, ReLU, RReLU,
                    Sigmoid, SiLU, Softmax, Softplus, Softsign, Swish, Tanh, get_activation)
from layers.activations import ACTIVATION_NAMES
from layers.testing import check_gradients

FACTORIES = {
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softsign": Softsign,
    "hard_sigmoid": HardSigmoid,
    "hard_tanh": HardTanh,
    "relu": ReLU,
    "leaky_relu": lambda: LeakyReLU(alpha=0.1),
    "prelu": PReLU,
    "prelu_channels": lambda: PReLU(num_parameters=5, init=0.2),
    "rrelu": lambda: RReLU(seed=3),
    "elu": lambda: ELU(alpha=0.7),
    "selu": SELU,
    "noisy_relu": lambda: NoisyReLU(std=0.3, seed=4),
    "gelu": GELU,
    "gelu_tanh": lambda: GELU(approximate="tanh"),
    "silu": SiLU,
    "softplus": Softplus,
    "mish": Mish,
    "softmax": Softmax,
    "softmax_axis0": lambda: Softmax(axis=0),
}


def _on(device, array):
    return backend.to_device(np.asarray(array), device)


def _build(key, device, dtype):
    """``FACTORIES[key]()`` built on ``device`` with ``dtype`` as the default dtype (restored afterwards)."""
    with backend.use_device(device.name):
        previous = backend.set_default_dtype(dtype)
        try:
            return FACTORIES[key]()
        finally:
            backend.set_default_dtype(previous)


def _away_from_kinks(rng, shape):
    """|x| in [0.2, 2.8] and 0.1 away from +-1: no kink of ReLU (0), HardTanh (+-1) or HardSigmoid (+-3)."""
    magnitude = rng.uniform(0.2, 2.8, shape)
    magnitude = np.where(np.abs(magnitude - 1.0) < 0.1, magnitude + 0.25, magnitude)
    return magnitude * rng.choice([-1.0, 1.0], shape)


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("key", list(FACTORIES))
def test_gradient_check(device, float64, key):
    rng = np.random.default_rng(11)
    layer = FACTORIES[key]()
    x = _on(device, _away_from_kinks(rng, (4, 5)))
    reset = (lambda layer: layer.reset_rng(0)) if key in ("rrelu", "noisy_relu") else None
    report = check_gradients(layer, x, reset=reset)
    assert report.ok(1e-6), f"{key}:\n{report}"
    if isinstance(layer, PReLU):
        assert set(report.errors) == {"input", "params[0]"}


def test_prelu_alpha_gradient_by_hand(float64):
    layer = PReLU(num_parameters=2, init=0.5)
    x = np.array([[-1.0, 2.0], [-3.0, -4.0]])
    g = np.array([[1.0, 1.0], [2.0, 0.5]])
    y = layer.forward(x)
    np.testing.assert_allclose(y, [[-0.5, 2.0], [-1.5, -2.0]])
    grad_input, (grad_alpha,) = layer.backward(g)
    np.testing.assert_allclose(grad_input, [[0.5, 1.0], [1.0, 0.25]])
    np.testing.assert_allclose(grad_alpha, [-1.0 + -6.0, -2.0])  # sum of x g over x <= 0, per channel
    assert grad_alpha.shape == layer.alpha.shape


def test_prelu_alpha_updates_in_place_are_seen():
    layer = PReLU()
    layer.params[0][...] = 0.5  # what an optimizer does
    y = layer.forward(np.array([-2.0, 2.0], np.float32))
    np.testing.assert_array_equal(y, [-1.0, 2.0])
    assert layer.count_params() == 1


# ----------------------------------------------------------------------------- dtype, shape, limits
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", list(FACTORIES))
def test_dtype_and_shape_preserved(device, key, dtype):
    layer = _build(key, device, dtype)
    rng = np.random.default_rng(0)
    x = _on(device, rng.standard_normal((3, 4, 5)).astype(dtype))
    y = layer.forward(x)
    assert y.dtype == dtype and y.shape == x.shape
    grad_input, param_grads = layer.backward(_on(device, np.ones((3, 4, 5), dtype)))
    assert grad_input.dtype == dtype and grad_input.shape == x.shape
    if param_grads is not None:
        assert [p.dtype for p in param_grads] == [dtype] * len(param_grads)
    assert layer.output_shape((3, 4, 5)) == (3, 4, 5)


def test_float32_layer_casts_a_float64_grad_output():
    layer = Sigmoid()
    y = layer.forward(np.zeros(4, np.float32))
    grad_input, _ = layer.backward(np.ones(4))  # float64, e.g. from a loss
    assert grad_input.dtype == np.float32
    np.testing.assert_allclose(grad_input, 0.25)
    assert y.dtype == np.float32


def test_float16_input_is_refused_naming_the_argument():
    x = np.linspace(-3, 3, 13).astype(np.float16)
    for key in ("sigmoid", "gelu", "relu", "noisy_relu", "rrelu"):
        layer = FACTORIES[key]()
        with pytest.raises(TypeError, match=r"input_data: expected a float32 or float64 array, got dtype float16 "
                                            r"\(float16 is not supported"):
            layer.forward(x)


LIMITS = {  # forward at (-1000, 1000) in evaluation mode
    "sigmoid": (0, 1), "tanh": (-1, 1), "softsign": (-1000 / 1001, 1000 / 1001), "hard_sigmoid": (0, 1),
    "hard_tanh": (-1, 1), "relu": (0, 1000), "leaky_relu": (-100, 1000), "prelu": (-250, 1000),
    "prelu_channels": (-200, 1000), "rrelu": (-1000 * 11 / 48, 1000), "elu": (-0.7, 1000),
    "selu": (-SELU.SCALE * SELU.ALPHA, 1000 * SELU.SCALE), "noisy_relu": (0, 1000), "gelu": (0, 1000),
    "gelu_tanh": (0, 1000), "silu": (0, 1000), "softplus": (0, 1000), "mish": (0, 1000),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("key", list(FACTORIES))
def test_plus_minus_1000_no_warning_right_limits(device, key, dtype):
    """RuntimeWarnings are errors (pyproject.toml): overflow anywhere would fail this test."""
    layer = _build(key, device, dtype).eval()
    if key.startswith("softmax"):
        x = np.full((2, 5), -1000.0)
        x[0, 2] = 1000.0
        x[1, 4] = 1000.0
        x = _on(device, x.astype(dtype))
        y = backend.to_numpy(layer.forward(x))
        expected = np.zeros((2, 5))
        if key == "softmax":
            expected[0, 2] = expected[1, 4] = 1.0
        else:  # axis 0: columns 2 and 4 have one +1000 each; the others are ties
            expected[:] = 0.5
            expected[:, 2] = [1.0, 0.0]
            expected[:, 4] = [0.0, 1.0]
        np.testing.assert_allclose(y, expected, atol=1e-12)
        grad_input, _ = layer.backward(_on(device, np.ones((2, 5), dtype)))
        np.testing.assert_allclose(backend.to_numpy(grad_input), 0.0, atol=1e-6)
        return
    channels = 5 if key == "prelu_channels" else 2
    x_np = np.array([[-1000.0] * channels, [1000.0] * channels], dtype)
    y = backend.to_numpy(layer.forward(_on(device, x_np)))
    lo, hi = LIMITS[key]
    np.testing.assert_allclose(y[0], lo, rtol=1e-6, atol=0)
    np.testing.assert_allclose(y[1], hi, rtol=1e-6, atol=0)
    grad_input, _ = layer.backward(_on(device, np.ones_like(x_np)))
    grad_input = backend.to_numpy(grad_input)
    assert np.all(np.isfinite(grad_input)) and grad_input.dtype == dtype


# ----------------------------------------------------------------------------- training vs evaluation
def test_rrelu_training_draws_slopes_evaluation_uses_the_mean(device):
    layer = RReLU(lower=0.1, upper=0.3, seed=0)
    x = _on(device, -np.ones((50, 40), np.float32))
    y_train = backend.to_numpy(layer.forward(x))
    slopes = -y_train
    assert slopes.min() >= 0.1 and slopes.max() < 0.3 and len(np.unique(slopes)) > 100
    y_again = backend.to_numpy(layer.forward(x))
    assert not np.array_equal(y_again, y_train)  # new slopes every pass
    grad_input, _ = layer.backward(_on(device, np.ones((50, 40), np.float32)))
    np.testing.assert_array_equal(backend.to_numpy(grad_input), -y_again)  # the same slopes as that forward
    layer.reset_rng(0)
    np.testing.assert_array_equal(backend.to_numpy(layer.forward(x)), y_train)  # seeded

    layer.eval()
    y_eval = backend.to_numpy(layer.forward(x))
    np.testing.assert_allclose(y_eval, -0.2, rtol=1e-6)
    positive = backend.to_numpy(layer.forward(_on(device, np.full((2, 2), 3.0, np.float32))))
    np.testing.assert_array_equal(positive, 3.0)


def test_noisy_relu_noise_only_on_active_units_in_training(device):
    layer = NoisyReLU(std=0.5, seed=1)
    x_np = np.where(np.arange(20000) % 2 == 0, 2.0, -2.0).astype(np.float64).reshape(100, 200)
    x = _on(device, x_np)
    y = backend.to_numpy(layer.forward(x))
    active = x_np > 0
    np.testing.assert_array_equal(y[~active], 0.0)  # eq. 8.13: no noise where x <= 0
    noise = y[active] - 2.0
    assert abs(noise.mean()) < 0.02 and abs(noise.std() - 0.5) < 0.02
    grad_input, _ = layer.backward(_on(device, np.ones_like(x_np)))
    np.testing.assert_array_equal(backend.to_numpy(grad_input), active.astype(np.float64))  # eq. 8.14

    layer.eval()
    np.testing.assert_array_equal(backend.to_numpy(layer.forward(x)), np.maximum(x_np, 0))
    assert NoisyReLU(std=0.0).forward(np.array([1.5, -1.0])).tolist() == [1.5, 0.0]


# ----------------------------------------------------------------------------- the layers use the kernels' formulas
def test_layers_match_the_book_formulas():
    x = np.linspace(-5, 5, 41)
    np.testing.assert_allclose(Sigmoid().forward(x), 1 / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(HardSigmoid().forward(x), np.clip(x / 6 + 0.5, 0, 1), rtol=0)
    np.testing.assert_allclose(Softplus().forward(x), np.log1p(np.exp(x)), rtol=1e-14)
    np.testing.assert_allclose(Mish().forward(x), x * np.tanh(np.log1p(np.exp(x))), rtol=1e-13)
    np.testing.assert_allclose(SiLU().forward(x), x / (1 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(ELU(0.5).forward(x), np.where(x > 0, x, 0.5 * np.expm1(x)), rtol=1e-14)
    from math import erf

    exact = np.array([0.5 * v * (1 + erf(v / np.sqrt(2))) for v in x])
    np.testing.assert_allclose(GELU().forward(x), exact, rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(GELU("tanh").forward(x), exact, atol=1e-3)
    s = Softmax().forward(np.array([[1.0, 2.0, 3.0]]))
    np.testing.assert_allclose(s, np.exp([[1.0, 2.0, 3.0]]) / np.exp([1.0, 2.0, 3.0]).sum(), rtol=1e-15)


def test_layers_cache_only_what_backward_needs():
    x = np.linspace(-1, 1, 5)
    sigmoid, gelu = Sigmoid(), GELU()
    sigmoid.forward(x)
    gelu.forward(x)
    assert sigmoid.input is None and sigmoid.output is not None  # y (1 - y)
    assert gelu.input is x and gelu.output is None


# ----------------------------------------------------------------------------- lookup
def test_get_activation_names():
    assert set(ACTIVATION_NAMES) == {"relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "noisy_relu",
                                     "sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh", "gelu",
                                     "silu", "swish", "softplus", "mish", "softmax"}
    for name in ACTIVATION_NAMES:
        assert isinstance(get_activation(name), layers.Layer)
    assert type(get_activation("ReLU")) is ReLU
    assert type(get_activation("Leaky-ReLU")) is LeakyReLU
    assert type(get_activation("swish")) is SiLU and Swish is SiLU
    assert get_activation("elu", alpha=0.3).alpha == 0.3
    assert get_activation("gelu", approximate="tanh").approximate == "tanh"
    relu = ReLU()
    assert get_activation(relu) is relu


def test_get_activation_errors():
    with pytest.raises(ValueError, match="unknown activation 'relu6'; expected one of: relu, leaky_relu, prelu"):
        get_activation("relu6")
    with pytest.raises(TypeError, match="name: expected a string, got int 3"):
        get_activation(3)
    with pytest.raises(TypeError, match=r"Sigmoid does not take \['alpha'\]"):
        get_activation("sigmoid", alpha=0.1)


# ----------------------------------------------------------------------------- bad input
def test_integer_input_is_a_type_error():
    for layer in (ReLU(), Sigmoid(), PReLU(), Softmax(), RReLU()):
        with pytest.raises(TypeError, match=r"expected a floating-point array \(float32 or float64\), got dtype int64"):
            layer.forward(np.arange(6).reshape(2, 3))
    with pytest.raises(TypeError, match="input_data: expected a NumPy or CuPy array, got list"):
        Tanh().forward([1.0, 2.0])


def test_backward_errors():
    with pytest.raises(RuntimeError, match="Tanh.backward called before forward"):
        Tanh().backward(np.ones(3))
    with pytest.raises(RuntimeError, match="Softmax.backward called before forward"):
        Softmax().backward(np.ones(3))
    layer = ReLU()
    layer.forward(np.ones((2, 3)))
    with pytest.raises(ValueError, match=r"ReLU: grad_output: expected shape \(2, 3\).*got \(3, 2\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(TypeError, match="grad_output: expected a floating-point array"):
        layer.backward(np.ones((2, 3), dtype=int))


def test_constructor_and_shape_errors():
    with pytest.raises(ValueError, match="ELU: alpha: expected a number >= 0.0, got -1.0"):
        ELU(alpha=-1.0)
    with pytest.raises(TypeError, match="LeakyReLU: alpha: expected a real number, got str"):
        LeakyReLU(alpha="0.1")
    with pytest.raises(ValueError, match="RReLU: upper: expected upper >= lower = 0.5, got 0.2"):
        RReLU(lower=0.5, upper=0.2)
    with pytest.raises(ValueError, match="NoisyReLU: std: expected a number >= 0.0"):
        NoisyReLU(std=-0.1)
    with pytest.raises(TypeError, match="RReLU: seed: expected an int or None"):
        RReLU(seed=1.5)
    with pytest.raises(ValueError, match="GELU: approximate: expected 'none' or 'tanh', got 'erf'"):
        GELU(approximate="erf")
    with pytest.raises(ValueError, match="num_parameters: expected an integer >= 1, got 0"):
        PReLU(num_parameters=0)
    with pytest.raises(ValueError, match=r"PReLU: input_data: expected the last axis to have 4 channels"):
        PReLU(num_parameters=4).forward(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="Softmax: axis: expected an int"):
        Softmax(axis=1.0)
    with pytest.raises(ValueError, match=r"Softmax: axis: expected an axis of a 2-D input.*got 2"):
        Softmax(axis=2).forward(np.ones((2, 3)))


def test_softmax_rows_sum_to_one(device):
    x = _on(device, np.random.default_rng(0).standard_normal((6, 10)).astype(np.float32) * 30)
    y = backend.to_numpy(Softmax().forward(x))
    np.testing.assert_allclose(y.sum(axis=-1), 1.0, rtol=1e-6)
    assert (y >= 0).all() and y.dtype == np.float32


# ----------------------------------------------------------------------------- strided inputs at extreme values
@pytest.mark.parametrize("key", sorted(FACTORIES))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_non_contiguous_inputs_at_extreme_values_match_contiguous_ones_without_warnings(key, dtype):
    """Transposed and strided views give the contiguous results, with no overflow warning (RuntimeWarnings
    are errors in this suite): they used to fall back to the book's expressions, which overflow at |x| = 1e30."""
    values = np.array([-1e30, -1e4, -88.0, -12.0, -0.5, 0.5, 12.0, 88.0, 1e4, 1e30], dtype)
    base = np.random.default_rng(5).choice(values, (10, 5, 2)).astype(dtype)
    views = {"transposed": base.transpose(1, 0, 2)[:, :, 0].T, "strided": base[:, :, 0][::2]}
    for name, view in views.items():
        assert not view.flags.c_contiguous
        layer, reference = FACTORIES[key](), FACTORIES[key]()
        layer.eval()
        reference.eval()
        y = layer.forward(view)
        y_ref = reference.forward(np.ascontiguousarray(view))
        np.testing.assert_array_equal(y, y_ref, err_msg=name)
        g = np.ones_like(base)[:, :, 0][::2] if name == "strided" else np.ones_like(view.T).T
        grad, _ = layer.backward(g)
        grad_ref, _ = reference.backward(np.ascontiguousarray(g))
        np.testing.assert_array_equal(grad, grad_ref, err_msg=name)
        assert y.dtype == grad.dtype == dtype
