"""``python -m bench training``: quick end-to-end run, JSON contents, determinism on the CPU."""

from __future__ import annotations

import json

import numpy as np
import pytest

import backend
from bench import training
from bench.cli import main as cli_main

pytest.importorskip("matplotlib")

RUN_KEYS = {
    "activation", "family", "init", "device", "train_accuracy", "test_accuracy", "epochs_to_90",
    "grad_norms_init", "grad_norms_epoch1", "dead_fraction", "dead_fraction_per_layer", "max_grad_norm",
    "max_grad_norm_per_layer", "seconds_per_epoch", "first_epoch_seconds", "epoch_seconds", "loss",
    "val_accuracy",
}
TIMING_KEYS = {"seconds_per_epoch", "first_epoch_seconds", "epoch_seconds"}


def test_quick_end_to_end_json_and_plots(tmp_path, capsys):
    path = tmp_path / "training.json"
    status = cli_main(["training", "--quick", "--device", "cpu", "--activations", "relu,sigmoid,selu,prelu",
                       "--json", str(path), "--plot", str(tmp_path / "plots")])
    assert status == 0
    out = capsys.readouterr().out
    for header in ("activation", "test %", "ep->90%", "dead %", "max |g|", "s/epoch cpu",
                   "Gradient norm per layer at initialization", "after the first epoch"):
        assert header in out, header
    data = json.loads(path.read_text())
    assert data["benchmark"] == "training"
    assert data["config"]["epochs"] == training.QUICK_EPOCHS and data["config"]["depth"] == 8
    assert "python" in data["environment"]
    runs = data["devices"]["cpu"]["runs"]
    assert list(runs) == ["relu", "sigmoid", "selu", "prelu"]
    for name, r in runs.items():
        assert RUN_KEYS <= set(r), name
        assert len(r["grad_norms_init"]) == 9 and len(r["grad_norms_epoch1"]) == 9   # 8 hidden + output
        assert len(r["dead_fraction_per_layer"]) == 8
        assert len(r["loss"]) == len(r["val_accuracy"]) == len(r["epoch_seconds"]) == training.QUICK_EPOCHS
        assert all(g > 0 and np.isfinite(g) for g in r["grad_norms_init"])
        assert r["max_grad_norm"] > 0 and 0 <= r["dead_fraction"] <= 1
        assert 0 <= r["test_accuracy"] <= 1 and r["seconds_per_epoch"] > 0
    assert runs["relu"]["init"] == "he_normal"
    assert runs["sigmoid"]["init"] == "xavier_uniform"
    assert runs["selu"]["init"] == "lecun_normal"
    # Vanishing gradients (section 7.8): in the 8-layer sigmoid net the first layer gets a far
    # smaller gradient than the output layer at initialization; ReLU with He init much less so.
    sig, relu = runs["sigmoid"]["grad_norms_init"], runs["relu"]["grad_norms_init"]
    assert sig[0] / sig[-1] < 0.01
    assert relu[0] / relu[-1] > 10 * sig[0] / sig[-1]
    for name in ("training_loss.png", "training_grad_norms.png"):
        assert (tmp_path / "plots" / name).stat().st_size > 10_000


def _without_timings(result):
    return {name: {k: v for k, v in r.items() if k not in TIMING_KEYS}
            for name, r in result["devices"]["cpu"]["runs"].items()}


def test_deterministic_on_the_cpu():
    kwargs = dict(epochs=2, seed=3, depth=3, width=16, log=lambda *a: None)
    first = training.compare(["tanh", "rrelu", "noisy_relu"], ["cpu"], **kwargs)
    second = training.compare(["tanh", "rrelu", "noisy_relu"], ["cpu"], **kwargs)
    assert _without_timings(first) == _without_timings(second)
    other_seed = training.compare(["tanh"], ["cpu"], **{**kwargs, "seed": 4})
    assert _without_timings(other_seed)["tanh"]["loss"] != _without_timings(first)["tanh"]["loss"]


def test_every_sigmoidal_rectifier_and_modern_activation_by_default():
    names = [n for names in training.activation_families().values() for n in names]
    assert "softmax" not in names
    for expected in ("sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh", "relu", "leaky_relu", "prelu",
                     "rrelu", "elu", "selu", "noisy_relu", "gelu", "silu", "softplus", "mish"):
        assert expected in names


def test_dead_units_counts_a_killed_relu_layer():
    from layers import Dense

    model = training.build_model("relu", 4, 3, depth=2, width=5, seed=0)
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    dense[1].W[:, :2] = 0.0
    dense[1].b[:2] = -1.0                     # units 0 and 1 of the second layer never fire
    X = np.random.default_rng(0).standard_normal((50, 4)).astype(np.float32)
    fractions = training.dead_unit_fractions(model, X)
    assert len(fractions) == 2
    assert fractions[1] >= 2 / 5
    assert model.training                      # training mode restored


def test_gpu_row_unavailable_with_reason():
    if backend.has_gpu():
        pytest.skip("a GPU answers here")
    result = training.compare(["relu"], ["all"], epochs=1, depth=2, width=8, log=lambda *a: None)
    gpu = result["devices"]["gpu"]
    assert gpu["available"] is False and gpu["reason"]
    text = training.report(result)
    assert "gpu: not measured (unavailable: see the GPU line above)" in text
    assert text.count(gpu["reason"]) == 1  # said once, on the environment's GPU line


def test_unknown_activation_is_a_usage_error(capsys):
    assert cli_main(["training", "--quick", "--device", "cpu", "--activations", "relu,nope"]) == 2
    assert "unknown activation 'nope'" in capsys.readouterr().err  # a usage error, on stderr
