"""Data that does not fit in memory (issue 14 §4): memory-mapped arrays and iterables of batches in fit,
evaluate and predict, with the next batch prefetched in a background thread."""

from __future__ import annotations

import threading
import time
import tracemalloc

import numpy as np
import pytest

import layers
import optimizers
from layers.training.batches import prefetched


def _model(features=6, seed=0):
    return layers.Sequential([layers.Dense(features, 8, seed=seed), layers.ReLU(), layers.Dense(8, 3, seed=seed + 1)])


def _data(n=100, features=6, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, features)).astype(np.float32), rng.integers(0, 3, n)


def _fit(model, X, y=None, **kwargs):
    options = dict(loss=layers.SparseCategoricalCrossEntropy(from_logits=True), optimizer=optimizers.SGD(0.1),
                   epochs=2, batch_size=16, verbose=0, seed=0)
    options.update(kwargs)
    return model.fit(X, y, **options)


def _same_weights(a, b):
    return all(p.tobytes() == q.tobytes() for p, q in zip(a.params, b.params))


# -- memory-mapped arrays ------------------------------------------------------------------------------------------
def test_a_memory_mapped_set_larger_than_the_memory_cap_trains_batch_by_batch(tmp_path):
    samples, features = 16384, 256                         # 16 MiB of float32 on disk
    X = np.lib.format.open_memmap(tmp_path / "X.npy", mode="w+", dtype=np.float32, shape=(samples, features))
    rng = np.random.default_rng(0)
    for start in range(0, samples, 4096):
        X[start:start + 4096] = rng.standard_normal((4096, features), dtype=np.float32)
    X.flush()
    y = rng.integers(0, 3, samples)
    mapped = np.load(tmp_path / "X.npy", mmap_mode="r")
    model = _model(features)
    _fit(_model(features), np.array(mapped[:64]), y[:64], epochs=1, metrics=["accuracy", "f1"])  # compile first
    model.predict(np.array(mapped[:64]))
    cap = 4 * 2**20                                        # a quarter of the data set
    tracemalloc.start()
    try:
        history = _fit(model, mapped, y, epochs=1, batch_size=256, metrics=["accuracy", "f1"])
        predictions = model.predict(mapped, batch_size=1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < cap + predictions.nbytes, f"fit and predict allocated {peak / 2**20:.1f} MiB for 16 MiB of data"
    in_memory = _model(features)
    reference = _fit(in_memory, np.array(mapped), y, epochs=1, batch_size=256, metrics=["accuracy", "f1"])
    assert _same_weights(model, in_memory)                 # the same shuffled batches, the same steps
    assert history.history == reference.history


# -- iterables of batches -------------------------------------------------------------------------------------------
def _batches(X, y, size=16):
    return [(X[s:s + size], y[s:s + size]) for s in range(0, len(X), size)]


def test_a_generator_trains_like_the_arrays_it_yields():
    X, y = _data()
    arrays = _model()
    reference = _fit(arrays, X, y, shuffle=False, metrics=["accuracy", "f1_macro"])

    def forever():
        while True:
            yield from _batches(X, y)

    streamed = _model()
    history = _fit(streamed, forever(), steps_per_epoch=7, metrics=["accuracy", "f1_macro"])
    assert _same_weights(arrays, streamed)
    assert history.history == reference.history
    listed = _model()                                      # a list starts again every epoch
    _fit(listed, _batches(X, y), metrics=())
    assert _same_weights(arrays, listed)


def test_evaluate_and_predict_read_iterables_too():
    X, y = _data()
    model = _model()
    _fit(model, X, y)
    assert model.evaluate(iter(_batches(X, y, 32)), metrics=["accuracy", "precision"]) == pytest.approx(
        model.evaluate(X, y, batch_size=32, metrics=["accuracy", "precision"]), rel=1e-12)
    np.testing.assert_array_equal(model.predict(iter([X[:40], X[40:]])), model.predict(X, batch_size=40))


def test_validation_data_may_be_batches():
    X, y = _data()
    model = _model()
    history = _fit(model, X, y, validation_data=_batches(X, y, 25))
    assert history["val_loss"][-1] == pytest.approx(model.evaluate(X, y, batch_size=25)["loss"], rel=1e-12)


def test_a_generator_that_raises_is_reported_in_the_caller_naming_the_batch():
    X, y = _data()

    def failing():
        yield X[:16], y[:16]
        yield X[16:32], y[16:32]
        raise OSError("the disk went away")

    with pytest.raises(OSError, match=r"^X: batch 3 of epoch 1: the disk went away$") as info:
        _fit(_model(), failing(), epochs=1)
    assert isinstance(info.value.__cause__, OSError)


def test_bad_batches_from_an_iterable_name_the_batch():
    X, y = _data()
    nan_batch = X[16:32].copy()
    nan_batch[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"^X: batch 2 of epoch 1: X: expected finite values"):
        _fit(_model(), iter([(X[:16], y[:16]), (nan_batch, y[16:32])]), epochs=1)
    labels = y[16:32].copy()
    labels[5] = 7
    with pytest.raises(ValueError, match=r"^y: batch 2 of epoch 1: .*label 7 is out of range \[0, 3\)"):
        _fit(_model(), iter([(X[:16], y[:16]), (X[16:32], labels)]), epochs=1)
    with pytest.raises(TypeError, match=r"^X: batch 1 of epoch 1: expected a batch \(x, y\), got ndarray"):
        _fit(_model(), iter([X[:16]]), epochs=1)


def test_a_generator_cannot_start_again_without_steps_per_epoch():
    X, y = _data()
    model = _model()
    before = [p.copy() for p in model.params]
    with pytest.raises(ValueError, match=r"^X: a generator .* cannot start again for epoch 2 of 2; pass steps_per"):
        _fit(model, iter(_batches(X, y)), epochs=2)
    assert all(p.tobytes() == q.tobytes() for p, q in zip(model.params, before))   # refused before training
    with pytest.raises(ValueError, match=r"^X: batch 5 of epoch 1: the iterable ran out of batches"):
        _fit(_model(), iter(_batches(X, y)[:4]), steps_per_epoch=6, epochs=1)
    with pytest.raises(TypeError, match=r"^steps_per_epoch: expected None for arrays"):
        _fit(_model(), X, y, steps_per_epoch=3)


# -- the prefetching thread -----------------------------------------------------------------------------------------
def test_prefetched_keeps_the_order_and_hands_errors_to_the_caller():
    def numbers():
        yield from range(50)
        raise KeyError("at 50")

    seen = []
    with pytest.raises(KeyError, match="at 50"), prefetched(numbers()) as items:
        for value in items:
            seen.append(value)
    assert seen == list(range(50))


def test_prefetched_stops_its_thread_when_the_loop_stops_early():
    def slow_forever():
        i = 0
        while True:
            time.sleep(0.001)
            yield i
            i += 1

    before = threading.active_count()
    with prefetched(slow_forever(), depth=2) as items:
        assert [next(items) for _ in range(3)] == [0, 1, 2]
    assert threading.active_count() == before


def test_fit_prefetches_an_iterable_in_another_thread():
    X, y = _data()
    threads = set()

    def recording():
        while True:
            for batch in _batches(X, y):
                threads.add(threading.current_thread().name)
                yield batch

    _fit(_model(), recording(), steps_per_epoch=7, epochs=1)
    assert threads == {"camadas-prefetch"}
