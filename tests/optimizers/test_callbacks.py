"""Training tools of issue 11 in fit: ReduceLROnPlateau (against PyTorch's), ModelCheckpoint on the atomic
save, and the learning rate in History."""

from __future__ import annotations

import types

import numpy as np
import pytest

from layers import Callback, Dense, ModelCheckpoint, ReduceLROnPlateau, ReLU, Sequential
from optimizers import SGD, Adam, StepDecay


def regression(n=64, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 3)).astype(np.float32)
    return X, (X @ np.array([[1.0], [-2.0], [0.5]], np.float32))


def model(seed=0):
    return Sequential([Dense(3, 8, seed=seed), ReLU(), Dense(8, 1, seed=seed + 1)])


def reduce_on(values, callback, lr=1.0):
    """Feed ``values`` as the monitored metric, epoch by epoch; return the rate after each epoch."""
    optimizer = SGD(lr)
    callback.set_model(types.SimpleNamespace(optimizer=optimizer))
    callback.on_train_begin({})
    rates = []
    for epoch, value in enumerate(values):
        callback.on_epoch_end(epoch, {"val_loss": value, "val_accuracy": -value})
        rates.append(optimizer.learning_rate)
    return rates


@pytest.mark.parametrize("patience, cooldown, min_delta, factor, min_lr", [
    (1, 0, 0.0, 0.5, 0.0), (3, 0, 0.01, 0.1, 1e-3), (2, 2, 0.0, 0.5, 0.0), (4, 1, 0.05, 0.3, 0.01)])
@pytest.mark.parametrize("mode", ["min", "max"])
def test_reduce_lr_on_plateau_equals_torch(patience, cooldown, min_delta, factor, min_lr, mode):
    torch = pytest.importorskip("torch", reason="PyTorch's ReduceLROnPlateau is the reference")
    rng = np.random.default_rng(patience * 10 + cooldown)
    values = np.round(np.cumsum(rng.choice([-0.1, 0.0, 0.02], size=80)) + 5.0, 4)   # descents and plateaus
    if mode == "max":
        values = -values
    monitor = "val_loss" if mode == "min" else "val_accuracy"
    ours = reduce_on(-values if mode == "max" else values,
                     ReduceLROnPlateau(monitor, factor=factor, patience=patience, min_delta=min_delta,
                                       cooldown=cooldown, min_learning_rate=min_lr))
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode=mode, factor=factor, patience=patience - 1,
                                                       threshold=min_delta, threshold_mode="abs", cooldown=cooldown,
                                                       min_lr=min_lr, eps=0.0)
    theirs = []
    for value in values:
        sched.step(float(value))
        theirs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    assert ours[-1] < 1.0                                   # the sequences did reduce


def test_reduce_lr_on_plateau_in_fit_and_history_records_the_rate():
    X, y = regression()
    # min_delta huge: only the first epoch improves; patience 2 -> a reduction every second epoch after it.
    cb = ReduceLROnPlateau("loss", factor=0.1, patience=2, min_delta=1e9)
    history = model().fit(X, y, optimizer=SGD(0.1), epochs=7, batch_size=16, verbose=0, callbacks=[cb])
    np.testing.assert_allclose(history.history["lr"], [0.1, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-12)


def test_history_lr_follows_a_schedule():
    X, y = regression()
    history = model().fit(X, y, optimizer=Adam(StepDecay(0.01, step_size=4, gamma=0.5)), epochs=3, batch_size=16,
                          verbose=0)
    # 4 steps per epoch: the last update of epoch e is step 4e + 3, in the e-th interval of the step decay
    assert history.history["lr"] == [0.01, 0.005, 0.0025]


def test_reduce_lr_on_plateau_refuses_a_schedule_and_bad_arguments():
    X, y = regression()
    net = model()
    before = net.get_weights()
    with pytest.raises(TypeError, match="ReduceLROnPlateau: the optimizer's learning rate follows the schedule"):
        net.fit(X, y, optimizer=Adam(StepDecay(0.01, 2)), epochs=2, verbose=0, callbacks=[ReduceLROnPlateau("loss")])
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match=r"factor: expected a value in \[0.0, 1.0\), got 1.5"):
        ReduceLROnPlateau(factor=1.5)
    with pytest.raises(ValueError, match=r"factor: expected a number in \(0, 1\), got 0.0"):
        ReduceLROnPlateau(factor=0.0)
    with pytest.raises(ValueError, match="min_delta: expected a number >= 0, got nan"):
        ReduceLROnPlateau(min_delta=float("nan"))
    with pytest.raises(ValueError, match="cooldown: expected an integer >= 0"):
        ReduceLROnPlateau(cooldown=-1)
    with pytest.raises(KeyError, match="ReduceLROnPlateau: monitor='val_loss' is not in the epoch logs"):
        model().fit(X, y, optimizer=SGD(0.01), epochs=1, verbose=0, callbacks=[ReduceLROnPlateau()])


def test_model_checkpoint_best_only(tmp_path):
    X, y = regression()
    Xv, yv = regression(32, seed=1)
    net = model()
    cb = ModelCheckpoint(tmp_path / "best-{epoch:02d}-{val_loss:.3f}.npz", save_best_only=True)
    losses = []

    class Weights(Callback):                                 # record the weights of every epoch
        def on_epoch_end(self, epoch, logs=None):
            losses.append((logs["val_loss"], self.model.get_weights()))

    history = net.fit(X, y, optimizer=SGD(0.05), epochs=8, batch_size=8, verbose=0, validation_data=(Xv, yv),
                      callbacks=[cb, Weights()], seed=0)
    val = history.history["val_loss"]
    improved = [e for e in range(len(val)) if val[e] < min(val[:e], default=np.inf)]
    assert [p.split("/")[-1] for p in cb.saved] == [f"best-{e + 1:02d}-{val[e]:.3f}.npz" for e in improved]
    assert cb.best_epoch == int(np.argmin(val)) and cb.best == min(val)
    best = Sequential.load(cb.saved[-1])
    for a, b in zip(best.get_weights(), losses[cb.best_epoch][1]):
        np.testing.assert_array_equal(a, b)
    assert not list(tmp_path.glob("*.tmp"))                 # the atomic save leaves no temporary behind


def test_model_checkpoint_every_epoch_and_errors(tmp_path):
    X, y = regression()
    net = model()
    cb = ModelCheckpoint(tmp_path / "last.npz")
    net.fit(X, y, optimizer=SGD(0.05), epochs=3, verbose=0, callbacks=[cb], seed=0)
    assert cb.saved == [str(tmp_path / "last.npz")] * 3
    for a, b in zip(Sequential.load(tmp_path / "last.npz").get_weights(), net.get_weights()):
        np.testing.assert_array_equal(a, b)
    before = net.get_weights()
    with pytest.raises(FileNotFoundError, match="ModelCheckpoint: path: the directory .*missing.* does not exist"):
        net.fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "missing" / "m.npz")])
    for a, b in zip(before, net.get_weights()):
        np.testing.assert_array_equal(a, b)                  # refused before the first step
    with pytest.raises(KeyError, match=r"path .* names 'val_los' which the epoch logs do not have; available: "
                                       r"epoch, loss, lr"):
        net.fit(X, y, epochs=1, verbose=0, callbacks=[ModelCheckpoint(tmp_path / "{val_los}.npz")])
    with pytest.raises(TypeError, match="path: expected a str or path-like, got int"):
        ModelCheckpoint(3)
