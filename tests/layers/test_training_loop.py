"""The one training loop trains any Layer through the public protocol, checks everything before it changes
anything, and applies penalties with one meaning (layout issue; reliability issue, section 3)."""

from __future__ import annotations

import numpy as np
import pytest

import layers
import optimizers
from layers.base import Layer, walk, weight_mask
from layers.training import fit


@layers.register_layer
class TwoPaths(Layer):
    """A block that is not a Sequential: y = a(x) + b(x), with a and b Sequentials (two paths, summed)."""

    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b

    def sublayers(self):
        return [self.a, self.b]

    @property
    def params(self):
        return self.a.params + self.b.params

    @params.setter
    def params(self, value):  # Layer.__init__ assigns []; the block's params are its children's
        pass

    @property
    def buffers(self):
        return {}

    @buffers.setter
    def buffers(self, value):
        pass

    def forward(self, input_data):
        return self.a.forward(input_data) + self.b.forward(input_data)

    def backward(self, grad_output):
        ga, pa = self.a.backward(grad_output)
        gb, pb = self.b.backward(grad_output)
        return ga + gb, list(pa) + list(pb)


def _block():
    a = layers.Sequential([layers.Dense(4, 8, seed=0), layers.ReLU(), layers.Dense(8, 2, seed=1)])
    b = layers.Sequential([layers.Dense(4, 2, seed=2)])
    return TwoPaths(a, b)


def _data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4)).astype(np.float32)
    y = (X[:, 0] - X[:, 1] > 0).astype(np.int64)
    return X, y


def test_fit_trains_a_block_that_is_not_a_sequential():
    X, y = _data()
    block = _block()
    history = fit(block, X, y, loss=layers.SparseCategoricalCrossEntropy(from_logits=True),
                  optimizer=optimizers.Adam(0.05), epochs=15, batch_size=16, verbose=0, seed=0,
                  track_gradients=True)
    assert history.history["loss"][-1] < 0.5 * history.history["loss"][0]
    assert history.history["accuracy"][-1] > 0.9
    # diagnostics reach nested layers: three Dense layers with parameters, one nested ReLU
    assert history.labels["grad_norms"] == ["0.0:Dense", "0.2:Dense", "1.0:Dense"]
    assert history.labels["dead_relu_fraction"] == ["0.1:ReLU"]
    assert all(len(v) == 3 for v in history.history["grad_norms"])
    assert all(0.0 <= v[0] <= 1.0 for v in history.history["dead_relu_fraction"])


def test_fit_restores_the_modes_of_nested_layers():
    X, y = _data()
    model = layers.Sequential([layers.Sequential([layers.Dense(4, 4), layers.Dropout(0.5)]), layers.Dense(4, 2)])
    model.eval()
    model.layers[0].layers[1].train()  # a mixed state the user chose
    before = [(path, layer.training) for path, layer in walk(model)]
    model.fit(X, y, loss="sparse_categorical_crossentropy", epochs=1, verbose=0)
    assert [(path, layer.training) for path, layer in walk(model)] == before


def test_bad_validation_data_fails_before_any_weight_changes():
    X, y = _data()
    model = layers.Sequential([layers.Dense(4, 2, seed=0)])
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"validation_data\[0\] \(X_val\): does not fit the model.*Dense.*4 features"):
        model.fit(X, y, loss=layers.SparseCategoricalCrossEntropy(from_logits=True), epochs=2, verbose=0,
                  validation_data=(X[:, :3], y))
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_bad_inputs_name_the_argument_before_training():
    X, y = _data()
    model = layers.Sequential([layers.Dense(4, 2, seed=0)])
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"^X: does not fit the model: Dense"):
        model.fit(X[:, :3], y, epochs=1, verbose=0)
    with pytest.raises(ValueError, match=r"^y: does not fit the model's output \(2,\)"):
        model.fit(X, np.zeros((64, 3), np.float32), loss="mse", epochs=1, verbose=0)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_an_option_set_twice_is_refused():
    X, y = _data()
    model = layers.Sequential([layers.Dense(4, 2)])
    with pytest.raises(ValueError, match="clipnorm: set both in fit .* and in the optimizer"):
        model.fit(X, y, optimizer=optimizers.SGD(0.1, clipnorm=1.0), clipnorm=2.0, verbose=0)


def test_penalties_have_one_meaning_weights_only():
    # the optimizer's l2 with the model's mask leaves biases alone, exactly as fit's l2 does
    W = np.ones((2, 2), np.float32)
    b = np.ones(2, np.float32)
    optimizers.SGD(0.1, l2=0.5).step([W, b], [np.zeros_like(W), np.zeros_like(b)], weight_mask=[True, False])
    np.testing.assert_allclose(W, 0.9)  # w - lr * 2 * l2 * w
    np.testing.assert_array_equal(b, 1.0)
    X, y = _data()
    m1 = layers.Sequential([layers.Dense(4, 2, seed=0)])
    m2 = layers.Sequential([layers.Dense(4, 2, seed=0)])
    m1.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(0.1), l2=0.01, epochs=2,
           verbose=0, seed=0, shuffle=False)
    m2.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(0.1, l2=0.01), epochs=2,
           verbose=0, seed=0, shuffle=False)
    for p, q in zip(m1.params, m2.params):
        np.testing.assert_allclose(p, q, rtol=1e-6)
    assert weight_mask(m1) == [True, False]


def test_set_weights_changes_nothing_when_one_array_is_bad():
    model = layers.Sequential([layers.Dense(3, 4, seed=0), layers.Dense(4, 2, seed=1)])
    before = model.get_weights()
    new = [w + 1 for w in before]
    new[2] = np.zeros((5, 5), np.float32)
    with pytest.raises(ValueError, match=r"weights\[2\]: expected shape \(4, 2\)"):
        model.set_weights(new)
    new[2] = "not an array"
    with pytest.raises(TypeError, match=r"weights\[2\]: expected an array"):
        model.set_weights(new)
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


def test_astype_refuses_integer_dtypes():
    model = layers.Sequential([layers.Dense(3, 4, seed=0)])
    with pytest.raises(TypeError, match="astype: dtype: expected float32 or float64, got int32"):
        model.astype(np.int32)
    with pytest.raises(TypeError, match="expected float32 or float64, got bool"):
        layers.Dense(2, 2).astype(bool)
    assert model.params[0].dtype == np.float32


def test_block_save_load_round_trip(tmp_path):
    block = _block()
    X, _ = _data(8)
    model = layers.Sequential([block, layers.Softmax()])
    model.save(tmp_path / "b.npz")
    loaded = layers.Sequential.load(tmp_path / "b.npz")
    assert isinstance(loaded.layers[0], TwoPaths)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))


def test_summary_shows_the_tree():
    model = layers.Sequential([_block(), layers.Softmax()])
    text = model.summary(input_shape=(4,), print_fn=None)
    lines = text.splitlines()
    assert any(line.startswith("0: TwoPaths") and "(None, 2)" in line for line in lines)
    assert any(line.startswith("    0.0.1: ReLU") and "(None, 8)" in line for line in lines)
    assert any(line.startswith("    0.1.0: Dense") and "(None, 2)" in line for line in lines)
    assert any(line.startswith("1: Softmax") for line in lines)
