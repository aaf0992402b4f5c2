"""Fused Numba CPU kernels for one time step of the recurrent cells (book chapter 24).

Each kernel does, in one pass over the ``(B, H)`` units of a step, everything
between two matrix products: the sum of the input part and the recurrent part
of the pre-activations, every gate nonlinearity, the cell/state update, the
mask (a padded row keeps its state), and writes the gates the backward pass
needs; the backward kernels do the reverse in one pass. The matrix products
themselves go to BLAS (:mod:`kernels.recurrent.sequence`).

Arrays are 2-D C-contiguous, one dtype (float32 or float64); gate blocks sit
side by side along the last axis (``a[b, k*H + j]`` is gate k of unit j). The
mask ``m`` has one value per row (0 = padded). ``exp`` and ``tanh`` are the
vectorisable ones of :mod:`kernels.activations.cpu` (a libm call per element
would stop LLVM from vectorising the loop). Kernels are serial: one step of
a (64, 128) LSTM is 8,192 units, too little to pay for a thread hand-off.
Numba's cache keys on this file only: after editing the helpers imported from
:mod:`kernels.activations.cpu`, clear ``kernels/recurrent/__pycache__``.
"""

from __future__ import annotations

import numpy as np

from kernels.activations.cpu import vexp, vtanh
from kernels.jit import njit

_OPTS = dict(nogil=True, error_model="numpy", fastmath={"contract"})

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(inline="always", **_OPTS)
def _sigmoid(v, one):
    return one / (one + vexp(-v))


# ============================================================================ SimpleRNN
@njit(**_OPTS)
def rnn_fwd(a, hu, h_prev, m, relu, h):
    """``h = f(a + hu)`` (f = tanh, or ReLU when ``relu``); a padded row keeps ``h_prev``."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                v = a[b, j] + hu[b, j]
                h[b, j] = (v if v > zero else zero) if relu else vtanh(v)
        else:
            for j in range(H):
                h[b, j] = h_prev[b, j]


@njit(**_OPTS)
def rnn_bwd(gemm, carry, dy, h, m, relu, da):
    """``g = gemm + carry + dy``; ``da = g f'`` on real rows, ``carry = g`` on padded rows (0 elsewhere)."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    one = h.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                g = gemm[b, j] + carry[b, j] + dy[b, j]
                v = h[b, j]
                da[b, j] = (g if v > zero else zero) if relu else g * (one - v * v)
                carry[b, j] = zero
        else:
            for j in range(H):
                carry[b, j] = gemm[b, j] + carry[b, j]
                da[b, j] = zero


# ============================================================================ LSTM
@njit(**_OPTS)
def lstm_fwd(a, hu, h_prev, c_prev, p, m, gates, h, c, tc):
    """Gates i, f, g, o from ``a + hu`` (peepholes ``p`` rows i, f, o); ``c, h`` updated; ``tc = tanh(c)``."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    one = h.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                cp = c_prev[b, j]
                ig = _sigmoid(a[b, j] + hu[b, j] + p[0, j] * cp, one)
                fg = _sigmoid(a[b, H + j] + hu[b, H + j] + p[1, j] * cp, one)
                gg = vtanh(a[b, 2 * H + j] + hu[b, 2 * H + j])
                cn = fg * cp + ig * gg
                og = _sigmoid(a[b, 3 * H + j] + hu[b, 3 * H + j] + p[2, j] * cn, one)
                t = vtanh(cn)
                gates[b, j] = ig
                gates[b, H + j] = fg
                gates[b, 2 * H + j] = gg
                gates[b, 3 * H + j] = og
                c[b, j] = cn
                tc[b, j] = t
                h[b, j] = og * t
        else:
            for j in range(H):
                gates[b, j] = zero
                gates[b, H + j] = zero
                gates[b, 2 * H + j] = zero
                gates[b, 3 * H + j] = zero
                c[b, j] = c_prev[b, j]
                tc[b, j] = zero
                h[b, j] = h_prev[b, j]


@njit(**_OPTS)
def lstm_bwd(gemm, carry_h, carry_c, dy, gates, c_prev, tc, p, m, da):
    """One step of LSTM backpropagation; ``carry_c`` becomes dE/dc_{t-1}, ``carry_h`` the padded rows' dE/dh."""
    B, H = c_prev.shape
    zero = c_prev.dtype.type(0.0)
    one = c_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                gh = gemm[b, j] + carry_h[b, j] + dy[b, j]
                ig = gates[b, j]
                fg = gates[b, H + j]
                gg = gates[b, 2 * H + j]
                og = gates[b, 3 * H + j]
                t = tc[b, j]
                cp = c_prev[b, j]
                dao = gh * t * og * (one - og)
                dc = carry_c[b, j] + gh * og * (one - t * t) + dao * p[2, j]
                dai = dc * gg * ig * (one - ig)
                daf = dc * cp * fg * (one - fg)
                dag = dc * ig * (one - gg * gg)
                da[b, j] = dai
                da[b, H + j] = daf
                da[b, 2 * H + j] = dag
                da[b, 3 * H + j] = dao
                carry_c[b, j] = dc * fg + dai * p[0, j] + daf * p[1, j]
                carry_h[b, j] = zero
        else:
            for j in range(H):
                carry_h[b, j] = gemm[b, j] + carry_h[b, j]
                da[b, j] = zero
                da[b, H + j] = zero
                da[b, 2 * H + j] = zero
                da[b, 3 * H + j] = zero


# ====================================================================== GRU, reset after (PyTorch, cuDNN)
@njit(**_OPTS)
def gru_fwd(a, hu, bh, h_prev, m, gates, hn, h):
    """r, z from ``a + hu + bh``; ``hn = hu_n + bh_n``; ``n = tanh(a_n + r hn)``; ``h = (1 - z) n + z h_prev``."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    one = h.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                r = _sigmoid(a[b, j] + hu[b, j] + bh[j], one)
                z = _sigmoid(a[b, H + j] + hu[b, H + j] + bh[H + j], one)
                q = hu[b, 2 * H + j] + bh[2 * H + j]
                n = vtanh(a[b, 2 * H + j] + r * q)
                gates[b, j] = r
                gates[b, H + j] = z
                gates[b, 2 * H + j] = n
                hn[b, j] = q
                h[b, j] = n + z * (h_prev[b, j] - n)
        else:
            for j in range(H):
                gates[b, j] = zero
                gates[b, H + j] = zero
                gates[b, 2 * H + j] = zero
                hn[b, j] = zero
                h[b, j] = h_prev[b, j]


@njit(**_OPTS)
def gru_bwd(gemm, carry, dy, gates, hn, h_prev, m, dax, dah):
    """One step of GRU backpropagation: ``dax`` for the input part, ``dah`` for the recurrent part."""
    B, H = h_prev.shape
    zero = h_prev.dtype.type(0.0)
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                g = gemm[b, j] + carry[b, j] + dy[b, j]
                r = gates[b, j]
                z = gates[b, H + j]
                n = gates[b, 2 * H + j]
                dan = g * (one - z) * (one - n * n)
                daz = g * (h_prev[b, j] - n) * z * (one - z)
                dar = dan * hn[b, j] * r * (one - r)
                dax[b, j] = dar
                dax[b, H + j] = daz
                dax[b, 2 * H + j] = dan
                dah[b, j] = dar
                dah[b, H + j] = daz
                dah[b, 2 * H + j] = dan * r
                carry[b, j] = g * z
        else:
            for j in range(H):
                carry[b, j] = gemm[b, j] + carry[b, j]
                for k in range(3):
                    dax[b, k * H + j] = zero
                    dah[b, k * H + j] = zero


# ================================================================= GRU, reset before (Cho et al. 2014)
@njit(**_OPTS)
def gru1_gates_fwd(a, hu, h_prev, gates, rh):
    """r, z from ``a[:, :2H] + hu`` (hu = h_prev U_rz, (B, 2H)); ``rh = r h_prev``, the input of U_n."""
    B, H = h_prev.shape
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        for j in range(H):
            r = _sigmoid(a[b, j] + hu[b, j], one)
            gates[b, j] = r
            gates[b, H + j] = _sigmoid(a[b, H + j] + hu[b, H + j], one)
            rh[b, j] = r * h_prev[b, j]


@njit(**_OPTS)
def gru1_state_fwd(a, hu, h_prev, m, gates, h):
    """``n = tanh(a_n + hu)`` (hu = (r h_prev) U_n); ``h = (1 - z) n + z h_prev``; padded rows keep h_prev."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                n = vtanh(a[b, 2 * H + j] + hu[b, j])
                gates[b, 2 * H + j] = n
                h[b, j] = n + gates[b, H + j] * (h_prev[b, j] - n)
        else:
            for j in range(H):
                gates[b, 2 * H + j] = zero
                h[b, j] = h_prev[b, j]


@njit(**_OPTS)
def gru1_state_bwd(gemm, carry, dy, gates, h_prev, m, da):
    """First half of a GRU (reset before) step backward: ``da`` of z and n; ``carry`` = dE/dh_prev so far."""
    B, H = h_prev.shape
    zero = h_prev.dtype.type(0.0)
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                g = gemm[b, j] + carry[b, j] + dy[b, j]
                z = gates[b, H + j]
                n = gates[b, 2 * H + j]
                da[b, H + j] = g * (h_prev[b, j] - n) * z * (one - z)
                da[b, 2 * H + j] = g * (one - z) * (one - n * n)
                carry[b, j] = g * z
        else:
            for j in range(H):
                carry[b, j] = gemm[b, j] + carry[b, j]
                da[b, H + j] = zero
                da[b, 2 * H + j] = zero


@njit(**_OPTS)
def gru1_gates_bwd(drh, gates, h_prev, m, da, carry):
    """Second half: ``drh`` = dE/d(r h_prev) = da_n U_n^T gives ``da`` of r and adds ``drh r`` to ``carry``."""
    B, H = h_prev.shape
    zero = h_prev.dtype.type(0.0)
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] != zero:
            for j in range(H):
                r = gates[b, j]
                d = drh[b, j]
                da[b, j] = d * h_prev[b, j] * r * (one - r)
                carry[b, j] += d * r
        else:
            for j in range(H):
                da[b, j] = zero


def supports(*arrays) -> bool:
    """True when every array is a NumPy float32/float64 array of one dtype (the loops make them contiguous)."""
    first = arrays[0]
    return all(isinstance(a, np.ndarray) and a.dtype in SUPPORTED_DTYPES and a.dtype == first.dtype
               for a in arrays)
