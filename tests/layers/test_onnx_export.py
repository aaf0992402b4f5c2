"""ONNX export checked by ONNX Runtime (issue 14, section 2).

Every layer ONNX can express, and the blocks, are exported inside a small
model and the file is run by ONNX Runtime (CPU) on the same inputs as
``model.predict`` (float32; rtol = atol = 1e-5). A layer without a converter
raises an error naming it and its path; a failed export writes nothing.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

import layers
from layers import (ELU, GELU, AveragePooling2D, BatchNormalization, Concatenate, Convolution2D, Dense, Dropout,
                    Embedding, Flatten, GlobalAveragePooling2D, Identity, Layer, LayerNormalization, LeakyReLU,
                    MaxPooling2D, Multiply, NoisyReLU, PReLU, ReLU, Residual, RReLU, Sequential, Softmax)
from layers.activations import ACTIVATION_NAMES
from layers.base import walk
from layers.saving.onnx import CONVERTERS, OPSET, OnnxExportError, export, register_converter, to_onnx
from tests.layers.onnx_checks import (TOL, assert_same_as_onnx, assert_trained_example_runs_the_same, onnx, randn,
                                      randomize, run_onnx)


# --------------------------------------------------------------------------- #
# Every activation
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("name", ACTIVATION_NAMES)
def test_every_activation_by_name(name, tmp_path):
    # Wide inputs: both sides of every kink and the saturated tails (HardSigmoid at +-3, ...).
    x = randn(16, 12, scale=4.0)
    model = Sequential([Dense(12, 12, seed=0), layers.get_activation(name)])
    assert_same_as_onnx(model, tmp_path, x)


@pytest.mark.parametrize("layer", [
    GELU(approximate="tanh"), LeakyReLU(alpha=0.2), LeakyReLU(alpha=-0.5), ELU(alpha=0.5),
    RReLU(lower=0.1, upper=0.3, seed=0), NoisyReLU(std=0.5, seed=0), PReLU(), Softmax(axis=1),
], ids=lambda layer: repr(layer))
def test_activation_variants(layer, tmp_path):
    x = randn(4, 6, 5, scale=3.0)
    if isinstance(layer, PReLU):
        randomize(layer)
    layer.train()  # the file is the evaluation-mode model whatever the mode at export
    assert_same_as_onnx(layer, tmp_path, x)
    assert layer.training  # export changed no mode


def test_prelu_per_channel_on_nhwc(tmp_path):
    model = randomize(Sequential([Convolution2D(2, 3, 3, padding=1, seed=0), PReLU(num_parameters=3)]))
    assert_same_as_onnx(model, tmp_path, randn(3, 5, 5, 2))


# --------------------------------------------------------------------------- #
# Dense, convolution, pooling, Flatten, Dropout, normalizations, Embedding
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("shape", [(5, 7), (5, 4, 7)], ids=["features", "tokens"])
def test_dense(use_bias, shape, tmp_path):
    """(B, F) is one Gemm; (B, ..., F) a MatMul over the last axis."""
    model = randomize(Sequential([Dense(7, 3, use_bias=use_bias, seed=0)]))
    assert_same_as_onnx(model, tmp_path, randn(*shape))


@pytest.mark.parametrize("kernel_size, stride, padding", [(3, 1, 0), (3, 2, 1), ((2, 3), (1, 2), (1, 0)), (1, 1, 0)])
def test_convolution2d_nhwc(kernel_size, stride, padding, tmp_path):
    model = randomize(Sequential([Convolution2D(3, 4, kernel_size, stride=stride, padding=padding, seed=0)]))
    assert_same_as_onnx(model, tmp_path, randn(2, 7, 6, 3))


@pytest.mark.parametrize("layer", [MaxPooling2D(2), MaxPooling2D((3, 2), stride=1), AveragePooling2D(2),
                                   AveragePooling2D((2, 3), stride=(1, 2)), GlobalAveragePooling2D()],
                         ids=lambda layer: repr(layer))
def test_pooling_nhwc(layer, tmp_path):
    assert_same_as_onnx(Sequential([layer]), tmp_path, randn(3, 7, 6, 4))


def test_flatten_keeps_our_nhwc_order(tmp_path):
    """Flatten after a convolution: the Dense weights see the features in our (H, W, C) order."""
    model = Sequential([Convolution2D(2, 3, 3, seed=0), MaxPooling2D(2), Flatten(), Dense(2 * 2 * 3, 4, seed=1)])
    assert_same_as_onnx(randomize(model), tmp_path, randn(3, 6, 6, 2))


def test_dropout_is_the_identity(tmp_path):
    model = Sequential([Dense(5, 5, seed=0), Dropout(0.5, seed=0)]).train()
    assert_same_as_onnx(model, tmp_path, randn(4, 5))


@pytest.mark.parametrize("shape, axis", [((6,), -1), ((5, 4, 3), -1), ((3, 4), 1)])
def test_batch_normalization_running_statistics(shape, axis, tmp_path):
    features = (4, *shape)[axis]  # axis counts the batch axis
    model = randomize(Sequential([BatchNormalization(features, axis=axis)]))
    assert_same_as_onnx(model, tmp_path, randn(4, *shape, scale=2.0))


@pytest.mark.parametrize("normalized_shape, center, scale", [(6, True, True), ((3, 4, 6), True, True),
                                                              (6, False, True), (6, True, False)])
def test_layer_normalization(normalized_shape, center, scale, tmp_path):
    model = randomize(Sequential([LayerNormalization(normalized_shape, center=center, scale=scale)]))
    assert_same_as_onnx(model, tmp_path, randn(4, 3, 4, 6, scale=3.0))


def test_embedding_takes_int64_ids(tmp_path):
    model = Sequential([Embedding(10, 4, seed=0), Flatten(), Dense(3 * 4, 2, seed=1)])
    ids = np.random.default_rng(0).integers(0, 10, size=(5, 3)).astype(np.int64)
    proto = to_onnx(model, (3,))
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    assert_same_as_onnx(model, tmp_path, ids)


# --------------------------------------------------------------------------- #
# Blocks (layers/containers/branches.py) through the walk of sublayers
# --------------------------------------------------------------------------- #
def conv_block(cin, cout, seed):
    return Sequential([Convolution2D(cin, cout, 3, padding=1, seed=seed), BatchNormalization(cout), ReLU()])


@pytest.mark.parametrize("block", [
    Residual(conv_block(3, 3, 0)),
    Residual(conv_block(3, 5, 0), shortcut=Sequential([Convolution2D(3, 5, 1, seed=2), BatchNormalization(5)])),
    layers.Add([conv_block(3, 4, 0), conv_block(3, 4, 1), Convolution2D(3, 4, 1, seed=2)]),
    layers.Add([Identity()]),
    Concatenate([conv_block(3, 2, 0), Identity(), Residual(Identity())]),
    Concatenate([conv_block(3, 2, 0), conv_block(3, 2, 1)], axis=1),
    Multiply([Identity(), Sequential([GlobalAveragePooling2D(), Convolution2D(3, 3, 1, seed=3), layers.Sigmoid()])]),
    Sequential([Identity(), Sequential([Residual(Identity()), Dropout(0.2)])]),
], ids=["residual", "residual-projection", "add", "add-one", "concatenate-channels", "concatenate-height",
        "multiply-squeeze-excitation", "nested"])
def test_blocks(block, tmp_path):
    model = randomize(Sequential([block, GlobalAveragePooling2D(), Flatten()]))
    assert_same_as_onnx(model, tmp_path, randn(2, 6, 5, 3))


#: Layers merged from other branches whose converters are being written (each must leave this set).
CONVERTERS_OWED: set = set()


def test_every_library_layer_class_has_a_converter():
    """The layers of ``layers.__init__`` that compute something (not the base classes)."""
    abstract = {Layer, layers.Container}
    classes = {obj for obj in vars(layers).values() if isinstance(obj, type) and issubclass(obj, Layer)}
    missing = sorted(cls.__name__ for cls in classes - abstract if cls not in CONVERTERS)
    assert sorted(set(missing) - CONVERTERS_OWED) == []
    assert not CONVERTERS_OWED - set(missing), "a converter exists now: take it off CONVERTERS_OWED"


# --------------------------------------------------------------------------- #
# The file, its metadata and the entry points
# --------------------------------------------------------------------------- #
def test_dynamic_batch_and_metadata(tmp_path):
    model = Sequential([Dense(4, 3, seed=0), Softmax()])
    path = model.export_onnx(tmp_path / "m.onnx")  # input_shape guessed from the first Dense
    proto = onnx.load(path)
    assert proto.opset_import[0].version == OPSET and proto.producer_name == "camadas"
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and dims[1].dim_value == 4
    for batch in (1, 9):
        x = randn(batch, 4, seed=batch)
        np.testing.assert_allclose(run_onnx(path, x), model.predict(x), **TOL)


def test_entry_points_are_one_function():
    import camadas
    import layers.saving.onnx

    assert camadas.onnx.export is layers.saving.onnx.export is export


def test_parameters_on_any_device(device, tmp_path):
    model = randomize(Sequential([Convolution2D(1, 2, 3, seed=0), Flatten(), Dense(2 * 3 * 3, 2, seed=1)]))
    x = randn(2, 5, 5, 1)
    expected = model.predict(x)
    model.to(device.name)
    path = model.export_onnx(tmp_path / "m.onnx", (5, 5, 1))
    np.testing.assert_allclose(run_onnx(path, x), expected, **TOL)


# --------------------------------------------------------------------------- #
# Errors: named, and nothing written
# --------------------------------------------------------------------------- #
class Cube(Layer):
    def forward(self, input_data):
        return input_data ** 3

    def backward(self, grad_output):
        raise NotImplementedError


class MyReLU(ReLU):
    """A subclass may compute something else: it is not exported as its parent."""


@pytest.mark.parametrize("inner", [Cube(), MyReLU()], ids=["Cube", "MyReLU"])
def test_layer_without_converter_is_named_with_its_path(inner, tmp_path):
    model = Sequential([Dense(3, 3, seed=0), Sequential([Residual(Sequential([Identity(), inner]))])])
    path = next(p for p, layer in walk(model) if layer is inner)
    assert path == "1.0.0.1"  # second child, its Residual, the Residual's block, the block's second layer
    target = tmp_path / "m.onnx"
    with pytest.raises(OnnxExportError, match=rf"layer '{path}' \({type(inner).__name__}\) cannot be exported"):
        model.export_onnx(target, (3,))
    assert list(tmp_path.iterdir()) == []  # no file, no temporary


def test_model_itself_without_converter(tmp_path):
    with pytest.raises(OnnxExportError, match=r"the model \(Cube\) cannot be exported"):
        export(Cube(), tmp_path / "m.onnx", (3,))


def test_registering_a_converter_makes_a_layer_exportable(tmp_path):
    @register_converter(Cube)
    def _cube(layer, graph, x):
        return graph.node("Mul", [x.name, graph.node("Mul", [x.name, x.name])])

    try:
        assert_same_as_onnx(Sequential([Dense(3, 3, seed=0), Cube()]), tmp_path, randn(4, 3))
    finally:
        del CONVERTERS[Cube]


@pytest.mark.parametrize("input_shape, error, match", [
    ((), ValueError, r"input_shape: expected the shape of one sample"),
    ((0, 3), ValueError, r"input_shape\[0\]: expected an integer >= 1, got 0"),
    (("8",), TypeError, r"input_shape\[0\]: expected an integer >= 1"),
    ((5,), ValueError, r"input_shape \(5,\) does not fit the model: Dense: input_data: expected 4 features"),
])
def test_bad_input_shape(input_shape, error, match, tmp_path):
    with pytest.raises(error, match=match):
        Sequential([Dense(4, 2, seed=0)]).export_onnx(tmp_path / "m.onnx", input_shape)
    assert list(tmp_path.iterdir()) == []


def test_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="export_onnx: directory"):
        Sequential([Dense(4, 2, seed=0)]).export_onnx(tmp_path / "nope" / "m.onnx", (4,))


def test_without_onnx_installed_the_error_says_which_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)
    with pytest.raises(ImportError, match=r"pip install 'camadas\[onnx\]'"):
        Sequential([Dense(4, 2, seed=0)]).export_onnx(tmp_path / "m.onnx", (4,))
    assert list(tmp_path.iterdir()) == []


def test_cannot_guess_the_input_shape(tmp_path):
    with pytest.raises(ValueError, match="export_onnx: input_shape: expected one sample's shape"):
        Sequential([Flatten()]).export_onnx(tmp_path / "m.onnx")


# --------------------------------------------------------------------------- #
# The README's main job: the digits CNN of examples/digits_cnn.py
# --------------------------------------------------------------------------- #
@pytest.mark.slow
def test_digits_cnn_runs_the_same_in_onnx_runtime(tmp_path):
    assert_trained_example_runs_the_same(tmp_path, "digits_cnn.py", lambda example: example.build_model(seed=0),
                                         (8, 8, 1), learning_rate=3e-3, epochs=2)
