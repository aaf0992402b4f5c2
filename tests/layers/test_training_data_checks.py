"""fit and evaluate check every target once before anything changes, scan data in chunks, report NaN
metrics as NaN and read from_logits of a string loss from the model (issue 13, sections 3 and 6)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

import layers
import optimizers
from layers.losses import Loss, SparseCategoricalCrossEntropy, loss_for_model
from layers.training.data import check_data


def _data(n=600, features=4, classes=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    y = rng.integers(0, classes, n)
    return X, y


def _model(features=4, classes=3, last=None):
    stack = [layers.Dense(features, 8, seed=0), layers.ReLU(), layers.Dense(8, classes, seed=1)]
    return layers.Sequential(stack + ([last] if last is not None else []))


def _unchanged(model, before):
    for w, b in zip(model.get_weights(), before):
        np.testing.assert_array_equal(w, b)


# ----------------------------------------------------------------------------- targets, checked once, up front
def test_a_label_out_of_range_in_a_later_batch_is_refused_before_training():
    X, y = _data()
    y[500] = 7
    model = _model()
    optimizer = optimizers.Adam(0.01)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"SparseCategoricalCrossEntropy: y: label 7 is out of range \[0, 3\) "
                                         r"for y_pred with 3 classes, at y\[500\]"):
        model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), optimizer=optimizer,
                  batch_size=32, verbose=0)
    _unchanged(model, before)
    assert optimizer.iterations == 0


def test_validation_targets_are_checked_before_training_too():
    X, y = _data()
    y_val = y[:100].copy()
    y_val[42] = -1
    model = _model()
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"y_val: label -1 is out of range \[0, 3\).*at y_val\[42\]"):
        model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), validation_data=(X[:100], y_val),
                  verbose=0)
    _unchanged(model, before)


def test_bce_targets_out_of_range_are_refused_by_fit_and_evaluate():
    X, _ = _data()
    y = (X[:, :1] > 0).astype(np.float32)
    y[333, 0] = 2.0
    model = layers.Sequential([layers.Dense(4, 1, seed=0), layers.Sigmoid()])
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: y: expected targets in \[0, 1\], got 2 at y\[333, 0\]"):
        model.fit(X, y, loss="bce", verbose=0)
    with pytest.raises(ValueError, match=r"y: expected targets in \[0, 1\], got 2 at y\[333, 0\]"):
        model.evaluate(X, y, loss="bce")
    _unchanged(model, before)


class _FailsOnBatch(Loss):
    """A user's loss whose own check can only fail on one batch's values."""

    def _values(self, y_pred, y_true, xp):
        if float(y_true.max()) > 100:
            raise ValueError("target too large for this loss")
        return (y_pred - y_true) ** 2

    def _grad(self, y_pred, y_true, xp):
        return 2 * (y_pred - y_true)


def test_a_failure_only_a_later_batch_reveals_names_the_argument_and_the_batch():
    X, _ = _data(n=100)
    y = np.zeros((100, 1), np.float32)
    y[70] = 1000.0
    model = layers.Sequential([layers.Dense(4, 1, seed=0)])
    with pytest.raises(ValueError, match=r"^y: batch 3 of epoch 1 \(samples 64..95\): target too large"):
        model.fit(X, y, loss=_FailsOnBatch(), batch_size=32, shuffle=False, verbose=0)


# ----------------------------------------------------------------------------- chunked scans
def test_the_finite_check_holds_no_full_size_temporary():
    X = np.ones((4000, 1000), np.float32)  # 16 MB: a full-size bool mask would be 4 MB, two of them 8 MB
    y = np.zeros(4000, np.int64)
    X[3999, 999] = np.nan
    tracemalloc.start()
    try:
        with pytest.raises(ValueError, match=r"X: expected finite values, got 1 NaN/inf value\(s\) \(first in "
                                             r"sample 3999\), nan at X\[3999, 999\]"):
            check_data(X, y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 3 * 2**20, f"the finite check allocated {peak / 2**20:.1f} MiB for 16 MB of data"


def test_memory_mapped_data_is_checked_chunk_by_chunk(tmp_path):
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(3000, 500))
    X[:] = 1.0
    X[2500, 7] = np.inf
    X.flush()
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    with pytest.raises(ValueError, match=r"X: .*\(first in sample 2500\), inf at X\[2500, 7\]"):
        check_data(X, np.zeros(3000))


# ----------------------------------------------------------------------------- metrics of NaN outputs
@pytest.mark.filterwarnings("ignore::optimizers.base.NonFiniteWarning")  # the NaN is the point here
def test_metrics_of_a_nan_output_are_nan_in_history_and_evaluate():
    X, y = _data(n=64)
    model = _model()
    model[0].W[0, 0] = np.nan  # every output is NaN from the first batch on
    history = model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), epochs=2, verbose=0)
    assert np.isnan(history["loss"]).all()
    assert np.isnan(history["accuracy"]).all()  # not the argmax of NaN (0.4 or so)
    result = model.evaluate(X, y)
    assert np.isnan(result["loss"]) and np.isnan(result["accuracy"])


def test_one_nan_batch_makes_the_epoch_accuracy_nan():
    from layers.training import metrics

    y_pred = np.array([[0.1, 0.9], [np.nan, 0.2]], np.float32)
    correct, total = metrics.accuracy_counts(y_pred, np.array([1, 0]), metrics.SPARSE)
    assert np.isnan(correct) and total == 2
    assert np.isnan(metrics.accuracy(np.array([[np.nan]]), np.array([[1.0]]), kind=metrics.BINARY))


# ----------------------------------------------------------------------------- string losses and from_logits
@pytest.mark.parametrize("name", ["sparse_categorical_crossentropy", "categorical_crossentropy", "bce"])
def test_a_string_cross_entropy_reads_from_logits_from_the_last_layer(name):
    assert loss_for_model(name, _model()).from_logits is True
    assert loss_for_model(name, _model(last=layers.Softmax())).from_logits is False
    assert loss_for_model(name, _model(last=layers.Sigmoid())).from_logits is False
    nested = layers.Sequential([_model(), layers.Sequential([layers.ReLU(), layers.Softmax()])])
    assert loss_for_model(name, nested).from_logits is False
    chosen = layers.get_loss(name, from_logits=False)
    assert loss_for_model(chosen, _model()) is chosen  # an instance is never changed


def test_the_books_own_sigmoid_counts_as_a_probability_layer():
    from tests.layers.book_code_blocks import Sigmoid as BookSigmoid

    model = layers.Sequential([layers.Dense(4, 1, seed=0), BookSigmoid()])
    assert loss_for_model("binary_crossentropy", model).from_logits is False


def test_fit_with_a_string_loss_on_logits_trains_the_right_loss():
    """The issue's case: 7.85 instead of 0.81 at the first step; now the first loss is the logit loss."""
    X, y = _data(n=64)
    reference = _model()
    expected = SparseCategoricalCrossEntropy(from_logits=True)(reference.predict(X), y)
    model = _model()
    history = model.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=optimizers.SGD(0.1),
                        batch_size=64, verbose=0)
    assert model.loss.from_logits is True
    assert history["loss"][0] == pytest.approx(expected, rel=1e-6)
    assert "from_logits=True" in history.params["loss"]


# ----------------------------------------------------------------------------- bool flags
@pytest.mark.parametrize("make", [
    lambda: layers.Dense(2, 2, use_bias="no"),
    lambda: layers.LayerNormalization(3, center="no"),
    lambda: layers.LayerNormalization(3, scale=1),
    lambda: layers.Dense(2, 2).train("no"),
    lambda: layers.Sequential([layers.Dense(4, 1)]).fit(np.ones((4, 4)), np.ones((4, 1)), shuffle="no", verbose=0),
    lambda: layers.Sequential([layers.Dense(4, 1)]).fit(np.ones((4, 4)), np.ones((4, 1)), track_gradients=None,
                                                         verbose=0),
])
def test_bool_flags_refuse_non_bools(make):
    with pytest.raises(TypeError, match=r"(use_bias|center|scale|mode|shuffle|track_gradients): expected True or "
                                        r"False, got"):
        make()



def test_a_bad_first_label_is_reported_by_the_whole_array_check():
    X, y = _data()
    y[0] = 3
    with pytest.raises(ValueError, match=r"^SparseCategoricalCrossEntropy: y: label 3 is out of range.*at y\[0\]$"):
        _model().fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), verbose=0)
