"""The chapter-26 examples run on the CPU in tiny settings (seconds) and return what they print."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import backend

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")


def load(name):
    spec = importlib.util.spec_from_file_location(f"camadas_example_{name}", EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def run(name, *args, out=None):
    """``main(["--device", "cpu", "--quick", *args, ...])`` of ``examples/<name>.py``; returns (module, result)."""
    module = load(name)
    argv = ["--device", "cpu", "--quick", *args] + (["--out", str(out)] if out is not None else ["--no-plot"])
    with backend.use_device("cpu"):
        return module, module.main(argv)


def test_vit_digits_quick(tmp_path, capsys):
    _, r = run("vit_digits", out=tmp_path)
    assert r["epochs"] == 2 and len(r["epoch_seconds"]) == 2 and len(r["loss"]) == 2
    assert 0.0 <= r["test_accuracy"] <= 1.0 and r["loss"][-1] < 2.5
    assert (tmp_path / "vit_digits_training.png").exists()
    assert "time per epoch" in capsys.readouterr().out


def test_vit_digits_helpers():
    module = load("vit_digits")
    X = np.arange(2 * 4 * 4).reshape(2, 4, 4, 1).astype(float) + 1
    shifted = module.shift_images(X, np.random.default_rng(0))
    assert shifted.shape == X.shape and set(np.unique(shifted)) <= set(np.unique(X)) | {0.0}
    rates = [module.learning_rate_at(e, 20, 1.0) for e in range(20)]
    assert rates[4] == 1.0 and rates[0] == 0.2 and all(a >= b for a, b in zip(rates[4:], rates[5:]))


def test_char_gpt_quick(tmp_path, capsys):
    module, r = run("char_gpt", out=tmp_path)
    assert r["steps"] == 3 and len(r["loss"]) == 3 and r["step_ms_median"] > 0
    assert len(r["samples"]) == 2 and all(text.startswith("ROMEO:\n") for text in r["samples"].values())
    assert (tmp_path / "char_gpt_loss.png").exists()
    text = capsys.readouterr().out
    assert "sample (temperature 0.8, top-k 10)" in text and "time per step" in text
    ids, alphabet = module.load_corpus(limit=500)
    assert module.decode(ids[:20], alphabet) == module.CORPUS.read_text(encoding="utf-8")[:20]
    X, y = module.windows(ids, [0, 5], 8)
    np.testing.assert_array_equal(X[:, 1:], y[:, :-1])


def test_reverse_strings_quick(capsys):
    module, r = run("reverse_strings", "--length", "4")
    assert r["epochs"] == 2 and 0.0 <= r["exact_match"] <= 1.0
    source, decoder_input, target = module.make_data(3, 5, seed=0)
    np.testing.assert_array_equal(target, source[:, ::-1])
    np.testing.assert_array_equal(decoder_input[:, 1:], target[:, :-1])
    assert (decoder_input[:, 0] == module.START).all()
    assert "exact match" in capsys.readouterr().out


def test_long_range_quick_returns_accuracy_by_length():
    module, r = run("long_range", "--lengths", "4,8")
    assert set(r["accuracy_by_length"]) == {4, 8} and len(r["epoch_seconds"]) == 1 and r["parameters"] > 0
    task = module.make_first_last_task(200, [3, 6], seed=1)
    X, lengths, y = task["X"], task["lengths"], task["y"]
    first, last = X[:, 0], X[np.arange(len(X)), lengths - 1]
    np.testing.assert_array_equal(first == last, y.astype(bool))
    assert (X[lengths == 3, 3:] == task["pad_id"]).all()


def test_lstm_vs_transformer_quick(tmp_path):
    module, r = run("lstm_vs_transformer", "--lengths", "4,8", out=tmp_path)
    assert set(r["runs"]) == {"Transformer", "LSTM"}
    for run_ in r["runs"].values():
        assert set(run_["accuracy_by_length"]) == {4, 8} and run_["parameters"] > 0 and run_["epoch_s_median"] > 0
    assert (tmp_path / "lstm_vs_transformer.png").exists()
    task = module.make_first_last_task(50, [3, 6], seed=2)
    front = module.pad_in_front(task)
    for i, L in enumerate(task["lengths"]):  # the same symbols, the padding moved in front
        np.testing.assert_array_equal(front[i, -L:], task["X"][i, :L])
        assert (front[i, :-L] == task["pad_id"]).all()
