"""Bidirectional and TimeDistributed: gradients, merges, states, masks, errors, nesting and saving."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from layers import GRU, LSTM, Bidirectional, Dense, Embedding, Sequential, SimpleRNN, TimeDistributed, get_activation
from layers.recurrent.wrappers import mirrored
from layers.testing import check_gradients
from optimizers import Adam

B, T, I, H = 2, 4, 3, 4


def _randomize(block, seed):
    rng = np.random.default_rng(seed)
    for p in block.params:
        p[...] = 0.6 * rng.standard_normal(p.shape)
    return block


@pytest.mark.parametrize("merge", ["concat", "sum", "ave", "mul"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_bidirectional_gradients(float64, merge, return_sequences):
    block = _randomize(Bidirectional(GRU(I, H, return_sequences=return_sequences, seed=0), merge=merge), seed=1)
    x = np.random.default_rng(2).standard_normal((B, T, I))
    report = check_gradients(block, x)
    assert report.ok(1e-6), str(report)


class _Masked:
    """check_gradients on a block called with a mask and initial states (states as parameters)."""

    def __init__(self, block, states, mask):
        self.block, self.states, self.mask = block, states, mask

    @property
    def params(self):
        return self.block.params + [s for pair in self.states for s in pair]

    def astype(self, dtype):
        return self

    def forward(self, x):
        return self.block.forward((x, tuple(tuple(pair) for pair in self.states), self.mask))

    def backward(self, g):
        (dx, (d_f, d_b), d_mask), grads = self.block.backward(g)
        assert d_mask is None
        return dx, grads + list(d_f) + list(d_b)


def test_bidirectional_gradients_with_mask_and_initial_states(float64):
    block = _randomize(Bidirectional(LSTM(I, H, return_sequences=True, peephole=True, seed=0)), seed=3)
    rng = np.random.default_rng(4)
    states = [[rng.standard_normal((B, H)) for _ in range(2)] for _ in range(2)]
    mask = np.array([[1, 1, 1, 1], [1, 0, 1, 0]])
    report = check_gradients(_Masked(block, states, mask), rng.standard_normal((B, T, I)))
    assert report.ok(1e-6), str(report)


def test_bidirectional_structure(device):
    rnn = SimpleRNN(I, H, return_sequences=True, return_state=True, seed=0)
    block = Bidirectional(rnn)
    assert block.backward_layer.reverse and not block.forward_layer.reverse
    assert not np.array_equal(backend.to_numpy(block.backward_layer.W), backend.to_numpy(rnn.W))
    assert len(block.params) == 6 and block.param_names()[:3] == ["0.W", "0.U", "0.b"]
    x = backend.to_device(np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32))
    y, (h_f, h_b) = block.forward(x)
    assert y.shape == (B, T, 2 * H) and y.dtype == np.float32 and block.output_shape((B, T, I)) == y.shape
    np.testing.assert_array_equal(backend.to_numpy(y[:, -1, :H]), backend.to_numpy(h_f))  # forward ends at T-1
    np.testing.assert_array_equal(backend.to_numpy(y[:, 0, H:]), backend.to_numpy(h_b))  # backward ends at 0
    dx, grads = block.backward((backend.get_array_module(y).ones_like(y), None))
    assert dx.shape == x.shape and len(grads) == 6


def test_mirror_follows_dtype_device_and_seed():
    lstm = LSTM(I, H, peephole=True, seed=3).astype(np.float64)
    mirror = mirrored(lstm)
    assert mirror.W.dtype == np.float64 and mirror.peephole and mirror.reverse
    np.testing.assert_array_equal(mirrored(lstm).W, mirror.W)  # seeded: the same mirror every time
    assert not np.array_equal(mirror.W, lstm.W)


def test_bidirectional_errors():
    with pytest.raises(TypeError, match="Bidirectional: layer: expected a recurrent layer.*Dense"):
        Bidirectional(Dense(2, 2))
    with pytest.raises(ValueError, match="merge: expected one of 'concat', 'sum', 'ave', 'mul', got 'max'"):
        Bidirectional(GRU(I, H), merge="max")
    with pytest.raises(ValueError, match="backward_layer: reverse: expected True"):
        Bidirectional(GRU(I, H), backward_layer=GRU(I, H))
    with pytest.raises(ValueError, match="backward_layer: hidden_size: expected 4.*got 5"):
        Bidirectional(GRU(I, H), merge="sum", backward_layer=GRU(I, H + 1, reverse=True))
    Bidirectional(GRU(I, H), backward_layer=LSTM(I, H + 1, reverse=True))  # concat: any size, any cell
    block = Bidirectional(GRU(I, H))
    with pytest.raises(TypeError, match="initial_state: expected a pair"):
        block.forward(np.zeros((B, T, I), np.float32), initial_state=np.zeros((B, H), np.float32))
    block.forward(np.zeros((B, T, I), np.float32))
    with pytest.raises(ValueError, match="grad_output: expected shape \\(2, 8\\)"):
        block.backward(np.zeros((B, H), np.float32))


def test_time_distributed_is_the_layer_at_every_step(float64):
    dense = _randomize(Dense(H, 3, seed=0), seed=1)
    block = TimeDistributed(dense)
    x = np.random.default_rng(5).standard_normal((B, T, H))
    y = block.forward(x)
    for t in range(T):
        np.testing.assert_allclose(y[:, t], dense.forward(x[:, t]), rtol=1e-14)
    assert block.output_shape((B, T, H)) == (B, T, 3)
    assert check_gradients(block, x).ok(1e-7)
    with pytest.raises(ValueError, match="TimeDistributed: input_data: expected an array \\(batch, steps, ...\\)"):
        block.forward(np.zeros(3))


def test_a_sequence_model_trains_saves_and_loads(tmp_path):
    """Embedding -> LSTM (sequences) -> TimeDistributed(Dense): next-token prediction on a toy language."""
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 5, (48, 6))
    target = (ids + 1) % 5  # each step: the id that follows
    model = Sequential([Embedding(5, 4, seed=0), Bidirectional(LSTM(4, 8, return_sequences=True, seed=1)),
                        TimeDistributed(Sequential([Dense(16, 16, seed=2), get_activation("tanh"),
                                                    Dense(16, 5, seed=3)]))])
    x = ids.astype(np.int64)
    before = model.evaluate(x, target, loss="sparse_categorical_crossentropy")["loss"]
    model.fit(x, target, loss="sparse_categorical_crossentropy", optimizer=Adam(0.01), epochs=20, batch_size=16,
              seed=0, verbose=0)
    after = model.evaluate(x, target)["loss"]
    assert after < 0.5 * before
    loaded = Sequential.load(model.save(tmp_path / "seq.npz"))
    np.testing.assert_array_equal(loaded.predict(x[:3]), model.predict(x[:3]))
    model.summary()
