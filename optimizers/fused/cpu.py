"""Fused Numba CPU kernels of the optimizers: one pass over memory per parameter (or flat buffer) and step.

Every kernel updates 1-D C-contiguous float32/float64 arrays IN PLACE over the
index range ``[start, stop)`` (a run of a flat buffer, or a chunk that
:func:`kernels.threads.run_rows` gives a helper thread), with its coefficients
in a small array ``c`` of the arrays' dtype (one argument is cheaper to pass
than nine scalars) and no temporaries. A kernel
that writes a non-finite value (parameter or state) sets ``flag[0] = 1``.

The second moment is kept as its square root r (see :mod:`optimizers.fused`),
updated as r <- sqrt((a r)² + (b g)²). The squares overflow for |g| above about
1e19 in float32 although r itself would not: the loop computes the cheap form
and writes nothing where it is not finite; a second pass, run only when that
happened, redoes those elements with :func:`hypot`, which cannot overflow.
No fast-math: the arithmetic rounds as NumPy's does for the same expressions.
"""

from __future__ import annotations

import numpy as np

from kernels.jit import njit

_OPTS = dict(nogil=True, error_model="numpy")


@njit(inline="always", **_OPTS)
def hypot(x, y):
    """sqrt(x² + y²) without overflow in the squares: big · sqrt(1 + (small/big)²); NaN and inf propagate."""
    a = abs(x)
    b = abs(y)
    big = a if a > b else b
    small = b if a > b else a
    if big > 0:
        q = small / big
        return big * np.sqrt(1 + q * q)
    return big + small  # both 0, or a NaN the comparisons did not pick


@njit(inline="always", **_OPTS)
def finite(x):
    """False for inf and NaN: x - x is 0 for every finite x and NaN otherwise."""
    return (x - x) == 0


@njit(**_OPTS)
def sgd(p, g, flag, c, start, stop):
    """θ <- θ - ε g;  c = (ε,)."""
    lr = c[0]
    p, g = p[start:stop], g[start:stop]
    bad = False
    for i in range(p.size):
        x = p[i] - lr * g[i]
        p[i] = x
        bad |= not finite(x)
    if bad:
        flag[0] = 1


@njit(**_OPTS)
def momentum(p, g, v, flag, c, start, stop):
    """v <- μ v - ε g;  θ <- θ + (a v - b g);  c = (ε, μ, a, b).

    Momentum: a = 1, b = 0; Nesterov: a = μ, b = ε.
    """
    lr, mu, a, b = c[0], c[1], c[2], c[3]
    p, g, v = p[start:stop], g[start:stop], v[start:stop]
    bad = False
    for i in range(p.size):
        gi = g[i]
        vi = v[i] * mu - lr * gi
        v[i] = vi
        x = p[i] + (a * vi - b * gi)
        p[i] = x
        bad |= (not finite(x)) | (not finite(vi))
    if bad:
        flag[0] = 1


@njit(**_OPTS)
def rms(p, g, r, flag, c, start, stop):
    """r <- sqrt((a r)² + (b g)²);  θ <- θ - ε g / (r + δ);  c = (ε, a, b, δ).

    AdaGrad: a = b = 1 (r² = Σ g²); RMSProp: a = sqrt(ρ), b = sqrt(1 - ρ).
    """
    lr, a, b, eps = c[0], c[1], c[2], c[3]
    p, g, r = p[start:stop], g[start:stop], r[start:stop]
    redo = False
    bad = False
    for i in range(p.size):
        gi = g[i]
        x = a * r[i]
        y = b * gi
        u = x * x + y * y
        ok = finite(u)
        ri = np.sqrt(u)
        pn = p[i] - lr * gi / (ri + eps)
        r[i] = ri if ok else r[i]
        p[i] = pn if ok else p[i]
        redo |= not ok
        bad |= ok & (not finite(pn))
    if redo:  # squares overflowed (or g is not finite): the elements left alone, without squares
        for i in range(p.size):
            gi = g[i]
            x = a * r[i]
            y = b * gi
            if finite(x * x + y * y):
                continue
            ri = hypot(x, y)
            pn = p[i] - lr * gi / (ri + eps)
            r[i] = ri
            p[i] = pn
            bad |= (not finite(ri)) | (not finite(pn))
    if bad:
        flag[0] = 1


@njit(**_OPTS)
def adam(p, g, m, v, flag, c, start, stop):
    """m <- β1 m + (1 - β1) g;  v <- sqrt((a v)² + (b g)²);  θ <- keep θ - (cm m + cg g) / (s2 v + δ).

    c = (β1, c1, a, b, cm, cg, s2, δ, keep): c1 = 1 - β1, a = sqrt(β2),
    b = sqrt(1 - β2) (so v² is Adam's s), s2 = 1 / sqrt(1 - β2^t); Adam:
    cm = ε / (1 - β1^t), cg = 0; Nadam: cm = ε β1 / (1 - β1^t),
    cg = ε (1 - β1) / (1 - β1^t); keep = 1 - ε λ for AdamW's decay, else 1.
    """
    b1, c1, a, b, cm, cg, inv_bc2, eps, keep = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8]
    p, g, m, v = p[start:stop], g[start:stop], m[start:stop], v[start:stop]
    redo = False
    bad = False
    for i in range(p.size):
        gi = g[i]
        x = a * v[i]
        y = b * gi
        u = x * x + y * y
        ok = finite(u)
        mi = b1 * m[i] + c1 * gi
        vi = np.sqrt(u)
        pn = keep * p[i] - (cm * mi + cg * gi) / (vi * inv_bc2 + eps)
        m[i] = mi if ok else m[i]
        v[i] = vi if ok else v[i]
        p[i] = pn if ok else p[i]
        redo |= not ok
        bad |= ok & ((not finite(pn)) | (not finite(mi)))
    if redo:  # squares overflowed (or g is not finite): the elements left alone, without squares
        for i in range(p.size):
            gi = g[i]
            x = a * v[i]
            y = b * gi
            if finite(x * x + y * y):
                continue
            mi = b1 * m[i] + c1 * gi
            vi = hypot(x, y)
            pn = keep * p[i] - (cm * mi + cg * gi) / (vi * inv_bc2 + eps)
            m[i] = mi
            v[i] = vi
            p[i] = pn
            bad |= (not finite(pn)) | (not finite(mi)) | (not finite(vi))
    if bad:
        flag[0] = 1


#: kernel name -> (function, number of state arrays)
KERNELS = {"sgd": (sgd, 0), "momentum": (momentum, 1), "rms": (rms, 1), "adam": (adam, 2)}
