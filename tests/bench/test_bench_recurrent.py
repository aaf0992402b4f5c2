"""``python -m bench recurrent``: the quick run end to end, its JSON and plots, the tasks, determinism."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench import recurrent
from bench.cli import main as cli_main

pytest.importorskip("matplotlib")


def test_quick_end_to_end_json_and_plots(tmp_path, capsys):
    path = tmp_path / "recurrent.json"
    status = cli_main(["recurrent", "--quick", "--device", "cpu", "--json", str(path), "--plot", str(tmp_path)])
    assert status == 0
    out = capsys.readouterr().out
    for text in ("camadas f+b", "book f+b", "adding on cpu", "recall on cpu", "|dE/dx_0| init", "s/epoch"):
        assert text in out, text
    data = json.loads(path.read_text())
    assert data["benchmark"] == "recurrent" and data["config"]["quick"] is True
    rows = data["speed"]["cpu"]["rows"]
    assert [r["cell"] for r in rows] == ["SimpleRNN", "LSTM", "GRU"]
    for r in rows:
        assert r["camadas_both"]["median"] > 0 and r["book_both"]["median"] > 0
        assert r["camadas_gflops"] > 0 and r["first_call_seconds"] > 0
    runs = data["memory"]["cpu"]["runs"]
    lengths = recurrent.QUICK_MEMORY["lengths"]
    assert len(runs) == len(recurrent.TASKS) * len(lengths) * len(recurrent.CELLS)
    for r in runs:
        assert r["grad_first_init"] > 0 and np.isfinite(r["grad_first_final"])
        assert len(r["loss"]) == len(r["epoch_seconds"]) == recurrent.QUICK_MEMORY["epochs"]
        assert 0 <= r["metric"] if r["task"] == "adding" else 0 <= r["metric"] <= 1
    for name in ("recurrent_memory.png", "recurrent_speed.png"):
        assert (tmp_path / name).stat().st_size > 10_000


def test_training_is_deterministic_for_a_seed():
    config = dict(recurrent.QUICK_MEMORY, lengths=(6,))
    a, b = (recurrent.train_memory("adding", "gru", 6, "cpu", config, seed=3) for _ in range(2))
    assert a["loss"] == b["loss"] and a["grad_first_final"] == b["grad_first_final"]


def test_the_tasks():
    rng = np.random.default_rng(0)
    X, y = recurrent.adding_problem(50, 10, rng)
    assert X.shape == (50, 10, 2) and y.shape == (50, 1) and X.dtype == y.dtype == np.float32
    markers = X[:, :, 1]
    assert (markers.sum(axis=1) == 2).all()
    assert (markers[:, :5].sum(axis=1) == 1).all()  # one marker in each half
    np.testing.assert_allclose(y[:, 0], (X[:, :, 0] * markers).sum(axis=1), rtol=1e-6)
    X, y = recurrent.recall_task(40, 7, rng)
    assert X.shape == (40, 7, 17) and y.dtype == np.int64 and (X.sum(axis=2) == 1).all()
    np.testing.assert_array_equal(X[np.arange(40), 0, y], 1.0)  # the symbol to recall
    assert (X[:, 1:-1, :8] == 0).all() and (X[:, -1, 16] == 1).all()  # distractors, then the marker
    with pytest.raises(ValueError, match="length: expected an int >= 2"):
        recurrent.adding_problem(3, 1, rng)


def test_bad_options_name_the_choices(capsys):
    with pytest.raises(SystemExit, match="--cells: expected names from rnn, lstm, lstm_peephole, gru"):
        cli_main(["recurrent", "--quick", "--cells", "tcn"])
    with pytest.raises(SystemExit, match="--lengths: expected"):
        cli_main(["recurrent", "--quick", "--lengths", "1,5"])
