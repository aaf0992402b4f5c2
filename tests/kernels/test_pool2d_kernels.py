"""Fast pooling kernels (kernels.pool2d) against the book's loops (kernels.reference)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import pool2d, reference

RTOL = 1e-10


def _relative_error(fast, ref):
    fast, ref = np.asarray(fast, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert fast.shape == ref.shape
    return float(np.max(np.abs(fast - ref), initial=0.0) / max(np.max(np.abs(ref), initial=0.0), 1e-300))


def _check_all(x, pool, stride, rng):
    out, argmax = pool2d.max_pool2d_forward(x, pool, stride)
    ref_out, ref_argmax = reference.max_pool2d_forward(x, pool, stride)
    assert out.dtype == x.dtype and argmax.dtype == np.int32
    np.testing.assert_array_equal(argmax, ref_argmax)
    np.testing.assert_array_equal(out, ref_out)
    g = rng.standard_normal(out.shape).astype(x.dtype)
    grad = pool2d.max_pool2d_backward(g, argmax, x.shape, pool, stride)
    assert grad.dtype == x.dtype
    assert _relative_error(grad, reference.max_pool2d_backward(g, ref_argmax, x.shape, pool, stride)) < RTOL

    avg = pool2d.avg_pool2d_forward(x, pool, stride)
    assert avg.dtype == x.dtype
    assert _relative_error(avg, reference.avg_pool2d_forward(x, pool, stride)) < RTOL
    grad = pool2d.avg_pool2d_backward(g, x.shape, pool, stride)
    assert grad.dtype == x.dtype
    assert _relative_error(grad, reference.avg_pool2d_backward(g, x.shape, pool, stride)) < RTOL


def test_random_geometries_match_reference_float64():
    rng = np.random.default_rng(2025)
    kinds = {"overlapping": 0, "not dividing": 0}
    for trial in range(40):
        shape = (int(rng.integers(1, 5)), *(int(v) for v in rng.integers(5, 18, 2)), int(rng.integers(1, 6)))
        pool = tuple(int(v) for v in rng.integers(1, 6, 2))
        stride = None if trial % 4 == 0 else tuple(int(v) for v in rng.integers(1, 4, 2))
        s = pool if stride is None else stride
        kinds["overlapping"] += s[0] < pool[0] or s[1] < pool[1]
        kinds["not dividing"] += (shape[1] - pool[0]) % s[0] != 0 or (shape[2] - pool[1]) % s[1] != 0
        x = rng.standard_normal(shape)
        if trial % 5 == 0:
            x = np.round(x)  # many ties: the first maximum must win everywhere
        _check_all(x, pool, stride, rng)
    assert kinds["overlapping"] >= 5 and kinds["not dividing"] >= 5


@pytest.mark.parametrize(
    "shape, pool, stride",
    [
        ((2, 4, 4, 3), (2, 2), None),     # windows tile the input exactly
        ((1, 5, 7, 2), (5, 7), None),     # pool equal to the input: one window
        ((2, 9, 8, 1), (2, 2), (3, 3)),   # stride larger than the pool: gaps get zero gradient
        ((1, 6, 6, 2), (1, 1), None),     # 1x1 pool: identity
        ((3, 7, 5, 2), (3, 2), (1, 1)),   # heavy overlap
        ((1, 1, 1, 4), (1, 1), (2, 2)),   # 1x1 input
    ],
)
def test_edge_geometries(shape, pool, stride):
    rng = np.random.default_rng(8)
    _check_all(rng.standard_normal(shape), pool, stride, rng)


def test_ties_first_maximum_wins_and_gets_the_whole_gradient():
    x = np.array([[3.0, 3.0], [1.0, 3.0]]).reshape(1, 2, 2, 1)
    out, argmax = pool2d.max_pool2d_forward(x)
    assert out[0, 0, 0, 0] == 3.0 and argmax[0, 0, 0, 0] == 0
    grad = pool2d.max_pool2d_backward(np.ones((1, 1, 1, 1)), argmax, x.shape)
    np.testing.assert_array_equal(grad.reshape(2, 2), [[1.0, 0.0], [0.0, 0.0]])


def test_nan_propagates_through_max_pooling():
    x = np.array([1.0, np.nan, 5.0, np.nan]).reshape(1, 2, 2, 1)
    out, argmax = pool2d.max_pool2d_forward(x)
    assert np.isnan(out[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 1  # the first NaN, like np.argmax


def test_global_average_pooling_matches_reference():
    rng = np.random.default_rng(9)
    for shape in [(1, 1, 1, 1), (3, 5, 7, 4), (2, 17, 6, 5)]:
        x = rng.standard_normal(shape)
        out = pool2d.global_avg_pool2d_forward(x)
        assert out.shape == (shape[0], 1, 1, shape[3]) and out.dtype == x.dtype
        assert _relative_error(out, reference.global_avg_pool2d_forward(x)) < RTOL
        g = rng.standard_normal(out.shape)
        grad = pool2d.global_avg_pool2d_backward(g, shape)
        assert grad.shape == shape and grad.dtype == g.dtype
        assert _relative_error(grad, reference.global_avg_pool2d_backward(g, shape)) < RTOL


def test_float32_and_float16_keep_their_dtype():
    rng = np.random.default_rng(10)
    x64 = rng.standard_normal((2, 6, 6, 3))
    for dtype, tol in ((np.float32, 1e-6), (np.float16, 1e-3)):
        x = x64.astype(dtype)
        out, argmax = pool2d.max_pool2d_forward(x, 3, 2)
        assert out.dtype == dtype
        np.testing.assert_array_equal(out, reference.max_pool2d_forward(x, 3, 2)[0])
        g = np.ones(out.shape, dtype)
        assert pool2d.max_pool2d_backward(g, argmax, x.shape, 3, 2).dtype == dtype
        avg = pool2d.avg_pool2d_forward(x, 3, 2)
        assert avg.dtype == dtype
        assert _relative_error(avg, reference.avg_pool2d_forward(x64, 3, 2)) < tol
        assert pool2d.avg_pool2d_backward(g, x.shape, 3, 2).dtype == dtype
        gap = pool2d.global_avg_pool2d_forward(x)
        assert gap.dtype == dtype
        assert _relative_error(gap, reference.global_avg_pool2d_forward(x64)) < tol
        assert pool2d.global_avg_pool2d_backward(gap, x.shape).dtype == dtype


def test_non_contiguous_input_is_handled():
    rng = np.random.default_rng(15)
    x = rng.standard_normal((2, 8, 9, 3)).transpose(0, 2, 1, 3)
    assert not x.flags.c_contiguous
    _check_all(x, (2, 3), (2, 1), rng)


def test_pool_larger_than_input_raises():
    with pytest.raises(ValueError, match="larger than the input"):
        pool2d.max_pool2d_forward(np.zeros((1, 3, 3, 1)), (4, 2))
    with pytest.raises(ValueError, match="larger than the input"):
        pool2d.avg_pool2d_forward(np.zeros((1, 3, 3, 1)), (2, 5))


def test_rows_split_over_threads_match_reference(monkeypatch):
    # Force the multi-threaded row split on small inputs (it needs >= 2 Numba threads to split).
    monkeypatch.setattr(pool2d.cpu, "PARALLEL_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(16)
    for shape, pool, stride in [((3, 9, 8, 2), (2, 2), None), ((2, 9, 7, 3), (3, 2), (1, 2)),
                                ((4, 8, 8, 1), (2, 2), (3, 3))]:
        x = rng.standard_normal(shape)
        _check_all(x, pool, stride, rng)
        g = rng.standard_normal((shape[0], 1, 1, shape[3]))
        assert _relative_error(pool2d.global_avg_pool2d_forward(x), reference.global_avg_pool2d_forward(x)) < RTOL
        assert _relative_error(pool2d.global_avg_pool2d_backward(g, shape),
                               reference.global_avg_pool2d_backward(g, shape)) < RTOL


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-6), (np.float64, 1e-12)])
def test_gpu_matches_cpu(dtype, rtol):
    import backend

    if not backend.has_gpu():
        pytest.skip(f"no GPU: {backend.unavailable_reason()}")
    rng = np.random.default_rng(22)
    for shape, pool, stride in [((4, 17, 13, 5), (2, 2), None), ((2, 9, 11, 3), (3, 2), (1, 2)),
                                ((3, 8, 9, 2), (2, 2), (3, 3))]:
        x = rng.standard_normal(shape).astype(dtype)
        gx = backend.to_device(x, "gpu")
        out, argmax = pool2d.max_pool2d_forward(gx, pool, stride)
        ref_out, ref_argmax = pool2d.max_pool2d_forward(x, pool, stride)
        assert backend.is_cupy_array(out) and out.dtype == dtype
        np.testing.assert_array_equal(backend.to_numpy(argmax), ref_argmax)
        np.testing.assert_array_equal(backend.to_numpy(out), ref_out)
        g = rng.standard_normal(ref_out.shape).astype(dtype)
        gg = backend.to_device(g, "gpu")
        pairs = [
            (pool2d.max_pool2d_backward(gg, argmax, shape, pool, stride),
             pool2d.max_pool2d_backward(g, ref_argmax, shape, pool, stride)),
            (pool2d.avg_pool2d_forward(gx, pool, stride), pool2d.avg_pool2d_forward(x, pool, stride)),
            (pool2d.avg_pool2d_backward(gg, shape, pool, stride), pool2d.avg_pool2d_backward(g, shape, pool, stride)),
            (pool2d.global_avg_pool2d_forward(gx), pool2d.global_avg_pool2d_forward(x)),
            (pool2d.global_avg_pool2d_backward(gg[:, :1, :1], shape),
             pool2d.global_avg_pool2d_backward(g[:, :1, :1], shape)),
        ]
        for on_gpu, on_cpu in pairs:
            assert on_gpu.dtype == dtype
            assert _relative_error(backend.to_numpy(on_gpu), on_cpu) < rtol


def test_unrolled_2x2_kernels_match_reference_and_general_kernels(monkeypatch):
    # 2x2 windows with stride 2 (None or explicit) run the unrolled kernels at default settings;
    # odd sizes leave a last row/column outside every window. Small integers make ties, plus NaNs.
    rng = np.random.default_rng(22)
    for shape in [(2, 6, 8, 3), (3, 7, 5, 17), (1, 2, 2, 1), (2, 9, 11, 16)]:
        x = rng.integers(-2, 3, shape).astype(np.float64)
        x.reshape(-1)[rng.choice(x.size, 3, replace=False)] = np.nan
        for stride in (None, (2, 2)):
            assert pool2d._is_2x2(2, 2, 2, 2)
            out, argmax = pool2d.max_pool2d_forward(x, 2, stride)
            ref_out, ref_argmax = reference.max_pool2d_forward(x, 2, stride)
            np.testing.assert_array_equal(argmax, ref_argmax)
            np.testing.assert_array_equal(out, ref_out)
        _check_all(rng.standard_normal(shape), (2, 2), None, rng)
        for dtype in (np.float32, np.float64):
            xs = rng.standard_normal(shape).astype(dtype)
            g = rng.standard_normal((shape[0], shape[1] // 2, shape[2] // 2, shape[3])).astype(dtype)
            fast = [*pool2d.max_pool2d_forward(xs), pool2d.avg_pool2d_forward(xs),
                    pool2d.max_pool2d_backward(g, pool2d.max_pool2d_forward(xs)[1], shape),
                    pool2d.avg_pool2d_backward(g, shape)]
            with monkeypatch.context() as patch:
                patch.setattr(pool2d.cpu, "_is_2x2", lambda *args: False)
                general = [*pool2d.max_pool2d_forward(xs), pool2d.avg_pool2d_forward(xs),
                           pool2d.max_pool2d_backward(g, pool2d.max_pool2d_forward(xs)[1], shape),
                           pool2d.avg_pool2d_backward(g, shape)]
            for a, b in zip(fast, general):
                assert a.dtype == b.dtype and a.shape == b.shape
                np.testing.assert_array_equal(a, b)  # same operations in the same order: bitwise equal
