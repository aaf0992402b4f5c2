"""pytest-benchmark suite of the convolution and pooling kernels: ``pytest benchmarks --benchmark-only``.

The same cases as ``python -m bench kernels``, on small shapes, in
pytest-benchmark's format (``--benchmark-autosave``, ``--benchmark-json PATH``,
``pytest-benchmark compare``):

* conv2d 3x3, stride 1, padding 1 on (8, 16, 16, 8) -> 16 filters; max and
  average pooling 2x2 on (8, 16, 16, 16); float32 (``CAMADAS_BENCH_DTYPE``
  overrides);
* one benchmark per op x direction (forward, backward, forward+backward) x
  device x implementation: ``ours`` (the dispatched kernels), ``book`` (the
  book's loops on the same batch, one round: they take up to a second) and
  ``torch`` (skipped with the reason when PyTorch is not importable);
* groups ``<op>-<direction>-<device>``; ``extra_info`` holds the shape, the
  FLOPs (conv) or bytes (pooling) of one call and, for the book, the number of
  images it ran on;
* the first call (Numba compile) happens before timing; on the GPU the timed
  function synchronizes before returning.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from bench import kernels as kb
from bench.common import torch_or_none, torch_unavailable_reason
from bench.timing import synchronized

DTYPE = np.dtype(os.environ.get("CAMADAS_BENCH_DTYPE", "float32"))
CONV_SHAPE, FILTERS = (8, 16, 16, 8), 16
POOL_SHAPE = (8, 16, 16, 16)
OPS = ("conv2d", "max_pool2d", "avg_pool2d")
IMPLEMENTATIONS = ("ours", "book", "torch")

_CASES: dict = {}


def _case(op, device):
    key = (op, device)
    if key not in _CASES:
        _CASES.clear()  # hold one case's arrays at a time
        with_torch = torch_or_none() is not None
        if op == "conv2d":
            _CASES[key] = kb.conv_case(CONV_SHAPE, FILTERS, DTYPE, device, 0, book_images=CONV_SHAPE[0],
                                       with_torch=with_torch)
        else:
            _CASES[key] = kb.pool_case(op, POOL_SHAPE, DTYPE, device, 0, book_images=POOL_SHAPE[0],
                                       with_torch=with_torch)
    return _CASES[key]


@pytest.mark.parametrize("implementation", IMPLEMENTATIONS)
@pytest.mark.parametrize("direction", kb.DIRECTIONS)
@pytest.mark.parametrize("op", OPS)
def test_kernel(benchmark, device, op, direction, implementation):
    """Time one op, one direction, one implementation."""
    case = _case(op, device)
    benchmark.group = f"{op}-{direction}-{device}"
    benchmark.extra_info.update(op=op, direction=direction, device=device, dtype=DTYPE.name,
                                implementation=implementation, shape=list(case.shape), filters=case.filters,
                                unit=case.unit, work_per_call=case.work[direction])
    if implementation == "ours":
        fn = synchronized(case.ours[direction], device)
    elif implementation == "book":
        if case.book is None:
            pytest.skip("the book's loops run on NumPy arrays only (CPU)")
        if direction == "forward+backward":
            forward, backward = case.book["forward"], case.book["backward"]

            def fn():
                forward()
                return backward()
        else:
            fn = case.book[direction]
        benchmark.extra_info["book_images"] = case.book_images
        benchmark.extra_info["work_per_call"] = case.work[direction] * case.book_images / case.shape[0]
        benchmark.pedantic(fn, rounds=1, iterations=1)
        return
    else:
        if case.torch is None:
            pytest.skip(f"PyTorch comparison skipped: {case.torch_note or torch_unavailable_reason()}")
        fn = synchronized(case.torch[direction], device, case.torch_sync)
    fn()  # first call (Numba compile or cache load) outside the timing
    benchmark(fn)
