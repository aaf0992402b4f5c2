"""``python -m bench optimizers`` runs end to end on tiny settings and refuses bad options (no timed assertions)."""

from __future__ import annotations

import json

import pytest

from bench import cli

TINY = ["optimizers", "--sizes", "2^8", "--batch-sizes", "4", "--rounds", "1", "--repeat", "1", "--steps", "1"]


def test_runs_prints_the_tables_and_writes_json(tmp_path, capsys):
    path = tmp_path / "optimizers.json"
    assert cli.main([*TINY, "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1. Adam step on one float32 parameter" in out and "2. MLP 784-256-256-10 training step" in out
    result = json.loads(path.read_text())
    assert [row["elements"] for row in result["adam"]] == [256]
    mlp = result["mlp"][0]
    assert mlp["batch"] == 4 and {"0.1 formulas", "fused", "fused + flat", "GEMM floor"} <= set(mlp["timings"])
    assert mlp["max loss difference"] < 1e-5          # same weights, same batches: the same losses


@pytest.mark.parametrize("args, message", [
    (["--sizes", "2^70"], "expected sizes up to 2^26"),
    (["--batch-sizes", "0"], "expected positive element counts"),
    (["--rounds", "0"], "expected an integer >= 1, got 0"),
    (["--seed", "-1"], "expected an integer >= 0"),
])
def test_bad_options_are_usage_errors(args, message, capsys):
    assert cli.main(["optimizers", *args]) == 2
    assert message in capsys.readouterr().err


def test_unwritable_json_is_refused_before_running(tmp_path, capsys):
    assert cli.main([*TINY, "--json", str(tmp_path / "missing" / "out.json")]) == 2
    assert "does not exist or is not writable" in capsys.readouterr().out
