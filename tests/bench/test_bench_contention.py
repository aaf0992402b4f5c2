"""``python -m bench contention``: runs, prints its table and targets, writes JSON, and stops its busy process."""

from __future__ import annotations

import json

from bench import cli, contention


def test_contention_quick_run_writes_rows_and_stops_the_busy_process(tmp_path, capsys, monkeypatch):
    started = []
    real_popen = contention.subprocess.Popen

    def popen(*args, **kwargs):
        started.append(real_popen(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr(contention.subprocess, "Popen", popen)
    monkeypatch.setattr(contention, "BUSY_RAMP_S", 0.05)
    out = tmp_path / "contention.json"
    assert cli.main(["contention", "--quick", "--no-torch", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "slowdown" in text and "conv" in text and "mlp" in text and "target <= 2x" in text
    rows = json.loads(out.read_text())["rows"]
    assert {(r["workload"], r["library"]) for r in rows} == {("conv", "ours"), ("mlp", "ours")}
    assert all(len(r["slowdowns"]) == 2 and r["slowdown_median"] > 0 for r in rows)
    busy = [proc for proc in started if contention.BUSY_CODE in proc.args]
    assert len(busy) == 2 and all(proc.poll() is not None for proc in busy)  # one per round, all stopped
