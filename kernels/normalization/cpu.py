"""Batch and layer normalization on the CPU (book section 25.3): fused Numba kernels.

Batch normalization sees ``x`` as ``(N, C)`` (the feature axis last: ``B`` or
``B H W`` rows); its statistics are two passes over ``x`` (Σ x, then Σ (x - μ)²
with the correction term Σ (x - μ) of the corrected two-pass algorithm),
accumulated in float64 per channel, as PyTorch's CPU kernels do, and a third
pass writes ``y``; the backward is one pass for Σ g and Σ g (x - μ), one for
``dE/dx``. The rows are cut into a fixed number of fixed ranges (a function of
``N`` alone) whose float64 partial sums are added in range order, so the
result is the same on any number of threads (:func:`kernels.threads.run_rows`).
Layer normalization sees ``x`` as ``(N, D)``: each row's statistics are float64
sums that LLVM vectorises (``reassoc``: an order fixed by the compiled code,
one thread per row), and the parameter gradients are summed over fixed row
ranges as above. Nothing is
cached between forward and backward but ``x`` and the statistics (``x̂`` is
recomputed). float32 and float64 only; the dispatcher sends the rest to
:mod:`kernels.normalization.reference`.
"""

from __future__ import annotations

import numpy as np

from ..jit import njit, parallel_threads
from ..threads import run_rows

#: Partial sums over the rows: at most this many fixed row ranges, added in order (deterministic).
REDUCTION_BLOCKS = 16
#: Rows of one range at least (small inputs get fewer ranges).
MIN_BLOCK_ROWS = 64
#: Below this many elements a call stays on the calling thread (measured on 2 cores: at 2^18-2^19 elements
#: the split took 2.5x the serial time, at 2^21 the same, at 2^22 0.65x).
PARALLEL_MIN_ELEMENTS = 1 << 21

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Batch normalization's rows hold at least this many values (:func:`wide_rows`).
MIN_WIDTH = 256


# ---------------------------------------------------------------------------------------------- row ranges
@njit
def row_bounds(n_rows):
    """The fixed row ranges of the partial sums: ``bounds[p] <= r < bounds[p + 1]`` (a function of ``n_rows``)."""
    n_partials = max(1, min(REDUCTION_BLOCKS, n_rows // MIN_BLOCK_ROWS))
    bounds = np.empty(n_partials + 1, np.int64)
    for p in range(n_partials + 1):
        bounds[p] = n_rows * p // n_partials
    return bounds


@njit
def fold_partials(partials, k, channels):
    """``(2, C)`` float64: ``Σ_p partials[p]`` in the order of ``p``, then the ``k`` column groups of the wide
    rows (:func:`wide_rows`) in order."""
    width = partials.shape[2]
    wide = np.zeros((2, width), np.float64)
    for p in range(partials.shape[0]):
        for i in range(2):
            for j in range(width):
                wide[i, j] += partials[p, i, j]
    total = np.zeros((2, channels), np.float64)
    for group in range(k):
        for i in range(2):
            for c in range(channels):
                total[i, c] += wide[i, group * channels + c]
    return total


@njit
def tiled(vector, k, dtype):
    """``vector`` repeated ``k`` times, as ``dtype`` (per-channel values for the columns of the wide rows)."""
    channels = vector.size
    out = np.empty(k * channels, dtype)
    for group in range(k):
        for c in range(channels):
            out[group * channels + c] = vector[c]
    return out


# ---------------------------------------------------------------------------------------------- batch norm
def wide_rows(n_rows, channels):
    """``k``: ``(N, C)`` is handled as ``(N / k, k C)``, so that a row has at least :data:`MIN_WIDTH` values.

    The kernels' inner loop runs over a row, and each row costs a few tens of cycles around it (LLVM's
    checks for a vector loop of unknown length): short rows (C = 16, 32) spend more there than in the
    loop. ``k`` divides ``N`` (1 when no divisor fits).
    """
    k_min = -(-MIN_WIDTH // channels)
    for k in (*range(k_min, 2 * k_min + 1), *range(k_min - 1, 0, -1)):
        if n_rows % k == 0:
            return k
    return 1


@njit(nogil=True)
def column_sums(x2d, shift, bounds, partials, p0, p1):
    """``partials[p, 0, c] = Σ (x - shift[c])`` and ``partials[p, 1, c] = Σ (x - shift[c])²`` over the rows
    ``bounds[p] <= r < bounds[p + 1]``, in float64, for ``p0 <= p < p1``.

    Four rows per step, summed in pairs, then into the accumulators: the order is fixed by the range alone.
    """
    channels = x2d.shape[1]
    uc = np.uint64(channels)
    xf = x2d.reshape(x2d.size)
    s1 = np.empty(channels, np.float64)
    s2 = np.empty(channels, np.float64)
    for p in range(p0, p1):
        for c in range(uc):
            s1[c] = 0.0
            s2[c] = 0.0
        r0, r1 = bounds[p], bounds[p + 1]
        r4 = r1 - (r1 - r0) % 4
        for r in range(r0, r4, 4):
            b0 = np.uint64(r) * uc
            b1 = b0 + uc
            b2 = b1 + uc
            b3 = b2 + uc
            for c in range(uc):
                d0 = np.float64(xf[b0 + c]) - shift[c]
                d1 = np.float64(xf[b1 + c]) - shift[c]
                d2 = np.float64(xf[b2 + c]) - shift[c]
                d3 = np.float64(xf[b3 + c]) - shift[c]
                s1[c] += (d0 + d1) + (d2 + d3)
                s2[c] += (d0 * d0 + d1 * d1) + (d2 * d2 + d3 * d3)
        for r in range(r4, r1):
            base = np.uint64(r) * uc
            for c in range(uc):
                d = np.float64(xf[base + c]) - shift[c]
                s1[c] += d
                s2[c] += d * d
        for c in range(uc):
            partials[p, 0, c] = s1[c]
            partials[p, 1, c] = s2[c]


@njit(nogil=True)
def gradient_sums(g2d, x2d, mean, bounds, partials, p0, p1):
    """``partials[p, 0, c] = Σ g`` and ``partials[p, 1, c] = Σ g (x - mean[c])`` over the rows of range ``p``
    (float64; ``mean`` float64), for ``p0 <= p < p1``; four rows per step as in :func:`column_sums`."""
    channels = x2d.shape[1]
    uc = np.uint64(channels)
    xf = x2d.reshape(x2d.size)
    gf = g2d.reshape(g2d.size)
    s1 = np.empty(channels, np.float64)
    s2 = np.empty(channels, np.float64)
    for p in range(p0, p1):
        for c in range(uc):
            s1[c] = 0.0
            s2[c] = 0.0
        r0, r1 = bounds[p], bounds[p + 1]
        r4 = r1 - (r1 - r0) % 4
        for r in range(r0, r4, 4):
            b0 = np.uint64(r) * uc
            b1 = b0 + uc
            b2 = b1 + uc
            b3 = b2 + uc
            for c in range(uc):
                g0 = np.float64(gf[b0 + c])
                g1 = np.float64(gf[b1 + c])
                g2 = np.float64(gf[b2 + c])
                g3 = np.float64(gf[b3 + c])
                m = mean[c]
                s1[c] += (g0 + g1) + (g2 + g3)
                s2[c] += ((g0 * (np.float64(xf[b0 + c]) - m) + g1 * (np.float64(xf[b1 + c]) - m))
                          + (g2 * (np.float64(xf[b2 + c]) - m) + g3 * (np.float64(xf[b3 + c]) - m)))
        for r in range(r4, r1):
            base = np.uint64(r) * uc
            for c in range(uc):
                gv = np.float64(gf[base + c])
                s1[c] += gv
                s2[c] += gv * (np.float64(xf[base + c]) - mean[c])
        for c in range(uc):
            partials[p, 0, c] = s1[c]
            partials[p, 1, c] = s2[c]


@njit(nogil=True, fastmath={"contract"})
def normalize_rows(x2d, mean, inv_std, gamma, beta, y2d, r0, r1):
    """``y = γ ((x - μ) inv_std) + β`` per column for the rows ``r0 <= r < r1`` (the input's dtype)."""
    uc = np.uint64(x2d.shape[1])
    xf = x2d.reshape(x2d.size)
    yf = y2d.reshape(y2d.size)
    for r in range(r0, r1):
        base = np.uint64(r) * uc
        for c in range(uc):
            yf[base + c] = gamma[c] * ((xf[base + c] - mean[c]) * inv_std[c]) + beta[c]


@njit(nogil=True, fastmath={"contract"})
def backward_rows(g2d, x2d, mean, k_g, k_x, k_0, dx2d, r0, r1):
    """``dE/dx = k_g g - k_x (x - μ) - k_0`` per column for the rows ``r0 <= r < r1`` (the input's dtype)."""
    uc = np.uint64(x2d.shape[1])
    xf = x2d.reshape(x2d.size)
    gf = g2d.reshape(g2d.size)
    df = dx2d.reshape(dx2d.size)
    for r in range(r0, r1):
        base = np.uint64(r) * uc
        for c in range(uc):
            df[base + c] = k_g[c] * gf[base + c] - k_x[c] * (xf[base + c] - mean[c]) - k_0[c]


@njit
def forward_statistics(first, second, n, epsilon, stats):
    """``stats[0] = μ``, ``stats[1] = σ²``, ``stats[2] = 1 / sqrt(σ² + ε)`` (the dtype of ``stats``) from the
    sums of :func:`column_sums` about 0 (``first``) and about μ (``second``), in float64::

        μ = Σ x / N,   σ² = (Σ (x - μ)² - (Σ (x - μ))² / N) / N   (the corrected two-pass variance)
    """
    for c in range(stats.shape[1]):
        var = max((second[1, c] - second[0, c] * second[0, c] / n) / n, 0.0)
        stats[0, c] = first[0, c] / n
        stats[1, c] = var
        stats[2, c] = 1.0 / np.sqrt(var + epsilon)


@njit
def backward_coefficients(sums, gamma, inv_std, n, coefficients):
    """``coefficients = (k_g, k_x, k_0, dE/dγ, dE/dβ)`` (the dtype of ``coefficients``) from the sums of
    :func:`gradient_sums`, in float64: ``k_g = γ inv_std``, ``k_x = k_g inv_std² Σ g (x - μ) / N``,
    ``k_0 = k_g Σ g / N``, ``dE/dγ = inv_std Σ g (x - μ)``, ``dE/dβ = Σ g``."""
    for c in range(coefficients.shape[1]):
        s = np.float64(inv_std[c])
        k_g = np.float64(gamma[c]) * s
        coefficients[0, c] = k_g
        coefficients[1, c] = k_g * s * s * sums[1, c] / n
        coefficients[2, c] = k_g * sums[0, c] / n
        coefficients[3, c] = sums[1, c] * s
        coefficients[4, c] = sums[0, c]


@njit(nogil=True)
def batch_norm_forward_serial(x2d, gamma, beta, epsilon, k, y2d, stats):
    """:func:`batch_norm_forward` on the calling thread, in one call (the same steps, the same bits)."""
    n, channels = x2d.shape
    xw = x2d.reshape(n // k, k * channels)
    bounds = row_bounds(n // k)
    partials = np.empty((bounds.size - 1, 2, k * channels), np.float64)
    column_sums(xw, np.zeros(k * channels, np.float64), bounds, partials, 0, bounds.size - 1)
    first = fold_partials(partials, k, channels)
    column_sums(xw, tiled(first[0] / n, k, np.float64), bounds, partials, 0, bounds.size - 1)
    forward_statistics(first, fold_partials(partials, k, channels), n, epsilon, stats)
    normalize_rows(xw, tiled(stats[0], k, x2d.dtype), tiled(stats[2], k, x2d.dtype), tiled(gamma, k, x2d.dtype),
                   tiled(beta, k, x2d.dtype), y2d.reshape(n // k, k * channels), 0, n // k)


@njit(nogil=True)
def batch_norm_backward_serial(g2d, x2d, gamma, mean, inv_std, k, training, dx2d, coefficients):
    """:func:`batch_norm_backward` (``training``) or the gradient sums of :func:`batch_norm_backward_eval`
    on the calling thread, in one call."""
    n, channels = x2d.shape
    xw = x2d.reshape(n // k, k * channels)
    gw = g2d.reshape(n // k, k * channels)
    bounds = row_bounds(n // k)
    partials = np.empty((bounds.size - 1, 2, k * channels), np.float64)
    gradient_sums(gw, xw, tiled(mean, k, np.float64), bounds, partials, 0, bounds.size - 1)
    backward_coefficients(fold_partials(partials, k, channels), gamma, inv_std, n, coefficients)
    if training:
        backward_rows(gw, xw, tiled(mean, k, x2d.dtype), tiled(coefficients[0], k, x2d.dtype),
                      tiled(coefficients[1], k, x2d.dtype), tiled(coefficients[2], k, x2d.dtype),
                      dx2d.reshape(n // k, k * channels), 0, n // k)


def _threaded(n_elements):
    """Whether a call of ``n_elements`` is split over the helper threads (else one serial kernel call)."""
    return n_elements >= PARALLEL_MIN_ELEMENTS and parallel_threads() > 1


def batch_norm_forward(x2d, gamma, beta, epsilon):
    """Training forward of ``x2d`` ``(N, C)``, C-contiguous, float32/float64: ``(y, mean, var, inv_std)``.

    Statistics in float64 (:func:`forward_statistics`), rounded to the dtype; ``gamma``, ``beta`` of the dtype.
    """
    n, channels = x2d.shape
    dtype = x2d.dtype
    k = wide_rows(n, channels)
    y2d = np.empty_like(x2d)
    stats = np.empty((3, channels), dtype)
    if not _threaded(x2d.size):
        batch_norm_forward_serial(x2d, gamma, beta, float(epsilon), k, y2d, stats)
        return y2d, stats[0], stats[1], stats[2]
    xw = x2d.reshape(n // k, k * channels)
    bounds = row_bounds(n // k)
    partials = np.empty((bounds.size - 1, 2, k * channels), np.float64)
    run_rows(column_sums, bounds.size - 1, 0, xw, np.zeros(k * channels), bounds, partials, min_elements=0)
    first = fold_partials(partials, k, channels)
    run_rows(column_sums, bounds.size - 1, 0, xw, tiled(first[0] / n, k, np.float64), bounds, partials,
             min_elements=0)
    forward_statistics(first, fold_partials(partials, k, channels), n, float(epsilon), stats)
    run_rows(normalize_rows, n // k, 0, xw, tiled(stats[0], k, dtype), tiled(stats[2], k, dtype),
             tiled(gamma, k, dtype), tiled(beta, k, dtype), y2d.reshape(n // k, k * channels), min_elements=0)
    return y2d, stats[0], stats[1], stats[2]


def batch_norm_forward_eval(x2d, gamma, beta, running_mean, running_var, epsilon):
    """Evaluation forward: ``(y, inv_std)``, ``inv_std = 1 / sqrt(running_var + ε)`` in the dtype of ``x2d``."""
    n, channels = x2d.shape
    dtype = x2d.dtype
    inv_std = (1.0 / np.sqrt(running_var + dtype.type(epsilon))).astype(dtype, copy=False)
    k = wide_rows(n, channels)
    y2d = np.empty_like(x2d)
    run_rows(normalize_rows, n // k, x2d.size, x2d.reshape(n // k, k * channels), tiled(running_mean, k, dtype),
             tiled(inv_std, k, dtype), tiled(gamma, k, dtype), tiled(beta, k, dtype),
             y2d.reshape(n // k, k * channels), min_elements=PARALLEL_MIN_ELEMENTS)
    return y2d, inv_std


def _backward(g2d, x2d, gamma, mean, inv_std, training):
    n, channels = x2d.shape
    dtype = x2d.dtype
    k = wide_rows(n, channels)
    dx2d = np.empty_like(x2d) if training else np.empty((0, channels), dtype)
    coefficients = np.empty((5, channels), dtype)
    if not _threaded(2 * x2d.size):
        batch_norm_backward_serial(g2d, x2d, gamma, mean, inv_std, k, training, dx2d, coefficients)
        return dx2d, coefficients
    xw = x2d.reshape(n // k, k * channels)
    gw = g2d.reshape(n // k, k * channels)
    bounds = row_bounds(n // k)
    partials = np.empty((bounds.size - 1, 2, k * channels), np.float64)
    run_rows(gradient_sums, bounds.size - 1, 0, gw, xw, tiled(mean, k, np.float64), bounds, partials,
             min_elements=0)
    backward_coefficients(fold_partials(partials, k, channels), gamma, inv_std, n, coefficients)
    if training:
        run_rows(backward_rows, n // k, 0, gw, xw, tiled(mean, k, dtype), tiled(coefficients[0], k, dtype),
                 tiled(coefficients[1], k, dtype), tiled(coefficients[2], k, dtype),
                 dx2d.reshape(n // k, k * channels), min_elements=0)
    return dx2d, coefficients


def batch_norm_backward(g2d, x2d, gamma, mean, inv_std):
    """Training backward: ``(grad_input, grad_gamma, grad_beta)``, with ``g' = g γ``::

        dE/dx = inv_std (g' - mean(g') - x̂ mean(g' x̂)) = k_g g - k_x (x - μ) - k_0

    (:func:`backward_coefficients`; the sums in float64, the last pass in the dtype).
    """
    dx2d, coefficients = _backward(g2d, x2d, gamma, mean, inv_std, True)
    return dx2d, coefficients[3], coefficients[4]


def batch_norm_backward_eval(g2d, x2d, gamma, mean, inv_std):
    """Evaluation backward: ``(g γ inv_std, grad_gamma, grad_beta)``."""
    _, coefficients = _backward(g2d, x2d, gamma, mean, inv_std, False)
    return g2d * (gamma * inv_std), coefficients[3], coefficients[4]


# ---------------------------------------------------------------------------------------------- layer norm
@njit(nogil=True, fastmath={"reassoc"})
def row_sum(xf, base, n):
    """``Σ_{j < n} xf[base + j]`` in float64 (vectorised by LLVM: ``reassoc``, an order fixed at compile time)."""
    total = 0.0
    b = np.uint64(base)
    for j in range(np.uint64(n)):
        total += np.float64(xf[b + j])
    return total


@njit(nogil=True, fastmath={"reassoc"})
def row_centered_sums(xf, base, n, mean):
    """``(Σ d, Σ d²)``, ``d = xf[base + j] - mean`` in float64, for ``j < n`` (as :func:`row_sum`)."""
    s1 = 0.0
    s2 = 0.0
    b = np.uint64(base)
    for j in range(np.uint64(n)):
        d = np.float64(xf[b + j]) - mean
        s1 += d
        s2 += d * d
    return s1, s2


@njit(nogil=True, fastmath={"reassoc"})
def row_gradient_sums(gf, xf, gamma, base, n, mean, inv_std):
    """``(Σ g', Σ g' x̂)`` in float64 for one row, ``g' = g γ`` and ``x̂ = (x - μ) inv_std`` in the dtype."""
    s1 = 0.0
    s2 = 0.0
    b = np.uint64(base)
    for j in range(np.uint64(n)):
        gx = gf[b + j] * gamma[j]
        xh = (xf[b + j] - mean) * inv_std
        s1 += np.float64(gx)
        s2 += np.float64(gx) * np.float64(xh)
    return s1, s2


@njit(nogil=True, fastmath={"contract"})
def layer_norm_rows(x2d, gamma, beta, epsilon, y2d, mean_out, inv_std_out, r0, r1):
    """Rows ``r0 <= r < r1``: ``μ``, ``σ²`` (the corrected two-pass variance, float64), then
    ``y = γ ((x - μ) inv_std) + β``; ``mean_out[r]``, ``inv_std_out[r]`` in the input's dtype."""
    d_total = x2d.shape[1]
    ud = np.uint64(d_total)
    xf = x2d.reshape(x2d.size)
    yf = y2d.reshape(y2d.size)
    for r in range(r0, r1):
        base = np.uint64(r) * ud
        mean64 = row_sum(xf, base, d_total) / d_total
        s1, s2 = row_centered_sums(xf, base, d_total, mean64)
        var64 = max((s2 - s1 * s1 / d_total) / d_total, 0.0)
        mean = x2d.dtype.type(mean64)
        inv_std = x2d.dtype.type(1.0 / np.sqrt(var64 + epsilon))
        mean_out[r] = mean
        inv_std_out[r] = inv_std
        for j in range(ud):
            yf[base + j] = gamma[j] * ((xf[base + j] - mean) * inv_std) + beta[j]


@njit(nogil=True)  # no "contract": g γ - mean(g γ) must not become an FMA (a one-feature row gives exactly 0)
def layer_norm_backward_partials(g2d, x2d, gamma, mean, inv_std, bounds, partials, dx2d, p0, p1):
    """Rows of the ranges ``p0 <= p < p1``: ``dE/dx`` (the module's formula, ``g' = g γ``, row means in
    float64) and ``partials[p, 0, j] = Σ g x̂``, ``partials[p, 1, j] = Σ g`` over the range's rows (float64)."""
    d_total = x2d.shape[1]
    ud = np.uint64(d_total)
    xf = x2d.reshape(x2d.size)
    gf = g2d.reshape(g2d.size)
    df = dx2d.reshape(dx2d.size)
    sg = np.empty(d_total, np.float64)
    sgx = np.empty(d_total, np.float64)
    for p in range(p0, p1):
        for j in range(ud):
            sg[j] = 0.0
            sgx[j] = 0.0
        for r in range(bounds[p], bounds[p + 1]):
            base = np.uint64(r) * ud
            m = mean[r]
            s = inv_std[r]
            t1, t2 = row_gradient_sums(gf, xf, gamma, base, d_total, m, s)
            mean_g = x2d.dtype.type(t1 / d_total)
            mean_gx = x2d.dtype.type(t2 / d_total)
            for j in range(ud):
                gv = gf[base + j]
                xh = (xf[base + j] - m) * s
                df[base + j] = s * (gv * gamma[j] - mean_g - xh * mean_gx)
                sg[j] += np.float64(gv)
                sgx[j] += np.float64(gv) * np.float64(xh)
        for j in range(ud):
            partials[p, 0, j] = sgx[j]
            partials[p, 1, j] = sg[j]


def layer_norm_forward(x2d, gamma, beta, epsilon):
    """Forward of ``x2d`` ``(N, D)``, C-contiguous: ``(y, mean, inv_std)`` (statistics of shape ``(N,)``).

    ``gamma``/``beta`` of shape ``(D,)`` or None (ones / zeros: the same bits as no scale / no shift).
    """
    n, d_total = x2d.shape
    dtype = x2d.dtype
    gamma = np.ones(d_total, dtype) if gamma is None else gamma
    beta = np.zeros(d_total, dtype) if beta is None else beta
    y2d = np.empty_like(x2d)
    mean = np.empty(n, dtype)
    inv_std = np.empty(n, dtype)
    run_rows(layer_norm_rows, n, 3 * x2d.size, x2d, gamma, beta, float(epsilon), y2d, mean, inv_std,
             min_elements=PARALLEL_MIN_ELEMENTS)
    return y2d, mean, inv_std


def layer_norm_backward(g2d, x2d, gamma, mean, inv_std):
    """Backward of :func:`layer_norm_forward`: ``(grad_input, grad_gamma, grad_beta)``."""
    n, d_total = x2d.shape
    dtype = x2d.dtype
    gamma = np.ones(d_total, dtype) if gamma is None else gamma
    bounds = row_bounds(n)
    partials = np.empty((bounds.size - 1, 2, d_total), np.float64)
    dx2d = np.empty_like(x2d)
    run_rows(layer_norm_backward_partials, bounds.size - 1, 3 * x2d.size, g2d, x2d, gamma, mean, inv_std, bounds,
             partials, dx2d, min_elements=PARALLEL_MIN_ELEMENTS)
    sums = fold_partials(partials, 1, d_total)
    return dx2d, sums[0].astype(dtype), sums[1].astype(dtype)
