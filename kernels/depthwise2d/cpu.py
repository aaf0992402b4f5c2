"""Depthwise convolution on the CPU, NHWC (Xception/MobileNet, book section 22.9.6): Numba kernels.

One output row ``(b, oh)`` at a time: the row starts at the bias and, for
each tap ``(i, j)``, the input row ``oh*sh + i*dh`` is multiplied into it
channel by channel (the contiguous axis of NHWC, so LLVM vectorises the
innermost loop and the row stays in the L1 cache). The input gradient is a
*gather* per input row (each thread owns whole rows of ``dx``: no races);
the kernel gradient is summed in :data:`REDUCTION_BLOCKS` fixed ranges of
output rows whose partial sums are added in order, so every result is the
same on any number of threads (:func:`kernels.threads.run_rows`). Kernels are
re-laid as ``(kh, kw, C M)`` so the taps of one ``(i, j)`` are contiguous.
Other dtypes than float32/float64 fall back to :mod:`kernels.depthwise2d.reference`.
"""

from __future__ import annotations

import numpy as np

from .. import threads
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
# helpers
# --------------------------------------------------------------------------
def _tap_major(kernels, dtype):
    """``(C M, 1, kh, kw)`` -> ``(kh, kw, C M)``, contiguous."""
    f, _, kh, kw = kernels.shape
    return np.ascontiguousarray(kernels.reshape(f, kh, kw).transpose(1, 2, 0), dtype=dtype)


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
    work = g.size * kernels.shape[2] * kernels.shape[3]
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
    threads.run_rows(backward_kernels_partials, n_partials, g.size * kh * kw, x, g, filters // x.shape[3], sh, sw,
                     ph, pw, dh, dw, row_bounds, partials, min_elements=PARALLEL_MIN_ELEMENTS)
    grad = partials[0]
    for p in range(1, n_partials):
        grad += partials[p]
    return np.ascontiguousarray(grad.transpose(2, 0, 1).reshape(filters, 1, kh, kw))
