"""2-D convolution on the CPU, NHWC (book section 22.2): Numba kernels and the ``*_cpu`` functions.

Three paths, chosen per call by their estimated cost (run time fitted to
measurements plus the amortized compile time, :func:`_path_cost_us`):

* im2col of a chunk of output rows (a Numba kernel), then NumPy's BLAS GEMM
  (``cols @ Wm``); col2im scatter-adds for the input gradient;
* no BLAS: each thread of :func:`kernels.threads.run_rows` runs im2col blocks
  that stay in its L2 cache into a register-tiled Numba GEMM (:func:`gemm_kf`,
  :func:`gemm_nt`);
* thin layers, float32: the direct kernels of
  :mod:`kernels.conv2d.direct` (no im2col matrix).

Reductions run in a fixed order: the kernel gradient is summed per fixed block
of output rows and the blocks' partial sums are added in block order, so the
result does not depend on the number of threads (see docs/design/kernels.md,
which also keeps the measurements behind these choices).

float32 and float64 run the Numba kernels; float16 is computed in float32 and
rounded back; other dtypes fall back to :mod:`kernels.conv2d.reference`.
"""

from __future__ import annotations

import numba
import numpy as np

from backend.host import blas_threads

from .. import threads as helper_threads
from ..geometry import as_pair, conv2d_geometry
from ..jit import njit, parallel_threads
from ..threads import blas_threads_for, run_rows
from . import direct, reference
from . import groups as grouped
from .registers import stack_pointer

#: Target size in bytes of one chunk of the im2col matrix (measured: 1-4 MiB are equivalent here).
CHUNK_BYTES = 2 << 20

#: Forward by the fused Numba kernel (:func:`conv_forward_rows`) instead of im2col + NumPy GEMM.
USE_NUMBA_GEMM = True
#: None: the Numba GEMM or im2col + NumPy GEMM, whichever :func:`_path_cost_us` finds cheaper; an int: the
#: Numba GEMM from this many multiply-adds on (a fixed threshold, as before; tests set 0 to force it).
NUMBA_GEMM_MIN_MACS = None
#: The direct kernels (:mod:`kernels.conv2d.direct`) where :func:`_direct_pays` finds them cheaper.
USE_DIRECT = True
#: Run time in microseconds on one core (float32, 2-core AMD EPYC; fitted to 11 measured geometries within
#: 10-25 %, docs/design/kernels.md): per call, per output pixel (im2col row), per pixel x tap, per
#: multiply-add; for the direct forward per tile of 16 pixels x 16 (or 8) channels and per tile x tap.
PATH_COST_US = {
    "blas": {"call": 9.5, "pixel": 0.023, "pixel_tap": 1.29e-5, "mac": 1.75e-5},
    "numba": {"call": 20.5, "pixel": 0.0197, "pixel_tap": 4.83e-5, "mac": 8.5e-6},
    "direct": {"call": 4.7, "tile": 0.0648, "tile_tap": 2.44e-3},
    # kernel gradient: per multiply-add, up to 96 taps per kernel row and above (cache misses on the taps);
    # the Numba GEMM's kernel gradient took 1.1-2.1x its forward (median 1.3), NumPy's GEMM's 0.95-1.05x
    "direct_kernels": {"call": 30.0, "mac": 1.12e-5, "mac_wide": 3.1e-5, "wide_taps": 96, "numba_factor": 1.3},
}
#: Seconds to compile a path's kernels into an empty Numba cache (measured, float32): im2col/col2im for
#: NumPy's GEMM, the register-tiled GEMMs (each compiled into every kernel that calls it: forward 2.85 s,
#: kernel gradient 2.06 s), the direct tiles.
PATH_COMPILE_S = {"blas": 0.5, "numba": 4.9, "direct": 1.5, "direct_kernels": 1.6}
#: Calls a compile is spread over in the cost (a training run of some thousand steps): a path that saves
#: less than its extra compile time over this many calls is not worth compiling.
COMPILE_AMORTIZED_CALLS = 5000

#: Size in bytes of the ``cols`` block of one thread in :func:`conv_forward_rows` (fits the L2 cache).
BLOCK_BYTES = 256 << 10
#: Size in bytes of the transposed ``g`` block of one thread in :func:`conv_backward_kernels_rows`.
GRAD_BLOCK_BYTES = 256 << 10
#: Partial sums of the kernel gradient: a fixed count (not one per thread), added in order (deterministic).
REDUCTION_BLOCKS = 16

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# --------------------------------------------------------------------------
# Numba building blocks (serial; BLAS runs the threads)
# --------------------------------------------------------------------------
@njit(inline="always")
def _copy(dst, d, src, s, n):
    d = np.uint64(d)
    s = np.uint64(s)
    for t in range(np.uint64(n)):
        dst[d + t] = src[s + t]


@njit(inline="always")
def _fill_zero(dst, d, n):
    d = np.uint64(d)
    for t in range(np.uint64(n)):
        dst[d + t] = 0


@njit(inline="always")
def _add(dst, d, src, s, n):
    d = np.uint64(d)
    s = np.uint64(s)
    for t in range(np.uint64(n)):
        dst[d + t] += src[s + t]


@njit
def sum_rows(g2d, out):
    """``out[f] = Σ_r g2d[r, f]``: float32 partial sums over blocks of 64 rows, float64 across blocks.

    10x faster than ``g2d.sum(axis=0, dtype=np.float64)`` (which converts every
    element through a buffer) and as accurate for the bias gradient.
    """
    rows, cols = g2d.shape
    # np.empty and loops, not np.zeros: its implementation adds 0.1-0.2 s to an empty cache's compile
    total = np.empty(cols, np.float64)
    partial = np.empty(cols, g2d.dtype)
    gf = g2d.reshape(g2d.size)
    ucols = np.uint64(cols)
    for c in range(ucols):
        total[c] = 0
    for r0 in range(0, rows, 64):
        for c in range(ucols):
            partial[c] = 0
        for r in range(r0, min(rows, r0 + 64)):
            base = np.uint64(r) * ucols
            for c in range(ucols):
                partial[c] += gf[base + c]
        for c in range(ucols):
            total[c] += partial[c]
    for c in range(cols):
        out[c] = total[c]


@njit
def im2col(x, q0, q1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols):
    """Copy receptive fields of output rows ``q0 <= q < q1`` into ``cols``.

    ``q = b * OH + oh`` numbers the output rows of the whole batch. Row
    ``(q - q0) * OW + ow`` of ``cols`` (shape ``(rows, kh*kw*C)``, C-contiguous)
    receives ``xpad[b, oh*sh + i*dh, ow*sw + j*dw, c]`` at column ``(i*kw + j)*C + c``;
    positions in the zero padding are written as 0 (``x`` itself is not padded).
    With ``dw = 1`` a kernel row is one contiguous run of ``x``; dilated, one run per tap.
    """
    batch, height, width, channels = x.shape
    k_total = kh * kw * channels
    kc = kw * channels
    xf = x.reshape(x.size)
    cf = cols.reshape(cols.size)
    for q in range(q0, q1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            row_start = ((q - q0) * out_w + ow) * k_total
            iw0 = ow * sw - pw
            j_lo = max(0, (dw - 1 - iw0) // dw)  # taps j with 0 <= iw0 + j*dw < W
            j_hi = min(kw, (width - iw0 + dw - 1) // dw)
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                d = row_start + i * kc
                if ih < 0 or ih >= height or j_hi <= j_lo:
                    _fill_zero(cf, d, kc)
                    continue
                if j_lo > 0:
                    _fill_zero(cf, d, j_lo * channels)
                if dw == 1:
                    _copy(cf, d + j_lo * channels, xf, ((b * height + ih) * width + iw0 + j_lo) * channels,
                          (j_hi - j_lo) * channels)
                else:
                    for j in range(j_lo, j_hi):
                        _copy(cf, d + j * channels, xf, ((b * height + ih) * width + iw0 + j * dw) * channels,
                              channels)
                if j_hi < kw:
                    _fill_zero(cf, d + j_hi * channels, (kw - j_hi) * channels)


@njit
def col2im(gcols, q0, q1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, grad_input):
    """Scatter-add ``gcols`` (rows of output rows ``q0 <= q < q1``) into ``grad_input``.

    The adjoint of :func:`im2col`: ``dx[b, oh*sh + i*dh - ph, ow*sw + j*dw - pw, c] +=
    gcols[row, (i*kw + j)*C + c]`` for positions inside the unpadded input.
    ``grad_input`` must be zeroed by the caller before the first chunk.
    """
    batch, height, width, channels = grad_input.shape
    k_total = kh * kw * channels
    kc = kw * channels
    gf = grad_input.reshape(grad_input.size)
    cf = gcols.reshape(gcols.size)
    for q in range(q0, q1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            row_start = ((q - q0) * out_w + ow) * k_total
            iw0 = ow * sw - pw
            j_lo = max(0, (dw - 1 - iw0) // dw)
            j_hi = min(kw, (width - iw0 + dw - 1) // dw)
            if j_hi <= j_lo:
                continue
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= height:
                    continue
                if dw == 1:
                    _add(gf, ((b * height + ih) * width + iw0 + j_lo) * channels, cf,
                         row_start + i * kc + j_lo * channels, (j_hi - j_lo) * channels)
                else:
                    for j in range(j_lo, j_hi):
                        _add(gf, ((b * height + ih) * width + iw0 + j * dw) * channels, cf,
                             row_start + i * kc + j * channels, channels)


@njit(nogil=True, fastmath={"reassoc", "nsz", "contract"})
def gemm_nt(a, bt, bias, c, n, k_total, accumulate):
    """``c[m, f] = Σ_{k < k_total} a[m, k] bt[f, k] + bias[f]`` (``+= ...`` if ``accumulate``), rows ``m < n``.

    Kernels pass ``accumulate`` as ``np.bool_(...)``: a literal ``True``/``False`` is typed
    ``Literal[bool]`` and compiles one copy per value (1.6 s more of a first run); once inlined,
    LLVM folds the flag all the same.

    Register-blocked dot products: a 4x4 block of ``c`` is 16 running sums over
    the contiguous ``k`` axis, which LLVM vectorizes with the host's widest
    vectors (AVX-512 here) and keeps in registers; each step loads 8 vectors
    for 16 fused multiply-adds. Measured: 104 GFLOP/s on one core against 69
    for NumPy's OpenBLAS (its AVX2 kernels) on ``(8192, 576) @ (576, 64)``.
    """
    filters = bt.shape[0]
    zero = c.dtype.type(0)
    m4 = n - n % 4
    f4 = filters - filters % 4
    for m in range(0, m4, 4):
        a0 = a[m]
        a1 = a[m + 1]
        a2 = a[m + 2]
        a3 = a[m + 3]
        for f in range(0, f4, 4):
            b0 = bt[f]
            b1 = bt[f + 1]
            b2 = bt[f + 2]
            b3 = bt[f + 3]
            c00 = c01 = c02 = c03 = c10 = c11 = c12 = c13 = zero
            c20 = c21 = c22 = c23 = c30 = c31 = c32 = c33 = zero
            for k in range(k_total):
                x0 = a0[k]
                x1 = a1[k]
                x2 = a2[k]
                x3 = a3[k]
                y0 = b0[k]
                y1 = b1[k]
                y2 = b2[k]
                y3 = b3[k]
                c00 += x0 * y0
                c01 += x0 * y1
                c02 += x0 * y2
                c03 += x0 * y3
                c10 += x1 * y0
                c11 += x1 * y1
                c12 += x1 * y2
                c13 += x1 * y3
                c20 += x2 * y0
                c21 += x2 * y1
                c22 += x2 * y2
                c23 += x2 * y3
                c30 += x3 * y0
                c31 += x3 * y1
                c32 += x3 * y2
                c33 += x3 * y3
            c[m, f] = c00 + bias[f] + (c[m, f] if accumulate else zero)
            c[m, f + 1] = c01 + bias[f + 1] + (c[m, f + 1] if accumulate else zero)
            c[m, f + 2] = c02 + bias[f + 2] + (c[m, f + 2] if accumulate else zero)
            c[m, f + 3] = c03 + bias[f + 3] + (c[m, f + 3] if accumulate else zero)
            c[m + 1, f] = c10 + bias[f] + (c[m + 1, f] if accumulate else zero)
            c[m + 1, f + 1] = c11 + bias[f + 1] + (c[m + 1, f + 1] if accumulate else zero)
            c[m + 1, f + 2] = c12 + bias[f + 2] + (c[m + 1, f + 2] if accumulate else zero)
            c[m + 1, f + 3] = c13 + bias[f + 3] + (c[m + 1, f + 3] if accumulate else zero)
            c[m + 2, f] = c20 + bias[f] + (c[m + 2, f] if accumulate else zero)
            c[m + 2, f + 1] = c21 + bias[f + 1] + (c[m + 2, f + 1] if accumulate else zero)
            c[m + 2, f + 2] = c22 + bias[f + 2] + (c[m + 2, f + 2] if accumulate else zero)
            c[m + 2, f + 3] = c23 + bias[f + 3] + (c[m + 2, f + 3] if accumulate else zero)
            c[m + 3, f] = c30 + bias[f] + (c[m + 3, f] if accumulate else zero)
            c[m + 3, f + 1] = c31 + bias[f + 1] + (c[m + 3, f + 1] if accumulate else zero)
            c[m + 3, f + 2] = c32 + bias[f + 2] + (c[m + 3, f + 2] if accumulate else zero)
            c[m + 3, f + 3] = c33 + bias[f + 3] + (c[m + 3, f + 3] if accumulate else zero)
    for m in range(n):  # leftovers: rows past m4 (all filters), filters past f4 (all rows)
        f_start = 0 if m >= m4 else f4
        for f in range(f_start, filters):
            acc = zero
            for k in range(k_total):
                acc += a[m, k] * bt[f, k]
            c[m, f] = acc + bias[f] + (c[m, f] if accumulate else zero)


@njit(inline="always", fastmath={"contract"})
def _tile_8(a, w, m, f0, k_total, acc, width):
    """``acc[r, t] = Σ_k a[m + r, k] w[k, f0 + t]`` for 8 rows and ``width`` (a constant) channels.

    Outer products: per ``k``, 8 broadcasts of ``a`` and one contiguous row of
    ``w``; the channels are the vector axis (no horizontal sums). The rows are
    written out so that LLVM keeps the 8 accumulator rows in registers.
    """
    for t in range(width):
        acc[0, t] = acc[1, t] = acc[2, t] = acc[3, t] = acc[4, t] = acc[5, t] = acc[6, t] = acc[7, t] = 0
    a0 = a[m]
    a1 = a[m + 1]
    a2 = a[m + 2]
    a3 = a[m + 3]
    a4 = a[m + 4]
    a5 = a[m + 5]
    a6 = a[m + 6]
    a7 = a[m + 7]
    for k in range(k_total):
        x0 = a0[k]
        x1 = a1[k]
        x2 = a2[k]
        x3 = a3[k]
        x4 = a4[k]
        x5 = a5[k]
        x6 = a6[k]
        x7 = a7[k]
        wk = w[k, f0:f0 + width]
        for t in range(width):
            y = wk[t]
            acc[0, t] += x0 * y
            acc[1, t] += x1 * y
            acc[2, t] += x2 * y
            acc[3, t] += x3 * y
            acc[4, t] += x4 * y
            acc[5, t] += x5 * y
            acc[6, t] += x6 * y
            acc[7, t] += x7 * y


@njit(inline="always")
def _store_tile(acc, rows, width, bias, c, m, f0, accumulate):
    """``c[m + r, f0 + t] = acc[r, t] + bias[f0 + t]`` (``+=`` if ``accumulate``)."""
    for r in range(rows):
        for t in range(width):
            c[m + r, f0 + t] = acc[r, t] + bias[f0 + t] + (c[m + r, f0 + t] if accumulate else 0)


@njit(nogil=True, fastmath={"contract"})
def gemm_kf(a, w, bias, c, n, k_total, accumulate):
    """``c[m, f] = Σ_{k < k_total} a[m, k] w[k, f] + bias[f]`` (``+= ...`` if ``accumulate``), rows ``m < n``
    (``accumulate``: an ``np.bool_``, as for :func:`gemm_nt`).

    Register-blocked outer products (:func:`_tile_8`): tiles of 8 rows x 32
    channels (16 AVX-512 accumulators), then 8 x 16 for a remaining strip of
    16 channels; ``w`` is ``(K, F)``, C-contiguous. Leftover rows and
    channels (``F % 16``) run plain loops. No ``reassoc`` in ``fastmath``:
    it would let LLVM vectorise the ``k`` loop (gathers) instead of the
    channels. Measured on one core, float32: 210-227 GFLOP/s for ``F = 64``
    and 115 for ``(K, F) = (72, 16)``, against 150-195 and 70 for
    :func:`gemm_nt`.
    """
    filters = w.shape[1]
    acc = numba.carray(stack_pointer(256, c.dtype), (8, 32))
    acc16 = numba.carray(stack_pointer(128, c.dtype), (8, 16))
    m8 = n - n % 8
    f32 = filters - filters % 32
    f16 = filters - filters % 16
    for m in range(0, m8, 8):
        for f0 in range(0, f32, 32):
            _tile_8(a, w, m, f0, k_total, acc, 32)
            _store_tile(acc, 8, 32, bias, c, m, f0, accumulate)
        if f16 > f32:
            _tile_8(a, w, m, f32, k_total, acc16, 16)
            _store_tile(acc16, 8, 16, bias, c, m, f32, accumulate)
    for m in range(n):  # leftovers: rows past m8 (all channels), channels past f16 (all rows)
        f_start = 0 if m >= m8 else f16
        for f in range(f_start, filters):
            total = c.dtype.type(0)
            for k in range(k_total):
                total += a[m, k] * w[k, f]
            c[m, f] = total + bias[f] + (c[m, f] if accumulate else 0)


@njit(nogil=True)
def gemm_nt_bias(a, bt, bias, c, n):
    """``c[m, f] = Σ_k a[m, k] bt[f, k] + bias[f]`` for the first ``n`` rows of ``a`` and ``c`` (:func:`gemm_nt`)."""
    gemm_nt(a, bt, bias, c, n, a.shape[1], np.bool_(False))


@njit(nogil=True)
def conv_forward_rows(x, wm, wt, bias, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block, out2d, q0,
                      q1):
    """Forward of output rows ``q0 <= q < q1`` (``q = b * OH + oh``): im2col of a block, then the GEMM.

    ``wm`` is the ``(K, F)`` kernel matrix and ``wt`` its transpose: a filter
    count that is a multiple of 16 runs :func:`gemm_kf` (outer products on
    ``wm``), any other :func:`gemm_nt_bias` (dot products on ``wt``). Blocks
    of ``rows_per_block`` output rows keep ``cols`` in the core's L2 cache;
    each calling thread has its own ``cols`` buffer.
    """
    k_total, filters = wm.shape
    cols = np.empty((rows_per_block * out_w, k_total), dtype=x.dtype)
    for b0 in range(q0, q1, rows_per_block):
        b1 = min(q1, b0 + rows_per_block)
        n = (b1 - b0) * out_w
        im2col(x, b0, b1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols)
        if filters % 16 == 0:
            gemm_kf(cols, wm, bias, out2d[b0 * out_w:b1 * out_w], n, k_total, np.bool_(False))
        else:
            gemm_nt_bias(cols, wt, bias, out2d[b0 * out_w:b1 * out_w], n)


@njit(nogil=True)
def transpose_rows(src, n, dst):
    """``dst[k, m] = src[m, k]`` for the first ``n`` rows of ``src`` (tiles of 16x16 stay in the L1 cache)."""
    cols = src.shape[1]
    for m0 in range(0, n, 16):
        m1 = min(n, m0 + 16)
        for k0 in range(0, cols, 16):
            k1 = min(cols, k0 + 16)
            for k in range(k0, k1):
                for m in range(m0, m1):
                    dst[k, m] = src[m, k]


@njit(nogil=True)
def nhwc_to_nhcw(x, xt, r0, r1):
    """``xt[b, h, c, w] = x[b, h, w, c]`` for the image rows ``r0 <= b * H + h < r1``."""
    batch, height, width, channels = x.shape
    xf = x.reshape(x.size)
    tf = xt.reshape(xt.size)
    uc = np.uint64(channels)
    uw = np.uint64(width)
    for r in range(r0, r1):
        base = np.uint64(r) * uw * uc
        for w in range(uw):
            s = base + w * uc
            for c in range(uc):
                tf[base + c * uw + w] = xf[s + c]


@njit(nogil=True)
def im2col_t(xt, q0, q1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols_t):
    """Transposed :func:`im2col` from ``xt`` (the input as ``(B, H, C, W)``, see :func:`nhwc_to_nhcw`).

    ``cols_t[(i*kw + j)*C + c, (q - q0)*OW + ow] = xpad[b, oh*sh + i*dh, ow*sw + j*dw, c]``
    for the output rows ``q0 <= q < q1`` (``q = b * OH + oh``): for each
    ``(i, j, c)`` a run of ``OW`` values, read with stride ``sw`` along the
    contiguous ``w`` axis of ``xt``.
    """
    batch, height, channels, width = xt.shape
    tf = xt.reshape(xt.size)
    ld = np.uint64(cols_t.shape[1])
    cf = cols_t.reshape(cols_t.size)
    uw = np.uint64(width)
    usw = np.uint64(sw)
    for q in range(q0, q1):
        b = q // out_h
        oh = q - b * out_h
        m0 = np.uint64((q - q0) * out_w)
        for i in range(kh):
            ih = oh * sh - ph + i * dh
            inside = 0 <= ih < height
            for j in range(kw):
                jd = j * dw
                # valid outputs: 0 <= ow*sw + j*dw - pw < W
                ow_lo = min(out_w, max(0, (pw - jd + sw - 1) // sw))
                ow_hi = max(ow_lo, min(out_w, (width - 1 + pw - jd) // sw + 1)) if inside else ow_lo
                k0 = np.uint64((i * kw + j) * channels)
                for c in range(np.uint64(channels)):
                    d = (k0 + c) * ld + m0
                    for t in range(np.uint64(ow_lo)):
                        cf[d + t] = 0
                    if ow_hi > ow_lo:
                        s = ((np.uint64(b * height + ih) * np.uint64(channels) + c) * uw
                             + np.uint64(ow_lo * sw + jd - pw))
                        if sw == 1:
                            for t in range(np.uint64(ow_hi - ow_lo)):
                                cf[d + np.uint64(ow_lo) + t] = tf[s + t]
                        else:
                            for t in range(np.uint64(ow_hi - ow_lo)):
                                cf[d + np.uint64(ow_lo) + t] = tf[s + t * usw]
                    for t in range(np.uint64(ow_hi), np.uint64(out_w)):
                        cf[d + t] = 0


@njit(nogil=True)
def conv_backward_kernels_rows(xt, g2d, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block, grad_wm, q0,
                               q1):
    """``grad_wm[k, f] += Σ_m cols[m, k] g[m, f]`` over the output rows ``q0 <= q < q1``.

    Per block of ``rows_per_block`` output rows (``n`` im2col rows): the
    transposed im2col matrix (``(K, n)``, :func:`im2col_t`), then, for a
    filter count that is a multiple of 16, :func:`gemm_kf` with the block of
    ``g`` as it is (``(n, F)``, sized to stay in the L2 cache); otherwise
    the transposed block of ``g`` (``(F, n)``) and :func:`gemm_nt`, which
    reduces over the block's ``n`` rows along the contiguous axis.
    ``grad_wm`` (shape ``(kh*kw*C, F)``) belongs to the calling thread; blocks
    start at ``q0``, so the sum's order is fixed by ``q0``, ``q1`` alone.
    """
    k_total, filters = grad_wm.shape
    n_max = rows_per_block * out_w
    outer = filters % 16 == 0
    cols_t = np.empty((k_total, n_max), dtype=xt.dtype)
    g_t = np.empty((0 if outer else filters, n_max), dtype=xt.dtype)
    no_bias = np.zeros(filters, dtype=xt.dtype)
    for b0 in range(q0, q1, rows_per_block):
        b1 = min(q1, b0 + rows_per_block)
        n = (b1 - b0) * out_w
        im2col_t(xt, b0, b1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols_t)
        if outer:  # outer products with the rows of g as they are
            gemm_kf(cols_t, g2d[b0 * out_w:b1 * out_w], no_bias, grad_wm, k_total, n, np.bool_(True))
        else:
            transpose_rows(g2d[b0 * out_w:b1 * out_w], n, g_t)
            gemm_nt(cols_t, g_t, no_bias, grad_wm, k_total, n, np.bool_(True))


@njit(nogil=True)
def conv_backward_kernels_partials(xt, g2d, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block,
                                   row_bounds, partials, p0, p1):
    """``partials[p] = Σ cols^T g`` over the output rows ``row_bounds[p] <= q < row_bounds[p + 1]``, ``p0 <= p < p1``.

    One fixed range of rows per partial sum (:func:`conv_backward_kernels_rows`
    into a zeroed ``partials[p]`` of shape ``(kh*kw*C, F)``): which thread
    computes a partial does not change it, so adding the partials in the order
    of ``p`` gives the same kernel gradient on any number of threads.
    """
    for p in range(p0, p1):
        conv_backward_kernels_rows(xt, g2d, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block,
                                   partials[p], row_bounds[p], row_bounds[p + 1])


@njit(nogil=True)
def conv_backward_input_images(g2d, wm, wt, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block,
                               grad_input, b0, b1):
    """``dx`` of the images ``b0 <= b < b1``: ``gcols = g @ Wm^T`` per block, then :func:`col2im`.

    The product is :func:`gemm_kf` on ``wt = Wm^T`` (``(F, K)``) when ``K``
    is a multiple of 16, else :func:`gemm_nt` on ``wm``. Whole images per
    call, so threads never scatter-add into the same pixels; ``grad_input``
    must be zeroed by the caller. Blocks never straddle a group of
    ``max(1, rows_per_block // OH)`` images counted from image 0 (the caller
    aligns ``b0`` to it), so they do not depend on how the batch was split.
    """
    k_total = wm.shape[0]
    gcols = np.empty((rows_per_block * out_w, k_total), dtype=g2d.dtype)
    no_bias = np.zeros(k_total, dtype=g2d.dtype)
    group = max(1, rows_per_block // out_h)
    for i0 in range(b0, b1, group):
        i1 = min(b1, i0 + group)
        for q0 in range(i0 * out_h, i1 * out_h, rows_per_block):
            q1 = min(i1 * out_h, q0 + rows_per_block)
            n = (q1 - q0) * out_w
            if k_total % 16 == 0:
                gemm_kf(g2d[q0 * out_w:q1 * out_w], wt, no_bias, gcols, n, g2d.shape[1], np.bool_(False))
            else:
                gemm_nt(g2d[q0 * out_w:q1 * out_w], wm, no_bias, gcols, n, g2d.shape[1], np.bool_(False))
            col2im(gcols, q0, q1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, grad_input)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _compile_us(path):
    return 1e6 * PATH_COMPILE_S[path] / COMPILE_AMORTIZED_CALLS


def _path_cost_us(path, rows, k_total, n_outputs):
    """Estimated microseconds per call of a ``(rows, k_total) @ (k_total, n_outputs)`` convolution product by
    ``path`` ("numba": im2col blocks + :func:`gemm_kf`/:func:`gemm_nt`; "blas": im2col + NumPy's GEMM): run
    time on one core plus the amortized compile time (:data:`PATH_COST_US`, :data:`PATH_COMPILE_S`)."""
    c = PATH_COST_US[path]
    return c["call"] + rows * (c["pixel"] + k_total * (c["pixel_tap"] + n_outputs * c["mac"])) + _compile_us(path)


def _gemm_cost_us(rows, k_total, n_outputs):
    """The cheaper GEMM path's :func:`_path_cost_us` (the one :func:`_numba_gemm_pays` picks)."""
    if _numba_gemm_pays(n_outputs, k_total, rows):
        return _path_cost_us("numba", rows, k_total, n_outputs)
    return _path_cost_us("blas", rows, k_total, n_outputs)


def _numba_gemm_pays(n_outputs, k_total, rows):
    """Whether the Numba kernels beat im2col + NumPy GEMM (:func:`_path_cost_us`, or :data:`NUMBA_GEMM_MIN_MACS`).

    One rule for the three products of a convolution (they have the same
    ``rows * n_outputs * k_total`` at stride 1), so a training step either
    uses no BLAS at all or only BLAS: mixing them costs the most (OpenBLAS's
    workers spin on the cores the Numba helper threads need).
    """
    if not USE_NUMBA_GEMM:
        return False
    if NUMBA_GEMM_MIN_MACS is not None:
        return rows * n_outputs * k_total >= NUMBA_GEMM_MIN_MACS
    return _path_cost_us("numba", rows, k_total, n_outputs) <= _path_cost_us("blas", rows, k_total, n_outputs)


def _direct_forward_cost_us(dtype, shape, kernel_shape, stride, padding, out_h, out_w):
    """Estimated microseconds per call of :func:`kernels.conv2d.direct.forward`, or None where it does not apply.

    Its kernels take float32, a multiple of 8 filters and a padding smaller than the kernel (in float64 their
    16-row tiles no longer fit the registers), any stride. Cost: per tile of 16 output pixels x 16 (or 8)
    filters, a fixed part and one per tap, plus the amortized compile time.
    """
    batch, _, _, channels = shape
    filters, _, kh, kw = kernel_shape
    if not USE_DIRECT or dtype != np.float32 or filters % 8:
        return None
    if padding[0] >= kh or padding[1] >= kw:
        return None
    c = PATH_COST_US["direct"]
    # counted as tiles of 16 pixels x 16 (or 8) channels, as fitted (8 x 32 tiles cost the same or less)
    tiles = batch * out_h * -(-out_w // 16) * (filters // 16 if filters % 16 == 0 else filters // 8)
    return c["call"] + tiles * (c["tile"] + kh * kw * channels * c["tile_tap"]) + _compile_us("direct")


def _direct_pays(dtype, shape, kernel_shape, stride, padding, out_h, out_w):
    """Whether :func:`kernels.conv2d.direct.forward` is cheaper than the GEMM paths for this forward.

    Where both compute it with :func:`gemm_kf` (a multiple of 16 filters) they give the same bits (the
    same products summed in the same order), so the choice changes the speed, not the result.
    """
    direct_us = _direct_forward_cost_us(dtype, shape, kernel_shape, stride, padding, out_h, out_w)
    if direct_us is None or NUMBA_GEMM_MIN_MACS is not None:  # a fixed threshold: the two GEMM paths only
        return False
    filters, _, kh, kw = kernel_shape
    return direct_us < _gemm_cost_us(shape[0] * out_h * out_w, kh * kw * shape[3], filters)


def _backward_input_as_forward_pays(dtype, input_shape, kernel_shape, padding):
    """Stride 1: whether dE/dx as the forward of g with flipped kernels (direct or Numba GEMM) beats col2im + BLAS."""
    batch, height, width, channels = input_shape
    filters, _, kh, kw = kernel_shape
    if padding[0] >= kh or padding[1] >= kw:
        return False
    rows, k_total = batch * height * width, kh * kw * filters
    flipped = (channels, filters, kh, kw)
    forward_padding = (kh - 1 - padding[0], kw - 1 - padding[1])
    if _numba_gemm_pays(channels, k_total, rows):
        return True
    direct_us = _direct_forward_cost_us(dtype, (batch, 0, 0, filters), flipped, (1, 1), forward_padding, height, width)
    return direct_us is not None and NUMBA_GEMM_MIN_MACS is None and direct_us < _gemm_cost_us(rows, k_total, channels)


def _direct_backward_input_cost_us(dtype, input_shape, kernel_shape, stride, padding, out_h, out_w):
    """Estimated microseconds of the strided ``dE/dx`` by phases (:func:`kernels.conv2d.direct.backward_input`),
    or None where it does not apply: the direct forward's cost (:func:`_direct_forward_cost_us`) summed over
    the phases, each a correlation with ``taps_h x taps_w`` taps of ``F`` channels over its pixels."""
    batch, height, width, channels = input_shape
    filters, _, kh, kw = kernel_shape
    if not USE_DIRECT or dtype != np.float32 or channels % 8:
        return None
    c = PATH_COST_US["direct"]
    per_pixel_row = channels // 16 if channels % 16 == 0 else channels // 8  # as in _direct_forward_cost_us
    total = c["call"] + _compile_us("direct")
    for _, count_h, _, taps_h in direct.phases(height, kh, stride[0], padding[0], out_h):
        for _, count_w, _, taps_w in direct.phases(width, kw, stride[1], padding[1], out_w):
            tiles = batch * count_h * -(-count_w // 16) * per_pixel_row
            total += tiles * (c["tile"] + taps_h * taps_w * filters * c["tile_tap"]) if taps_h and taps_w else 0
    return total


def _direct_kernels_pays(dtype, shape, kernel_shape, stride, padding, out_h, out_w):
    """Whether :func:`kernels.conv2d.direct.backward_kernels` is cheaper than the GEMM paths for this kernel
    gradient: float32, any stride, a multiple of 16 filters, ``kw * C`` a multiple of 8 (:data:`PATH_COST_US`)."""
    batch, _, _, channels = shape
    filters, _, kh, kw = kernel_shape
    if not USE_DIRECT or NUMBA_GEMM_MIN_MACS is not None or dtype != np.float32:  # (fixed threshold: GEMMs)
        return False
    if filters % 16 or (kw * channels) % 8 or kh * kw * channels < 16:
        return False
    if padding[0] >= kh or padding[1] >= kw:
        return False
    c = PATH_COST_US["direct_kernels"]
    rows, k_total = batch * out_h * out_w, kh * kw * channels
    per_mac = c["mac_wide"] if kw * channels > c["wide_taps"] else c["mac"]
    direct_us = c["call"] + rows * k_total * filters * per_mac + _compile_us("direct_kernels")
    gemm_us = _gemm_cost_us(rows, k_total, filters)
    if _numba_gemm_pays(filters, k_total, rows):
        gemm_us *= c["numba_factor"]
    return direct_us < gemm_us


def _kernel_matrix(kernels, dtype):
    """``(F, C, kh, kw)`` -> ``(kh*kw*C, F)``, the im2col column order."""
    f, c, kh, kw = kernels.shape
    return np.ascontiguousarray(kernels.transpose(2, 3, 1, 0).reshape(kh * kw * c, f), dtype=dtype)


def _rows_per_chunk(out_w, k_total, itemsize, total_rows):
    """Output rows (each ``out_w`` im2col rows) per chunk, about CHUNK_BYTES of ``cols``."""
    per_row = max(1, out_w * k_total * itemsize)
    return int(min(total_rows, max(1, CHUNK_BYTES // per_row)))


def _compute_dtype(*arrays):
    """(dtype to compute in, dtype to return) or (None, dtype) for the reference fallback."""
    dtype = np.result_type(*arrays)
    if dtype in _FAST_DTYPES:
        return dtype, dtype
    if dtype == np.float16:
        return np.dtype(np.float32), dtype
    return None, dtype


# --------------------------------------------------------------------------
# CPU implementations
# --------------------------------------------------------------------------
def conv2d_forward_cpu(x, kernels, biases, stride=1, padding=0, dilation=1, groups=1):
    """CPU forward; see :func:`conv2d_forward` (``groups > 1``: one ungrouped convolution per group)."""
    compute, result = _compute_dtype(x, kernels, biases)
    if compute is None:
        return reference.conv2d_forward(x.astype(result), kernels.astype(result), biases.astype(result), stride,
                                        padding, dilation, groups)
    if groups > 1:
        return grouped.forward(conv2d_forward_cpu, x, kernels, biases, stride, padding, dilation, groups)
    x = np.ascontiguousarray(x, dtype=compute)
    batch, height, width, channels = x.shape
    filters, _, kh, kw = kernels.shape
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry((height, width), (kh, kw), stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    if (dh, dw) == (1, 1) and _direct_pays(compute, x.shape, kernels.shape, (sh, sw), (ph, pw), out_h, out_w):
        out = direct.forward(x, kernels, biases, ph, pw, (sh, sw))
        return out if compute == result else out.astype(result)
    k_total = kh * kw * channels
    wm = _kernel_matrix(kernels, compute)
    bias = np.asarray(biases, dtype=compute).reshape(filters)
    out = np.empty((batch, out_h, out_w, filters), dtype=compute)
    out2d = out.reshape(batch * out_h * out_w, filters)
    total = batch * out_h
    if _numba_gemm_pays(filters, k_total, total * out_w):
        rows_per_block = max(1, BLOCK_BYTES // max(1, out_w * k_total * x.itemsize))
        run_rows(conv_forward_rows, total, out.size * k_total // 4, x, wm, np.ascontiguousarray(wm.T), bias,
                 kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block, out2d, align=rows_per_block)
        return out if compute == result else out.astype(result)
    step = _rows_per_chunk(out_w, k_total, x.itemsize, total)
    cols = np.empty((step * out_w, k_total), dtype=compute)
    for q0 in range(0, total, step):
        q1 = min(total, q0 + step)
        n = (q1 - q0) * out_w
        im2col(x, q0, q1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols)
        block = out2d[q0 * out_w:q1 * out_w]
        with blas_threads_for(n * k_total * filters):
            np.dot(cols[:n], wm, out=block)
        block += bias
    return out if compute == result else out.astype(result)


def conv2d_backward_input_cpu(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """CPU dE/dx; see :func:`conv2d_backward_input`."""
    compute, result = _compute_dtype(grad_output, kernels)
    if compute is None:
        return reference.conv2d_backward_input(grad_output.astype(result), kernels.astype(result), input_shape,
                                               stride, padding, dilation, groups)
    if groups > 1:
        return grouped.backward_input(conv2d_backward_input_cpu, grad_output, kernels, input_shape, stride, padding,
                                      dilation, groups)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    batch, height, width, channels = (int(s) for s in input_shape)
    filters, _, kh, kw = kernels.shape
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry((height, width), (kh, kw), stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    span_h, span_w = dh * (kh - 1), dw * (kw - 1)  # the dilated kernel's extent, minus one
    if (dh, dw) == (1, 1) and (sh, sw) != (1, 1) and NUMBA_GEMM_MIN_MACS is None:
        phases_us = _direct_backward_input_cost_us(compute, (batch, height, width, channels), kernels.shape,
                                                   (sh, sw), (ph, pw), out_h, out_w)
        if phases_us is not None and phases_us < _gemm_cost_us(batch * out_h * out_w, kh * kw * channels, filters):
            grad_input = direct.backward_input(g, kernels, (batch, height, width, channels), ph, pw, (sh, sw))
            return grad_input if compute == result else grad_input.astype(result)
    if (dh, dw) == (1, 1):
        as_forward = sh == 1 and sw == 1 and _backward_input_as_forward_pays(
            compute, (batch, height, width, channels), kernels.shape, (ph, pw))
    else:
        as_forward = (sh == 1 and sw == 1 and ph <= span_h and pw <= span_w
                      and _numba_gemm_pays(channels, kh * kw * filters, batch * height * width))
    if as_forward:
        # stride 1: dx is the convolution of g, padded by (dh(kh-1)-ph, dw(kw-1)-pw), with the kernels
        # flipped in space and with input/output channels swapped; no col2im scatter.
        flipped = np.ascontiguousarray(kernels[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=compute)
        grad_input = conv2d_forward_cpu(g, flipped, np.zeros((channels, 1), dtype=compute), 1,
                                        (span_h - ph, span_w - pw), (dh, dw))
        return grad_input if compute == result else grad_input.astype(result)
    k_total = kh * kw * channels
    wm = _kernel_matrix(kernels, compute)
    grad_input = np.zeros((batch, height, width, channels), dtype=compute)
    g2d = g.reshape(batch * out_h * out_w, filters)
    total = batch * out_h
    if _numba_gemm_pays(k_total, filters, total * out_w):
        rows_per_block = max(1, BLOCK_BYTES // max(1, out_w * k_total * g.itemsize))
        run_rows(conv_backward_input_images, batch, g.size * k_total // 4, g2d, wm, np.ascontiguousarray(wm.T),
                 kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, rows_per_block, grad_input,
                 align=max(1, rows_per_block // out_h))
        return grad_input if compute == result else grad_input.astype(result)
    step = _rows_per_chunk(out_w, k_total, g.itemsize, total)
    images = max(1, step // out_h)  # whole images per chunk (a chunk of an image when one does not fit)
    geometry = (kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w)
    if parallel_threads() > 1 and g.size * k_total >= helper_threads.PARALLEL_MIN_ELEMENTS:
        # the helper threads take whole images (no two scatter into one pixel), BLAS on one thread each
        with blas_threads(1):
            run_rows(_gemm_col2im_images, batch, 0, g2d, wm.T, geometry, step, images, grad_input, min_elements=0,
                     align=images)
    else:
        with blas_threads_for(min(step * out_w, g2d.shape[0]) * k_total * filters):
            _gemm_col2im_images(g2d, wm.T, geometry, step, images, grad_input, 0, batch)
    return grad_input if compute == result else grad_input.astype(result)


def _gemm_col2im_images(g2d, wm_t, geometry, step, images, grad_input, b0, b1):
    """``dx`` of the images ``b0 <= b < b1`` by chunks: ``gcols = g @ Wm^T`` (NumPy's BLAS), then :func:`col2im`.

    Chunks of ``images`` whole images (or of ``step`` output rows of one image), counted from image 0, so
    that the products and sums do not depend on how the batch is split over threads.
    """
    out_h, out_w = geometry[-2:]
    k_total = wm_t.shape[1]
    gcols = np.empty((min(step, images * out_h) * out_w, k_total), dtype=g2d.dtype)
    for i0 in range(b0, b1, images):
        last = min(b1, i0 + images) * out_h
        for q0 in range(i0 * out_h, last, step):
            q1 = min(last, q0 + step)
            n = (q1 - q0) * out_w
            np.dot(g2d[q0 * out_w:q1 * out_w], wm_t, out=gcols[:n])
            col2im(gcols, q0, q1, *geometry, grad_input)


def conv2d_backward_kernels_cpu(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1, groups=1):
    """CPU dE/dK; see :func:`conv2d_backward_kernels`."""
    compute, result = _compute_dtype(grad_output, x)
    if compute is None:
        return reference.conv2d_backward_kernels(grad_output.astype(result), x.astype(result), kernel_shape, stride,
                                                 padding, dilation, groups)
    if groups > 1:
        return grouped.backward_kernels(conv2d_backward_kernels_cpu, grad_output, x, kernel_shape, stride, padding,
                                        dilation, groups)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    x = np.ascontiguousarray(x, dtype=compute)
    batch, height, width, channels = x.shape
    filters, _, kh, kw = (int(s) for s in kernel_shape)
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry((height, width), (kh, kw), stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    if (dh, dw) == (1, 1) and _direct_kernels_pays(compute, x.shape, kernel_shape, (sh, sw), (ph, pw), out_h,
                                                   out_w):
        return np.ascontiguousarray(direct.backward_kernels(g, x, kernel_shape, ph, pw, (sh, sw)), dtype=result)
    k_total = kh * kw * channels
    g2d = g.reshape(batch * out_h * out_w, filters)
    total = batch * out_h
    if _numba_gemm_pays(filters, k_total, total * out_w):
        rows_per_block = max(1, GRAD_BLOCK_BYTES // max(1, out_w * filters * x.itemsize))
        xt = np.empty((batch, height, channels, width), dtype=compute)
        run_rows(nhwc_to_nhcw, batch * height, 2 * x.size, x, xt)
        # fixed ranges of whole blocks, one partial sum each, added in order: no dependence on threads
        n_blocks = -(-total // rows_per_block)
        n_partials = min(REDUCTION_BLOCKS, n_blocks)
        row_bounds = np.array([min(total, rows_per_block * (n_blocks * p // n_partials))
                               for p in range(n_partials + 1)], dtype=np.int64)
        partials = np.zeros((n_partials, k_total, filters), dtype=compute)
        run_rows(conv_backward_kernels_partials, n_partials, g.size * k_total // 4, xt, g2d, kh, kw, sh, sw, ph,
                 pw, dh, dw, out_h, out_w, rows_per_block, row_bounds, partials)
        grad_wm = partials[0]
        for p in range(1, n_partials):
            grad_wm += partials[p]
        grad = grad_wm.reshape(kh, kw, channels, filters).transpose(3, 2, 0, 1)
        return np.ascontiguousarray(grad, dtype=result)
    grad_wm = np.zeros((k_total, filters), dtype=compute)
    partial = np.empty_like(grad_wm)
    step = _rows_per_chunk(out_w, k_total, x.itemsize, total)
    cols = np.empty((step * out_w, k_total), dtype=compute)
    for q0 in range(0, total, step):
        q1 = min(total, q0 + step)
        n = (q1 - q0) * out_w
        im2col(x, q0, q1, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols)
        with blas_threads_for(n * k_total * filters):
            np.dot(cols[:n].T, g2d[q0 * out_w:q1 * out_w], out=partial)
        grad_wm += partial
    grad = grad_wm.reshape(kh, kw, channels, filters).transpose(3, 2, 0, 1)
    return np.ascontiguousarray(grad, dtype=result)


def conv2d_backward_bias_cpu(grad_output):
    """CPU dE/dbias; see :func:`conv2d_backward_bias`."""
    filters = grad_output.shape[-1]
    compute, result = _compute_dtype(grad_output)
    if compute is None:
        return reference.conv2d_backward_bias(grad_output)
    g2d = np.ascontiguousarray(grad_output, dtype=compute).reshape(-1, filters)
    out = np.empty(filters, dtype=compute)
    sum_rows(g2d, out)
    return out.astype(result, copy=False).reshape(filters, 1)
