"""The chapter 26 models exported to ONNX and run by ONNX Runtime against ``predict`` (float32, 1e-5).

A small ViT (class token and mean pooling), a small GPT at any context
length up to its table, the TransformerClassifier with and without padding
(a row made only of padding included), and the encoder-decoder (the decoder
block's cross-attention); every file with a dynamic batch.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend
from layers.saving.onnx import OnnxExportError
from models import TransformerClassifier, encoder_decoder, gpt, vit
from tests.layers.onnx_checks import TOL, assert_same_as_onnx, onnx, randn, randomize, run_onnx


def ids(batch, length, vocab, seed=0):
    return np.random.default_rng(seed).integers(0, vocab, size=(batch, length)).astype(np.int64)


@pytest.mark.parametrize("options", [{"pool": "cls"}, {"pool": "mean", "norm_first": False, "patch_size": 2}],
                         ids=["cls-pre-norm", "mean-post-norm"])
def test_small_vit(options, tmp_path):
    model = randomize(vit((8, 8, 1), 10, dim=16, depth=2, num_heads=2, **options), scale=0.5)
    assert_same_as_onnx(model, tmp_path, randn(4, 8, 8, 1), more=[randn(1, 8, 8, 1, seed=1)])


def test_vit_patch_grid_is_fixed(tmp_path):
    """The position table fixes the number of patches: the image size cannot be a dynamic axis."""
    model = vit((8, 8, 1), 10, dim=16, depth=1, num_heads=2)
    with pytest.raises(ValueError, match=r"dynamic_axes: the model takes no other size on axes \[1, 2\]"):
        model.export_onnx(tmp_path / "vit.onnx", (8, 8, 1), dynamic_axes=(1, 2))


def test_small_gpt_forward_at_every_length(tmp_path):
    """Logits (B, T, V) for T from 1 to the context length, from one file exported at T = 6."""
    model = randomize(gpt(13, 9, dim=16, depth=2, num_heads=2, dropout=0.1), scale=0.3)
    path = assert_same_as_onnx(model, tmp_path, ids(3, 6, 13), dynamic_axes={1: "tokens"},
                               more=[ids(1, 1, 13, seed=1), ids(2, 9, 13, seed=2)])
    output = onnx.load(path).graph.output[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in output] == ["batch", "tokens", 13]


@pytest.mark.parametrize("pad_id", [None, 0], ids=["no-padding", "padding"])
def test_transformer_classifier(pad_id, tmp_path):
    model = randomize(TransformerClassifier(11, 3, 7, dim=16, depth=2, num_heads=2, pad_id=pad_id), scale=0.5)
    x = ids(4, 7, 11)
    x[0, 4:] = 0  # padded at the end
    x[1] = 0      # only padding: attends to nothing, pools to zeros (logits = the head's bias)
    assert model.output_shape((4, 7)) == (4, 3)  # the shape probe of a block that starts with an Embedding
    assert_same_as_onnx(model, tmp_path, x, dynamic_axes=(1,), more=[ids(2, 3, 11, seed=1)])


@pytest.mark.parametrize("norm_first", [True, False], ids=["pre-norm", "post-norm"])
def test_encoder_decoder(norm_first, tmp_path):
    """ids (B, S + T): source and target split in the file; the decoder blocks read the encoder's memory."""
    model = randomize(encoder_decoder(11, 12, 5, 4, dim=16, depth=2, num_heads=2, norm_first=norm_first), scale=0.5)
    source_and_target = np.concatenate([ids(3, 5, 11), ids(3, 4, 12, seed=1)], axis=1)
    assert_same_as_onnx(model, tmp_path, source_and_target, dynamic_axes=(1,),
                        more=[np.concatenate([ids(2, 5, 11, seed=2), ids(2, 1, 12, seed=3)], axis=1)])


def test_a_block_inside_a_model_is_named_by_its_path(tmp_path):
    model = TransformerClassifier(11, 3, 7, dim=16, depth=2, num_heads=2)

    class Unknown(type(model.norm)):
        """A subclass is not exported as its parent."""

    model.norm = Unknown(16)
    with pytest.raises(OnnxExportError, match=r"layer '4' \(Unknown\) cannot be exported"):
        model.export_onnx(tmp_path / "m.onnx", (7,))
    assert list(tmp_path.iterdir()) == []


def test_parameters_on_any_device(device, tmp_path):
    """A model trained on the GPU exports the same file: its parameters are copied to the host."""
    from layers import LSTM, Bidirectional, Dense, Sequential, TimeDistributed

    with backend.use_device("cpu"):
        models = [randomize(gpt(13, 9, dim=16, depth=1, num_heads=2), scale=0.3),
                  randomize(Sequential([Bidirectional(LSTM(4, 5, return_sequences=True, peephole=True, seed=0)),
                                        TimeDistributed(Dense(10, 2, seed=1))]), scale=0.5)]
    for i, (model, x) in enumerate(zip(models, [ids(2, 6, 13), randn(2, 6, 4)])):
        expected = model.predict(x)
        model.to(device.name)
        path = model.export_onnx(tmp_path / f"m{i}.onnx", x.shape[1:])
        np.testing.assert_allclose(run_onnx(path, x), expected, **TOL)
