"""The non-editable wheel ships library code only (issue 14, section 1).

The wheel is built from a copy of the source tree (so no stale ``build/``
folder of the checkout can leak files into it) and its file list checked: every
module of camadas's packages, the ``py.typed`` markers, and no tests, no
``conftest.py``, no pytest-benchmark suite.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from camadas.packages import PACKAGES

REPO = Path(__file__).resolve().parents[1]
SHIPPED = ("camadas", *PACKAGES)


def source_modules() -> set[str]:
    """Every ``.py`` file of the shipped packages, relative to the repository (POSIX paths)."""
    return {p.relative_to(REPO).as_posix() for name in SHIPPED for p in (REPO / name).rglob("*.py")
            if "__pycache__" not in p.parts}


@pytest.fixture(scope="module")
def wheel_files(tmp_path_factory) -> list[str]:
    src = tmp_path_factory.mktemp("src")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    for name in SHIPPED:
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for extra in ("tests", "benchmarks"):  # present in a checkout; must stay out of the wheel
        shutil.copytree(REPO / extra, src / extra, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "fixtures"))
    out = src / "dist"
    isolation = [] if importlib.util.find_spec("setuptools") is None else ["--no-build-isolation"]
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", str(src), "--no-deps", *isolation, "-q",
                           "-w", str(out)], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (wheel,) = out.glob("camadas-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        return archive.namelist()


@pytest.mark.slow
def test_wheel_ships_every_module_and_no_test(wheel_files):
    modules = {n for n in wheel_files if n.endswith(".py")}
    assert modules == source_modules()
    names = [Path(n).name for n in wheel_files]
    assert not [n for n in names if n == "conftest.py" or n.startswith("test_")]
    assert not [n for n in wheel_files if n.split("/")[0] in ("tests", "benchmarks")]


@pytest.mark.slow
def test_wheel_marks_the_packages_typed(wheel_files):
    assert {f"{name}/py.typed" for name in SHIPPED} <= set(wheel_files)


def test_no_test_module_inside_the_packages():
    """Quick check of the same rule on the source tree: pytest files live in tests/ and benchmarks/."""
    stray = [m for m in source_modules() if Path(m).name == "conftest.py" or Path(m).name.startswith("test_")]
    assert stray == []
