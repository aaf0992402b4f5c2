"""CuPy kernels for one time step of the recurrent cells: one ``ElementwiseKernel`` per step and direction.

The same step functions as :mod:`kernels.recurrent.cpu` (same arguments, same
results), each one fused CUDA kernel over the ``(B, H)`` units of a step; the
matrix products around them are cuBLAS through ``cupy.matmul``
(:mod:`kernels.recurrent.sequence`). Gate blocks are read and written through
``raw`` arrays at ``b * G * H + k * H + j``; the per-row mask is a ``(B, 1)``
view, broadcast over the units.

:data:`SOURCES` holds every kernel's CUDA text as ``name -> (in_params,
out_params, operation)`` (what a compile check without a GPU reads); kernels
are built on first use and memoized, so importing this module needs neither
CuPy nor a GPU. ``T`` is float or double; arithmetic stays in it.
"""

from __future__ import annotations

import functools

import numpy as np

from backend import cupy_probe

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _sigmoid(v: str) -> str:
    return f"((T)1 / ((T)1 + exp(-({v}))))"


_UNIT = "const ptrdiff_t b = i / H, j = i - b * H;"


def _zero_gates(count: int, name: str, stride: str) -> str:
    return " ".join(f"{name}[b * {stride} + {k} * H + j] = (T)0;" for k in range(count))


#: name -> (in_params, out_params, operation): the CUDA C of every step kernel.
SOURCES = {
    # ---- SimpleRNN: h = f(a + hu)
    "rnn_tanh_fwd": ("T a, T hu, T h_prev, T m", "T h", "h = m != (T)0 ? tanh(a + hu) : h_prev;"),
    "rnn_relu_fwd": ("T a, T hu, T h_prev, T m", "T h",
                     "const T v = a + hu; h = m != (T)0 ? (v > (T)0 ? v : (T)0) : h_prev;"),
    "rnn_tanh_bwd": (
        "T gemm, T dy, T h, T m", "T carry, T da",
        "const T g = gemm + carry;"
        " if (m != (T)0) { da = (g + dy) * ((T)1 - h * h); carry = (T)0; } else { da = (T)0; carry = g; }",
    ),
    "rnn_relu_bwd": (
        "T gemm, T dy, T h, T m", "T carry, T da",
        "const T g = gemm + carry;"
        " if (m != (T)0) { da = h > (T)0 ? g + dy : (T)0; carry = (T)0; } else { da = (T)0; carry = g; }",
    ),
    # ---- LSTM: gates i, f, g, o; peepholes p rows i, f, o
    "lstm_fwd": (
        "raw T a, raw T hu, T h_prev, T c_prev, raw T p, T m, int64 H", "raw T gates, T h, T c, T tc",
        _UNIT + " const ptrdiff_t k = b * 4 * H + j;"
        " if (m != (T)0) {"
        "   const T cp = c_prev;"
        f"   const T ig = {_sigmoid('a[k] + hu[k] + p[j] * cp')};"
        f"   const T fg = {_sigmoid('a[k + H] + hu[k + H] + p[H + j] * cp')};"
        "   const T gg = tanh(a[k + 2 * H] + hu[k + 2 * H]);"
        "   const T cn = fg * cp + ig * gg;"
        f"   const T og = {_sigmoid('a[k + 3 * H] + hu[k + 3 * H] + p[2 * H + j] * cn')};"
        "   const T t = tanh(cn);"
        "   gates[k] = ig; gates[k + H] = fg; gates[k + 2 * H] = gg; gates[k + 3 * H] = og;"
        "   c = cn; tc = t; h = og * t;"
        " } else {"
        f"   {_zero_gates(4, 'gates', '4 * H')} c = c_prev; tc = (T)0; h = h_prev;"
        " }",
    ),
    "lstm_bwd": (
        "T gemm, T dy, raw T gates, T c_prev, T tc, raw T p, T m, int64 H", "T carry_h, T carry_c, raw T da",
        _UNIT + " const ptrdiff_t k = b * 4 * H + j;"
        " if (m != (T)0) {"
        "   const T gh = gemm + carry_h + dy;"
        "   const T ig = gates[k], fg = gates[k + H], gg = gates[k + 2 * H], og = gates[k + 3 * H];"
        "   const T t = tc;"
        "   const T dao = gh * t * og * ((T)1 - og);"
        "   const T dc = carry_c + gh * og * ((T)1 - t * t) + dao * p[2 * H + j];"
        "   const T dai = dc * gg * ig * ((T)1 - ig);"
        "   const T daf = dc * c_prev * fg * ((T)1 - fg);"
        "   da[k] = dai; da[k + H] = daf; da[k + 2 * H] = dc * ig * ((T)1 - gg * gg); da[k + 3 * H] = dao;"
        "   carry_c = dc * fg + dai * p[j] + daf * p[H + j];"
        "   carry_h = (T)0;"
        " } else {"
        f"   carry_h = gemm + carry_h; {_zero_gates(4, 'da', '4 * H')}"
        " }",
    ),
    # ---- GRU, reset after the product (PyTorch, cuDNN): gates r, z, n
    "gru_fwd": (
        "raw T a, raw T hu, raw T bh, T h_prev, T m, int64 H", "raw T gates, T hn, T h",
        _UNIT + " const ptrdiff_t k = b * 3 * H + j;"
        " if (m != (T)0) {"
        f"   const T r = {_sigmoid('a[k] + hu[k] + bh[j]')};"
        f"   const T z = {_sigmoid('a[k + H] + hu[k + H] + bh[H + j]')};"
        "   const T q = hu[k + 2 * H] + bh[2 * H + j];"
        "   const T n = tanh(a[k + 2 * H] + r * q);"
        "   gates[k] = r; gates[k + H] = z; gates[k + 2 * H] = n; hn = q; h = n + z * (h_prev - n);"
        " } else {"
        f"   {_zero_gates(3, 'gates', '3 * H')} hn = (T)0; h = h_prev;"
        " }",
    ),
    "gru_bwd": (
        "T gemm, T dy, raw T gates, T hn, T h_prev, T m, int64 H", "T carry, raw T dax, raw T dah",
        _UNIT + " const ptrdiff_t k = b * 3 * H + j;"
        " if (m != (T)0) {"
        "   const T g = gemm + carry + dy;"
        "   const T r = gates[k], z = gates[k + H], n = gates[k + 2 * H];"
        "   const T dan = g * ((T)1 - z) * ((T)1 - n * n);"
        "   const T daz = g * (h_prev - n) * z * ((T)1 - z);"
        "   const T dar = dan * hn * r * ((T)1 - r);"
        "   dax[k] = dar; dax[k + H] = daz; dax[k + 2 * H] = dan;"
        "   dah[k] = dar; dah[k + H] = daz; dah[k + 2 * H] = dan * r;"
        "   carry = g * z;"
        " } else {"
        f"   carry = gemm + carry; {_zero_gates(3, 'dax', '3 * H')} {_zero_gates(3, 'dah', '3 * H')}"
        " }",
    ),
    # ---- GRU, reset before the product (Cho et al. 2014): two kernels per step
    "gru1_gates_fwd": (
        "raw T a, raw T hu, T h_prev, int64 H", "raw T gates, T rh",
        _UNIT + " const ptrdiff_t k = b * 3 * H + j, u = b * 2 * H + j;"
        f" const T r = {_sigmoid('a[k] + hu[u]')};"
        f" gates[k] = r; gates[k + H] = {_sigmoid('a[k + H] + hu[u + H]')}; rh = r * h_prev;",
    ),
    "gru1_state_fwd": (
        "raw T a, T hu, T h_prev, T m, int64 H", "raw T gates, T h",
        _UNIT + " const ptrdiff_t k = b * 3 * H + j;"
        " if (m != (T)0) {"
        "   const T n = tanh(a[k + 2 * H] + hu);"
        "   gates[k + 2 * H] = n; h = n + gates[k + H] * (h_prev - n);"
        " } else { gates[k + 2 * H] = (T)0; h = h_prev; }",
    ),
    "gru1_state_bwd": (
        "T gemm, T dy, raw T gates, T h_prev, T m, int64 H", "T carry, raw T da",
        _UNIT + " const ptrdiff_t k = b * 3 * H + j;"
        " if (m != (T)0) {"
        "   const T g = gemm + carry + dy;"
        "   const T z = gates[k + H], n = gates[k + 2 * H];"
        "   da[k + H] = g * (h_prev - n) * z * ((T)1 - z);"
        "   da[k + 2 * H] = g * ((T)1 - z) * ((T)1 - n * n);"
        "   carry = g * z;"
        " } else { carry = gemm + carry; da[k + H] = (T)0; da[k + 2 * H] = (T)0; }",
    ),
    "gru1_gates_bwd": (
        "T drh, raw T gates, T h_prev, T m, int64 H", "T carry, raw T da",
        _UNIT + " const ptrdiff_t k = b * 3 * H + j;"
        " if (m != (T)0) {"
        "   const T r = gates[k];"
        "   da[k] = drh * h_prev * r * ((T)1 - r);"
        "   carry += drh * r;"
        " } else { da[k] = (T)0; }",
    ),
}


@functools.lru_cache(maxsize=None)
def kernel(name: str):
    """The memoized ``cupy.ElementwiseKernel`` called ``name`` (a key of :data:`SOURCES`)."""
    in_params, out_params, operation = SOURCES[name]
    return cupy_probe.cupy_module().ElementwiseKernel(in_params, out_params, operation, name)


def supports(*arrays) -> bool:
    """True when every array is a CuPy float32/float64 array of one dtype."""
    cp = cupy_probe.cupy_module()
    if cp is None:
        return False
    first = arrays[0]
    return all(isinstance(a, cp.ndarray) and a.dtype in SUPPORTED_DTYPES and a.dtype == first.dtype
               for a in arrays)


def _rows(m):
    return m.reshape(-1, 1)


# ---- the step functions, with the signatures of kernels.recurrent.cpu (``peephole``: p is all zeros when
# False; the GPU kernels always add the peephole terms, a multiply-add by 0)
def rnn_fwd(a, hu, h_prev, m, relu, h):
    """``h = f(a + hu)``; padded rows keep ``h_prev`` (:func:`kernels.recurrent.cpu.rnn_fwd`)."""
    kernel("rnn_relu_fwd" if relu else "rnn_tanh_fwd")(a, hu, h_prev, _rows(m), h)


def rnn_bwd(gemm, carry, dy, h, m, relu, da):
    """One SimpleRNN step backward (:func:`kernels.recurrent.cpu.rnn_bwd`)."""
    kernel("rnn_relu_bwd" if relu else "rnn_tanh_bwd")(gemm, dy, h, _rows(m), carry, da)


def lstm_fwd(a, hu, h_prev, c_prev, p, m, peephole, gates, h, c, tc):
    """One LSTM step forward (:func:`kernels.recurrent.cpu.lstm_fwd`)."""
    kernel("lstm_fwd")(a, hu, h_prev, c_prev, p, _rows(m), np.int64(h.shape[1]), gates, h, c, tc)


def lstm_bwd(gemm, carry_h, carry_c, dy, gates, c_prev, tc, p, m, peephole, da):
    """One LSTM step backward (:func:`kernels.recurrent.cpu.lstm_bwd`)."""
    kernel("lstm_bwd")(gemm, dy, gates, c_prev, tc, p, _rows(m), np.int64(c_prev.shape[1]), carry_h, carry_c, da)


def gru_fwd(a, hu, bh, h_prev, m, gates, hn, h):
    """One GRU step forward, reset after the product (:func:`kernels.recurrent.cpu.gru_fwd`)."""
    kernel("gru_fwd")(a, hu, bh, h_prev, _rows(m), np.int64(h.shape[1]), gates, hn, h)


def gru_bwd(gemm, carry, dy, gates, hn, h_prev, m, dax, dah):
    """One GRU step backward, reset after the product (:func:`kernels.recurrent.cpu.gru_bwd`)."""
    kernel("gru_bwd")(gemm, dy, gates, hn, h_prev, _rows(m), np.int64(h_prev.shape[1]), carry, dax, dah)


def gru1_gates_fwd(a, hu, h_prev, gates, rh):
    """r, z and ``r h_prev`` of a GRU step, reset before the product (:func:`kernels.recurrent.cpu.gru1_gates_fwd`)."""
    kernel("gru1_gates_fwd")(a, hu, h_prev, np.int64(h_prev.shape[1]), gates, rh)


def gru1_state_fwd(a, hu, h_prev, m, gates, h):
    """n and h of a GRU step, reset before the product (:func:`kernels.recurrent.cpu.gru1_state_fwd`)."""
    kernel("gru1_state_fwd")(a, hu, h_prev, _rows(m), np.int64(h.shape[1]), gates, h)


def gru1_state_bwd(gemm, carry, dy, gates, h_prev, m, da):
    """z and n gradients, reset before the product (:func:`kernels.recurrent.cpu.gru1_state_bwd`)."""
    kernel("gru1_state_bwd")(gemm, dy, gates, h_prev, _rows(m), np.int64(h_prev.shape[1]), carry, da)


def gru1_gates_bwd(drh, gates, h_prev, m, da, carry):
    """r gradient, reset before the product (:func:`kernels.recurrent.cpu.gru1_gates_bwd`)."""
    kernel("gru1_gates_bwd")(drh, gates, h_prev, _rows(m), np.int64(h_prev.shape[1]), carry, da)
