"""Residual, Add, Concatenate, Multiply and Identity: skip connections and branches in the book's protocol."""

from __future__ import annotations

import numpy as np
import pytest

import backend
import layers
from layers import Add, Concatenate, Dense, Identity, Multiply, Residual, Sequential
from layers.base import walk
from layers.testing import check_gradients

TOL = 1e-7


def _x(shape, seed=0):
    """Standard normal input on the current device (the ``device`` fixture's)."""
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def _assert_gradients(block, x):
    report = check_gradients(block, x)
    assert report.max_error < TOL, report


def test_residual_identity_and_projection_gradients(float64, device):
    block = Residual(Sequential([Dense(4, 4, seed=0), layers.Tanh(), Dense(4, 4, seed=1)]))
    _assert_gradients(block, _x((3, 4)))
    projected = Residual(Sequential([Dense(4, 6, seed=2), layers.Tanh()]), shortcut=Dense(4, 6, seed=3))
    _assert_gradients(projected, _x((3, 4)))
    assert len(projected.params) == 4  # block's W, b then the shortcut's W, b


def test_residual_is_block_plus_input(device):
    dense = Dense(3, 3, seed=0)
    x = backend.to_device(_x((2, 3)).astype(np.float32))
    out = Residual(dense).forward(x)
    np.testing.assert_allclose(backend.to_numpy(out), backend.to_numpy(dense.forward(x) + x), rtol=1e-6)


def test_add_concatenate_multiply_gradients(float64, device):
    _assert_gradients(Add([Dense(5, 3, seed=0), Sequential([Dense(5, 3, seed=1), layers.Sigmoid()]),
                           Dense(5, 3, seed=2)]), _x((4, 5)))
    _assert_gradients(Add([Identity(), layers.Tanh()]), _x((4, 5)))
    _assert_gradients(Concatenate([Dense(5, 2, seed=0), Dense(5, 3, seed=1), layers.Tanh()]), _x((4, 5)))
    _assert_gradients(Concatenate([Dense(5, 2, seed=0), Dense(5, 2, seed=1)], axis=0), _x((4, 5)))
    # squeeze-and-excitation shape: (B, H, W, C) times per-channel scales (B, 1, 1, C)
    gate = Sequential([layers.GlobalAveragePooling2D(), layers.Sigmoid()])
    _assert_gradients(Multiply([Identity(), gate]), _x((2, 3, 3, 4)))
    _assert_gradients(Multiply([Dense(4, 4, seed=0), Dense(4, 1, seed=1), layers.Tanh()]), _x((3, 4)))


def test_blocks_nest(float64):
    inner = Residual(Sequential([Dense(4, 4, seed=0), layers.ReLU(), Dense(4, 4, seed=1)]))
    model = Sequential([Dense(3, 4, seed=2), Add([inner, Concatenate([Dense(4, 2, seed=3), Dense(4, 2, seed=4)])]),
                        layers.Tanh(), Dense(4, 1, seed=5)])
    x = _x((5, 3)) + 0.1
    _assert_gradients(model, x)
    paths = [path for path, _ in walk(model)]
    assert "1.0.0.0" in paths and "1.1.1" in paths
    model.forward(x)
    _, grads = model.backward(np.ones((5, 1)))
    assert [g.shape for g in grads] == [p.shape for p in model.params]


def test_branches_that_do_not_match_name_both_shapes_and_the_fix():
    conv = layers.Convolution2D(16, 16, 3, padding=1, seed=0)
    strided = layers.Convolution2D(16, 16, 3, stride=2, padding=1, seed=1)
    x = np.zeros((2, 8, 8, 16), np.float32)
    with pytest.raises(ValueError, match=r"Add: .*branch 0: \(2, 8, 8, 16\), branch 1: \(2, 4, 4, 16\).*projection"):
        Add([conv, strided]).forward(x)
    with pytest.raises(ValueError, match=r"Residual: .*\(2, 4, 4, 16\).*\(2, 8, 8, 16\).*projection shortcut"):
        Residual(strided).forward(x)
    with pytest.raises(ValueError, match="Concatenate: .*every axis but -1"):
        Concatenate([conv, strided]).forward(x)
    with pytest.raises(ValueError, match="Multiply: .*broadcast"):
        Multiply([conv, strided]).forward(x)


def test_bad_constructor_arguments():
    with pytest.raises(TypeError, match="Add: branches: expected a list of layers"):
        Add(Dense(2, 2))
    with pytest.raises(ValueError, match="Add: branches: expected at least one layer"):
        Add([])
    with pytest.raises(TypeError, match=r"Concatenate: branches\[1\]: expected a Layer"):
        Concatenate([Dense(2, 2), "relu"])
    with pytest.raises(TypeError, match="Residual: shortcut: expected a Layer"):
        Residual(Dense(2, 2), shortcut=3)
    with pytest.raises(TypeError, match="Concatenate: axis: expected an int"):
        Concatenate([Dense(2, 2)], axis=1.0)


def test_modes_and_devices_reach_nested_layers(device):
    drop = layers.Dropout(0.5, seed=0)
    model = Sequential([Residual(Sequential([Dense(4, 4, seed=0), drop]))])
    model.eval()
    assert drop.training is False
    model.train()
    assert drop.training is True
    assert all(backend.device_of(p) == device for p in model.params)
    model.to("cpu")
    assert all(isinstance(p, np.ndarray) for p in model.params)


def test_nested_blocks_save_and_load(tmp_path):
    model = Sequential([
        Residual(Sequential([layers.Convolution2D(4, 4, 3, padding=1, seed=2), layers.BatchNormalization(4)]),
                 shortcut=layers.Convolution2D(4, 4, 1, seed=3)),
        Concatenate([layers.Convolution2D(4, 2, 1, seed=4), layers.Convolution2D(4, 2, 3, padding=1, seed=5)]),
        Add([Identity(), layers.Convolution2D(4, 4, 1, seed=6)]),
        layers.GlobalAveragePooling2D(), layers.Flatten(), Dense(4, 3, seed=7),
    ], input_shape=(6, 6, 4))
    x = _x((2, 6, 6, 4)).astype(np.float32)
    model.fit(x, np.array([0, 2]), loss=layers.SparseCategoricalCrossEntropy(from_logits=True), epochs=2,
              verbose=0)
    path = model.save(tmp_path / "blocks.npz")
    loaded = Sequential.load(path)
    assert [type(layer).__name__ for _, layer in walk(loaded)] == [type(layer).__name__ for _, layer in walk(model)]
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_summary_and_output_shapes():
    model = Sequential([
        Concatenate([layers.Convolution2D(3, 2, 1, seed=0), layers.Convolution2D(3, 5, 3, padding=1, seed=1)]),
        Residual(layers.Convolution2D(7, 7, 3, padding=1, seed=2)),
    ], input_shape=(8, 8, 3))
    assert model.output_shape((2, 8, 8, 3)) == (2, 8, 8, 7)
    text = model.summary(print_fn=None)
    assert "0: Concatenate" in text and "(None, 8, 8, 7)" in text and "  0.1: Convolution2D" in text
    assert f"Total params: {model.count_params():,}" in text
