"""Direct 2-D convolution on the CPU for thin layers: float32, NHWC (book section 22.2).

No im2col matrix: the register-tiled product reads the taps straight from a
zero-padded copy of the input. For a fixed kernel row ``i``, output pixel
``(oh, ow)`` reads the ``kw * C`` contiguous values of padded row ``oh sh + i``
from column ``ow sw`` on, so consecutive output pixels are the rows of a matrix
with row stride ``sw C`` (overlapping rows at stride 1) and the forward is ``Σ_i A_i @ W_i``,
summed in the order of :func:`kernels.conv2d.cpu.gemm_kf` (same bits). The
product is an outer-product micro-kernel (:func:`_outer16`: 16 output pixels
x 16 or 8 channels per tile, its broadcast operand folded into the FMA;
:func:`_outer8`: 8 pixels x 32 channels, each broadcast used by two FMAs).

* :func:`forward`: output rows split over the helper threads, any stride;
* :func:`backward_input`: at stride 1, the forward of the padded output
  gradient with flipped, channel-swapped kernels; at other strides one such
  correlation per phase of the stride (sub-pixel), written into every
  stride-th pixel;
* :func:`backward_kernels`: tiles of 16 taps x 16 filters, any stride.

When this path is taken: ``kernels.conv2d.cpu._direct_pays``; the
measurements behind it: docs/design/kernels.md.
"""

from __future__ import annotations

import numba
import numpy as np

from ..jit import njit
from ..threads import run_rows
from .registers import stack_pointer

#: Output pixels per tile (the rows of :func:`_outer16`).
TILE_ROWS = 16


@njit(inline="always", fastmath={"contract"})
def _outer16(af, a0, a8, astride, astep, bf, b0, bstep, steps, acc, width):
    """``acc[r, t] += Σ_s af[o_r + s*astep] * bf[b0 + s*bstep + t]``, 16 rows, ``width`` (a constant).

    Row offsets: ``o_r = a0 + r*astride`` for ``r < 8``, ``a8 + (r - 8)*astride`` for ``r >= 8``
    (``a8 = a0 + 8*astride`` for evenly spaced rows; another ``a8`` starts the second half elsewhere).
    The rows are written out so that LLVM keeps the 16 accumulator vectors in
    registers and reads each ``af`` value as an FMA's broadcast operand.
    """
    s_a = np.uint64(astride)
    o0 = np.uint64(a0)
    o1 = o0 + s_a
    o2 = o1 + s_a
    o3 = o2 + s_a
    o4 = o3 + s_a
    o5 = o4 + s_a
    o6 = o5 + s_a
    o7 = o6 + s_a
    o8 = np.uint64(a8)
    o9 = o8 + s_a
    o10 = o9 + s_a
    o11 = o10 + s_a
    o12 = o11 + s_a
    o13 = o12 + s_a
    o14 = o13 + s_a
    o15 = o14 + s_a
    step_a = np.uint64(astep)
    step_b = np.uint64(bstep)
    bo = np.uint64(b0)
    ao = np.uint64(0)
    for _ in range(steps):
        x0 = af[o0 + ao]
        x1 = af[o1 + ao]
        x2 = af[o2 + ao]
        x3 = af[o3 + ao]
        x4 = af[o4 + ao]
        x5 = af[o5 + ao]
        x6 = af[o6 + ao]
        x7 = af[o7 + ao]
        x8 = af[o8 + ao]
        x9 = af[o9 + ao]
        x10 = af[o10 + ao]
        x11 = af[o11 + ao]
        x12 = af[o12 + ao]
        x13 = af[o13 + ao]
        x14 = af[o14 + ao]
        x15 = af[o15 + ao]
        for t in range(width):
            y = bf[bo + np.uint64(t)]
            acc[0, t] += x0 * y
            acc[1, t] += x1 * y
            acc[2, t] += x2 * y
            acc[3, t] += x3 * y
            acc[4, t] += x4 * y
            acc[5, t] += x5 * y
            acc[6, t] += x6 * y
            acc[7, t] += x7 * y
            acc[8, t] += x8 * y
            acc[9, t] += x9 * y
            acc[10, t] += x10 * y
            acc[11, t] += x11 * y
            acc[12, t] += x12 * y
            acc[13, t] += x13 * y
            acc[14, t] += x14 * y
            acc[15, t] += x15 * y
        ao += step_a
        bo += step_b


@njit(inline="always", fastmath={"contract"})
def _outer8(af, a0, astride, astep, bf, b0, bstep, steps, acc, width):
    """:func:`_outer16` for 8 rows ``o_r = a0 + r*astride``, with ``width`` 32: 16 accumulator vectors, and
    each ``af`` value broadcast once for two FMAs (10 loads per 16 FMAs instead of 17)."""
    s_a = np.uint64(astride)
    o0 = np.uint64(a0)
    o1 = o0 + s_a
    o2 = o1 + s_a
    o3 = o2 + s_a
    o4 = o3 + s_a
    o5 = o4 + s_a
    o6 = o5 + s_a
    o7 = o6 + s_a
    step_a = np.uint64(astep)
    step_b = np.uint64(bstep)
    bo = np.uint64(b0)
    ao = np.uint64(0)
    for _ in range(steps):
        x0 = af[o0 + ao]
        x1 = af[o1 + ao]
        x2 = af[o2 + ao]
        x3 = af[o3 + ao]
        x4 = af[o4 + ao]
        x5 = af[o5 + ao]
        x6 = af[o6 + ao]
        x7 = af[o7 + ao]
        for t in range(width):
            y = bf[bo + np.uint64(t)]
            acc[0, t] += x0 * y
            acc[1, t] += x1 * y
            acc[2, t] += x2 * y
            acc[3, t] += x3 * y
            acc[4, t] += x4 * y
            acc[5, t] += x5 * y
            acc[6, t] += x6 * y
            acc[7, t] += x7 * y
        ao += step_a
        bo += step_b


@njit(inline="always")
def _zero(acc, rows, width):
    for r in range(rows):
        for t in range(width):
            acc[r, t] = 0


@njit(nogil=True)
def pad_rows(x, xp, ph, pw, r0, r1):
    """``xp[b, h, w, :] = x[b, h - ph, w - pw, :]`` inside, 0 elsewhere, for padded rows ``r0 <= b*Hp + h < r1``."""
    batch, height, width, channels = x.shape
    hp, wp = xp.shape[1], xp.shape[2]
    xf = x.reshape(x.size)
    pf = xp.reshape(xp.size)
    row = np.uint64(wp * channels)
    inner = np.uint64(width * channels)
    left = np.uint64(pw * channels)
    for r in range(r0, r1):
        b = r // hp
        h = r - b * hp - ph
        d = np.uint64(r) * row
        if h < 0 or h >= height:
            for t in range(row):
                pf[d + t] = 0
            continue
        for t in range(left):
            pf[d + t] = 0
        s = np.uint64((b * height + h) * width * channels)
        for t in range(inner):
            pf[d + left + t] = xf[s + t]
        for t in range(left + inner, row):
            pf[d + t] = 0


def _make_forward_rows(rows, width):
    """An inlined kernel for the output rows ``q0 <= q < q1`` of the forward in tiles of ``rows`` pixels x ``width``
    channels (16 x 16, 16 x 8 with :func:`_outer16`, 8 x 32 with :func:`_outer8`).

    ``rows`` and ``width`` are closure constants, so that Numba prunes the micro-kernel a tile shape does not
    use before inlining it (as arguments, both were inlined, typed and lowered: about +0.15 s of compile).

    ``place = (OH, OW, iy, ix, oy, ox, osy, osx)``: output pixel ``(oh, ow)`` (``oh < OH``, ``ow < OW``) reads
    ``xp`` from row ``oh sh + iy`` and column ``ow sw + ix`` on, and is stored at ``out[b, oh osy + oy,
    ow osx + ox]`` (``(OH, OW, 0, 0, 0, 0, 1, 1)`` for the plain forward).
    """

    @njit(inline="always", fastmath={"contract"})
    def forward_rows(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1):
        hp, wp, channels = xp.shape[1], xp.shape[2], xp.shape[3]
        filters = out.shape[3]
        out_h, out_w, iy, ix, oy, ox, osy, osx = place[0], place[1], place[2], place[3], place[4], place[5], place[6], \
            place[7]
        xf = xp.reshape(xp.size)
        wf = w.reshape(w.size)
        kk_total = kw * channels
        w_row = kk_total * filters
        pixel = sw * channels  # from one output pixel's taps to the next one's
        acc = numba.carray(stack_pointer(256, out.dtype), (rows, width))
        for q in range(q0, q1):
            b = q // out_h
            oh = q - b * out_h
            for ow0 in range(0, out_w, rows):
                n = min(rows, out_w - ow0)
                for f0 in range(0, filters, width):
                    _zero(acc, rows, width)
                    for i in range(kh):
                        base = ((b * hp + oh * sh + i + iy) * wp + ow0 * sw + ix) * channels
                        if rows == 16:
                            _outer16(xf, base, base + 8 * pixel, pixel, 1, wf, i * w_row + f0, filters, kk_total, acc,
                                     width)
                        else:
                            _outer8(xf, base, pixel, 1, wf, i * w_row + f0, filters, kk_total, acc, width)
                    for r in range(n):
                        for t in range(width):
                            out[b, oh * osy + oy, (ow0 + r) * osx + ox, f0 + t] = acc[r, t] + bias[f0 + t]

    return forward_rows


_forward_rows16 = _make_forward_rows(16, 16)
_forward_rows8 = _make_forward_rows(16, 8)
_forward_rows32 = _make_forward_rows(8, 32)


@njit(nogil=True, fastmath={"contract"})
def direct_forward_rows16(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1):
    """Convolution (stride ``(sh, sw)``) of the output rows ``q0 <= q < q1`` (``q = b * OH + oh``), a multiple of
    16 filters.

    ``xp``: the padded input ``(B, Hp, Wp, C)``, with zero columns for the taps
    of whole tiles past ``OW`` (they are computed, only valid pixels stored);
    ``w``: ``(kh, kw*C, F)``; ``out``: ``(B, ., ., F)``, written where ``place``
    says (:func:`_make_forward_rows`). Tiles of 16 pixels x 16 channels.
    """
    _forward_rows16(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1)


@njit(nogil=True, fastmath={"contract"})
def direct_forward_rows8(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1):
    """:func:`direct_forward_rows16` for a multiple of 8 filters: tiles of 16 pixels x 8 channels.

    A kernel of its own, so that a model compiles only the tile width it uses.
    """
    _forward_rows8(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1)


@njit(nogil=True, fastmath={"contract"})
def direct_forward_rows32(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1):
    """:func:`direct_forward_rows16` for a multiple of 32 filters: tiles of 8 pixels x 32 channels (5-25 %
    faster than 16 x 16 where both apply, and less waste on narrow images; the same sums in the same order)."""
    _forward_rows32(xp, w, bias, out, kh, kw, sh, sw, place, q0, q1)


def tile_shape(filters):
    """``(pixels, channels)`` of the forward's tiles for a count of output channels (a multiple of 8)."""
    if filters % 32 == 0:
        return 8, 32
    return (16, 16) if filters % 16 == 0 else (16, 8)


def tile_kernel(filters):
    """The forward kernel of :func:`tile_shape`'s tiles."""
    return {32: direct_forward_rows32, 16: direct_forward_rows16, 8: direct_forward_rows8}[tile_shape(filters)[1]]


@njit(inline="always", fastmath={"contract"})
def _taps_tile(xf, gf, hp, wp, channels, out_h, out_w, filters, kk_total, sh, sw, t0, f0, q_lo, q_hi, part):
    """``part[t0 + r, f0 + t] = Σ_{q, ow} tap_{t0 + r}(q, ow) g[q, ow, f0 + t]`` over the output rows
    ``[q_lo, q_hi)``, for 16 taps ``r`` and 16 channels ``t``.

    Tap ``t = i * kw*C + kk`` of output pixel ``(b, oh, ow)`` is ``xp[b, oh sh + i, ow sw + kk // C, kk % C]``;
    16 taps that straddle two kernel rows (``kw*C`` a multiple of 8, not 16) are two runs of 8. The
    accumulator tile is this call's own stack array: one shared by several call sites reaches LLVM
    through a phi and stays in memory.
    """
    acc = numba.carray(stack_pointer(256, gf.dtype), (16, 16))
    _zero(acc, 16, 16)
    i, kk0 = t0 // kk_total, t0 % kk_total
    second = kk0 + 8 if kk0 + 16 <= kk_total else wp * channels  # straddling: taps 8-15 start row i + 1
    for q in range(q_lo, q_hi):
        b = q // out_h
        oh = q - b * out_h
        a0 = ((b * hp + oh * sh + i) * wp) * channels
        _outer16(xf, a0 + kk0, a0 + second, 1, sw * channels, gf, q * out_w * filters + f0, filters, out_w, acc,
                 16)
    for r in range(16):
        for t in range(16):
            part[t0 + r, f0 + t] = acc[r, t]


@njit(nogil=True, fastmath={"contract"})
def direct_backward_kernels_partials(xp, g, kh, kw, sh, sw, row_bounds, partials, p0, p1):
    """``partials[p][t, f] = Σ_{q, ow} tap_t(q, ow) g[q, ow, f]`` over the output rows
    ``row_bounds[p] <= q < row_bounds[p + 1]``, for ``p0 <= p < p1`` (stride ``(sh, sw)``; see :func:`_taps_tile`).

    The ``kh * kw * C`` taps (``kw * C`` a multiple of 8) in tiles of 16; when their count is not a
    multiple of 16 the last tile overlaps the one before it and recomputes the same sums in the same
    order. The sum over the rows of one partial runs in a fixed order; which thread computes a partial
    does not change it (deterministic, see docs/design/kernels.md).
    """
    hp, wp, channels = xp.shape[1], xp.shape[2], xp.shape[3]
    out_h, out_w, filters = g.shape[1], g.shape[2], g.shape[3]
    xf = xp.reshape(xp.size)
    gf = g.reshape(g.size)
    kk_total = kw * channels
    taps = kh * kk_total
    for p in range(p0, p1):
        for t0 in range(0, taps, 16):
            t0 = min(t0, taps - 16)
            for f0 in range(0, filters, 16):
                _taps_tile(xf, gf, hp, wp, channels, out_h, out_w, filters, kk_total, sh, sw, t0, f0,
                           row_bounds[p], row_bounds[p + 1], partials[p])


def padded(x, ph, pw, extra=0, bottom=None):
    """``x`` zero-padded by ``ph`` rows and ``pw`` columns on both sides, plus ``extra`` zero columns on the right
    (and ``bottom`` rows at the bottom instead of ``ph``, when given)."""
    batch, height, width, channels = x.shape
    rows = height + ph + (ph if bottom is None else bottom)
    xp = np.empty((batch, rows, width + 2 * pw + extra, channels), dtype=x.dtype)
    run_rows(pad_rows, batch * xp.shape[1], 2 * xp.size, x, xp, ph, pw)
    return xp


def forward(x, kernels, biases, ph, pw, stride=(1, 1)):
    """Forward (stride ``(sh, sw)``) on C-contiguous arrays of one float dtype (see :func:`direct_forward_rows16`)."""
    batch, height, width, channels = x.shape
    filters, _, kh, kw = kernels.shape
    sh, sw = stride
    out_h, out_w = (height + 2 * ph - kh) // sh + 1, (width + 2 * pw - kw) // sw + 1
    if filters % 8:
        raise ValueError(f"direct.forward: kernels: expected a multiple of 8 filters, got {filters}")
    read_w = (-(-out_w // TILE_ROWS) * TILE_ROWS - 1) * sw + kw  # whole tiles: the last one reads past OW
    xp = padded(x, ph, pw, max(0, read_w - (width + 2 * pw)))
    w = np.ascontiguousarray(kernels.transpose(2, 3, 1, 0), dtype=x.dtype).reshape(kh, kw * channels, filters)
    out = np.empty((batch, out_h, out_w, filters), dtype=x.dtype)
    bias = np.ascontiguousarray(biases, dtype=x.dtype).reshape(filters)
    kernel = tile_kernel(filters)
    place = np.array([out_h, out_w, 0, 0, 0, 0, 1, 1], dtype=np.int64)
    run_rows(kernel, batch * out_h, out.size * kh * kw * channels // 4, xp, w, bias, out, kh, kw, sh, sw, place)
    return out


def backward_input(g, kernels, input_shape, ph, pw, stride=(1, 1)):
    """``dE/dx``, shape ``input_shape``: at stride 1 the forward of ``g`` padded by ``(kh - 1 - ph, kw - 1 - pw)``
    with flipped, channel-swapped kernels; at other strides one such correlation per phase (:func:`phases`)."""
    filters, channels, kh, kw = kernels.shape
    if tuple(stride) != (1, 1):
        return _backward_input_by_phases(g, kernels, input_shape, ph, pw, stride)
    flipped = np.ascontiguousarray(kernels[:, :, ::-1, ::-1].transpose(1, 0, 2, 3), dtype=g.dtype)
    return forward(g, flipped, np.zeros(channels, dtype=g.dtype), kh - 1 - ph, kw - 1 - pw)


def phases(size, kernel, stride, padding, out_size):
    """The phases of a strided ``dE/dx`` along one axis: ``[(h0, count, u0, taps), ...]`` per residue ``r``.

    The input rows ``h = h0 + stride t`` (``t < count``) have ``(h + padding) % stride == r``; row ``h`` receives
    the kernel rows ``r + stride a`` (``a < taps``) from the output rows ``u0 + t - a`` (those in
    ``[0, out_size)``): a stride-1 correlation of ``g`` with the sub-kernel of residue ``r``. Residues whose rows
    receive nothing (no tap, or no row) have ``taps == 0`` or ``count == 0``.
    """
    out = []
    for residue in range(stride):
        h0 = (residue - padding) % stride
        out.append((h0, len(range(h0, size, stride)), (h0 + padding - residue) // stride,
                    len(range(residue, kernel, stride))))
    return out


def _backward_input_by_phases(g, kernels, input_shape, ph, pw, stride):
    """Strided ``dE/dx`` without a zero multiplied and without a scatter: for each phase ``(ry, rx)`` the
    input pixels of those residues are the stride-1 correlation of ``g`` (padded once for every phase) with the
    sub-kernel of those taps, flipped and channel-swapped, written straight into every ``stride``-th pixel
    of ``dx`` by :func:`direct_forward_rows16` / ``8``. Needs a multiple of 8 input channels."""
    batch, height, width, channels = (int(s) for s in input_shape)
    filters, _, kh, kw = kernels.shape
    sh, sw = stride
    out_h, out_w = g.shape[1], g.shape[2]
    rows, cols = phases(height, kh, sh, ph, out_h), phases(width, kw, sw, pw, out_w)
    # one padded g for every phase: room above/left for the taps before row/column 0, below/right for the last
    top = max([taps - 1 - u0 for _, count, u0, taps in rows if count and taps] + [0])
    left = max([taps - 1 - v0 for _, count, v0, taps in cols if count and taps] + [0])
    bottom = max([u0 + count - out_h for _, count, u0, taps in rows if count and taps] + [0])
    right = max([v0 + -(-count // TILE_ROWS) * TILE_ROWS - out_w for _, count, v0, taps in cols if count and taps]
                + [0])
    gp = padded(g, top, left, extra=max(0, right - left), bottom=bottom)
    grad_input = np.empty((batch, height, width, channels), dtype=g.dtype)
    zero = np.zeros(channels, dtype=g.dtype)
    kernel = tile_kernel(channels)
    jobs, work = [], 0  # (first row of the phase among all phases' rows, rows, kernel arguments)
    for ry, (h0, count_h, u0, taps_h) in enumerate(rows):
        for rx, (w0, count_w, v0, taps_w) in enumerate(cols):
            if not count_h or not count_w:
                continue
            if not taps_h or not taps_w:  # no tap reaches these pixels
                grad_input[:, h0::sh, w0::sw] = 0
                continue
            sub = kernels[:, :, ry::sh, rx::sw][:, :, ::-1, ::-1]  # (F, C, taps_h, taps_w), flipped
            w = np.ascontiguousarray(sub.transpose(2, 3, 0, 1), dtype=g.dtype).reshape(taps_h, taps_w * filters,
                                                                                        channels)
            place = np.array([count_h, count_w, u0 - (taps_h - 1) + top, v0 - (taps_w - 1) + left, h0, w0, sh, sw],
                             dtype=np.int64)
            start = jobs[-1][0] + jobs[-1][1] if jobs else 0
            jobs.append((start, batch * count_h, (gp, w, zero, grad_input, taps_h, taps_w, 1, 1, place)))
            work += batch * count_h * count_w * channels * taps_h * taps_w * filters // 4

    def phase_rows(q0, q1):  # the rows [q0, q1) of all the phases' rows, one kernel call per phase met
        for start, count, args in jobs:
            if q0 < start + count and start < q1:
                kernel(*args, max(q0, start) - start, min(q1, start + count) - start)

    if jobs:
        run_rows(phase_rows, jobs[-1][0] + jobs[-1][1], work)
    return grad_input


#: Partial sums of the kernel gradient: a fixed count of fixed row ranges, added in order (deterministic).
REDUCTION_BLOCKS = 16


def backward_kernels(g, x, kernel_shape, ph, pw, stride=(1, 1)):
    """``dE/dK`` (stride ``(sh, sw)``), shape ``(F, C, kh, kw)``, for a multiple of 16 filters and ``kw * C`` a
    multiple of 8 (at least 16 taps in all): :data:`REDUCTION_BLOCKS` partial sums added in order."""
    batch, height, width, channels = x.shape
    filters, _, kh, kw = kernel_shape
    if filters % 16 or (kw * channels) % 8 or kh * kw * channels < 16:
        raise ValueError("direct.backward_kernels: kernel_shape: expected a multiple of 16 filters and kw * C a "
                         f"multiple of 8, got {tuple(kernel_shape)}")
    out_h = g.shape[1]
    xp = padded(x, ph, pw)
    total = batch * out_h
    n_partials = max(1, min(REDUCTION_BLOCKS, total))
    row_bounds = np.array([total * p // n_partials for p in range(n_partials + 1)], dtype=np.int64)
    partials = np.empty((n_partials, kh * kw * channels, filters), dtype=x.dtype)
    run_rows(direct_backward_kernels_partials, n_partials, g.size * kh * kw * channels // 4, xp, g, kh, kw,
             stride[0], stride[1], row_bounds, partials)
    grad = partials[0]
    for p in range(1, n_partials):
        grad += partials[p]
    return np.ascontiguousarray(grad.reshape(kh, kw, channels, filters).transpose(3, 2, 0, 1))
