"""The fast time loops: big matrix products outside the loop, one product and one fused kernel per step.

Forward, for every cell (``G`` gates of ``H`` units)::

    A = X W + b                         one (T·B, I) x (I, G·H) product for all steps, before the loop
    for t (forward or reverse):
        hu = h_{t-1} U                  one (B, H) x (H, G·H) product (BLAS / cuBLAS)
        kernel(A[t], hu, state) -> gates[t], state_t      one fused pass (cpu.py / gpu.py)

Backward walks the steps in reverse with one product ``dA[t] U^T`` and one
fused kernel per step, and leaves the parameter gradients to three large
products after the loop: ``dW = X^T dA``, ``dU = Σ_t h_{t-1}^T dA[t]`` (two
products: the first step's ``h0`` and the rest), ``dX = dA W^T``. Every sum
runs in a fixed order, so a seed gives the same weights on every run.

Arrays are time-major inside (``(T, B, ·)``, each step a contiguous block);
the public functions take and return batch-major arrays. ``kernels`` is the
module of step kernels (:mod:`kernels.recurrent.cpu` or :mod:`kernels.recurrent.gpu`).
"""

from __future__ import annotations

import sys

import backend

from .catalog import SequenceCache, time_steps


# ============================================================================ shared pieces
def _time_major(x):
    xp = backend.get_array_module(x)
    return xp.ascontiguousarray(x.transpose(1, 0, 2))


def _step_mask(xp, mask, B, T, dtype):
    """``(T, B)`` mask of x's dtype (ones when None): one value per row and step."""
    if mask is None:
        return xp.ones((T, B), dtype=dtype)
    return xp.ascontiguousarray(mask.T).astype(dtype, copy=False)


def _project(xs, W, b):
    """``X W + b`` for every step at once: ``(T, B, I) -> (T, B, G·H)``."""
    T, B, I = xs.shape
    a = xs.reshape(T * B, I) @ W
    if b is not None:
        a += b
    return a.reshape(T, B, W.shape[1])


def _previous(states, s0, t, reverse):
    """The state the step ``t`` started from."""
    tp = t + 1 if reverse else t - 1
    return s0 if tp < 0 or tp >= len(states) else states[tp]


def _pairs(states, s0, da, reverse):
    """Every step's starting state beside its gradient: ``(s0, da[first]), (states[...], da[...])``."""
    if reverse:
        return (s0, da[-1]), (states[1:], da[:-1])
    return (s0, da[0]), (states[:-1], da[1:])


def _paired_sum(states, s0, da, reverse):
    """``Σ_t prev(t)^T da[t]`` (dU): the product of every step's starting state with its gradient, in two products."""
    (first_state, first_da), (rest_prev, rest_da) = _pairs(states, s0, da, reverse)
    total = first_state.T @ first_da
    if da.shape[0] > 1:
        total += rest_prev.reshape(-1, rest_prev.shape[2]).T @ rest_da.reshape(-1, rest_da.shape[2])
    return total


def _paired_dot(states, s0, da, reverse):
    """``Σ_t Σ_b prev(t) ⊙ da[t]`` (a peephole's gradient): one value per unit."""
    (first_state, first_da), (rest_prev, rest_da) = _pairs(states, s0, da, reverse)
    return (first_state * first_da).sum(axis=0) + (rest_prev * rest_da).sum(axis=(0, 1))


def _input_grads(xs, W, da):
    """``(dx (B, T, I), dW, db)`` from ``da`` (T, B, G·H): three whole-sequence products and a sum."""
    xp = backend.get_array_module(da)
    T, B, G = da.shape
    flat = da.reshape(T * B, G)
    dW = xs.reshape(T * B, -1).T @ flat
    db = flat.sum(axis=0)
    dx = xp.ascontiguousarray((flat @ W.T).reshape(T, B, -1).transpose(1, 0, 2))
    return dx, dW, db


def _outputs(hs, mask):
    """Batch-major outputs ``(B, T, H)``; 0 at padded steps."""
    y = _time_major(hs)
    if mask is not None:
        y *= mask[:, :, None]
    return y


def _output_grads(dy, xp, B, H, dtype):
    """Time-major ``dy`` and the zero block used where there is none."""
    zero = xp.zeros((B, H), dtype=dtype)
    return (None if dy is None else _time_major(dy)), zero


def _carry(xp, given, B, H, dtype):
    return xp.zeros((B, H), dtype=dtype) if given is None else xp.array(given, dtype=dtype, copy=True)


def _forward_start(x, W, U, b, mask):
    """What every forward begins with: ``(xp, (B, T, H), xs, a, m)``: time-major x, its projection, the mask."""
    xp = backend.get_array_module(x)
    B, T, _ = x.shape
    xs = _time_major(x)
    return xp, (B, T, U.shape[0]), xs, _project(xs, W, b), _step_mask(xp, mask, B, T, x.dtype)


def _backward_start(cache, dy, dh_last):
    """What every backward begins with: ``(arrays, options, xp, (B, T, H), dtype, dys, zero, carry, gemm)``.

    ``dys``: time-major dy (or None); ``zero``: a (B, H) block of zeros for steps without one;
    ``carry``: dE/dh_T to start from; ``gemm``: the recurrent product's gradient (0 before the last step).
    """
    c = cache.arrays
    xp = backend.get_array_module(c["hs"])
    B, T, _, H = cache.shape
    dtype = c["hs"].dtype
    dys, zero = _output_grads(dy, xp, B, H, dtype)
    return (c, cache.options, xp, (B, T, H), dtype, dys, zero, _carry(xp, dh_last, B, H, dtype),
            xp.zeros((B, H), dtype=dtype))


def _cache(cell, kernels, x, H, options, **arrays):
    B, T, I = x.shape
    return SequenceCache(cell, sys.modules[__name__], (B, T, I, H), dict(options, kernels=kernels), arrays)


# ============================================================================ SimpleRNN
def rnn_forward(kernels, x, W, U, b, h0, mask=None, activation="tanh", reverse=False, return_sequences=True):
    """:func:`kernels.recurrent.rnn_forward` on the step kernels of ``kernels``: ``(y or None, h_T, cache)``."""
    xp, (B, T, H), xs, a, m = _forward_start(x, W, U, b, mask)
    hs = xp.empty((T, B, H), dtype=x.dtype)
    hu = xp.empty((B, H), dtype=x.dtype)
    relu = activation == "relu"
    h = h0
    for t in time_steps(T, reverse):
        xp.matmul(h, U, out=hu)
        kernels.rnn_fwd(a[t], hu, h, m[t], relu, hs[t])
        h = hs[t]
    y = _outputs(hs, mask) if return_sequences else None
    cache = _cache("rnn", kernels, x, H, {"relu": relu, "reverse": reverse},
                   xs=xs, W=W, U=U, h0=h0, hs=hs, m=m)
    return y, h, cache


def rnn_backward(cache, dy, dh_last):
    """BPTT of :func:`rnn_forward`: ``(dx, {"W", "U", "b"}, dh0)``."""
    c, o, xp, (B, T, H), dtype, dys, zero, carry, gemm = _backward_start(cache, dy, dh_last)
    da = xp.empty((T, B, H), dtype=dtype)
    U_T = c["U"].T
    for t in reversed(time_steps(T, o["reverse"])):
        o["kernels"].rnn_bwd(gemm, carry, zero if dys is None else dys[t], c["hs"][t], c["m"][t], o["relu"], da[t])
        xp.matmul(da[t], U_T, out=gemm)
    dx, dW, db = _input_grads(c["xs"], c["W"], da)
    dU = _paired_sum(c["hs"], c["h0"], da, o["reverse"])
    return dx, {"W": dW, "U": dU, "b": db}, gemm + carry


# ============================================================================ LSTM
def lstm_forward(kernels, x, W, U, b, h0, c0, peephole=None, mask=None, reverse=False, return_sequences=True):
    """:func:`kernels.recurrent.lstm_forward` on the step kernels of ``kernels``: ``(y or None, (h_T, c_T), cache)``."""
    xp, (B, T, H), xs, a, m = _forward_start(x, W, U, b, mask)
    p = xp.zeros((3, H), dtype=x.dtype) if peephole is None else xp.ascontiguousarray(peephole)
    gates = xp.empty_like(a)
    hs, cs, tcs = (xp.empty((T, B, H), dtype=x.dtype) for _ in range(3))
    hu = xp.empty((B, 4 * H), dtype=x.dtype)
    h, c = h0, c0
    for t in time_steps(T, reverse):
        xp.matmul(h, U, out=hu)
        kernels.lstm_fwd(a[t], hu, h, c, p, m[t], peephole is not None, gates[t], hs[t], cs[t], tcs[t])
        h, c = hs[t], cs[t]
    y = _outputs(hs, mask) if return_sequences else None
    cache = _cache("lstm", kernels, x, H, {"reverse": reverse, "peephole": peephole is not None},
                   xs=xs, W=W, U=U, p=p, h0=h0, c0=c0, gates=gates, hs=hs, cs=cs, tcs=tcs, m=m)
    return y, (h, c), cache


def lstm_backward(cache, dy, dh_last, dc_last):
    """BPTT of :func:`lstm_forward`: ``(dx, {"W", "U", "b"[, "peephole"]}, (dh0, dc0))``."""
    c, o, xp, (B, T, H), dtype, dys, zero, carry_h, gemm = _backward_start(cache, dy, dh_last)
    carry_c = _carry(xp, dc_last, B, H, dtype)
    da = xp.empty((T, B, 4 * H), dtype=dtype)
    U_T, reverse = c["U"].T, o["reverse"]
    for t in reversed(time_steps(T, reverse)):
        c_prev = _previous(c["cs"], c["c0"], t, reverse)
        o["kernels"].lstm_bwd(gemm, carry_h, carry_c, zero if dys is None else dys[t], c["gates"][t], c_prev,
                              c["tcs"][t], c["p"], c["m"][t], o["peephole"], da[t])
        xp.matmul(da[t], U_T, out=gemm)
    dx, dW, db = _input_grads(c["xs"], c["W"], da)
    grads = {"W": dW, "U": _paired_sum(c["hs"], c["h0"], da, reverse), "b": db}
    if o["peephole"]:
        # dp_i = Σ da_i c_{t-1}, dp_f = Σ da_f c_{t-1}, dp_o = Σ da_o c_t
        grads["peephole"] = xp.stack([
            _paired_dot(c["cs"], c["c0"], da[:, :, :H], reverse),
            _paired_dot(c["cs"], c["c0"], da[:, :, H:2 * H], reverse),
            (da[:, :, 3 * H:] * c["cs"]).sum(axis=(0, 1)),
        ])
    return dx, grads, (gemm + carry_h, carry_c)


# ============================================================================ GRU
def gru_forward(kernels, x, W, U, b, b_h, h0, mask=None, reset_after=True, reverse=False, return_sequences=True):
    """:func:`kernels.recurrent.gru_forward` on the step kernels of ``kernels``: ``(y or None, h_T, cache)``."""
    xp, (B, T, H), xs, a, m = _forward_start(x, W, U, b, mask)
    gates = xp.empty_like(a)
    hs, aux = xp.empty((T, B, H), dtype=x.dtype), xp.empty((T, B, H), dtype=x.dtype)
    h = h0
    if reset_after:  # aux = h U_n + b_hn, what r multiplies
        hu = xp.empty((B, 3 * H), dtype=x.dtype)
        for t in time_steps(T, reverse):
            xp.matmul(h, U, out=hu)
            kernels.gru_fwd(a[t], hu, b_h, h, m[t], gates[t], aux[t], hs[t])
            h = hs[t]
    else:  # aux = r h, what U_n multiplies
        U_rz, U_n = U[:, :2 * H], U[:, 2 * H:]
        hu_rz, hu_n = xp.empty((B, 2 * H), dtype=x.dtype), xp.empty((B, H), dtype=x.dtype)
        for t in time_steps(T, reverse):
            xp.matmul(h, U_rz, out=hu_rz)
            kernels.gru1_gates_fwd(a[t], hu_rz, h, gates[t], aux[t])
            xp.matmul(aux[t], U_n, out=hu_n)
            kernels.gru1_state_fwd(a[t], hu_n, h, m[t], gates[t], hs[t])
            h = hs[t]
    y = _outputs(hs, mask) if return_sequences else None
    cache = _cache("gru", kernels, x, H, {"reverse": reverse, "reset_after": reset_after},
                   xs=xs, W=W, U=U, h0=h0, gates=gates, hs=hs, aux=aux, m=m)
    return y, h, cache


def gru_backward(cache, dy, dh_last):
    """BPTT of :func:`gru_forward`: ``(dx, {"W", "U", "b"[, "b_h"]}, dh0)``."""
    c, o, xp, (B, T, H), dtype, dys, zero, carry, gemm = _backward_start(cache, dy, dh_last)
    dax = xp.empty((T, B, 3 * H), dtype=dtype)
    U, reverse, k = c["U"], o["reverse"], o["kernels"]
    steps = reversed(time_steps(T, reverse))
    if o["reset_after"]:
        dah = xp.empty_like(dax)
        for t in steps:
            h_prev = _previous(c["hs"], c["h0"], t, reverse)
            k.gru_bwd(gemm, carry, zero if dys is None else dys[t], c["gates"][t], c["aux"][t], h_prev, c["m"][t],
                      dax[t], dah[t])
            xp.matmul(dah[t], U.T, out=gemm)
        dx, dW, db = _input_grads(c["xs"], c["W"], dax)
        grads = {"W": dW, "U": _paired_sum(c["hs"], c["h0"], dah, reverse), "b": db,
                 "b_h": dah.reshape(T * B, 3 * H).sum(axis=0)}
        return dx, grads, gemm + carry
    U_rz_T, U_n_T = U[:, :2 * H].T, U[:, 2 * H:].T
    drh = xp.empty((B, H), dtype=dtype)
    for t in steps:
        h_prev = _previous(c["hs"], c["h0"], t, reverse)
        k.gru1_state_bwd(gemm, carry, zero if dys is None else dys[t], c["gates"][t], h_prev, c["m"][t], dax[t])
        xp.matmul(dax[t, :, 2 * H:], U_n_T, out=drh)
        k.gru1_gates_bwd(drh, c["gates"][t], h_prev, c["m"][t], dax[t], carry)
        xp.matmul(dax[t, :, :2 * H], U_rz_T, out=gemm)
    dx, dW, db = _input_grads(c["xs"], c["W"], dax)
    dU = xp.concatenate([
        _paired_sum(c["hs"], c["h0"], xp.ascontiguousarray(dax[:, :, :2 * H]), reverse),
        c["aux"].reshape(T * B, H).T @ dax[:, :, 2 * H:].reshape(T * B, H),
    ], axis=1)
    return dx, {"W": dW, "U": dU, "b": db}, gemm + carry
