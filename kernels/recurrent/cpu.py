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


# Rows of a padded step: the state passes through, the gates and gradients are 0.
@njit(inline="always", **_OPTS)
def _fill(x, b, start, count, value):
    for k in range(count):
        x[b, start + k] = value


@njit(inline="always", **_OPTS)
def _copy(dst, src, b, count):
    for j in range(count):
        dst[b, j] = src[b, j]


@njit(inline="always", **_OPTS)
def _accumulate(dst, src, b, count):
    for j in range(count):
        dst[b, j] += src[b, j]


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
            _copy(h, h_prev, b, H)


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
            _accumulate(carry, gemm, b, H)
            _fill(da, b, 0, H, zero)


# ============================================================================ LSTM
# The LSTM and GRU kernels run a row as a few short loops over the units rather than one loop
# doing everything: a loop that reads and writes many arrays is not vectorised (LLVM would need a
# run-time overlap check for every pair of them), and exp/tanh then cost a scalar polynomial each.
# Loops start at 0 (``for j in range(H): x[b, 2 * H + j]``): with ``range(2 * H, 3 * H)`` LLVM
# cannot prove the index non-negative, keeps Numba's wraparound check and does not vectorise.
# Measured, a (64, 128) LSTM step forward: one loop 567 us, these loops 13 us (one core).
@njit(**_OPTS)
def lstm_fwd(a, hu, h_prev, c_prev, p, m, peephole, gates, h, c, tc):
    """Gates i, f, g, o from ``a + hu`` (peepholes ``p`` rows i, f, o); ``c, h`` updated; ``tc = tanh(c)``."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    one = h.dtype.type(1.0)
    for b in range(B):
        if m[b] == zero:
            _fill(gates, b, 0, 4 * H, zero)
            _fill(tc, b, 0, H, zero)
            _copy(c, c_prev, b, H)
            _copy(h, h_prev, b, H)
            continue
        for k in range(4 * H):
            gates[b, k] = a[b, k] + hu[b, k]
        if peephole:
            for j in range(H):
                gates[b, j] += p[0, j] * c_prev[b, j]
                gates[b, H + j] += p[1, j] * c_prev[b, j]
        for k in range(2 * H):
            gates[b, k] = _sigmoid(gates[b, k], one)
        for j in range(H):
            gates[b, 2 * H + j] = vtanh(gates[b, 2 * H + j])
        for j in range(H):
            c[b, j] = gates[b, H + j] * c_prev[b, j] + gates[b, j] * gates[b, 2 * H + j]
        if peephole:
            for j in range(H):
                gates[b, 3 * H + j] += p[2, j] * c[b, j]
        for j in range(H):
            gates[b, 3 * H + j] = _sigmoid(gates[b, 3 * H + j], one)
        for j in range(H):
            t = vtanh(c[b, j])
            tc[b, j] = t
            h[b, j] = gates[b, 3 * H + j] * t


@njit(**_OPTS)
def lstm_bwd(gemm, carry_h, carry_c, dy, gates, c_prev, tc, p, m, peephole, da):
    """One step of LSTM backpropagation; ``carry_c`` becomes dE/dc_{t-1}, ``carry_h`` the padded rows' dE/dh."""
    B, H = c_prev.shape
    zero = c_prev.dtype.type(0.0)
    one = c_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] == zero:
            _accumulate(carry_h, gemm, b, H)
            _fill(da, b, 0, 4 * H, zero)
            continue
        for j in range(H):  # carry_h holds g_h = dE/dh_t for now
            carry_h[b, j] += gemm[b, j] + dy[b, j]
        for j in range(H):  # output gate
            og = gates[b, 3 * H + j]
            da[b, 3 * H + j] = carry_h[b, j] * tc[b, j] * og * (one - og)
        for j in range(H):  # carry_c becomes dE/dc_t
            t = tc[b, j]
            carry_c[b, j] += carry_h[b, j] * gates[b, 3 * H + j] * (one - t * t)
        if peephole:
            for j in range(H):
                carry_c[b, j] += da[b, 3 * H + j] * p[2, j]
        for j in range(H):
            ig = gates[b, j]
            fg = gates[b, H + j]
            gg = gates[b, 2 * H + j]
            dc = carry_c[b, j]
            da[b, j] = dc * gg * ig * (one - ig)
            da[b, H + j] = dc * c_prev[b, j] * fg * (one - fg)
            da[b, 2 * H + j] = dc * ig * (one - gg * gg)
        for j in range(H):  # carry_c becomes dE/dc_{t-1}
            carry_c[b, j] *= gates[b, H + j]
        if peephole:
            for j in range(H):
                carry_c[b, j] += da[b, j] * p[0, j] + da[b, H + j] * p[1, j]
        for j in range(H):
            carry_h[b, j] = zero


# ====================================================================== GRU, reset after (PyTorch, cuDNN)
@njit(**_OPTS)
def gru_fwd(a, hu, bh, h_prev, m, gates, hn, h):
    """r, z from ``a + hu + bh``; ``hn = hu_n + bh_n``; ``n = tanh(a_n + r hn)``; ``h = (1 - z) n + z h_prev``."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    one = h.dtype.type(1.0)
    for b in range(B):
        if m[b] == zero:
            _fill(gates, b, 0, 3 * H, zero)
            _fill(hn, b, 0, H, zero)
            _copy(h, h_prev, b, H)
            continue
        for k in range(2 * H):
            gates[b, k] = _sigmoid(a[b, k] + hu[b, k] + bh[k], one)
        for j in range(H):
            hn[b, j] = hu[b, 2 * H + j] + bh[2 * H + j]
        for j in range(H):  # h holds n's pre-activation for now (a loop reading and writing gates is not vectorised)
            h[b, j] = a[b, 2 * H + j] + gates[b, j] * hn[b, j]
        for j in range(H):
            gates[b, 2 * H + j] = vtanh(h[b, j])
        for j in range(H):
            n = gates[b, 2 * H + j]
            h[b, j] = n + gates[b, H + j] * (h_prev[b, j] - n)


@njit(**_OPTS)
def gru_bwd(gemm, carry, dy, gates, hn, h_prev, m, dax, dah):
    """One step of GRU backpropagation: ``dax`` for the input part, ``dah`` for the recurrent part."""
    B, H = h_prev.shape
    zero = h_prev.dtype.type(0.0)
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] == zero:
            _accumulate(carry, gemm, b, H)
            _fill(dax, b, 0, 3 * H, zero)
            _fill(dah, b, 0, 3 * H, zero)
            continue
        for j in range(H):  # carry holds g = dE/dh_t for now
            carry[b, j] += gemm[b, j] + dy[b, j]
        for j in range(H):
            z = gates[b, H + j]
            n = gates[b, 2 * H + j]
            g = carry[b, j]
            dax[b, H + j] = g * (h_prev[b, j] - n) * z * (one - z)
            dax[b, 2 * H + j] = g * (one - z) * (one - n * n)
        for j in range(H):
            r = gates[b, j]
            dax[b, j] = dax[b, 2 * H + j] * hn[b, j] * r * (one - r)
        for j in range(H):
            dah[b, j] = dax[b, j]
            dah[b, H + j] = dax[b, H + j]
            dah[b, 2 * H + j] = dax[b, 2 * H + j] * gates[b, j]
        for j in range(H):
            carry[b, j] *= gates[b, H + j]


# ================================================================= GRU, reset before (Cho et al. 2014)
@njit(**_OPTS)
def gru1_gates_fwd(a, hu, h_prev, gates, rh):
    """r, z from ``a[:, :2H] + hu`` (hu = h_prev U_rz, (B, 2H)); ``rh = r h_prev``, the input of U_n."""
    B, H = h_prev.shape
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        for k in range(2 * H):
            gates[b, k] = _sigmoid(a[b, k] + hu[b, k], one)
        for j in range(H):
            rh[b, j] = gates[b, j] * h_prev[b, j]


@njit(**_OPTS)
def gru1_state_fwd(a, hu, h_prev, m, gates, h):
    """``n = tanh(a_n + hu)`` (hu = (r h_prev) U_n); ``h = (1 - z) n + z h_prev``; padded rows keep h_prev."""
    B, H = h.shape
    zero = h.dtype.type(0.0)
    for b in range(B):
        if m[b] == zero:
            _fill(gates, b, 2 * H, H, zero)
            _copy(h, h_prev, b, H)
            continue
        for j in range(H):
            gates[b, 2 * H + j] = vtanh(a[b, 2 * H + j] + hu[b, j])
        for j in range(H):
            n = gates[b, 2 * H + j]
            h[b, j] = n + gates[b, H + j] * (h_prev[b, j] - n)


@njit(**_OPTS)
def gru1_state_bwd(gemm, carry, dy, gates, h_prev, m, da):
    """First half of a GRU (reset before) step backward: ``da`` of z and n; ``carry`` = dE/dh_prev so far."""
    B, H = h_prev.shape
    zero = h_prev.dtype.type(0.0)
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] == zero:
            _accumulate(carry, gemm, b, H)
            _fill(da, b, H, 2 * H, zero)
            continue
        for j in range(H):
            carry[b, j] += gemm[b, j] + dy[b, j]
        for j in range(H):
            z = gates[b, H + j]
            n = gates[b, 2 * H + j]
            g = carry[b, j]
            da[b, H + j] = g * (h_prev[b, j] - n) * z * (one - z)
            da[b, 2 * H + j] = g * (one - z) * (one - n * n)
        for j in range(H):
            carry[b, j] *= gates[b, H + j]


@njit(**_OPTS)
def gru1_gates_bwd(drh, gates, h_prev, m, da, carry):
    """Second half: ``drh`` = dE/d(r h_prev) = da_n U_n^T gives ``da`` of r and adds ``drh r`` to ``carry``."""
    B, H = h_prev.shape
    zero = h_prev.dtype.type(0.0)
    one = h_prev.dtype.type(1.0)
    for b in range(B):
        if m[b] == zero:
            _fill(da, b, 0, H, zero)
            continue
        for j in range(H):
            r = gates[b, j]
            da[b, j] = drh[b, j] * h_prev[b, j] * r * (one - r)
        for j in range(H):
            carry[b, j] += drh[b, j] * gates[b, j]


def supports(*arrays) -> bool:
    """True when every array is a NumPy float32/float64 array of one dtype (the loops make them contiguous)."""
    first = arrays[0]
    return all(isinstance(a, np.ndarray) and a.dtype in SUPPORTED_DTYPES and a.dtype == first.dtype
               for a in arrays)
