"""``python -m bench attention``: multi-head attention and a Transformer encoder block, forward + backward (ch. 26).

Cases (the issue's shapes; ``--quick`` shrinks them for CI):

* ``softmax``: the fused attention softmax (:mod:`kernels.attention`) forward
  and backward on scores ``(B, H, T, T)``, beside the NumPy reference and
  ``torch.softmax``, and a copy roofline of the scores' size;
* ``attention``: :class:`layers.MultiHeadAttention` forward + backward on
  ``(B, T, E)`` beside ``torch.nn.MultiheadAttention(batch_first=True)``
  (``need_weights=False``, PyTorch's fastest path);
* ``encoder block``: :class:`layers.TransformerEncoderBlock` (pre-norm, GELU,
  MLP ratio 4, no dropout) beside ``torch.nn.TransformerEncoderLayer`` with the
  same settings.

Every time is the median of ``--repeat`` calls after warm-up; ours and
PyTorch run in ``--rounds`` alternating blocks in one process and the block
with the lowest median is kept (robust to other processes' bursts on a shared
machine), each after a short pause so that the previous library's spinning
worker threads are asleep. ``ratio`` is ours / PyTorch (the issue's target: at most 1.5 on the CPU);
``ratio_of_minima`` compares the fastest single calls, which load from other processes disturbs least.
For a one-thread comparison (robust to a busy machine) set ``OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
NUMBA_NUM_THREADS=1`` (they are recorded in the JSON's environment).

Example
-------
::

    python -m bench attention --device cpu --json bench/results/attention-cpu.json
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import backend

from .common import (
    copy_roofline,
    environment_info,
    format_environment,
    format_table,
    resolve_devices,
    time_function,
    time_on_device,
    torch_or_none,
    torch_unavailable_reason,
    write_json,
)

#: (batch, tokens, embed_dim, heads) of the issue, and of ``--quick``.
SHAPE = (32, 128, 128, 4)
QUICK_SHAPE = (4, 16, 32, 4)
TARGET_RATIO = 1.5
#: Seconds of pause before each timed block: OpenBLAS's, Numba's and PyTorch's OpenMP workers spin for a while
#: after their last task, and on a 2-core machine they would take the cores from the next library's threads.
PAUSE_S = 0.2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command's options."""
    parser.add_argument("--device", choices=("cpu", "gpu", "all"), default="cpu", help="default cpu")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument("--repeat", type=int, default=15, help="timed calls per block (default 15)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed calls before timing (default 3)")
    parser.add_argument("--rounds", type=int, default=3, help="alternating blocks ours/PyTorch (default 3)")
    parser.add_argument("--no-torch", action="store_true", help="do not compare with PyTorch even if it imports")
    parser.add_argument("--quick", action="store_true", help=f"small shapes {QUICK_SHAPE} (CI)")
    parser.add_argument("--json", metavar="PATH", default=None, help="write environment, settings and rows as JSON")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs and weights (default 0)")


# -- the cases: (name, ours() -> callable, torch() -> callable or None) ---------------------------------------
def _inputs(shape, dtype, seed, device):
    B, T, E, _ = shape
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, E)).astype(dtype)
    g = rng.standard_normal((B, T, E)).astype(dtype)
    return x, g, backend.to_device(x, device), backend.to_device(g, device)


def _torch_device(torch, device):
    if device == "gpu":
        return torch.device("cuda") if torch.cuda.is_available() else None
    return torch.device("cpu")


def softmax_case(shape, dtype, seed, device, torch):
    """The fused kernel, the NumPy reference and torch.softmax on ``(B, H, T, T)`` scores."""
    from kernels import attention

    B, T, _, H = shape
    host = np.random.default_rng(seed).standard_normal((B, H, T, T)).astype(dtype)
    s = backend.to_device(host, device)
    g = backend.to_device(host[::-1].copy(), device)
    scale = 0.125
    p = attention.softmax_forward(s, scale)
    out = attention.softmax_forward(s, scale)

    def ours():
        attention.softmax_forward(s, scale, out=out)
        attention.softmax_backward(g, p, scale, out=out)

    def book():
        probs = attention.reference.softmax_forward(s, scale)
        attention.reference.softmax_backward(g, probs, scale)

    theirs = None
    dev = _torch_device(torch, device) if torch is not None else None
    if dev is not None:
        ts = torch.tensor(host, device=dev, requires_grad=True)
        tg = torch.tensor(host[::-1].copy(), device=dev)

        def theirs():
            torch.softmax(ts * scale, dim=-1).backward(tg)
            ts.grad = None

    # forward reads S and writes P, backward reads G and P and writes dE/dS: five passes over the scores
    return {"ours": ours, "reference": book, "torch": theirs, "bytes": 5 * host.nbytes, "scores_bytes": host.nbytes}


def _layer_pair(shape, dtype, seed, device, torch, build_ours, build_theirs, call_theirs):
    """``{"ours", "torch"}`` callables: forward + backward of our layer and of PyTorch's module on one input."""
    x_host, g_host, x, g = _inputs(shape, dtype, seed, device)
    with backend.use_device(device):
        layer = build_ours().astype(dtype)

    def ours():
        layer.forward(x)
        layer.backward(g)

    theirs = None
    dev = _torch_device(torch, device) if torch is not None else None
    if dev is not None:
        module = build_theirs(dev, getattr(torch, np.dtype(dtype).name))
        tx = torch.tensor(x_host, device=dev, requires_grad=True)
        tg = torch.tensor(g_host, device=dev)

        def theirs():
            call_theirs(module, tx).backward(tg)

    return {"ours": ours, "torch": theirs}


def attention_case(shape, dtype, seed, device, torch):
    """MultiHeadAttention forward + backward beside nn.MultiheadAttention (``need_weights=False``)."""
    from layers import MultiHeadAttention

    _, _, E, H = shape
    return _layer_pair(shape, dtype, seed, device, torch, lambda: MultiHeadAttention(E, H, seed=seed),
                       lambda dev, tdtype: torch.nn.MultiheadAttention(E, H, batch_first=True, device=dev,
                                                                       dtype=tdtype),
                       lambda module, tx: module(tx, tx, tx, need_weights=False)[0])


def block_case(shape, dtype, seed, device, torch):
    """TransformerEncoderBlock (pre-norm, GELU, MLP 4E) beside nn.TransformerEncoderLayer."""
    from layers import TransformerEncoderBlock

    _, _, E, H = shape
    return _layer_pair(
        shape, dtype, seed, device, torch,
        lambda: TransformerEncoderBlock(E, H, mlp_ratio=4, dropout=0.0, norm_first=True, seed=seed),
        lambda dev, tdtype: torch.nn.TransformerEncoderLayer(E, H, dim_feedforward=4 * E, dropout=0.0,
                                                             activation="gelu", batch_first=True, norm_first=True,
                                                             device=dev, dtype=tdtype),
        lambda module, tx: module(tx))


CASES = {"softmax": softmax_case, "attention": attention_case, "encoder block": block_case}


def measure(name, case, device, args, torch) -> dict:
    """Time one case: ours, PyTorch (and the reference for the softmax), alternating blocks."""
    results = {key: [] for key in ("ours", "torch", "reference") if case.get(key) is not None}
    for _ in range(args.rounds):
        for key, runs in results.items():
            time.sleep(PAUSE_S)  # the previous library's worker threads stop spinning before this block
            if key == "torch" and device == "gpu":  # PyTorch's own queue: synchronize it before each reading
                runs.append(time_function(case[key], repeat=args.repeat, warmup=args.warmup,
                                          sync=torch.cuda.synchronize))
            else:
                runs.append(time_on_device(case[key], device if key != "torch" else "cpu", repeat=args.repeat,
                                           warmup=args.warmup))
    best = {key: min(runs, key=lambda r: r["median"]) for key, runs in results.items()}
    row = {"case": name, "device": device, "ours_ms": 1e3 * best["ours"]["median"]}
    if "torch" in best:
        row["torch_ms"] = 1e3 * best["torch"]["median"]
        row["ratio"] = best["ours"]["median"] / best["torch"]["median"]
        row["ratio_of_minima"] = (min(t["min"] for t in results["ours"])
                                  / min(t["min"] for t in results["torch"]))
    if "reference" in best:
        row["reference_ms"] = 1e3 * best["reference"]["median"]
    if "bytes" in case:
        roof = copy_roofline(case["scores_bytes"], args.dtype, device)
        row["ours_gbps"] = case["bytes"] / best["ours"]["median"] / 1e9
        row["copy_gbps"] = roof["gbps"]
    row["timings"] = best
    return row


def run(args) -> int:
    """Run the benchmark; print a table; write JSON when asked."""
    dtype = np.dtype(args.dtype)
    shape = QUICK_SHAPE if args.quick else SHAPE
    torch = None if args.no_torch else torch_or_none()
    info = environment_info()
    print(format_environment(info))
    B, T, E, H = shape
    print(f"shape: batch {B}, tokens {T}, embed_dim {E}, heads {H}; {dtype.name}; forward + backward; "
          f"medians over {args.repeat} calls, best of {args.rounds} alternating blocks")
    if torch is None:
        print(f"PyTorch: not compared ({'--no-torch' if args.no_torch else torch_unavailable_reason()})")
    rows, skipped = [], []
    for device, available, reason in resolve_devices(args.device):
        if not available:
            skipped.append({"device": device, "reason": reason})
            print(f"{device}: skipped ({reason})")
            continue
        for name, build in CASES.items():
            case = build(shape, dtype, args.seed, device, torch)
            rows.append(measure(name, case, device, args, torch))
    print(format_table(rows, [("case", "case"), ("device", "device"), ("ours_ms", "ours (ms)", ".3f"),
                              ("torch_ms", "PyTorch (ms)", ".3f"), ("ratio", "ours/PyTorch", ".2f"),
                              ("ratio_of_minima", "(fastest calls)", ".2f"),
                              ("reference_ms", "NumPy ref (ms)", ".3f"),
                              ("ours_gbps", "ours GB/s", ".1f"), ("copy_gbps", "copy GB/s", ".1f")]))
    cpu_ratios = [r["ratio"] for r in rows if r["device"] == "cpu" and "ratio" in r and r["case"] != "softmax"]
    if cpu_ratios and not args.quick:
        worst = max(cpu_ratios)
        print(f"target: ours within {TARGET_RATIO}x of PyTorch on the CPU: "
              f"{'met' if worst <= TARGET_RATIO else 'NOT met'} (worst ratio {worst:.2f})")
    if args.json:
        path = write_json(args.json, {"benchmark": "attention", "environment": info,
                                      "settings": {"shape": dict(zip(("batch", "tokens", "embed_dim", "heads"), shape)),
                                                   "dtype": dtype.name, "repeat": args.repeat,
                                                   "warmup": args.warmup, "rounds": args.rounds,
                                                   "quick": bool(args.quick)},
                                      "rows": rows, "skipped": skipped})
        print(f"json: {path}")
    return 0
