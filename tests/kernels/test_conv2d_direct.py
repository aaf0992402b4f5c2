"""The direct convolution kernels (kernels.conv2d.direct) against the book's loops, and the path choice."""

from __future__ import annotations

import numpy as np
import pytest

from kernels import conv2d, reference
from kernels.conv2d import cpu, direct

GEOMETRIES = [  # (B, H, W, C), F, (kh, kw), padding, stride
    ((2, 7, 9, 8), 16, (3, 3), 1, 1),     # the thin layer of the benchmark, small
    ((2, 6, 21, 8), 8, (3, 3), 1, 1),     # 8 filters: 16 x 8 tiles; widths past one tile
    ((3, 8, 8, 16), 32, (3, 3), 0, 1),    # two channel tiles, no padding
    ((2, 9, 7, 3), 16, (3, 3), 2, 1),     # 3 channels: 9 taps per kernel row (no direct backward)
    ((1, 10, 11, 8), 48, (5, 5), 2, 1),   # 5x5
    ((2, 5, 6, 16), 24, (2, 3), (1, 2), 1),  # non-square kernel, 16 x 8 tiles after 16 x 16
    ((2, 5, 19, 1), 16, (3, 3), 1, 1),    # one channel (the digits CNN's first layer)
    ((2, 9, 37, 16), 32, (3, 3), 1, 2),   # stride 2 (a transposed convolution's backward), 19 columns: 2 tiles
    ((2, 11, 10, 8), 16, (3, 3), 1, (3, 2)),  # uneven strides; rows and columns left over
    ((1, 12, 12, 8), 8, (2, 2), 0, 3),    # stride above the kernel: pixels no tap reaches
]


def _relative_error(fast, ref):
    return float(np.max(np.abs(fast - ref)) / np.max(np.abs(ref)))


@pytest.mark.parametrize("shape, filters, kernel, padding, stride", GEOMETRIES)
def test_direct_kernels_match_the_book_loops(shape, filters, kernel, padding, stride):
    rng = np.random.default_rng(sum(shape) + filters)
    (kh, kw), (ph, pw), stride = kernel, reference.as_pair(padding), reference.as_pair(stride)
    x = rng.standard_normal(shape)
    k = rng.standard_normal((filters, shape[3], kh, kw))
    b = rng.standard_normal((filters, 1))
    y = direct.forward(x, k, b, ph, pw, stride)
    assert y.dtype == np.float64
    assert _relative_error(y, reference.conv2d_forward(x, k, b, stride, (ph, pw))) < 1e-12
    g = rng.standard_normal(y.shape)
    if filters % 16 == 0 and (kw * shape[3]) % 8 == 0:
        dk = direct.backward_kernels(g, x, k.shape, ph, pw, stride)
        assert dk.shape == k.shape and dk.flags.c_contiguous
        assert _relative_error(dk, reference.conv2d_backward_kernels(g, x, k.shape, stride, (ph, pw))) < 1e-12
    if shape[3] % 8 == 0:  # at a stride > 1: one correlation per phase
        dx = direct.backward_input(g, k, x.shape, ph, pw, stride)
        assert dx.shape == x.shape
        assert _relative_error(dx, reference.conv2d_backward_input(g, k, x.shape, stride, (ph, pw))) < 1e-12


def test_float32_through_the_dispatcher_takes_the_direct_path_and_matches(monkeypatch):
    calls = []
    for name in ("forward", "backward_kernels"):
        original = getattr(direct, name)
        monkeypatch.setattr(direct, name, lambda *a, _f=original, _n=name: calls.append(_n) or _f(*a))
    rng = np.random.default_rng(3)
    x = rng.standard_normal((32, 28, 28, 8)).astype(np.float32)
    k = rng.standard_normal((16, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal((16, 1)).astype(np.float32)
    y = conv2d.conv2d_forward(x, k, b, 1, 1)
    g = rng.standard_normal(y.shape).astype(np.float32)
    dx = conv2d.conv2d_backward_input(g, k, x.shape, 1, 1)
    dk = conv2d.conv2d_backward_kernels(g, x, k.shape, 1, 1)
    assert calls == ["forward", "forward", "backward_kernels"]  # backward-input: the forward of g
    x64, k64, b64, g64 = (a.astype(np.float64) for a in (x, k, b, g))
    for fast, ref in ((y, reference.conv2d_forward(x64, k64, b64, 1, 1)),
                      (dx, reference.conv2d_backward_input(g64, k64, x.shape, 1, 1)),
                      (dk, reference.conv2d_backward_kernels(g64, x64, k.shape, 1, 1))):
        assert fast.dtype == np.float32 and _relative_error(fast, ref) < 1e-5


def test_direct_forward_gives_the_bits_of_the_outer_product_gemm(monkeypatch):
    """A multiple of 16 filters: the direct tiles and im2col + gemm_kf sum the same products in the same order."""
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 13, 30, 8)).astype(np.float32)
    k = rng.standard_normal((32, 8, 3, 3)).astype(np.float32)
    b = rng.standard_normal((32, 1)).astype(np.float32)
    monkeypatch.setattr(cpu, "USE_DIRECT", False)
    monkeypatch.setattr(cpu, "NUMBA_GEMM_MIN_MACS", 0)
    gemm = conv2d.conv2d_forward(x, k, b, 1, 1)
    np.testing.assert_array_equal(direct.forward(x, k, b, 1, 1), gemm)


def test_strided_backward_input_by_phases_through_the_dispatcher(monkeypatch):
    """A transposed convolution's forward (stride 2): the phases where they cost less than GEMM + col2im."""
    calls = []
    original = direct.backward_input
    monkeypatch.setattr(direct, "backward_input", lambda *a: calls.append(a[-1]) or original(*a))
    rng = np.random.default_rng(5)
    g = rng.standard_normal((32, 14, 14, 32)).astype(np.float32)
    k = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)
    dx = conv2d.conv2d_backward_input(g, k, (32, 28, 28, 16), 2, 1)
    assert calls == [(2, 2)] and dx.dtype == np.float32
    ref = reference.conv2d_backward_input(g[:2].astype(np.float64), k.astype(np.float64), (2, 28, 28, 16), 2, 1)
    assert _relative_error(dx[:2], ref) < 1e-5


def test_path_choice_by_estimated_cost():
    thin = ((32, 28, 28, 8), (16, 8, 3, 3), (1, 1), (1, 1), 28, 28)
    assert cpu._direct_pays(np.dtype(np.float32), *thin)
    assert cpu._direct_kernels_pays(np.dtype(np.float32), *thin)
    assert not cpu._direct_pays(np.dtype(np.float64), *thin)  # 16-row float64 tiles do not fit the registers
    strided = ((32, 28, 28, 16), (32, 16, 3, 3), (2, 2), (1, 1), 14, 14)  # a transposed convolution's backward
    assert cpu._direct_pays(np.dtype(np.float32), *strided) and cpu._direct_kernels_pays(np.dtype(np.float32), *strided)
    assert not cpu._direct_pays(np.dtype(np.float32), thin[0], (12, 8, 3, 3), *thin[2:])  # not a multiple of 8
    wide = ((16, 56, 56, 64), (64, 64, 3, 3), (1, 1), (1, 1), 56, 56)
    assert not cpu._direct_kernels_pays(np.dtype(np.float32), *wide)  # 192 taps per kernel row: the GEMM
    # the GEMM paths: the cost model, unless a fixed threshold is set
    assert cpu._numba_gemm_pays(64, 288, 65536) and not cpu._numba_gemm_pays(4, 9, 16)


def test_unsupported_shapes_are_refused():
    x = np.zeros((1, 5, 5, 3), np.float32)
    with pytest.raises(ValueError, match="multiple of 8 filters, got 12"):
        direct.forward(x, np.zeros((12, 3, 3, 3), np.float32), np.zeros((12, 1), np.float32), 1, 1)
    with pytest.raises(ValueError, match=r"multiple of 16 filters and kw \* C a multiple of 8, got \(16, 3, 3, 3\)"):
        direct.backward_kernels(np.zeros((1, 5, 5, 16), np.float32), x, (16, 3, 3, 3), 1, 1)
