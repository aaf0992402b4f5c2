"""2-D pooling on the CPU, NHWC (book section 22.3): Numba kernels and the ``*_cpu`` functions.

* Every kernel loops over the channels innermost (the contiguous axis of NHWC).
* Max pooling records the window-local index ``i * pool_w + j`` of the first
  maximum (int32; NaN counts as the largest value, as in ``np.argmax``).
* Backward of non-overlapping windows writes each window's gradient straight
  into its pixels; overlapping windows are a *gather* (each input pixel sums
  the windows that contain it): race-free, and the same algorithm as the GPU's.
* 2x2 windows with stride 2 run unrolled kernels (``*_2x2_kernel``), bitwise
  equal to the general ones.
* Rows are split over helper threads (:func:`kernels.threads.run_rows`) above
  :data:`PARALLEL_MIN_ELEMENTS`; every output element is written by one thread
  in a fixed order, so results do not depend on the number of threads.

float32 and float64 run the Numba kernels; float16 is computed in float32 and
rounded back; other dtypes fall back to :mod:`kernels.pool2d.reference`.
Measurements behind these choices: docs/design/kernels.md.
"""

from __future__ import annotations

import numpy as np

from .. import threads
from ..geometry import pool_geometry
from ..jit import njit
from . import reference

_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _grad_input_buffer(input_shape, pool, stride, out_hw, dtype):
    """Gradient buffer and whether the windows are disjoint (stride >= pool).

    Zeroed unless disjoint windows tile the input exactly (then every pixel is written).
    """
    (ph, pw), (sh, sw), (out_h, out_w) = pool, stride, out_hw
    disjoint = sh >= ph and sw >= pw
    tiled = disjoint and (sh, sw) == (ph, pw) and out_h * sh == input_shape[1] and out_w * sw == input_shape[2]
    allocate = np.empty if tiled or not disjoint else np.zeros
    return allocate(input_shape, dtype=dtype), disjoint


def _compute_dtype(x):
    dtype = np.dtype(x.dtype)
    if dtype in _FAST_DTYPES:
        return dtype, dtype
    if dtype == np.float16:
        return np.dtype(np.float32), dtype
    return None, dtype


def _is_2x2(ph, pw, sh, sw):
    """The common case with unrolled kernels: 2x2 windows, stride 2."""
    return ph == 2 and pw == 2 and sh == 2 and sw == 2


@njit(inline="always")
def _window_range(pos, pool, stride, n_out):
    """Windows ``o`` with ``o*stride <= pos < o*stride + pool``, as ``range(lo, hi)``."""
    lo = 0 if pos < pool else (pos - pool) // stride + 1
    hi = min(n_out, pos // stride + 1)
    return lo, hi


# --------------------------------------------------------------------------
# Numba kernels
# --------------------------------------------------------------------------
@njit(nogil=True)
def max_pool2d_forward_kernel(x, ph, pw, sh, sw, out, argmax, r0, r1):
    """``out`` = window maxima, ``argmax`` = window-local index of the first maximum (NaN wins)."""
    batch, height, width, channels = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    af = argmax.reshape(argmax.size)
    uc = np.uint64(channels)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            for i in range(ph):
                for j in range(pw):
                    s = np.uint64(((b * height + oh * sh + i) * width + ow * sw + j) * channels)
                    if i == 0 and j == 0:
                        for c in range(uc):
                            of[o + c] = xf[s + c]
                            af[o + c] = 0
                    else:
                        k = np.int32(i * pw + j)
                        for c in range(uc):
                            # unconditional stores of a select: vectorizes (a branch did not)
                            v = xf[s + c]
                            best = of[o + c]
                            take = (v > best) | ((v != v) & (best == best))  # no short-circuit: no branch
                            of[o + c] = v if take else best
                            af[o + c] = k if take else af[o + c]


@njit(nogil=True)
def max_pool2d_backward_kernel(grad_output, argmax, ph, pw, sh, sw, grad_input, r0, r1):
    """Gather: ``dx[b, h, w, c] = Σ g[b, oh, ow, c]`` over windows whose argmax is (h, w)."""
    batch, height, width, channels = grad_input.shape
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    gf = grad_output.reshape(grad_output.size)
    af = argmax.reshape(argmax.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    zero = grad_input.dtype.type(0)
    for q in range(r0, r1):
        b = q // height
        ih = q - b * height
        oh_lo, oh_hi = _window_range(ih, ph, sh, out_h)
        for iw in range(width):
            d = np.uint64((q * width + iw) * channels)
            for c in range(uc):
                xf[d + c] = 0
            ow_lo, ow_hi = _window_range(iw, pw, sw, out_w)
            for oh in range(oh_lo, oh_hi):
                for ow in range(ow_lo, ow_hi):
                    k = np.int32((ih - oh * sh) * pw + (iw - ow * sw))
                    o = np.uint64(((b * out_h + oh) * out_w + ow) * channels)
                    for c in range(uc):
                        xf[d + c] += gf[o + c] if af[o + c] == k else zero


@njit(nogil=True)
def max_pool2d_backward_disjoint_kernel(grad_output, argmax, ph, pw, sh, sw, grad_input, r0, r1):
    """Non-overlapping windows (sh >= ph, sw >= pw): ``dx[window] = g if argmax == k else 0``.

    Pixels outside every window are not written: the caller zeroes ``grad_input``
    unless the windows tile it exactly.
    """
    batch, height, width, channels = grad_input.shape
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    gf = grad_output.reshape(grad_output.size)
    af = argmax.reshape(argmax.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    zero = grad_input.dtype.type(0)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            for i in range(ph):
                for j in range(pw):
                    d = np.uint64(((b * height + oh * sh + i) * width + ow * sw + j) * channels)
                    k = np.int32(i * pw + j)
                    for c in range(uc):
                        xf[d + c] = gf[o + c] if af[o + c] == k else zero


@njit(nogil=True)
def max_pool2d_forward_2x2_kernel(x, out, argmax, r0, r1):
    """2x2 windows, stride 2: :func:`max_pool2d_forward_kernel` with the window unrolled (one pass over C)."""
    batch, height, width, channels = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    af = argmax.reshape(argmax.size)
    uc = np.uint64(channels)
    row = np.uint64(width * channels)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            s0 = np.uint64(((b * height + 2 * oh) * width + 2 * ow) * channels)
            s1 = s0 + uc
            s2 = s0 + row
            s3 = s2 + uc
            for c in range(uc):
                best = xf[s0 + c]
                k = np.int32(0)
                v = xf[s1 + c]
                take = (v > best) | ((v != v) & (best == best))
                best = v if take else best
                k = np.int32(1) if take else k
                v = xf[s2 + c]
                take = (v > best) | ((v != v) & (best == best))
                best = v if take else best
                k = np.int32(2) if take else k
                v = xf[s3 + c]
                take = (v > best) | ((v != v) & (best == best))
                best = v if take else best
                k = np.int32(3) if take else k
                of[o + c] = best
                af[o + c] = k


@njit(nogil=True)
def max_pool2d_backward_2x2_kernel(grad_output, argmax, grad_input, r0, r1):
    """2x2 windows, stride 2: :func:`max_pool2d_backward_disjoint_kernel` with the window unrolled."""
    batch, height, width, channels = grad_input.shape
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    gf = grad_output.reshape(grad_output.size)
    af = argmax.reshape(argmax.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    row = np.uint64(width * channels)
    zero = grad_input.dtype.type(0)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            d0 = np.uint64(((b * height + 2 * oh) * width + 2 * ow) * channels)
            for k in range(4):  # one store stream per loop: vectorizes (four in one loop did not)
                d = d0 + (row if k >= 2 else np.uint64(0)) + (uc if k % 2 == 1 else np.uint64(0))
                kk = np.int32(k)
                for c in range(uc):
                    xf[d + c] = gf[o + c] if af[o + c] == kk else zero


@njit(nogil=True)
def avg_pool2d_forward_2x2_kernel(x, scale, out, r0, r1):
    """2x2 windows, stride 2: :func:`avg_pool2d_forward_kernel` with the window unrolled (same summation order)."""
    batch, height, width, channels = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    uc = np.uint64(channels)
    row = np.uint64(width * channels)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            s0 = np.uint64(((b * height + 2 * oh) * width + 2 * ow) * channels)
            s1 = s0 + uc
            s2 = s0 + row
            s3 = s2 + uc
            for c in range(uc):
                of[o + c] = (((xf[s0 + c] + xf[s1 + c]) + xf[s2 + c]) + xf[s3 + c]) * scale


@njit(nogil=True)
def avg_pool2d_backward_2x2_kernel(grad_output, scale, grad_input, r0, r1):
    """2x2 windows, stride 2: :func:`avg_pool2d_backward_disjoint_kernel` with the window unrolled."""
    batch, height, width, channels = grad_input.shape
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    gf = grad_output.reshape(grad_output.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    row = np.uint64(width * channels)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            d0 = np.uint64(((b * height + 2 * oh) * width + 2 * ow) * channels)
            for k in range(4):  # one store stream per loop: vectorizes (four in one loop did not)
                d = d0 + (row if k >= 2 else np.uint64(0)) + (uc if k % 2 == 1 else np.uint64(0))
                for c in range(uc):
                    xf[d + c] = gf[o + c] * scale


@njit(nogil=True)
def avg_pool2d_forward_kernel(x, ph, pw, sh, sw, scale, out, r0, r1):
    """``out`` = window sums times ``scale = 1 / (ph pw)`` (a scalar of the array's dtype)."""
    batch, height, width, channels = x.shape
    out_h, out_w = out.shape[1], out.shape[2]
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    uc = np.uint64(channels)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            for c in range(uc):
                of[o + c] = 0
            for i in range(ph):
                for j in range(pw):
                    s = np.uint64(((b * height + oh * sh + i) * width + ow * sw + j) * channels)
                    for c in range(uc):
                        of[o + c] += xf[s + c]
            for c in range(uc):
                of[o + c] *= scale


@njit(nogil=True)
def avg_pool2d_backward_kernel(grad_output, ph, pw, sh, sw, scale, grad_input, r0, r1):
    """Gather: ``dx[b, h, w, c] = Σ g[b, oh, ow, c] * scale`` over windows containing (h, w), scale = 1/(ph pw)."""
    batch, height, width, channels = grad_input.shape
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    gf = grad_output.reshape(grad_output.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    for q in range(r0, r1):
        b = q // height
        ih = q - b * height
        oh_lo, oh_hi = _window_range(ih, ph, sh, out_h)
        for iw in range(width):
            d = np.uint64((q * width + iw) * channels)
            for c in range(uc):
                xf[d + c] = 0
            ow_lo, ow_hi = _window_range(iw, pw, sw, out_w)
            for oh in range(oh_lo, oh_hi):
                for ow in range(ow_lo, ow_hi):
                    o = np.uint64(((b * out_h + oh) * out_w + ow) * channels)
                    for c in range(uc):
                        xf[d + c] += gf[o + c] * scale


@njit(nogil=True)
def avg_pool2d_backward_disjoint_kernel(grad_output, ph, pw, sh, sw, scale, grad_input, r0, r1):
    """Non-overlapping windows (sh >= ph, sw >= pw): ``dx[window] = g * scale``.

    Pixels outside every window are not written: the caller zeroes ``grad_input``
    unless the windows tile it exactly.
    """
    batch, height, width, channels = grad_input.shape
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    gf = grad_output.reshape(grad_output.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    for q in range(r0, r1):
        b = q // out_h
        oh = q - b * out_h
        for ow in range(out_w):
            o = np.uint64((q * out_w + ow) * channels)
            for i in range(ph):
                for j in range(pw):
                    d = np.uint64(((b * height + oh * sh + i) * width + ow * sw + j) * channels)
                    for c in range(uc):
                        xf[d + c] = gf[o + c] * scale


@njit(nogil=True)
def global_avg_pool2d_forward_kernel(x, out, r0, r1):
    """``out[b, c] = mean_{h, w} x[b, h, w, c]`` (float32 partial sums per row, float64 total)."""
    batch, height, width, channels = x.shape
    xf = x.reshape(x.size)
    of = out.reshape(out.size)
    uc = np.uint64(channels)
    inv = 1.0 / (height * width)
    for b in range(r0, r1):
        total = np.zeros(channels, np.float64)
        partial = np.zeros(channels, x.dtype)
        for h in range(height):
            for c in range(uc):
                partial[c] = 0
            for w in range(width):
                s = np.uint64(((b * height + h) * width + w) * channels)
                for c in range(uc):
                    partial[c] += xf[s + c]
            for c in range(uc):
                total[c] += partial[c]
        o = np.uint64(b * channels)
        for c in range(uc):
            of[o + c] = total[c] * inv


@njit(nogil=True)
def global_avg_pool2d_backward_kernel(grad_output, scale, grad_input, r0, r1):
    """``dx[b, h, w, c] = g[b, c] * scale``, ``scale = 1 / (H W)`` (a scalar of the array's dtype)."""
    batch, height, width, channels = grad_input.shape
    gf = grad_output.reshape(grad_output.size)
    xf = grad_input.reshape(grad_input.size)
    uc = np.uint64(channels)
    for q in range(r0, r1):
        b = q // height
        o = np.uint64(b * channels)
        for w in range(width):
            d = np.uint64((q * width + w) * channels)
            for c in range(uc):
                xf[d + c] = gf[o + c] * scale


# --------------------------------------------------------------------------
# rows in parallel (kernels.threads)
# --------------------------------------------------------------------------
#: Below this many elements (input plus output) a pooling call runs on the calling thread alone.
PARALLEL_MIN_ELEMENTS = 1 << 21


def run_rows(kernel, n_rows, n_elements, *args):
    """:func:`kernels.threads.run_rows` with pooling's threshold :data:`PARALLEL_MIN_ELEMENTS`."""
    threads.run_rows(kernel, n_rows, n_elements, *args, min_elements=PARALLEL_MIN_ELEMENTS)


# --------------------------------------------------------------------------
# CPU implementations
# --------------------------------------------------------------------------
def max_pool2d_forward_cpu(x, pool_size=(2, 2), stride=None):
    """CPU forward; see :func:`max_pool2d_forward`."""
    compute, result = _compute_dtype(x)
    if compute is None:
        return reference.max_pool2d_forward(x, pool_size, stride)
    x = np.ascontiguousarray(x, dtype=compute)
    batch, height, width, channels = x.shape
    (ph, pw), (sh, sw), (out_h, out_w) = pool_geometry((height, width), pool_size, stride)
    out = np.empty((batch, out_h, out_w, channels), dtype=compute)
    argmax = np.empty((batch, out_h, out_w, channels), dtype=np.int32)
    if _is_2x2(ph, pw, sh, sw):
        run_rows(max_pool2d_forward_2x2_kernel, batch * out_h, x.size + 2 * out.size, x, out, argmax)
        return out.astype(result, copy=False), argmax
    run_rows(max_pool2d_forward_kernel, batch * out_h, x.size + 2 * out.size, x, ph, pw, sh, sw, out, argmax)
    return out.astype(result, copy=False), argmax


def max_pool2d_backward_cpu(grad_output, argmax, input_shape, pool_size=(2, 2), stride=None):
    """CPU backward; see :func:`max_pool2d_backward`."""
    compute, result = _compute_dtype(grad_output)
    if compute is None:
        return reference.max_pool2d_backward(grad_output, argmax, input_shape, pool_size, stride)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    argmax = np.ascontiguousarray(argmax, dtype=np.int32)
    batch, height, width, channels = (int(s) for s in input_shape)
    (ph, pw), (sh, sw), out_hw = pool_geometry((height, width), pool_size, stride)
    grad_input, disjoint = _grad_input_buffer((batch, height, width, channels), (ph, pw), (sh, sw), out_hw, compute)
    if _is_2x2(ph, pw, sh, sw):
        run_rows(max_pool2d_backward_2x2_kernel, batch * out_hw[0], grad_input.size + 2 * g.size, g, argmax,
                 grad_input)
        return grad_input.astype(result, copy=False)
    kernel = max_pool2d_backward_disjoint_kernel if disjoint else max_pool2d_backward_kernel
    rows = batch * (out_hw[0] if disjoint else height)
    run_rows(kernel, rows, grad_input.size + 2 * g.size, g, argmax, ph, pw, sh, sw, grad_input)
    return grad_input.astype(result, copy=False)


def avg_pool2d_forward_cpu(x, pool_size=(2, 2), stride=None):
    """CPU forward; see :func:`avg_pool2d_forward`."""
    compute, result = _compute_dtype(x)
    if compute is None:
        return reference.avg_pool2d_forward(x, pool_size, stride)
    x = np.ascontiguousarray(x, dtype=compute)
    batch, height, width, channels = x.shape
    (ph, pw), (sh, sw), (out_h, out_w) = pool_geometry((height, width), pool_size, stride)
    out = np.empty((batch, out_h, out_w, channels), dtype=compute)
    if _is_2x2(ph, pw, sh, sw):
        run_rows(avg_pool2d_forward_2x2_kernel, batch * out_h, x.size + out.size, x, compute.type(0.25), out)
        return out.astype(result, copy=False)
    run_rows(avg_pool2d_forward_kernel, batch * out_h, x.size + out.size, x, ph, pw, sh, sw,
             compute.type(1.0 / (ph * pw)), out)
    return out.astype(result, copy=False)


def avg_pool2d_backward_cpu(grad_output, input_shape, pool_size=(2, 2), stride=None):
    """CPU backward; see :func:`avg_pool2d_backward`."""
    compute, result = _compute_dtype(grad_output)
    if compute is None:
        return reference.avg_pool2d_backward(grad_output, input_shape, pool_size, stride)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    batch, height, width, channels = (int(s) for s in input_shape)
    (ph, pw), (sh, sw), out_hw = pool_geometry((height, width), pool_size, stride)
    grad_input, disjoint = _grad_input_buffer((batch, height, width, channels), (ph, pw), (sh, sw), out_hw, compute)
    if _is_2x2(ph, pw, sh, sw):
        run_rows(avg_pool2d_backward_2x2_kernel, batch * out_hw[0], grad_input.size + g.size, g, compute.type(0.25),
                 grad_input)
        return grad_input.astype(result, copy=False)
    kernel = avg_pool2d_backward_disjoint_kernel if disjoint else avg_pool2d_backward_kernel
    rows = batch * (out_hw[0] if disjoint else height)
    run_rows(kernel, rows, grad_input.size + g.size, g, ph, pw, sh, sw, compute.type(1.0 / (ph * pw)), grad_input)
    return grad_input.astype(result, copy=False)


def global_avg_pool2d_forward_cpu(x):
    """CPU forward; see :func:`global_avg_pool2d_forward`."""
    compute, result = _compute_dtype(x)
    if compute is None:
        return reference.global_avg_pool2d_forward(x)
    x = np.ascontiguousarray(x, dtype=compute)
    batch, _, _, channels = x.shape
    out = np.empty((batch, 1, 1, channels), dtype=compute)
    run_rows(global_avg_pool2d_forward_kernel, batch, x.size, x, out)
    return out.astype(result, copy=False)


def global_avg_pool2d_backward_cpu(grad_output, input_shape):
    """CPU backward; see :func:`global_avg_pool2d_backward`."""
    compute, result = _compute_dtype(grad_output)
    if compute is None:
        return reference.global_avg_pool2d_backward(grad_output, input_shape)
    g = np.ascontiguousarray(grad_output, dtype=compute)
    grad_input = np.empty(tuple(int(s) for s in input_shape), dtype=compute)
    scale = compute.type(1.0 / (grad_input.shape[1] * grad_input.shape[2]))
    run_rows(global_avg_pool2d_backward_kernel, grad_input.shape[0] * grad_input.shape[1], grad_input.size, g, scale,
             grad_input)
    return grad_input.astype(result, copy=False)
