"""``python -m bench kernels``: convolution and pooling, forward and backward (book chapter 22).

For each case it reports the median time of ``forward``, ``backward`` (all the
gradients: input, kernels and bias for the convolution) and
``forward+backward`` of

* ``ours``: the dispatched kernels (:mod:`kernels.conv2d`, :mod:`kernels.pool2d`;
  CuPy arrays go to the GPU modules), on the GPU with cuDNN switched off: our
  numba-cuda + cuBLAS kernels;
* ``cudnn`` (GPU, convolution and average pooling): the same dispatchers with
  cuDNN switched on (:mod:`kernels.cudnn`), the path a model takes by default
  where cuDNN loads; the row says how many calls cuDNN actually served;
* ``book``: the book's loops (:mod:`kernels.reference`), timed once on the
  first ``--book-images`` images of the batch and extrapolated linearly to the
  whole batch (the loops are linear in the batch); marked ``~`` in the table
  and ``"extrapolated_from_images"`` in the JSON;
* ``torch``: PyTorch when it imports (a comparison point, never a dependency),
  NCHW tensors in ``channels_last`` memory format (the same bytes as NHWC),
  gradients by autograd, on the same device; on the GPU with TF32 switched off
  (``torch.backends.cudnn.allow_tf32 = False``), as our float32 is exact.

Convolutions print GFLOP/s (``2 B OH OW F C kh kw`` per forward, twice that per
backward) and the percentage of a float matrix-product roofline measured in
the same run; pooling prints GB/s (bytes the op must read and write, int32
argmax included) and the percentage of a copy roofline of the input's size.
The first call of every kernel in the process (a Numba compile or cache load)
is reported separately and excluded from the medians. Ours and PyTorch are
timed in ``--rounds`` alternating blocks and the block with the lowest median
is kept (robust to bursts of load from other processes). The CPU time other
processes used is measured per case (``/proc/stat``, column "other load"); a
case is measured again, up to ``--retries`` times, while it exceeds 10 %.
Load from *other virtual machines* on the same host (memory bandwidth, shared
cache) is invisible to this check: on a shared machine, run it more than once. ``--first-call`` also
measures, in fresh processes with an empty Numba cache directory, the cold
first call (compile) and the warm first call (cache hit).

Shapes (3x3 convolutions, stride 1, padding 1; 2x2 pools):
conv (32, 28, 28, 8)->16, (64, 32, 32, 32)->64, (16, 56, 56, 64)->64; pooling
(32, 28, 28, 16) and (64, 32, 32, 64); then the convolution variants of
:mod:`bench.kernel_variants` (depthwise 3x3, dilated, transposed, a ResNet
basic block). ``--quick`` uses small shapes (CI).

Example
-------
::

    python -m bench kernels --device cpu --json bench/results/kernels-cpu.json
    python -m bench kernels --quick
    python -m bench kernels --device cpu --threads 1 --ops conv2d,resnet_block,conv_transpose2d
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

import numpy as np

from kernels import conv2d, cudnn, pool2d, reference

from . import common, kernel_variants, options
from .common import copy_roofline, cupy_or_none, format_table, matmul_roofline, present_columns, torch_or_none
from .timing import Timer, add_gpu_speedups, first_call
from .timing import format_ms as _ms

#: (input shape NHWC, filters); 3x3 kernels, stride 1, padding 1.
CONV_SHAPES = (((32, 28, 28, 8), 16), ((64, 32, 32, 32), 64), ((16, 56, 56, 64), 64))
POOL_SHAPES = ((32, 28, 28, 16), (64, 32, 32, 64))
QUICK_CONV_SHAPES = (((4, 12, 12, 4), 8), ((2, 16, 16, 8), 8))
QUICK_POOL_SHAPES = ((4, 12, 12, 8),)
KERNEL, STRIDE, PADDING, POOL = (3, 3), (1, 1), (1, 1), (2, 2)
DIRECTIONS = ("forward", "backward", "forward+backward")
POOL_OPS = ("max_pool2d", "avg_pool2d")

#: Targets (float32, forward+backward, at the default shapes; --quick runs are not judged).
#: GPU: ours within 1.5x of cuDNN through PyTorch (1.2x for pooling), at parity (1.1x) where we call cuDNN.
TARGETS = {
    "cpu": {"conv2d_vs_torch": 1.5, "pool_vs_torch": 1.2, "vs_book": 100.0},
    "gpu": {"conv2d_vs_torch": 1.5, "pool_vs_torch": 1.2, "cudnn_vs_torch": 1.1, "gpu_vs_cpu_conv": 20.0},
}
#: Ops that cuDNN serves (max pooling keeps our kernels: the layer needs the argmax).
CUDNN_OPS = ("conv2d", "avg_pool2d") + kernel_variants.OPS

#: Every op of the benchmark (``--ops``).
ALL_OPS = ("conv2d",) + POOL_OPS + kernel_variants.OPS

#: Pause between implementations, so idle thread pools (OpenBLAS, OpenMP) stop spinning.
_PAUSE_S = 0.2


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``kernels`` to its sub-parser."""
    parser.add_argument("--device", choices=("cpu", "gpu", "all"), default=None,
                        help="device(s) to measure (default: all; a missing GPU is reported with the reason)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument("--repeat", type=options.positive_int, default=None,
                        help="timed calls per measurement (default: enough for --min-time seconds, 5 to 50)")
    parser.add_argument("--warmup", type=options.positive_int, default=2,
                        help="untimed calls before timing, at least 1 (default 2; --quick: 1)")
    parser.add_argument("--min-time", type=options.positive_float, default=0.5,
                        help="with the automatic repeat, seconds of timed calls per measurement (default 0.5)")
    parser.add_argument("--rounds", type=options.positive_int, default=3,
                        help="alternating blocks of ours/PyTorch per case; the block with the lowest median is kept "
                             "(default 3; --quick: 1)")
    parser.add_argument("--retries", type=options.nonnegative_int, default=3,
                        help="measure a case again (after a pause) while other processes used more than 10%% of "
                             "the CPU during it (default 3; --quick: 0)")
    parser.add_argument("--book-images", type=options.nonnegative_int, default=1,
                        help="images of the batch the book's loops are timed on, then extrapolated (default 1; "
                             "0 skips the book)")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch even if it imports")
    parser.add_argument("--first-call", action="store_true",
                        help="also measure cold (compile) and warm (cache hit) first calls in fresh processes")
    parser.add_argument("--json", metavar="PATH", type=options.output_file, default=None,
                        help="write environment, settings and rows as JSON")
    parser.add_argument("--seed", type=options.seed, default=0, help="seed of the input arrays (default 0)")
    parser.add_argument("--quick", action="store_true",
                        help="small shapes, repeat 3, warmup 1 (CI smoke run)")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    parser.add_argument("--ops", type=_op_list, default=None,
                        help=f"comma-separated subset of {', '.join(ALL_OPS)} (default: all)")
    parser.add_argument("--threads", type=options.positive_int, default=None,
                        help="threads of both libraries (camadas's BLAS and Numba pools through "
                             "backend.host.limit_threads, torch.set_num_threads); default: each library's own "
                             "choice. 1 gives steadier figures on a shared machine")


def _op_list(text):
    ops = tuple(o.strip() for o in text.split(",") if o.strip())
    unknown = [o for o in ops if o not in ALL_OPS]
    if not ops or unknown:
        raise argparse.ArgumentTypeError(f"expected names from {', '.join(ALL_OPS)}, got {text!r}")
    return ops


# --------------------------------------------------------------------------- #
# Cases
# --------------------------------------------------------------------------- #
@dataclass
class Case:
    """One op at one shape on one device: callables per direction and the work they do."""

    op: str
    shape: tuple
    filters: int | None
    device: str
    dtype: str
    ours: dict
    work: dict                      # direction -> FLOPs (conv) or bytes (pooling)
    unit: str                       # "flop" or "byte"
    book: dict | None = None        # direction -> callable on the sample
    book_images: int = 0
    torch: dict | None = None
    torch_sync: object = None
    torch_note: str | None = None
    cudnn: dict | None = None       # direction -> callable with cuDNN on (GPU)
    cudnn_note: str | None = None
    cudnn_served: dict = field(default_factory=dict)
    first_calls: dict = field(default_factory=dict)


def _conv_out_shape(shape, filters):
    b, h, w, _ = shape
    oh, ow = reference.conv2d_output_size((h, w), KERNEL, STRIDE, PADDING)
    return (b, oh, ow, filters)


def _conv_flops(shape, filters) -> float:
    b, oh, ow, f = _conv_out_shape(shape, filters)
    return 2.0 * b * oh * ow * f * shape[3] * KERNEL[0] * KERNEL[1]


def _host_arrays(shape, filters, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    if filters is None:
        return {"x": x}
    fan_in = shape[3] * KERNEL[0] * KERNEL[1]
    k = (rng.standard_normal((filters, shape[3], *KERNEL)) * math.sqrt(2.0 / fan_in)).astype(dtype)
    b = (rng.standard_normal((filters, 1)) * 0.1).astype(dtype)
    g = rng.standard_normal(_conv_out_shape(shape, filters)).astype(dtype)
    return {"x": x, "k": k, "b": b, "g": g}


def _to_device(arrays, device):
    if device == "cpu":
        return arrays
    cp = cupy_or_none()
    return {name: cp.asarray(a) for name, a in arrays.items()}


def conv_case(shape, filters, dtype, device, seed, book_images, with_torch) -> Case:
    """The convolution case: our dispatchers, the book's loops on a sample, PyTorch."""
    host = _host_arrays(shape, filters, dtype, seed)
    a = _to_device(host, device)
    x, k, b, g = a["x"], a["k"], a["b"], a["g"]

    def forward():
        return conv2d.conv2d_forward(x, k, b, STRIDE, PADDING)

    def backward():
        return (conv2d.conv2d_backward_input(g, k, x.shape, STRIDE, PADDING),
                conv2d.conv2d_backward_kernels(g, x, k.shape, STRIDE, PADDING),
                conv2d.conv2d_backward_bias(g))

    flops = _conv_flops(shape, filters)
    case = Case("conv2d", tuple(shape), filters, device, np.dtype(dtype).name,
                ours={"forward": forward, "backward": backward, "forward+backward": lambda: (forward(), backward())},
                work={"forward": flops, "backward": 2 * flops, "forward+backward": 3 * flops}, unit="flop")
    if book_images > 0 and device == "cpu":
        n = min(book_images, shape[0])
        xs, gs = host["x"][:n], host["g"][:n]
        case.book_images = n
        case.book = {
            "forward": lambda: reference.conv2d_forward(xs, host["k"], host["b"], STRIDE, PADDING),
            "backward": lambda: (reference.conv2d_backward_input(gs, host["k"], xs.shape, STRIDE, PADDING),
                                 reference.conv2d_backward_kernels(gs, xs, host["k"].shape, STRIDE, PADDING),
                                 reference.conv2d_backward_bias(gs)),
        }
    if with_torch:
        _torch_conv(case, host, device)
    _split_cudnn(case)
    return case


def _pool_bytes(op, shape, itemsize):
    b, h, w, c = shape
    oh, ow = reference.conv2d_output_size((h, w), POOL, POOL, 0)
    n_in, n_out = b * h * w * c, b * oh * ow * c
    if op == "max_pool2d":  # + int32 argmax written forward, read backward
        fwd = n_in * itemsize + n_out * (itemsize + 4)
        bwd = n_out * (itemsize + 4) + n_in * itemsize
    else:
        fwd = bwd = (n_in + n_out) * itemsize
    return {"forward": fwd, "backward": bwd, "forward+backward": fwd + bwd}


def pool_case(op, shape, dtype, device, seed, book_images, with_torch) -> Case:
    """A pooling case (``max_pool2d`` or ``avg_pool2d``, 2x2, stride 2)."""
    host = _host_arrays(shape, None, dtype, seed)
    x = _to_device(host, device)["x"]
    rng = np.random.default_rng(seed + 1)
    b, h, w, c = shape
    oh, ow = reference.conv2d_output_size((h, w), POOL, POOL, 0)
    g_host = rng.standard_normal((b, oh, ow, c)).astype(dtype)
    g = _to_device({"g": g_host}, device)["g"]
    if op == "max_pool2d":
        _, argmax = pool2d.max_pool2d_forward(x, POOL)

        def forward():
            return pool2d.max_pool2d_forward(x, POOL)

        def backward():
            return pool2d.max_pool2d_backward(g, argmax, x.shape, POOL)

        def both():
            _, am = pool2d.max_pool2d_forward(x, POOL)
            return pool2d.max_pool2d_backward(g, am, x.shape, POOL)
    else:
        def forward():
            return pool2d.avg_pool2d_forward(x, POOL)

        def backward():
            return pool2d.avg_pool2d_backward(g, x.shape, POOL)

        def both():
            pool2d.avg_pool2d_forward(x, POOL)
            return pool2d.avg_pool2d_backward(g, x.shape, POOL)

    case = Case(op, tuple(shape), None, device, np.dtype(dtype).name,
                ours={"forward": forward, "backward": backward, "forward+backward": both},
                work=_pool_bytes(op, shape, np.dtype(dtype).itemsize), unit="byte")
    if book_images > 0 and device == "cpu":
        n = min(book_images, shape[0])
        xs, gs = host["x"][:n], g_host[:n]
        case.book_images = n
        if op == "max_pool2d":
            _, am_s = reference.max_pool2d_forward(xs, POOL)
            case.book = {"forward": lambda: reference.max_pool2d_forward(xs, POOL),
                         "backward": lambda: reference.max_pool2d_backward(gs, am_s, xs.shape, POOL)}
        else:
            case.book = {"forward": lambda: reference.avg_pool2d_forward(xs, POOL),
                         "backward": lambda: reference.avg_pool2d_backward(gs, xs.shape, POOL)}
    if with_torch:
        _torch_pool(case, host["x"], g_host, device)
    _split_cudnn(case)
    return case


#: The kernels.cudnn operations each benchmarked op goes through.
_CUDNN_CALLS = {"conv2d": ("conv2d_forward", "conv2d_backward_input", "conv2d_backward_kernels"),
                "avg_pool2d": ("avg_pool2d_forward", "avg_pool2d_backward")}
_CUDNN_CALLS.update({op: _CUDNN_CALLS["conv2d"] for op in kernel_variants.OPS})


def _cudnn_switched(fn, flag):
    def call():
        with cudnn.use_cudnn(flag):
            return fn()

    return call


def _split_cudnn(case) -> None:
    """On the GPU, ``ours`` runs with cuDNN off; ``cudnn`` runs the same dispatchers with it on.

    One forward+backward with cuDNN on is made here, and ``cudnn_served`` records
    how many of its calls cuDNN served (the rest, declined, ran on our kernels).
    """
    if case.device != "gpu":
        return
    plain = case.ours
    case.ours = {d: _cudnn_switched(fn, False) for d, fn in plain.items()}
    if case.op not in CUDNN_OPS:
        return
    ok, reason = cudnn.available()
    if not ok:
        case.cudnn_note = reason
        return
    case.cudnn = {d: _cudnn_switched(fn, True) for d, fn in plain.items()}
    before = {op: cudnn.counts[op]["cudnn"] for op in _CUDNN_CALLS[case.op]}
    case.cudnn["forward+backward"]()
    case.cudnn_served = {op: cudnn.counts[op]["cudnn"] - before[op] for op in _CUDNN_CALLS[case.op]}
    if cudnn.disabled_reason():
        case.cudnn_note = f"cuDNN switched off: {cudnn.disabled_reason()}"


# --------------------------------------------------------------------------- #
# PyTorch (optional)
# --------------------------------------------------------------------------- #
def _torch_device(device):
    torch = torch_or_none()
    if torch is None:
        return None, None, common.torch_unavailable_reason()
    if device == "gpu":
        if not torch.cuda.is_available():
            return None, None, "PyTorch has no CUDA device"
        torch.backends.cudnn.allow_tf32 = False  # float32 arithmetic, as ours and kernels.cudnn
        torch.backends.cuda.matmul.allow_tf32 = False
        return torch, torch.device("cuda"), None
    return torch, torch.device("cpu"), None


def _nhwc_to_torch(torch, array, dev, requires_grad=False):
    """NHWC NumPy array -> NCHW tensor in channels_last memory (same bytes, no transpose copy)."""
    t = torch.from_numpy(np.ascontiguousarray(array)).to(dev).permute(0, 3, 1, 2)
    t = t.contiguous(memory_format=torch.channels_last)
    return t.requires_grad_(requires_grad)


def _torch_conv(case, host, device):
    torch, dev, note = _torch_device(device)
    if torch is None:
        case.torch_note = note
        return
    functional = torch.nn.functional
    x = _nhwc_to_torch(torch, host["x"], dev, True)
    w = torch.from_numpy(host["k"]).to(dev).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    b = torch.from_numpy(host["b"].reshape(-1)).to(dev).requires_grad_(True)
    g = _nhwc_to_torch(torch, host["g"], dev)

    def forward():
        return functional.conv2d(x, w, b, stride=STRIDE, padding=PADDING)

    y = forward()

    def backward():
        return torch.autograd.grad(y, (x, w, b), g, retain_graph=True)

    def both():
        return torch.autograd.grad(forward(), (x, w, b), g)

    case.torch = {"forward": forward, "backward": backward, "forward+backward": both}
    case.torch_sync = torch.cuda.synchronize if device == "gpu" else None


def _torch_pool(case, x_host, g_host, device):
    torch, dev, note = _torch_device(device)
    if torch is None:
        case.torch_note = note
        return
    functional = torch.nn.functional
    x = _nhwc_to_torch(torch, x_host, dev, True)
    g = _nhwc_to_torch(torch, g_host, dev)
    pool = functional.max_pool2d if case.op == "max_pool2d" else functional.avg_pool2d

    def forward():
        return pool(x, POOL)

    y = forward()

    def backward():
        return torch.autograd.grad(y, (x,), g, retain_graph=True)

    def both():
        return torch.autograd.grad(forward(), (x,), g)

    case.torch = {"forward": forward, "backward": backward, "forward+backward": both}
    case.torch_sync = torch.cuda.synchronize if device == "gpu" else None


# --------------------------------------------------------------------------- #
# Measuring
# --------------------------------------------------------------------------- #
def _rate(case, direction, seconds, roof) -> dict:
    work = case.work[direction]
    if case.unit == "flop":
        gflops = work / seconds / 1e9
        return {"gflops": gflops, "roofline_pct": 100.0 * gflops / roof["gflops"]}
    gbps = work / seconds / 1e9
    return {"gbps": gbps, "roofline_pct": 100.0 * gbps / roof["gbps"]}


def measure_case(case, timer, roof, rounds=1) -> list:
    """Time ours, the book (sample, extrapolated) and PyTorch; one row per direction.

    With ``rounds > 1`` the measurement of ours and of PyTorch is repeated in
    alternating blocks (ours, pause, PyTorch, pause, ...) and, per
    implementation and direction, the block with the lowest median is kept:
    a burst of load from another process then spoils one block, not the
    figure. Every block's median is kept in ``"round_medians_s"``.
    """
    for direction in ("forward", "backward"):
        case.first_calls[direction] = first_call(case.ours[direction], case.device)[1]
    best = {"ours": {}, "torch": {}, "cudnn": {}}
    for _ in range(max(1, int(rounds))):
        implementations = [("ours", case.ours, None)]
        if case.cudnn is not None:
            implementations.append(("cudnn", case.cudnn, None))
        if case.torch is not None:
            implementations.append(("torch", case.torch, case.torch_sync))
        for name, fns, sync in implementations:
            time.sleep(_PAUSE_S)
            for direction in DIRECTIONS:
                timing = timer(fns[direction], case.device, sync_fn=sync)
                kept = best[name].get(direction)
                medians = (kept["round_medians_s"] if kept else []) + [timing["median"]]
                if kept is None or timing["median"] < kept["median"]:
                    kept = dict(timing)
                kept["round_medians_s"] = medians
                best[name][direction] = kept
    rows = []
    for direction in DIRECTIONS:
        timing = best["ours"][direction]
        rows.append({
            "op": case.op, "shape": list(case.shape), "filters": case.filters, "device": case.device,
            "dtype": case.dtype, "direction": direction,
            "ours": {"median_s": timing["median"], "timing": timing,
                     **_rate(case, direction, timing["median"], roof)},
        })
    if case.book is not None:
        time.sleep(_PAUSE_S)
        scale = case.shape[0] / case.book_images
        book = {}
        for direction in ("forward", "backward"):
            start = time.perf_counter()
            case.book[direction]()
            book[direction] = (time.perf_counter() - start) * scale
        book["forward+backward"] = book["forward"] + book["backward"]
        for row in rows:
            seconds = book[row["direction"]]
            row["book"] = {"median_s": seconds, "repeat": 1, "extrapolated_from_images": case.book_images,
                           "speedup": seconds / row["ours"]["median_s"]}
    for row in rows:
        if case.torch is not None:
            timing = best["torch"][row["direction"]]
            row["torch"] = {"median_s": timing["median"], "timing": timing,
                            "ours_over_torch": row["ours"]["median_s"] / timing["median"],
                            **_rate(case, row["direction"], timing["median"], roof)}
        elif case.torch_note:
            row["torch"] = {"skipped": case.torch_note}
        if case.cudnn is not None:
            timing = best["cudnn"][row["direction"]]
            row["cudnn"] = {"median_s": timing["median"], "timing": timing, "served": case.cudnn_served,
                            "ours_over_cudnn": row["ours"]["median_s"] / timing["median"],
                            **_rate(case, row["direction"], timing["median"], roof)}
            if "median_s" in row.get("torch", {}):
                row["cudnn"]["cudnn_over_torch"] = timing["median"] / row["torch"]["median_s"]
        elif case.cudnn_note:
            row["cudnn"] = {"skipped": case.cudnn_note}
    return rows


def measure_quietly(case, timer, roof, rounds, retries, progress, threshold=0.10) -> list:
    """:func:`measure_case`, measured again (after a pause) while other processes loaded the CPU.

    Each row gets ``"foreign_cpu_load"`` (see :class:`ForeignLoad`) and ``"attempts"``.
    """
    for attempt in range(retries + 1):
        load = ForeignLoad()
        rows = measure_case(case, timer, roof, rounds)
        foreign = load.fraction()
        if foreign is None or foreign <= threshold or attempt == retries:
            break
        progress(f"  other processes used {100 * foreign:.0f}% of the CPU: measuring again")
        time.sleep(2.0)
    for row in rows:
        row["foreign_cpu_load"] = foreign
        row["attempts"] = attempt + 1
    return rows


def check_results(rows, devices) -> tuple[dict, list]:
    """The targets on forward+backward (:data:`TARGETS`): which are met, missed or not measurable."""
    result, lines = {}, []
    for device in devices:
        fb = [r for r in rows if r["device"] == device and r["direction"] == "forward+backward"]
        if not fb:
            continue
        targets = TARGETS[device]
        checks = []
        for r in fb:
            label = f"{r['op']} {tuple(r['shape'])}" + (f"->{r['filters']}" if r["filters"] else "")
            limit = targets["pool_vs_torch"] if r["op"] in POOL_OPS else targets["conv2d_vs_torch"]
            torch_block = r.get("torch", {})
            if "ours_over_torch" in torch_block:
                ratio = torch_block["ours_over_torch"]
                checks.append((label, f"<= {limit}x PyTorch", ratio <= limit, f"{ratio:.2f}x"))
            else:
                checks.append((label, f"<= {limit}x PyTorch", None, torch_block.get("skipped", "not measured")))
            if "vs_book" in targets and "book" in r:
                speedup = r["book"]["speedup"]
                checks.append((label, f">= {targets['vs_book']:.0f}x book", speedup >= targets["vs_book"],
                               f"{speedup:.0f}x (book extrapolated)"))
            cudnn_block = r.get("cudnn", {})
            if device == "gpu" and "cudnn_over_torch" in cudnn_block:
                ratio, limit = cudnn_block["cudnn_over_torch"], targets["cudnn_vs_torch"]
                checks.append((label, f"with cuDNN <= {limit}x PyTorch", ratio <= limit, f"{ratio:.2f}x"))
            if device == "gpu" and r["op"] == "conv2d" and r.get("gpu_speedup") is not None:
                checks.append((label, f">= {targets['gpu_vs_cpu_conv']:.0f}x our CPU",
                               r["gpu_speedup"] >= targets["gpu_vs_cpu_conv"], f"{r['gpu_speedup']:.1f}x"))
        result[device] = [{"case": c[0], "target": c[1], "met": c[2], "value": c[3]} for c in checks]
        lines.append(f"{device.upper()} targets (forward+backward, {fb[0]['dtype']}):")
        for label, target, met, value in checks:
            status = "n/a " if met is None else ("met " if met else "MISS")
            lines.append(f"  [{status}] {label}: {target}: {value}")
    return result, lines


# --------------------------------------------------------------------------- #
# First calls in fresh processes (Numba compile vs cache hit)
# --------------------------------------------------------------------------- #
_FIRST_CALL_SCRIPT = r"""
import json, time
import numpy as np
t0 = time.perf_counter()
from kernels import conv2d, pool2d
import_s = time.perf_counter() - t0
x = np.random.default_rng(0).standard_normal((2, 8, 8, 3)).astype(np.float32)
k = np.ones((4, 3, 3, 3), np.float32); b = np.zeros((4, 1), np.float32)
out = {"import_s": import_s}
def first(name, fn):
    t = time.perf_counter(); fn(); out[name] = time.perf_counter() - t
first("conv2d_forward", lambda: conv2d.conv2d_forward(x, k, b, 1, 1))
g = np.ones((2, 8, 8, 4), np.float32)
first("conv2d_backward", lambda: (conv2d.conv2d_backward_input(g, k, x.shape, 1, 1),
                                  conv2d.conv2d_backward_kernels(g, x, k.shape, 1, 1),
                                  conv2d.conv2d_backward_bias(g)))
# A larger geometry: the paths the cost model picks for it compile too (the small one above takes
# the im2col + NumPy GEMM path).
xl = np.random.default_rng(1).standard_normal((4, 32, 32, 32)).astype(np.float32)
kl = np.ones((32, 32, 3, 3), np.float32); bl = np.zeros((32, 1), np.float32)
first("conv2d_forward_numba_gemm", lambda: conv2d.conv2d_forward(xl, kl, bl, 1, 1))
gl = np.ones((4, 32, 32, 32), np.float32); gs = np.ones((4, 16, 16, 32), np.float32)
first("conv2d_backward_numba_gemm", lambda: (conv2d.conv2d_backward_input(gl, kl, xl.shape, 1, 1),
                                             conv2d.conv2d_backward_input(gs, kl, xl.shape, 2, 1),
                                             conv2d.conv2d_backward_kernels(gl, xl, kl.shape, 1, 1)))
first("max_pool2d_forward", lambda: pool2d.max_pool2d_forward(x))
o, a = pool2d.max_pool2d_forward(x)
first("max_pool2d_backward", lambda: pool2d.max_pool2d_backward(o, a, x.shape))
first("avg_pool2d_forward+backward", lambda: pool2d.avg_pool2d_backward(pool2d.avg_pool2d_forward(x), x.shape))
first("global_avg_pool2d_forward+backward",
      lambda: pool2d.global_avg_pool2d_backward(pool2d.global_avg_pool2d_forward(x), x.shape))
print("FIRST_CALLS " + json.dumps(out))
"""


def first_call_times() -> dict:
    """Cold (empty Numba cache: compile) and warm (cache hit) first calls, float32, in fresh processes.

    The child processes get ``NUMBA_CACHE_DIR`` set to a new temporary directory
    (in their environment only), run the same script twice, and report seconds.
    """
    results = {}
    with tempfile.TemporaryDirectory(prefix="camadas-numba-cache-") as cache_dir:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
        for label in ("cold", "warm"):
            start = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _FIRST_CALL_SCRIPT], env=env, capture_output=True,
                                  text=True, timeout=900)
            wall = time.perf_counter() - start
            line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("FIRST_CALLS ")), None)
            if proc.returncode != 0 or line is None:
                results[label] = {"error": (proc.stderr or proc.stdout)[-2000:]}
                continue
            data = json.loads(line[len("FIRST_CALLS "):])
            data["process_wall_s"] = wall
            data["kernels_total_s"] = sum(v for k2, v in data.items() if k2 not in ("import_s", "process_wall_s"))
            results[label] = data
    return results


# --------------------------------------------------------------------------- #
# Other processes on the machine (timings on a shared 2-core box are fragile)
# --------------------------------------------------------------------------- #
class ForeignLoad:
    """CPU time used by *other* processes while the benchmark ran (Linux ``/proc/stat``).

    ``fraction()`` is that CPU time over (wall time x cores): 0 on an idle
    machine, 0.5 when another process kept one of 2 cores busy. ``None`` where
    ``/proc/stat`` is missing.
    """

    def __init__(self):
        self.start = self._snapshot()

    @staticmethod
    def _snapshot():
        try:
            with open("/proc/stat", encoding="ascii") as handle:
                fields = handle.readline().split()[1:]
            ticks = os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, AttributeError):
            return None
        busy = sum(int(v) for i, v in enumerate(fields[:8]) if i not in (3, 4)) / ticks  # all but idle, iowait
        own = os.times()
        return time.perf_counter(), busy, own.user + own.system

    def fraction(self):
        end = self._snapshot()
        if self.start is None or end is None:
            return None
        wall = end[0] - self.start[0]
        foreign = (end[1] - self.start[1]) - (end[2] - self.start[2])
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(0.0, foreign / max(wall * cores, 1e-9))


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def cudnn_status() -> dict:
    """cuDNN's version, the calls it served and declined per op, and a line saying so."""
    ok, reason = cudnn.available()
    served = {op: dict(c) for op, c in cudnn.counts.items()}
    if not ok:
        line = f"cuDNN: not used ({reason})"
    elif cudnn.disabled_reason():
        line = f"cuDNN: switched off after an error ({cudnn.disabled_reason()})"
    else:
        line = f"cuDNN {cudnn.version()}: calls served / declined per op: " + ", ".join(
            f"{op} {c['cudnn']}/{c['ours']}" for op, c in served.items())
    return {"available": ok, "reason": reason, "version": cudnn.version() if ok else None,
            "disabled": cudnn.disabled_reason(), "counts": served, "line": line}


def table_rows(rows) -> list:
    out = []
    for r in rows:
        ours = r["ours"]
        shape = "x".join(str(s) for s in r["shape"]) + (f"->{r['filters']}" if r["filters"] else "")
        rate = f"{ours['gflops']:.1f} GF/s" if "gflops" in ours else f"{ours['gbps']:.1f} GB/s"
        book, torch, with_cudnn = r.get("book"), r.get("torch", {}), r.get("cudnn", {})
        out.append({
            "op": r["op"], "shape": shape, "dev": r["device"], "dir": r["direction"],
            "ours_ms": _ms(ours["median_s"]),
            "iqr": f"{100 * ours['timing']['iqr'] / ours['median_s']:.0f}%",
            "rate": rate, "roof": f"{ours['roofline_pct']:.0f}%",
            "book_ms": f"~{_ms(book['median_s'])}" if book else None,
            "vs_book": f"{book['speedup']:.0f}x" if book else None,
            "cudnn_ms": _ms(with_cudnn.get("median_s")),
            "vs_cudnn": f"{with_cudnn['ours_over_cudnn']:.2f}" if "ours_over_cudnn" in with_cudnn else None,
            "torch_ms": _ms(torch.get("median_s")),
            "vs_torch": f"{torch['ours_over_torch']:.2f}" if "ours_over_torch" in torch else None,
            "gpu": f"{r['gpu_speedup']:.1f}x" if r.get("gpu_speedup") else None,
            "load": f"{100 * r['foreign_cpu_load']:.0f}%" if r.get("foreign_cpu_load") is not None else None,
        })
    return out


#: (key, header, legend or None) of every column; a column without a value in any row is not printed.
COLUMNS = [
    ("op", "op", None), ("shape", "shape", None), ("dev", "dev", None), ("dir", "direction", None),
    ("ours_ms", "ours ms", None), ("iqr", "iqr", "iqr: inter-quartile range of ours, in % of the median"),
    ("rate", "rate", None), ("roof", "%roof", "%roof: rate as a percent of the roofline above"),
    ("book_ms", "book ms", "book ms: the book's loops timed once on the first {book_images} image(s), "
                           "extrapolated to the batch (~)"),
    ("vs_book", "book/ours", None),
    ("cudnn_ms", "cudnn ms", "cudnn ms: the same dispatchers with cuDNN on (kernels.cudnn; calls it served in the "
                             "JSON)"),
    ("vs_cudnn", "ours/cudnn", "ours/cudnn: our numba-cuda + cuBLAS kernels over cuDNN"),
    ("torch_ms", "torch ms", "torch ms: PyTorch on the same device (channels_last, autograd, no TF32)"),
    ("vs_torch", "ours/torch", "ours/torch: medians, best of {rounds} alternating round(s); > 1: ours is slower"),
    ("gpu", "GPU/CPU", "GPU/CPU: our CPU time / our GPU time"),
    ("load", "other load", "other load: CPU time other processes used during the case"),
]


def table_columns(cells) -> list:
    """The ``(key, header)`` columns with a value in some row of ``cells``."""
    return present_columns(cells, [(key, header) for key, header, _ in COLUMNS])


def column_legend(columns, **values) -> str:
    """The legend of the columns shown, and only those (``values`` fill the ``{...}`` fields)."""
    shown = {key for key, _ in columns}
    return ". ".join(legend.format(**values) for key, _, legend in COLUMNS if legend and key in shown) + "."


def run(args) -> int:
    """Run the kernels benchmark (with ``--threads``: both libraries capped); returns the exit status."""
    if args.threads is None:
        return _run(args)
    from backend.host import limit_threads

    torch = torch_or_none()
    if torch is not None:
        torch.set_num_threads(args.threads)
    with limit_threads(args.threads):
        return _run(args)


def _run(args) -> int:
    quick = bool(args.quick)
    ops = args.ops or ALL_OPS
    timer = Timer(3 if quick and args.repeat is None else args.repeat, 1 if quick else args.warmup,
                  args.min_time, bounds=(3, 3) if quick else (5, 50))
    conv_shapes = QUICK_CONV_SHAPES if quick else CONV_SHAPES
    pool_shapes = QUICK_POOL_SHAPES if quick else POOL_SHAPES
    dtype = np.dtype(args.dtype)
    with_torch = not args.no_torch
    rounds = 1 if quick else args.rounds
    retries = 0 if quick else args.retries

    def progress(text):
        if not args.quiet:
            print(text, file=sys.stderr, flush=True)

    env = common.environment_info()
    print(common.format_environment(env))
    load = ForeignLoad()
    rows, rooflines, first_calls, skipped = [], {}, [], {}
    measured_devices = []
    for device, available, reason in common.resolve_devices(args.device):
        if not available:
            skipped[device] = reason
            print(f"{device.upper()}: not measured (unavailable: see the {device.upper()} line above)")
            continue
        measured_devices.append(device)
        progress(f"[{device}] matrix-product roofline ...")
        roof_mm = matmul_roofline(dtype, device, n=512 if quick else 2048, repeat=3 if quick else 5)
        rooflines[device] = {"matmul": roof_mm, "copy": {}}
        for shape, filters in conv_shapes if "conv2d" in ops else ():
            progress(f"[{device}] conv2d {shape}->{filters} ...")
            case = conv_case(shape, filters, dtype, device, args.seed, args.book_images, with_torch)
            rows.extend(measure_quietly(case, timer, roof_mm, rounds, retries, progress))
            first_calls.append({"op": "conv2d", "device": device, "shape": list(shape), **case.first_calls})
        for shape in pool_shapes if set(POOL_OPS) & set(ops) else ():
            nbytes = int(np.prod(shape)) * dtype.itemsize
            roof_copy = copy_roofline(nbytes, dtype, device, repeat=3 if quick else 20, warmup=1)
            rooflines[device]["copy"]["x".join(map(str, shape))] = roof_copy
            for op in (o for o in POOL_OPS if o in ops):
                progress(f"[{device}] {op} {shape} ...")
                case = pool_case(op, shape, dtype, device, args.seed, args.book_images, with_torch)
                rows.extend(measure_quietly(case, timer, roof_copy, rounds, retries, progress))
                first_calls.append({"op": op, "device": device, "shape": list(shape), **case.first_calls})
        for case in kernel_variants.cases(quick, dtype, device, args.seed, args.book_images, with_torch, ops):
            progress(f"[{device}] {case.op} {case.shape}->{case.filters} ...")
            rows.extend(measure_quietly(case, timer, roof_mm, rounds, retries, progress))
        time.sleep(_PAUSE_S)
    add_gpu_speedups(rows, key=lambda r: (r["op"], tuple(r["shape"]), r["direction"]),
                     seconds=lambda r: r["ours"]["median_s"])
    foreign = load.fraction()

    print()
    for device in measured_devices:
        mm = rooflines[device]["matmul"]
        copies = ", ".join(f"{k}: {v['gbps']:.1f} GB/s" for k, v in rooflines[device]["copy"].items())
        print(f"{device.upper()} rooflines ({dtype.name}): matmul {mm['n']}^3 {mm['gflops']:.1f} GFLOP/s; "
              f"copy {copies}")
    cells = table_rows(rows)
    columns = table_columns(cells)
    print(format_table(cells, columns))
    if cells:
        print(column_legend(columns, rounds=rounds, book_images=args.book_images))
    if with_torch and torch_or_none() is None:
        print(f"PyTorch: not compared ({common.torch_unavailable_reason()})")
    cudnn_report = cudnn_status() if "gpu" in measured_devices else None
    if cudnn_report is not None:
        print(cudnn_report["line"])
    if first_calls:
        print("First calls in this process (Numba compile or cache load), seconds: " + "; ".join(
            f"{fc['op']} {fc['device']} fwd {fc['forward']:.3f} bwd {fc['backward']:.3f}" for fc in first_calls
            if fc["shape"] == list((conv_shapes[0][0] if fc["op"] == "conv2d" else pool_shapes[0]))))
    if foreign is not None:
        note = (" -- timings are unreliable, run again on an idle machine" if foreign > 0.10 else "")
        print(f"Other processes used {100 * foreign:.0f}% of the CPU during the run{note}")
    if quick:
        targets, lines = {}, ["Targets: stated for the default shapes; not judged on the --quick shapes."]
    else:
        targets, lines = check_results(rows, measured_devices)
    print("\n".join(lines))

    fresh = None
    if args.first_call:
        progress("first calls in fresh processes (cold compile, then cache hit) ...")
        fresh = first_call_times()
        for label, data in fresh.items():
            if "error" in data:
                print(f"{label} first call: failed: {data['error']}")
            else:
                print(f"{label} first call (fresh process, float32): import {data['import_s']:.2f} s, kernels "
                      f"{data['kernels_total_s']:.2f} s (" + ", ".join(
                          f"{k} {v:.2f}" for k, v in data.items()
                          if k not in ("import_s", "process_wall_s", "kernels_total_s")) + ")")

    if args.json:
        payload = {
            "benchmark": "kernels",
            "environment": env,
            "settings": {"dtype": dtype.name, "quick": quick, "repeat": args.repeat, "warmup": timer.warmup,
                         "min_time": args.min_time, "book_images": args.book_images, "rounds": rounds,
                         "retries": retries, "ops": list(ops), "threads": args.threads,
                         "kernel": KERNEL, "stride": STRIDE, "padding": PADDING, "pool": POOL,
                         "argv": getattr(args, "_argv", None)},
            "rooflines": rooflines,
            "cudnn": cudnn_report,
            "skipped_devices": skipped,
            "rows": rows,
            "first_calls_in_process": first_calls,
            "first_calls_fresh_process": fresh,
            "targets": targets,
            "foreign_cpu_load": foreign,
        }
        path = common.write_json(args.json, payload)
        print(f"JSON written to {path}")
    return 0
