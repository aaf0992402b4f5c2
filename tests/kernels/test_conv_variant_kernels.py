"""Kernels of the convolution variants (dilation, groups, "same"; depthwise, transposed, 1-D) against their loops.

Every fast path (the CPU's im2col + BLAS and Numba-GEMM paths of kernels.conv2d,
the Numba depthwise kernels, the transposed and 1-D convolutions built on
conv2d, and the GPU modules' array-operation steps run on NumPy arrays) is
compared with the book-style loops of the families' ``reference`` modules.
"""

from __future__ import annotations

import numpy as np
import pytest

from kernels import conv1d, conv2d, conv_transpose2d, cuda_launch, depthwise2d
from kernels.conv1d import reference as conv1d_ref
from kernels.conv2d import reference as conv_ref
from kernels.conv_transpose2d import reference as transpose_ref
from kernels.depthwise2d import gpu as depthwise_gpu
from kernels.depthwise2d import reference as depthwise_ref
from kernels.geometry import check_padding, conv2d_output_size, padding_amounts, split_padding


def rel(fast, ref):
    fast, ref = np.asarray(fast, np.float64), np.asarray(ref, np.float64)
    assert fast.shape == ref.shape, (fast.shape, ref.shape)
    return float(np.max(np.abs(fast - ref), initial=0.0) / max(np.max(np.abs(ref), initial=0.0), 1e-300))


def _pad_explicit(x, padding, kernel_hw, stride, dilation):
    (top, bottom), (left, right) = padding_amounts(padding, x.shape[1:3], kernel_hw, stride, dilation)
    return np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0))), (top, left)


CONV_CASES = [  # x shape, kernel shape, stride, padding, dilation, groups
    ((2, 9, 8, 4), (6, 2, 3, 2), (1, 2), (2, 1), (2, 1), 2),
    ((1, 7, 7, 6), (3, 2, 3, 3), 2, 1, 2, 3),
    ((2, 8, 9, 3), (4, 3, 2, 2), 2, "same", 1, 1),       # even kernel, stride 2: the odd zero after
    ((2, 6, 5, 2), (4, 1, 3, 3), 1, "same", (2, 1), 2),
    ((1, 5, 5, 3), (2, 3, 3, 3), 1, "valid", 1, 1),
]


@pytest.mark.parametrize("numba_gemm", [False, True], ids=["blas", "numba-gemm"])
@pytest.mark.parametrize("x_shape, k_shape, stride, padding, dilation, groups", CONV_CASES)
def test_conv2d_dilation_groups_and_same_match_the_loops(monkeypatch, numba_gemm, x_shape, k_shape, stride,
                                                         padding, dilation, groups):
    if numba_gemm:
        monkeypatch.setattr(conv2d.cpu, "NUMBA_GEMM_MIN_MACS", 0)
    rng = np.random.default_rng(0)
    x, k, b = rng.standard_normal(x_shape), rng.standard_normal(k_shape), rng.standard_normal((k_shape[0], 1))
    out = conv2d.conv2d_forward(x, k, b, stride, padding, dilation, groups)
    xpad, _ = _pad_explicit(x, padding, k_shape[2:], stride, dilation)  # the loops take explicit padding
    assert rel(out, conv_ref.conv2d_forward(xpad, k, b, stride, 0, dilation, groups)) < 1e-12
    g = rng.standard_normal(out.shape)
    dx_pad = conv_ref.conv2d_backward_input(g, k, xpad.shape, stride, 0, dilation, groups)
    (top, bottom), (left, right) = padding_amounts(padding, x_shape[1:3], k_shape[2:], stride, dilation)
    dx = dx_pad[:, top:top + x_shape[1], left:left + x_shape[2]]
    assert rel(conv2d.conv2d_backward_input(g, k, x.shape, stride, padding, dilation, groups), dx) < 1e-12
    assert rel(conv2d.conv2d_backward_kernels(g, x, k.shape, stride, padding, dilation, groups),
               conv_ref.conv2d_backward_kernels(g, xpad, k.shape, stride, 0, dilation, groups)) < 1e-12


def test_dilated_im2col_and_col2im_are_adjoint():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 9, 8, 3))
    kh, kw, sh, sw, ph, pw, dh, dw = 3, 2, 2, 1, 1, 2, 2, 3
    out_h, out_w = conv2d_output_size((9, 8), (kh, kw), (sh, sw), (ph, pw), (dh, dw))
    cols = np.empty((2 * out_h * out_w, kh * kw * 3))
    conv2d.im2col(x, 0, 2 * out_h, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols)
    c = rng.standard_normal(cols.shape)
    back = np.zeros_like(x)
    conv2d.col2im(c, 0, 2 * out_h, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, back)
    assert np.isclose(np.sum(cols * c), np.sum(x * back), rtol=1e-12)


def test_float32_stays_float32_on_every_variant():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 6, 6, 4)).astype(np.float32)
    k = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = np.zeros((4, 1), np.float32)
    assert conv2d.conv2d_forward(x, k, b, 1, "same", 2, 2).dtype == np.float32
    kd = rng.standard_normal((8, 1, 3, 3)).astype(np.float32)
    out = depthwise2d.depthwise2d_forward(x, kd, None, 1, "same")
    assert out.dtype == np.float32 and out.shape == (2, 6, 6, 8)
    assert depthwise2d.depthwise2d_backward_kernels(out, x, kd.shape, 1, "same").dtype == np.float32
    assert conv_transpose2d.conv_transpose2d_forward(x, k, b, 2, "same", groups=2).dtype == np.float32
    assert conv1d.conv1d_forward(x[:, 0], k[:, :, 0], b, 1, "same", 1, 2).dtype == np.float32


DEPTHWISE_CASES = [  # x shape, multiplier, kernel, stride, padding, dilation
    ((2, 7, 6, 3), 1, (3, 3), 1, 1, 1),
    ((2, 9, 8, 2), 3, (3, 2), (2, 1), (1, 2), (2, 1)),
    ((1, 6, 6, 4), 2, (2, 2), 2, 0, 1),
    ((3, 5, 7, 5), 1, (1, 3), (1, 3), (0, 2), (1, 2)),
    # multiplier 1: the register tiles (8 pixels, the last tile overlapping; 16 or 8 channels; below 8: the loops)
    ((2, 9, 21, 20), 1, (3, 3), 1, 1, 1),           # blocks of 8 channels (the last overlapping)
    ((2, 5, 21, 16), 1, (3, 3), 1, 1, 1),           # 16 channels; the last tile overlapping, both edges
    ((2, 6, 13, 32), 1, (3, 3), 1, 0, (2, 1)),      # no padding, dilation along the height
    ((2, 8, 19, 37), 1, (3, 3), 2, 1, 1),           # stride 2: tiles of any geometry; 16 + 16 + 8 channels
    ((1, 11, 26, 24), 1, (3, 3), 1, 2, 2),          # dilation 2
    ((2, 7, 30, 16), 1, (3, 3), 1, 0, (1, 3)),      # no padding, dilation along the width
    ((2, 6, 17, 7), 1, (5, 3), (1, 2), (2, 0), 1),  # fewer than 8 channels, a 5 x 3 kernel
    ((1, 5, 12, 8), 1, (3, 3), 1, 3, 1),            # padding wider than the kernel (input gradient: negative)
    ((1, 3, 40, 32), 1, (3, 3), (2, 1), 1, 1),      # taller stride, one tap row missing in every output row
]


@pytest.mark.parametrize("x_shape, mult, kernel, stride, padding, dilation", DEPTHWISE_CASES)
@pytest.mark.parametrize("path", ["cpu", "gpu-array-ops"])
def test_depthwise_matches_the_loops(monkeypatch, path, x_shape, mult, kernel, stride, padding, dilation):
    monkeypatch.setattr(depthwise2d.cpu, "PARALLEL_MIN_ELEMENTS", 0)  # the threaded row split too
    monkeypatch.setattr(cuda_launch, "PREFER_NUMBA_CUDA", False)
    module = depthwise_gpu if path.startswith("gpu") else depthwise2d.cpu
    suffix = "gpu" if path.startswith("gpu") else "cpu"
    rng = np.random.default_rng(2)
    x = rng.standard_normal(x_shape)
    k = rng.standard_normal((x_shape[3] * mult, 1, *kernel))
    b = rng.standard_normal((x_shape[3] * mult, 1))
    out = getattr(module, f"depthwise2d_forward_{suffix}")(x, k, b, stride, padding, dilation)
    assert rel(out, depthwise_ref.depthwise2d_forward(x, k, b, stride, padding, dilation)) < 1e-12
    g = rng.standard_normal(out.shape)
    assert rel(getattr(module, f"depthwise2d_backward_input_{suffix}")(g, k, x.shape, stride, padding, dilation),
               depthwise_ref.depthwise2d_backward_input(g, k, x.shape, stride, padding, dilation)) < 1e-12
    assert rel(getattr(module, f"depthwise2d_backward_kernels_{suffix}")(g, x, k.shape, stride, padding, dilation),
               depthwise_ref.depthwise2d_backward_kernels(g, x, k.shape, stride, padding, dilation)) < 1e-12


@pytest.mark.parametrize("x_shape, stride, dilation", [((2, 10, 27, 40), 1, 1), ((3, 9, 23, 24), 2, 1),
                                                       ((2, 12, 25, 19), 1, 2)])
def test_depthwise_float32_tiles_match_the_loops(monkeypatch, x_shape, stride, dilation):
    monkeypatch.setattr(depthwise2d.cpu, "PARALLEL_MIN_ELEMENTS", 0)
    rng = np.random.default_rng(4)
    x = rng.standard_normal(x_shape).astype(np.float32)
    k = rng.standard_normal((x_shape[3], 1, 3, 3)).astype(np.float32)
    b = rng.standard_normal((x_shape[3], 1)).astype(np.float32)
    args = (stride, 1, dilation)
    out = depthwise2d.cpu.depthwise2d_forward_cpu(x, k, b, *args)
    assert out.dtype == np.float32
    x64, k64, b64 = x.astype(np.float64), k.astype(np.float64), b.astype(np.float64)
    assert rel(out, depthwise_ref.depthwise2d_forward(x64, k64, b64, *args)) < 1e-6
    g = rng.standard_normal(out.shape).astype(np.float32)
    dx = depthwise2d.cpu.depthwise2d_backward_input_cpu(g, k, x.shape, *args)
    dk = depthwise2d.cpu.depthwise2d_backward_kernels_cpu(g, x, k.shape, *args)
    assert dx.dtype == dk.dtype == np.float32
    g64 = g.astype(np.float64)
    assert rel(dx, depthwise_ref.depthwise2d_backward_input(g64, k64, x.shape, *args)) < 1e-6
    assert rel(dk, depthwise_ref.depthwise2d_backward_kernels(g64, x64, k.shape, *args)) < 1e-5


def test_depthwise_equals_the_grouped_convolution():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 8, 7, 3))
    k = rng.standard_normal((6, 1, 3, 3))
    b = rng.standard_normal((6, 1))
    assert rel(depthwise2d.depthwise2d_forward(x, k, b, 2, "same", 2),
               conv2d.conv2d_forward(x, k, b, 2, "same", 2, groups=3)) < 1e-12


@pytest.mark.parametrize("x_shape, k_shape, stride, padding, output_padding, dilation, groups", [
    ((2, 4, 5, 3), (3, 4, 3, 3), 2, 1, 1, 1, 1),
    ((1, 3, 3, 4), (4, 3, 2, 3), (2, 3), (0, 1), (1, 2), (1, 2), 2),
    ((2, 4, 4, 2), (2, 3, 3, 3), 2, "same", 0, 1, 1),
    ((1, 5, 4, 2), (2, 2, 1, 1), 2, "same", 0, 1, 1),     # a kernel shorter than the stride
])
def test_transposed_convolution_matches_the_loops_and_is_the_adjoint(x_shape, k_shape, stride, padding,
                                                                     output_padding, dilation, groups):
    rng = np.random.default_rng(4)
    x, k = rng.standard_normal(x_shape), rng.standard_normal(k_shape)
    b = rng.standard_normal((k_shape[1] * groups, 1))
    y = conv_transpose2d.conv_transpose2d_forward(x, k, b, stride, padding, output_padding, dilation, groups)
    assert rel(y, transpose_ref.conv_transpose2d_forward(x, k, b, stride, padding, output_padding, dilation,
                                                        groups)) < 1e-12
    # <T x, g> = <x, T^T g>, with T^T the forward convolution
    g = rng.standard_normal(y.shape)
    dx = conv_transpose2d.conv_transpose2d_backward_input(g, k, x.shape, stride, padding, dilation, groups)
    assert np.isclose(np.sum((y - b.reshape(-1)) * g), np.sum(x * dx), rtol=1e-12)
    dk = conv_transpose2d.conv_transpose2d_backward_kernels(g, x, k.shape, stride, padding, dilation, groups)
    eps = 1e-6
    k2 = k.copy()
    k2[0, 0, 0, 0] += eps
    y2 = conv_transpose2d.conv_transpose2d_forward(x, k2, b, stride, padding, output_padding, dilation, groups)
    assert np.isclose(np.sum((y2 - y) * g) / eps, dk[0, 0, 0, 0], rtol=1e-5)


@pytest.mark.parametrize("stride, padding, dilation, groups", [(1, 0, 1, 1), (2, 1, 2, 2), (1, 3, 1, 1)])
def test_conv1d_matches_the_loops(stride, padding, dilation, groups):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 11, 4))
    k = rng.standard_normal((6, 4 // groups, 3))
    b = rng.standard_normal((6, 1))
    out = conv1d.conv1d_forward(x, k, b, stride, padding, dilation, groups)
    assert rel(out, conv1d_ref.conv1d_forward(x, k, b, stride, padding, dilation, groups)) < 1e-12
    dx = conv1d.conv1d_backward_input(np.ones_like(out), k, x.shape, stride, padding, dilation, groups)
    assert dx.shape == x.shape
    assert conv1d.conv1d_backward_kernels(out, x, k.shape, stride, padding, dilation, groups).shape == k.shape


def test_same_padding_follows_tensorflow_and_pytorch():
    # total = (ceil(n/s) - 1) s + d (k - 1) + 1 - n, half before, the rest after
    assert padding_amounts("same", (8, 7), (3, 2), 1, 1) == ((1, 1), (0, 1))
    assert padding_amounts("same", (8, 7), (3, 3), 2, 1) == ((0, 1), (1, 1))
    assert padding_amounts("same", (5, 5), (3, 3), 1, 2) == ((2, 2), (2, 2))
    assert split_padding("same", (8, 7), (2, 2), 1, 1) == ((0, 0), (1, 1))
    assert conv2d_output_size((9, 8), (4, 4), 2, "same") == (5, 4)
    assert check_padding("valid") == (0, 0) and check_padding(2) == (2, 2) and check_padding("same") == "same"


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")  # PyTorch's note on its copy
def test_pytorch_same_padding_agrees_for_even_kernels():
    torch = pytest.importorskip("torch", reason="compares with PyTorch's padding='same', which is not installed")
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 7, 6, 3))
    k = rng.standard_normal((4, 3, 4, 2))
    b = np.zeros((4, 1))
    ours = conv2d.conv2d_forward(x, k, b, 1, "same", (1, 2))
    theirs = torch.nn.functional.conv2d(torch.tensor(x).permute(0, 3, 1, 2), torch.tensor(k), padding="same",
                                        dilation=(1, 2)).permute(0, 2, 3, 1).numpy()
    assert rel(ours, theirs) < 1e-12


@pytest.mark.parametrize("call, match", [
    (lambda: conv2d.conv2d_forward(np.ones((1, 5, 5, 4)), np.ones((6, 2, 3, 3)), np.zeros((6, 1)), groups=3),
     r"groups: expected a divisor of both the input channels \(4\) and the filters \(6\), got 3"),
    (lambda: conv2d.conv2d_forward(np.ones((1, 5, 5, 4)), np.ones((6, 4, 3, 3)), np.zeros((6, 1)), groups=2),
     r"kernels: expected 2 input channels per filter"),
    (lambda: conv2d.conv2d_forward(np.ones((1, 5, 5, 4)), np.ones((6, 4, 3, 3)), np.zeros((6, 1)), dilation=0),
     r"dilation: expected an integer >= 1, got 0"),
    (lambda: conv2d.conv2d_forward(np.ones((1, 4, 4, 1)), np.ones((1, 1, 3, 3)), np.zeros((1, 1)), dilation=2),
     r"kernel_size \(3, 3\) with dilation \(2, 2\) \(spans \(5, 5\)\) is larger than the padded input \(4, 4\)"),
    (lambda: conv2d.conv2d_forward(np.ones((1, 4, 4, 1)), np.ones((1, 1, 3, 3)), np.zeros((1, 1)), padding="full"),
     r"padding: expected 'same', 'valid'"),
    (lambda: depthwise2d.depthwise2d_forward(np.ones((1, 5, 5, 4)), np.ones((6, 1, 3, 3))),
     r"kernels: expected shape \(C M, 1, kh, kw\) with C = 4"),
    (lambda: conv_transpose2d.conv_transpose2d_forward(np.ones((1, 3, 3, 2)), np.ones((2, 2, 3, 3)),
                                                       np.zeros((2, 1)), 2, 0, 2),
     r"output_padding: expected values below the stride \(2, 2\), got \(2, 2\)"),
])
def test_bad_geometry_is_named(call, match):
    with pytest.raises(ValueError, match=match):
        call()
