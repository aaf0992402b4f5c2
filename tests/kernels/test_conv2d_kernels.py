"""Fast convolution kernels (kernels.conv2d) against the book's loops (kernels.reference)."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import conv2d, reference

RTOL = 1e-10


def _relative_error(fast, ref):
    fast, ref = np.asarray(fast, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert fast.shape == ref.shape
    return float(np.max(np.abs(fast - ref), initial=0.0) / max(np.max(np.abs(ref), initial=0.0), 1e-300))


def _random_case(rng):
    """A random geometry (batch 1-4, sizes 5-17, channels 1-5, kernel 1-5, stride 1-3, padding 0-2)."""
    while True:
        batch = int(rng.integers(1, 5))
        height, width = (int(v) for v in rng.integers(5, 18, 2))
        channels, filters = (int(v) for v in rng.integers(1, 6, 2))
        kh, kw = (int(v) for v in rng.integers(1, 6, 2))
        stride = tuple(int(v) for v in rng.integers(1, 4, 2))
        padding = tuple(int(v) for v in rng.integers(0, 3, 2))
        if height + 2 * padding[0] >= kh and width + 2 * padding[1] >= kw:
            return (batch, height, width, channels), (filters, channels, kh, kw), stride, padding


def _check_all(x, kernels, biases, stride, padding, rtol=RTOL, rng=None):
    rng = rng or np.random.default_rng(0)
    out = conv2d.conv2d_forward(x, kernels, biases, stride, padding)
    ref = reference.conv2d_forward(x, kernels, biases, stride, padding)
    assert out.dtype == x.dtype and out.shape == ref.shape
    assert _relative_error(out, ref) < rtol
    g = rng.standard_normal(out.shape).astype(x.dtype)
    grad_input = conv2d.conv2d_backward_input(g, kernels, x.shape, stride, padding)
    assert grad_input.shape == x.shape and grad_input.dtype == x.dtype
    assert _relative_error(grad_input, reference.conv2d_backward_input(g, kernels, x.shape, stride, padding)) < rtol
    grad_kernels = conv2d.conv2d_backward_kernels(g, x, kernels.shape, stride, padding)
    assert grad_kernels.shape == kernels.shape and grad_kernels.dtype == x.dtype
    assert _relative_error(grad_kernels, reference.conv2d_backward_kernels(g, x, kernels.shape, stride, padding)) < rtol
    grad_bias = conv2d.conv2d_backward_bias(g)
    assert grad_bias.shape == (kernels.shape[0], 1) and grad_bias.dtype == x.dtype
    assert _relative_error(grad_bias, reference.conv2d_backward_bias(g)) < rtol


def test_random_geometries_match_reference_float64():
    rng = np.random.default_rng(2024)
    for _ in range(30):
        x_shape, k_shape, stride, padding = _random_case(rng)
        x = rng.standard_normal(x_shape)
        kernels = rng.standard_normal(k_shape)
        biases = rng.standard_normal((k_shape[0], 1))
        _check_all(x, kernels, biases, stride, padding, rng=rng)


@pytest.mark.parametrize(
    "x_shape, k_shape, stride, padding",
    [
        ((2, 1, 1, 3), (4, 3, 3, 3), 1, 1),          # 1x1 input, padding makes room for a 3x3 kernel
        ((1, 1, 1, 2), (2, 2, 5, 5), 1, 2),          # kernel equal to the padded 1x1 input
        ((2, 5, 7, 2), (3, 2, 5, 7), 1, 0),          # kernel equal to the input: 1x1 output
        ((2, 6, 8, 2), (3, 2, 7, 10), 1, (1, 1)),    # kernel equal to the padded input
        ((3, 9, 10, 2), (2, 2, 2, 1), (3, 3), 0),    # stride larger than the kernel: skipped pixels
        ((2, 11, 7, 3), (2, 3, 1, 1), (3, 2), (2, 1)),  # 1x1 kernel on padding-only rows
        ((1, 5, 5, 1), (1, 1, 3, 3), (4, 4), 2),     # stride larger than kernel with padding
    ],
)
def test_edge_geometries(x_shape, k_shape, stride, padding):
    rng = np.random.default_rng(7)
    _check_all(rng.standard_normal(x_shape), rng.standard_normal(k_shape),
               rng.standard_normal((k_shape[0], 1)), stride, padding, rng=rng)


def test_chunk_boundaries_inside_an_image(monkeypatch):
    # Chunks of a few output rows split the images: halos must add up across chunks.
    monkeypatch.setattr(conv2d.cpu, "CHUNK_BYTES", 3 * 7 * 2 * 2 * 2 * 8)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((3, 9, 7, 2))
    _check_all(x, rng.standard_normal((3, 2, 2, 2)), rng.standard_normal((3, 1)), (1, 1), (1, 1), rng=rng)
    _check_all(x, rng.standard_normal((2, 2, 3, 3)), rng.standard_normal((2, 1)), (2, 1), (2, 0), rng=rng)


def test_im2col_and_col2im_are_adjoint():
    # <im2col(x), C> == <x, col2im(C)>: col2im is exactly the transpose of im2col.
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 7, 6, 3))
    kh, kw, sh, sw, ph, pw = 3, 2, 2, 1, 1, 2
    out_h, out_w = reference.conv2d_output_size((7, 6), (kh, kw), (sh, sw), (ph, pw))
    rows = 2 * out_h
    cols = np.empty((rows * out_w, kh * kw * 3))
    conv2d.im2col(x, 0, rows, kh, kw, sh, sw, ph, pw, 1, 1, out_h, out_w, cols)
    c = rng.standard_normal(cols.shape)
    back = np.zeros_like(x)
    conv2d.col2im(c, 0, rows, kh, kw, sh, sw, ph, pw, 1, 1, out_h, out_w, back)
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


def test_float32_keeps_dtype_and_matches_float64():
    rng = np.random.default_rng(11)
    x = rng.standard_normal((2, 8, 9, 3))
    kernels = rng.standard_normal((4, 3, 3, 3))
    biases = rng.standard_normal((4, 1))
    ref = reference.conv2d_forward(x, kernels, biases, 1, 1)
    out = conv2d.conv2d_forward(x.astype(np.float32), kernels.astype(np.float32), biases.astype(np.float32), 1, 1)
    assert out.dtype == np.float32
    assert _relative_error(out, ref) < 1e-5
    g = rng.standard_normal(out.shape).astype(np.float32)
    assert conv2d.conv2d_backward_input(g, kernels.astype(np.float32), x.shape, 1, 1).dtype == np.float32
    assert conv2d.conv2d_backward_kernels(g, x.astype(np.float32), kernels.shape, 1, 1).dtype == np.float32
    assert conv2d.conv2d_backward_bias(g).dtype == np.float32


def test_float16_is_computed_in_float32_and_rounded_back():
    rng = np.random.default_rng(12)
    x = rng.standard_normal((1, 5, 5, 2)).astype(np.float16)
    kernels = rng.standard_normal((2, 2, 3, 3)).astype(np.float16)
    biases = np.zeros((2, 1), np.float16)
    out = conv2d.conv2d_forward(x, kernels, biases, 1, 1)
    assert out.dtype == np.float16
    ref = reference.conv2d_forward(x.astype(np.float64), kernels.astype(np.float64), biases.astype(np.float64), 1, 1)
    assert _relative_error(out, ref) < 2e-3


def test_unsupported_float_dtype_falls_back_to_reference():
    if np.dtype(np.longdouble) == np.dtype(np.float64):
        pytest.skip("longdouble is float64 on this platform")
    rng = np.random.default_rng(13)
    x = rng.standard_normal((1, 4, 4, 1)).astype(np.longdouble)
    kernels = rng.standard_normal((1, 1, 2, 2)).astype(np.longdouble)
    biases = np.zeros((1, 1), np.longdouble)
    out = conv2d.conv2d_forward(x, kernels, biases, 1, 0)
    assert out.dtype == np.longdouble
    assert _relative_error(out, reference.conv2d_forward(x, kernels, biases, 1, 0)) < 1e-15


def test_non_contiguous_inputs_are_handled():
    rng = np.random.default_rng(14)
    base = rng.standard_normal((3, 6, 7, 2))
    x = base.transpose(0, 2, 1, 3)  # (3, 7, 6, 2), not C-contiguous
    kernels = rng.standard_normal((2, 3, 2, 2)).transpose(0, 3, 2, 1)[:, :2]  # strided view (2, 2, 2, 3)
    biases = rng.standard_normal((2, 1))
    assert not x.flags.c_contiguous and not kernels.flags.c_contiguous
    _check_all(x, kernels, biases, 1, (1, 0), rng=rng)


def test_kernel_larger_than_padded_input_raises():
    x = np.zeros((1, 3, 3, 1))
    with pytest.raises(ValueError, match="larger than the padded input"):
        conv2d.conv2d_forward(x, np.zeros((1, 1, 6, 2)), np.zeros((1, 1)), 1, 1)


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_gpu_matches_cpu(dtype, rtol):
    import backend

    if not backend.has_gpu():
        pytest.skip(f"no GPU: {backend.unavailable_reason()}")
    rng = np.random.default_rng(21)
    for x_shape, k_shape, stride, padding in [((4, 17, 13, 5), (6, 5, 3, 3), 1, 1),
                                              ((2, 9, 11, 3), (4, 3, 5, 2), (2, 3), (2, 0))]:
        x = rng.standard_normal(x_shape).astype(dtype)
        k = rng.standard_normal(k_shape).astype(dtype)
        b = rng.standard_normal((k_shape[0], 1)).astype(dtype)
        gx, gk, gb = (backend.to_device(a, "gpu") for a in (x, k, b))
        out = conv2d.conv2d_forward(gx, gk, gb, stride, padding)
        assert backend.is_cupy_array(out) and out.dtype == dtype
        assert _relative_error(backend.to_numpy(out), conv2d.conv2d_forward(x, k, b, stride, padding)) < rtol
        g = rng.standard_normal(out.shape).astype(dtype)
        gg = backend.to_device(g, "gpu")
        pairs = [
            (conv2d.conv2d_backward_input(gg, gk, x.shape, stride, padding),
             conv2d.conv2d_backward_input(g, k, x.shape, stride, padding)),
            (conv2d.conv2d_backward_kernels(gg, gx, k.shape, stride, padding),
             conv2d.conv2d_backward_kernels(g, x, k.shape, stride, padding)),
            (conv2d.conv2d_backward_bias(gg), conv2d.conv2d_backward_bias(g)),
        ]
        for on_gpu, on_cpu in pairs:
            assert on_gpu.dtype == dtype
            assert _relative_error(backend.to_numpy(on_gpu), on_cpu) < rtol


@pytest.mark.parametrize(
    "x_shape, k_shape, stride, padding",
    [
        ((1, 24, 26, 32), (48, 32, 3, 3), 1, 1),           # stride 1: backward-input as a forward of g
        ((2, 33, 33, 32), (51, 32, 3, 3), 2, 1),           # strided: Numba GEMM + col2im per image
        ((2, 40, 41, 64), (19, 64, 2, 3), (1, 2), (1, 0)),  # filter count not a multiple of the 4x4 blocks
    ],
)
def test_numba_gemm_path_matches_reference(x_shape, k_shape, stride, padding, monkeypatch):
    # A fixed threshold of 0 multiply-adds sends the three products to the blocked Numba matrix products
    # (not NumPy's GEMM, nor the direct kernels): they are what is compared to the book's loops.
    monkeypatch.setattr(conv2d.cpu, "NUMBA_GEMM_MIN_MACS", 0)
    filters, channels, kh, kw = k_shape
    (sh, sw), (ph, pw) = reference.as_pair(stride), reference.as_pair(padding)
    out_h, out_w = reference.conv2d_output_size(x_shape[1:3], (kh, kw), (sh, sw), (ph, pw))
    rows = x_shape[0] * out_h * out_w
    assert conv2d._numba_gemm_pays(filters, kh * kw * channels, rows)
    assert conv2d._numba_gemm_pays(kh * kw * channels, filters, rows)
    if stride == 1:
        assert conv2d._numba_gemm_pays(channels, kh * kw * filters, x_shape[0] * x_shape[1] * x_shape[2])
    rng = np.random.default_rng(11)
    _check_all(rng.standard_normal(x_shape), rng.standard_normal(k_shape),
               rng.standard_normal((k_shape[0], 1)), stride, padding, rng=rng)


def test_random_geometries_on_the_numba_gemm_path(monkeypatch):
    # Force the Numba GEMM path for every size, so the random geometries exercise it too.
    monkeypatch.setattr(conv2d.cpu, "_numba_gemm_pays", lambda n_outputs, k_total, rows: True)
    rng = np.random.default_rng(99)
    for _ in range(15):
        x_shape, k_shape, stride, padding = _random_case(rng)
        _check_all(rng.standard_normal(x_shape), rng.standard_normal(k_shape),
                   rng.standard_normal((k_shape[0], 1)), stride, padding, rng=rng)


@pytest.mark.parametrize("n, k_total, filters", [(8, 1, 16), (29, 75, 48), (16, 40, 32), (13, 9, 53), (5, 7, 16)])
@pytest.mark.parametrize("accumulate", [False, True])
def test_gemm_kf_matches_numpy(n, k_total, filters, accumulate):
    # Outer-product GEMM: 8x32 and 8x16 register tiles, leftover rows (n % 8) and channels (F % 16).
    rng = np.random.default_rng(n * 100 + filters)
    a = rng.standard_normal((n + 3, k_total + 2))  # rows past n and columns past k_total are ignored
    w = rng.standard_normal((k_total + 2, filters))
    bias = rng.standard_normal(filters)
    c = rng.standard_normal((n + 3, filters))
    expected = c.copy()
    expected[:n] = a[:n, :k_total] @ w[:k_total] + bias + (c[:n] if accumulate else 0)
    conv2d.gemm_kf(a, w, bias, c, n, k_total, accumulate)
    assert c.dtype == np.float64
    np.testing.assert_allclose(c, expected, rtol=1e-12, atol=1e-12)


def test_random_geometries_on_the_outer_product_path(monkeypatch):
    # Filter counts (and, for backward-input, kh*kw*C) that are multiples of 16 run gemm_kf; forced for every size.
    monkeypatch.setattr(conv2d.cpu, "_numba_gemm_pays", lambda n_outputs, k_total, rows: True)
    rng = np.random.default_rng(7)
    for _ in range(10):
        (batch, height, width, _), (_, _, kh, kw), stride, padding = _random_case(rng)
        channels = int(rng.choice([1, 3, 16]))
        filters = int(rng.choice([16, 32, 48]))
        _check_all(rng.standard_normal((batch, height, width, channels)),
                   rng.standard_normal((filters, channels, kh, kw)), rng.standard_normal((filters, 1)),
                   stride, padding, rng=rng)
