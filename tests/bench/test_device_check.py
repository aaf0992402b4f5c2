"""``python -m bench device-check``: its CPU half end to end (the CI path), its robustness, its limits.

The GPU half cannot run here; on a GPU machine the command itself is the check.
"""

from __future__ import annotations

import json
import sys

import pytest

import backend
from bench import cli, device_check


@pytest.mark.skipif(backend.has_gpu(), reason="checks the CPU half; on a GPU machine run the command itself")
def test_cpu_half_end_to_end(tmp_path, capsys):
    out = tmp_path / "check"
    assert cli.main(["device-check", "--out", str(out), "--quick"]) == 0
    printed = capsys.readouterr().out
    files = sorted(p.name for p in out.iterdir())
    assert all(p.is_file() for p in out.iterdir())  # no subfolder
    assert len(files) <= 8 and set(files) <= set(device_check.FILES)
    assert {"summary.json", "device-check.log", "kernels.json", "activations.json", "activations.png",
            "training.json", "digits_cnn.json"} <= set(files)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["gpu_unavailable"] == backend.unavailable_reason()
    statuses = {name: part["status"] for name, part in summary["parts"].items()}
    assert statuses == {"gpu-tests": "skipped", "gpu-smoke": "skipped", "cudnn": "skipped", "kernels": "ok",
                        "activations": "ok", "training": "ok", "digits-cnn": "ok"}
    assert all(summary["parts"][n]["reason"] == "no GPU" for n in ("gpu-tests", "gpu-smoke", "cudnn"))
    assert "Skipped for want of a GPU: gpu-tests, gpu-smoke, cudnn" in printed
    assert printed.count(backend.unavailable_reason()) == 1  # the reason is said once
    assert "versions:" in printed and "numba" in summary["versions"]
    runs = json.loads((out / "digits_cnn.json").read_text())["runs"]
    assert list(runs) == ["cpu"] and 0 <= runs["cpu"]["test_accuracy"] <= 1
    log = (out / "device-check.log").read_text()
    assert "===== kernels: ok" in log and "===== digits-cnn: ok" in log


def test_a_failing_or_hanging_part_is_recorded_and_the_others_run(tmp_path, monkeypatch, capsys):
    py = sys.executable
    parts = [
        device_check.Part("boom", (py, "-c", "raise SystemExit(3)"), (py, "-c", "raise SystemExit(3)"), cap_s=30),
        device_check.Part("hang", (py, "-c", "import time; time.sleep(60)"),
                          (py, "-c", "import time; time.sleep(60)"), cap_s=1),
        device_check.Part("fine", (py, "-c", "print('fine')"), (py, "-c", "print('fine')"), cap_s=30),
    ]
    monkeypatch.setattr(device_check, "PARTS", parts)
    assert cli.main(["device-check", "--out", str(tmp_path), "--quick"]) == 1
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert {n: p["status"] for n, p in summary["parts"].items()} == {
        "boom": "failed (exit 3)", "hang": "timeout after 1 s", "fine": "ok"}
    assert "fine" in (tmp_path / "device-check.log").read_text()


def test_the_budget_skips_what_it_cannot_fit(tmp_path, monkeypatch):
    py = sys.executable
    monkeypatch.setattr(device_check, "PARTS", [
        device_check.Part("first", (py, "-c", "pass"), (py, "-c", "pass"), cap_s=30)])
    assert cli.main(["device-check", "--out", str(tmp_path), "--budget-s", "1"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["parts"]["first"] == {"status": "skipped", "reason": "the 1 s budget is spent"}


def test_bad_options_are_usage_errors(tmp_path, capsys):
    assert cli.main(["device-check", "--out", str(tmp_path), "--parts", "nope"]) == 2
    assert "--parts: expected names from gpu-tests" in capsys.readouterr().err
    (tmp_path / "file").write_text("")
    assert cli.main(["device-check", "--out", str(tmp_path / "file")]) == 2
    assert "--out: expected a directory, got the file" in capsys.readouterr().err
    assert cli.main(["device-check"]) == 2  # --out is required


def test_the_parts_fit_the_budget_and_the_files_fit_the_limit():
    assert sum(p.cap_s for p in device_check.PARTS) <= device_check.BUDGET_S
    assert len(device_check.FILES) <= 8
    logs = {p.log for p in device_check.PARTS if p.log}
    assert logs <= set(device_check.FILES)


def test_gpu_parts_run_with_numpy_standing_in_for_the_gpu(monkeypatch, capsys):
    """The GPU-only parts' own code (shapes, names, bookkeeping), run on NumPy arrays: every result is the CPU's."""
    import numpy as np

    monkeypatch.setattr(backend, "to_device", lambda array, device=None: np.asarray(array))
    smoke = device_check.gpu_smoke()
    assert len(smoke["checks"]) == 2 * (2 * 16 + 7) and smoke["failed"] == []
    check = device_check.cudnn_check(shapes=[((2, 8, 6, 3), 4)])
    assert [c["op"] for c in check["cases"]] == ["conv2d_forward", "conv2d_backward_input", "conv2d_backward_kernels",
                                                 "avg_pool2d_forward", "avg_pool2d_backward"]
    assert all(c["cudnn_vs_cpu"] == 0.0 and c["ours_vs_cpu"] == 0.0 and c["cudnn_served"] == 0
               for c in check["cases"])
    printed = capsys.readouterr().out
    assert printed.count("GPU_SMOKE ") == 1 and printed.count("CUDNN_CHECK ") == 1
