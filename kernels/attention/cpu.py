"""Numba CPU kernels of the attention softmax: scale, mask, causal cut, max, exp, sum and divide in one pass per row.

The scores arrive as rows ``(R, Tk)`` with ``R = B * H * Tq`` (C-contiguous);
row ``r`` is query ``i = r % Tq`` of head ``h = (r // Tq) % H`` of sample
``b = r // (H * Tq)``. An additive mask arrives as rows ``(mb * mh * mq, Tk)``
where each of ``mb, mh, mq`` is 1 (broadcast) or ``B, H, Tq``, so a ``(Tq, Tk)``
mask is never copied to the scores' size. The causal cut is not a mask: row i
reads keys ``0..i`` only and writes zeros after them.

The exponential is :func:`kernels.activations.cpu.vexp` (arithmetic only, so
LLVM vectorises the loop; Numba has no SIMD ``exp`` without SVML). The row
sums use the ``reassoc`` fast-math flag, so they are vectorised too (a fixed
summation order: results are the same on every run and thread count). Rows are
split over the library's helper threads (:func:`kernels.threads.run_rows`).
Note: Numba's cache is keyed on this file, so after editing ``vexp`` in
``kernels/activations/cpu.py`` clear ``kernels/attention/__pycache__``.
"""

from __future__ import annotations

import numpy as np

from kernels.activations.cpu import vexp
from kernels.jit import njit
from kernels.threads import run_rows

#: float32 and float64; anything else goes to :mod:`kernels.attention.reference`.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

_OPTS = dict(nogil=True, error_model="numpy", fastmath={"contract"})
_OPTS_SUM = dict(nogil=True, error_model="numpy", fastmath={"contract", "reassoc"})
#: The row maximum: ``nnan`` lets LLVM vectorise a float max reduction. A NaN score makes the row NaN
#: anyway (it reaches the exponentials and the sum), whichever maximum is taken.
_OPTS_MAX = dict(nogil=True, error_model="numpy", fastmath={"reassoc", "nnan"})


@njit(**_OPTS_MAX)
def _row_max(row, limit, start):
    top = start
    for j in range(limit):
        top = max(top, row[j])
    return top


@njit(**_OPTS_SUM)
def _exp_shifted_sum(row, limit, shift):
    """``row[j] = exp(row[j] - shift)`` for ``j < limit``; returns their sum."""
    total = row.dtype.type(0.0)
    for j in range(limit):
        e = vexp(row[j] - shift)
        row[j] = e
        total += e
    return total


@njit(**_OPTS)
def _finish_row(row, limit, total):
    """Divide the first ``limit`` entries by ``total`` and zero the rest (the causal cut)."""
    inv = row.dtype.type(1.0) / total
    for j in range(limit):
        row[j] *= inv
    for j in range(limit, row.shape[0]):
        row[j] = row.dtype.type(0.0)


@njit(**_OPTS)
def softmax_fwd(scores, mask, out, scale, heads, queries, mask_b, mask_h, mask_q, has_mask, causal, r0, r1):
    """``out[r] = softmax(scale * scores[r] + mask[row of r])`` for rows ``r0 <= r < r1`` (zeros when fully masked)."""
    keys = scores.shape[1]
    neg_inf = scores.dtype.type(-np.inf)
    for r in range(r0, r1):
        i = r % queries
        limit = min(keys, i + 1) if causal else keys
        src = scores[r]
        row = out[r]
        if has_mask:
            b = r // (heads * queries)
            h = (r // queries) % heads
            m = mask[((b % mask_b) * mask_h + (h % mask_h)) * mask_q + (i % mask_q)]
            for j in range(limit):
                row[j] = scale * src[j] + m[j]
        else:
            for j in range(limit):
                row[j] = scale * src[j]
        top = _row_max(row, limit, neg_inf)
        if top == neg_inf:  # no key left: the row is defined as zeros (and gets zero gradient)
            for j in range(keys):
                row[j] = scores.dtype.type(0.0)
            continue
        _finish_row(row, limit, _exp_shifted_sum(row, limit, top))


@njit(**_OPTS_SUM)
def _dot(a, b, limit):
    total = a.dtype.type(0.0)
    for j in range(limit):
        total += a[j] * b[j]
    return total


@njit(**_OPTS)
def softmax_bwd(grad, probs, out, scale, queries, causal, r0, r1):
    """``out[r] = scale * P[r] (G[r] - <G[r], P[r]>)`` for rows ``r0 <= r < r1``."""
    keys = probs.shape[1]
    for r in range(r0, r1):
        limit = min(keys, r % queries + 1) if causal else keys
        g = grad[r]
        p = probs[r]
        row = out[r]
        dot = _dot(g, p, limit)
        for j in range(limit):
            row[j] = scale * p[j] * (g[j] - dot)
        for j in range(limit, keys):
            row[j] = probs.dtype.type(0.0)


def supports(*arrays) -> bool:
    """True when every array is a C-contiguous NumPy float32/float64 array of one dtype."""
    dtypes = {a.dtype for a in arrays}
    return (len(dtypes) == 1 and dtypes.pop() in SUPPORTED_DTYPES
            and all(isinstance(a, np.ndarray) and a.flags.c_contiguous for a in arrays))


def softmax_forward(scores, scale, mask, causal, out):
    """Run :func:`softmax_fwd` over ``scores (B, H, Tq, Tk)`` into ``out``; ``mask`` is ``(mb, mh, mq, Tk)`` or None."""
    batch, heads, queries, keys = scores.shape
    rows = batch * heads * queries
    dtype = scores.dtype.type
    if mask is None:
        mask_rows, sizes, has_mask = np.zeros((1, keys), dtype=scores.dtype), (1, 1, 1), False
    else:
        mask_rows, sizes, has_mask = mask.reshape(-1, keys), mask.shape[:3], True
    run_rows(softmax_fwd, rows, rows * keys, scores.reshape(rows, keys), mask_rows, out.reshape(rows, keys),
             dtype(scale), heads, queries, *sizes, has_mask, bool(causal))
    return out


def softmax_backward(grad_output, probs, scale, causal, out):
    """Run :func:`softmax_bwd` over ``(B, H, Tq, Tk)`` arrays into ``out``."""
    keys, queries = probs.shape[-1], probs.shape[-2]
    rows = probs.size // keys
    run_rows(softmax_bwd, rows, rows * keys, grad_output.reshape(rows, keys), probs.reshape(rows, keys),
             out.reshape(rows, keys), probs.dtype.type(scale), queries, bool(causal))
    return out
