"""``python -m bench attention``: a quick run prints the table and writes JSON with every case."""

from __future__ import annotations

import json

from bench.cli import main as cli_main


def test_quick_run_writes_every_case(tmp_path, capsys):
    path = tmp_path / "attention.json"
    status = cli_main(["attention", "--quick", "--device", "cpu", "--repeat", "2", "--warmup", "1", "--rounds", "1",
                       "--json", str(path)])
    assert status == 0
    out = capsys.readouterr().out
    assert "ours/PyTorch" in out and "batch 4, tokens 16, embed_dim 32, heads 4" in out
    data = json.loads(path.read_text())
    assert data["benchmark"] == "attention" and data["settings"]["quick"] is True
    rows = {row["case"]: row for row in data["rows"]}
    assert set(rows) == {"softmax", "attention", "encoder block"}
    for row in rows.values():
        assert row["device"] == "cpu" and row["ours_ms"] > 0
        assert row["timings"]["ours"]["median"] > 0
    assert rows["softmax"]["reference_ms"] > 0 and rows["softmax"]["copy_gbps"] > 0


def test_no_torch_leaves_the_comparison_out(tmp_path, capsys):
    status = cli_main(["attention", "--quick", "--no-torch", "--repeat", "1", "--warmup", "0", "--rounds", "1"])
    assert status == 0
    assert "PyTorch: not compared (--no-torch)" in capsys.readouterr().out
