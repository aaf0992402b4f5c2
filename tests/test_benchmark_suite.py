"""The pytest-benchmark suite lives in ``benchmarks/`` (outside the shipped packages) and still collects."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def test_benchmark_suite_collects():
    pytest.importorskip("pytest_benchmark", reason="the benchmark suite needs pytest-benchmark (the test extra)")
    proc = subprocess.run([sys.executable, "-m", "pytest", "benchmarks", "--collect-only", "-q", "-p",
                           "no:cacheprovider"], capture_output=True, text=True, timeout=300, cwd=REPO)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "test_bench_activations.py::test_activation" in proc.stdout
    assert "test_bench_kernels.py::" in proc.stdout
