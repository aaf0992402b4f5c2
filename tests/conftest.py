"""Shared fixtures (``device`` runs a test on the CPU and, where one answers, the GPU) and the skip summary."""

from __future__ import annotations

from collections import Counter

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


def pytest_report_header(config):
    """The machine the tests ran on: the thread pools (threadpoolctl, Numba) and whether a GPU answers."""
    from backend.host import describe_thread_pools

    gpu = backend.unavailable_reason()
    return [f"camadas threads: {describe_thread_pools()}", f"camadas gpu: {'available' if gpu is None else gpu}"]


def skip_reasons(reports) -> Counter:
    """Count skipped tests by reason (the text after ``Skipped: ``), whatever file or line they come from."""
    counts: Counter = Counter()
    for report in reports:
        longrepr = report.longrepr
        reason = longrepr[2] if isinstance(longrepr, tuple) and len(longrepr) == 3 else str(longrepr)
        counts[reason.removeprefix("Skipped: ")] += 1
    return counts


def pytest_terminal_summary(terminalreporter):
    """One line per distinct skip reason with its count (``-rs`` still lists them by file and line).

    The GPU skips share one reason (what is missing and how to install it);
    pytest's own ``-ra`` summary repeats it for every test location.
    """
    counts = skip_reasons(terminalreporter.stats.get("skipped", []))
    if not counts:
        return
    terminalreporter.section("skipped, by reason", sep="-")
    for reason, count in counts.most_common():
        terminalreporter.line(f"SKIPPED [{count}] {reason}")
