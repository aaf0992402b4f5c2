"""Fixtures of the pytest-benchmark suite (``pytest bench --benchmark-only``).

``tests/conftest.py`` is not loaded for this directory, so the ``device``
fixture is defined here too: ``cpu``, plus ``gpu`` marked ``gpu`` and skipped
with the reason where no CUDA device answers.
"""

from __future__ import annotations

import pytest

import backend


def _gpu_param():
    reason = backend.unavailable_reason()
    marks = [pytest.mark.gpu]
    if reason is not None:
        marks.append(pytest.mark.skip(reason=f"no GPU: {reason}"))
    return pytest.param("gpu", marks=marks, id="gpu")


@pytest.fixture(params=[pytest.param("cpu", id="cpu"), _gpu_param()])
def device(request):
    """Benchmark device name, ``"cpu"`` or ``"gpu"`` (the latter skipped with the reason when absent)."""
    with backend.use_device(request.param):
        yield request.param
