"""Fixtures of the pytest-benchmark suite (``pytest benchmarks --benchmark-only``).

``tests/conftest.py`` is not loaded for this directory, so the ``device``
fixture is defined here too, over the same parametrisation (``DEVICES`` of
``tests/conftest.py``, loaded by path): ``cpu``, plus ``gpu`` marked ``gpu``
and skipped with the reason where no CUDA device answers.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import backend


def _load_tests_conftest():
    """``tests/conftest.py`` as a plain module (it is in no package, and not this directory's conftest)."""
    path = Path(__file__).resolve().parent.parent / "tests" / "conftest.py"
    spec = importlib.util.spec_from_file_location("camadas_tests_conftest", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


DEVICES = _load_tests_conftest().DEVICES


@pytest.fixture(params=DEVICES)
def device(request):
    """Benchmark device name, ``"cpu"`` or ``"gpu"`` (the latter skipped with the reason when absent)."""
    with backend.use_device(request.param):
        yield request.param
