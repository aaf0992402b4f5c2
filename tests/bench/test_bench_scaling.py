"""``python -m bench scaling``: the all-reduce model, the projections, the FLOP count and a quick run on MPI ranks."""

from __future__ import annotations

import json

import pytest

from bench import scaling
from bench.cli import main as cli_main


def test_ring_allreduce_model():
    assert scaling.allreduce_seconds(1e6, 1, 1e9, 1e-5) == 0.0
    assert scaling.allreduce_seconds(1e6, 2, 1e9, 1e-5) == pytest.approx(1e-5 + 1e-3)
    assert scaling.allreduce_seconds(1e6, 8, 1e9, 0.0) == pytest.approx(2 * 7 / 8 * 1e-3)


def test_flops_per_sample_of_the_mlp():
    model, shape = scaling.build("mlp")
    assert scaling.flops_per_sample(model, shape) == 3 * 2 * (784 * 1024 + 1024 * 1024 + 1024 * 10)


def test_projections_from_synthetic_measurements():
    row = {"model": "mlp", "ranks": 2, "rank_batch": 256, "step_seconds": 0.1, "allreduce_seconds": 0.01,
           "gradient_bytes": 8_000_000, "flops_per_sample": 1e7}
    rows = scaling.projections([row, dict(row, ranks=1)])
    assert {r["setting"] for r in rows} == {"CPU nodes, 10 GbE", "GPUs, one node (NVLink)",
                                            "GPU nodes x 8 (InfiniBand)"}
    for r in rows:
        assert 0 < r["efficiency"] <= 1 and r["speedup"] <= r["workers"]
        assert r["compute_seconds"] == pytest.approx(0.09 if r["compute_is"] == "measured" else 5e-4)
    ethernet = [r for r in rows if r["link"] == "ethernet"]
    assert [r["workers"] for r in ethernet] == [2, 4] and ethernet[0]["efficiency"] > ethernet[1]["efficiency"]


@pytest.mark.parametrize("argv, message", [
    (["scaling", "--ranks", "0"], "--ranks: expected counts >= 1"),
    (["scaling", "--ranks", "two"], "--ranks: expected comma-separated integers"),
    (["scaling", "--models", "resnet"], "--models: expected names from digits_cnn, mlp, got resnet"),
])
def test_bad_options(argv, message):
    with pytest.raises(SystemExit, match=message):
        cli_main(argv)


@pytest.mark.slow
def test_quick_run_on_one_and_two_ranks(tmp_path, capsys):
    pytest.importorskip("mpi4py", reason="the scaling benchmark needs mpi4py: pip install -e '.[distributed]'")
    if scaling.mpiexec() is None:
        pytest.skip("the scaling benchmark needs mpiexec: pip install -e '.[distributed]'")
    path = tmp_path / "scaling.json"
    assert cli_main(["scaling", "--quick", "--models", "digits_cnn", "--json", str(path)]) == 0
    out = capsys.readouterr().out
    assert "samples/s" in out and "Projected weak scaling" in out and "busbw GB/s" in out
    data = json.loads(path.read_text())
    assert [(r["model"], r["ranks"]) for r in data["rows"]] == [("digits_cnn", 1), ("digits_cnn", 2)]
    two = data["rows"][1]
    assert two["rank_batch"] == 32 and two["gradient_bytes"] == 4 * two["parameters"]
    assert 0 <= two["allreduce_seconds"] < two["step_seconds"] and two["allreduce_alone_seconds"] > 0
    assert {b["ranks"] for b in data["bandwidth"]} == {2} and data["projections"]
