"""SimpleRNN, LSTM (with peepholes) and GRU (both forms): gradients, the input protocol, masks, errors, saving.

Gradients are checked in float64 against central differences
(:func:`layers.testing.check_gradients`) for every cell, both directions,
with and without a mask and an initial state; the initial state (and the
final state with ``return_state``) go through a small probe that exposes
them as parameters and outputs.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend
import layers
from layers import GRU, LSTM, Dense, Sequential, SimpleRNN
from layers.recurrent import sequence_mask
from layers.testing import check_gradients
from optimizers import Adam

B, T, I, H = 2, 4, 3, 4

CELLS = {
    "rnn_tanh": lambda **kw: SimpleRNN(I, H, **kw),
    "rnn_relu": lambda **kw: SimpleRNN(I, H, activation="relu", **kw),
    "lstm": lambda **kw: LSTM(I, H, **kw),
    "lstm_peephole": lambda **kw: LSTM(I, H, peephole=True, **kw),
    "gru": lambda **kw: GRU(I, H, **kw),
    "gru_reset_before": lambda **kw: GRU(I, H, reset_after=False, **kw),
}


def _randomize(layer, seed):
    """Nonzero biases and peepholes (their defaults, 0 and 1, would hide mistakes)."""
    rng = np.random.default_rng(seed)
    for p in layer.params:
        p[...] = backend.to_device(0.6 * rng.standard_normal(p.shape)).astype(p.dtype)
    return layer


def _mask():
    mask = np.ones((B, T))
    mask[0, 1] = 0  # a gap
    mask[1, 2:] = 0  # padding at the end
    return mask


class Probe:
    """``forward(x) = layer.forward((x, state), mask=mask)`` with the state as parameters and outputs flattened.

    Lets :func:`check_gradients` check the initial state's gradient (as a
    parameter) and, with ``return_state``, the final state's (as part of the output).
    """

    def __init__(self, layer, state=(), mask=None):
        self.layer, self.state, self.mask = layer, list(state), mask
        self._sizes = None

    @property
    def params(self):
        return self.layer.params + self.state

    def astype(self, dtype):
        return self

    def _state_arg(self):
        if not self.state:
            return None
        return self.state[0] if len(self.state) == 1 else tuple(self.state)

    def forward(self, x):
        inp = x if not self.state else (x, self._state_arg())
        out = self.layer.forward(inp, mask=self.mask)
        parts = [out] if not self.layer.return_state else [out[0]] + (
            [out[1]] if isinstance(out[1], np.ndarray) else list(out[1]))
        self._sizes = [p.shape for p in parts]
        return np.concatenate([p.reshape(len(x), -1) for p in parts], axis=1)

    def backward(self, g):
        pieces, start = [], 0
        for shape in self._sizes:
            size = int(np.prod(shape[1:]))
            pieces.append(g[:, start:start + size].reshape(shape))
            start += size
        if self.layer.return_state:
            state = pieces[1] if len(pieces) == 2 else tuple(pieces[1:])
            grad = (pieces[0], state)
        else:
            grad = pieces[0]
        grad_input, grads = self.layer.backward(grad)
        if not self.state:
            return grad_input, grads
        dx, d_state = grad_input
        d_state = [d_state] if isinstance(d_state, np.ndarray) else list(d_state)
        return dx, grads + d_state


@pytest.mark.parametrize("cell", sorted(CELLS))
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
@pytest.mark.parametrize("with_state", [False, True], ids=["zero_state", "initial_state"])
def test_gradients(float64, cell, reverse, masked, with_state):
    layer = _randomize(CELLS[cell](return_sequences=True, reverse=reverse, seed=0), seed=1)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((B, T, I))
    state = [rng.standard_normal((B, H)) for _ in layer.states] if with_state else []
    report = check_gradients(Probe(layer, state, _mask() if masked else None), x)
    assert report.ok(1e-6), str(report)


@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_gradients_of_the_final_state_outputs(float64, cell):
    layer = _randomize(CELLS[cell](return_state=True, seed=0), seed=3)
    rng = np.random.default_rng(4)
    state = [rng.standard_normal((B, H)) for _ in layer.states]
    report = check_gradients(Probe(layer, state, _mask()), rng.standard_normal((B, T, I)))
    assert report.ok(1e-6), str(report)


# ---------------------------------------------------------------------------- the protocol
@pytest.mark.parametrize("cell", ["rnn_tanh", "lstm", "gru"])
def test_output_shapes_dtypes_and_structures(device, cell):
    x = backend.to_device(np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32))
    for return_sequences in (False, True):
        layer = CELLS[cell](return_sequences=return_sequences, seed=0)
        y = layer.forward(x)
        assert y.shape == ((B, T, H) if return_sequences else (B, H)) and y.dtype == np.float32
        assert layer.output_shape((B, T, I)) == y.shape
        dx, grads = layer.backward(backend.get_array_module(y).ones_like(y))
        assert dx.shape == x.shape and dx.dtype == np.float32
        assert [g.shape for g in grads] == [p.shape for p in layer.params]
        assert all(g.dtype == np.float32 for g in grads)
    layer = CELLS[cell](return_state=True, seed=0)
    out, state = layer.forward(x)
    parts = (state,) if cell != "lstm" else state
    assert len(parts) == len(layer.states) and all(s.shape == (B, H) for s in parts)
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(parts[0]))  # the output is h_T
    dx, _ = layer.backward((out, None))
    assert dx.shape == x.shape


def test_grad_input_follows_the_input_structure():
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    h0, c0 = np.zeros((B, H), np.float32), np.ones((B, H), np.float32)
    mask = _mask()
    lstm = LSTM(I, H, seed=0)
    g = np.ones((B, H), np.float32)
    lstm.forward(x)
    assert isinstance(lstm.backward(g)[0], np.ndarray)
    lstm.forward(x, initial_state=(h0, c0))
    dx, (dh0, dc0) = lstm.backward(g)[0]
    assert dx.shape == x.shape and dh0.shape == dc0.shape == (B, H)
    lstm.forward((x, None, mask))
    assert lstm.backward(g)[0][1:] == (None, None)
    lstm.forward((x, (h0, c0)))
    assert len(lstm.backward(g)[0]) == 2
    rnn = SimpleRNN(I, H, seed=0)
    rnn.forward((x, h0[:, :H], mask))
    dx, dh0, dmask = rnn.backward(g)[0]
    assert dh0.shape == (B, H) and dmask is None


def test_lengths_are_a_mask_of_padding_at_the_end():
    x = np.random.default_rng(0).standard_normal((3, T, I)).astype(np.float32)
    lengths = np.array([4, 1, 0])
    layer = GRU(I, H, return_sequences=True, seed=0)
    by_lengths = layer.forward(x, lengths=lengths)
    by_mask = layer.forward(x, mask=sequence_mask(lengths, T).astype(bool))
    np.testing.assert_array_equal(by_lengths, by_mask)
    np.testing.assert_array_equal(by_lengths[1, 1:], 0.0)
    short = layer.forward(x[1:2, :1])
    np.testing.assert_allclose(by_lengths[1, 0], short[0, 0], rtol=1e-6)
    assert sequence_mask([2, 0], 3).tolist() == [[1, 1, 0], [0, 0, 0]]


def test_the_last_state_is_taken_at_each_sequences_last_real_step():
    x = np.random.default_rng(1).standard_normal((2, T, I)).astype(np.float32)
    layer = LSTM(I, H, seed=0)
    last = layer.forward(x, lengths=[T, 2])
    alone = layer.forward(x[1:, :2])
    np.testing.assert_allclose(last[1], alone[0], rtol=1e-6)
    reverse = LSTM(I, H, reverse=True, seed=0)
    # read backwards, a sequence padded at the end starts at its last real step
    np.testing.assert_allclose(reverse.forward(x, lengths=[T, 2])[1], reverse.forward(x[1:, :2])[0], rtol=1e-6)


# ---------------------------------------------------------------------------- initialization
def test_initialization():
    lstm = LSTM(I, H, seed=0)
    np.testing.assert_array_equal(lstm.b[H:2 * H], 1.0)  # forget gate
    np.testing.assert_array_equal(np.delete(lstm.b, np.s_[H:2 * H]), 0.0)
    np.testing.assert_allclose(lstm.U @ lstm.U.T, np.eye(H), atol=1e-5)  # orthogonal rows
    same = LSTM(I, H, seed=0)
    np.testing.assert_array_equal(lstm.W, same.W)
    assert not np.array_equal(LSTM(I, H, seed=1).W, lstm.W)
    gru = GRU(I, H, seed=0)
    assert [p.shape for p in gru.params] == [(I, 3 * H), (H, 3 * H), (3 * H,), (3 * H,)]
    assert [p.shape for p in GRU(I, H, reset_after=False).params] == [(I, 3 * H), (H, 3 * H), (3 * H,)]
    assert [p.shape for p in LSTM(I, H, peephole=True).params][-1] == (3, H)
    assert gru.param_names() == ["W", "U", "b", "b_h"]
    assert layers.base.weight_mask(gru) == [True, True, False, False]


# ---------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, error, words", [
    (lambda l: l.forward(np.zeros((B, I), np.float32)), ValueError, ["3-D", "(2, 3)"]),
    (lambda l: l.forward(np.zeros((B, T, I + 1), np.float32)), ValueError, ["3 features", "(2, 4, 4)"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.int64)), TypeError, ["floating-point", "int64"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float64)), TypeError, ["float32", "float64", "astype"]),
    (lambda l: l.forward(np.zeros((B, 0, I), np.float32)), ValueError, ["at least one time step"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32), mask=np.ones((B, T + 1))), ValueError,
     ["mask", "(2, 4)", "(2, 5)"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32), mask=[[1]]), TypeError, ["mask", "list"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32), lengths=[1, T + 1]), ValueError,
     ["lengths", "[0, 4]", "5"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32), lengths=[1]), ValueError, ["lengths", "(2,)", "(1,)"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32), mask=np.ones((B, T)), lengths=[1, 1]), ValueError,
     ["mask and lengths"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32), initial_state=np.zeros((B, H), np.float32)), TypeError,
     ["initial_state", "tuple (h, c)"]),
    (lambda l: l.forward(np.zeros((B, T, I), np.float32),
                         initial_state=(np.zeros((B, H + 1), np.float32), np.zeros((B, H), np.float32))),
     ValueError, ["initial_state[h]", "(2, 4)", "(2, 5)"]),
    (lambda l: l.forward((np.zeros((B, T, I), np.float32), None, None, None)), ValueError, ["length 4"]),
    (lambda l: l.forward((np.zeros((B, T, I), np.float32), None, np.ones((B, T))), mask=np.ones((B, T))),
     ValueError, ["mask", "given twice"]),
    (lambda l: l.backward(np.zeros((B, H), np.float32)), RuntimeError, ["before forward"]),
])
def test_bad_input_is_refused_clearly(call, error, words):
    layer = LSTM(I, H, seed=0)
    with pytest.raises(error) as info:
        call(layer)
    for word in ["LSTM"] + words:
        assert word in str(info.value), (word, str(info.value))


def test_bad_gradients_and_arguments():
    layer = SimpleRNN(I, H, return_state=True, seed=0)
    layer.forward(np.zeros((B, T, I), np.float32))
    with pytest.raises(TypeError, match="tuple \\(d_output, d_final_state\\)"):
        layer.backward(np.zeros((B, H), np.float32))
    with pytest.raises(ValueError, match="expected shape \\(2, 4\\)"):
        layer.backward((np.zeros((B, T, H), np.float32), None))
    with pytest.raises(ValueError, match="activation.*'tanh', 'relu'.*'sigmoid'"):
        SimpleRNN(I, H, activation="sigmoid")
    with pytest.raises(ValueError, match="hidden_size"):
        GRU(I, 0)
    with pytest.raises(TypeError, match="return_sequences"):
        LSTM(I, H, return_sequences="yes")


# ---------------------------------------------------------------------------- training, saving
def test_fit_is_deterministic_and_learns(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 6, 2)).astype(np.float32)
    y = (X[:, :, 0].sum(axis=1) > 0).astype(np.int64)

    def train():
        model = Sequential([LSTM(2, 8, seed=0), Dense(8, 2, seed=1)])
        history = model.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=Adam(0.01), epochs=15,
                            batch_size=16, seed=0, verbose=0)
        return model, history

    model, history = train()
    again, _ = train()
    for a, b in zip(model.params, again.params):
        np.testing.assert_array_equal(a, b)
    assert history.history["loss"][-1] < 0.7 * history.history["loss"][0]
    path = model.save(tmp_path / "lstm.npz")
    loaded = Sequential.load(path)
    np.testing.assert_array_equal(loaded.predict(X[:5]), model.predict(X[:5]))


@pytest.mark.parametrize("cell", sorted(CELLS))
def test_save_and_load_every_cell(tmp_path, cell):
    layer = _randomize(CELLS[cell](return_sequences=True, reverse=True, seed=0), seed=5)
    model = Sequential([layer])
    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    loaded = Sequential.load(model.save(tmp_path / f"{cell}.npz"))
    np.testing.assert_array_equal(loaded.forward(x), model.forward(x))
    assert loaded.layers[0].reverse is True


def test_a_layer_copied_after_forward_still_backpropagates():
    import copy

    x = np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32)
    for layer in (LSTM(I, H, seed=0), GRU(I, H, reset_after=False, seed=0)):
        layer.forward(x)
        twin = copy.deepcopy(layer)
        g = np.ones((B, H), np.float32)
        np.testing.assert_array_equal(twin.backward(g)[0], layer.backward(g)[0])


def test_float64_and_device_moves_keep_working():
    layer = GRU(I, H, seed=0).astype(np.float64).to("cpu")
    assert layer.forward(np.zeros((B, T, I))).dtype == np.float64
