"""Fused Numba CPU kernels for the activations (book sections 7.9 and 8.7).

One kernel per activation and direction, float32 and float64: one pass over
memory, reading the input(s) once and writing an output the dispatcher
allocated, no temporaries. The file also holds its own exp, expm1, tanh,
log1p and erfc written with arithmetic only (range reduction, polynomials, a
bit cast for 2^k), so LLVM vectorises them with the loop (without Intel SVML a
``math.exp`` call is scalar); they are checked to a few ulps in
``tests/kernels/test_activation_kernels.py`` and live here because Numba's
cache is invalidated per file.

The kernels are serial and release the GIL; the dispatcher cuts large arrays
into chunks for the helper threads of :mod:`kernels.threads` (never
``parallel=True``); PReLU's slope gradient is summed per fixed block, in
block order, so no result depends on the number of threads. Why, with the
measurements: docs/design/kernels.md.
"""

from __future__ import annotations

import math

import numpy as np
from llvmlite import ir
from numba import types
from numba.core.extending import intrinsic, overload

from kernels.jit import njit
from kernels.threads import run_rows

from .catalog import (BACKWARD_NEEDS, GELU_TANH_C, GELU_TANH_K, INV_SQRT_2PI, SELU_ALPHA, SELU_SCALE, SQRT2,
                      check_prelu_slopes)

#: Options of every kernel: release the GIL (threads); NumPy's error model (x / 0 gives
#: inf instead of raising, which also lets LLVM vectorise divisions); and ``contract``,
#: the only fast-math flag: a * b + c may become one fused multiply-add (one rounding
#: instead of two; it halves the latency of the polynomials).
_OPTS = dict(nogil=True, error_model="numpy", fastmath={"contract"})
#: Without ``contract``: for the tanh-form GELU, whose exponent -2u = -2k(x + 0.044715 x^3)
#: has condition number |2u| (one rounding more or less in u moves the result by up to |2u| ulps,
#: 65 at x = -8.8), so its kernels round u exactly as the NumPy reference does.
_OPTS_NO_FMA = dict(nogil=True, error_model="numpy")

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


# ============================================================================ bit casts
@intrinsic
def _float64_from_bits(typingctx, bits):
    """Reinterpret an int64 as a float64 (``2**k`` from ``(k + 1023) << 52``)."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        if value.type.width < 64:
            value = builder.sext(value, ir.IntType(64))
        return builder.bitcast(value, ir.DoubleType())

    return types.float64(bits), codegen


@intrinsic
def _float32_from_bits(typingctx, bits):
    """Reinterpret the low 32 bits of an integer as a float32."""
    if not isinstance(bits, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        value = args[0]
        if value.type.width > 32:
            value = builder.trunc(value, ir.IntType(32))
        elif value.type.width < 32:
            value = builder.sext(value, ir.IntType(32))
        return builder.bitcast(value, ir.FloatType())

    return types.float32(bits), codegen


@intrinsic
def _fma(typingctx, a, b, c):
    """``a * b + c`` with one rounding (``llvm.fma``: the FMA instruction, or an exact library call).

    ``a * b - fma(a, b, -(a * b))`` splits a product into two floats exactly (the
    error of the rounded product), which ``contract`` alone does not promise.
    """
    if not (isinstance(a, types.Float) and a == b == c):
        return None

    def codegen(context, builder, signature, args):
        return builder.fma(*args)

    return a(a, b, c), codegen


# ============================================================================ vector math
_LOG2E = 1.4426950408889634
_LN2 = 0.6931471805599453
_SQRT2M1 = 0.41421356237309503
_LN2_HI_64 = 6.93147180369123816490e-01  # trailing zeros: k * LN2_HI is exact for |k| < 2^11
_LN2_LO_64 = 1.90821492927058770002e-10
_ROUND_64 = 6755399441055744.0  # 1.5 * 2^52: (v + R) - R rounds v to the nearest integer
_LN2_HI_32 = 0.693359375  # 9 significant bits: k * LN2_HI is exact
_LN2_LO_32 = -2.12194440e-4
_ROUND_32 = 12582912.0  # 1.5 * 2^23


@njit(**_OPTS)
def _expm1_parts_f64(a, b):
    """a + b = k ln2 + r, |r| <= ln2 / 2; returns (expm1(r), 2^k1, 2^k2, k) with k1 + k2 = k.

    ``b`` is a small correction to an exactly known ``a`` (0 for a plain exp):
    it joins r after the exact subtraction of k ln2_hi, so a + b is never
    rounded. Two factors keep every 2^ki a normal number for |a + b| <= 1400,
    so overflow to inf and gradual underflow come out of one multiplication each.
    """
    x = a + b
    if x > 1400.0:
        a = 1400.0
        b = 0.0
    if x < -1400.0:
        a = -1400.0
        b = 0.0
    kf = ((a + b) * _LOG2E + _ROUND_64) - _ROUND_64
    r = ((a - kf * _LN2_HI_64) + b) - kf * _LN2_LO_64
    # expm1(r) = r + r^2 (1/2! + r/3! + ... + r^11/13!); truncation < 1e-17 relative
    q = 1.6059043836821613e-10
    q = q * r + 2.08767569878681e-09
    q = q * r + 2.505210838544172e-08
    q = q * r + 2.755731922398589e-07
    q = q * r + 2.7557319223985893e-06
    q = q * r + 2.48015873015873e-05
    q = q * r + 0.0001984126984126984
    q = q * r + 0.001388888888888889
    q = q * r + 0.008333333333333333
    q = q * r + 0.041666666666666664
    q = q * r + 0.16666666666666666
    q = q * r + 0.5
    p = r + (r * r) * q
    k = np.int64(kf)
    k1 = k >> 1
    s1 = _float64_from_bits((k1 + 1023) << 52)
    s2 = _float64_from_bits((k - k1 + 1023) << 52)
    return p, s1, s2, k


@njit(**_OPTS)
def _expm1_parts_f32(a, b):
    """float32 twin of :func:`_expm1_parts_f64` (degree-7 polynomial, |a + b| clamped to 150)."""
    hi = np.float32(150.0)
    x = a + b
    if x > hi:
        a = hi
        b = np.float32(0.0)
    if x < -hi:
        a = -hi
        b = np.float32(0.0)
    return _expm1_parts_unclamped_f32(a, b)


@njit(inline="always", **_OPTS)
def _expm1_parts_unclamped_f32(a, b):
    """:func:`_expm1_parts_f32` for |a + b| <= 150 (outside, garbage the caller must discard)."""
    rnd = np.float32(_ROUND_32)
    kf = ((a + b) * np.float32(_LOG2E) + rnd) - rnd
    r = ((a - kf * np.float32(_LN2_HI_32)) + b) - kf * np.float32(_LN2_LO_32)
    q = np.float32(1.984126984126984e-04)
    q = q * r + np.float32(1.388888888888889e-03)
    q = q * r + np.float32(8.333333333333333e-03)
    q = q * r + np.float32(4.1666666666666664e-02)
    q = q * r + np.float32(0.16666666666666666)
    q = q * r + np.float32(0.5)
    p = r + (r * r) * q
    k = np.int32(kf)
    k1 = k >> np.int32(1)
    s1 = _float32_from_bits((k1 + np.int32(127)) << np.int32(23))
    s2 = _float32_from_bits((k - k1 + np.int32(127)) << np.int32(23))
    return p, s1, s2, k


@njit(**_OPTS)
def _exp2_f64(a, b):
    p, s1, s2, k = _expm1_parts_f64(a, b)
    return ((p + 1.0) * s1) * s2


@njit(**_OPTS)
def _exp2_f32(a, b):
    p, s1, s2, k = _expm1_parts_f32(a, b)
    return ((p + np.float32(1.0)) * s1) * s2


@njit(inline="always", **_OPTS)
def _exp2_unclamped_f32(a, b):
    p, s1, s2, k = _expm1_parts_unclamped_f32(a, b)
    return ((p + np.float32(1.0)) * s1) * s2


@njit(**_OPTS)
def _exp_f64(x):
    return _exp2_f64(x, 0.0)


@njit(**_OPTS)
def _exp_f32(x):
    return _exp2_f32(x, np.float32(0.0))


@njit(**_OPTS)
def _expm1_f64(x):
    p, s1, s2, k = _expm1_parts_f64(x, 0.0)
    s = s1 * s2
    small = p * s + (s - 1.0)  # exact scaling, one rounding: accurate near 0
    large = ((p + 1.0) * s1) * s2  # for k > 56, e^x - 1 rounds to e^x
    return large if k > 56 else small


@njit(**_OPTS)
def _expm1_f32(x):
    p, s1, s2, k = _expm1_parts_f32(x, np.float32(0.0))
    s = s1 * s2
    small = p * s + (s - np.float32(1.0))
    large = ((p + np.float32(1.0)) * s1) * s2
    return large if k > 25 else small


@njit(**_OPTS)
def _tanh_f64(x):
    a = abs(x)
    if a > 20.0:  # tanh(20) rounds to 1; clamping avoids inf / inf
        a = 20.0
    e = _expm1_f64(2.0 * a)
    return math.copysign(e / (e + 2.0), x)


@njit(**_OPTS)
def _tanh_f32(x):
    a = abs(x)
    if a > np.float32(10.0):
        a = np.float32(10.0)
    e = _expm1_f32(np.float32(2.0) * a)
    return math.copysign(e / (e + np.float32(2.0)), x)


@njit(**_OPTS)
def _log1p_unit_f64(u):
    """log(1 + u) for 0 <= u <= 1 as 2 atanh(z): z = u / (2 + u), or ln 2 + 2 atanh((u - 1) / (u + 3))."""
    big = u > _SQRT2M1
    z = (u - 1.0) / (u + 3.0) if big else u / (u + 2.0)  # |z| <= 0.1716
    w = z * z
    s = 0.05263157894736842
    s = s * w + 0.058823529411764705
    s = s * w + 0.06666666666666667
    s = s * w + 0.07692307692307693
    s = s * w + 0.09090909090909091
    s = s * w + 0.1111111111111111
    s = s * w + 0.14285714285714285
    s = s * w + 0.2
    s = s * w + 0.3333333333333333
    s = s * w + 1.0
    return 2.0 * z * s + (_LN2 if big else 0.0)


@njit(**_OPTS)
def _log1p_unit_f32(u):
    one = np.float32(1.0)
    big = u > np.float32(_SQRT2M1)
    z = (u - one) / (u + np.float32(3.0)) if big else u / (u + np.float32(2.0))
    w = z * z
    s = np.float32(0.1111111111111111)
    s = s * w + np.float32(0.14285714285714285)
    s = s * w + np.float32(0.2)
    s = s * w + np.float32(0.3333333333333333)
    s = s * w + one
    return np.float32(2.0) * z * s + (np.float32(_LN2) if big else np.float32(0.0))


# W. J. Cody, "Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969) 631-637, coefficients as in netlib specfun CALERF.
_ERF_A = (3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
          3.20937758913846947e03, 1.85777706184603153e-1)
_ERF_B = (2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03,
          2.84423683343917062e03)
_ERF_C = (5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
          2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03,
          2.05107837782607147e03, 1.23033935479799725e03, 2.15311535474403846e-8)
_ERF_D = (1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02,
          1.62138957456669019e03, 3.29079923573345963e03, 4.36261909014324716e03,
          3.43936767414372164e03, 1.23033935480374942e03)
_ERF_P = (3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
          1.60837851487422766e-2, 6.58749161529837803e-4, 1.63153871373020978e-2)
_ERF_Q = (2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1,
          6.05183413124413191e-2, 2.33520497626869185e-3)
# 1, 2, 1/sqrt(pi), the two branch points, 16 (t = floor(16 y) / 16), erfc's and exp(-y^2)'s underflow
_ERF_K = (1.0, 2.0, 5.6418958354775628695e-1, 0.46875, 4.0, 16.0, 26.75, 27.5)
_ERF64 = (_ERF_A, _ERF_B, _ERF_C, _ERF_D, _ERF_P, _ERF_Q, _ERF_K)


@njit(inline="always", **_OPTS)
def _erfc_exp_cody(x, coefficients):
    """(erfc(x), exp(-x^2)) from Cody's three rational approximations, evaluated together and selected.

    |x| <= 0.46875: erfc = 1 - x P1(x^2) / Q1(x^2); |x| <= 4: erfc = e^(-x^2) P2(|x|) / Q2(|x|);
    |x| > 4: erfc = e^(-x^2) / |x| (1/sqrt(pi) - R(1/x^2)), R rewritten as a ratio of
    polynomials in x^2 (all coefficients positive), so that the three branches share
    one division. e^(-x^2) is exp(-t^2 - (|x| - t)(|x| + t)) with t = floor(16 |x|) / 16,
    whose square is exact, so the error is not amplified by x^2. erfc(-x) = 2 - erfc(x).
    ``coefficients``: :data:`_ERF64`. ``inline="always"``: LLVM does not inline a body
    this large by itself, and a call in the loop stops vectorisation.
    """
    a, b, c, d, pp, qq, k = coefficients
    one, two, sqrpi, thresh, four, sixteen, cutoff, edge = k
    zero = one - one
    y = abs(x)
    z = y * y
    # |x| <= 0.46875: erf = x num / den
    num = a[4] * z
    den = z
    num = (num + a[0]) * z
    den = (den + b[0]) * z
    num = (num + a[1]) * z
    den = (den + b[1]) * z
    num = (num + a[2]) * z
    den = (den + b[2]) * z
    num1 = num + a[3]
    den1 = den + b[3]
    # 0.46875 < |x| <= 4: erfc(y) = e^(-y^2) num / den
    num = c[8] * y
    den = y
    num = (num + c[0]) * y
    den = (den + d[0]) * y
    num = (num + c[1]) * y
    den = (den + d[1]) * y
    num = (num + c[2]) * y
    den = (den + d[2]) * y
    num = (num + c[3]) * y
    den = (den + d[3]) * y
    num = (num + c[4]) * y
    den = (den + d[4]) * y
    num = (num + c[5]) * y
    den = (den + d[5]) * y
    num = (num + c[6]) * y
    den = (den + d[6]) * y
    num2 = num + c[7]
    den2 = den + d[7]
    # |x| > 4: Cody's R = (1/z) P(1/z) / Q(1/z) = nr(z) / (z dr(z))
    nr = pp[4]
    nr = nr * z + pp[3]
    nr = nr * z + pp[2]
    nr = nr * z + pp[1]
    nr = nr * z + pp[0]
    nr = nr * z + pp[5]
    dr = qq[4]
    dr = dr * z + qq[3]
    dr = dr * z + qq[2]
    dr = dr * z + qq[1]
    dr = dr * z + qq[0]
    dr = dr * z + one
    zdr = z * dr
    num3 = sqrpi * zdr - nr  # (1/sqrt(pi) - R) / y = num3 / den3
    den3 = zdr * y
    inner = y <= thresh
    middle = y <= four
    num = (den1 - x * num1) if inner else (num2 if middle else num3)
    den = den1 if inner else (den2 if middle else den3)
    ratio = num / den
    t = np.floor(y * sixteen) / sixteen
    e = vexp2(-(t * t), -((y - t) * (y + t)))
    big = ratio * e
    if y >= cutoff:  # erfc(y) underflows to 0 (this also keeps inf - inf out)
        big = zero
    if y > edge:  # exp(-y^2) is 0 from y = 27.3 on; y = inf would give inf - inf
        e = zero
    big = two - big if x < zero else big
    return (ratio if inner else big), e


@njit(inline="always", **_OPTS)
def _erfc_exp_f64(x):
    return _erfc_exp_cody(x, _ERF64)


@njit(inline="always", **_OPTS)
def _erfc_f64(x):
    return _erfc_exp_cody(x, _ERF64)[0]


# float32: erfc(y) = t R(t) exp(-y^2), t = 1 / (1 + p y), y >= 0, R a degree-9 polynomial in
# u = t - c fitted here to the relative error of erfcx(y) / t on 0 <= y <= 10.5 with float32
# coefficients (fit error 3.2e-9, well below float32's 6e-8; erfc(10.5) underflows float32); c is
# where R(c) rounds to float32 almost exactly. y^2 is split exactly by an FMA, so exp(-y^2) has no
# error amplified by y^2; the same exp(-y^2) is the Gaussian density GELU's backward needs.
_ERFC32_SLOPE = 0.41999998688697815
_ERFC32_CENTER = 0.5136229395866394
_ERFC32_R = tuple(np.float32(c) for c in (
    0.44911617040634155, 0.6752460598945618, 0.7177020907402039, 0.46623891592025757,
    0.06759145855903625, -0.15630167722702026, -0.0765916183590889, 0.07060887664556503,
    0.04050321504473686, -0.04100038483738899,
))


@njit(inline="always", **_OPTS)
def _erfc_exp_f32(x):
    """(erfc(x), exp(-x^2)) in float32 arithmetic (erfc within a few ulps); erfc(-x) = 2 - erfc(x)."""
    c = _ERFC32_R
    one = np.float32(1.0)
    y = abs(x)
    t = one / (one + np.float32(_ERFC32_SLOPE) * y)
    u = t - np.float32(_ERFC32_CENTER)
    r = c[9]
    r = r * u + c[8]
    r = r * u + c[7]
    r = r * u + c[6]
    r = r * u + c[5]
    r = r * u + c[4]
    r = r * u + c[3]
    r = r * u + c[2]
    r = r * u + c[1]
    r = r * u + c[0]
    square = y * y
    e = _exp2_unclamped_f32(-square, -_fma(y, y, -square))  # exp(-y^2), y^2 = square + its rounding error
    if y >= np.float32(10.5):  # underflows to 0 (and discards the unclamped exp's garbage from y^2 > 150 on)
        e = np.float32(0.0)
    q = (t * r) * e
    return (np.float32(2.0) - q if x < np.float32(0.0) else q), e


@njit(inline="always", **_OPTS)
def _erfc_f32(x):
    return _erfc_exp_f32(x)[0]


# ============================================================================ dtype-generic names
# Inside a Numba kernel these names pick the float32 or float64 function above from the
# argument's type (``numba.extending.overload``); called from Python they use ``math``.
def vexp(x):
    """exp(x), vectorisable; float32 or float64 scalar inside a Numba kernel."""
    return math.exp(x)


def vexpm1(x):
    """expm1(x) = e^x - 1, accurate near 0; vectorisable."""
    return math.expm1(x)


def vtanh(x):
    """tanh(x) = expm1(2|x|) / (expm1(2|x|) + 2) with the sign of x; vectorisable."""
    return math.tanh(x)


def vlog1p_unit(u):
    """log(1 + u) for u in [0, 1] (all that softplus needs); vectorisable."""
    return math.log1p(u)


def vexp2(a, b):
    """exp(a + b) for an exact ``a`` and a small correction ``b``, without rounding a + b; vectorisable."""
    return math.exp(a + b)


def verfc(x):
    """erfc(x): Cody's rational approximations (float64), a fitted t R(t) exp(-x^2) (float32)."""
    return math.erfc(x)


def verfc_exp(x):
    """(erfc(x), exp(-x^2)) from one evaluation: GELU's backward needs both."""
    return math.erfc(x), math.exp(-x * x)


def _by_dtype(f32, f64):
    def typer(x):
        if x == types.float32:
            return lambda x: f32(x)
        if x == types.float64:
            return lambda x: f64(x)
        return None

    return typer


def _exp2_typer(a, b):
    if a == types.float32 and b == types.float32:
        return lambda a, b: _exp2_f32(a, b)
    if a == types.float64 and b == types.float64:
        return lambda a, b: _exp2_f64(a, b)
    return None


overload(vexp2, jit_options=_OPTS)(_exp2_typer)


for _generic, _f32, _f64 in (
    (vexp, _exp_f32, _exp_f64),
    (vexpm1, _expm1_f32, _expm1_f64),
    (vtanh, _tanh_f32, _tanh_f64),
    (vlog1p_unit, _log1p_unit_f32, _log1p_unit_f64),
):
    overload(_generic, jit_options=_OPTS)(_by_dtype(_f32, _f64))
# erfc is too large for LLVM's inliner: inline it at Numba's level (a call stops vectorisation)
overload(verfc, jit_options=_OPTS, inline="always")(_by_dtype(_erfc_f32, _erfc_f64))
overload(verfc_exp, jit_options=_OPTS, inline="always")(_by_dtype(_erfc_exp_f32, _erfc_exp_f64))


# ============================================================================ kernels
# Signature convention: input arrays, then ``out``, then scalars. Arrays are
# 1-D C-contiguous views (PReLU per channel: 2-D (rows, C)); scalars arrive
# already cast to the array dtype, so float32 stays float32 inside the loop
# (a float64 literal would promote it).

# ---- sigmoidal (chapter 7)
@njit(**_OPTS)
def sigmoid_fwd(x, out):
    one = x.dtype.type(1.0)
    for i in range(x.size):
        out[i] = one / (one + vexp(-x[i]))


@njit(**_OPTS)
def sigmoid_bwd(g, y, out):
    one = y.dtype.type(1.0)
    for i in range(y.size):
        v = y[i]
        out[i] = g[i] * (v * (one - v))


@njit(**_OPTS)
def tanh_fwd(x, out):
    for i in range(x.size):
        out[i] = vtanh(x[i])


@njit(**_OPTS)
def tanh_bwd(g, y, out):
    one = y.dtype.type(1.0)
    for i in range(y.size):
        v = y[i]
        out[i] = g[i] * (one - v * v)


@njit(**_OPTS)
def softsign_fwd(x, out):
    one = x.dtype.type(1.0)
    for i in range(x.size):
        v = x[i]
        out[i] = v / (one + abs(v))


@njit(**_OPTS)
def softsign_bwd(g, x, out):
    one = x.dtype.type(1.0)
    for i in range(x.size):
        a = one + abs(x[i])
        out[i] = g[i] * (one / (a * a))


@njit(**_OPTS)
def hard_sigmoid_fwd(x, out):
    zero = x.dtype.type(0.0)
    one = x.dtype.type(1.0)
    six = x.dtype.type(6.0)
    half = x.dtype.type(0.5)
    for i in range(x.size):
        w = x[i] / six + half
        w = zero if w < zero else w  # comparisons let NaN through, like np.clip
        out[i] = one if w > one else w


@njit(**_OPTS)
def hard_sigmoid_bwd(g, x, out):
    zero = x.dtype.type(0.0)
    sixth = x.dtype.type(1.0 / 6.0)
    lo = x.dtype.type(-3.0)
    hi = x.dtype.type(3.0)
    for i in range(x.size):
        v = x[i]
        out[i] = zero if (v < lo) | (v > hi) else g[i] * sixth


@njit(**_OPTS)
def hard_tanh_fwd(x, out):
    lo = x.dtype.type(-1.0)
    hi = x.dtype.type(1.0)
    for i in range(x.size):
        v = x[i]
        v = lo if v < lo else v
        out[i] = hi if v > hi else v


@njit(**_OPTS)
def hard_tanh_bwd(g, x, out):
    zero = x.dtype.type(0.0)
    lo = x.dtype.type(-1.0)
    hi = x.dtype.type(1.0)
    for i in range(x.size):
        v = x[i]
        out[i] = zero if (v < lo) | (v > hi) else g[i]


# ---- rectifiers (chapter 8)
@njit(**_OPTS)
def relu_fwd(x, out):
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        v = x[i]
        out[i] = zero if v <= zero else v  # NaN stays NaN, like np.maximum


@njit(**_OPTS)
def positive_mask_bwd(g, t, out):
    """grad where t > 0, else 0: ReLU (t = y) and NoisyReLU (t = x)."""
    zero = t.dtype.type(0.0)
    for i in range(t.size):
        out[i] = g[i] if t[i] > zero else zero


@njit(**_OPTS)
def leaky_fwd(x, out, alpha):
    """LeakyReLU, PReLU with one slope, RReLU in evaluation: x if x > 0 else alpha x."""
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > zero else alpha * v


@njit(**_OPTS)
def leaky_bwd(g, x, out, alpha):
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        gi = g[i]
        out[i] = gi if x[i] > zero else alpha * gi


@njit(nogil=True, error_model="numpy", fastmath={"reassoc"})
def prelu_scalar_bwd(g, x, out, alpha):
    """Leaky backward, and returns sum(x g over x <= 0) accumulated in float64.

    ``reassoc`` lets LLVM vectorise the sum (the summation order is then unspecified).
    """
    zero = x.dtype.type(0.0)
    acc = 0.0
    for i in range(x.size):
        v = x[i]
        gi = g[i]
        pos = v > zero
        out[i] = gi if pos else alpha * gi
        acc += 0.0 if pos else np.float64(v) * np.float64(gi)
    return acc


@njit(**_OPTS)
def prelu_channels_fwd(x, out, alpha):
    """x, out: (rows, C); alpha: (C,)."""
    zero = x.dtype.type(0.0)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[r, c]
            out[r, c] = v if v > zero else alpha[c] * v


@njit(**_OPTS)
def prelu_channels_bwd(g, x, out, alpha):
    """Input gradient into ``out``; returns the per-channel float64 sums of x g over x <= 0."""
    zero = x.dtype.type(0.0)
    acc = np.zeros(x.shape[1], dtype=np.float64)
    for r in range(x.shape[0]):
        for c in range(x.shape[1]):
            v = x[r, c]
            gi = g[r, c]
            pos = v > zero
            out[r, c] = gi if pos else alpha[c] * gi
            acc[c] += 0.0 if pos else np.float64(v) * np.float64(gi)
    return acc


@njit(**_OPTS)
def rrelu_fwd(x, slopes, out):
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        v = x[i]
        out[i] = v if v > zero else slopes[i] * v


@njit(**_OPTS)
def rrelu_bwd(g, x, slopes, out):
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        gi = g[i]
        out[i] = gi if x[i] > zero else slopes[i] * gi


@njit(**_OPTS)
def scaled_elu_fwd(x, out, scale, alpha):
    """scale (x if x > 0 else alpha expm1(x)): ELU (scale = 1) and SELU."""
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        v = x[i]
        neg = alpha * vexpm1(v)
        out[i] = scale * (v if v > zero else neg)


@njit(**_OPTS)
def scaled_elu_bwd(g, y, out, scale, scale_alpha):
    """From the output: scale where y > 0, else y + scale alpha (= scale alpha e^x)."""
    zero = y.dtype.type(0.0)
    for i in range(y.size):
        v = y[i]
        gi = g[i]
        out[i] = gi * scale if v > zero else gi * (v + scale_alpha)


@njit(**_OPTS)
def noisy_relu_fwd(x, noise, out):
    """Eq. 8.13: x + noise where x > 0, 0 elsewhere."""
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        v = x[i]
        out[i] = v + noise[i] if v > zero else zero


# ---- modern (chapter 9, slides 001)
@njit(**_OPTS)
def gelu_fwd(x, out):
    """x Phi(x) = 0.5 x erfc(-x / sqrt 2)."""
    half = x.dtype.type(0.5)
    sqrt2 = x.dtype.type(SQRT2)
    for i in range(x.size):
        v = x[i]
        out[i] = half * v * verfc(-v / sqrt2)


@njit(**_OPTS)
def gelu_bwd(g, x, out):
    """Phi(x) + x phi(x).

    -x / sqrt 2 as a product, not the forward's quotient: the extra rounding changes both terms by
    x^2 ulps of tiny values in the tails, far below the O(1) terms' rounding that bounds the gradient.
    """
    half = x.dtype.type(0.5)
    inv_sqrt2 = x.dtype.type(1.0 / SQRT2)
    c = x.dtype.type(INV_SQRT_2PI)
    for i in range(x.size):
        v = x[i]
        complement, gauss = verfc_exp(-v * inv_sqrt2)  # erfc(-x / sqrt 2), exp(-x^2 / 2)
        out[i] = g[i] * (half * complement + v * gauss * c)


@njit(**_OPTS_NO_FMA)
def gelu_tanh_fwd(x, out):
    """0.5 x (1 + tanh u) = x sigmoid(2u), u = sqrt(2/pi) (x + 0.044715 x^3)."""
    one = x.dtype.type(1.0)
    m2 = x.dtype.type(-2.0)
    k = x.dtype.type(GELU_TANH_K)
    c = x.dtype.type(GELU_TANH_C)
    for i in range(x.size):
        v = x[i]
        u = k * (v + c * v * v * v)
        out[i] = v / (one + vexp(m2 * u))


@njit(**_OPTS_NO_FMA)
def gelu_tanh_bwd(g, x, out):
    one = x.dtype.type(1.0)
    m2 = x.dtype.type(-2.0)
    k = x.dtype.type(GELU_TANH_K)
    c = x.dtype.type(GELU_TANH_C)
    k2 = x.dtype.type(2.0 * GELU_TANH_K)
    c3 = x.dtype.type(3.0 * GELU_TANH_C)
    for i in range(x.size):
        v = x[i]
        u = k * (v + c * v * v * v)
        s = one / (one + vexp(m2 * u))
        inner = one + c3 * v * v
        out[i] = g[i] * (s + v * s * (one - s) * k2 * inner)


@njit(**_OPTS)
def silu_fwd(x, out):
    one = x.dtype.type(1.0)
    for i in range(x.size):
        v = x[i]
        out[i] = v / (one + vexp(-v))


@njit(**_OPTS)
def silu_bwd(g, x, out):
    """s (1 + x (1 - s)), s = sigmoid(x)."""
    one = x.dtype.type(1.0)
    for i in range(x.size):
        v = x[i]
        s = one / (one + vexp(-v))
        out[i] = g[i] * (s * (one + v * (one - s)))


@njit(**_OPTS)
def softplus_fwd(x, out):
    """max(x, 0) + log1p(exp(-|x|))."""
    zero = x.dtype.type(0.0)
    for i in range(x.size):
        v = x[i]
        m = zero if v <= zero else v
        out[i] = m + vlog1p_unit(vexp(-abs(v)))


@njit(**_OPTS)
def softplus_bwd(g, x, out):
    one = x.dtype.type(1.0)
    for i in range(x.size):
        out[i] = g[i] * (one / (one + vexp(-x[i])))


@njit(**_OPTS)
def mish_fwd(x, out):
    """x tanh(softplus(x)), with tanh(softplus(x)) = n / (n + 2), n = e^x (e^x + 2): one exp."""
    lim = x.dtype.type(20.0)  # tanh(softplus(20)) already rounds to 1
    two = x.dtype.type(2.0)
    for i in range(x.size):
        v = x[i]
        e = vexp(v if v < lim else lim)
        n = e * (e + two)
        out[i] = v * (n / (n + two))


@njit(**_OPTS)
def mish_bwd(g, x, out):
    """t + x sigmoid(x) (1 - t^2), t = tanh(softplus(x))."""
    one = x.dtype.type(1.0)
    lim = x.dtype.type(20.0)
    two = x.dtype.type(2.0)
    for i in range(x.size):
        v = x[i]
        e = vexp(v if v < lim else lim)
        n = e * (e + two)
        t = n / (n + two)
        s = one / (one + vexp(-v))
        out[i] = g[i] * (t + v * s * (one - t * t))


# ============================================================================ dispatch
#: Arrays with at least this many elements are split over Python threads (see the module
#: docstring); 0 disables threading. Handing a chunk to a pool thread costs about 50 us, so
#: memory-bound kernels (one comparison or multiply per element) are split only when large,
#: and kernels that evaluate exp/erfc per element (compute-bound) from a smaller size.
#: Measured on the 2-core machine, float32, into a preallocated output (serial -> 2 threads):
#: ReLU 2^20: 79 -> 114 us (worse), 2^22: 537 -> 437 us; sigmoid 2^20: 243 -> 179 us,
#: 2^22: 1003 -> 589 us; GELU 2^18: 231 -> 174 us, 2^22: 3680 -> 1979 us.
PARALLEL_MIN_SIZE = 1 << 22
PARALLEL_MIN_SIZE_COMPUTE = 1 << 19

def _run(kernel, arrays, scalars=(), compute_bound=None):
    """``kernel(*arrays, *scalars)``; large arrays (see :data:`PARALLEL_MIN_SIZE`) are cut along axis 0
    into chunks that the calling thread and the helper threads take in turn (:func:`kernels.threads.run_rows`).
    ``compute_bound``: whether the kernel evaluates an exp or erfc per element (looked up when None)."""
    size = arrays[0].size
    if compute_bound is None:
        compute_bound = kernel in _COMPUTE_BOUND
    threshold = PARALLEL_MIN_SIZE_COMPUTE if compute_bound else PARALLEL_MIN_SIZE
    if not threshold or size < threshold:
        kernel(*arrays, *scalars)
        return

    def rows(r0, r1):
        kernel(*(a[r0:r1] for a in arrays), *scalars)

    # 1-D chunks start at multiples of 16 elements: whole cache lines per thread
    run_rows(rows, arrays[0].shape[0], size, min_elements=threshold, align=16 if arrays[0].ndim == 1 else 1)


#: Elements per block of a reduction (PReLU's slope gradient): fixed, whatever the number of threads.
REDUCTION_BLOCK = 1 << 18


def _run_reduction(kernel, arrays, scalars=()):
    """``kernel(*arrays, *scalars)`` over fixed blocks of rows; returns the blocks' results in block order.

    The blocks (about :data:`REDUCTION_BLOCK` elements, whole rows) depend only
    on the arrays' shape, never on the number of threads, so summing the
    results in this order gives the same bits on any number of threads.
    Large arrays (:data:`PARALLEL_MIN_SIZE`) hand blocks to the helper threads.
    """
    rows = arrays[0].shape[0]
    row_size = max(1, arrays[0].size // max(1, rows))
    step = max(1, REDUCTION_BLOCK // row_size)
    n_blocks = max(1, -(-rows // step))  # one (empty) block for an empty array
    results = [None] * n_blocks

    def blocks(b0, b1):
        for b in range(b0, b1):
            results[b] = kernel(*(a[b * step:(b + 1) * step] for a in arrays), *scalars)

    run_rows(blocks, n_blocks, arrays[0].size, min_elements=PARALLEL_MIN_SIZE or arrays[0].size + 1)
    return results


def supports(*arrays) -> bool:
    """True when all arrays are C-contiguous NumPy float32/float64 arrays of one dtype and one shape."""
    first = arrays[0]
    for a in arrays:
        if not isinstance(a, np.ndarray) or a.dtype not in SUPPORTED_DTYPES or not a.flags.c_contiguous:
            return False
        if a.dtype != first.dtype or a.shape != first.shape:
            return False
    return True


def _flat(a):
    return a.reshape(-1)


_UNARY_FORWARD = {
    "sigmoid": sigmoid_fwd,
    "tanh": tanh_fwd,
    "softsign": softsign_fwd,
    "hard_sigmoid": hard_sigmoid_fwd,
    "hard_tanh": hard_tanh_fwd,
    "relu": relu_fwd,
    "silu": silu_fwd,
    "softplus": softplus_fwd,
    "mish": mish_fwd,
}

_BINARY_BACKWARD = {  # kernel(grad_output, x or y, out)
    "sigmoid": sigmoid_bwd,
    "tanh": tanh_bwd,
    "softsign": softsign_bwd,
    "hard_sigmoid": hard_sigmoid_bwd,
    "hard_tanh": hard_tanh_bwd,
    "relu": positive_mask_bwd,
    "noisy_relu": positive_mask_bwd,
    "silu": silu_bwd,
    "softplus": softplus_bwd,
    "mish": mish_bwd,
}


#: Kernels that evaluate an exponential (or erfc) per element.
_COMPUTE_BOUND = frozenset({
    sigmoid_fwd, tanh_fwd, scaled_elu_fwd, gelu_fwd, gelu_bwd, gelu_tanh_fwd, gelu_tanh_bwd,
    silu_fwd, silu_bwd, softplus_fwd, softplus_bwd, mish_fwd, mish_bwd,
})


def _rrelu_mean(params):
    return (float(params["lower"]) + float(params["upper"])) / 2.0


def prelu_alpha(alpha, x):
    """PReLU slopes as a C-contiguous 1-D array of x's dtype: shape (1,) or (C,), C = x.shape[-1]."""
    a = np.ascontiguousarray(np.asarray(alpha, dtype=x.dtype).reshape(-1))
    check_prelu_slopes(a.size, x.shape)
    return a


def _plan(kernel, scalars=()):
    """``(kernel, scalars, compute_bound)``: a kernel and its scalar arguments, ready to run."""
    return kernel, scalars, kernel in _COMPUTE_BOUND


def _with_scalars(name, params, dt):
    """``(forward kernel, backward kernel, forward scalars, backward scalars)`` of an activation whose
    call reads x (or y) alone besides its scalar parameters, or None (arrays among the parameters)."""
    if name == "gelu":
        tanh = params["approximate"] == "tanh"
        return (gelu_tanh_fwd if tanh else gelu_fwd), (gelu_tanh_bwd if tanh else gelu_bwd), (), ()
    if name == "leaky_relu" or (name == "rrelu" and params["slopes"] is None):
        alpha = (dt(params["alpha"]) if name == "leaky_relu" else dt(_rrelu_mean(params)),)
        return leaky_fwd, leaky_bwd, alpha, alpha
    if name == "elu":
        scalars = (dt(1.0), dt(params["alpha"]))
        return scaled_elu_fwd, scaled_elu_bwd, scalars, scalars
    if name == "selu":
        return scaled_elu_fwd, scaled_elu_bwd, (dt(SELU_SCALE), dt(SELU_ALPHA)), (dt(SELU_SCALE),
                                                                                  dt(SELU_SCALE * SELU_ALPHA))
    if name == "noisy_relu" and params["noise"] is None:  # evaluation mode: a ReLU
        return relu_fwd, positive_mask_bwd, (), ()
    return None


def forward_plan(name, dtype, params):
    """``(kernel, scalars, compute_bound)`` computing y = f(x) as ``kernel(x, out, *scalars)`` (flat arrays
    of ``dtype``), or None when the call also reads arrays (PReLU's slopes, RReLU's drawn slopes,
    NoisyReLU's noise).

    ``params``: resolved (:func:`kernels.activations.catalog.resolve_params`). The scalars are cast to
    ``dtype``, so that float32 stays float32 inside the loop.
    """
    if name in _UNARY_FORWARD:
        return _plan(_UNARY_FORWARD[name])
    kernels = _with_scalars(name, params, np.dtype(dtype).type)
    return None if kernels is None else _plan(kernels[0], kernels[2])


def backward_plan(name, dtype, params):
    """``(kernel, scalars, compute_bound)`` computing dE/dx as ``kernel(grad_output, t, out, *scalars)``,
    ``t`` the tensor :data:`catalog.BACKWARD_NEEDS` names, or None when the call also reads arrays
    (see :func:`forward_plan`)."""
    if name in _BINARY_BACKWARD:
        return _plan(_BINARY_BACKWARD[name])
    kernels = _with_scalars(name, params, np.dtype(dtype).type)
    return None if kernels is None else _plan(kernels[1], kernels[3])


def run_forward(plan, x, out=None):
    """y = f(x) by a :func:`forward_plan` into ``out`` (allocated when None); C-contiguous arrays."""
    kernel, scalars, compute_bound = plan
    if out is None:
        out = np.empty_like(x)
    _run(kernel, (x.ravel(), out.ravel()), scalars, compute_bound)
    return out


def run_backward(plan, grad_output, t, out=None):
    """dE/dx by a :func:`backward_plan` into ``out`` (allocated when None); C-contiguous arrays."""
    kernel, scalars, compute_bound = plan
    if out is None:
        out = np.empty_like(grad_output)
    _run(kernel, (grad_output.ravel(), t.ravel(), out.ravel()), scalars, compute_bound)
    return out


def forward(name, x, out=None, **params):
    """y = f(x) for activation ``name`` into ``out`` (allocated when None); ``params`` resolved,
    ``x``, ``out`` and the arrays in params pass :func:`supports`."""
    plan = forward_plan(name, x.dtype, params)
    if plan is not None:
        return run_forward(plan, x, out)
    out = np.empty_like(x) if out is None else out
    xf, of = _flat(x), _flat(out)
    if name == "prelu":
        alpha = prelu_alpha(params["alpha"], x)
        if alpha.size == 1:
            _run(leaky_fwd, (xf, of), (alpha[0],))
        else:
            c = alpha.size
            _run(prelu_channels_fwd, (xf.reshape(-1, c), of.reshape(-1, c)), (alpha,))
    elif name == "rrelu":
        _run(rrelu_fwd, (xf, _flat(params["slopes"]), of))
    elif name == "noisy_relu":
        _run(noisy_relu_fwd, (xf, _flat(params["noise"]), of))
    else:  # pragma: no cover - catalog and kernels list the same names
        raise AssertionError(name)
    return out


def backward(name, grad_output, x, y, out=None, **params):
    """dE/dx for activation ``name`` into ``out`` (allocated when None); reads ``y`` or ``x`` as
    :data:`catalog.BACKWARD_NEEDS` says."""
    t = y if BACKWARD_NEEDS[name] == "output" else x
    plan = backward_plan(name, t.dtype, params)
    if plan is not None:
        return run_backward(plan, grad_output, t, out)
    if name == "prelu":
        return prelu_backward(grad_output, x, params["alpha"], out=out)[0]
    if name == "rrelu":
        out = np.empty_like(grad_output) if out is None else out
        _run(rrelu_bwd, (_flat(grad_output), _flat(t), _flat(params["slopes"]), _flat(out)))
        return out
    raise AssertionError(name)  # pragma: no cover


def prelu_backward(grad_output, x, alpha, out=None):
    """(grad_input, grad_alpha) of PReLU in one pass; grad_alpha has alpha's shape and x's dtype."""
    a = prelu_alpha(alpha, x)
    out = np.empty_like(grad_output) if out is None else out
    gf, xf, of = _flat(grad_output), _flat(x), _flat(out)
    if a.size == 1:
        sums = _run_reduction(prelu_scalar_bwd, (gf, xf, of), (a[0],))
    else:
        c = a.size
        sums = _run_reduction(prelu_channels_bwd, (gf.reshape(-1, c), xf.reshape(-1, c), of.reshape(-1, c)), (a,))
    total = sums[0]
    for partial in sums[1:]:  # block order: the same sum on any number of threads
        total = total + partial
    grad_alpha = np.asarray(total, dtype=np.float64).reshape(-1).astype(x.dtype)
    shape = np.shape(alpha) if hasattr(alpha, "shape") else (1,)
    return out, grad_alpha.reshape(shape)
