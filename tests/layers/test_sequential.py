"""layers.Sequential: the Layer protocol over a list of layers, fit/predict/evaluate/summary, callbacks,
clipping, L1/L2 and the gradient diagnostics of sections 7.8 and 8.3."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest

import backend
import layers
from layers.base import Layer, weight_mask
from layers.callbacks import Callback, EarlyStopping, TerminateOnNaN
from layers.testing import check_gradients
from optimizers import SGD, Adam


def act(name):
    return layers.get_activation(name)


def regression_data(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.uniform(-1, 1, size=(n, 3)).astype(np.float32)
    y = (np.sin(2 * X[:, :1]) + X[:, 1:2] * X[:, 2:3]).astype(np.float32)
    return X, y


def small_model(seed=0):
    return layers.Sequential([layers.Dense(3, 8, seed=seed), act("tanh"), layers.Dense(8, 1, seed=seed + 1)])


# -- the Layer protocol -------------------------------------------------------------------
def test_gradient_check_dense_tanh_dense(float64, device):
    model = layers.Sequential([layers.Dense(3, 4, seed=0), act("tanh"), layers.Dense(4, 2, seed=1)])
    x = backend.to_device(np.random.default_rng(1).standard_normal((5, 3)), device)
    report = check_gradients(model, x)
    assert set(report.errors) == {"input", "params[0]", "params[1]", "params[2]", "params[3]"}
    assert report.ok(1e-6), str(report)


def test_gradient_check_nested_sequential(float64):
    inner = layers.Sequential([layers.Dense(3, 3, seed=0), act("tanh")])
    model = layers.Sequential([inner, layers.Dense(3, 2, seed=1), act("sigmoid")])
    report = check_gradients(model, np.random.default_rng(2).standard_normal((4, 3)))
    assert len(report.errors) == 5 and report.ok(1e-6), str(report)


def test_params_are_the_layers_arrays_and_grads_align(device):
    model = small_model()
    d1, d2 = model.layers[0], model.layers[2]
    assert len(model.params) == 4
    assert all(a is b for a, b in zip(model.params, [d1.W, d1.b, d2.W, d2.b]))
    assert model.count_params() == 3 * 8 + 8 + 8 + 1
    x = backend.to_device(np.ones((2, 3), dtype=np.float32), device)
    out = model.forward(x)
    assert out.shape == (2, 1) and out.dtype == np.float32
    grad_in, grads = model.backward(backend.get_array_module(out).ones_like(out))
    assert grad_in.shape == (2, 3) and grad_in.dtype == np.float32
    assert grads is model.grads
    assert [g.shape for g in grads] == [p.shape for p in model.params]
    assert all(g.dtype == np.float32 for g in grads)


def test_constructor_and_backward_validation():
    with pytest.raises(TypeError, match=r"layers\[1\]: expected a Layer .*got str"):
        layers.Sequential([layers.Dense(2, 2), "relu"])
    with pytest.raises(TypeError, match="layers: expected a list of layers, got Dense"):
        layers.Sequential(layers.Dense(2, 2))

    class NoGrads(Layer):
        def __init__(self):
            super().__init__()
            self.params = [np.zeros(2, dtype=np.float32)]

        def forward(self, x):
            return x + self.params[0]

        def backward(self, g):
            return g, None

    model = layers.Sequential([NoGrads()])
    model.forward(np.zeros((1, 2), dtype=np.float32))
    with pytest.raises(ValueError, match=r"layers\[0\] \(NoGrads\).backward: expected 1 parameter gradients"):
        model.backward(np.ones((1, 2), dtype=np.float32))


def test_train_eval_propagate_and_to_device(device):
    model = layers.Sequential([layers.Dense(2, 2), layers.Dropout(0.5), act("relu")])
    model.eval()
    assert not model.training and all(not layer.training for layer in model.layers)
    model.train()
    assert model.training and all(layer.training for layer in model.layers)
    assert model.to(device) is model
    assert all(backend.device_of(p) == device for p in model.params)
    assert model.device == device


# -- fit ----------------------------------------------------------------------------------------
def test_fit_reduces_the_loss(device):
    X, y = regression_data()
    model = small_model()
    history = model.fit(X, y, loss="mse", optimizer=Adam(0.01), epochs=30, batch_size=16, seed=0, verbose=0)
    losses = history.history["loss"]
    assert isinstance(history, layers.History) and history.epoch == list(range(30))
    assert set(history.history) == {"loss", "lr"}  # real-valued targets: no accuracy; "lr" since issue 11
    assert losses[-1] < 0.3 * losses[0]
    assert model.history is history and model.loss is not None
    assert history.params["steps"] == 4 and history.params["samples"] == 64


def test_fit_is_reproducible_with_a_seed():
    X, y = regression_data()
    runs = []
    for _ in range(2):
        model = small_model()
        runs.append(model.fit(X, y, optimizer=SGD(0.1), epochs=3, batch_size=8, seed=5, verbose=0).history["loss"])
    assert runs[0] == runs[1]


def test_fit_accepts_integer_inputs_and_reports_accuracy_for_classes():
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]])
    y_onehot = np.array([[1, 0], [0, 1], [0, 1], [1, 0]], dtype=np.float32)
    model = layers.Sequential([layers.Dense(2, 8, seed=0), act("tanh"), layers.Dense(8, 2, seed=1)])
    h = model.fit(X, y_onehot, loss=layers.CategoricalCrossEntropy(from_logits=True), optimizer=Adam(0.05),
                  epochs=100, batch_size=4, verbose=0, validation_data=(X, y_onehot))
    assert h.history["accuracy"][-1] == 1.0 and h.history["val_accuracy"][-1] == 1.0
    labels = np.array([0, 1, 1, 0])
    h = model.fit(X, labels, loss=layers.SparseCategoricalCrossEntropy(from_logits=True), optimizer=Adam(0.01),
                  epochs=2, batch_size=2, verbose=0)
    assert set(h.history) == {"loss", "accuracy", "lr"}
    assert model.evaluate(X, labels)["accuracy"] == 1.0


def test_fit_progress_bar_and_silence(capsys):
    X, y = regression_data(16)
    small_model().fit(X, y, epochs=2, batch_size=8, verbose=1)
    err = capsys.readouterr().err
    assert "Epoch 1/2" in err and "Epoch 2/2" in err and "loss=" in err
    small_model().fit(X, y, epochs=2, batch_size=8, verbose=0)
    captured = capsys.readouterr()
    assert captured.err == "" and captured.out == ""
    small_model().fit(X, y, epochs=2, batch_size=8, verbose=2)
    assert "Epoch 2/2 - loss: " in capsys.readouterr().out


def test_fit_restores_layer_modes():
    X, y = regression_data(8)
    model = layers.Sequential([layers.Dense(3, 4), layers.Dropout(0.5, seed=0), layers.Dense(4, 1)])
    model.eval()
    model.fit(X, y, epochs=1, verbose=0)
    assert not model.training and not model.layers[1].training


# -- bad input -------------------------------------------------------------------------------------
def test_nan_in_the_input_is_rejected_before_training():
    X, y = regression_data(16)
    X[5, 1] = np.nan
    model = small_model()
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=r"X: expected finite values, got 1 NaN/inf value\(s\) \(first in sample 5\)"):
        model.fit(X, y, verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(before, model.params))  # nothing trained
    X[5, 1] = 0.0
    y[3, 0] = np.inf
    with pytest.raises(ValueError, match=r"y: expected finite values.*sample 3"):
        model.fit(X, y, verbose=0)
    y[3, 0] = 0.0
    bad_val = X.copy()
    bad_val[0, 0] = np.nan
    with pytest.raises(ValueError, match="X_val: expected finite values"):
        model.fit(X, y, verbose=0, validation_data=(bad_val, y))
    with pytest.raises(ValueError, match="X: expected finite values"):
        model.predict(bad_val)


def test_other_bad_fit_arguments():
    X, y = regression_data(16)
    model = small_model()
    with pytest.raises(ValueError, match=r"X and y: expected the same number of samples, got len\(X\)=16 "
                                         r"and len\(y\)=15"):
        model.fit(X, y[:15], verbose=0)
    with pytest.raises(ValueError, match="batch_size: expected an integer >= 1, got 0"):
        model.fit(X, y, batch_size=0, verbose=0)
    with pytest.raises(ValueError, match="epochs: expected an integer >= 1, got 0"):
        model.fit(X, y, epochs=0, verbose=0)
    with pytest.raises(TypeError, match="X: expected a numeric"):
        model.fit(np.array([["a"]] * 16), y, verbose=0)
    with pytest.raises(ValueError, match="X: expected at least one sample"):
        model.fit(X[:0], y[:0], verbose=0)
    with pytest.raises(ValueError, match="clipnorm: expected a number > 0"):
        model.fit(X, y, clipnorm=0, verbose=0)
    with pytest.raises(ValueError, match="l2: expected a number >= 0, got -1"):
        model.fit(X, y, l2=-1, verbose=0)
    with pytest.raises(ValueError, match="verbose: expected 0, 1 or 2"):
        model.fit(X, y, verbose=3)
    with pytest.raises(TypeError, match=r"callbacks\[0\]: expected a layers.callbacks.Callback"):
        model.fit(X, y, callbacks=[print], verbose=0)
    with pytest.raises(ValueError, match="unknown loss"):
        model.fit(X, y, loss="nope", verbose=0)


# -- predict, evaluate, summary -------------------------------------------------------------------------
def test_predict_in_eval_mode_in_batches(device):
    X, _ = regression_data(10)
    model = layers.Sequential([layers.Dense(3, 6, seed=0), layers.Dropout(0.5, seed=0), layers.Dense(6, 2, seed=1)])
    model.to(device)
    assert model.training
    full = model.predict(X)
    assert isinstance(full, np.ndarray) and full.shape == (10, 2) and full.dtype == np.float32
    np.testing.assert_allclose(model.predict(X, batch_size=3), full, rtol=1e-6)
    np.testing.assert_array_equal(model.predict(X), full)  # Dropout off: deterministic
    assert model.training and model.layers[1].training  # mode restored
    on_device = model.predict(backend.to_device(X, device))
    assert backend.device_of(on_device) == device


def test_evaluate_matches_the_loss_on_predict():
    X, y = regression_data(20)
    model = small_model()
    result = model.evaluate(X, y, loss="mse")
    expected = float(np.mean((model.predict(X) - y) ** 2))
    assert result == {"loss": pytest.approx(expected, rel=1e-5)}
    assert model.evaluate(X, y, loss="mse", batch_size=7)["loss"] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="evaluate: loss: expected a loss .*never fit"):
        small_model().evaluate(X, y)
    binary = (y > 0).astype(np.float32)
    result = model.evaluate(X, binary, loss="mse", metrics=("accuracy",))
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] == pytest.approx(np.mean((model.predict(X) > 0.5) == (binary > 0.5)))


def test_summary_lists_shapes_and_parameter_counts():
    model = layers.Sequential([layers.Dense(3, 4), act("relu"), layers.Dense(4, 2)])
    printed = []
    text = model.summary(print_fn=printed.append)
    assert printed == [text]
    lines = text.splitlines()
    assert any("0: Dense" in line and "(None, 4)" in line and line.rstrip().endswith("16") for line in lines)
    assert any("1: ReLU" in line and "(None, 4)" in line and line.rstrip().endswith(" 0") for line in lines)
    assert any("2: Dense" in line and "(None, 2)" in line and line.rstrip().endswith("10") for line in lines)
    assert "Total params: 26" in text and "Input shape: (None, 3)" in text


def test_summary_without_a_known_input_shape():
    model = layers.Sequential([act("relu"), layers.Dense(4, 2)])
    text = model.summary(print_fn=None)
    assert "?" in text and "input_shape" in text and "Total params: 10" in text
    text = model.summary(input_shape=(4,), print_fn=None)
    assert "(None, 2)" in text
    assert "(None, 2)" in layers.Sequential([act("relu"), layers.Dense(4, 2)], input_shape=(4,)).summary(print_fn=None)


# -- callbacks ----------------------------------------------------------------------------------------------
def test_early_stopping_restores_the_best_weights():
    X, y = regression_data(32)
    # Validation targets are the negated training targets: the better the fit, the worse val_loss.
    model = small_model()
    stopper = EarlyStopping(monitor="val_loss", patience=2, restore_best_weights=True)
    history = model.fit(X, y, optimizer=SGD(0.2), epochs=50, batch_size=32, shuffle=False, verbose=0,
                        validation_data=(X, -y), callbacks=[stopper])
    val = history.history["val_loss"]
    best = int(np.argmin(val))
    assert len(val) == best + 3  # patience 2: stopped after two epochs without improvement
    assert stopper.stopped_epoch == best + 2 and stopper.best_epoch == best
    assert "EarlyStopping" in history.stop_reason
    assert model.evaluate(X, -y)["loss"] == pytest.approx(val[best], rel=1e-6)


def test_early_stopping_without_restoring_and_bad_monitor():
    X, y = regression_data(32)
    model = small_model()
    stopper = EarlyStopping(monitor="val_loss", patience=0)
    history = model.fit(X, y, optimizer=SGD(0.2), epochs=20, batch_size=32, verbose=0,
                        validation_data=(X, -y), callbacks=[stopper])
    assert len(history.epoch) < 20
    assert model.evaluate(X, -y)["loss"] == pytest.approx(history.history["val_loss"][-1], rel=1e-6)
    with pytest.raises(KeyError,
                       match=r"monitor='val_loss' is not in the epoch logs; available keys: \['loss', 'lr'\]"):
        small_model().fit(X, y, epochs=2, verbose=0, callbacks=[EarlyStopping()])
    with pytest.raises(ValueError, match="patience: expected an integer >= 0"):
        EarlyStopping(patience=-1)


class NaNAfter(Layer):
    """Identity that returns NaN from its ``calls``-th training forward on (no RuntimeWarning involved)."""

    def __init__(self, calls):
        super().__init__()
        self.calls, self.count = calls, 0

    def forward(self, x):
        if self.training:
            self.count += 1
        return x + np.nan if self.training and self.count >= self.calls else x

    def backward(self, g):
        return g, None


@pytest.mark.filterwarnings("ignore::optimizers.base.NonFiniteWarning")  # the NaN is the point here
def test_terminate_on_nan_names_epoch_and_batch(caplog):
    X, y = regression_data(8)
    model = layers.Sequential([layers.Dense(3, 1, seed=0), NaNAfter(calls=7)])
    stopper = TerminateOnNaN()
    with caplog.at_level(logging.WARNING, logger="camadas.training"):
        history = model.fit(X, y, optimizer=SGD(0.01), epochs=5, batch_size=2, verbose=0, callbacks=[stopper])
    # 4 batches per epoch: the 7th forward is epoch 2, batch 3.
    assert stopper.message.startswith("TerminateOnNaN: loss is nan at epoch 2, batch 3")
    assert history.stop_reason == stopper.message
    assert any(stopper.message in r.getMessage() for r in caplog.records)
    assert len(history.epoch) == 2 and np.isnan(history.history["loss"][-1])


def test_callback_hooks_are_called_in_order():
    events = []

    class Recorder(Callback):
        def on_train_begin(self, logs=None):
            events.append("train_begin")

        def on_epoch_begin(self, epoch, logs=None):
            events.append(f"epoch_begin {epoch}")

        def on_batch_end(self, batch, logs=None):
            events.append(f"batch_end {batch}")

        def on_epoch_end(self, epoch, logs=None):
            events.append(f"epoch_end {epoch} {sorted(logs)}")

        def on_train_end(self, logs=None):
            events.append("train_end")

    X, y = regression_data(4)
    small_model().fit(X, y, epochs=2, batch_size=2, verbose=0, callbacks=[Recorder()])
    assert events == ["train_begin", "epoch_begin 0", "batch_end 0", "batch_end 1", "epoch_end 0 ['loss', 'lr']",
                      "epoch_begin 1", "batch_end 0", "batch_end 1", "epoch_end 1 ['loss', 'lr']", "train_end"]


# -- clipping and penalties ---------------------------------------------------------------------------------------
def _one_step(model, X, y, **options):
    before = [p.copy() for p in model.params]
    model.fit(X, y, optimizer=SGD(1.0), epochs=1, batch_size=None, shuffle=False, verbose=0, **options)
    return [p - b for p, b in zip(model.params, before)]


def test_clipvalue_and_clipnorm_limit_the_step():
    X, y = regression_data(16)
    y = y * 100  # large gradients
    free = _one_step(small_model(), X, y)
    assert max(float(np.abs(d).max()) for d in free) > 1.0
    clipped = _one_step(small_model(), X, y, clipvalue=1e-3)
    assert max(float(np.abs(d).max()) for d in clipped) <= 1e-3 * (1 + 1e-3)  # float32 rounding of p - p0
    normed = _one_step(small_model(), X, y, clipnorm=0.5)
    total = np.sqrt(sum(float(np.sum(d.astype(np.float64) ** 2)) for d in normed))
    assert total == pytest.approx(0.5, rel=1e-4)
    # Same direction as the unclipped step.
    flat_free = np.concatenate([d.ravel() for d in free])
    flat_norm = np.concatenate([d.ravel() for d in normed])
    assert np.dot(flat_free, flat_norm) / (np.linalg.norm(flat_free) * np.linalg.norm(flat_norm)) > 0.9999


def test_l1_and_l2_penalise_the_weights_not_the_biases(float64):
    # Zero inputs and targets equal to the bias: the loss gradient is zero, only the penalty moves W.
    X = np.zeros((4, 3))
    y = np.full((4, 2), 0.25)
    model = layers.Sequential([layers.Dense(3, 2, seed=0)])
    W0 = model.layers[0].W.copy()
    model.layers[0].b[...] = 0.25
    steps, lr, l2 = 3, 0.1, 0.5
    model.fit(X, y, optimizer=SGD(lr), epochs=steps, batch_size=None, verbose=0, l2=l2)
    # dΩ/dW = 2 l2 W  ->  W_t = W_0 (1 - 2 lr l2)^t; the bias is not penalised.
    np.testing.assert_allclose(model.layers[0].W, W0 * (1 - 2 * lr * l2) ** steps, rtol=1e-12)
    np.testing.assert_allclose(model.layers[0].b, 0.25, rtol=0)

    model = layers.Sequential([layers.Dense(3, 2, seed=0)])
    W = model.layers[0].W.copy()
    model.fit(X, np.zeros((4, 2)), optimizer=SGD(0.01), epochs=1, batch_size=None, verbose=0, l1=0.05)
    np.testing.assert_allclose(model.layers[0].W, W - 0.01 * 0.05 * np.sign(W), rtol=1e-12)


def test_l2_shrinks_trained_weights():
    X, y = regression_data(32)
    norms = []
    for l2 in (0.0, 0.05):
        model = small_model()
        model.fit(X, y, optimizer=SGD(0.1), epochs=20, batch_size=8, seed=0, verbose=0, l2=l2)
        norms.append(sum(float(np.sum(layer.W ** 2)) for layer in (model.layers[0], model.layers[2])))
    assert norms[1] < 0.8 * norms[0]


# -- diagnostics (sections 7.8 and 8.3) ------------------------------------------------------------------
def test_track_gradients_records_per_layer_norms():
    X, y = regression_data(16)
    model = layers.Sequential([layers.Dense(3, 4, seed=0), act("sigmoid"), layers.Dense(4, 4, seed=1),
                               act("sigmoid"), layers.Dense(4, 1, seed=2)])
    probe = copy.deepcopy(model)
    loss = layers.MeanSquaredError()
    loss.forward(probe.forward(X), y)
    probe.backward(loss.backward())
    expected = [np.sqrt(sum(float(np.sum(g.astype(np.float64) ** 2)) for g in probe.grads[k:k + 2]))
                for k in (0, 2, 4)]
    history = model.fit(X, y, loss=loss, optimizer=SGD(0.1), epochs=3, batch_size=None, verbose=0,
                        track_gradients=True)
    assert history.labels["grad_norms"] == ["0:Dense", "2:Dense", "4:Dense"]
    norms = history.history["grad_norms"]
    assert len(norms) == 3 and all(len(epoch) == 3 for epoch in norms)
    np.testing.assert_allclose(norms[0], expected, rtol=1e-5)  # first epoch = the one batch before any step
    assert history.history["dead_relu_fraction"] == [[], [], []]


def test_track_gradients_dead_relu_fraction():
    X, y = regression_data(32)
    hidden = layers.Dense(3, 4, seed=0)
    # Units 0 and 1 get a large negative bias: their ReLU output is 0 for every sample, and stays so
    # (no gradient flows through a dead unit).
    hidden.b[...] = np.array([-10.0, -10.0, 0.0, 0.0], dtype=np.float32)
    hidden.W[:, 2:] = np.abs(hidden.W[:, 2:]) + 0.1  # units 2 and 3 fire for positive inputs
    model = layers.Sequential([hidden, act("relu"), layers.Dense(4, 1, seed=1)])
    history = model.fit(np.abs(X), y, optimizer=SGD(0.01), epochs=2, batch_size=8, verbose=0, track_gradients=True)
    assert history.labels["dead_relu_fraction"] == ["1:ReLU"]
    assert history.history["dead_relu_fraction"] == [[0.5], [0.5]]
    assert "grad_norms" in history.history and "dead_relu_fraction" in history.history
    untracked = small_model().fit(X, y, epochs=1, verbose=0)
    assert "grad_norms" not in untracked.history


# -- accuracy where it applies (layers.metrics) -------------------------------------------------------------
def test_accuracy_rules_per_loss():
    from layers.metrics import accuracy

    logits = np.array([[2.0], [-1.0], [0.5], [-3.0]], dtype=np.float32)
    labels01 = np.array([[1.0], [0.0], [0.0], [0.0]], dtype=np.float32)
    assert accuracy(logits, labels01, loss=layers.BinaryCrossEntropy(from_logits=True)) == 0.75
    probs = np.array([[0.9], [0.2], [0.6], [0.4]], dtype=np.float32)
    assert accuracy(probs, labels01, loss=layers.BinaryCrossEntropy()) == 0.75
    assert accuracy(logits, labels01 * 2 - 1, loss=layers.Hinge()) == 0.75  # labels ±1, decision at 0
    scores = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]], dtype=np.float32)
    assert accuracy(scores, np.array([1, 0, 0]), loss=layers.SparseCategoricalCrossEntropy()) == pytest.approx(2 / 3)
    onehot = np.array([[0, 1], [1, 0], [1, 0]], dtype=np.float32)
    assert accuracy(scores, onehot, loss=layers.CategoricalCrossEntropy()) == pytest.approx(2 / 3)
    assert accuracy(scores, onehot, loss=layers.MeanSquaredError()) == pytest.approx(2 / 3)  # one-hot targets
    with pytest.raises(ValueError, match="accuracy: does not apply to loss MeanSquaredError"):
        accuracy(probs, probs, loss=layers.MeanSquaredError())


def test_conv_model_trains_with_penalties_and_diagnostics():
    conv = pytest.importorskip("layers.conv", reason="Convolution2D not written yet")
    pooling = pytest.importorskip("layers.pooling", reason="pooling not written yet")
    flatten = pytest.importorskip("layers.flatten", reason="Flatten not written yet")
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 6, 6, 1)).astype(np.float32)
    labels = (X[:, :3].mean(axis=(1, 2, 3)) > X[:, 3:].mean(axis=(1, 2, 3))).astype(np.int64)
    model = layers.Sequential([
        conv.Convolution2D(1, 3, 3, padding=1, seed=0), act("relu"), pooling.MaxPooling2D((2, 2)),
        flatten.Flatten(), layers.Dense(27, 2, seed=1),
    ], input_shape=(6, 6, 1))
    # Kernels and Dense W are penalised; the conv biases (num_filters, 1) and the Dense bias are not.
    assert [k for k, weight in enumerate(weight_mask(model)) if weight] == [0, 2]
    assert "(None, 6, 6, 3)" in model.summary(print_fn=None)
    history = model.fit(X, labels, loss=layers.SparseCategoricalCrossEntropy(from_logits=True),
                        optimizer=Adam(0.01), epochs=15, batch_size=8, seed=0, verbose=0, l2=1e-4,
                        clipnorm=5.0, track_gradients=True)
    assert history.history["loss"][-1] < history.history["loss"][0]
    assert history.labels["grad_norms"] == ["0:Convolution2D", "4:Dense"]
    # Units of a conv ReLU are its filters (the last axis): fractions are multiples of 1/3.
    fractions = [f[0] for f in history.history["dead_relu_fraction"]]
    assert all(abs(f * 3 - round(f * 3)) < 1e-9 for f in fractions)
