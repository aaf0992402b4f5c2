"""``python -m bench activations``: the activations forward and backward, CPU and GPU (book 7.6, 7.9, 8.7).

The book leaves sections 7.9 and 8.7 ("performance comparison") empty and
asks in 7.6 whether softsign, cheaper than tanh forward (no exponential), is
also cheaper backward (its derivative cannot reuse the output). This command
measures every activation of :data:`kernels.activations.ACTIVATIONS` and
answers from the measurements.

Per activation, device and size it reports the median forward and backward
time of the fast path (fused Numba kernels on the CPU, CuPy kernels on the
GPU), elements/s, GB/s with the bytes counted honestly (forward reads ``x``
and writes ``y``; backward reads ``grad_output`` and its cache and writes
``grad_input``; see :func:`bench.activation_ops.traffic_arrays`), the percent
of a copy roofline measured in the same run, the GPU speedup over the CPU,
the speedup over the book's NumPy code and, with ``--compare torch``, the
ratio to PyTorch. The first call of each kernel (Numba JIT compile or cache
load, CuPy kernel compile) is reported separately and excluded from the
medians.

Example
-------
::

    python -m bench activations --device cpu --json bench/results/activations-cpu.json
    python -m bench activations --quick --plot /tmp/act.png
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np

import kernels.activations as kact

from . import activation_ops as ops
from .common import (
    copy_roofline,
    cupy_or_none,
    environment_info,
    format_environment,
    format_size,
    format_table,
    matmul_roofline,
    parse_sizes,
    resolve_devices,
    time_on_device,
    torch_or_none,
    torch_unavailable_reason,
    write_json,
)

DEFAULT_SIZES = (2**16, 2**20, 2**24)
QUICK_SIZES = (2**10, 2**14)
COMPARE_CHOICES = ("numpy", "torch")

#: Issue 4 targets (float32, 2^24 elements).
CHEAP_CPU = ("relu", "leakyrelu", "prelu", "hardsigmoid", "hardtanh")
EXP_CPU = ("sigmoid", "tanh", "elu", "selu", "gelu", "silu", "softplus", "mish")


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _compare_list(text: str) -> tuple:
    items = tuple(item.strip().lower() for item in text.split(",") if item.strip())
    if items in ((), ("none",)):
        return ()
    bad = [item for item in items if item not in COMPARE_CHOICES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"expected a comma list of {', '.join(COMPARE_CHOICES)} (or 'none'), got {text!r}"
        )
    return items


def _sizes(text: str) -> list:
    try:
        return parse_sizes(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from exc


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``activations`` to its sub-parser."""
    parser.add_argument(
        "--device",
        choices=("cpu", "gpu", "all"),
        default=None,
        help="device(s) to measure (default: every device that answers; a missing GPU is reported with the reason)",
    )
    parser.add_argument(
        "--sizes",
        type=_sizes,
        default=None,
        help="element counts, e.g. '65536,1048576' or '2^16,2^20' (default 2^16,2^20,2^24; --quick: 2^10,2^14)",
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument(
        "--repeat",
        type=int,
        default=None,
        help="timed calls per measurement (default: enough for --min-time seconds, between 7 and 100)",
    )
    parser.add_argument("--warmup", type=int, default=2, help="untimed calls before timing (default 2, at least 1)")
    parser.add_argument(
        "--min-time",
        type=float,
        default=0.25,
        help="with the automatic repeat, aim for this many seconds of timed calls per measurement (default 0.25)",
    )
    parser.add_argument("--json", metavar="PATH", default=None, help="write environment, settings and all rows as JSON")
    parser.add_argument("--plot", metavar="PATH", default=None, help="write a PNG (matplotlib) of the largest size")
    parser.add_argument(
        "--compare",
        type=_compare_list,
        default=("numpy",),
        help="baselines: 'numpy' (the book's NumPy code) and/or 'torch' (PyTorch, when importable); default numpy",
    )
    parser.add_argument(
        "--activations",
        default=None,
        help="comma list of activations and/or families (sigmoidal, rectifier, modern); default all",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the input arrays (default 0)")
    parser.add_argument(
        "--quick", action="store_true", help="small sizes and few repeats (CI smoke run): 2^10,2^14, repeat 3, warmup 1"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def select_activations(text: str | None) -> list:
    """Activation names from a comma list of names and family names (``None``: all, in the kernels' order).

    Raises
    ------
    ValueError
        An unknown name; the message lists the known ones.
    """
    known = list(kact.ACTIVATIONS)
    if not text:
        return known
    by_key = {ops.canonical(n): n for n in known}
    families = {ops.canonical(f): names for f, names in kact.FAMILIES.items()}
    chosen = []
    for item in (part.strip() for part in text.split(",")):
        if not item:
            continue
        key = ops.canonical(item)
        if key in families:
            picked = [by_key[ops.canonical(n)] for n in families[key]]
        elif key in by_key:
            picked = [by_key[key]]
        else:
            raise ValueError(
                f"--activations: unknown activation or family {item!r}; expected names from "
                f"{', '.join(known)} or families {', '.join(kact.FAMILIES)}"
            )
        chosen.extend(p for p in picked if p not in chosen)
    return [n for n in known if n in chosen]


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #
def _sync(device: str) -> None:
    if device == "gpu":
        cupy_or_none().cuda.get_current_stream().synchronize()


def _first_call(fn, device: str):
    """Time one call including device synchronization; returns ``(result, seconds)``."""
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return result, time.perf_counter() - start


class _Timer:
    """Applies the run's repeat/warm-up policy to one measurement.

    The warm-up calls are timed too (and discarded): the fastest of them is the
    estimate from which the automatic repeat count is chosen, so one call slowed
    down by another process does not shrink the sample.
    """

    def __init__(self, repeat, warmup, min_time, quick):
        self.repeat = repeat
        self.warmup = max(1, int(warmup))
        self.min_time = float(min_time)
        self.low, self.high = (3, 3) if quick else (7, 100)

    def __call__(self, fn, device: str, sync=None) -> dict:
        estimates = []
        for _ in range(self.warmup):
            if sync is None:
                _, seconds = _first_call(fn, device)
            else:
                start = time.perf_counter()
                fn()
                sync()
                seconds = time.perf_counter() - start
            estimates.append(seconds)
        repeat = self.repeat
        if repeat is None:
            repeat = min(self.high, max(self.low, math.ceil(self.min_time / max(min(estimates), 1e-9))))
        if sync is not None:  # PyTorch on the GPU: its own stream semantics, synchronize around perf_counter
            from .common import time_function  # noqa: PLC0415

            return time_function(fn, repeat=repeat, warmup=0, sync=sync)
        return time_on_device(fn, device, repeat=repeat, warmup=0)


def _host(array) -> np.ndarray:
    """A NumPy copy of a NumPy, CuPy or PyTorch array (first item of a ``(grad_input, param_grads)`` tuple)."""
    array = ops._first(array)
    if hasattr(array, "detach"):  # torch.Tensor, CPU or CUDA
        return array.detach().cpu().numpy()
    if not isinstance(array, np.ndarray) and hasattr(array, "get"):  # cupy.ndarray
        return array.get()
    return np.asarray(array)


def _max_abs_diff(ours, theirs) -> float | None:
    """Largest absolute difference between two results, or ``None`` when they cannot be compared."""
    try:
        a, b = _host(ours), _host(theirs)
        return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))
    except Exception:  # a comparison must never stop the benchmark
        return None


def _direction(timing: dict, n: int, arrays: int, itemsize: int, copy: dict) -> dict:
    seconds = timing["median"]
    nbytes = arrays * n * itemsize
    gbps = nbytes / seconds / 1e9
    return {
        "median_s": seconds,
        "timing": timing,
        "bytes": nbytes,
        "arrays": arrays,
        "elements_per_s": n / seconds,
        "gbps": gbps,
        "roofline_pct": 100.0 * gbps / copy["gbps"],
    }


def measure_point(names, device, n, dtype, compare, timer, seed, progress, first_calls):
    """Measure every activation of ``names`` at one (device, size); returns ``(rows, copy)``.

    Three phases, each over all activations: the fast path, then the book's
    NumPy code, then PyTorch. Grouping by implementation (with a short pause
    between phases) keeps two thread pools from running back to back: Numba's
    OpenMP workers still spinning after a parallel region steal cores from
    PyTorch's own OpenMP pool, which on a 2-core machine inflates PyTorch's
    small-size times many-fold.

    ``first_calls`` (dict) collects the first-call times of kernels not yet called
    in this process, keyed by ``(activation, device, dtype)``.
    """
    dtype = np.dtype(dtype)
    inputs = ops.make_inputs(n, dtype, device, seed)
    time.sleep(_PHASE_PAUSE_S)
    copy = copy_roofline(n * dtype.itemsize, dtype, device, repeat=timer.repeat or (3 if timer.low == 3 else 21),
                         warmup=timer.warmup)
    rows = []
    for name in names:
        case = ops.make_case(name, inputs, compare=())
        traffic = ops.traffic_arrays(name)
        key = (name, device, dtype.name)
        case.y, fwd_first = _first_call(case.forward, device)
        _, bwd_first = _first_call(case.backward, device)
        forward = _direction(timer(case.forward, device), n, traffic["forward"], dtype.itemsize, copy)
        backward = _direction(timer(case.backward, device), n, traffic["backward"], dtype.itemsize, copy)
        if key not in first_calls:
            first_calls[key] = {
                "activation": name,
                "device": device,
                "dtype": dtype.name,
                "size": n,
                "forward_first_s": fwd_first,
                "backward_first_s": bwd_first,
                "forward_median_s": forward["median_s"],
                "backward_median_s": backward["median_s"],
            }
        rows.append({
            "activation": name,
            "family": case.family,
            "device": device,
            "available": True,
            "size": n,
            "shape": list(inputs.shape),
            "dtype": dtype.name,
            "forward": forward,
            "backward": backward,
            "copy_gbps": copy["gbps"],
        })
        progress(rows[-1])
        del case
    for label, ratio_name in (("numpy", "speedup"), ("torch", "ratio")):
        if label not in compare:
            continue
        time.sleep(_PHASE_PAUSE_S)
        for row in rows:
            case = ops.make_case(row["activation"], inputs, compare=(label,))
            case.y = case.forward()
            grad_in = case.backward()
            key = "book" if label == "numpy" else "torch"
            fwd_fn = case.book_forward if label == "numpy" else case.torch_forward
            bwd_fn = case.book_backward if label == "numpy" else case.torch_backward
            if fwd_fn is None:
                row[key] = {"skipped": case.torch_note or case.book_note}
            else:
                row[key] = _baseline(fwd_fn, bwd_fn, device, timer, row["forward"], row["backward"],
                                     case.y, grad_in, ratio_name=ratio_name, sync=case.torch_sync)
            del case, grad_in
    return rows, copy


#: Pause between the fast, book and PyTorch phases, so idle OpenMP workers stop spinning.
_PHASE_PAUSE_S = 0.2


def _baseline(fwd_fn, bwd_fn, device, timer, forward, backward, y, grad_in, ratio_name, sync=None) -> dict:
    """Time a baseline (book code or PyTorch) and relate it to the fast path.

    ``speedup``/``ratio`` = baseline time / fast time (> 1: the fast path wins).
    """
    out = {}
    try:
        base_y = fwd_fn()
        base_g = bwd_fn()
    except Exception as exc:  # e.g. the book's NumPy code handed CuPy arrays
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    for label, fn, fast, ours, theirs in (
        ("forward", fwd_fn, forward, y, base_y),
        ("backward", bwd_fn, backward, grad_in, base_g),
    ):
        timing = timer(fn, device, sync=sync)
        out[label] = {
            "median_s": timing["median"],
            "timing": timing,
            ratio_name: timing["median"] / fast["median_s"],
            "max_abs_diff": _max_abs_diff(ours, theirs),
        }
    return out


def unavailable_rows(names, device, reason, sizes, dtype) -> list:
    """Rows that say a device was not measured, and why."""
    return [
        {
            "activation": name,
            "family": ops.family_of(name),
            "device": device,
            "available": False,
            "reason": reason,
            "size": n,
            "dtype": np.dtype(dtype).name,
        }
        for n in sizes
        for name in names
    ]


def add_gpu_speedups(rows) -> None:
    """Set ``gpu_speedup`` (CPU median / GPU median, per direction) on GPU rows with a CPU twin."""
    cpu = {(r["activation"], r["size"], r["dtype"]): r for r in rows if r["device"] == "cpu" and r["available"]}
    for row in rows:
        if row["device"] != "gpu" or not row["available"]:
            continue
        twin = cpu.get((row["activation"], row["size"], row["dtype"]))
        if twin is not None:
            row["gpu_speedup"] = {
                d: twin[d]["median_s"] / row[d]["median_s"] for d in ("forward", "backward")
            }


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def _pair(row, key, sub, fmt="{:.1f}x"):
    block = row.get(key)
    if not isinstance(block, dict) or "forward" not in block:
        return None
    values = [block[d].get(sub) if isinstance(block[d], dict) else block[d] for d in ("forward", "backward")]
    if any(v is None for v in values):
        return None
    return "/".join(fmt.format(v) for v in values)


def _ms(seconds) -> str:
    ms = seconds * 1e3
    if ms >= 100:
        return f"{ms:.1f}"
    if ms >= 1:
        return f"{ms:.2f}"
    return f"{ms:.4f}"


def table_rows(rows, compare) -> list:
    """Flatten measurement rows into the printed table's cells."""
    out = []
    for row in rows:
        if not row["available"]:
            continue
        f, b = row["forward"], row["backward"]
        spread = max(f["timing"]["iqr"] / f["median_s"], b["timing"]["iqr"] / b["median_s"]) * 100
        cell = {
            "activation": row["activation"],
            "device": row["device"],
            "size": format_size(row["size"]),
            "fwd_ms": _ms(f["median_s"]),
            "bwd_ms": _ms(b["median_s"]),
            "spread": f"{spread:.0f}%",
            "geps": f"{f['elements_per_s'] / 1e9:.2f}/{b['elements_per_s'] / 1e9:.2f}",
            "gbps": f"{f['gbps']:.1f}/{b['gbps']:.1f}",
            "roof": f"{f['roofline_pct']:.0f}/{b['roofline_pct']:.0f}",
            "gpu": None,
            "book": _pair(row, "book", "speedup"),
            "torch": _pair(row, "torch", "ratio", "{:.2f}"),
        }
        if "gpu_speedup" in row:
            cell["gpu"] = "/".join(f"{row['gpu_speedup'][d]:.1f}x" for d in ("forward", "backward"))
        out.append(cell)
    return out


def table_columns(compare, with_gpu) -> list:
    columns = [
        ("activation", "activation"),
        ("device", "dev"),
        ("size", "size"),
        ("fwd_ms", "fwd ms"),
        ("bwd_ms", "bwd ms"),
        ("spread", "iqr"),
        ("geps", "Gelem/s f/b"),
        ("gbps", "GB/s f/b"),
        ("roof", "%copy f/b"),
    ]
    if with_gpu:
        columns.append(("gpu", "GPU/CPU f/b"))
    if "numpy" in compare:
        columns.append(("book", "vs book f/b"))
    if "torch" in compare:
        columns.append(("torch", "torch/ours f/b"))
    return columns


def _largest(rows, device):
    measured = [r for r in rows if r["device"] == device and r["available"]]
    if not measured:
        return []
    size = max(r["size"] for r in measured)
    return [r for r in measured if r["size"] == size]


def _ranking(rows, direction):
    return sorted(rows, key=lambda r: r[direction]["median_s"])


def answer_book_question(rows) -> list:
    """Answer book 7.6 from the measurements: cheapest forward, cheapest backward, CPU vs GPU ranking.

    Returns
    -------
    list of str
        Lines of text; every number comes from ``rows`` (largest size per device).
    """
    lines = []
    per_device = {}
    for device in ("cpu", "gpu"):
        largest = _largest(rows, device)
        if not largest:
            missing = [r for r in rows if r["device"] == device and not r["available"]]
            if missing:
                lines.append(f"{device.upper()}: not measured ({missing[0]['reason']}).")
            continue
        per_device[device] = largest
        size, dtype = format_size(largest[0]["size"]), largest[0]["dtype"]
        lines.append(f"{device.upper()}, {size} {dtype}:")
        for direction in ("forward", "backward"):
            ranked = _ranking(largest, direction)
            fastest = ranked[0][direction]["median_s"]
            listing = ", ".join(
                f"{r['activation']} {r[direction]['median_s'] / fastest:.2g}x" for r in ranked
            )
            lines.append(f"  {direction:8s} cheapest to dearest (time / fastest): {listing}")
        by_name = {ops.canonical(r["activation"]): r for r in largest}
        soft = by_name.get("softsign")
        if soft is not None:
            for direction in ("forward", "backward"):
                parts = []
                for other in ("tanh", "sigmoid"):
                    if other in by_name:
                        ratio = by_name[other][direction]["median_s"] / soft[direction]["median_s"]
                        word = "faster" if ratio >= 1 else "slower"
                        factor = ratio if ratio >= 1 else 1 / ratio
                        spread = max(_relative_iqr(soft, direction), _relative_iqr(by_name[other], direction))
                        tie = " (within the run's spread: a tie)" if factor - 1 <= spread else ""
                        parts.append(f"{factor:.2f}x {word} than {other}{tie}")
                rank = [ops.canonical(r["activation"]) for r in _ranking(largest, direction)].index("softsign") + 1
                if parts:
                    lines.append(
                        f"  softsign {direction}: {'; '.join(parts)} (rank {rank} of {len(largest)})"
                    )
    if "cpu" in per_device and "gpu" in per_device:
        for direction in ("forward", "backward"):
            cpu_rank = [r["activation"] for r in _ranking(per_device["cpu"], direction)]
            gpu_rank = [r["activation"] for r in _ranking(per_device["gpu"], direction)]
            common = [a for a in cpu_rank if a in gpu_rank]
            rho = _spearman([cpu_rank.index(a) for a in common], [gpu_rank.index(a) for a in common])
            spreads = {}
            for device in ("cpu", "gpu"):
                times = [r[direction]["median_s"] for r in per_device[device]]
                spreads[device] = max(times) / min(times)
            lines.append(
                f"CPU -> GPU {direction}: rank correlation {rho:.2f}; slowest/fastest {spreads['cpu']:.1f}x on "
                f"CPU vs {spreads['gpu']:.1f}x on GPU"
                + (" (GPU times nearly equal: memory traffic, not arithmetic, sets the pace)"
                   if spreads["gpu"] < 1.5 <= spreads["cpu"] else "")
            )
    elif per_device:
        lines.append("CPU -> GPU: only one device measured, no ranking change to report.")
    return lines


def _relative_iqr(row, direction) -> float:
    """Inter-quartile range of a measurement as a fraction of its median."""
    block = row[direction]
    return block.get("timing", {}).get("iqr", 0.0) / block["median_s"]


def _spearman(a, b) -> float:
    if len(a) < 2:
        return float("nan")
    ra = np.argsort(np.argsort(a)).astype(float)
    rb = np.argsort(np.argsort(b)).astype(float)
    ra -= ra.mean()
    rb -= rb.mean()
    denom = math.sqrt(float((ra**2).sum() * (rb**2).sum()))
    return float((ra * rb).sum() / denom) if denom else float("nan")


def check_targets(rows) -> tuple:
    """Issue 4 targets at the largest size measured: which are met, which missed.

    Returns
    -------
    (dict, list of str)
        Machine-readable results and report lines.
    """
    result = {}
    lines = []
    cpu = _largest(rows, "cpu")
    if cpu:
        label = f"{format_size(cpu[0]['size'])} {cpu[0]['dtype']}"
        checks = []
        for r in cpu:
            key = ops.canonical(r["activation"])
            worst = min(r["forward"]["roofline_pct"], r["backward"]["roofline_pct"])
            if key in CHEAP_CPU:
                checks.append((r["activation"], "within 1.5x of copy", worst >= 100 / 1.5, worst))
            elif key in EXP_CPU:
                checks.append((r["activation"], "within 4x of copy", worst >= 25.0, worst))
            for base, ratio in (("book", "speedup"), ("torch", "ratio")):
                block = r.get(base)
                if isinstance(block, dict) and "forward" in block:
                    slower = min(block["forward"][ratio], block["backward"][ratio])
                    checks.append((r["activation"], f"faster than {base}", slower > 1.0, slower))
        missed = [f"{a} ({what}: {value:.3g})" for a, what, ok, value in checks if not ok]
        result["cpu"] = {"at": label, "checked": len(checks), "missed": missed}
        lines.append(
            f"CPU targets at {label}: {len(checks) - len(missed)}/{len(checks)} met"
            + (f"; missed: {', '.join(missed)}" if missed else "")
        )
    gpu = _largest(rows, "gpu")
    if gpu:
        label = f"{format_size(gpu[0]['size'])} {gpu[0]['dtype']}"
        missed = []
        for r in gpu:
            worst = min(r["forward"]["roofline_pct"], r["backward"]["roofline_pct"])
            if worst < 80.0:
                missed.append(f"{r['activation']} (%copy {worst:.0f})")
            speed = r.get("gpu_speedup")
            if speed and min(speed.values()) < 20.0:
                missed.append(f"{r['activation']} (GPU/CPU {min(speed.values()):.1f}x)")
        result["gpu"] = {"at": label, "missed": missed}
        lines.append(
            f"GPU targets at {label} (>= 80% of copy, >= 20x CPU): "
            + ("all met" if not missed else "missed: " + ", ".join(missed))
        )
    elif any(r["device"] == "gpu" for r in rows):
        lines.append("GPU targets: not measured (GPU unavailable).")
    return result, lines


def plot_results(rows, copies, path, title="") -> None:
    """Grouped bars per family: forward/backward x CPU/GPU median times (log scale), copy roofline ticks.

    Uses the largest size measured on each device. The black tick over each
    bar is the time a copy of the same bytes takes at the measured copy
    bandwidth (the roofline of that bar).
    """
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    largest = {d: _largest(rows, d) for d in ("cpu", "gpu")}
    families = [f for f in kact.FAMILIES if any(r["family"] == f for d in largest for r in largest[d])]
    if not families:
        families = ["other"]
    series = [(d, direction) for d in ("cpu", "gpu") if largest[d] for direction in ("forward", "backward")]
    colors = {("cpu", "forward"): "#1f77b4", ("cpu", "backward"): "#aec7e8",
              ("gpu", "forward"): "#2ca02c", ("gpu", "backward"): "#98df8a"}
    widths = [max(1, len({r["activation"] for d in largest for r in largest[d] if r["family"] == f}))
              for f in families]
    fig, axes = plt.subplots(1, len(families), figsize=(4 + 1.1 * sum(widths), 4.8), squeeze=False,
                             gridspec_kw={"width_ratios": widths})
    bar = 0.8 / max(1, len(series))
    for ax, family in zip(axes[0], families):
        values = []
        names = [n for n in kact.ACTIVATIONS
                 if any(r["activation"] == n and r["family"] == family for d in largest for r in largest[d])]
        for s, (device, direction) in enumerate(series):
            by_name = {r["activation"]: r for r in largest[device]}
            for i, name in enumerate(names):
                r = by_name.get(name)
                if r is None:
                    continue
                x = i - 0.4 + bar * (s + 0.5)
                ms = r[direction]["median_s"] * 1e3
                roof_ms = r[direction]["bytes"] / (r["copy_gbps"] * 1e9) * 1e3
                ax.bar(x, ms, bar, color=colors[(device, direction)],
                       label=f"{device.upper()} {direction}" if i == 0 else None)
                ax.hlines(roof_ms, x - bar / 2, x + bar / 2, colors="black", linewidth=1.5,
                          label="copy roofline (same bytes)" if (i == 0 and s == 0) else None)
                values += [ms, roof_ms]
        ax.set_xticks(range(len(names)))
        ax.set_xticklabels(names, rotation=35, ha="right")
        ax.set_yscale("log")
        if values:  # room below the lowest roofline tick, so no tick sits on the axis
            ax.set_ylim(min(values) / 1.6, max(values) * 1.4)
        ax.set_title(family)
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0][0].set_ylabel("median time (ms, log scale)")
    handles, labels = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="upper center", ncol=len(labels), frameon=False, fontsize=8)
    sizes = sorted({format_size(r["size"]) + " " + r["dtype"] for d in largest for r in largest[d]})
    fig.suptitle(f"{title} {', '.join(sizes)}".strip(), y=0.02, fontsize=9)
    fig.tight_layout(rect=(0, 0.04, 1, 0.92))
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- #
# Entry point
# --------------------------------------------------------------------------- #
def _progress_printer(total: int, quiet: bool):
    """A callable taking one row; tqdm bar on a terminal, else one line per activation on stderr."""
    if quiet:
        return (lambda row: None), (lambda: None)
    if sys.stderr.isatty():
        from tqdm import tqdm  # noqa: PLC0415

        bar = tqdm(total=total, file=sys.stderr, unit="act", leave=False)

        def update(row):
            bar.set_postfix_str(f"{row['device']} {format_size(row['size'])} {row['activation']}")
            bar.update(1)

        return update, bar.close
    count = [0]

    def line(row):
        count[0] += 1
        print(
            f"[{count[0]}/{total}] {row['device']} {format_size(row['size'])} {row['dtype']} {row['activation']}: "
            f"fwd {_ms(row['forward']['median_s'])} ms, bwd {_ms(row['backward']['median_s'])} ms",
            file=sys.stderr,
            flush=True,
        )

    return line, (lambda: None)


def run(args) -> int:
    """Run the activation benchmark described by parsed ``args``; returns the exit status."""
    try:
        names = select_activations(args.activations)
    except ValueError as exc:
        print(f"camadas-bench activations: {exc}", file=sys.stderr)
        return 2
    sizes = list(args.sizes) if args.sizes else list(QUICK_SIZES if args.quick else DEFAULT_SIZES)
    repeat = args.repeat if args.repeat is not None else (3 if args.quick else None)
    warmup = 1 if args.quick and args.warmup == 2 else args.warmup
    if repeat is not None and repeat < 1:
        print(f"camadas-bench activations: --repeat: expected an int >= 1, got {repeat}", file=sys.stderr)
        return 2
    compare = tuple(args.compare)
    timer = _Timer(repeat, warmup, args.min_time, args.quick)
    warmup = timer.warmup
    devices = resolve_devices(args.device)

    env = environment_info()
    print("camadas activation benchmark (book sections 7.6, 7.9, 8.7)")
    print(format_environment(env))
    print(
        f"dtype {args.dtype}; sizes {', '.join(format_size(n) for n in sizes)}; "
        f"repeat {repeat if repeat is not None else f'auto ({timer.low}-{timer.high}, ~{args.min_time:g} s)'}; "
        f"warm-up {warmup} (after the first call, timed apart); medians; input x ~ 3 N(0,1)"
    )
    notes = []
    if "torch" in compare and torch_or_none() is None:
        notes.append(f"PyTorch comparison skipped: {torch_unavailable_reason()}")
        compare = tuple(c for c in compare if c != "torch")
    for note in notes:
        print(note)

    rows, copies, matmuls, first_calls = [], [], [], {}
    measured = [d for d, ok, _ in devices if ok]
    update, close = _progress_printer(len(measured) * len(sizes) * len(names), args.quiet)
    try:
        for device, ok, reason in devices:
            if not ok:
                rows.extend(unavailable_rows(names, device, reason, sizes, args.dtype))
                continue
            try:
                matmuls.append(matmul_roofline(args.dtype, device, n=256 if args.quick else 2048))
            except Exception as exc:  # informative only
                matmuls.append({"device": device, "error": f"{type(exc).__name__}: {exc}"})
            for n in sizes:
                point_rows, copy = measure_point(
                    names, device, n, args.dtype, compare, timer, args.seed, update, first_calls
                )
                rows.extend(point_rows)
                copies.append({k: v for k, v in copy.items()})
    finally:
        close()
    add_gpu_speedups(rows)

    for copy in copies:
        print(
            f"copy roofline {copy['device']} {format_size(copy['elements'])} {copy['dtype']}: "
            f"{copy['gbps']:.1f} GB/s ({copy['method']}, {_ms(copy['seconds'])} ms); "
            f"into a new array {copy['allocating']['gbps']:.1f} GB/s"
        )
    for mm in matmuls:
        if "gflops" in mm:
            print(f"matmul roofline {mm['device']} {mm['n']}^2 {mm['dtype']}: {mm['gflops']:.1f} GFLOP/s")

    with_gpu = any(r["device"] == "gpu" and r["available"] for r in rows)
    columns = table_columns(compare, with_gpu)
    for family in list(kact.FAMILIES) + ["other"]:
        family_rows = [r for r in rows if r["family"] == family]
        if not family_rows:
            continue
        order = {n: i for i, n in enumerate(names)}
        available = sorted(
            (r for r in family_rows if r["available"]),
            key=lambda r: (r["size"], order.get(r["activation"], 0), r["device"]),
        )
        print()
        print(f"== {family} ==")
        if available:
            print(format_table(table_rows(available, compare), columns))
        for device in sorted({r["device"] for r in family_rows if not r["available"]}):
            reason = next(r["reason"] for r in family_rows if r["device"] == device and not r["available"])
            listed = ", ".join(dict.fromkeys(r["activation"] for r in family_rows if r["device"] == device))
            print(f"{device}: unavailable ({reason}) - rows not measured: {listed}")
    print(
        "\n%copy: GB/s as a percent of the copy roofline (forward counts x read + y written; backward "
        "grad_output + cache read + grad_input written). vs book: book NumPy time / ours. "
        "torch/ours: PyTorch time / ours. f/b: forward/backward."
    )

    if first_calls:
        print("\nFirst call (Numba JIT compile or on-disk cache load; CuPy kernel compile), excluded from medians:")
        compile_rows = [
            {
                "activation": c["activation"],
                "device": c["device"],
                "dtype": c["dtype"],
                "fwd_first": _ms(c["forward_first_s"]),
                "bwd_first": _ms(c["backward_first_s"]),
                "fwd_median": _ms(c["forward_median_s"]),
                "size": format_size(c["size"]),
            }
            for c in first_calls.values()
        ]
        print(format_table(compile_rows, [
            ("activation", "activation"), ("device", "dev"), ("dtype", "dtype"), ("size", "size"),
            ("fwd_first", "fwd first ms"), ("bwd_first", "bwd first ms"), ("fwd_median", "fwd median ms"),
        ]))

    answer = answer_book_question(rows)
    print("\nBook 7.6: softsign has no exponential - is it cheaper forward, and backward?")
    for line in answer:
        print(line)
    targets, target_lines = check_targets(rows)
    print("\nIssue 4 targets (stated for float32, 2^24):")
    for line in target_lines:
        print(line)

    if args.json:
        payload = {
            "benchmark": "activations",
            "schema": 1,
            "command": "python -m bench " + " ".join(getattr(args, "_argv", None) or ["activations"]),
            "environment": env,
            "settings": {
                "sizes": sizes,
                "dtype": args.dtype,
                "repeat": repeat,
                "warmup": warmup,
                "min_time": args.min_time,
                "compare": list(compare),
                "activations": names,
                "seed": args.seed,
                "quick": bool(args.quick),
            },
            "devices": {d: {"available": ok, "reason": reason} for d, ok, reason in devices},
            "notes": notes,
            "rooflines": {"copy": copies, "matmul": matmuls},
            "first_calls": list(first_calls.values()),
            "rows": rows,
            "answer": answer,
            "targets": targets,
        }
        path = write_json(args.json, payload)
        print(f"\nJSON written to {path}")
    if not measured:
        print("camadas-bench activations: nothing measured: no requested device is available", file=sys.stderr)
        return 1
    if args.plot:
        if any(r["available"] for r in rows):
            plot_results(rows, copies, args.plot, title="camadas activations,")
            print(f"plot written to {args.plot}")
        else:
            print("no measurement to plot", file=sys.stderr)
    return 0
