"""fit(communicator=...), sync BatchNormalization and rank-0-only saving in one process (a loopback communicator).

The real multi-rank runs are in test_mpi_ranks.py; here: the checks, the
one-rank case (identical to plain fit), the collectives sync BatchNormalization
makes, and who writes files.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend
from backend.distributed import current_communicator, use_communicator
from layers import BatchNormalization, Dense, ReLU, Sequential
from layers.testing import check_gradients
from layers.training import EarlyStopping, ModelCheckpoint
from layers.training.batches import ArrayBatches
from layers.training.distributed import start
from layers.training.metrics import Metric
from optimizers import Adam, DataParallel
from tests.distributed.loopback import LoopbackCommunicator


def data(n=40):
    rng = np.random.default_rng(0)
    return rng.standard_normal((n, 3)), rng.integers(0, 2, n)


def model(batch_norm=False, sync=False):
    with backend.use_device("cpu"), backend.use_dtype(np.float64):
        middle = [BatchNormalization(4, sync=sync)] if batch_norm else []
        return Sequential([Dense(3, 4, seed=0), *middle, ReLU(), Dense(4, 2, seed=1)])


def train(communicator, **kwargs):
    net = model(batch_norm=True)
    X, y = data()
    history = net.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=Adam(1e-2), epochs=3, batch_size=8,
                      seed=1, verbose=0, validation_data=(X[:9], y[:9]), communicator=communicator, **kwargs)
    return net, history


def test_one_rank_is_plain_fit_exactly():
    plain, plain_history = train(None)
    parallel, history = train(LoopbackCommunicator(size=1))
    assert all(np.array_equal(a, b) for a, b in zip(plain.params, parallel.params))
    assert history.history == plain_history.history
    assert current_communicator() is None          # restored after fit


def test_the_wrapper_alone_makes_fit_data_parallel():
    comm = LoopbackCommunicator(size=1)
    net = model()
    X, y = data()
    net.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=DataParallel(Adam(1e-2), comm), epochs=1,
            batch_size=8, verbose=0)
    assert isinstance(net.optimizer, Adam) and net.optimizer.iterations == 5


@pytest.mark.parametrize("size, batch_size, text", [
    (4, 2, "batch_size=2 and 40 samples leave batches smaller"),
    (4, 13, "leave a last batch of 1 smaller"),
])
def test_batches_too_small_for_the_ranks_are_refused_before_training(size, batch_size, text):
    net = model()
    before = [p.copy() for p in net.params]
    X, y = data()
    with pytest.raises(ValueError, match=text):
        net.fit(X, y, loss="sparse_categorical_crossentropy", optimizer="sgd", batch_size=batch_size, verbose=0,
                communicator=LoopbackCommunicator(size=size))
    assert all(np.array_equal(a, b) for a, b in zip(before, net.params))


def test_communicator_is_checked():
    X, y = data()
    loss = "sparse_categorical_crossentropy"
    with pytest.raises(TypeError, match="fit: communicator: expected a backend.distributed.Communicator"):
        model().fit(X, y, loss=loss, verbose=0, communicator="mpi")
    with pytest.raises(ValueError, match="has another communicator"):
        model().fit(X, y, loss=loss, verbose=0, optimizer=DataParallel("sgd", LoopbackCommunicator(size=1)),
                    communicator=LoopbackCommunicator(size=1))


def test_only_rank_zero_writes_checkpoints(tmp_path):
    net = model()
    with use_communicator(LoopbackCommunicator(rank=1, size=2)):
        assert net.save(tmp_path / "rank1.npz") == str(tmp_path / "rank1.npz")
    assert not (tmp_path / "rank1.npz").exists()
    with use_communicator(LoopbackCommunicator(rank=0, size=2)):
        net.save(tmp_path / "rank0.npz")
    assert (tmp_path / "rank0.npz").exists()


def test_callbacks_in_a_one_rank_fit(tmp_path):
    stop = EarlyStopping(monitor="val_loss", patience=0, min_delta=10.0)   # stops after epoch 2
    checkpoint = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss")
    _, history = train(LoopbackCommunicator(size=1), callbacks=[stop, checkpoint])
    assert len(history.history["loss"]) == 2 and stop.stopped_epoch == 1
    assert (tmp_path / "best.npz").exists()


# -- synchronized BatchNormalization ------------------------------------------------------------------------
def test_sync_without_a_communicator_is_the_plain_layer():
    x = np.random.default_rng(0).standard_normal((6, 4))
    plain, synced = BatchNormalization(4), BatchNormalization(4, sync=True)
    np.testing.assert_array_equal(plain.forward(x), synced.forward(x))
    g = np.random.default_rng(1).standard_normal((6, 4))
    np.testing.assert_array_equal(plain.backward(g)[0], synced.backward(g)[0])


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 2, 4)])
def test_sync_over_ranks_holding_the_same_slice_is_the_plain_layer(shape):
    """Every loopback rank holds ``x``: the global batch is copies of ``x``, with ``x``'s statistics."""
    rng = np.random.default_rng(0)
    x, g = rng.standard_normal(shape), rng.standard_normal(shape)
    comm = LoopbackCommunicator(size=2)
    plain, synced = BatchNormalization(4), BatchNormalization(4, sync=True)
    with use_communicator(comm):
        out = synced.forward(x)
        grad_input, grads = synced.backward(g)
    np.testing.assert_allclose(out, plain.forward(x), rtol=1e-13, atol=1e-13)
    expected_input, expected_grads = plain.backward(g)
    np.testing.assert_allclose(grad_input, expected_input, rtol=1e-12, atol=1e-13)
    for a, b in zip(grads, expected_grads):
        np.testing.assert_allclose(a, b, rtol=1e-13)
    np.testing.assert_allclose(synced.running_var, plain.running_var, rtol=1e-13)
    assert [kind for kind, _ in comm.calls] == ["allreduce"] * 3
    assert out.dtype == x.dtype and grad_input.shape == x.shape


def test_sync_gradients_by_central_differences(float64):
    x = np.random.default_rng(2).standard_normal((5, 3))
    with use_communicator(LoopbackCommunicator(size=2)):
        report = check_gradients(BatchNormalization(3, sync=True), x)
    assert report.max_error < 1e-6, report


def test_sync_float32_keeps_its_dtype():
    x = np.random.default_rng(0).standard_normal((4, 3)).astype(np.float32)
    layer = BatchNormalization(3, sync=True)
    with use_communicator(LoopbackCommunicator(size=2)):
        out = layer.forward(x)
        grad_input, _ = layer.backward(np.ones_like(out))
    assert out.dtype == np.float32 and grad_input.dtype == np.float32


def test_sync_survives_save_and_load(tmp_path):
    net = model(batch_norm=True, sync=True)
    net.save(tmp_path / "m.npz")
    loaded = Sequential.load(tmp_path / "m.npz")
    assert loaded.layers[1].sync is True


def test_sync_is_a_bool():
    with pytest.raises(TypeError, match="sync: expected True or False"):
        BatchNormalization(3, sync="yes")


# -- what a data-parallel fit cannot split ------------------------------------------------------------------------
def test_iterables_and_metrics_without_merge_are_refused_before_training():
    X, y = data()
    batches = [(X[:8], y[:8]), (X[8:16], y[8:16])]
    loss = "sparse_categorical_crossentropy"

    class Last(Metric):
        def update(self, y_pred, y_true):
            self.value = float(y_pred.mean())

        def result(self):
            return self.value

    for kwargs, error, text in [
        ({"X": batches, "y": None}, ValueError, r"fit: X: data-parallel training needs arrays .* got an iterable"),
        ({"validation_data": batches}, ValueError, r"fit: validation_data: data-parallel training needs arrays"),
        ({"metrics": [Last()]}, TypeError, r"fit: metrics: 'metric' \(Last\) has no merge"),
    ]:
        net = model()
        before = [p.copy() for p in net.params]
        comm = LoopbackCommunicator(size=2)
        with pytest.raises(error, match=text):
            net.fit(**{"X": X, "y": y, **kwargs}, loss=loss, batch_size=8, verbose=0, communicator=comm)
        assert comm.calls == [] and current_communicator() is None
        assert all(np.array_equal(a, b) for a, b in zip(before, net.params))


@pytest.mark.parametrize("size", [2, 3])
def test_the_ranks_slices_partition_every_batch(size):
    """Shuffled or in order, short last batch included; a batch smaller than the ranks leaves some with none."""
    X, y = data(n=20)
    slices, orders = [], []
    for rank in range(size):
        net = model()
        train = ArrayBatches(X, y, 8, backend.Device("cpu"), np.float64, True)
        parallel = start(net, LoopbackCommunicator(rank=rank, size=size), "sgd", train, epochs=1, shuffle=True,
                         seed=0, loss=None)
        parallel.close()
        order = np.random.default_rng(0).permutation(20)
        slices.append([(parallel.shard(slice(s, s + 8), 20)) for s in (0, 8, 16)])
        orders.append([parallel.shard(order[s:s + 8], 20) for s in (0, 8, 16)])
        assert train.shard == parallel.shard
        assert (parallel.shard(slice(0, 1), 20) is None) == (rank < size - 1)   # one sample: the last rank's
    for step, (start_, stop) in enumerate([(0, 8), (8, 16), (16, 20)]):
        covered = np.concatenate([np.arange(20)[slices[r][step]] for r in range(size)])
        np.testing.assert_array_equal(covered, np.arange(start_, stop))
        order = np.random.default_rng(0).permutation(20)[start_:stop]
        np.testing.assert_array_equal(np.concatenate([orders[r][step] for r in range(size)]), order)
