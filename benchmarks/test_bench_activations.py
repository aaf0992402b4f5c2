"""pytest-benchmark suite of the activations: ``pytest benchmarks --benchmark-only``.

The same measurements as ``python -m bench activations``, in pytest-benchmark's
format, so runs can be saved and compared over time
(``--benchmark-autosave``, ``--benchmark-json PATH``,
``pytest-benchmark compare``).

* One benchmark per activation x direction (forward/backward) x device x
  implementation: ``fast`` (the dispatched kernels), ``book`` (the book's NumPy
  code) and ``torch`` (PyTorch, skipped with the reason when not importable).
* Groups ``<family>-<direction>-<device>``; each group also holds a
  ``copy`` benchmark moving the same number of bytes as the activations (the
  copy roofline), so pytest-benchmark's table shows how far each is from it.
* ``extra_info`` carries activation, family, direction, device, dtype, size,
  implementation and bytes moved per call; divide by the mean time for GB/s.
* On the GPU the timed function synchronizes the device before returning, so
  pytest-benchmark's wall clock covers the kernel.
* The first call (Numba compile) happens before timing.

Settings from the environment: ``CAMADAS_BENCH_SIZE`` (elements, default
``2^20``; ``65536`` and ``2^16`` forms) and ``CAMADAS_BENCH_DTYPE``
(``float32`` default, or ``float64``).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import kernels.activations as kact
from bench import activation_ops as ops
from bench.common import cupy_or_none, parse_sizes, torch_or_none, torch_unavailable_reason
from bench.timing import synchronized

SIZE = parse_sizes(os.environ.get("CAMADAS_BENCH_SIZE", "2^20"))[0]
DTYPE = np.dtype(os.environ.get("CAMADAS_BENCH_DTYPE", "float32"))
IMPLEMENTATIONS = ("fast", "book", "torch")

_INPUTS: dict = {}


def _inputs(device: str):
    """Inputs shared by every benchmark of a device (drawn once per session)."""
    if device not in _INPUTS:
        _INPUTS.clear()  # never hold both devices' arrays
        _INPUTS[device] = ops.make_inputs(SIZE, DTYPE, device, seed=0)
    return _INPUTS[device]


def _label(benchmark, family, direction, device, **info):
    benchmark.group = f"{family}-{direction}-{device}"
    benchmark.extra_info.update(
        family=family, direction=direction, device=device, dtype=DTYPE.name, size=SIZE, **info
    )


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("direction", ("forward", "backward"))
@pytest.mark.parametrize("name", kact.ACTIVATIONS)
def test_activation(benchmark, device, name, direction, implementation):
    """Median time of one activation, one direction, one implementation."""
    if implementation == "torch" and torch_or_none() is None:
        pytest.skip(f"PyTorch comparison skipped: {torch_unavailable_reason()}")
    inputs = _inputs(device)
    compare = {"fast": (), "book": ("numpy",), "torch": ("torch",)}[implementation]
    case = ops.make_case(name, inputs, compare=compare)
    case.y = case.forward()  # also the first call: compiles before timing
    case.backward()
    fn = {
        ("fast", "forward"): case.forward,
        ("fast", "backward"): case.backward,
        ("book", "forward"): case.book_forward,
        ("book", "backward"): case.book_backward,
        ("torch", "forward"): case.torch_forward,
        ("torch", "backward"): case.torch_backward,
    }[(implementation, direction)]
    if fn is None:
        pytest.skip(case.torch_note or f"no {implementation} implementation of {name} on {device}")
    try:
        fn()
    except Exception as exc:  # e.g. the book's NumPy code on CuPy arrays
        pytest.skip(f"{implementation} {name} {direction} does not run on {device}: {type(exc).__name__}: {exc}")
    arrays = ops.traffic_arrays(name)[direction]
    _label(
        benchmark,
        case.family,
        direction,
        device,
        activation=name,
        implementation=implementation,
        bytes=arrays * SIZE * DTYPE.itemsize,
    )
    sync_fn = torch_or_none().cuda.synchronize if implementation == "torch" and device == "gpu" else None
    benchmark(synchronized(fn, device, sync_fn))


@pytest.mark.parametrize("direction", ("forward", "backward"))
@pytest.mark.parametrize("family", tuple(kact.FAMILIES))
def test_copy_roofline(benchmark, device, family, direction):
    """A plain array copy moving the bytes of a typical activation of the group (2 arrays forward, 3 backward)."""
    xp = np if device == "cpu" else cupy_or_none()
    arrays = 2 if direction == "forward" else 3
    n = SIZE * arrays // 2
    src = xp.arange(n, dtype=DTYPE)
    dst = xp.empty_like(src)
    _label(benchmark, family, direction, device, activation="copy", implementation="copy",
           bytes=arrays * SIZE * DTYPE.itemsize)
    benchmark(synchronized(lambda: xp.copyto(dst, src), device))
