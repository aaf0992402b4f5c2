"""The simple (Elman) recurrent layer: recurrent neurons and cells (book sections 24.2 and 24.4)."""

from __future__ import annotations

import kernels.recurrent as rk
from backend.checks import check_choice

from .base import Recurrent


class SimpleRNN(Recurrent):
    """Elman recurrent layer (book 24.2): a cell whose output is fed back as its next input.

    Per step t (the time steps visited in order, or from T-1 down to 0 with ``reverse``)::

        h_t = f(x_t W + h_{t-1} U + b),      f = tanh (default) or ReLU

    Parameters
    ----------
    input_size, hidden_size : int
        I, the features of each step; H, the units of the cell.
    activation : {"tanh", "relu"}
        f (the two with a fused kernel; PyTorch's ``nonlinearity`` choices).
    return_sequences : bool
        Output every step's h ``(B, T, H)`` instead of the last one ``(B, H)``.
    return_state : bool
        Output ``(output, h_T)``.
    reverse : bool
        Read the sequence from its end (the backward half of :class:`Bidirectional`).
    weight_init, recurrent_init : str or callable
        Initializers of W (default Xavier uniform) and U (default orthogonal:
        repeated products by U neither explode nor vanish at the start).
    seed : int, optional
        Seed of the initializers (W and U draw from separate streams of it).

    Shapes
    ------
    input (B, T, I) -> output (B, T, H) or (B, H); ``params = [W (I, H), U (H, H), b (H,)]``.
    The input protocol (initial state, mask, lengths) is :class:`~layers.recurrent.base.Recurrent`'s.

    Backward (backpropagation through time)::

        g_t = dE/dy_t + dE/dh_t (from step t+1);   da_t = g_t ⊙ f'(a_t)
        dE/dh_{t-1} = da_t U^T;   dW = Σ_t x_t^T da_t;   dU = Σ_t h_{t-1}^T da_t;   db = Σ_t da_t
    """

    cell = "rnn"
    gates = 1
    states = ("h",)

    def __init__(self, input_size, hidden_size, activation="tanh", return_sequences=False, return_state=False,
                 reverse=False, weight_init="xavier_uniform", recurrent_init="orthogonal", seed=None):
        self.activation = check_choice(activation, "activation", rk.RNN_ACTIVATIONS, where="SimpleRNN")
        super().__init__(input_size, hidden_size, return_sequences, return_state, reverse, weight_init,
                         recurrent_init, seed)

    def _run(self, x, state, mask):
        h0 = None if state is None else state[0]
        y, h, cache = rk.rnn_forward(x, self.W, self.U, self.b, h0, mask, self.activation, self.reverse,
                                     self.return_sequences)
        return y, (h,), cache

    def _run_backward(self, cache, dy, d_state):
        dx, grads, dh0 = rk.rnn_backward(cache, dy, None if d_state is None else d_state[0])
        return dx, grads, (dh0,)
