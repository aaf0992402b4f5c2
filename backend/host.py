"""The CPU side of the machine: its thread pools (BLAS, OpenMP, Numba) and a description of the processor.

CPU speed depends on threads the library does not own: NumPy's BLAS (OpenBLAS,
MKL), OpenMP runtimes, and Numba's pool, which also sizes camadas's helper
threads (:mod:`kernels.threads`). :func:`thread_pools` reports them all
(threadpoolctl finds the BLAS and OpenMP libraries actually loaded, their
versions, thread counts and, for OpenBLAS, the CPU kernels in use);
:func:`limit_threads` caps them together and restores them, without touching
``os.environ``. :func:`cpu_description` names the processor (py-cpuinfo when
installed: brand and vector extensions; else what :mod:`platform` knows).
"""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager

from .checks import check_positive_int

#: The vector extensions worth printing beside a CPU benchmark (py-cpuinfo's flag names).
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "neon", "asimd", "sve")


def thread_pools() -> list[dict]:
    """The thread pools of this process: Numba's, then every BLAS/OpenMP library threadpoolctl finds.

    Returns
    -------
    list of dict
        ``{"user_api": "numba", "internal_api": <threading layer or None>, "num_threads": n}`` first,
        then threadpoolctl's records (``user_api`` "blas" or "openmp", ``internal_api`` such as
        "openblas", ``version``, ``num_threads``, ``filepath``, and ``architecture`` for OpenBLAS).
    """
    import numba
    from threadpoolctl import threadpool_info

    try:
        layer = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        layer = None
    return [{"user_api": "numba", "internal_api": layer, "num_threads": int(numba.get_num_threads())},
            *threadpool_info()]


def describe_thread_pools(pools=None) -> str:
    """One line: ``"numba 2 threads; blas openblas 0.3.31 (Haswell) 2 threads"``."""
    parts = []
    for pool in thread_pools() if pools is None else pools:
        api, internal = pool.get("user_api"), pool.get("internal_api")
        name = " ".join(str(v) for v in (api, internal if internal != api else None, pool.get("version")) if v)
        extra = f" ({pool['architecture']})" if pool.get("architecture") else ""
        parts.append(f"{name}{extra} {pool.get('num_threads')} threads")
    return "; ".join(parts)


@contextmanager
def limit_threads(n: int):
    """Cap Numba's threads and every BLAS/OpenMP pool at ``n`` inside the block; restore them after.

    For running several processes side by side (one per core) or timing one
    thread. Numba cannot go above the count it started with
    (``NUMBA_NUM_THREADS``), so ``n`` larger than that leaves Numba as it is.

    >>> with limit_threads(1):        # doctest: +SKIP
    ...     model.fit(X, y)
    """
    import numba
    from threadpoolctl import threadpool_limits

    n = check_positive_int(n, "n", where="limit_threads")
    previous = numba.get_num_threads()
    with threadpool_limits(limits=n):
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
        try:
            yield
        finally:
            numba.set_num_threads(previous)


def cpu_description() -> dict:
    """The processor: ``{"brand", "arch", "cores", "usable_cores", "vector_flags", "source"}``.

    ``source`` is ``"py-cpuinfo"`` when that package is installed (it reads
    CPUID: brand and vector extensions; about a second, so call it once), else
    ``"platform"`` (no flags).
    """
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        usable = os.cpu_count()
    try:
        import cpuinfo
    except ImportError:
        return {"brand": platform.processor() or platform.machine() or "unknown", "arch": platform.machine(),
                "cores": os.cpu_count(), "usable_cores": usable, "vector_flags": [], "source": "platform"}
    info = cpuinfo.get_cpu_info()
    flags = set(info.get("flags", ()))
    return {"brand": info.get("brand_raw") or platform.processor() or "unknown",
            "arch": info.get("arch") or platform.machine(), "cores": info.get("count") or os.cpu_count(),
            "usable_cores": usable, "vector_flags": [f for f in VECTOR_FLAGS if f in flags], "source": "py-cpuinfo"}
