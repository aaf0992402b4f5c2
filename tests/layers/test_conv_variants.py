"""The convolution variants as layers (book sections 22.2, 22.7, 22.9): gradients, PyTorch parity, shapes, errors.

Gradient checks run in float64 by central differences on every device that
answers; PyTorch parity (forward and every gradient) where PyTorch imports;
the differential fuzz suite (tests/fuzz) draws many more configurations.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend
from layers import (Convolution1D, Convolution2D, Convolution2DTranspose, DepthwiseConvolution2D, GlobalMaxPooling2D,
                    SeparableConvolution2D, Sequential, SqueezeExcitation, UpSampling2D, ZeroPadding2D)
from layers.testing import check_gradients


def _randomize(layer, seed=0):
    rng = np.random.default_rng(seed)
    for p in layer.params:
        p[...] = backend.to_device(rng.uniform(-0.8, 0.8, p.shape).astype(p.dtype), backend.device_of(p))
    return layer


def _distinct(shape, seed=0):
    """Values spaced 0.01 apart in random order (no ties for the max, whatever the finite-difference step)."""
    n = int(np.prod(shape))
    return (np.random.default_rng(seed).permutation(n) * 0.01 - 0.005 * n).reshape(shape)


LAYERS = [
    (lambda: Convolution2D(4, 6, 3, padding="same", dilation=2, groups=2, seed=0), (2, 6, 5, 4)),
    (lambda: Convolution2D(3, 3, (2, 3), stride=(2, 1), padding="valid", dilation=(1, 2), groups=3, seed=1),
     (1, 6, 7, 3)),
    (lambda: DepthwiseConvolution2D(3, 3, depth_multiplier=2, stride=2, padding="same", seed=2), (2, 6, 5, 3)),
    (lambda: DepthwiseConvolution2D(2, (3, 2), padding=1, dilation=(2, 1), use_bias=False, seed=3), (1, 6, 5, 2)),
    (lambda: SeparableConvolution2D(3, 5, 3, padding=1, seed=4), (2, 5, 5, 3)),
    (lambda: Convolution2DTranspose(3, 4, 3, stride=2, padding=1, output_padding=1, seed=5), (2, 3, 4, 3)),
    (lambda: Convolution2DTranspose(4, 2, 2, stride=2, padding="same", groups=2, seed=6), (1, 3, 3, 4)),
    (lambda: Convolution1D(3, 4, 3, stride=2, padding="same", dilation=2, seed=7), (2, 9, 3)),
    (lambda: GlobalMaxPooling2D(), (2, 3, 4, 3)),
    (lambda: ZeroPadding2D(((1, 2), (0, 1))), (2, 3, 3, 2)),
    (lambda: UpSampling2D((2, 3)), (2, 3, 2, 2)),
    (lambda: SqueezeExcitation(8, 4, seed=8), (2, 3, 3, 8)),
]
IDS = ["conv-same-dilated-grouped", "conv-valid-depthwise-groups", "depthwise-m2-same", "depthwise-nobias-dilated",
       "separable", "transpose", "transpose-same-grouped", "conv1d", "global-max", "zero-padding", "upsampling",
       "squeeze-excitation"]


@pytest.mark.parametrize("build, shape", LAYERS, ids=IDS)
def test_gradients(device, float64, build, shape):
    layer = _randomize(build())
    report = check_gradients(layer, backend.to_device(_distinct(shape)))
    assert report.ok(1e-7), str(report)


@pytest.mark.parametrize("build, shape", LAYERS, ids=IDS)
def test_float32_shapes_and_output_shape(build, shape):
    layer = build()
    x = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    y = layer.forward(x)
    assert y.dtype == np.float32 and y.shape == layer.output_shape(shape)
    grad, grads = layer.backward(np.ones_like(y))
    assert grad.dtype == np.float32 and grad.shape == x.shape
    assert [g.shape for g in grads or []] == [p.shape for p in layer.params]
    assert all(g.dtype == np.float32 for g in grads or [])


def _torch_conv_check(layer, x, torch_forward):
    torch = pytest.importorskip("torch", reason="PyTorch parity: PyTorch is not installed")
    _randomize(layer, 3)
    y = layer.forward(x)
    g = np.random.default_rng(9).standard_normal(y.shape)
    dx, grads = layer.backward(g)
    xt = torch.tensor(x, requires_grad=True)
    pts = [torch.tensor(p, requires_grad=True) for p in layer.params]
    yt = torch_forward(torch, xt, pts)
    yt.backward(torch.tensor(g))
    np.testing.assert_allclose(y, yt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dx, xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    for ours, theirs in zip(grads, pts):
        np.testing.assert_allclose(ours, theirs.grad.numpy().reshape(ours.shape), rtol=1e-10, atol=1e-12)


def _nchw(t):
    return t.permute(0, 3, 1, 2)


def _nhwc(t):
    return t.permute(0, 2, 3, 1)


def test_pytorch_parity_dilated_grouped_convolution(float64):
    def forward(torch, xt, pts):
        return _nhwc(torch.nn.functional.conv2d(_nchw(xt), pts[0], pts[1].reshape(-1), stride=(2, 1),
                                                padding=(2, 1), dilation=(2, 1), groups=2))

    _torch_conv_check(Convolution2D(4, 6, 3, stride=(2, 1), padding=(2, 1), dilation=(2, 1), groups=2),
                      np.random.default_rng(0).standard_normal((2, 9, 7, 4)), forward)


def test_pytorch_parity_depthwise_and_separable(float64):
    x = np.random.default_rng(1).standard_normal((2, 8, 7, 3))

    def depthwise(torch, xt, pts):
        return _nhwc(torch.nn.functional.conv2d(_nchw(xt), pts[0], pts[1].reshape(-1), stride=2, padding=1,
                                                groups=3))

    _torch_conv_check(DepthwiseConvolution2D(3, 3, depth_multiplier=2, stride=2, padding=1), x, depthwise)

    def separable(torch, xt, pts):
        y = torch.nn.functional.conv2d(_nchw(xt), pts[0], None, padding=1, groups=3)
        return _nhwc(torch.nn.functional.conv2d(y, pts[1], pts[2].reshape(-1)))

    _torch_conv_check(SeparableConvolution2D(3, 5, 3, padding=1), x, separable)


def test_pytorch_parity_transposed_and_1d(float64):
    def transposed(torch, xt, pts):
        return _nhwc(torch.nn.functional.conv_transpose2d(_nchw(xt), pts[0], pts[1].reshape(-1), stride=2,
                                                          padding=1, output_padding=1, dilation=2, groups=2))

    _torch_conv_check(Convolution2DTranspose(4, 6, 3, stride=2, padding=1, output_padding=1, dilation=2, groups=2),
                      np.random.default_rng(2).standard_normal((2, 4, 3, 4)), transposed)

    def one_d(torch, xt, pts):
        return torch.nn.functional.conv1d(xt.permute(0, 2, 1), pts[0], pts[1].reshape(-1), stride=2, padding=2,
                                          dilation=2, groups=3).permute(0, 2, 1)

    _torch_conv_check(Convolution1D(3, 6, 3, stride=2, padding=2, dilation=2, groups=3),
                      np.random.default_rng(3).standard_normal((2, 12, 3)), one_d)


def test_layouts_and_parameter_counts():
    conv = Convolution2D(6, 4, 3, groups=2)
    assert conv.kernels.shape == (4, 3, 3, 3) and conv.count_params() == 4 * 3 * 9 + 4
    dw = DepthwiseConvolution2D(5, 3, depth_multiplier=2)
    assert dw.kernels.shape == (10, 1, 3, 3) and dw.biases.shape == (10, 1)
    sep = SeparableConvolution2D(5, 7, 3, depth_multiplier=2)
    assert [p.shape for p in sep.params] == [(10, 1, 3, 3), (7, 10, 1, 1), (7, 1)]
    assert sep.param_names() == ["0.kernels", "1.kernels", "1.biases"]
    assert Convolution2DTranspose(3, 4, 3, groups=1).kernels.shape == (3, 4, 3, 3)
    assert Convolution1D(3, 4, 5).kernels.shape == (4, 3, 5)
    se = SqueezeExcitation(32, 8)
    assert se.hidden == 4 and [p.shape for p in se.params] == [(4, 32, 1, 1), (4, 1), (32, 4, 1, 1), (32, 1)]


def test_output_sizes():
    assert Convolution2D(3, 8, 3, stride=2, padding="same").output_shape((1, 15, 16, 3)) == (1, 8, 8, 8)
    assert Convolution2D(3, 8, 3, dilation=3).output_shape((1, 15, 16, 3)) == (1, 9, 10, 8)
    assert Convolution2DTranspose(3, 8, 3, stride=2, padding="same").output_shape((1, 5, 6, 3)) == (1, 10, 12, 8)
    assert Convolution2DTranspose(3, 8, 4, stride=2, padding=1).output_shape((1, 5, 6, 3)) == (1, 10, 12, 8)
    assert Convolution1D(3, 8, 4, padding="same").output_shape((2, 11, 3)) == (2, 11, 8)
    x = np.arange(2 * 2 * 3 * 1, dtype=np.float64).reshape(2, 2, 3, 1)
    np.testing.assert_array_equal(UpSampling2D(2).forward(x)[0, :, :, 0],
                                  [[0, 0, 1, 1, 2, 2], [0, 0, 1, 1, 2, 2], [3, 3, 4, 4, 5, 5], [3, 3, 4, 4, 5, 5]])
    assert GlobalMaxPooling2D().forward(x)[:, 0, 0, 0].tolist() == [5.0, 11.0]


def test_squeeze_excitation_scales_channels_into_0_1():
    se = SqueezeExcitation(4, 2, seed=0)
    x = np.abs(np.random.default_rng(0).standard_normal((3, 5, 5, 4)))
    ratio = se.forward(x) / x
    assert np.allclose(ratio, ratio[:, :1, :1, :]) and ((ratio > 0) & (ratio < 1)).all()


def test_every_variant_saves_and_loads(tmp_path):
    model = Sequential([Convolution2D(3, 4, 3, padding="same", dilation=2, groups=1, seed=0),
                        DepthwiseConvolution2D(4, 3, depth_multiplier=2, padding="same", seed=1),
                        SeparableConvolution2D(8, 6, 3, padding=1, seed=2), SqueezeExcitation(6, 2, seed=3),
                        Convolution2DTranspose(6, 2, 3, stride=2, padding="same", seed=4),
                        ZeroPadding2D(((1, 0), (0, 1))), UpSampling2D(2), GlobalMaxPooling2D()])
    _randomize(model, 5)
    x = np.random.default_rng(0).standard_normal((2, 5, 4, 3)).astype(np.float32)
    path = model.save(tmp_path / "variants.npz")
    clone = Sequential.load(path)
    np.testing.assert_array_equal(clone.predict(x), model.predict(x))
    assert repr(clone.layers[2]) == repr(model.layers[2])


@pytest.mark.parametrize("build, error, match", [
    (lambda: Convolution2D(6, 4, 3, groups=4), ValueError,
     r"Convolution2D: groups: expected a divisor of input_channels \(6\) and num_filters \(4\), got 4"),
    (lambda: Convolution2D(6, 4, 3, dilation=0), ValueError, r"dilation: expected an integer >= 1, got 0"),
    (lambda: Convolution2D(6, 4, 3, padding="full"), ValueError,
     r"padding: expected 'same', 'valid', an int >= 0 or a pair \(h, w\) of them, got 'full'"),
    (lambda: Convolution2DTranspose(2, 2, 3, stride=2, output_padding=2), ValueError,
     r"output_padding: expected values below the stride \(2, 2\), got \(2, 2\)"),
    (lambda: Convolution1D(2, 2, 3, padding=(1, 1)), ValueError, r"padding: expected 'same', 'valid' or an int"),
    (lambda: DepthwiseConvolution2D(0, 3), ValueError, r"channels: expected an integer >= 1, got 0"),
    (lambda: SqueezeExcitation(8, ratio=0), ValueError, r"ratio: expected an integer >= 1, got 0"),
])
def test_bad_arguments_name_the_argument(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_kernel_larger_than_the_dilated_input_is_named():
    with pytest.raises(ValueError, match=r"DepthwiseConvolution2D: kernel_size \(3, 3\) with dilation \(3, 3\) "
                                         r"\(spans \(7, 7\)\) is larger than the padded input \(6, 6\)"):
        DepthwiseConvolution2D(2, 3, dilation=3).forward(np.ones((1, 6, 6, 2), np.float32))
    with pytest.raises(ValueError, match=r"Convolution1D: input_data: expected 2 channels in NTC layout"):
        Convolution1D(2, 2, 3).forward(np.ones((1, 6, 3), np.float32))
