"""Shared helpers of the camadas benchmarks: devices, rooflines, environment, tables, JSON.

* Timing (warm-up, medians, GPU synchronization, first calls) is :mod:`bench.timing`;
  its functions are re-exported here.
* Speed is also expressed against rooflines measured in the same run: a plain
  array copy of the same bytes (memory-bound ops, :func:`copy_roofline`) and a
  square matrix product (FLOP-bound ops, :func:`matmul_roofline`).
* Command-line value checks are :mod:`bench.options`.

Everything here is device-neutral and imports CuPy only through
:mod:`backend` (the project's single optional-import point) and PyTorch only
through :func:`torch_or_none`; neither is ever required.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

import backend
from backend import cupy_probe

from .timing import summarize_times, time_function, time_gpu_function, time_on_device  # noqa: F401 (re-exported)

__all__ = [
    "DEVICES",
    "copy_roofline",
    "cupy_or_none",
    "device_status",
    "environment_info",
    "format_bytes",
    "format_environment",
    "format_size",
    "format_table",
    "matmul_roofline",
    "parse_sizes",
    "present_columns",
    "resolve_devices",
    "summarize_times",
    "time_function",
    "time_gpu_function",
    "time_on_device",
    "torch_or_none",
    "torch_unavailable_reason",
    "write_json",
]

#: Device names the benchmarks understand.
DEVICES = ("cpu", "gpu")


# --------------------------------------------------------------------------- #
# Optional libraries
# --------------------------------------------------------------------------- #
def cupy_or_none():
    """The ``cupy`` module when it imports, else ``None`` (via :mod:`backend`)."""
    return cupy_probe.cupy_module()


_TORCH_PROBED = False
_TORCH = None
_TORCH_REASON: str | None = None


def torch_or_none():
    """The ``torch`` module when it imports, else ``None``.

    PyTorch is only ever a comparison point of the benchmarks, never a
    dependency of camadas. The import is tried once; the reason of a failure
    is kept in :func:`torch_unavailable_reason`.
    """
    global _TORCH_PROBED, _TORCH, _TORCH_REASON
    if not _TORCH_PROBED:
        try:
            import torch  # noqa: PLC0415 - optional comparison point

            _TORCH = torch
        except Exception as exc:  # ImportError, or a broken install
            _TORCH = None
            _TORCH_REASON = f"PyTorch is not importable ({type(exc).__name__}: {exc})"
        _TORCH_PROBED = True
    return _TORCH


def torch_unavailable_reason() -> str | None:
    """Why PyTorch cannot be compared against, or ``None`` when it imports."""
    torch_or_none()
    return _TORCH_REASON


# --------------------------------------------------------------------------- #
# Devices
# --------------------------------------------------------------------------- #
def device_status(name: str) -> tuple[bool, str | None]:
    """Whether device ``name`` (``"cpu"`` or ``"gpu"``) answers, and why not.

    Returns
    -------
    available : bool
    reason : str or None
        ``backend.unavailable_reason()`` for a GPU that does not answer.
    """
    if name == "cpu":
        return True, None
    if name == "gpu":
        if backend.has_gpu():
            return True, None
        return False, backend.unavailable_reason() or "no CUDA device answered"
    raise ValueError(f"device: expected one of {DEVICES}, got {name!r}")


def resolve_devices(choice: str | None) -> list[tuple[str, bool, str | None]]:
    """Expand a ``--device`` choice into ``[(name, available, reason), ...]``.

    Parameters
    ----------
    choice : {"cpu", "gpu", "all"} or None
        ``None`` means every device that answers (the CPU always does; the GPU
        is listed as unavailable with its reason when it does not answer, so
        the report says why it is missing). ``"all"`` is the same.
        ``"gpu"`` lists only the GPU, possibly unavailable.
    """
    if choice in (None, "all", "auto"):
        names = list(DEVICES)
    elif choice in DEVICES:
        names = [choice]
    else:
        raise ValueError(f"--device: expected cpu, gpu or all, got {choice!r}")
    return [(name, *device_status(name)) for name in names]


# --------------------------------------------------------------------------- #
# Parsing and formatting
# --------------------------------------------------------------------------- #
_POWER = re.compile(r"^\s*(\d+)\s*(?:\^|\*\*)\s*(\d+)\s*$")
_SHIFT = re.compile(r"^\s*1\s*<<\s*(\d+)\s*$")


def parse_sizes(text) -> list[int]:
    """Parse a list of element counts: ``"65536,1048576"``, ``"2^16,2^20"``, ``"2**24"``, ``"1<<10"``.

    Parameters
    ----------
    text : str or iterable of int

    Returns
    -------
    list of int
        Positive sizes, in the order given, duplicates removed.

    Raises
    ------
    ValueError
        An item is not a positive integer in one of the accepted forms.
    """
    if not isinstance(text, str):
        items = list(text)
    else:
        items = [item for item in re.split(r"[,\s]+", text.strip()) if item]
    sizes: list[int] = []
    for item in items:
        value = None
        if isinstance(item, (int, np.integer)):
            value = int(item)
        else:
            match = _POWER.match(item)
            shift = _SHIFT.match(item)
            if match:
                value = int(match.group(1)) ** int(match.group(2))
            elif shift:
                value = 1 << int(shift.group(1))
            else:
                try:
                    value = int(item.replace("_", ""))
                except ValueError:
                    try:
                        as_float = float(item)  # "1e6"
                    except ValueError:
                        as_float = math.nan
                    if as_float.is_integer():
                        value = int(as_float)
        if value is None or value <= 0:
            raise ValueError(
                f"--sizes: expected positive element counts such as '65536,1048576' or '2^16,2^20', got {item!r}"
            )
        if value not in sizes:
            sizes.append(value)
    if not sizes:
        raise ValueError("--sizes: expected at least one size, got an empty list")
    return sizes


def format_size(n: int) -> str:
    """``65536`` -> ``"2^16"``; other counts are printed with thousands separators."""
    n = int(n)
    if n > 0 and n & (n - 1) == 0:
        return f"2^{n.bit_length() - 1}"
    return f"{n:,}"


def format_bytes(nbytes: float) -> str:
    """Human-readable byte count (``"64.0 MiB"``)."""
    value = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if abs(value) < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"  # pragma: no cover


def format_table(rows, columns) -> str:
    """Render rows as a plain-text table with a header and a rule.

    Parameters
    ----------
    rows : list of dict
        One mapping per row.
    columns : list
        Each entry is a key (header = key), or a tuple ``(key, header)`` or
        ``(key, header, fmt)`` where ``fmt`` is a format spec (``".2f"``) or a
        callable ``value -> str``. ``None`` values print as ``"-"``; strings
        are left-aligned, everything else right-aligned.

    Returns
    -------
    str
        The table, lines joined by ``"\\n"`` (no trailing newline).
    """
    specs = []
    for column in columns:
        if isinstance(column, str):
            specs.append((column, column, None))
        elif len(column) == 2:
            specs.append((column[0], column[1], None))
        else:
            specs.append(tuple(column[:3]))

    def render(value, fmt):
        if value is None:
            return "-"
        if callable(fmt):
            return str(fmt(value))
        if fmt is not None and not isinstance(value, str):
            try:
                return format(value, fmt)
            except (TypeError, ValueError):
                return str(value)
        if isinstance(value, float):
            return f"{value:.4g}"
        return str(value)

    cells = [[render(row.get(key), fmt) for key, _, fmt in specs] for row in rows]
    left = [
        all(isinstance(row.get(key), str) or row.get(key) is None for row in rows) and rows != []
        for key, _, _ in specs
    ]
    widths = [len(header) for _, header, _ in specs]
    for line in cells:
        widths = [max(w, len(cell)) for w, cell in zip(widths, line)]

    def join(values):
        parts = [
            value.ljust(width) if is_left else value.rjust(width)
            for value, width, is_left in zip(values, widths, left)
        ]
        return "  ".join(parts).rstrip()

    lines = [join([header for _, header, _ in specs]), "  ".join("-" * w for w in widths)]
    lines.extend(join(line) for line in cells)
    return "\n".join(lines)


def present_columns(rows, columns, keep=()) -> list:
    """The ``columns`` (as for :func:`format_table`) that have a value in at least one row, plus ``keep``.

    A column that would print ``-`` on every row is left out, and so is its legend.
    """
    def key(column):
        return column if isinstance(column, str) else column[0]

    return [c for c in columns if key(c) in keep or any(row.get(key(c)) is not None for row in rows)]


def _device_module(device: str):
    if device == "cpu":
        return np
    available, reason = device_status(device)
    if not available:
        raise RuntimeError(f"device {device!r} unavailable: {reason}")
    return cupy_or_none()


# --------------------------------------------------------------------------- #
# Rooflines
# --------------------------------------------------------------------------- #
_COPY_POOL = None


def _threaded_copy(threads: int):
    """``numpy.copyto`` split in contiguous chunks over a pool of Python threads.

    NumPy releases the GIL while copying, so the chunks run in parallel. Python
    threads sleep when idle, unlike OpenMP workers (``numba.prange``) that
    spin after a parallel region and would steal the cores from whatever is
    timed next (PyTorch's own OpenMP pool, the kernels' threads).
    """
    global _COPY_POOL
    from concurrent.futures import ThreadPoolExecutor  # noqa: PLC0415

    if _COPY_POOL is None or _COPY_POOL._max_workers != threads:
        _COPY_POOL = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="camadas-bench-copy")
    pool = _COPY_POOL

    def copy(dst, src):
        n = src.shape[0]
        step = -(-n // threads)
        step = -(-step // 64) * 64  # whole cache lines per chunk
        bounds = [(lo, min(lo + step, n)) for lo in range(0, n, step)]
        futures = [pool.submit(np.copyto, dst[lo:hi], src[lo:hi]) for lo, hi in bounds[1:]]
        lo, hi = bounds[0]
        np.copyto(dst[lo:hi], src[lo:hi])
        for future in futures:
            future.result()

    return copy


def copy_roofline(nbytes: int, dtype="float32", device: str = "cpu", repeat: int = 10, warmup: int = 2) -> dict:
    """Memory roofline: bandwidth of a plain device-to-device array copy, measured now.

    An array of ``nbytes`` bytes (``nbytes // itemsize`` elements of ``dtype``)
    is copied into a preallocated array of the same size on ``device``. The
    bandwidth counts the bytes a program asks for, read plus written:
    ``2 * nbytes / median_time`` (write-allocate traffic is not added, exactly
    as it is not added for the ops compared against it). An elementwise op that
    reads ``k`` arrays and writes ``m`` arrays of that size is at 100 % of this
    roofline when its ``(k + m) * nbytes / time`` equals it.

    On the CPU the best of two copies is the roofline: ``numpy.copyto``
    (a single-threaded ``memcpy``, with non-temporal stores for large arrays)
    and the same split in chunks over :func:`backend.host.kernel_threads` Python
    threads (see :func:`_threaded_copy`; no OpenMP, whose spinning workers
    would disturb what is timed next). On the GPU it is ``cupy.copyto`` timed
    with CUDA events.

    Parameters
    ----------
    nbytes : int
        Bytes of one array (the copy reads this many and writes this many).
    dtype : str or numpy.dtype
    device : {"cpu", "gpu"}
    repeat, warmup : int
        As in :func:`time_function`.

    Returns
    -------
    dict
        ``{"device", "dtype", "nbytes", "elements", "gbps", "seconds",
        "method", "candidates": {method: {"gbps", "seconds", "timing"}},
        "allocating": {"gbps", "seconds", "timing"}}``; ``seconds`` is the
        median copy time of the best method, ``gbps`` its bandwidth in 1e9
        bytes/s. ``allocating`` (information only, not the roofline) is
        ``src.copy()``, a copy into a newly allocated array: what an op that
        allocates its output pays on top (page faults, zeroing fresh pages).
    """
    dtype = np.dtype(dtype)
    n = max(1, int(nbytes) // dtype.itemsize)
    real_bytes = n * dtype.itemsize
    xp = _device_module(device)
    src = xp.arange(n, dtype=dtype)
    dst = xp.empty_like(src)
    candidates = {}
    if device == "cpu":
        threads = max(1, backend.host.kernel_threads())
        methods = {"numpy.copyto": lambda: np.copyto(dst, src)}
        if threads > 1 and n >= 64 * threads:
            copy = _threaded_copy(threads)
            methods[f"numpy.copyto x{threads} threads"] = lambda: copy(dst, src)
    else:
        methods = {"cupy.copyto": lambda: xp.copyto(dst, src)}
    for method, fn in methods.items():
        timing = time_on_device(fn, device, repeat=repeat, warmup=warmup)
        seconds = timing["median"]
        candidates[method] = {"gbps": 2 * real_bytes / seconds / 1e9, "seconds": seconds, "timing": timing}
    best = max(candidates, key=lambda m: candidates[m]["gbps"])
    # For information, not the roofline: a copy into a *new* array, as ops that
    # allocate their output pay it (page faults and zeroing of fresh memory).
    allocating = time_on_device(lambda: src.copy(), device, repeat=repeat, warmup=warmup)
    return {
        "device": device,
        "dtype": dtype.name,
        "nbytes": real_bytes,
        "elements": n,
        "gbps": candidates[best]["gbps"],
        "seconds": candidates[best]["seconds"],
        "method": best,
        "candidates": candidates,
        "allocating": {
            "gbps": 2 * real_bytes / allocating["median"] / 1e9,
            "seconds": allocating["median"],
            "timing": allocating,
        },
    }


def matmul_roofline(dtype="float32", device: str = "cpu", n: int = 2048, repeat: int = 5, warmup: int = 1) -> dict:
    """Compute roofline: GFLOP/s of an ``n x n`` by ``n x n`` matrix product, measured now.

    ``2 n^3`` floating-point operations per product (BLAS on the CPU, cuBLAS on
    the GPU), median over ``repeat`` timed calls.

    Parameters
    ----------
    dtype : str or numpy.dtype
    device : {"cpu", "gpu"}
    n : int
        Matrix order; 2048 keeps the CPU call near a second on two cores.
    repeat, warmup : int

    Returns
    -------
    dict
        ``{"device", "dtype", "n", "gflops", "seconds", "timing"}``.
    """
    dtype = np.dtype(dtype)
    xp = _device_module(device)
    generator = xp.random.default_rng(0) if device == "cpu" else None
    if generator is not None:
        a = generator.standard_normal((n, n)).astype(dtype)
        b = generator.standard_normal((n, n)).astype(dtype)
    else:
        a = xp.random.standard_normal((n, n)).astype(dtype)
        b = xp.random.standard_normal((n, n)).astype(dtype)
    out = xp.empty((n, n), dtype=dtype)
    timing = time_on_device(lambda: xp.matmul(a, b, out=out), device, repeat=repeat, warmup=warmup)
    seconds = timing["median"]
    return {
        "device": device,
        "dtype": dtype.name,
        "n": int(n),
        "gflops": 2.0 * n**3 / seconds / 1e9,
        "seconds": seconds,
        "timing": timing,
    }


# --------------------------------------------------------------------------- #
# Environment
# --------------------------------------------------------------------------- #
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True, timeout=5
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def _memory_total_bytes() -> int | None:
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def _gpu_info() -> dict:
    available, reason = device_status("gpu")
    info: dict = {"available": available}
    if not available:
        info["reason"] = reason
        return info
    cp = cupy_or_none()
    try:
        device = cp.cuda.Device()
        props = cp.cuda.runtime.getDeviceProperties(device.id)
        name = props.get("name", b"")
        info["name"] = name.decode() if isinstance(name, bytes) else str(name)
        info["compute_capability"] = device.compute_capability
        info["memory_bytes"] = int(props.get("totalGlobalMem", 0)) or None
        info["multiprocessors"] = int(props.get("multiProcessorCount", 0)) or None
        info["cuda_runtime_version"] = int(cp.cuda.runtime.runtimeGetVersion())
        info["cuda_driver_api_version"] = int(cp.cuda.runtime.driverGetVersion())
    except Exception as exc:  # keep the report going
        info["error"] = f"{type(exc).__name__}: {exc}"
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        if out.returncode == 0 and out.stdout.strip():
            info["driver_version"] = out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError):
        pass
    return info


def environment_info() -> dict:
    """Machine and library versions to print with every figure (no host name).

    Returns
    -------
    dict
        ``python``, ``platform``, ``numpy``, ``numba``, ``numba_threads``,
        ``numba_threading_layer`` (when initialized), ``cupy`` / ``torch``
        versions (``None`` when not importable), ``torch_threads``,
        ``cpu_model``, ``cpu_count``, ``cpu_affinity``, ``memory_bytes``,
        ``gpu`` (name, compute capability, driver and CUDA versions, or
        ``available: False`` with the reason), ``date`` (UTC, ISO 8601) and
        ``threading_env``: the environment variables that change the CPU
        kernels' speed (``OPENBLAS_*``, ``OMP_*``, ``MKL_*``, ``NUMBA_*``), e.g.
        ``OPENBLAS_CORETYPE=Haswell`` pins NumPy's BLAS to its AVX2 code.
    """
    import numba  # noqa: PLC0415

    info: dict = {
        "date": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "numpy": np.__version__,
        "numba": numba.__version__,
        "numba_threads": backend.host.kernel_threads(),  # numba.get_num_threads() would launch Numba's layer
    }
    try:
        info["numba_threading_layer"] = numba.threading_layer()
    except ValueError:  # no parallel region has run yet
        info["numba_threading_layer"] = None
    cp = cupy_or_none()
    info["cupy"] = getattr(cp, "__version__", None) if cp is not None else None
    torch = torch_or_none()
    info["torch"] = getattr(torch, "__version__", None) if torch is not None else None
    info["torch_threads"] = int(torch.get_num_threads()) if torch is not None else None
    info["cpu_model"] = _cpu_model()
    info["cpu_count"] = os.cpu_count()
    try:
        info["cpu_affinity"] = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        info["cpu_affinity"] = None
    info["memory_bytes"] = _memory_total_bytes()
    info["gpu"] = _gpu_info()
    info["threading_env"] = {
        key: value for key, value in sorted(os.environ.items())
        if key.startswith(("OPENBLAS_", "OMP_", "MKL_", "NUMBA_"))
    }
    return info


def format_environment(info: dict) -> str:
    """Two or three header lines describing the machine and the libraries."""
    cpu = f"CPU: {info.get('cpu_model')} ({info.get('cpu_affinity') or info.get('cpu_count')} cores usable"
    cpu += f", numba threads {info.get('numba_threads')}"
    if info.get("numba_threading_layer"):
        cpu += f" [{info['numba_threading_layer']}]"
    if info.get("memory_bytes"):
        cpu += f", {format_bytes(info['memory_bytes'])} RAM"
    cpu += ")"
    if info.get("threading_env"):
        cpu += " env: " + " ".join(f"{k}={v}" for k, v in info["threading_env"].items())
    gpu = info.get("gpu") or {}
    if gpu.get("available"):
        gpu_line = f"GPU: {gpu.get('name')} (cc {gpu.get('compute_capability')}"
        if gpu.get("driver_version"):
            gpu_line += f", driver {gpu['driver_version']}"
        if gpu.get("cuda_runtime_version"):
            gpu_line += f", CUDA runtime {gpu['cuda_runtime_version']}"
        gpu_line += ")"
    else:
        gpu_line = f"GPU: unavailable ({gpu.get('reason')})"
    libs = (
        f"{info.get('python')} | {info.get('platform')} | numpy {info.get('numpy')} | numba {info.get('numba')}"
        f" | cupy {info.get('cupy') or '-'} | torch {info.get('torch') or '-'} | {info.get('date')}"
    )
    return "\n".join([libs, cpu, gpu_line])


# --------------------------------------------------------------------------- #
# Output
# --------------------------------------------------------------------------- #
def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (set, tuple)):
        return list(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, np.dtype):
        return value.name
    return str(value)


def write_json(path, payload) -> Path:
    """Write ``payload`` as indented JSON, atomically (temporary file + :func:`os.replace`).

    A reader never sees a half-written file, and an interrupted run leaves the
    previous file intact. Parent directories are created. NumPy scalars and
    arrays are converted; float NaN/inf are written as ``null``.

    Returns
    -------
    pathlib.Path
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(_finite(payload), indent=2, default=_json_default, allow_nan=False)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.write("\n")
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results are meant to be shared
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
    return path


def _finite(value):
    """Replace NaN and infinities by ``None`` so the JSON is strict."""
    if isinstance(value, float) or isinstance(value, np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
