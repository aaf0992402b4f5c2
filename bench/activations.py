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
from . import options
from .common import (
    copy_roofline,
    environment_info,
    format_environment,
    format_size,
    format_table,
    matmul_roofline,
    present_columns,
    resolve_devices,
    torch_or_none,
    torch_unavailable_reason,
    write_json,
)
from .timing import Timer, add_gpu_speedups, first_call
from .timing import format_ms as _ms

DEFAULT_SIZES = (2**16, 2**20, 2**24)
QUICK_SIZES = (2**10, 2**14)
COMPARE_CHOICES = ("numpy", "torch")

#: The targets are stated for float32 arrays of this many elements; other runs are not judged.
TARGET_SIZE, TARGET_DTYPE = 2**24, "float32"
#: CPU targets: memory-bound activations within 1.5x of the copy roofline, the others within 4x.
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
        type=options.sizes,
        default=None,
        help="element counts, e.g. '65536,1048576' or '2^16,2^20' (default 2^16,2^20,2^24; --quick: 2^10,2^14)",
    )
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument(
        "--repeat",
        type=options.positive_int,
        default=None,
        help="timed calls per measurement (default: enough for --min-time seconds, between 7 and 100)",
    )
    parser.add_argument("--warmup", type=options.positive_int, default=2,
                        help="untimed calls before timing, at least 1 (default 2; --quick: 1)")
    parser.add_argument(
        "--min-time",
        type=options.positive_float,
        default=0.25,
        help="with the automatic repeat, aim for this many seconds of timed calls per measurement (default 0.25)",
    )
    parser.add_argument("--json", metavar="PATH", type=options.output_file, default=None,
                        help="write environment, settings and all rows as JSON")
    parser.add_argument("--plot", metavar="PATH", type=options.output_file, default=None,
                        help="write a PNG (matplotlib) of the largest size")
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
    parser.add_argument("--seed", type=options.seed, default=0, help="seed of the input arrays (default 0)")
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
    copy = copy_roofline(n * dtype.itemsize, dtype, device, repeat=timer.repeat or (3 if timer.high == 3 else 21),
                         warmup=timer.warmup)
    rows = []
    for name in names:
        case = ops.make_case(name, inputs, compare=())
        traffic = ops.traffic_arrays(name)
        key = (name, device, dtype.name)
        case.y, fwd_first = first_call(case.forward, device)
        _, bwd_first = first_call(case.backward, device)
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
        timing = timer(fn, device, sync_fn=sync)
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


#: Every column of the activation tables, with its legend (``None``: self-explanatory).
COLUMNS = [
    ("activation", "activation", None),
    ("device", "dev", None),
    ("size", "size", None),
    ("fwd_ms", "fwd ms", None),
    ("bwd_ms", "bwd ms", None),
    ("spread", "iqr", "iqr: the larger inter-quartile range of forward and backward, in % of the median"),
    ("geps", "Gelem/s f/b", None),
    ("gbps", "GB/s f/b", None),
    ("roof", "%copy f/b", "%copy: GB/s as a percent of the copy roofline (forward counts x read + y written; "
                          "backward grad_output + cache read + grad_input written)"),
    ("gpu", "GPU/CPU f/b", "GPU/CPU: our CPU time / our GPU time"),
    ("book", "vs book f/b", "vs book: the book's NumPy time / ours"),
    ("torch", "torch/ours f/b", "torch/ours: PyTorch's time / ours (> 1: ours is faster)"),
]


def table_columns(cells) -> list:
    """The ``(key, header)`` columns that have a value in some row of ``cells`` (no empty columns)."""
    return present_columns(cells, [(key, header) for key, header, _ in COLUMNS])


def column_legend(columns) -> str:
    """One line explaining the columns shown (and only those)."""
    shown = {key for key, _ in columns}
    parts = [legend for key, _, legend in COLUMNS if legend and key in shown]
    return ". ".join(parts + ["f/b: forward/backward"]) + "."


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
                        factor = ratio if ratio >= 1 else 1 / ratio
                        spread = max(_relative_iqr(soft, direction), _relative_iqr(by_name[other], direction))
                        if factor - 1 <= spread:
                            parts.append(f"a tie with {other} (times {100 * (factor - 1):.0f}% apart, within the "
                                         f"run's spread of {100 * spread:.0f}%)")
                        else:
                            parts.append(f"{factor:.2f}x {'faster' if ratio >= 1 else 'slower'} than {other}")
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
    """The targets, judged only on float32 runs at 2^24 elements (the size they are stated for).

    CPU: the memory-bound activations (:data:`CHEAP_CPU`) within 1.5x of the
    copy roofline, those with an exponential (:data:`EXP_CPU`) within 4x, and
    every activation faster than the book's NumPy code and than PyTorch (when
    compared). GPU: at least 80 % of the copy roofline and 20x our CPU kernels.

    Returns
    -------
    (dict, list of str)
        Machine-readable results and report lines.
    """
    result = {}
    lines = []
    for device in ("cpu", "gpu"):
        largest = _largest(rows, device)
        if not largest:
            continue
        size, dtype = largest[0]["size"], largest[0]["dtype"]
        label = f"{format_size(size)} {dtype}"
        if (size, dtype) != (TARGET_SIZE, TARGET_DTYPE):
            result[device] = {"at": label, "judged": False}
            lines.append(f"{device.upper()}: not judged: the targets are stated for {format_size(TARGET_SIZE)} "
                         f"{TARGET_DTYPE} elements; this run's largest size is {label}.")
            continue
        checks = []
        for r in largest:
            key = ops.canonical(r["activation"])
            worst = min(r["forward"]["roofline_pct"], r["backward"]["roofline_pct"])
            if device == "gpu":
                checks.append((r["activation"], ">= 80% of copy", worst >= 80.0, worst))
                speed = r.get("gpu_speedup")
                if speed:
                    checks.append((r["activation"], ">= 20x our CPU", min(speed.values()) >= 20.0,
                                   min(speed.values())))
                continue
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
        result[device] = {"at": label, "judged": True, "checked": len(checks), "missed": missed}
        lines.append(f"{device.upper()} at {label}: {len(checks) - len(missed)}/{len(checks)} met"
                     + (f"; missed: {', '.join(missed)}" if missed else ""))
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
    compare = tuple(args.compare)
    timer = Timer(repeat, warmup, args.min_time, bounds=(3, 3) if args.quick else (7, 100))
    devices = resolve_devices(args.device)

    env = environment_info()
    print("camadas activation benchmark (book sections 7.6, 7.9, 8.7)")
    print(format_environment(env))
    print(
        f"dtype {args.dtype}; sizes {', '.join(format_size(n) for n in sizes)}; "
        f"repeat {repeat if repeat is not None else f'auto ({timer.low}-{timer.high}, ~{args.min_time:g} s)'}; "
        f"warm-up {warmup} (after the first call, timed apart); medians; input x ~ 3 N(0,1)"
    )
    notes = [f"{d.upper()}: not measured (unavailable: see the {d.upper()} line above)"
             for d, ok, _ in devices if not ok]
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
    add_gpu_speedups(rows, key=lambda r: (r["activation"], r["size"], r["dtype"]),
                     seconds=lambda r: {d: r[d]["median_s"] for d in ("forward", "backward")})

    for copy in copies:
        print(
            f"copy roofline {copy['device']} {format_size(copy['elements'])} {copy['dtype']}: "
            f"{copy['gbps']:.1f} GB/s ({copy['method']}, {_ms(copy['seconds'])} ms); "
            f"into a new array {copy['allocating']['gbps']:.1f} GB/s"
        )
    for mm in matmuls:
        if "gflops" in mm:
            print(f"matmul roofline {mm['device']} {mm['n']}^2 {mm['dtype']}: {mm['gflops']:.1f} GFLOP/s")

    shown = []
    for family in list(kact.FAMILIES) + ["other"]:
        family_rows = [r for r in rows if r["family"] == family]
        if not family_rows:
            continue
        order = {n: i for i, n in enumerate(names)}
        available = sorted(
            (r for r in family_rows if r["available"]),
            key=lambda r: (r["size"], order.get(r["activation"], 0), r["device"]),
        )
        if not available:
            continue
        cells = table_rows(available, compare)
        columns = table_columns(cells)
        shown.extend(c for c in columns if c not in shown)
        print()
        print(f"== {family} ==")
        print(format_table(cells, columns))
    if shown:
        print("\n" + column_legend(shown))

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
    print(f"\nTargets (float32, {format_size(TARGET_SIZE)} elements; CPU: within 1.5x of the copy roofline for "
          "the memory-bound activations, 4x for the others, faster than the book's code and PyTorch; "
          "GPU: >= 80% of the copy roofline, >= 20x our CPU kernels):")
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
