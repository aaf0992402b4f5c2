"""Helper threads shared by the CPU kernels (activations, pooling, convolution).

Why Python threads and not ``numba.prange``: measured on the 2-core machine, the
OpenMP workers Numba leaves spinning after a ``parallel=True`` region take the
cores from NumPy's OpenBLAS threads in a training step that alternates a matrix
product with an activation or a pooling (a (64 x 128) Dense step went from 23 us
to 28 ms; pooling fwd+bwd on (32, 28, 28, 16) from 0.47 to 3.5 ms). The kernels
are ``nogil`` Numba functions, so a plain ``ThreadPoolExecutor`` runs them in
parallel, and its idle threads sleep instead of spinning.

* :func:`helper_pool` is the one executor of the library (``workers`` threads,
  recreated when ``numba.set_num_threads`` changes the count).
* :func:`run_rows` splits a row range over the calling thread and the helpers,
  in chunks that start at multiples of ``align``: a kernel that works in
  blocks of ``align`` rows from its first row then sees the same blocks
  whatever the number of threads, so its results do not depend on it.
* :func:`blas_threads_for`: a BLAS product too small to split runs on one
  BLAS thread, so BLAS's workers (which spin after each parallel call, and
  which the main thread waits for) stay asleep beside these threads.
"""

from __future__ import annotations

import itertools
import threading

from contextlib import nullcontext

from backend.host import blas_threads

from .jit import parallel_threads

#: Default of :func:`run_rows`'s ``min_elements``: below it a call runs on the calling thread alone.
PARALLEL_MIN_ELEMENTS = 1 << 21
#: Chunks per thread: small chunks let a running thread take over the work of a descheduled one.
CHUNKS_PER_THREAD = 4

#: BLAS products of fewer multiply-adds run on one BLAS thread (:func:`blas_threads_for`): about 30-60 us on
#: one core, where a second thread gains less than a descheduled BLAS worker can cost. 2^22, not 2^25: on a
#: quiet 2-core machine the MLP 784-256-256-10 step (products of 6-26 M multiply-adds) took 1.56 ms at
#: batch 128 with one BLAS thread and 0.92 ms with two, and beside one busy process its slowdown stayed
#: 1.00x either way (``python -m bench models`` / ``contention``, docs/design/kernels.md).
BLAS_SPLIT_MIN_MACS = 1 << 22
#: Below this many multiply-adds BLAS runs one thread by itself (OpenBLAS: 65536 x GEMM_MULTITHREAD_THRESHOLD 4):
#: no limit to set (it would cost more than the product).
BLAS_ALONE_MAX_MACS = 1 << 18

_helpers = None
_helpers_lock = threading.Lock()
_NO_LIMIT = nullcontext()


def blas_threads_for(macs):
    """``with blas_threads_for(m * k * n): a @ b``: one BLAS thread below :data:`BLAS_SPLIT_MIN_MACS`.

    Products too small for BLAS to split (:data:`BLAS_ALONE_MAX_MACS`) and large ones get a no-op
    context (pass 0 for arrays that are not NumPy's).
    """
    return blas_threads(1) if BLAS_ALONE_MAX_MACS <= macs < BLAS_SPLIT_MIN_MACS else _NO_LIMIT


def helper_pool(workers: int):
    """The library's helper threads: an executor of ``workers`` threads, created on first use.

    Recreated when ``workers`` changes (``numba.set_num_threads``), so every
    caller asking for the same count shares one pool.
    """
    global _helpers
    from concurrent.futures import ThreadPoolExecutor  # on first use: not at import

    with _helpers_lock:
        if _helpers is None or _helpers._max_workers != workers:
            if _helpers is not None:
                _helpers.shutdown(wait=False)
            _helpers = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="camadas-kernels")
        return _helpers


def run_rows(kernel, n_rows, n_elements, *args, min_elements=None, align=1):
    """Call ``kernel(*args, r0, r1)`` over the rows ``[0, n_rows)``, in parallel when it pays.

    Parameters
    ----------
    kernel : callable
        A ``nogil`` Numba kernel taking ``(*args, r0, r1)``.
    n_rows : int
        Rows to cover.
    n_elements : int
        Size of the work (elements touched, or an estimate of it): below
        ``min_elements`` (default :data:`PARALLEL_MIN_ELEMENTS`) the call stays
        on the calling thread.
    align : int
        Every chunk starts at a multiple of ``align`` rows (default 1). Pass the
        kernel's internal block size, so that blocks never depend on how many
        threads there are (deterministic results, see docs/design/kernels.md).

    Notes
    -----
    The rows are cut into chunks that the calling thread and
    ``parallel_threads() - 1`` helper threads take one at a time from a
    shared counter. A helper that has not started when the caller runs out of
    chunks is cancelled, so the caller never waits for a thread the OS has not
    scheduled (another process, or OpenBLAS's spinning workers after a GEMM,
    may hold the other cores).
    """
    threshold = PARALLEL_MIN_ELEMENTS if min_elements is None else min_elements
    align = max(1, int(align))
    n_units = -(-n_rows // align)  # chunks are made of whole units of ``align`` rows
    available = parallel_threads()
    threads = min(available, n_units)
    if threads <= 1 or n_elements < threshold:
        kernel(*args, 0, n_rows)
        return
    n_chunks = min(n_units, CHUNKS_PER_THREAD * threads)
    edges = [min(n_rows, align * (n_units * i // n_chunks)) for i in range(n_chunks + 1)]
    bounds = list(zip(edges[:-1], edges[1:]))
    counter = itertools.count()

    def take_chunks():
        for i in iter(counter.__next__, None):
            if i >= n_chunks:
                return
            kernel(*args, *bounds[i])

    pool = helper_pool(available - 1)
    futures = [pool.submit(take_chunks) for _ in range(threads - 1)]
    take_chunks()
    for future in futures:
        if not future.cancel():  # started: it may be finishing a chunk
            future.result()
