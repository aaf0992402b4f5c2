"""``python -m bench models`` runs end to end on tiny settings and its twins compute the same (no timed assertions)."""

from __future__ import annotations

import importlib.util
import json
import pathlib
import sys

import numpy as np
import pytest

from bench import cli, models

pytest.importorskip("torch", reason="the twins are PyTorch models")


def test_quick_run_prints_the_tables_and_writes_json(tmp_path, capsys):
    path = tmp_path / "models.json"
    assert cli.main(["models", "--quick", "--sections", "mlp,deep,per-call", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "Training steps through fit" in out and "Same math" in out and "One layer, forward + backward" in out
    result = json.loads(path.read_text())
    assert result["cnn"] == [] and [row["model"] for row in result["mlp"] + result["deep"]] == [
        "MLP 784-256-256-10, Adam, batch 8", "deep MLP 8 x 64, momentum SGD, batch 32"]
    for row in result["mlp"] + result["deep"]:
        assert row["max loss difference"] < 1e-5, row["model"]     # the same weights, the same batches
        assert {"camadas", "camadas flat"} <= set(row["losses"]) and any(n.startswith("torch") for n in row["losses"])
    assert {"GEMM floor", "torch fused Adam"} <= set(result["mlp"][0]["timings"])
    assert {(row["layer"], row["batch"]) for row in result["per-call"]} == {("ReLU", 1), ("Dense(64, 64)", 1)}


def test_the_cnn_twin_computes_what_the_cnn_computes():
    import torch

    model = models.digits_cnn(0)
    x = np.random.default_rng(0).random((5, 8, 8, 1)).astype(np.float32)
    for channels_last in (False, True):
        twin = models.torch_twin(model, channels_last)
        inputs = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
        if channels_last:
            inputs = inputs.contiguous(memory_format=torch.channels_last)
        with torch.no_grad():
            np.testing.assert_allclose(twin(inputs).numpy(), model.predict(x), rtol=1e-5, atol=1e-6)


def test_the_bench_cnn_is_the_example_model():
    path = pathlib.Path(__file__).resolve().parents[2] / "examples"
    sys.path.insert(0, str(path))
    try:
        spec = importlib.util.spec_from_file_location("digits_cnn_example", path / "digits_cnn.py")
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
    finally:
        sys.path.remove(str(path))
    ours, theirs = models.digits_cnn(3), example.build_model(3)
    assert repr(ours) == repr(theirs)
    assert all(np.array_equal(a, b) for a, b in zip(ours.params, theirs.params))


@pytest.mark.parametrize("args, message", [
    (["--sections", "cnn,gpu"], "expected a comma-separated list of cnn, mlp, deep, per-call"),
    (["--rounds", "0"], "expected an integer >= 1, got 0"),
    (["--batch-sizes", "0"], "expected positive element counts"),
])
def test_bad_options_are_usage_errors(args, message, capsys):
    assert cli.main(["models", *args]) == 2
    assert message in capsys.readouterr().err
