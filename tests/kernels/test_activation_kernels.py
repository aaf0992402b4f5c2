"""Fast activation kernels (issue 4) against the book's NumPy code (kernels.activations.reference).

Tolerances (documented in the issue's closing note and here):

* float64: relative 1e-12.
* float32: relative 8 ulps (8 * 2^-23) on the CPU, 16 ulps on the GPU. The
  kernels and NumPy compute exp/tanh/log1p/erfc with different (all accurate to
  1-2 ulps) implementations and round a few intermediate results; measured
  worst case on the CPU: 5 ulps (Mish backward).
* Forward: |fast - ref| <= rtol |ref| + tiny (tiny: the smallest normal number,
  for results that underflow to subnormals).
* Backward: |fast - ref| <= rtol (|ref| + |grad_output|). The extra term is the
  scale of the terms that make up f'(x): where f' crosses zero (GELU near
  x = -0.75, SiLU near -1.28, Mish near -1.19) it is a difference of O(1)
  terms, and a relative error on a near-zero difference would measure rounding,
  not the kernel.

Kinks (the book's equations): ReLU'(0) = 0, LeakyReLU'(0) = PReLU'(0) = alpha,
RReLU'(0) = slope, ELU'(0) = alpha, SELU'(0) = scale alpha, NoisyReLU'(0) = 0,
HardSigmoid'(+-3) = 1/6, HardTanh'(+-1) = 1.
"""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit

import backend
from kernels import activations as act
from kernels.activations import cpu, reference

RTOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 8 * 2.0**-23}
GPU_RTOL32 = 16 * 2.0**-23

CASES = [(name, {}) for name in act.ACTIVATIONS] + [("gelu", {"approximate": "tanh"})]
CASE_IDS = [name + ("-tanh" if kw else "") for name, kw in CASES]

SPECIAL = [0.0, -0.0, 1.0, -1.0, 3.0, -3.0, 1e-30, -1e-30, 1000.0, -1000.0, 40.0, -40.0]


def _inputs(dtype, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    parts = [rng.standard_normal(n) * 3, rng.uniform(-45, 45, n), np.linspace(-8, 8, 1001), SPECIAL]
    return np.concatenate(parts).astype(dtype)


def _rtol(dtype, device):
    dtype = np.dtype(dtype)
    if device.name == "gpu" and dtype == np.float32:
        return GPU_RTOL32
    return RTOL[dtype]


def _assert_forward_close(fast, ref, rtol):
    fast = backend.to_numpy(fast).astype(np.float64)
    ref = backend.to_numpy(ref).astype(np.float64)
    tiny = float(np.finfo(np.float32).tiny)
    bound = rtol * np.abs(ref) + tiny
    same_special = (fast == ref) | (np.isnan(fast) & np.isnan(ref))
    bad = ~same_special & ~(np.abs(fast - ref) <= bound)
    assert not bad.any(), f"{bad.sum()} elements differ, worst: fast {fast[bad][:3]} ref {ref[bad][:3]}"


def _assert_backward_close(fast, ref, grad, rtol):
    fast = backend.to_numpy(fast).astype(np.float64)
    ref = backend.to_numpy(ref).astype(np.float64)
    grad = backend.to_numpy(grad).astype(np.float64)
    bound = rtol * (np.abs(ref) + np.abs(grad))
    bad = ~((fast == ref) | (np.abs(fast - ref) <= bound))
    assert not bad.any(), f"{bad.sum()} elements differ, worst: fast {fast[bad][:3]} ref {ref[bad][:3]}"


def _kwargs(name, x, extra):
    kw = dict(extra)
    kw.update(act.training_kwargs(name, x, seed=3))
    return kw


# ----------------------------------------------------------------------------- catalogue
def test_catalogue():
    assert len(act.ACTIVATIONS) == 16 and len(set(act.ACTIVATIONS)) == 16
    assert "softmax" not in act.ACTIVATIONS
    assert set(act.FAMILIES) == {"sigmoidal", "rectifier", "modern"}
    assert sorted(n for names in act.FAMILIES.values() for n in names) == sorted(act.ACTIVATIONS)
    assert set(act.BACKWARD_NEEDS) == set(act.ACTIVATIONS)
    assert act.SELU_ALPHA == 1.6732632423543772848170429916717
    assert act.SELU_SCALE == 1.0507009873554804934193349852946


# ----------------------------------------------------------------------------- fast == reference
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,extra", CASES, ids=CASE_IDS)
def test_fast_equals_reference(device, name, extra, dtype):
    x_cpu = _inputs(dtype)
    x = backend.to_device(x_cpu, device)
    kw = _kwargs(name, x, extra)
    kw_cpu = {k: (backend.to_numpy(v) if hasattr(v, "shape") else v) for k, v in kw.items()}
    assert act.implementation(x).__name__.endswith(device.name)
    rtol = _rtol(dtype, device)

    y = act.forward(name, x, **kw)
    assert y.dtype == dtype and y.shape == x.shape
    assert backend.device_of(y).name == device.name
    y_ref = reference.forward(name, x_cpu, **kw_cpu)  # the CPU reference, also for GPU results
    _assert_forward_close(y, y_ref, rtol)

    g_cpu = np.random.default_rng(1).standard_normal(x_cpu.shape).astype(dtype)
    g = backend.to_device(g_cpu, device)
    y_cpu = backend.to_numpy(y)
    dx = act.backward(name, g, x, y, **kw)
    assert dx.dtype == dtype and dx.shape == x.shape
    dx_ref = reference.backward(name, g_cpu, x_cpu, y_cpu, **kw_cpu)
    _assert_backward_close(dx, dx_ref, g_cpu, rtol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_prelu_backward_matches_reference(device, dtype):
    rng = np.random.default_rng(2)
    x_cpu = rng.standard_normal((40, 6, 5)).astype(dtype)
    x_cpu[0, 0] = 0.0  # the kink: PReLU'(0) = alpha, contributes 0 to dalpha
    g_cpu = rng.standard_normal(x_cpu.shape).astype(dtype)
    x, g = backend.to_device(x_cpu, device), backend.to_device(g_cpu, device)
    for alpha_cpu in (np.array([0.25], dtype), np.linspace(0.1, 0.5, 5).astype(dtype)):
        alpha = backend.to_device(alpha_cpu, device)
        grad_input, grad_alpha = act.prelu_backward(g, x, alpha)
        ref_input, ref_alpha = reference.prelu_backward(
            g_cpu.astype(np.float64), x_cpu.astype(np.float64), alpha_cpu.astype(np.float64)
        )
        assert grad_input.dtype == dtype and grad_alpha.dtype == dtype and grad_alpha.shape == alpha.shape
        _assert_backward_close(grad_input, ref_input, g_cpu, _rtol(dtype, device))
        # float64 sums in another order: 1e-10; float32 results of float64 sums: rounding only
        tol = 1e-10 if dtype == np.float64 else 1e-6
        np.testing.assert_allclose(backend.to_numpy(grad_alpha), ref_alpha, rtol=tol, atol=tol)
        # backward("prelu") is the same kernel's input gradient
        np.testing.assert_array_equal(
            backend.to_numpy(act.backward("prelu", g, x, None, alpha=alpha)), backend.to_numpy(grad_input)
        )


# ----------------------------------------------------------------------------- kinks and limits
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_derivatives_at_the_kinks(device, dtype):
    def d(name, points, **kw):
        x = backend.to_device(np.array(points, dtype=dtype), device)
        y = act.forward(name, x, **kw)
        return backend.to_numpy(act.backward(name, backend.to_device(np.ones(len(points), dtype), device), x, y, **kw))

    np.testing.assert_array_equal(d("relu", [0.0, -0.0, 1e-30, -1e-30]), [0, 0, 1, 0])
    np.testing.assert_array_equal(d("leaky_relu", [0.0, 1e-30], alpha=0.1), [dtype(0.1), 1])
    np.testing.assert_array_equal(d("prelu", [0.0, 2.0], alpha=np.float64(0.25)), [0.25, 1])
    slopes = backend.to_device(np.array([0.2, 0.3], dtype), device)
    np.testing.assert_array_equal(d("rrelu", [0.0, 2.0], slopes=slopes), [dtype(0.2), 1])
    np.testing.assert_array_equal(d("elu", [0.0, 1e-30], alpha=0.5), [0.5, 1])
    np.testing.assert_allclose(d("selu", [0.0]), [dtype(act.SELU_SCALE * act.SELU_ALPHA)], rtol=2e-7)
    noise = backend.to_device(np.array([0.5, 0.5], dtype), device)
    np.testing.assert_array_equal(d("noisy_relu", [0.0, 1.0], noise=noise), [0, 1])
    sixth = dtype(1.0 / 6.0)
    np.testing.assert_array_equal(d("hard_sigmoid", [-3.0, 3.0, -3.0001, 3.0001, 0.0]), [sixth, sixth, 0, 0, sixth])
    np.testing.assert_array_equal(d("hard_tanh", [-1.0, 1.0, -1.0001, 1.0001]), [1, 1, 0, 0])


LIMITS = {  # name: (f(-1000), f(1000), f'(-1000), f'(1000))
    "sigmoid": (0, 1, 0, 0),
    "tanh": (-1, 1, 0, 0),
    "softsign": (-1000 / 1001, 1000 / 1001, 1 / 1001**2, 1 / 1001**2),
    "hard_sigmoid": (0, 1, 0, 0),
    "hard_tanh": (-1, 1, 0, 0),
    "relu": (0, 1000, 0, 1),
    "leaky_relu": (-10, 1000, 0.01, 1),
    "prelu": (-250, 1000, 0.25, 1),
    "rrelu": (-1000 * 11 / 48, 1000, 11 / 48, 1),
    "elu": (-1, 1000, 0, 1),
    "selu": (-act.SELU_SCALE * act.SELU_ALPHA, act.SELU_SCALE * 1000, 0, act.SELU_SCALE),
    "noisy_relu": (0, 1000, 0, 1),
    "gelu": (0, 1000, 0, 1),
    "silu": (0, 1000, 0, 1),
    "softplus": (0, 1000, 0, 1),
    "mish": (0, 1000, 0, 1),
}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("name,extra", CASES, ids=CASE_IDS)
def test_limits_at_plus_minus_1000(device, name, extra, dtype):
    # evaluation-mode defaults (no slopes/noise): RReLU uses the mean slope 11/48
    x = backend.to_device(np.array([-1000.0, 1000.0], dtype), device)
    for module in (act, reference):
        y = module.forward(name, x, **extra)
        dx = module.backward(name, backend.to_device(np.ones(2, dtype), device), x, y, **extra)
        lo, hi, dlo, dhi = LIMITS[name]
        np.testing.assert_allclose(backend.to_numpy(y), [lo, hi], rtol=1e-6, atol=0)
        # atol: SELU'(-1000) = y + scale alpha cancels to a rounding residue (1 ulp of 1.76)
        np.testing.assert_allclose(backend.to_numpy(dx), [dlo, dhi], rtol=1e-6, atol=4 * np.finfo(dtype).eps)
        assert y.dtype == dtype and dx.dtype == dtype


# ----------------------------------------------------------------------------- fallback
def test_float16_falls_back_to_reference():
    x = np.linspace(-4, 4, 33).astype(np.float16)
    assert act.implementation(x) is reference
    for name in ("sigmoid", "relu", "gelu", "mish"):
        y = act.forward(name, x)
        assert y.dtype == np.float16
        np.testing.assert_array_equal(y, reference.forward(name, x))
        np.testing.assert_allclose(y, act.forward(name, x.astype(np.float64)), rtol=2e-3, atol=1e-3)


@pytest.mark.parametrize("name,extra", CASES, ids=CASE_IDS)
def test_non_contiguous_falls_back_with_the_right_answer(name, extra):
    base = _inputs(np.float64, n=200)[:1400].reshape(-1, 2)  # shape (700, 2), C-contiguous
    x = base[:, ::2]  # a strided view
    assert not x.flags.c_contiguous and act.implementation(x) is reference
    kw = _kwargs(name, x, extra)
    contiguous_kw = {k: (np.ascontiguousarray(v) if hasattr(v, "shape") else v) for k, v in kw.items()}
    y = act.forward(name, x, **kw)
    y_contiguous = act.forward(name, np.ascontiguousarray(x), **contiguous_kw)
    _assert_forward_close(y, y_contiguous, 1e-12)
    g = np.ones_like(x)
    dx = act.backward(name, g, x, y, **kw)
    dx_contiguous = act.backward(name, np.ascontiguousarray(g), np.ascontiguousarray(x), y_contiguous,
                                 **contiguous_kw)
    _assert_backward_close(dx, dx_contiguous, g, 1e-12)


def test_fortran_order_and_mixed_dtypes_fall_back():
    x = np.asfortranarray(np.random.default_rng(0).standard_normal((5, 4)))
    assert act.implementation(x) is reference
    np.testing.assert_allclose(act.forward("tanh", x), np.tanh(x), rtol=1e-15)
    y = act.forward("sigmoid", x.astype(np.float32))
    g64 = np.ones(y.shape)
    assert act.implementation(g64, y) is reference
    dx = act.backward("sigmoid", g64, None, y)
    np.testing.assert_allclose(dx, y * (1 - y), rtol=1e-6)


def test_threaded_chunks_equal_one_pass(monkeypatch):
    """Large arrays are cut over threads (PARALLEL_MIN_SIZE*): same results as one pass."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((101, 7)).astype(np.float32)
    g = rng.standard_normal(x.shape).astype(np.float32)
    alpha = np.linspace(0.1, 0.7, 7).astype(np.float32)
    serial = {}
    for threshold in (0, 16):
        monkeypatch.setattr(cpu, "PARALLEL_MIN_SIZE", threshold)
        monkeypatch.setattr(cpu, "PARALLEL_MIN_SIZE_COMPUTE", threshold)
        y = act.forward("silu", x)
        dx = act.backward("silu", g, x, y)
        gi1, ga1 = act.prelu_backward(g, x, alpha)
        gi2, ga2 = act.prelu_backward(g, x, alpha[:1])
        result = (y, dx, gi1, ga1, gi2, ga2, act.forward("prelu", x, alpha=alpha))
        if threshold == 0:
            serial = result
        else:
            for a, b in zip(result, serial):
                np.testing.assert_allclose(a, b, rtol=1e-6)


# ----------------------------------------------------------------------------- errors
def test_errors():
    x = np.ones(3, np.float32)
    with pytest.raises(ValueError, match="unknown activation 'swishy'; expected one of: sigmoid, tanh"):
        act.forward("swishy", x)
    with pytest.raises(TypeError, match="unexpected keyword beta; accepted: alpha"):
        act.forward("elu", x, beta=1.0)
    with pytest.raises(TypeError, match="expected a floating-point array .* got dtype int64"):
        act.forward("relu", np.arange(3))
    with pytest.raises(TypeError, match="expected a NumPy or CuPy array, got list"):
        act.forward("relu", [1.0, 2.0])
    with pytest.raises(ValueError, match="approximate: expected 'none' or 'tanh', got 'fast'"):
        act.forward("gelu", x, approximate="fast")
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(3,\), got \(2,\)"):
        act.backward("tanh", np.ones(2, np.float32), None, x)
    with pytest.raises(ValueError, match=r"backward reads y \(the output\), got None"):
        act.backward("sigmoid", x, x, None)
    with pytest.raises(ValueError, match=r"slopes: expected shape \(3,\) \(the shape of x\), got \(2,\)"):
        act.forward("rrelu", x, slopes=np.ones(2, np.float32))
    with pytest.raises(ValueError, match="alpha: expected 1 slope or one per channel"):
        act.forward("prelu", np.ones((2, 3), np.float32), alpha=np.ones(2, np.float32))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_short_path_equals_the_checked_path(dtype):
    """Calls without out= take the cached kernel plan; with out= they go through every check: same bits."""
    x = _inputs(dtype)[:6300].reshape(-1, 7)
    g = np.random.default_rng(4).standard_normal(x.shape).astype(dtype)
    for name, extra in CASES + [("leaky_relu", {"alpha": 0.2}), ("elu", {"alpha": 0.5})]:
        kw = _kwargs(name, x, extra)
        for _ in range(2):  # the second call finds the plan built by the first
            y = act.forward(name, x, **kw)
            np.testing.assert_array_equal(y, act.forward(name, x, out=np.empty_like(x), **kw))
            dx = act.backward(name, g, x, y, **kw)
            np.testing.assert_array_equal(dx, act.backward(name, g, x, y, out=np.empty_like(x), **kw))


def test_errors_are_raised_on_every_call():
    x = np.ones(3, np.float32)
    for _ in range(2):  # a failed call leaves no plan behind
        with pytest.raises(TypeError, match="unexpected keyword beta; accepted: alpha"):
            act.forward("elu", x, beta=1.0)
        with pytest.raises(ValueError, match="approximate: expected 'none' or 'tanh', got 'fast'"):
            act.backward("gelu", x, x, None, approximate="fast")
        with pytest.raises(ValueError, match="unknown activation 'swishy'"):
            act.backward("swishy", x, x, x)
        with pytest.raises(TypeError, match="expected a floating-point array .* got dtype int64"):
            act.forward("relu", np.arange(3))
    assert act.forward("leaky_relu", -x, alpha=0.5)[0] == -0.5 and act.forward("leaky_relu", -x, alpha=0.25)[0] == -0.25


def test_random_inputs_are_seeded_and_in_range():
    x = np.zeros((300, 40), np.float32)
    s1 = act.draw_rrelu_slopes(x, 0.1, 0.3, rng=7)
    s2 = act.draw_rrelu_slopes(x, 0.1, 0.3, rng=7)
    assert s1.dtype == np.float32 and s1.shape == x.shape
    np.testing.assert_array_equal(s1, s2)
    assert s1.min() >= 0.1 and s1.max() < 0.3 and abs(float(s1.mean()) - 0.2) < 0.005
    n = act.draw_noise(x.astype(np.float64), std=0.5, rng=1)
    assert n.dtype == np.float64 and abs(float(n.std()) - 0.5) < 0.01
    assert act.draw_noise(x.astype(np.float16), rng=1).dtype == np.float16
    assert set(act.training_kwargs("rrelu", x)) == {"slopes"}
    assert act.training_kwargs("sigmoid", x) == {}
    assert act.training_kwargs("prelu", x)["alpha"].dtype == np.float32


# ----------------------------------------------------------------------------- vector math of the CPU kernels
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vector_math_accuracy(dtype):
    """exp/expm1 within 1 ulp, tanh/log1p/erfc within a few ulps (against float64/longdouble references)."""
    from scipy.special import erfc

    dtype = np.dtype(dtype)
    eps = float(np.finfo(dtype).eps)
    hi = 85.0 if dtype == np.float32 else 700.0
    cases = {
        "vexp": (cpu.vexp, np.linspace(-hi, hi, 20001), lambda v: np.exp(v.astype(np.longdouble)), 1.0),
        "vexpm1": (cpu.vexpm1, np.concatenate([np.linspace(-30, 30, 20001), np.geomspace(1e-12, 1, 500)]),
                   lambda v: np.expm1(v.astype(np.longdouble)), 1.0),
        "vtanh": (cpu.vtanh, np.concatenate([np.linspace(-25, 25, 20001), -np.geomspace(1e-12, 1, 500)]),
                  lambda v: np.tanh(v.astype(np.longdouble)), 3.0),
        "vlog1p_unit": (cpu.vlog1p_unit, np.concatenate([np.linspace(0, 1, 20001), np.geomspace(1e-30, 1, 500)]),
                        lambda v: np.log1p(v.astype(np.longdouble)), 3.0),
        "verfc": (cpu.verfc, np.linspace(-6, 9 if dtype == np.float32 else 26, 20001),
                  lambda v: erfc(v.astype(np.float64)), 5.0 if dtype == np.float32 else 300.0),
    }
    for fname, (fn, points, exact, max_ulps) in cases.items():
        x = points.astype(dtype)
        out = np.empty_like(x)
        _run_loop(fn, x, out)
        ref = exact(x).astype(np.float64)
        normal = np.abs(ref) > np.finfo(dtype).tiny
        err = np.abs(out.astype(np.float64)[normal] - ref[normal]) / np.abs(ref[normal]) / eps
        # scipy's own erfc loses up to ~260 ulps in the far float64 tail (x > 20): the bound is on the pair
        assert err.max() <= max_ulps, (fname, float(err.max()), x[normal][np.argmax(err)])
    specials = np.array([np.inf, -np.inf, 1000.0, -1000.0], dtype)
    out = np.empty_like(specials)
    _run_loop(cpu.vexp, specials, out)
    np.testing.assert_array_equal(out, [np.inf, 0.0, np.inf, 0.0])
    _run_loop(cpu.verfc, specials, out)
    np.testing.assert_array_equal(out, [0.0, 2.0, 0.0, 2.0])
    _run_loop(cpu.vtanh, specials, out)
    np.testing.assert_array_equal(out, [1.0, -1.0, 1.0, -1.0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_erfc_and_gaussian_from_one_evaluation(dtype):
    """verfc_exp (GELU's backward): erfc bit-equal to verfc, exp(-x^2) within 4 ulps, 0 at +-inf."""
    dtype = np.dtype(dtype)
    hi = 11.0 if dtype == np.float32 else 28.0
    x = np.concatenate([np.linspace(-hi, hi, 40001), [np.inf, -np.inf]]).astype(dtype)
    both = np.empty((2, x.size), dtype)
    _both_loop(x, both)
    alone = np.empty_like(x)
    _run_loop(cpu.verfc, x, alone)
    np.testing.assert_array_equal(both[0], alone)
    exact = np.exp(-np.square(x[:-2].astype(np.longdouble))).astype(np.float64)
    normal = exact > np.finfo(dtype).tiny
    err = np.abs(both[1, :-2][normal] - exact[normal]) / exact[normal] / float(np.finfo(dtype).eps)
    assert err.max() <= 4.0, float(err.max())
    np.testing.assert_array_equal(both[1, -2:], [0.0, 0.0])


@njit(error_model="numpy")
def _both_loop(x, out):
    for i in range(x.size):
        out[0, i], out[1, i] = cpu.verfc_exp(x[i])


_LOOPS = {}


def _run_loop(fn, x, out):
    if fn not in _LOOPS:
        def loop(x, out):
            for i in range(x.size):
                out[i] = fn(x[i])

        _LOOPS[fn] = njit(error_model="numpy")(loop)
    _LOOPS[fn](x, out)


def test_out_argument(device):
    x = backend.to_device(np.linspace(-3, 3, 12, dtype=np.float32).reshape(3, 4), device)
    out = backend.to_device(np.empty((3, 4), np.float32), device)
    y = act.forward("silu", x, out=out)
    assert y is out
    np.testing.assert_array_equal(backend.to_numpy(out), backend.to_numpy(act.forward("silu", x)))
    g = backend.to_device(np.ones((3, 4), np.float32), device)
    dx_out = backend.to_device(np.empty((3, 4), np.float32), device)
    assert act.backward("silu", g, x, y, out=dx_out) is dx_out
    np.testing.assert_array_equal(backend.to_numpy(dx_out), backend.to_numpy(act.backward("silu", g, x, y)))
    with pytest.raises(ValueError, match=r"out: expected shape \(3, 4\) and dtype float32, got shape \(12,\)"):
        act.forward("silu", x, out=backend.to_device(np.empty(12, np.float32), device))


def test_out_argument_on_the_fallback_path():
    x = np.linspace(-3, 3, 12).astype(np.float16)
    out = np.empty_like(x)
    assert act.forward("tanh", x, out=out) is out
    np.testing.assert_array_equal(out, reference.forward("tanh", x))
