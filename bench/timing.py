"""Timing for the benchmarks: one timer, one synchronization, one first-call helper (DESIGN.md "Benchmarks").

* Warm-up calls run first and are excluded from the figures; the very first
  call of a kernel (a Numba compile or cache load, a CUDA kernel compile) is
  timed apart by :func:`first_call` and reported as such.
* CPU timing reads :func:`time.perf_counter` around each call; a ``sync``
  callable is called *before* the clock is read, so queued GPU work is inside.
* GPU timing of CuPy work uses CUDA events on the current stream
  (:func:`time_gpu_function`); PyTorch's GPU work is timed with its own
  ``torch.cuda.synchronize`` as ``sync``.
* Every figure is a median over repeats, with min, max and inter-quartile range.
* :class:`Timer` is the one repeat/warm-up policy of every command.

CuPy is reached only through :mod:`backend`; nothing here needs a GPU to import.
"""

from __future__ import annotations

import math
import statistics
import time

import backend
from backend import cupy_probe

__all__ = [
    "Timer",
    "add_gpu_speedups",
    "first_call",
    "format_ms",
    "summarize_times",
    "sync",
    "synchronized",
    "time_function",
    "time_gpu_function",
    "time_on_device",
]


def summarize_times(times) -> dict:
    """Median, min, max, inter-quartile range and mean of a list of seconds.

    Returns
    -------
    dict
        ``{"median", "min", "max", "iqr", "mean", "times"}``, all in seconds;
        ``times`` is the list itself (so JSON keeps the raw data).
    """
    values = [float(t) for t in times]
    if not values:
        raise ValueError("summarize_times: expected at least one time, got none")
    if len(values) >= 2:
        q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
        iqr = q3 - q1
    else:
        iqr = 0.0
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "iqr": iqr,
        "mean": statistics.fmean(values),
        "times": values,
    }


def time_function(fn, repeat: int = 10, warmup: int = 2, sync=None) -> dict:
    """Time ``fn()`` with :func:`time.perf_counter`, warm-up runs excluded.

    Parameters
    ----------
    fn : callable
        Called with no argument; its result is discarded.
    repeat : int
        Number of timed calls (>= 1).
    warmup : int
        Untimed calls before the first timed one (>= 0). The very first call of
        a Numba kernel compiles it; time that call separately if you want the
        compile time.
    sync : callable, optional
        Called after each ``fn()`` and *before* the timer is read, e.g.
        ``backend.synchronize`` or ``torch.cuda.synchronize`` for asynchronous
        GPU work. Also called once after the warm-up.

    Returns
    -------
    dict
        ``{"median", "min", "max", "iqr", "mean", "times"}`` in seconds
        (see :func:`summarize_times`).
    """
    if int(repeat) < 1:
        raise ValueError(f"repeat: expected an int >= 1, got {repeat!r}")
    if int(warmup) < 0:
        raise ValueError(f"warmup: expected an int >= 0, got {warmup!r}")
    for _ in range(int(warmup)):
        fn()
    if sync is not None:
        sync()
    times = []
    clock = time.perf_counter
    for _ in range(int(repeat)):
        start = clock()
        fn()
        if sync is not None:
            sync()
        times.append(clock() - start)
    return summarize_times(times)


def time_gpu_function(fn, repeat: int = 10, warmup: int = 2) -> dict:
    """Time GPU work queued by ``fn()`` with CUDA events on the current CuPy stream.

    Each repeat records a start event, calls ``fn()``, records an end event and
    waits for it (``end.synchronize()``) before reading
    ``cupy.cuda.get_elapsed_time(start, end)``; the measured time is therefore
    the device time between the two events, including kernel-launch gaps but
    not Python work done before the first launch. Warm-up calls (which also
    compile and cache CuPy kernels) are excluded, and the device is
    synchronized after them.

    Parameters
    ----------
    fn : callable
        Queues work on the current stream (CuPy's default).
    repeat, warmup : int
        As in :func:`time_function`.

    Returns
    -------
    dict
        As :func:`time_function`, in seconds.

    Raises
    ------
    RuntimeError
        No GPU answers (the message is ``backend.unavailable_reason()``).
    """
    cp = cupy_probe.cupy_module()
    if cp is None or not backend.has_gpu():
        raise RuntimeError(f"GPU timing unavailable: {backend.unavailable_reason()}")
    if int(repeat) < 1:
        raise ValueError(f"repeat: expected an int >= 1, got {repeat!r}")
    for _ in range(int(warmup)):
        fn()
    cp.cuda.get_current_stream().synchronize()
    start, end = cp.cuda.Event(), cp.cuda.Event()
    times = []
    for _ in range(int(repeat)):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(cp.cuda.get_elapsed_time(start, end) / 1e3)  # ms -> s
    return summarize_times(times)


def time_on_device(fn, device: str, repeat: int = 10, warmup: int = 2) -> dict:
    """:func:`time_function` on the CPU, :func:`time_gpu_function` on the GPU."""
    if device == "gpu":
        return time_gpu_function(fn, repeat=repeat, warmup=warmup)
    return time_function(fn, repeat=repeat, warmup=warmup)


def sync(device: str, sync_fn=None) -> None:
    """Wait for queued work: ``sync_fn()`` when given (PyTorch), else CuPy's current stream on the GPU."""
    if sync_fn is not None:
        sync_fn()
    elif device == "gpu":
        cupy_probe.cupy_module().cuda.get_current_stream().synchronize()


def synchronized(fn, device: str, sync_fn=None):
    """``fn`` followed by :func:`sync`, for timers that read the clock when the call returns."""
    if device != "gpu" and sync_fn is None:
        return fn

    def call():
        result = fn()
        sync(device, sync_fn)
        return result

    return call


def first_call(fn, device: str, sync_fn=None):
    """Time one call, synchronized before and after; returns ``(result, seconds)``."""
    sync(device, sync_fn)
    start = time.perf_counter()
    result = fn()
    sync(device, sync_fn)
    return result, time.perf_counter() - start


class Timer:
    """The repeat/warm-up policy of a benchmark run.

    Parameters
    ----------
    repeat : int or None
        Timed calls per measurement; ``None`` picks enough for ``min_time``
        seconds, between ``bounds[0]`` and ``bounds[1]`` calls.
    warmup : int
        Untimed calls before timing (>= 1). They are timed anyway and the
        fastest is the estimate that sets the automatic repeat count, so one
        call slowed down by another process does not shrink the sample.
    min_time : float
        Seconds of timed calls the automatic repeat count aims for.
    bounds : (int, int)
        Fewest and most timed calls of the automatic repeat count.

    Notes
    -----
    Calling the timer, ``timer(fn, device, sync_fn=None)``, returns the summary
    of :func:`summarize_times`: CUDA events for CuPy work on the GPU,
    :func:`time.perf_counter` with ``sync_fn`` otherwise (PyTorch).
    """

    def __init__(self, repeat=None, warmup=2, min_time=0.25, bounds=(7, 100)):
        if repeat is not None and int(repeat) < 1:
            raise ValueError(f"repeat: expected an int >= 1 or None, got {repeat!r}")
        if int(warmup) < 1:
            raise ValueError(f"warmup: expected an int >= 1, got {warmup!r}")
        if not float(min_time) > 0:
            raise ValueError(f"min_time: expected seconds > 0, got {min_time!r}")
        self.repeat = None if repeat is None else int(repeat)
        self.warmup = int(warmup)
        self.min_time = float(min_time)
        self.low, self.high = (int(b) for b in bounds)

    def repeat_for(self, estimate: float) -> int:
        """The number of timed calls for calls that take about ``estimate`` seconds."""
        if self.repeat is not None:
            return self.repeat
        return min(self.high, max(self.low, math.ceil(self.min_time / max(estimate, 1e-9))))

    def __call__(self, fn, device: str, sync_fn=None) -> dict:
        estimate = min(first_call(fn, device, sync_fn)[1] for _ in range(self.warmup))
        repeat = self.repeat_for(estimate)
        if device == "gpu" and sync_fn is None:
            return time_gpu_function(fn, repeat=repeat, warmup=0)
        return time_function(fn, repeat=repeat, warmup=0, sync=sync_fn)


def format_ms(seconds) -> str | None:
    """Seconds as milliseconds with 3 or 4 significant digits (``None`` stays ``None``)."""
    if seconds is None:
        return None
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.4f}" if ms < 0.01 else f"{ms:.3f}"


def add_gpu_speedups(rows, key, seconds) -> None:
    """Set ``row["gpu_speedup"]`` = time of the CPU twin / time of the GPU row, on GPU rows with a twin.

    Parameters
    ----------
    rows : list of dict
        Measurement rows with ``"device"`` (``"cpu"`` or ``"gpu"``); rows with
        ``"available": False`` are skipped.
    key : callable
        ``key(row)``: what makes two rows twins (op, shape, direction, ...).
    seconds : callable
        ``seconds(row)``: a time in seconds, or a dict of times (per direction),
        in which case the speedup is a dict with the same keys.
    """
    def measured(row, device):
        return row["device"] == device and row.get("available", True)

    cpu = {key(r): r for r in rows if measured(r, "cpu")}
    for row in rows:
        twin = cpu.get(key(row)) if measured(row, "gpu") else None
        if twin is None:
            continue
        ours, theirs = seconds(row), seconds(twin)
        if isinstance(ours, dict):
            row["gpu_speedup"] = {k: theirs[k] / ours[k] for k in ours}
        else:
            row["gpu_speedup"] = theirs / ours
