"""The architecture builders (book sections 22.9.1-22.9.7, chapter 23): shapes, parameters, gradients on tiny
versions, save/load and ONNX round trips, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

import backend
import models
from layers import Residual, Sequential, SqueezeExcitation
from layers.base import walk
from layers.testing import check_gradients

SMALL = {  # builder -> keyword arguments of a fast instance on 16x16 images
    "lenet5": {"padding": "same"},
    "vgg_small": {"widths": (4, 8), "dense_units": 16},
    "inception_small": {},
    "resnet": {"depth": 8, "width": 4},
    "xception_small": {"widths": (4, 8), "middle_blocks": 1},
    "se_resnet": {"depth": 8, "width": 4, "ratio": 2},
}


def _build(name, **overrides):
    builder, _ = models.ARCHITECTURES[name]
    return builder(input_shape=(16, 16, 1), num_classes=3, **{**SMALL[name], **overrides})


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_builds_a_sequential_that_trains_one_step(name):
    model = _build(name)
    assert isinstance(model, Sequential) and model.input_shape == (16, 16, 1)
    x = np.random.default_rng(0).standard_normal((4, 16, 16, 1)).astype(np.float32)
    y = model.forward(x)
    assert y.shape == (4, 3) == model.output_shape(x.shape) and y.dtype == np.float32
    grad, grads = model.backward(np.ones_like(y))
    assert grad.shape == x.shape and len(grads) == len(model.params)
    history = model.fit(x, np.array([0, 1, 2, 0]), loss="sparse_categorical_crossentropy", optimizer="adam",
                        epochs=1, batch_size=4, verbose=0, seed=0)
    assert np.isfinite(history.history["loss"][-1])


@pytest.mark.parametrize("name", list(models.ARCHITECTURES))
def test_save_load_and_onnx_give_the_same_predictions(name, tmp_path):
    model = _build(name)
    x = np.random.default_rng(1).standard_normal((3, 16, 16, 1)).astype(np.float32)
    model.fit(x, np.array([0, 1, 2]), loss="sparse_categorical_crossentropy", epochs=1, verbose=0, seed=0)
    expected = model.predict(x)
    clone = Sequential.load(model.save(tmp_path / f"{name}.npz"))
    np.testing.assert_array_equal(clone.predict(x), expected)
    pytest.importorskip("onnx", reason="ONNX export needs the onnx extra")
    ort = pytest.importorskip("onnxruntime", reason="running the export needs onnxruntime")
    path = model.export_onnx(tmp_path / f"{name}.onnx")
    got = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"input": x})[0]
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name, overrides", [("resnet", {}), ("se_resnet", {}),
                                             ("xception_small", {"widths": (2, 4)})])
def test_gradients_of_tiny_residual_networks(float64, name, overrides):
    builder, _ = models.ARCHITECTURES[name]
    kwargs = {**SMALL[name], **overrides}
    if "width" in kwargs:
        kwargs["width"] = 2
    model = builder(input_shape=(4, 4, 2), num_classes=2, **kwargs)
    # evaluation mode: batch normalization uses its running statistics, so the convolutions' biases have a
    # gradient (in training mode the batch mean cancels them: a true gradient of 0, nothing to compare)
    model.eval()
    rng = np.random.default_rng(3)
    for p in model.params:  # non-zero biases and shifts: no sum lands exactly on a ReLU's kink at 0
        p[...] = backend.to_device(rng.uniform(0.3, 1.0, p.shape) * rng.choice((-1.0, 1.0), p.shape))
    x = backend.to_device(np.random.default_rng(2).standard_normal((2, 4, 4, 2)))
    report = check_gradients(model, x)
    assert report.ok(1e-6), str(report)


def test_lenet5_has_the_paper_s_layers_and_parameters():
    model = models.lenet5(input_shape=(32, 32, 1), num_classes=10)
    # C1 6@5x5 156, C3 16@5x5 2416, F5 400->120 48120, F6 10164, output 850
    assert model.count_params() == 156 + 2416 + 48120 + 10164 + 850
    assert model.output_shape((1, 32, 32, 1)) == (1, 10)


def test_resnet_depth_counts_the_weight_layers_and_plain_cnn_drops_the_skips():
    for depth in (8, 14, 20):
        model = models.resnet(depth, input_shape=(8, 8, 1))
        blocks = [layer for _, layer in walk(model) if isinstance(layer, Residual)]
        assert len(blocks) == 3 * (depth - 2) // 6
        plain = models.plain_cnn(depth, input_shape=(8, 8, 1))
        assert not any(isinstance(layer, Residual) for _, layer in walk(plain))
        # the same convolutions (the projections aside) and the same widths
        assert plain.count_params() < model.count_params()
    se = models.se_resnet(8, input_shape=(8, 8, 1))
    assert sum(isinstance(layer, SqueezeExcitation) for _, layer in walk(se)) == 3


@pytest.mark.parametrize("call, match", [
    (lambda: models.resnet(10), r"resnet: depth: expected 6 n \+ 2 layers with n >= 1 \(8, 14, 20, 26, 32, \.\.\.\), "
                                r"got 10"),
    (lambda: models.lenet5(input_shape=(12, 12, 1)), r"lenet5: input_shape: expected height and width >= 14"),
    (lambda: models.vgg_small(input_shape=(28, 28)), r"vgg_small: input_shape: expected \(height, width, channels\)"),
    (lambda: models.se_resnet(num_classes=1), r"se_resnet: num_classes: expected an integer >= 2, got 1"),
    (lambda: models.lenet5(activation="sigmoid"), r"lenet5: activation: expected one of 'tanh', 'relu'"),
])
def test_bad_arguments_name_the_builder_and_argument(call, match):
    with pytest.raises(ValueError, match=match):
        call()
