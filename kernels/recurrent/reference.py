"""The recurrent cells as the book writes code: one time step at a time, the equations one to one.

The executable spec of :mod:`kernels.recurrent` and the benchmark's baseline
("book code"): every step computes ``x_t W + h_{t-1} U + b`` with two matrix
products, applies the gate nonlinearities with the book's activation code
(:mod:`kernels.activations.reference`), and keeps its own tensors; the
backward pass walks the steps in reverse and accumulates every parameter
gradient step by step (numpy-ml's ``RNNCell``/``LSTMCell`` style). Generic over
``xp``, so it runs on CuPy too, and the dispatcher falls back to it for dtypes
the fused kernels do not cover (float16).

Arguments and results are those of the dispatcher's functions
(:func:`kernels.recurrent.lstm_forward` and the others): batch-major ``x``
``(B, T, I)``, ``mask`` ``(B, T)`` (1 = a real step, 0 = padding) or None.
A padded step leaves the state as it was and its output is 0.
"""

from __future__ import annotations

import sys

import backend
from kernels.activations import reference as act

from .catalog import SequenceCache, time_steps


def _keep(mask, t):
    """``(B, 1)`` boolean: which sequences have a real step at ``t`` (None: all)."""
    return None if mask is None else (mask[:, t, None] != 0)


def _where(keep, new, old):
    return new if keep is None else backend.get_array_module(new).where(keep, new, old)


def _output(xp, keep, h):
    return h if keep is None else xp.where(keep, h, 0).astype(h.dtype, copy=False)


def _start(x, U, return_sequences, *arrays):
    """``(xp, B, T, H, y)``: y is the zero (B, T, H) output to fill, or None."""
    xp = backend.get_array_module(x, U, *arrays)
    B, T, _ = x.shape
    H = U.shape[0]
    return xp, B, T, H, (xp.zeros((B, T, H), dtype=x.dtype) if return_sequences else None)


def _gates(z, count):
    return [z[:, k * (z.shape[1] // count):(k + 1) * (z.shape[1] // count)] for k in range(count)]


# ============================================================================ SimpleRNN (section 24.2)
def rnn_forward(x, W, U, b, h0, mask=None, activation="tanh", reverse=False, return_sequences=True):
    """Elman cell: ``h_t = f(x_t W + h_{t-1} U + b)``, one step at a time."""
    xp, B, T, H, y = _start(x, U, return_sequences, W, b, h0)
    h, steps = h0, []
    for t in time_steps(T, reverse):
        keep = _keep(mask, t)
        z = x[:, t] @ W + h @ U + b
        h_new = act.forward(activation, z)
        steps.append((t, keep, h, z, h_new))
        h = _where(keep, h_new, h)
        if return_sequences:
            y[:, t] = _output(xp, keep, h_new)
    cache = SequenceCache("rnn", _module(), (B, T, x.shape[2], H),
                          {"activation": activation, "return_sequences": return_sequences},
                          {"x": x, "W": W, "U": U, "steps": steps})
    return y, h, cache


def rnn_backward(cache, dy, dh_last):
    """Backpropagation through time for :func:`rnn_forward`: ``(dx, {"W", "U", "b"}, dh0)``."""
    a = cache.arrays
    x, W, U = a["x"], a["W"], a["U"]
    xp = backend.get_array_module(x)
    dx = xp.zeros_like(x)
    dW, dU, db = xp.zeros_like(W), xp.zeros_like(U), xp.zeros(U.shape[1], dtype=x.dtype)
    dh = xp.zeros_like(a["steps"][0][2]) if dh_last is None else dh_last
    for t, keep, h_prev, z, h_new in reversed(a["steps"]):
        g = dh if dy is None else dh + _output(xp, keep, dy[:, t])
        dz = act.backward(cache.options["activation"], g, z, h_new)
        dz = _output(xp, keep, dz)
        dW += x[:, t].T @ dz
        dU += h_prev.T @ dz
        db += dz.sum(axis=0)
        dx[:, t] = dz @ W.T
        dh = dz @ U.T + (0 if keep is None else xp.where(keep, 0, g).astype(g.dtype, copy=False))
    return dx, {"W": dW, "U": dU, "b": db}, dh


# ============================================================================ LSTM (section 24.5.1, 24.5.2)
def lstm_forward(x, W, U, b, h0, c0, peephole=None, mask=None, reverse=False, return_sequences=True):
    """LSTM cell (gates i, f, g, o; peepholes from c_{t-1} to i, f and from c_t to o), one step at a time."""
    xp, B, T, H, y = _start(x, U, return_sequences, W, b, h0, c0)
    h, c, steps = h0, c0, []
    for t in time_steps(T, reverse):
        keep = _keep(mask, t)
        zi, zf, zg, zo = _gates(x[:, t] @ W + h @ U + b, 4)
        if peephole is not None:
            zi = zi + peephole[0] * c
            zf = zf + peephole[1] * c
        i, f, g = act.forward("sigmoid", zi), act.forward("sigmoid", zf), act.forward("tanh", zg)
        c_new = f * c + i * g
        if peephole is not None:
            zo = zo + peephole[2] * c_new
        o = act.forward("sigmoid", zo)
        tc = act.forward("tanh", c_new)
        h_new = o * tc
        steps.append((t, keep, h, c, (i, f, g, o), c_new, tc))
        h, c = _where(keep, h_new, h), _where(keep, c_new, c)
        if return_sequences:
            y[:, t] = _output(xp, keep, h_new)
    cache = SequenceCache("lstm", _module(), (B, T, x.shape[2], H), {"return_sequences": return_sequences},
                          {"x": x, "W": W, "U": U, "peephole": peephole, "steps": steps})
    return y, (h, c), cache


def lstm_backward(cache, dy, dh_last, dc_last):
    """BPTT for :func:`lstm_forward`: ``(dx, {"W", "U", "b"[, "peephole"]}, (dh0, dc0))``."""
    a = cache.arrays
    x, W, U, p = a["x"], a["W"], a["U"], a["peephole"]
    xp = backend.get_array_module(x)
    dx = xp.zeros_like(x)
    grads = {"W": xp.zeros_like(W), "U": xp.zeros_like(U), "b": xp.zeros(U.shape[1], dtype=x.dtype)}
    if p is not None:
        grads["peephole"] = xp.zeros_like(p)
    first = a["steps"][0]
    dh = xp.zeros_like(first[2]) if dh_last is None else dh_last
    dc = xp.zeros_like(first[3]) if dc_last is None else dc_last
    for t, keep, h_prev, c_prev, (i, f, g, o), c_new, tc in reversed(a["steps"]):
        gh = dh if dy is None else dh + _output(xp, keep, dy[:, t])
        dzo = act.backward("sigmoid", gh * tc, None, o)
        dc_new = dc + act.backward("tanh", gh * o, None, tc)
        if p is not None:
            dc_new = dc_new + dzo * p[2]
        dzi = act.backward("sigmoid", dc_new * g, None, i)
        dzf = act.backward("sigmoid", dc_new * c_prev, None, f)
        dzg = act.backward("tanh", dc_new * i, None, g)
        dz = _output(xp, keep, xp.concatenate([dzi, dzf, dzg, dzo], axis=1))
        dc_prev = dc_new * f
        if p is not None:
            dzi, dzf, _, dzo = _gates(dz, 4)
            dc_prev = dc_prev + dzi * p[0] + dzf * p[1]
            grads["peephole"] += xp.stack([(dzi * c_prev).sum(axis=0), (dzf * c_prev).sum(axis=0),
                                           (dzo * c_new).sum(axis=0)])
        grads["W"] += x[:, t].T @ dz
        grads["U"] += h_prev.T @ dz
        grads["b"] += dz.sum(axis=0)
        dx[:, t] = dz @ W.T
        dh = _where(keep, dz @ U.T, gh)
        dc = _where(keep, dc_prev, dc)
    return dx, grads, (dh, dc)


# ============================================================================ GRU (section 24.5.3)
def gru_forward(x, W, U, b, b_h, h0, mask=None, reset_after=True, reverse=False, return_sequences=True):
    """GRU cell (gates r, z, n), one step at a time.

    ``reset_after=True``: ``n = tanh(x W_n + b_n + r * (h U_n + b_hn))`` (PyTorch, cuDNN);
    ``reset_after=False``: ``n = tanh(x W_n + (r * h) U_n + b_n)`` (Cho et al., 2014; ``b_h`` is None).
    """
    xp, B, T, H, y = _start(x, U, return_sequences, W, b, h0)
    h, steps = h0, []
    for t in time_steps(T, reverse):
        keep = _keep(mask, t)
        xr, xz, xn = _gates(x[:, t] @ W + b, 3)
        if reset_after:
            hr, hz, hn = _gates(h @ U + b_h, 3)
            r, z = act.forward("sigmoid", xr + hr), act.forward("sigmoid", xz + hz)
            n = act.forward("tanh", xn + r * hn)
        else:
            hr, hz, _ = _gates(h @ U, 3)
            r, z = act.forward("sigmoid", xr + hr), act.forward("sigmoid", xz + hz)
            hn = r * h  # what U_n multiplies
            n = act.forward("tanh", xn + hn @ U[:, 2 * H:])
        h_new = (1 - z) * n + z * h
        steps.append((t, keep, h, (r, z, n), hn))
        h = _where(keep, h_new, h)
        if return_sequences:
            y[:, t] = _output(xp, keep, h_new)
    cache = SequenceCache("gru", _module(), (B, T, x.shape[2], H),
                          {"reset_after": reset_after, "return_sequences": return_sequences},
                          {"x": x, "W": W, "U": U, "steps": steps})
    return y, h, cache


def gru_backward(cache, dy, dh_last):
    """BPTT for :func:`gru_forward`: ``(dx, {"W", "U", "b"[, "b_h"]}, dh0)``."""
    a = cache.arrays
    x, W, U = a["x"], a["W"], a["U"]
    reset_after = cache.options["reset_after"]
    xp = backend.get_array_module(x)
    H = U.shape[0]
    dx = xp.zeros_like(x)
    grads = {"W": xp.zeros_like(W), "U": xp.zeros_like(U), "b": xp.zeros(3 * H, dtype=x.dtype)}
    if reset_after:
        grads["b_h"] = xp.zeros(3 * H, dtype=x.dtype)
    dh = xp.zeros_like(a["steps"][0][2]) if dh_last is None else dh_last
    for t, keep, h_prev, (r, z, n), hn in reversed(a["steps"]):
        g = dh if dy is None else dh + _output(xp, keep, dy[:, t])
        dn = act.backward("tanh", g * (1 - z), None, n)
        dz = act.backward("sigmoid", g * (h_prev - n), None, z)
        dh_prev = g * z
        if reset_after:
            dr = act.backward("sigmoid", dn * hn, None, r)
            dzx = _output(xp, keep, xp.concatenate([dr, dz, dn], axis=1))
            dzh = _output(xp, keep, xp.concatenate([dr, dz, dn * r], axis=1))
            grads["U"] += h_prev.T @ dzh
            grads["b_h"] += dzh.sum(axis=0)
            dh_prev = dh_prev + dzh @ U.T
        else:
            drh = dn @ U[:, 2 * H:].T
            dr = act.backward("sigmoid", drh * h_prev, None, r)
            dzx = _output(xp, keep, xp.concatenate([dr, dz, dn], axis=1))
            grads["U"][:, :2 * H] += h_prev.T @ dzx[:, :2 * H]
            grads["U"][:, 2 * H:] += hn.T @ dzx[:, 2 * H:]
            dh_prev = dh_prev + drh * r + dzx[:, :2 * H] @ U[:, :2 * H].T
        grads["W"] += x[:, t].T @ dzx
        grads["b"] += dzx.sum(axis=0)
        dx[:, t] = dzx @ W.T
        dh = _where(keep, dh_prev, g)
    return dx, grads, dh


def _module():
    return sys.modules[__name__]
