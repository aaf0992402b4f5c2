"""Gated recurrent units (book 24.5.3; Cho et al., 2014)."""

from __future__ import annotations

import kernels.recurrent as rk
from backend.checks import check_bool

from ..initializers import filled
from .base import Recurrent


class GRU(Recurrent):
    """GRU layer (book 24.5.3): an LSTM with the cell and the hidden state merged and two gates.

    Per step t, with the gates in PyTorch's order r, z, n::

        r = σ(x_t W_r + b_r + h_{t-1} U_r + b_hr)                reset gate
        z = σ(x_t W_z + b_z + h_{t-1} U_z + b_hz)                update gate
        n = tanh(x_t W_n + b_n + r ⊙ (h_{t-1} U_n + b_hn))       reset_after=True  (PyTorch, cuDNN)
        n = tanh(x_t W_n + b_n + (r ⊙ h_{t-1}) U_n)              reset_after=False (Cho et al., 2014)
        h_t = (1 - z) ⊙ n + z ⊙ h_{t-1}

    ``reset_after=True`` needs the recurrent bias ``b_h`` (it sits inside the
    product by r) and lets one matrix product per step serve all three gates;
    it is what ``torch.nn.GRU`` computes (``W = weight_ih.T``, ``U = weight_hh.T``,
    ``b = bias_ih``, ``b_h = bias_hh``). ``reset_after=False`` takes two
    products per step (the second needs r).

    Parameters
    ----------
    input_size, hidden_size, return_sequences, return_state, reverse, weight_init, recurrent_init, seed
        As in :class:`~layers.recurrent.simple.SimpleRNN`.
    reset_after : bool
        Which of the two forms above (default True).

    Shapes
    ------
    input (B, T, I) -> output (B, T, H) or (B, H); state h (B, H).
    ``params = [W (I, 3H), U (H, 3H), b (3H,)]`` and ``b_h (3H,)`` with ``reset_after``.

    Backward (one step, g = dE/dh_t)::

        da_n = g (1 - z)(1 - n²);  da_z = g (h_{t-1} - n) z (1 - z);  da_r = d(r) r (1 - r)
        d(r) = da_n ⊙ (h_{t-1} U_n + b_hn)           (reset after)
        d(r) = (da_n U_n^T) ⊙ h_{t-1}                (reset before)
        dE/dh_{t-1} = g z + (recurrent pre-activation gradients) U^T
    """

    cell = "gru"
    gates = 3
    states = ("h",)

    def __init__(self, input_size, hidden_size, return_sequences=False, return_state=False, reverse=False,
                 reset_after=True, weight_init="xavier_uniform", recurrent_init="orthogonal", seed=None):
        self.reset_after = check_bool(reset_after, "reset_after", where="GRU")
        super().__init__(input_size, hidden_size, return_sequences, return_state, reverse, weight_init,
                         recurrent_init, seed)
        if self.reset_after:
            self.b_h = filled((3 * self.hidden_size,), 0.0)
            self.params.append(self.b_h)

    def _param_keys(self) -> list:
        return ["W", "U", "b"] + (["b_h"] if self.reset_after else [])

    def _run(self, x, state, mask):
        h0 = None if state is None else state[0]
        y, h, cache = rk.gru_forward(x, self.W, self.U, self.b, self.b_h if self.reset_after else None, h0, mask,
                                     self.reset_after, self.reverse, self.return_sequences)
        return y, (h,), cache

    def _run_backward(self, cache, dy, d_state):
        dx, grads, dh0 = rk.gru_backward(cache, dy, None if d_state is None else d_state[0])
        return dx, grads, (dh0,)
