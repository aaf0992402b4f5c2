"""Long short-term memory: memory cells with gates, and peephole connections (book 24.3, 24.5.1, 24.5.2)."""

from __future__ import annotations

import kernels.recurrent as rk
from backend.checks import check_bool

from ..initializers import filled
from .base import Recurrent


class LSTM(Recurrent):
    """LSTM layer (Hochreiter and Schmidhuber, 1997; book 24.5.1): an answer to the short-term memory problem.

    Per step t, with the gates in PyTorch's order i, f, g, o (the blocks of
    W, U and b along their last axis, so ``W = weight_ih.T`` and
    ``b = bias_ih + bias_hh`` copy a ``torch.nn.LSTM`` over)::

        [a_i, a_f, a_g, a_o] = x_t W + h_{t-1} U + b
        i = σ(a_i + p_i ⊙ c_{t-1})        input gate
        f = σ(a_f + p_f ⊙ c_{t-1})        forget gate
        g = tanh(a_g)                      candidate
        c_t = f ⊙ c_{t-1} + i ⊙ g          the memory cell (24.3): an additive path through time
        o = σ(a_o + p_o ⊙ c_t)            output gate
        h_t = o ⊙ tanh(c_t)

    The peephole terms (Gers and Schmidhuber, 2000; book 24.5.2) are there only
    with ``peephole=True``. The forget gate's bias starts at 1 (Jozefowicz et al.,
    2015; Gers et al., 2000): the cell remembers by default at the start of
    training, so gradients reach early steps before the gates have learned.

    Parameters
    ----------
    input_size, hidden_size, return_sequences, return_state, reverse, weight_init, recurrent_init, seed
        As in :class:`~layers.recurrent.simple.SimpleRNN`.
    peephole : bool
        Add peephole weights ``p`` (3, H), rows p_i, p_f, p_o (initialised to 0).

    Shapes
    ------
    input (B, T, I) -> output (B, T, H) or (B, H); the state is the pair ``(h, c)``, each (B, H).
    ``params = [W (I, 4H), U (H, 4H), b (4H,)]`` and ``peephole (3, H)`` last when present.

    Backward (one step, g_h = dE/dh_t, g_c = dE/dc_t from step t+1)::

        da_o = g_h tanh(c_t) o (1 - o)
        dc   = g_c + g_h o (1 - tanh² c_t) + da_o p_o
        da_i = dc g i (1 - i);  da_f = dc c_{t-1} f (1 - f);  da_g = dc i (1 - g²)
        dE/dc_{t-1} = dc f + da_i p_i + da_f p_f;   dE/dh_{t-1} = da U^T
    """

    cell = "lstm"
    gates = 4
    states = ("h", "c")

    def __init__(self, input_size, hidden_size, return_sequences=False, return_state=False, reverse=False,
                 peephole=False, weight_init="xavier_uniform", recurrent_init="orthogonal", seed=None):
        self.peephole = check_bool(peephole, "peephole", where="LSTM")
        super().__init__(input_size, hidden_size, return_sequences, return_state, reverse, weight_init,
                         recurrent_init, seed)
        if self.peephole:
            self.p = filled((3, self.hidden_size), 0.0)
            self.params.append(self.p)

    def _bias_init(self, shape, fan_in, fan_out, rng, dtype):
        """Zeros, and 1 on the forget gate's block (the second)."""
        b = filled(shape, 0.0, dtype)
        b[self.hidden_size:2 * self.hidden_size] = 1.0
        return b

    def _param_keys(self) -> list:
        return ["W", "U", "b"] + (["peephole"] if self.peephole else [])

    def _run(self, x, state, mask):
        h0, c0 = (None, None) if state is None else state
        y, (h, c), cache = rk.lstm_forward(x, self.W, self.U, self.b, h0, c0, self.p if self.peephole else None,
                                           mask, self.reverse, self.return_sequences)
        return y, (h, c), cache

    def _run_backward(self, cache, dy, d_state):
        dh, dc = (None, None) if d_state is None else d_state
        dx, grads, (dh0, dc0) = rk.lstm_backward(cache, dy, dh, dc)
        return dx, grads, (dh0, dc0)
