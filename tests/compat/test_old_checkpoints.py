"""Checkpoints written by camadas 0.1 (classes named by module path, version 1) load and predict the same.

The files in ``tests/fixtures/checkpoints`` were written by
``tests/fixtures/checkpoints/make_v1.py`` with camadas 0.1 (commit c377ee7),
with the inputs and the predictions they gave then.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import layers

FIXTURES = Path(__file__).parents[1] / "fixtures" / "checkpoints"


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_version_1_checkpoint_loads_and_predicts_as_before(name):
    path = FIXTURES / f"{name}_v1.npz"
    with np.load(path) as data:
        assert json.loads(str(data["architecture"]))["version"] == 1
    model = layers.Sequential.load(path, device="cpu")
    expected = np.load(FIXTURES / "expected_v1.npz")
    # equal to float32 rounding: the fused normalization kernels (float64 statistics, FMA) round differently
    np.testing.assert_allclose(model.predict(expected[f"{name}_x"]), expected[f"{name}_y"], rtol=1e-6, atol=1e-7)


def test_version_1_checkpoint_keeps_its_structure():
    model = layers.Sequential.load(FIXTURES / "mlp_v1.npz", device="cpu")
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds == ["Dense", "PReLU", "BatchNormalization", "Dropout", "Sequential", "LayerNormalization",
                     "Dense", "Softmax"]
    assert model.layers[4].layers[1].approximate == "tanh"
    assert not np.allclose(model.layers[2].buffers["running_mean"], 0)  # trained statistics came back


def test_resaved_old_checkpoint_uses_public_names(tmp_path):
    model = layers.Sequential.load(FIXTURES / "cnn_v1.npz", device="cpu")
    path = model.save(tmp_path / "cnn_v2.npz")
    with np.load(path) as data:
        arch = json.loads(str(data["architecture"]))
    assert arch["version"] == 2 and arch["model"]["class"] == "Sequential"
    assert arch["model"]["args"][0][0]["__layer__"]["class"] == "Convolution2D"
    again = layers.Sequential.load(path, device="cpu")
    expected = np.load(FIXTURES / "expected_v1.npz")
    np.testing.assert_array_equal(again.predict(expected["cnn_x"]), expected["cnn_y"])
