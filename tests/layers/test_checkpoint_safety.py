"""A checkpoint is untrusted input: hostile or malformed files are refused with CheckpointError, and nothing
is called, imported or allocated on their say-so (issue: reliability, section 2)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import tracemalloc

import numpy as np
import pytest
from layers.checkpoint import CheckpointError

import layers


def _small_model():
    return layers.Sequential([layers.Dense(3, 4, seed=0), layers.ReLU(), layers.Dense(4, 2, seed=1)])


def _write(path, architecture, arrays=None, version=2):
    entries = {"format": np.array("camadas.Sequential"),
               "architecture": np.array(json.dumps({"version": version, "model": architecture}))}
    entries.update(arrays or {})
    np.savez(path, **entries)
    return path


def _dense(args, kwargs=None):
    return {"__layer__": {"class": "Dense", "args": args, "kwargs": kwargs or {}}}


def _sequential(children):
    return {"class": "Sequential", "args": [children], "kwargs": {}}


@pytest.mark.parametrize("target", ["builtins:print", "os:system", "builtins:eval", "subprocess:Popen",
                                    "layers.initializers:get_initializer"])
def test_named_callables_are_never_called(tmp_path, capsys, target):
    arch = _sequential([_dense([2, 2], {"weight_init": {"__callable__": target}})])
    path = _write(tmp_path / "evil.npz", arch, {"param.0": np.zeros((2, 2), np.float32),
                                                "param.1": np.zeros(2, np.float32)}, version=1)
    with pytest.raises(CheckpointError, match=rf"evil.npz.*{target}.*not a registered initializer"):
        layers.Sequential.load(path)
    assert capsys.readouterr().out == ""  # print was not called


@pytest.mark.parametrize("cls", ["os:system", "builtins:print", "subprocess:Popen", "Layer", "layers.base:Layer"])
def test_named_classes_must_be_registered_layers(tmp_path, cls):
    arch = {"class": cls, "args": ["echo hacked"], "kwargs": {}}
    path = _write(tmp_path / "evil.npz", arch)
    with pytest.raises(CheckpointError, match="evil.npz.*no layer class is registered"):
        layers.Sequential.load(path)


def test_no_module_named_by_the_file_is_imported(tmp_path):
    arch = _sequential([{"__layer__": {"class": "antigravity:Fly", "args": [], "kwargs": {}}}])
    path = _write(tmp_path / "imp.npz", arch)
    with pytest.raises(CheckpointError, match="imp.npz"):
        layers.Sequential.load(path)
    assert "antigravity" not in sys.modules


def test_a_huge_declared_layer_is_refused_before_allocating(tmp_path):
    arch = _sequential([_dense([40000, 40000])])
    path = _write(tmp_path / "huge.npz", arch, {"param.0": np.zeros((2, 2), np.float32),
                                                "param.1": np.zeros(2, np.float32)})
    assert os.path.getsize(path) < 5000
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match=r"huge.npz.*param.0: expected shape \(40000, 40000\)"):
            layers.Sequential.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20, f"load allocated {peak / 2**20:.0f} MiB for a 5 KB file"


@pytest.mark.parametrize("bad", [np.zeros((3, 4), np.int64), np.zeros((3, 4), np.complex64),
                                 np.zeros((3, 4), bool), np.full((3, 4), "x")])
def test_parameters_must_be_float_arrays(tmp_path, bad):
    model = _small_model()
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    entries["param.0"] = bad
    np.savez(tmp_path / "typed.npz", **entries)
    with pytest.raises(CheckpointError, match=rf"typed.npz.*param.0: expected a float array.*{bad.dtype}"):
        layers.Sequential.load(tmp_path / "typed.npz")


def test_buffers_must_match_too(tmp_path):
    model = layers.Sequential([layers.Dense(2, 3), layers.BatchNormalization(3)])
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    entries["buffer.1.running_var"] = np.zeros(7, np.float32)
    np.savez(tmp_path / "buf.npz", **entries)
    with pytest.raises(CheckpointError, match=r"buf.npz.*buffer.1.running_var: expected shape \(3,\)"):
        layers.Sequential.load(tmp_path / "buf.npz")
    del entries["buffer.1.running_var"]
    np.savez(tmp_path / "nobuf.npz", **entries)
    with pytest.raises(CheckpointError, match="nobuf.npz.*buffers"):
        layers.Sequential.load(tmp_path / "nobuf.npz")


@pytest.mark.parametrize("depth", [100, 5000])
def test_deep_nesting_is_a_checkpoint_error(tmp_path, depth):
    opening = '{"class": "Sequential", "args": [[{"__layer__": '
    closing = '}]], "kwargs": {}}'
    model = opening * depth + '{"class": "Sequential", "args": [[]], "kwargs": {}}' + closing * depth
    text = '{"version": 2, "model": ' + model + "}"
    np.savez(tmp_path / "deep.npz", format=np.array("camadas.Sequential"), architecture=np.array(text))
    with pytest.raises(CheckpointError, match="deep.npz.*(nested|deep)"):
        layers.Sequential.load(tmp_path / "deep.npz")


def test_deep_json_is_a_checkpoint_error(tmp_path):
    text = '{"version": 2, "model": ' + "[" * 100000 + "]" * 100000 + "}"
    np.savez(tmp_path / "json.npz", format=np.array("camadas.Sequential"), architecture=np.array(text))
    with pytest.raises(CheckpointError, match="json.npz"):
        layers.Sequential.load(tmp_path / "json.npz")


@pytest.mark.parametrize("architecture", [
    [1, 2, 3],
    {"class": "Sequential", "args": {"a": 1}, "kwargs": {}},
    {"class": "Sequential", "args": [[1, 2]], "kwargs": {}},
    {"class": "Sequential", "args": [[{"__layer__": "Dense"}]], "kwargs": {}},
    {"class": "Dense", "args": [{"__tuple__": 3}], "kwargs": {}},
    {"class": "Dense", "args": [2, 2], "kwargs": {"weight_init": {"__dtype__": "object"}}},
    {"class": "Dense", "args": [2, 2], "kwargs": {"weight_init": {"__initializer__": "nope"}}},
    {"class": "Dense", "args": [2, 2], "kwargs": {"x": {"__other__": 1}}},
    {"class": 7, "args": [], "kwargs": {}},
    {"class": "Dense", "args": ["a", None], "kwargs": {}},
])
def test_malformed_architecture_is_a_checkpoint_error(tmp_path, architecture):
    path = _write(tmp_path / "bad.npz", architecture)
    with pytest.raises(CheckpointError, match="bad.npz"):
        layers.Sequential.load(path)


def test_malformed_headers_are_checkpoint_errors(tmp_path):
    np.savez(tmp_path / "fmt.npz", format=np.array(["camadas.Sequential"]), architecture=np.array("{}"))
    with pytest.raises(CheckpointError, match="fmt.npz.*'format' is not a string"):
        layers.Sequential.load(tmp_path / "fmt.npz")
    _write(tmp_path / "ver.npz", _sequential([]), version=99)
    with pytest.raises(CheckpointError, match="ver.npz.*version 99"):
        layers.Sequential.load(tmp_path / "ver.npz")
    model = _small_model()
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    entries["extra.0"] = np.zeros(3)
    np.savez(tmp_path / "extra.npz", **entries)
    with pytest.raises(CheckpointError, match="extra.npz.*unexpected entries"):
        layers.Sequential.load(tmp_path / "extra.npz")


def test_text_file_error_says_what_the_file_is_not(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointError) as info:
        layers.Sequential.load(text)
    message = str(info.value)
    assert "notes.txt" in message and "not a readable camadas checkpoint" in message
    assert "allow_pickle" not in message


def test_unregistered_user_layer_is_refused_at_save(tmp_path):
    from layers.base import Layer

    class Scale(Layer):  # local: cannot be named
        def forward(self, x):
            return x

    with pytest.raises(TypeError, match="defined inside a function"):
        layers.Sequential([Scale()]).save(tmp_path / "m.npz")
    assert os.listdir(tmp_path) == []


def test_stale_temporaries_of_a_crashed_save_are_removed(tmp_path):
    model = _small_model()
    path = tmp_path / "m.npz"
    dead_pid = 2**22 + 12345  # above the default pid_max: no such process
    stale = tmp_path / f".m.npz.{dead_pid}.abcd.tmp"
    stale.write_bytes(b"half a checkpoint")
    other = tmp_path / f".other.npz.{dead_pid}.abcd.tmp"
    other.write_bytes(b"someone else's")
    model.save(path)
    assert not stale.exists()
    assert other.exists()  # only temporaries of the same checkpoint are touched
    assert sorted(os.listdir(tmp_path)) == sorted(["m.npz", other.name])


@pytest.mark.slow
def test_kill_during_save_leaves_a_loadable_checkpoint_and_no_litter(tmp_path):
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.getcwd()!r})
        import layers
        model = layers.Sequential([layers.Dense(600, 600, seed=0), layers.Dense(600, 600, seed=1)])
        model.save({str(tmp_path / "m.npz")!r})
        print("ready", flush=True)
        while True:
            model.save({str(tmp_path / "m.npz")!r})
    """)
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE)
        assert proc.stdout.readline().strip() == b"ready"
        time.sleep(0.05 + 0.07 * attempt)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        model = layers.Sequential.load(tmp_path / "m.npz")  # the last complete checkpoint
        assert len(model.params) == 4
    _small_model().save(tmp_path / "m.npz")  # the next save cleans up what the killed ones left
    assert os.listdir(tmp_path) == ["m.npz"]
