"""Shared fixtures: the ``device`` fixture runs a test on the CPU and, where one answers, the GPU."""

from __future__ import annotations

import numpy as np
import pytest

import backend


def _gpu_param():
    reason = backend.unavailable_reason()
    marks = [pytest.mark.gpu]
    if reason is not None:
        marks.append(pytest.mark.skip(reason=f"no GPU: {reason}"))
    return pytest.param("gpu", marks=marks, id="gpu")


DEVICES = [pytest.param("cpu", id="cpu"), _gpu_param()]


@pytest.fixture(params=DEVICES)
def device(request):
    """Run the test body with ``backend.use_device(name)`` active; yields the Device."""
    with backend.use_device(request.param) as dev:
        yield dev


@pytest.fixture
def float64():
    """Make float64 the default dtype for the test (gradient checks), then restore."""
    previous = backend.set_default_dtype(np.float64)
    try:
        yield np.float64
    finally:
        backend.set_default_dtype(previous)


@pytest.fixture
def rng():
    """A NumPy generator with a fixed seed."""
    return np.random.default_rng(1234)
