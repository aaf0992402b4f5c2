"""Sequential.save / Sequential.load: one .npz, no pickle, atomic writes, clear errors."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

import backend
import layers
from layers.base import Layer
from layers.checkpoint import CheckpointError
from optimizers import SGD


@layers.register_layer
class Cube(Layer):
    """A user layer defined at module level and registered: y = scale * x^3 (rebuilt with its args)."""

    def __init__(self, scale=1.0, shape=(1,)):
        super().__init__()
        self.scale = scale
        self.shape = shape

    def forward(self, input_data):
        self.input = input_data
        return self.scale * input_data**3

    def backward(self, grad_output):
        return grad_output * 3 * self.scale * self.input**2, None


def _data(n=32, features=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, features)).astype(np.float32)
    y = (X[:, :1] - 0.5 * X[:, 1:2]).astype(np.float32)
    return X, y


def _trained_model():
    X, y = _data()
    model = layers.Sequential([
        layers.Dense(4, 8, seed=0),
        layers.BatchNormalization(8, momentum=0.5),
        Cube(scale=0.5, shape=(8,)),
        layers.Dropout(0.25, seed=1),
        layers.Dense(8, 1, seed=2),
    ])
    model.fit(X, y, loss="mse", optimizer=SGD(0.01), epochs=3, batch_size=8, verbose=0, seed=0)
    return model, X


def test_round_trip_gives_identical_predictions_and_buffers(tmp_path, device):
    model, X = _trained_model()
    model.to(device)
    path = tmp_path / "model.npz"
    assert model.save(path) == os.fspath(path)
    loaded = layers.Sequential.load(path)
    assert [type(layer) for layer in loaded.layers] == [type(layer) for layer in model.layers]
    assert loaded.layers[2].scale == 0.5 and loaded.layers[2].shape == (8,)  # tuple kept as tuple
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    for key, value in model.buffers.items():
        np.testing.assert_array_equal(backend.to_numpy(loaded.buffers[key]), backend.to_numpy(value))
    assert not np.allclose(backend.to_numpy(model.buffers["1.running_mean"]), 0)  # really trained statistics
    for p, q in zip(model.params, loaded.params):
        assert p.dtype == q.dtype and p.shape == q.shape
    # Aliases are rebound: the layer attribute is the array in params.
    assert loaded.layers[0].W is loaded.layers[0].params[0]
    assert loaded.layers[1].buffers["running_var"] is loaded.layers[1].running_var


def test_loaded_model_keeps_training(tmp_path):
    X, y = _data()
    model = layers.Sequential([layers.Dense(4, 8, seed=0), Cube(0.3), layers.Dense(8, 1, seed=1)])
    model.save(tmp_path / "m.npz")
    loaded = layers.Sequential.load(tmp_path / "m.npz")
    before = loaded.evaluate(X, y, loss="mse")["loss"]
    W = loaded.layers[0].W
    loaded.fit(X, y, loss="mse", optimizer=SGD(0.05), epochs=5, batch_size=8, verbose=0)
    assert loaded.layers[0].W is W and loaded.params[0] is W  # the optimizer updated the layer's own array
    assert loaded.evaluate(X, y, loss="mse")["loss"] < before


def test_float64_model_round_trip(tmp_path, float64):
    model = layers.Sequential([layers.Dense(3, 2, seed=0), Cube(), layers.Dense(2, 1, seed=1)])
    model.save(tmp_path / "m64.npz")
    backend.set_default_dtype(np.float32)  # loading does not depend on the default dtype
    loaded = layers.Sequential.load(tmp_path / "m64.npz")
    assert all(p.dtype == np.float64 for p in loaded.params)
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_conv_model_round_trip(tmp_path):
    conv = pytest.importorskip("layers.conv", reason="Convolution2D not written yet")
    pooling = pytest.importorskip("layers.pooling", reason="pooling layers not written yet")
    flatten = pytest.importorskip("layers.flatten", reason="Flatten not written yet")
    model = layers.Sequential([
        conv.Convolution2D(1, 2, (3, 3), stride=1, padding=1),
        pooling.MaxPooling2D(pool_size=(2, 2)),
        flatten.Flatten(),
        layers.Dense(2 * 3 * 3, 2, seed=0),
    ], input_shape=(6, 6, 1))
    x = np.random.default_rng(0).standard_normal((3, 6, 6, 1)).astype(np.float32)
    model.save(tmp_path / "conv.npz")
    loaded = layers.Sequential.load(tmp_path / "conv.npz")
    assert loaded.input_shape == (6, 6, 1)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_nested_sequential_round_trip(tmp_path):
    inner = layers.Sequential([layers.Dense(3, 3, seed=0), Cube(0.1)])
    model = layers.Sequential([inner, layers.Dense(3, 1, seed=1)])
    model.save(tmp_path / "nested.npz")
    loaded = layers.Sequential.load(tmp_path / "nested.npz")
    assert isinstance(loaded.layers[0], layers.Sequential)
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_file_holds_architecture_json_and_no_pickle(tmp_path):
    model, _ = _trained_model()
    path = model.save(tmp_path / "m.npz")
    with np.load(path, allow_pickle=False) as data:
        assert str(data["format"]) == "camadas.Sequential"
        arch = json.loads(str(data["architecture"]))
        assert {f"param.{k}" for k in range(len(model.params))} <= set(data.files)
        assert "buffer.1.running_mean" in data.files
    assert arch["version"] == 2
    specs = arch["model"]["args"][0]
    assert specs[0]["__layer__"]["class"] == "Dense"  # the public name, not a file path
    assert specs[2]["__layer__"]["class"] == "tests.layers.test_save_load:Cube"  # a registered user layer
    assert specs[0]["__layer__"]["args"] == [4, 8]


def test_saved_on_any_device_loads_on_the_cpu(tmp_path, device):
    model = layers.Sequential([layers.Dense(2, 2, seed=0)])
    assert backend.device_of(model.params[0]) == device
    model.save(tmp_path / "m.npz")
    loaded = layers.Sequential.load(tmp_path / "m.npz", device="cpu")
    assert all(isinstance(p, np.ndarray) for p in loaded.params)
    np.testing.assert_array_equal(loaded.params[0], backend.to_numpy(model.params[0]))


# -- failures -----------------------------------------------------------------------------
def test_missing_file_names_the_path(tmp_path):
    path = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError, match="nope.npz"):
        layers.Sequential.load(path)


def test_truncated_file_names_the_path(tmp_path):
    model, _ = _trained_model()
    path = model.save(tmp_path / "m.npz")
    data = open(path, "rb").read()
    for cut in (len(data) // 2, 100, 0):
        truncated = tmp_path / f"cut{cut}.npz"
        truncated.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"cut{cut}.npz.*not a readable camadas checkpoint"):
            layers.Sequential.load(truncated)
    assert issubclass(CheckpointError, ValueError)


def test_foreign_files_name_the_path(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(CheckpointError, match="notes.txt"):
        layers.Sequential.load(text)
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(3))
    with pytest.raises(CheckpointError, match="other.npz.*not a camadas checkpoint"):
        layers.Sequential.load(other)
    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(CheckpointError, match="single.npy"):
        layers.Sequential.load(single)
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, format=np.array("camadas.Sequential"), architecture=np.array([{"x": 1}], dtype=object))
    with pytest.raises(CheckpointError, match="pickled.npz"):
        layers.Sequential.load(pickled)


def _rewrite(path, out, mutate):
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    arch = json.loads(str(entries["architecture"]))
    mutate(arch, entries)
    entries["architecture"] = np.array(json.dumps(arch))
    np.savez(out, **entries)
    return out


def test_checkpoint_only_builds_registered_layers(tmp_path):
    path = layers.Sequential([layers.Dense(2, 2)]).save(tmp_path / "m.npz")

    def to_os_system(arch, entries):
        arch["model"]["args"][0][0]["__layer__"]["class"] = "os:system"

    bad = _rewrite(path, tmp_path / "evil.npz", to_os_system)
    with pytest.raises(CheckpointError, match="evil.npz.*no layer class is registered as 'os:system'"):
        layers.Sequential.load(bad)

    def to_unimported(arch, entries):
        arch["model"]["args"][0][0]["__layer__"]["class"] = "some_plugin_never_imported:Layer"

    bad = _rewrite(path, tmp_path / "plugin.npz", to_unimported)
    with pytest.raises(CheckpointError, match="plugin.npz.*no layer class is registered"):
        layers.Sequential.load(bad)
    assert "some_plugin_never_imported" not in __import__("sys").modules  # nothing was imported


def test_weights_that_do_not_fit_the_architecture(tmp_path):
    path = layers.Sequential([layers.Dense(2, 2)]).save(tmp_path / "m.npz")

    def wrong_shape(arch, entries):
        entries["param.0"] = np.zeros((3, 3), dtype=np.float32)

    bad = _rewrite(path, tmp_path / "shape.npz", wrong_shape)
    with pytest.raises(CheckpointError, match=r"shape.npz.*param.0: expected shape \(2, 2\)"):
        layers.Sequential.load(bad)

    def missing(arch, entries):
        del entries["param.1"]

    bad = _rewrite(path, tmp_path / "missing.npz", missing)
    with pytest.raises(CheckpointError, match="missing.npz.*2 parameter arrays but the file holds 1"):
        layers.Sequential.load(bad)


def test_no_partial_file_when_writing_fails(tmp_path, monkeypatch):
    model, X = _trained_model()
    path = tmp_path / "m.npz"
    model.save(path)
    before = path.read_bytes()
    other = layers.Sequential([layers.Dense(4, 1, seed=9)])

    def failing_savez(file, *args, **kwargs):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        other.save(path)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["m.npz"]  # no temporary file left behind
    assert path.read_bytes() == before  # the previous checkpoint is intact
    np.testing.assert_array_equal(layers.Sequential.load(path).predict(X), model.predict(X))


def test_save_refuses_what_it_cannot_rebuild(tmp_path):
    class Local(Layer):
        def forward(self, x):
            return x

        def backward(self, g):
            return g, None

    with pytest.raises(TypeError, match="defined inside a function"):
        layers.Sequential([Local()]).save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match="lambda"):
        layers.Sequential([layers.Dense(2, 2, weight_init=lambda shape, i, o, rng, dtype: np.zeros(shape, dtype))]
                          ).save(tmp_path / "m.npz")
    with pytest.raises(TypeError, match=r"args\[0\].*type object"):
        layers.Sequential([Cube(scale=object())]).save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []
    with pytest.raises(FileNotFoundError, match="does not exist"):
        layers.Sequential([Cube()]).save(tmp_path / "no" / "dir" / "m.npz")
