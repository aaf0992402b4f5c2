"""Lint (ruff) and a type check of the public API (mypy), as CI runs them; configured in pyproject.toml.

Each tool runs as a subprocess from the repository root and is skipped, with the
reason, where it is not installed (``pip install -e '.[lint]'``).
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run_tool(module: str, *args: str, timeout: int = 300) -> subprocess.CompletedProcess:
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e '.[lint]')")
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, capture_output=True, text=True,
                          timeout=timeout)


def test_ruff_finds_nothing():
    proc = run_tool("ruff", "check", "--no-cache", ".")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.slow
def test_mypy_passes_on_the_packages(tmp_path):
    proc = run_tool("mypy", "--cache-dir", str(tmp_path / "mypy_cache"))  # files and options: pyproject.toml
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Success" in proc.stdout


def test_packages_are_marked_typed():
    from camadas.packages import PACKAGES

    missing = [name for name in ("camadas", *PACKAGES) if not (REPO / name / "py.typed").is_file()]
    assert missing == []
