"""Depthwise convolution on the CPU, NHWC (Xception/MobileNet, book section 22.9.6): Numba kernels.

A depth multiplier of 1 with at least 8 channels runs register tiles: the
forward in tiles of 8 pixels x 16 (or 8) channels kept in registers across the
taps (:func:`forward_tiles3_16`, :func:`forward_tiles`), the stride-1 input
gradient as that forward of ``g`` with flipped kernels, the 3 x 3 kernel
gradient with its 9 x 16 sums in registers (:func:`backward_kernels3x3_partials16`).
Otherwise one output row at a time: the row starts at the bias and each tap's
input row is multiplied into it channel by channel; the input gradient is a
*gather* per input row (no races). The kernel gradient is summed in
:data:`REDUCTION_BLOCKS` fixed ranges of output rows added in order, so every
result is the same on any number of threads (:func:`kernels.threads.run_rows`).
Kernels are re-laid as ``(kh, kw, C M)``. Other dtypes than float32/float64 fall
back to :mod:`kernels.depthwise2d.reference`; docs/design/kernels.md has the measurements.
"""

from __future__ import annotations

import numba
import numpy as np

from .. import threads
from ..conv2d.registers import stack_pointer
from ..geometry import as_pair, conv2d_geometry
from ..jit import njit
from . import reference

#: Below this many multiply-adds a call stays on the calling thread.
PARALLEL_MIN_ELEMENTS = 1 << 20
#: Partial sums of the kernel gradient: a fixed count, added in order (deterministic on any thread count).
REDUCTION_BLOCKS = 16

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@njit(inline="always", fastmath={"contract"})
def _multiply_add(dst, d, a, s, b, k, n, mult):
    """``dst[d + c M + m] += a[s + c] b[k + c M + m]`` for ``c < n``, ``m < M`` (unsigned indices: no
    wrap-around checks, so LLVM vectorises the ``M = 1`` loop)."""
    d = np.uint64(d)
    s = np.uint64(s)
    k = np.uint64(k)
    if mult == 1:
        for c in range(np.uint64(n)):
            dst[d + c] += a[s + c] * b[k + c]
    else:
        um = np.uint64(mult)
        for c in range(np.uint64(n)):
            v = a[s + c]
            for m in range(um):
                dst[d + c * um + m] += v * b[k + c * um + m]


@njit(inline="always", fastmath={"contract"})
def _dot_multiplier(dst, d, g, s, kf, k, n, mult):
    """``dst[d + c] += Σ_m g[s + c M + m] kf[k + c M + m]`` for ``c < n`` (the input gradient's inner loop)."""
    d = np.uint64(d)
    s = np.uint64(s)
    k = np.uint64(k)
    if mult == 1:
        for c in range(np.uint64(n)):
            dst[d + c] += g[s + c] * kf[k + c]
    else:
        um = np.uint64(mult)
        for c in range(np.uint64(n)):
            acc = dst[d + c]
            for m in range(um):
                acc += g[s + c * um + m] * kf[k + c * um + m]
            dst[d + c] = acc


@njit(inline="always")
def _columns(j, dw, pw, sw, width, out_w):
    """Outputs ``ow`` whose tap ``j`` falls inside the row: ``0 <= ow*sw + j*dw - pw < W``, as ``(lo, hi)``."""
    shift = j * dw - pw
    lo = max(0, (sw - 1 - shift) // sw)
    hi = min(out_w, (width - 1 - shift) // sw + 1)
    return lo, hi, shift


@njit(nogil=True, fastmath={"contract"})
def forward_rows(x, kt, bias, mult, sh, sw, ph, pw, dh, dw, out, q0, q1):
    """``out`` rows ``q0 <= q < q1`` (``q = b OH + oh``): ``out[b, oh, ow, f] = bias[f] + Σ_{i,j} xpad kt[i, j, f]``."""
    batch, height, width, channels = x.shape
    _, out_h, out_w, filters = out.shape
    kh, kw = kt.shape[0], kt.shape[1]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    kf = kt.reshape(kt.size)
    for q in range(q0, q1):
        b = q // out_h
        oh = q - b * out_h
        row = q * out_w * filters
        for ow in range(out_w):
            o = np.uint64(row + ow * filters)
            for f in range(np.uint64(filters)):
                of[o + f] = bias[f]
        for i in range(kh):
            ih = oh * sh - ph + i * dh
            if ih < 0 or ih >= height:
                continue
            x_row = (b * height + ih) * width * channels
            for j in range(kw):
                lo, hi, shift = _columns(j, dw, pw, sw, width, out_w)
                k = (i * kw + j) * filters
                for ow in range(lo, hi):
                    _multiply_add(of, row + ow * filters, xf, x_row + (ow * sw + shift) * channels, kf, k, channels,
                                  mult)


@njit(nogil=True, fastmath={"contract"})
def backward_input_rows(g, kt, mult, sh, sw, ph, pw, dh, dw, grad_input, r0, r1):
    """``dx`` rows ``r0 <= r < r1`` (``r = b H + h``): every output that read ``(h, w)`` sends ``g K`` back (gather)."""
    batch, height, width, channels = grad_input.shape
    _, out_h, out_w, filters = g.shape
    kh, kw = kt.shape[0], kt.shape[1]
    gf = g.reshape(g.size)
    df = grad_input.reshape(grad_input.size)
    kf = kt.reshape(kt.size)
    for r in range(r0, r1):
        b = r // height
        h = r - b * height
        row = r * width * channels
        urow = np.uint64(row)
        for t in range(np.uint64(width * channels)):
            df[urow + t] = 0
        for i in range(kh):
            th = h + ph - i * dh
            if th < 0 or th % sh != 0:
                continue
            oh = th // sh
            if oh >= out_h:
                continue
            g_row = (b * out_h + oh) * out_w * filters
            for j in range(kw):
                lo, hi, shift = _columns(j, dw, pw, sw, width, out_w)
                k = (i * kw + j) * filters
                for ow in range(lo, hi):
                    _dot_multiplier(df, row + (ow * sw + shift) * channels, gf, g_row + ow * filters, kf, k,
                                    channels, mult)


@njit(nogil=True, fastmath={"contract"})
def backward_kernels_partials(x, g, mult, sh, sw, ph, pw, dh, dw, row_bounds, partials, p0, p1):
    """``partials[p, i, j, f] = Σ g[b, oh, ow, f] xpad[b, oh*sh + i*dh, ow*sw + j*dw, f // M]`` over the output
    rows ``row_bounds[p] <= q < row_bounds[p + 1]``, for ``p0 <= p < p1`` (each partial zeroed here)."""
    batch, height, width, channels = x.shape
    _, out_h, out_w, filters = g.shape
    kh, kw = partials.shape[1], partials.shape[2]
    xf = x.reshape(x.size)
    gf = g.reshape(g.size)
    for p in range(p0, p1):
        acc = partials[p].reshape(kh * kw * filters)
        for t in range(kh * kw * filters):
            acc[t] = 0
        for q in range(row_bounds[p], row_bounds[p + 1]):
            b = q // out_h
            oh = q - b * out_h
            g_row = q * out_w * filters
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= height:
                    continue
                x_row = (b * height + ih) * width * channels
                for j in range(kw):
                    lo, hi, shift = _columns(j, dw, pw, sw, width, out_w)
                    k = (i * kw + j) * filters
                    for ow in range(lo, hi):
                        _multiply_add(acc, k, xf, x_row + (ow * sw + shift) * channels, gf, g_row + ow * filters,
                                      channels, mult)


# --------------------------------------------------------------------------
# register tiles (depth multiplier 1)
# --------------------------------------------------------------------------
@njit(inline="always", fastmath={"contract"})
def _pixels_tile(xf, kf, bias, of, x0, o0, xpix, i_lo, i_hi, xrow, j_lo, j_hi, xcol, kw, filters, c0, rows, width):
    """One register tile: ``rows`` output pixels (1 or 8, a constant) x ``width`` channels (a constant)::

        of[o0 + r F + c0 + t] = bias[c0 + t] + Σ_{i_lo <= i < i_hi, j_lo <= j < j_hi}
                                xf[x0 + r xpix + i xrow + j xcol + c0 + t] kf[(i kw + j) F + c0 + t]

    The sum starts at the bias and runs over the taps in ``(i, j)`` order (the same sums as
    :func:`forward_rows`). The accumulators stay in registers across the taps; each tap loads the
    kernel vector once for the ``rows`` pixels.
    """
    acc = numba.carray(stack_pointer(128, of.dtype), (8, 16))
    for r in range(rows):
        for t in range(width):
            acc[r, t] = bias[c0 + t]
    p = np.uint64(xpix)
    for i in range(i_lo, i_hi):
        for j in range(j_lo, j_hi):
            xo = np.uint64(x0 + i * xrow + j * xcol + c0)
            ko = np.uint64((i * kw + j) * filters + c0)
            if rows == 8:
                o1 = xo + p
                o2 = o1 + p
                o3 = o2 + p
                o4 = o3 + p
                o5 = o4 + p
                o6 = o5 + p
                o7 = o6 + p
                for t in range(width):
                    ut = np.uint64(t)
                    kv = kf[ko + ut]
                    acc[0, t] += xf[xo + ut] * kv
                    acc[1, t] += xf[o1 + ut] * kv
                    acc[2, t] += xf[o2 + ut] * kv
                    acc[3, t] += xf[o3 + ut] * kv
                    acc[4, t] += xf[o4 + ut] * kv
                    acc[5, t] += xf[o5 + ut] * kv
                    acc[6, t] += xf[o6 + ut] * kv
                    acc[7, t] += xf[o7 + ut] * kv
            else:
                for t in range(width):
                    ut = np.uint64(t)
                    acc[0, t] += xf[xo + ut] * kf[ko + ut]
    for r in range(rows):
        o = np.uint64(o0 + r * filters + c0)
        for t in range(width):
            of[o + np.uint64(t)] = acc[r, t]


@njit(inline="always", fastmath={"contract"})
def _pixels_channels(xf, kf, bias, of, x0, o0, xpix, i_lo, i_hi, xrow, j_lo, j_hi, xcol, kw, filters, rows):
    """:func:`_pixels_tile` over every channel (at least 8): blocks of 16, then of 8, the last one overlapping
    the block before it (recomputing the same sums)."""
    c0 = 0
    while c0 + 16 <= filters:
        _pixels_tile(xf, kf, bias, of, x0, o0, xpix, i_lo, i_hi, xrow, j_lo, j_hi, xcol, kw, filters, c0, rows, 16)
        c0 += 16
    while c0 < filters:  # C >= 8 (the callers' condition)
        _pixels_tile(xf, kf, bias, of, x0, o0, xpix, i_lo, i_hi, xrow, j_lo, j_hi, xcol, kw, filters,
                     min(c0, filters - 8), rows, 8)
        c0 += 8


@njit(inline="always", fastmath={"contract"})
def _pixels_tile3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, filters, c0, left, right, width):
    """:func:`_pixels_tile` for 8 pixels, a kernel 3 taps wide, stride and dilation 1 along the width: per kernel
    row the 10 input vectors are loaded once for the 24 products (same sums, same order).

    ``left`` / ``right``: the first / last of the 10 input columns is padding, read from the zeros ``zf``
    (the products of the padding are added, as in the book's zero-padded loops)."""
    acc = numba.carray(stack_pointer(128, of.dtype), (8, 16))
    for r in range(8):
        for t in range(width):
            acc[r, t] = bias[c0 + t]
    p = np.uint64(channels)
    f = np.uint64(filters)
    s0 = zf if left else xf
    s9 = zf if right else xf
    for i in range(i_lo, i_hi):
        a0 = np.uint64(x0 + i * xrow + c0)
        a1 = a0 + p
        a2 = a1 + p
        a3 = a2 + p
        a4 = a3 + p
        a5 = a4 + p
        a6 = a5 + p
        a7 = a6 + p
        a8 = a7 + p
        a9 = a8 + p
        k0 = np.uint64(3 * i * filters + c0)
        k1 = k0 + f
        k2 = k1 + f
        for t in range(width):
            ut = np.uint64(t)
            w0 = kf[k0 + ut]
            w1 = kf[k1 + ut]
            w2 = kf[k2 + ut]
            v0 = s0[(np.uint64(0) if left else a0) + ut]
            v1 = xf[a1 + ut]
            v2 = xf[a2 + ut]
            v3 = xf[a3 + ut]
            v4 = xf[a4 + ut]
            v5 = xf[a5 + ut]
            v6 = xf[a6 + ut]
            v7 = xf[a7 + ut]
            v8 = xf[a8 + ut]
            v9 = s9[(np.uint64(0) if right else a9) + ut]
            acc[0, t] = acc[0, t] + v0 * w0 + v1 * w1 + v2 * w2
            acc[1, t] = acc[1, t] + v1 * w0 + v2 * w1 + v3 * w2
            acc[2, t] = acc[2, t] + v2 * w0 + v3 * w1 + v4 * w2
            acc[3, t] = acc[3, t] + v3 * w0 + v4 * w1 + v5 * w2
            acc[4, t] = acc[4, t] + v4 * w0 + v5 * w1 + v6 * w2
            acc[5, t] = acc[5, t] + v5 * w0 + v6 * w1 + v7 * w2
            acc[6, t] = acc[6, t] + v6 * w0 + v7 * w1 + v8 * w2
            acc[7, t] = acc[7, t] + v7 * w0 + v8 * w1 + v9 * w2
    for r in range(8):
        o = np.uint64(o0 + r * filters + c0)
        for t in range(width):
            of[o + np.uint64(t)] = acc[r, t]


@njit(inline="always", fastmath={"contract"})
def _channels3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, left, right, width):
    """:func:`_pixels_tile3` over every channel in blocks of ``width`` (16: ``C`` a multiple of 16; 8: any
    ``C >= 8``, the last block overlapping the one before it and recomputing the same sums)."""
    c0 = 0
    while c0 + width <= channels:
        _pixels_tile3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, channels, c0, left, right, width)
        c0 += width
    if width == 8 and c0 < channels:  # the last block overlapping the one before it
        _pixels_tile3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, channels, channels - width, left,
                      right, width)


@njit(inline="always")
def _taps_inside(start, step, size, taps):
    """``(lo, hi)``: the taps ``lo <= a < hi`` with ``0 <= start + a*step < size``."""
    lo = max(0, -(start // step)) if start < 0 else 0
    hi = min(taps, -((start - size) // step))
    return lo, max(lo, hi)


@njit(nogil=True, fastmath={"contract"})
def forward_tiles(xf, kf, bias, of, dims, sh, sw, ph, pw, dh, dw, q0, q1):
    """:func:`forward_rows` for a depth multiplier of 1 (``F = C``), in register tiles of 8 pixels x 16
    channels: ``out[b, oh, ow, c] = bias[c] + Σ_{i, j} xpad[b, oh*sh + i*dh, ow*sw + j*dw, c] kt[i, j, c]``
    for the rows ``q0 <= q < q1`` (``q = b OH + oh``); any kernel size, stride, padding (negative too) and
    dilation, at least 8 channels. Pixels with a tap outside the row are computed one by one over their
    valid taps.

    ``xf``, ``kf``, ``of``: ``x``, ``kt`` and ``out`` flattened (by the caller: a reshape in here keeps the
    accumulators out of the registers); ``dims = (H, W, C, OH, OW, kh, kw)``.
    """
    height, width, channels, out_h, out_w, kh, kw = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6]
    filters = channels
    xpix, xrow, xcol = sw * channels, dh * width * channels, dw * channels
    # pixels whose every tap is inside the row: ow*sw - pw >= 0 and ow*sw - pw + (kw - 1)*dw < W
    lo = max(0, -((-pw) // sw))
    hi = min(out_w, (width - 1 + pw - (kw - 1) * dw) // sw + 1)
    if hi - lo >= 8:
        first, last = lo, hi
    else:
        first, last = out_w, out_w
    for q in range(q0, q1):
        b = q // out_h
        oh = q - b * out_h
        top = oh * sh - ph
        i_lo, i_hi = _taps_inside(top, dh, height, kh)
        x_row = (b * height + top) * width * channels
        o_row = q * out_w * filters
        for ow0 in range(first, last, 8):
            ow0 = min(ow0, last - 8)
            _pixels_channels(xf, kf, bias, of, x_row + (ow0 * sw - pw) * channels, o_row + ow0 * filters, xpix,
                             i_lo, i_hi, xrow, 0, kw, xcol, kw, filters, 8)
        for ow in range(out_w):
            if first <= ow < last:
                continue
            left = ow * sw - pw
            j_lo, j_hi = _taps_inside(left, dw, width, kw)
            _pixels_channels(xf, kf, bias, of, x_row + left * channels, o_row + ow * filters, xpix, i_lo, i_hi,
                             xrow, j_lo, j_hi, xcol, kw, filters, 1)


@njit(inline="always", fastmath={"contract"})
def _tiles3_rows(xf, zf, kf, bias, of, dims, ph, pw, q0, q1, width):
    """The rows ``q0 <= q < q1`` of a 3-tap-wide forward at stride and dilation 1 along the width (any along
    the height: ``dims[7:9] = (sh, dh)``), padding ``pw <= 1`` and ``OW >= 9``: tiles of 8 pixels over the
    whole row (the last one overlapping), the padding column of the first and last tile read from ``zf``."""
    height, width_in, channels, out_h, out_w, kh = dims[0], dims[1], dims[2], dims[3], dims[4], dims[5]
    sh, dh = dims[7], dims[8]
    xrow = dh * width_in * channels
    for q in range(q0, q1):
        b = q // out_h
        oh = q - b * out_h
        top = oh * sh - ph
        i_lo, i_hi = _taps_inside(top, dh, height, kh)
        x_row = (b * height + top) * width_in * channels
        o_row = q * out_w * channels
        for ow0 in range(0, out_w, 8):
            ow0 = min(ow0, out_w - 8)
            x0, o0 = x_row + (ow0 - pw) * channels, o_row + ow0 * channels
            # the edge flags as constants (one copy of the tile each): a select would not vectorise
            if ow0 - pw < 0:  # (never with the right edge too: at least 9 pixels)
                _channels3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, True, False, width)
            elif ow0 - pw + 9 >= width_in:
                _channels3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, False, True, width)
            else:
                _channels3(xf, zf, kf, bias, of, x0, o0, i_lo, i_hi, xrow, channels, False, False, width)


@njit(nogil=True, fastmath={"contract"})
def forward_tiles3_16(xf, zf, kf, bias, of, dims, ph, pw, q0, q1):
    """:func:`forward_tiles` for a kernel 3 taps wide at stride and dilation 1 along the width, ``pw <= 1``,
    ``OW >= 9`` and a multiple of 16 channels: per kernel row, the 10 input vectors of a tile of 8 pixels are
    loaded once for its 24 products (:func:`_tiles3_rows`; ``zf``: 16 zeros, ``dims = (H, W, C, OH, OW, kh,
    kw, sh, dh)``). The same sums in the same order as :func:`forward_rows`, with the padding's products."""
    _tiles3_rows(xf, zf, kf, bias, of, dims, ph, pw, q0, q1, 16)


@njit(nogil=True, fastmath={"contract"})
def forward_tiles3_8(xf, zf, kf, bias, of, dims, ph, pw, q0, q1):
    """:func:`forward_tiles3_16` for any count of channels from 8 on, in blocks of 8 (a kernel of its own, so
    that a model compiles only the width it uses)."""
    _tiles3_rows(xf, zf, kf, bias, of, dims, ph, pw, q0, q1, 8)


@njit(inline="always", fastmath={"contract"})
def _kernel_row(acc, i3, xf, xo, xcol, gf, go, j_lo, j_hi, width):
    """``acc[i3 + j, t] += xf[xo + j xcol + t] gf[go + t]`` for the taps ``j_lo <= j < j_hi`` of a 3-tap kernel
    row, ``t < width`` (``i3`` a constant: the accumulators keep fixed places and stay in registers)."""
    g0 = np.uint64(go)
    if j_lo == 0 and j_hi == 3:
        x0 = np.uint64(xo)
        x1 = np.uint64(xo + xcol)
        x2 = np.uint64(xo + 2 * xcol)
        for t in range(width):
            ut = np.uint64(t)
            gv = gf[g0 + ut]
            acc[i3, t] += xf[x0 + ut] * gv
            acc[i3 + 1, t] += xf[x1 + ut] * gv
            acc[i3 + 2, t] += xf[x2 + ut] * gv
    else:
        _kernel_row_some(acc, i3, xf, xo, xcol, gf, g0, j_lo, j_hi, width)


@njit(inline="always", fastmath={"contract"})
def _kernel_row_some(acc, i3, xf, xo, xcol, gf, g0, j_lo, j_hi, width):
    """:func:`_kernel_row` for a pixel at the edge: only the taps ``j_lo <= j < j_hi``."""
    if j_lo <= 0 < j_hi:
        x0 = np.uint64(xo)
        for t in range(width):
            acc[i3, t] += xf[x0 + np.uint64(t)] * gf[g0 + np.uint64(t)]
    if j_lo <= 1 < j_hi:
        x1 = np.uint64(xo + xcol)
        for t in range(width):
            acc[i3 + 1, t] += xf[x1 + np.uint64(t)] * gf[g0 + np.uint64(t)]
    if j_lo <= 2 < j_hi:
        x2 = np.uint64(xo + 2 * xcol)
        for t in range(width):
            acc[i3 + 2, t] += xf[x2 + np.uint64(t)] * gf[g0 + np.uint64(t)]


@njit(inline="always", fastmath={"contract"})
def _pixel9(acc, xf, xo, xrow, xcol, gf, go, width):
    """``acc[3 i + j, t] += xf[xo + i xrow + j xcol + t] gf[go + t]`` for the 9 taps, ``t < width``."""
    g0 = np.uint64(go)
    a0 = np.uint64(xo)
    r = np.uint64(xrow)
    c = np.uint64(xcol)
    a1 = a0 + c
    a2 = a1 + c
    b0 = a0 + r
    b1 = b0 + c
    b2 = b1 + c
    d0 = b0 + r
    d1 = d0 + c
    d2 = d1 + c
    for t in range(width):
        ut = np.uint64(t)
        gv = gf[g0 + ut]
        acc[0, t] += xf[a0 + ut] * gv
        acc[1, t] += xf[a1 + ut] * gv
        acc[2, t] += xf[a2 + ut] * gv
        acc[3, t] += xf[b0 + ut] * gv
        acc[4, t] += xf[b1 + ut] * gv
        acc[5, t] += xf[b2 + ut] * gv
        acc[6, t] += xf[d0 + ut] * gv
        acc[7, t] += xf[d1 + ut] * gv
        acc[8, t] += xf[d2 + ut] * gv


@njit(inline="always", fastmath={"contract"})
def _pixel9x2(acc, xf, xo, xrow, channels, gf, go, width):
    """:func:`_pixel9` for two neighbouring pixels at stride and dilation 1 along the width (pixel ``go``, then
    pixel ``go + C``, in the order of two calls): the 4 input columns of each kernel row are loaded once."""
    g0 = np.uint64(go)
    c = np.uint64(channels)
    g1 = g0 + c
    a0 = np.uint64(xo)
    r = np.uint64(xrow)
    a1 = a0 + c
    a2 = a1 + c
    a3 = a2 + c
    b0 = a0 + r
    b1 = b0 + c
    b2 = b1 + c
    b3 = b2 + c
    d0 = b0 + r
    d1 = d0 + c
    d2 = d1 + c
    d3 = d2 + c
    for t in range(width):
        ut = np.uint64(t)
        u = gf[g0 + ut]
        v = gf[g1 + ut]
        x0 = xf[a0 + ut]
        x1 = xf[a1 + ut]
        x2 = xf[a2 + ut]
        x3 = xf[a3 + ut]
        acc[0, t] = acc[0, t] + x0 * u + x1 * v
        acc[1, t] = acc[1, t] + x1 * u + x2 * v
        acc[2, t] = acc[2, t] + x2 * u + x3 * v
        y0 = xf[b0 + ut]
        y1 = xf[b1 + ut]
        y2 = xf[b2 + ut]
        y3 = xf[b3 + ut]
        acc[3, t] = acc[3, t] + y0 * u + y1 * v
        acc[4, t] = acc[4, t] + y1 * u + y2 * v
        acc[5, t] = acc[5, t] + y2 * u + y3 * v
        z0 = xf[d0 + ut]
        z1 = xf[d1 + ut]
        z2 = xf[d2 + ut]
        z3 = xf[d3 + ut]
        acc[6, t] = acc[6, t] + z0 * u + z1 * v
        acc[7, t] = acc[7, t] + z1 * u + z2 * v
        acc[8, t] = acc[8, t] + z2 * u + z3 * v


@njit(inline="always", fastmath={"contract"})
def _kernels_block3x3(xf, gf, dims, sh, sw, ph, pw, dh, dw, r0, r1, c0, pf, p0, width):
    """``pf[p0 + (3 i + j) C + c0 + t] = Σ g[q, ow, c0 + t] xpad[b, oh*sh + i*dh, ow*sw + j*dw, c0 + t]`` over the
    output rows ``r0 <= q < r1`` (``q = b OH + oh``), for ``t < width`` (a constant): 9 x ``width`` accumulators
    in registers, summed pixel after pixel in a fixed order."""
    height, wid, channels, out_h, out_w = dims[0], dims[1], dims[2], dims[3], dims[4]
    xrow, xcol = dh * wid * channels, dw * channels
    acc = numba.carray(stack_pointer(144, pf.dtype), (9, 16))
    for a in range(9):
        for t in range(width):
            acc[a, t] = 0
    lo = min(out_w, max(0, -((-pw) // sw)))
    hi = max(lo, min(out_w, (wid - 1 + pw - 2 * dw) // sw + 1))
    pairs = sw == 1 and dw == 1
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        top = oh * sh - ph
        v0 = 0 <= top < height
        v1 = 0 <= top + dh < height
        v2 = 0 <= top + 2 * dh < height
        x_row = (b * height + top) * wid * channels + c0
        g_row = q * out_w * channels + c0
        full = v0 and v1 and v2
        if full and pairs:  # the pixels with all 9 taps inside, two at a time, then the others
            for ow in range(lo, hi - 1, 2):
                _pixel9x2(acc, xf, x_row + (ow - pw) * channels, xrow, channels, gf, g_row + ow * channels, width)
            if (hi - lo) % 2:
                _pixel9(acc, xf, x_row + (hi - 1 - pw) * channels, xrow, xcol, gf, g_row + (hi - 1) * channels,
                        width)
        elif full:
            for ow in range(lo, hi):
                _pixel9(acc, xf, x_row + (ow * sw - pw) * channels, xrow, xcol, gf, g_row + ow * channels, width)
        for ow in range(out_w):
            if full and lo <= ow < hi:
                continue
            left = ow * sw - pw
            if lo <= ow < hi:
                j_lo, j_hi = 0, 3
            else:
                j_lo, j_hi = _taps_inside(left, dw, wid, 3)
            xo = x_row + left * channels
            go = g_row + ow * channels
            if v0:
                _kernel_row(acc, 0, xf, xo, xcol, gf, go, j_lo, j_hi, width)
            if v1:
                _kernel_row(acc, 3, xf, xo + xrow, xcol, gf, go, j_lo, j_hi, width)
            if v2:
                _kernel_row(acc, 6, xf, xo + 2 * xrow, xcol, gf, go, j_lo, j_hi, width)
    for a in range(9):
        o = np.uint64(p0 + a * channels + c0)
        for t in range(width):
            pf[o + np.uint64(t)] = acc[a, t]


@njit(inline="always", fastmath={"contract"})
def _kernels3x3_partials(xf, gf, dims, sh, sw, ph, pw, dh, dw, row_bounds, pf, p0, p1, width):
    """``partials[p, 3 i + j, c]`` (``pf``: ``partials`` flattened) over the output rows
    ``row_bounds[p] <= q < row_bounds[p + 1]``, ``p0 <= p < p1``, in blocks of ``width`` channels (8: the last
    block overlapping the one before it and recomputing the same sums)."""
    filters = dims[2]
    for p in range(p0, p1):
        for c0 in range(0, filters, width):
            _kernels_block3x3(xf, gf, dims, sh, sw, ph, pw, dh, dw, row_bounds[p], row_bounds[p + 1],
                              min(c0, filters - width), pf, p * 9 * filters, width)


@njit(nogil=True, fastmath={"contract"})
def backward_kernels3x3_partials16(xf, gf, dims, sh, sw, ph, pw, dh, dw, row_bounds, pf, p0, p1):
    """:func:`backward_kernels_partials` for 3 x 3 kernels, a depth multiplier of 1 and a multiple of 16
    channels: ``partials[p, 3 i + j, c]`` in blocks of 16 channels (:func:`_kernels_block3x3`). ``xf``, ``gf``,
    ``pf``: ``x``, ``g`` and ``partials`` flattened; ``dims = (H, W, C, OH, OW)``."""
    _kernels3x3_partials(xf, gf, dims, sh, sw, ph, pw, dh, dw, row_bounds, pf, p0, p1, 16)


@njit(nogil=True, fastmath={"contract"})
def backward_kernels3x3_partials8(xf, gf, dims, sh, sw, ph, pw, dh, dw, row_bounds, pf, p0, p1):
    """:func:`backward_kernels3x3_partials16` for any count of channels from 8 on, in blocks of 8."""
    _kernels3x3_partials(xf, gf, dims, sh, sw, ph, pw, dh, dw, row_bounds, pf, p0, p1, 8)


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _tap_major(kernels, dtype):
    """``(C M, 1, kh, kw)`` -> ``(kh, kw, C M)``, contiguous."""
    f, _, kh, kw = kernels.shape
    return np.ascontiguousarray(kernels.reshape(f, kh, kw).transpose(1, 2, 0), dtype=dtype)


def _forward_tiles(x, kt, bias, out, geometry, work):
    """Run the register tiles over the rows of ``out`` (``geometry = (sh, sw, ph, pw, dh, dw)``, ``C >= 8``):
    :func:`forward_tiles3_16` / ``_8`` where they apply, else :func:`forward_tiles`."""
    sh, sw, ph, pw, dh, dw = geometry
    kh, kw = kt.shape[0], kt.shape[1]
    channels, out_w = x.shape[3], out.shape[2]
    dims = np.array([x.shape[1], x.shape[2], channels, out.shape[1], out_w, kh, kw, sh, dh], dtype=np.int64)
    rows = out.shape[0] * out.shape[1]
    if kw == 3 and sw == 1 and dw == 1 and 0 <= pw <= 1 and out_w >= 9:
        kernel = forward_tiles3_16 if channels % 16 == 0 else forward_tiles3_8
        threads.run_rows(kernel, rows, work, x.reshape(-1), np.zeros(16, x.dtype), kt.reshape(-1), bias,
                         out.reshape(-1), dims, ph, pw, min_elements=PARALLEL_MIN_ELEMENTS)
        return
    threads.run_rows(forward_tiles, rows, work, x.reshape(-1), kt.reshape(-1), bias, out.reshape(-1), dims,
                     *geometry, min_elements=PARALLEL_MIN_ELEMENTS)


def _compute_dtype(*arrays):
    dtype = np.result_type(*arrays)
    return (dtype if dtype in _FAST_DTYPES else None), dtype


def _geometry(shape, kernel_shape, stride, padding, dilation):
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry(shape[1:3], kernel_shape[2:], stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    return sh, sw, ph, pw, dh, dw, out_h, out_w


# --------------------------------------------------------------------------
# CPU implementations
# --------------------------------------------------------------------------
def depthwise2d_forward_cpu(x, kernels, biases=None, stride=1, padding=0, dilation=1):
    """CPU forward; see :func:`kernels.depthwise2d.depthwise2d_forward`."""
    arrays = (x, kernels) if biases is None else (x, kernels, biases)
    compute, result = _compute_dtype(*arrays)
    if compute is None:
        return reference.depthwise2d_forward(x.astype(result), kernels.astype(result),
                                             None if biases is None else biases.astype(result), stride, padding,
                                             dilation)
    x = np.ascontiguousarray(x, dtype=compute)
    filters = kernels.shape[0]
    sh, sw, ph, pw, dh, dw, out_h, out_w = _geometry(x.shape, kernels.shape, stride, padding, dilation)
    bias = np.zeros(filters, compute) if biases is None else np.ascontiguousarray(biases, compute).reshape(filters)
    out = np.empty((x.shape[0], out_h, out_w, filters), dtype=compute)
    work = out.size * kernels.shape[2] * kernels.shape[3]
    if filters == x.shape[3] >= 8:
        _forward_tiles(x, _tap_major(kernels, compute), bias, out, (sh, sw, ph, pw, dh, dw), work)
        return out
    threads.run_rows(forward_rows, x.shape[0] * out_h, work, x, _tap_major(kernels, compute), bias,
                     filters // x.shape[3], sh, sw, ph, pw, dh, dw, out, min_elements=PARALLEL_MIN_ELEMENTS)
    return out


def depthwise2d_backward_input_cpu(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1):
    """CPU dE/dx; see :func:`kernels.depthwise2d.depthwise2d_backward_input`."""
    compute, result = _compute_dtype(grad_output, kernels)
    input_shape = tuple(int(s) for s in input_shape)
    if compute is None:
        return reference.depthwise2d_backward_input(grad_output.astype(result), kernels.astype(result), input_shape,
                                                    stride, padding, dilation)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    sh, sw, ph, pw, dh, dw, _, _ = _geometry(input_shape, kernels.shape, stride, padding, dilation)
    grad_input = np.empty(input_shape, dtype=compute)
    kh, kw = kernels.shape[2], kernels.shape[3]
    work = g.size * kh * kw
    if kernels.shape[0] == input_shape[3] >= 8 and (sh, sw) == (1, 1):
        # stride 1, multiplier 1: the forward of g with the flipped kernels, padded by dilation (k - 1) - padding
        flipped = np.ascontiguousarray(_tap_major(kernels, compute)[::-1, ::-1])
        _forward_tiles(g, flipped, np.zeros(input_shape[3], compute), grad_input,
                       (1, 1, dh * (kh - 1) - ph, dw * (kw - 1) - pw, dh, dw), work)
        return grad_input
    threads.run_rows(backward_input_rows, input_shape[0] * input_shape[1], work, g, _tap_major(kernels, compute),
                     kernels.shape[0] // input_shape[3], sh, sw, ph, pw, dh, dw, grad_input,
                     min_elements=PARALLEL_MIN_ELEMENTS)
    return grad_input


def depthwise2d_backward_kernels_cpu(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1):
    """CPU dE/dK; see :func:`kernels.depthwise2d.depthwise2d_backward_kernels`."""
    compute, result = _compute_dtype(grad_output, x)
    kernel_shape = tuple(int(s) for s in kernel_shape)
    if compute is None:
        return reference.depthwise2d_backward_kernels(grad_output.astype(result), x.astype(result), kernel_shape,
                                                      stride, padding, dilation)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    x = np.ascontiguousarray(x, dtype=compute)
    filters, _, kh, kw = kernel_shape
    sh, sw, ph, pw, dh, dw, out_h, _ = _geometry(x.shape, kernel_shape, stride, padding, dilation)
    total = x.shape[0] * out_h
    n_partials = max(1, min(REDUCTION_BLOCKS, total))
    row_bounds = np.array([total * p // n_partials for p in range(n_partials + 1)], dtype=np.int64)
    partials = np.empty((n_partials, kh, kw, filters), dtype=compute)
    if (kh, kw) == (3, 3) and filters == x.shape[3] >= 8:
        dims = np.array([x.shape[1], x.shape[2], filters, out_h, g.shape[2]], dtype=np.int64)
        kernel = backward_kernels3x3_partials16 if filters % 16 == 0 else backward_kernels3x3_partials8
        threads.run_rows(kernel, n_partials, g.size * kh * kw, x.reshape(-1), g.reshape(-1),
                         dims, sh, sw, ph, pw, dh, dw, row_bounds, partials.reshape(-1),
                         min_elements=PARALLEL_MIN_ELEMENTS)
    else:
        threads.run_rows(backward_kernels_partials, n_partials, g.size * kh * kw, x, g, filters // x.shape[3], sh,
                         sw, ph, pw, dh, dw, row_bounds, partials, min_elements=PARALLEL_MIN_ELEMENTS)
    grad = partials[0]
    for p in range(1, n_partials):
        grad += partials[p]
    return np.ascontiguousarray(grad.transpose(2, 0, 1).reshape(filters, 1, kh, kw))
