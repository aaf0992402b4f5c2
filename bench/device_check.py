"""``python -m bench device-check --out DIR``: every GPU check in one command, for a GPU lent for minutes.

Parts, in this order (each in its own process, with a time cap, so a crash or
a hang in one is recorded and the others still run):

1. ``versions``: GPU, driver, CUDA, CuPy, numba-cuda, PyTorch, cuDNN (in
   ``summary.json`` and printed);
2. ``gpu-tests``: ``pytest -m gpu`` (log in ``pytest-gpu.log``), and
   ``gpu-smoke``: the GPU against the CPU without pytest, in case the GPU
   machine lacks it (every activation, our convolution and pooling kernels);
3. ``cudnn``: cuDNN against our numba-cuda kernels and the CPU on the
   benchmark's convolution and pooling shapes (max relative errors, calls served);
4. ``kernels``, ``activations``, ``training``: the benchmarks on the GPU and
   the CPU (``kernels.json``, ``activations.json`` and ``.png``, ``training.json``);
5. ``digits-cnn``: ``examples/digits_cnn.py`` on every device (``digits_cnn.json``).

Everything is written under DIR, 8 files at most, none in a subfolder:
``summary.json``, ``device-check.log`` (every part's output), and the files
above. On a machine without a GPU the CPU half runs and the report says which
GPU parts were skipped and why. It needs no package registry: run it from a
plain checkout with ``PYTHONPATH=.``. Sized for at most 8 minutes on an H100 or
H200 (``--budget-s``); ``--quick`` runs small settings (CI).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from . import options
from .common import environment_info, format_environment, format_table, write_json

ROOT = Path(__file__).resolve().parents[1]
#: Total seconds the parts may take (8 minutes, the time a GPU is lent for this check).
BUDGET_S = 480.0
#: The files a run writes, all directly under ``--out``.
FILES = ("summary.json", "device-check.log", "pytest-gpu.log", "activations.json", "activations.png",
         "kernels.json", "training.json", "digits_cnn.json")


@dataclasses.dataclass(frozen=True)
class Part:
    """One step of the check: a command line (``{out}`` is the output folder), its time cap, what it needs."""

    name: str
    full: tuple
    quick: tuple
    cap_s: float
    needs_gpu: bool = False
    log: str | None = None  # a file of its own for the output, instead of device-check.log


_PY = sys.executable
_CUDNN_CHECK = "from bench.device_check import cudnn_check; cudnn_check()"

_GPU_SMOKE = "from bench.device_check import gpu_smoke; gpu_smoke()"

#: The parts, in the order they run (the caps add up to the 8-minute budget).
PARTS = [
    Part("gpu-tests", (_PY, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests"),
         (_PY, "-m", "pytest", "-m", "gpu", "-q", "-p", "no:cacheprovider", "tests/kernels"),
         cap_s=140, needs_gpu=True, log="pytest-gpu.log"),
    Part("gpu-smoke", (_PY, "-c", _GPU_SMOKE), (_PY, "-c", _GPU_SMOKE), cap_s=40, needs_gpu=True),
    Part("cudnn", (_PY, "-c", _CUDNN_CHECK), (_PY, "-c", _CUDNN_CHECK), cap_s=40, needs_gpu=True),
    Part("kernels", (_PY, "-m", "bench", "kernels", "--device", "{device}", "--rounds", "2", "--retries", "0",
                     "--min-time", "0.2", "--quiet", "--json", "{out}/kernels.json"),
         (_PY, "-m", "bench", "kernels", "--device", "{device}", "--quick", "--quiet", "--book-images", "0",
          "--json", "{out}/kernels.json"), cap_s=90),
    Part("activations", (_PY, "-m", "bench", "activations", "--device", "{device}", "--sizes", "2^20,2^24",
                         "--compare", "numpy,torch", "--min-time", "0.05", "--quiet",
                         "--json", "{out}/activations.json", "--plot", "{out}/activations.png"),
         (_PY, "-m", "bench", "activations", "--device", "{device}", "--quick", "--quiet",
          "--activations", "relu,sigmoid,gelu", "--json", "{out}/activations.json",
          "--plot", "{out}/activations.png"), cap_s=80),
    Part("training", (_PY, "-m", "bench", "training", "--device", "{device}", "--epochs", "8",
                      "--json", "{out}/training.json"),
         (_PY, "-m", "bench", "training", "--device", "{device}", "--quick", "--epochs", "1", "--depth", "2",
          "--activations", "relu,tanh", "--json", "{out}/training.json"), cap_s=50),
    Part("digits-cnn", (_PY, "-c", "from bench.device_check import digits_cnn; digits_cnn('{out}', 15)"),
         (_PY, "-c", "from bench.device_check import digits_cnn; digits_cnn('{out}', 1)"), cap_s=40),
]


# --------------------------------------------------------------------------- parts run in their own process
def _relative_error(on_device, on_cpu) -> float:
    import numpy as np

    import backend

    a, b = backend.to_numpy(on_device).astype(np.float64), np.asarray(on_cpu, np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(float(np.max(np.abs(b), initial=0.0)), 1e-30))


def cudnn_check(shapes=None) -> dict:
    """cuDNN vs our numba-cuda kernels vs the CPU, per op and shape; prints ``CUDNN_CHECK <json>`` last.

    For each case: the largest relative difference of cuDNN's result and of our
    GPU kernels' result from our CPU kernels' (float32), and how many calls
    cuDNN served. Run in its own process by the ``cudnn`` part.
    """
    import numpy as np

    import backend
    from kernels import conv2d, cudnn, pool2d

    from . import kernels as kb

    def ops(x, k, b, g, gp):
        return {
            "conv2d_forward": lambda: conv2d.conv2d_forward(x, k, b, kb.STRIDE, kb.PADDING),
            "conv2d_backward_input": lambda: conv2d.conv2d_backward_input(g, k, x.shape, kb.STRIDE, kb.PADDING),
            "conv2d_backward_kernels": lambda: conv2d.conv2d_backward_kernels(g, x, k.shape, kb.STRIDE, kb.PADDING),
            "avg_pool2d_forward": lambda: pool2d.avg_pool2d_forward(x, kb.POOL),
            "avg_pool2d_backward": lambda: pool2d.avg_pool2d_backward(gp, x.shape, kb.POOL),
        }

    result = {"available": list(cudnn.available()), "version": cudnn.version(), "cases": []}
    for shape, filters in shapes or kb.CONV_SHAPES:
        host = kb._host_arrays(shape, filters, np.float32, 0)
        pooled_grad = pool2d.avg_pool2d_forward(host["x"] * 0.5, kb.POOL)  # a gradient of the pooled shape
        args = [host[n] for n in ("x", "k", "b", "g")] + [pooled_grad]
        on_cpu = {op: fn() for op, fn in ops(*args).items()}
        on_gpu = ops(*(backend.to_device(a, "gpu") for a in args))
        for op, fn in on_gpu.items():
            case = {"op": op, "shape": list(shape), "filters": filters}
            served = cudnn.counts[op]["cudnn"]
            for label, flag in (("cudnn", True), ("ours", False)):
                with cudnn.use_cudnn(flag):
                    case[f"{label}_vs_cpu"] = _relative_error(fn(), on_cpu[op])
            case["cudnn_served"] = cudnn.counts[op]["cudnn"] - served
            result["cases"].append(case)
    result["disabled"] = cudnn.disabled_reason()
    print("CUDNN_CHECK " + json.dumps(result))
    return result


def gpu_smoke() -> dict:
    """The GPU against the CPU without pytest (the GPU machine may lack it); prints ``GPU_SMOKE <json>``.

    Every activation forward and backward, the convolution and pooling on our
    numba-cuda kernels (cuDNN off), and one epoch of a small CNN: each result
    against the CPU's, float32 (rtol 1e-4) and float64 (1e-10). Exits 1 when a
    check fails.
    """
    import numpy as np

    import backend
    from kernels import activations as act
    from kernels import conv2d, cuda_launch, cudnn, pool2d

    checks, rng = [], np.random.default_rng(0)

    def check(name, dtype, on_gpu, on_cpu):
        error = _relative_error(on_gpu, on_cpu)
        limit = 1e-4 if dtype == np.float32 else 1e-10
        checks.append({"check": name, "dtype": np.dtype(dtype).name, "error": error, "ok": error <= limit})

    for dtype in (np.float32, np.float64):
        x = (rng.standard_normal(4096) * 3).astype(dtype)
        g = rng.standard_normal(4096).astype(dtype)
        gx, gg = backend.to_device(x, "gpu"), backend.to_device(g, "gpu")
        for name in act.ACTIVATIONS:
            kwargs = act.training_kwargs(name, x)
            gkwargs = {k: backend.to_device(v, "gpu") for k, v in kwargs.items()}
            y, gy = act.forward(name, x, **kwargs), act.forward(name, gx, **gkwargs)
            check(f"{name} forward", dtype, gy, y)
            check(f"{name} backward", dtype, act.backward(name, gg, gx, gy, **gkwargs),
                  act.backward(name, g, x, y, **kwargs))
        xi = rng.standard_normal((4, 17, 13, 5)).astype(dtype)
        k = rng.standard_normal((6, 5, 3, 3)).astype(dtype)
        b = rng.standard_normal((6, 1)).astype(dtype)
        gi = rng.standard_normal((4, 17, 13, 6)).astype(dtype)
        gxi, gk, gb, ggi = (backend.to_device(a, "gpu") for a in (xi, k, b, gi))
        with cudnn.use_cudnn(False):
            check("conv2d forward (ours)", dtype, conv2d.conv2d_forward(gxi, gk, gb, 1, 1),
                  conv2d.conv2d_forward(xi, k, b, 1, 1))
            check("conv2d backward input (ours)", dtype, conv2d.conv2d_backward_input(ggi, gk, xi.shape, 1, 1),
                  conv2d.conv2d_backward_input(gi, k, xi.shape, 1, 1))
            check("conv2d backward kernels (ours)", dtype, conv2d.conv2d_backward_kernels(ggi, gxi, k.shape, 1, 1),
                  conv2d.conv2d_backward_kernels(gi, xi, k.shape, 1, 1))
            out, argmax = pool2d.max_pool2d_forward(gxi, 3, 2)
            ref_out, ref_argmax = pool2d.max_pool2d_forward(xi, 3, 2)
            check("max_pool2d forward", dtype, out, ref_out)
            check("max_pool2d argmax", dtype, argmax, ref_argmax)
            gp = rng.standard_normal(ref_out.shape).astype(dtype)
            check("max_pool2d backward", dtype, pool2d.max_pool2d_backward(backend.to_device(gp, "gpu"), argmax,
                                                                          xi.shape, 3, 2),
                  pool2d.max_pool2d_backward(gp, ref_argmax, xi.shape, 3, 2))
            check("avg_pool2d forward (ours)", dtype, pool2d.avg_pool2d_forward(gxi, 3, 2),
                  pool2d.avg_pool2d_forward(xi, 3, 2))
    result = {"checks": checks, "numba_cuda_error": cuda_launch.numba_cuda_error(),
              "failed": [c for c in checks if not c["ok"]]}
    print("GPU_SMOKE " + json.dumps(result))
    if result["failed"] or result["numba_cuda_error"]:
        raise SystemExit(1)
    return result


def digits_cnn(out: str, epochs: int) -> None:
    """``examples/digits_cnn.py`` on every device that answers; its results into ``digits_cnn.json``."""
    sys.path.insert(0, str(ROOT / "examples"))
    import digits_cnn as example  # noqa: PLC0415 (examples/ is not a package)

    result = example.main(["--device", "all", "--epochs", str(epochs), "--no-plot"])
    write_json(Path(out) / "digits_cnn.json", {"epochs": epochs, **result})


# --------------------------------------------------------------------------- running the parts
def _versions() -> dict:
    """Versions of everything the GPU path uses; each probe may fail on its own."""
    import importlib.metadata as metadata

    info: dict = {"environment": environment_info()}
    for package in ("cupy-cuda13x", "cupy-cuda12x", "cupy", "numba", "numba-cuda", "torch", "cuda-python",
                    "nvidia-cudnn-cu13", "nvidia-cudnn-cu12"):
        try:
            info[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    try:
        from kernels import cudnn

        info["cudnn"] = {"available": cudnn.available()[0], "reason": cudnn.available()[1], "version": cudnn.version()}
    except Exception as exc:  # never stop the check for a version
        info["cudnn"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        import torch

        info["torch_cuda"] = {"cuda": torch.version.cuda, "available": bool(torch.cuda.is_available()),
                              "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None}
    except Exception as exc:
        info["torch_cuda"] = {"error": f"{type(exc).__name__}: {exc}"}
    try:
        smi = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20)
        info["nvidia_smi"] = smi.stdout.strip() or smi.stderr.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        info["nvidia_smi"] = f"unavailable ({type(exc).__name__})"
    return info


def _run_part(part: Part, out: Path, quick: bool, device: str, timeout_s: float, log) -> dict:
    """Run one part in a fresh process; its output goes to ``log`` (or its own file); returns its record."""
    argv = [a.format(out=out, device=device) for a in (part.quick if quick else part.full)]
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p])
    start = time.perf_counter()
    try:
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout_s)
        output = proc.stdout + proc.stderr
        status = "ok" if proc.returncode == 0 else f"failed (exit {proc.returncode})"
    except subprocess.TimeoutExpired as exc:
        output = "".join(x.decode(errors="replace") if isinstance(x, bytes) else (x or "")
                         for x in (exc.stdout, exc.stderr))
        status = f"timeout after {timeout_s:.0f} s"
    seconds = time.perf_counter() - start
    header = f"===== {part.name}: {' '.join(argv)}"
    if part.log:
        (out / part.log).write_text(f"{header}\n{output}\n===== {status} in {seconds:.1f} s\n")
        log.write(f"{header}\n(output in {part.log})\n")
    else:
        log.write(f"{header}\n{output}\n")
    log.write(f"===== {part.name}: {status} in {seconds:.1f} s\n\n")
    log.flush()
    record = {"status": status, "seconds": round(seconds, 1), "command": argv}
    for tag in ("CUDNN_CHECK ", "GPU_SMOKE "):
        marker = next((line for line in output.splitlines()[::-1] if line.startswith(tag)), None)
        if marker:
            record["result"] = json.loads(marker[len(tag):])
    return record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench device-check``."""
    parser.add_argument("--out", metavar="DIR", type=options.output_dir, required=True,
                        help="folder for the results (created; at most 8 files, no subfolder)")
    parser.add_argument("--quick", action="store_true", help="small settings for every part (CI, seconds)")
    parser.add_argument("--budget-s", type=options.positive_float, default=BUDGET_S,
                        help=f"seconds all parts may take together (default {BUDGET_S:.0f})")
    parser.add_argument("--parts", type=_part_names, default=None,
                        help=f"comma list of parts to run (default all: {', '.join(p.name for p in PARTS)})")


def _part_names(text: str) -> list:
    names = [n.strip() for n in text.split(",") if n.strip()]
    known = [p.name for p in PARTS]
    unknown = [n for n in names if n not in known]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"expected names from {', '.join(known)}, got {text!r}")
    return names


def run(args) -> int:
    """Run the check; returns 0 when every part that ran passed, else 1."""
    import backend

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    gpu_reason = backend.unavailable_reason() if not backend.has_gpu() else None
    device = "all" if gpu_reason is None else "cpu"
    versions = _versions()
    print("camadas device check" + (" (--quick)" if args.quick else ""))
    print(format_environment(versions["environment"]))
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items() if isinstance(v, str)))
    if gpu_reason is not None:
        print("No GPU (the GPU line above says why): the CPU half runs, the GPU parts are skipped.")
    chosen = args.parts or [p.name for p in PARTS]
    parts, deadline = {}, time.perf_counter() + args.budget_s
    with open(out / "device-check.log", "w", encoding="utf-8") as log:
        for part in PARTS:
            if part.name not in chosen:
                continue
            left = deadline - time.perf_counter()
            if part.needs_gpu and gpu_reason is not None:
                parts[part.name] = {"status": "skipped", "reason": "no GPU"}
            elif left < 5:
                parts[part.name] = {"status": "skipped", "reason": f"the {args.budget_s:.0f} s budget is spent"}
            else:
                print(f"[{part.name}] running (at most {min(part.cap_s, left):.0f} s) ...", flush=True)
                parts[part.name] = _run_part(part, out, args.quick, device, min(part.cap_s, left), log)
            print(f"[{part.name}] {parts[part.name]['status']}"
                  + (f": {parts[part.name]['reason']}" if "reason" in parts[part.name] else ""), flush=True)
    summary = {"check": "device-check", "quick": bool(args.quick), "device": device, "gpu_unavailable": gpu_reason,
               "budget_s": args.budget_s, "versions": versions, "parts": parts,
               "files": sorted(p.name for p in out.iterdir() if p.is_file()) + ["summary.json"]}
    write_json(out / "summary.json", summary)
    print()
    print(format_table([{"part": name, "status": rec["status"], "seconds": rec.get("seconds"),
                         "note": rec.get("reason")} for name, rec in parts.items()],
                       [("part", "part"), ("status", "status"), ("seconds", "s", ".1f"), ("note", "note")]))
    skipped_gpu = [name for name, rec in parts.items() if rec.get("reason") == "no GPU"]
    if skipped_gpu:
        print(f"Skipped for want of a GPU: {', '.join(skipped_gpu)}; the benchmarks ran on the CPU only.")
    print(f"Results in {out}: {', '.join(summary['files'])}")
    failed = [name for name, rec in parts.items() if rec["status"] not in ("ok", "skipped")]
    return 1 if failed else 0
