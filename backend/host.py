"""The CPU side of the machine: its thread pools (BLAS, OpenMP, Numba) and a description of the processor.

CPU speed depends on threads the library does not own: NumPy's BLAS (OpenBLAS,
MKL), OpenMP runtimes, and Numba's thread count, which also sizes camadas's
helper threads (:func:`kernel_threads`, :mod:`kernels.threads`).
:func:`thread_pools` reports them all (threadpoolctl finds the BLAS and OpenMP
libraries actually loaded, their versions, thread counts and, for OpenBLAS,
the CPU kernels in use); :func:`limit_threads` caps them together and
restores them, without touching ``os.environ``. Nothing here launches Numba's
threading layer: with the OpenMP layer that resets the thread count of a
PyTorch sharing the runtime. :func:`cpu_description` names the processor
(py-cpuinfo when installed: brand and vector extensions; else :mod:`platform`).
"""

from __future__ import annotations

import os
import platform
from contextlib import contextmanager
from contextvars import ContextVar

from .checks import check_positive_int

#: The cap set by :func:`limit_threads` in this context (None: no cap).
_THREAD_LIMIT: ContextVar[int | None] = ContextVar("camadas_thread_limit", default=None)
#: ``numba.np.ufunc.parallel``, imported on first use (``import backend`` does not load Numba).
_numba_parallel = None


def _numba_parallel_module():
    global _numba_parallel
    if _numba_parallel is None:
        from numba.np.ufunc import parallel

        _numba_parallel = parallel
    return _numba_parallel


def numba_threads() -> int:
    """Numba's thread count for the calling thread, read without launching Numba's threading layer.

    ``numba.get_num_threads()`` launches the layer on its first call, and the
    OpenMP layer's launch calls ``omp_set_num_threads(NUMBA_NUM_THREADS)``: in a
    process whose PyTorch shares that OpenMP runtime, it undoes
    ``torch.set_num_threads``. Until someone launches the layer
    (``numba.set_num_threads``, a ``parallel=True`` kernel) the count is
    ``NUMBA_NUM_THREADS``; after, it is the layer's own (a C call, no lock).
    """
    parallel = _numba_parallel_module()
    getter = getattr(parallel, "_get_num_threads", None)  # bound when the layer launches
    return int(getter()) if getter is not None else int(parallel.NUM_THREADS)


def kernel_threads() -> int:
    """Threads camadas's CPU kernels split a call over: :func:`numba_threads`, capped by :func:`limit_threads`."""
    count = numba_threads()
    limit = _THREAD_LIMIT.get()
    return count if limit is None else min(count, limit)

#: The vector extensions worth printing beside a CPU benchmark (py-cpuinfo's flag names).
VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_bf16", "neon", "asimd", "sve")


#: threadpoolctl's controllers of the BLAS libraries of this process, found on first use of :class:`blas_threads`.
_blas_controllers: list | None = None


def blas_controllers() -> list:
    """threadpoolctl's controllers of the BLAS libraries loaded in this process (looked up once, then cached)."""
    global _blas_controllers
    if _blas_controllers is None:
        from threadpoolctl import ThreadpoolController

        _blas_controllers = [c for c in ThreadpoolController().lib_controllers if c.user_api == "blas"]
    return _blas_controllers


class blas_threads:
    """``with blas_threads(n):`` BLAS calls of the block run on at most ``n`` threads; each count is restored after.

    One C call per BLAS library and direction (about 1 us), unlike ``threadpoolctl.threadpool_limits``,
    which looks the libraries up again each time. For OpenBLAS, whose thread count is shared by the
    process, threadpoolctl lets only one Python thread change it at a time (the others leave it alone).
    """

    __slots__ = ("n", "changed")

    def __init__(self, n: int):
        self.n = n
        self.changed: list = []

    def __enter__(self):
        for controller in blas_controllers():
            current = controller.get_num_threads()
            if current is not None and current > self.n:
                controller.set_num_threads(self.n)
                self.changed.append((controller, current))
        return self

    def __exit__(self, *exc):
        for controller, current in self.changed:
            controller.set_num_threads(current)
        self.changed = []
        return False


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
    except ValueError:  # Numba's threading layer has not been launched
        layer = None
    return [{"user_api": "numba", "internal_api": layer, "num_threads": kernel_threads()}, *threadpool_info()]


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
    """Cap camadas's kernel threads and every BLAS/OpenMP pool at ``n`` inside the block; restore them after.

    For running several processes side by side (one per core) or timing one
    thread. The cap on camadas's kernels (:func:`kernel_threads`) holds in
    this context (thread, task); Numba's own count is capped too when its
    threading layer is running, and the layer is never launched here.

    >>> with limit_threads(1):        # doctest: +SKIP
    ...     model.fit(X, y)
    """
    n = check_positive_int(n, "n", where="limit_threads")
    import numba
    from threadpoolctl import threadpool_limits

    running = getattr(_numba_parallel_module(), "_get_num_threads", None) is not None
    previous = numba.get_num_threads() if running else None
    token = _THREAD_LIMIT.set(n)
    try:
        with threadpool_limits(limits=n):
            if previous is not None:
                numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
            try:
                yield
            finally:
                if previous is not None:
                    numba.set_num_threads(previous)
    finally:
        _THREAD_LIMIT.reset(token)


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
