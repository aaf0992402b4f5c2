"""``python -m bench scaling``: data-parallel training at 1, 2, ... processes, the all-reduce's share, projections.

For each process count the command starts ``mpiexec -n R python -m bench
scaling --worker`` (the CPU's cores split evenly between the ranks: BLAS and
Numba threads = cores // R). Each rank builds the digits CNN and a larger MLP
(float32, flat parameters, Adam through :class:`optimizers.DataParallel`),
trains on its slice of fixed global batches and times every step and the
all-reduce inside it; rank 0 also times bare all-reduces of growing sizes
(bandwidth). The parent prints samples/s, the all-reduce's share of the step
and the scaling efficiency, and projects the scaling to 8 GPUs on one node and
to 2-4 nodes from the measured compute time per step and all-reduce model
``t = latency + 2 (N - 1) / N · bytes / bandwidth`` (ring all-reduce), with
the link figures it assumes printed beside the table.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from .common import environment_info, format_environment, format_table, write_json
from .options import output_file, positive_int

#: model name -> global batch and a one-line description
MODELS: dict[str, dict] = {
    "digits_cnn": {"batch": 64, "about": "digits CNN (8x8x1: conv 16, pool, conv 32, pool, dense 64, 10)"},
    "mlp": {"batch": 512, "about": "MLP 784-1024-1024-10 (1.86 M parameters)"},
}
DEFAULTS: dict = {"ranks": "1,2", "steps": 20, "warmup": 3,
                  "bandwidth_sizes": (2**8, 2**12, 2**16, 2**18, 2**20, 2**22)}
QUICK: dict = {"steps": 3, "warmup": 1, "bandwidth_sizes": (2**8, 2**16)}
TARGET_OVERHEAD = 0.10          # all-reduce below 10% of the MLP's step at 2 ranks

#: Links assumed by the projections (per link, one direction; the ring all-reduce's "bus bandwidth").
LINKS: dict[str, dict] = {
    "nvlink": {"bandwidth": 350e9, "latency": 30e-6, "note": "8 GPUs on NVLink/NVSwitch (H100/H200 class), "
                                                             "NCCL bus bandwidth ~350 GB/s"},
    "infiniband": {"bandwidth": 45e9, "latency": 60e-6, "note": "nodes on 400 Gb/s InfiniBand, one NIC per GPU: "
                                                                "~45 GB/s bus bandwidth across nodes"},
    "ethernet": {"bandwidth": 1.1e9, "latency": 50e-6, "note": "CPU nodes on 10 Gb Ethernet (~1.1 GB/s)"},
}
#: Sustained float32 rate assumed for a GPU's compute time per step (no GPU measured yet: owed).
GPU_FLOPS, GPU_STEP_FLOOR = 20e12, 0.5e-3


# --------------------------------------------------------------------------- #
# The worker, on every rank under mpiexec
# --------------------------------------------------------------------------- #
def build(name: str, seed: int = 0):
    """The model ``name`` (float32, on the current device) and one sample's shape."""
    from layers import Convolution2D, Dense, Flatten, MaxPooling2D, ReLU, Sequential

    if name == "digits_cnn":
        return Sequential([Convolution2D(1, 16, 3, padding=1, seed=seed), ReLU(), MaxPooling2D((2, 2)),
                           Convolution2D(16, 32, 3, padding=1, seed=seed + 1), ReLU(), MaxPooling2D((2, 2)),
                           Flatten(), Dense(128, 64, seed=seed + 2), ReLU(), Dense(64, 10, seed=seed + 3)]), (8, 8, 1)
    return Sequential([Dense(784, 1024, seed=seed), ReLU(), Dense(1024, 1024, seed=seed + 1), ReLU(),
                       Dense(1024, 10, seed=seed + 2)]), (784,)


def flops_per_sample(model, shape) -> float:
    """Multiply-adds x 2 of forward and backward (3 x forward) of one sample, for Dense and Convolution2D."""
    from layers import Convolution2D, Dense

    total, current = 0.0, (1,) + tuple(shape)
    for layer in model.layers:
        if isinstance(layer, Dense):
            total += 2.0 * layer.W.size
        elif isinstance(layer, Convolution2D):
            total += 2.0 * layer.kernels.size * current[1] * current[2]    # padding keeps H x W (stride 1)
        current = (1,) + tuple(layer.output_shape(current[1:])) if hasattr(layer, "output_shape") else current
    return 3.0 * total


def _timed_allreduce(comm) -> list:
    """Wrap ``comm``'s buffer all-reduce to add its seconds to the returned one-element list."""
    spent = [0.0]
    inner = comm._allreduce_buffer

    def timed(buffer):
        start = time.perf_counter()
        inner(buffer)
        spent[0] += time.perf_counter() - start

    comm._allreduce_buffer = timed
    return spent


def measure_model(comm, name: str, steps: int, warmup: int) -> dict:
    """Per-step seconds of one data-parallel training step of ``name`` (max over ranks) and of its all-reduce."""
    import backend
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam, DataParallel, flatten_parameters

    batch = MODELS[name]["batch"]
    model, shape = build(name)
    flat = flatten_parameters(model)
    optimizer = DataParallel(Adam(1e-3), comm)
    optimizer.broadcast_parameters(model.params)
    loss = SparseCategoricalCrossEntropy(from_logits=True)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2 * batch,) + shape).astype(np.float32)
    y = rng.integers(0, 10, 2 * batch)
    low, high = batch * comm.rank // comm.size, batch * (comm.rank + 1) // comm.size
    spent = _timed_allreduce(comm)
    step_times, reduce_times = [], []
    for step in range(warmup + steps):
        start_sample = (step % 2) * batch
        xb = backend.to_device(X[start_sample + low:start_sample + high])
        yb = backend.to_device(y[start_sample + low:start_sample + high])
        comm.barrier()
        spent[0] = 0.0
        start = time.perf_counter()
        loss.forward(model.forward(xb), yb)
        _, grads = model.backward(loss.backward())
        optimizer.step(model.params, grads)
        backend.synchronize()
        if step >= warmup:
            step_times.append(time.perf_counter() - start)
            reduce_times.append(spent[0])
    comm._allreduce_buffer = type(comm)._allreduce_buffer.__get__(comm)
    gathered = comm.allgather_object((step_times, reduce_times))
    step = np.max([g[0] for g in gathered], axis=0)             # a step ends when its slowest rank does
    reduce = np.mean([g[1] for g in gathered], axis=0)
    return {"model": name, "about": MODELS[name]["about"], "ranks": comm.size, "global_batch": batch,
            "rank_batch": high - low, "parameters": int(sum(p.size for p in model.params)),
            "gradient_bytes": int(sum(b.nbytes for b in flat.grad_buffers)),
            "flops_per_sample": flops_per_sample(model, shape),
            "step_seconds": float(np.median(step)), "allreduce_seconds": float(np.median(reduce)),
            "step_times": step.tolist(), "allreduce_times": reduce.tolist()}


def measure_bandwidth(comm, sizes, repeat: int = 10) -> list:
    """Median seconds of ``allreduce_mean`` on a float32 buffer of each size (a barrier before each call)."""
    rows = []
    for n in sizes:
        buffer = np.ones(int(n), np.float32)
        times = []
        for _ in range(repeat + 1):
            comm.barrier()
            start = time.perf_counter()
            comm.allreduce_mean([buffer])
            times.append(time.perf_counter() - start)
        seconds, fastest = float(np.median(times[1:])), float(min(times[1:]))
        algbw = buffer.nbytes / seconds if seconds > 0 else None
        busbw = None if algbw is None else algbw * 2 * (comm.size - 1) / comm.size
        rows.append({"bytes": buffer.nbytes, "seconds": seconds, "min_seconds": fastest, "algbw": algbw,
                     "busbw": busbw, "times": times[1:]})
    return rows


def worker(args) -> int:
    """Run under mpiexec: measure every model (and the bandwidth when size > 1); rank 0 writes the JSON."""
    import backend
    from backend.distributed import create_communicator

    comm = create_communicator("auto", device=args.device)
    cfg = QUICK if args.quick else DEFAULTS
    steps, warmup = args.steps or cfg["steps"], cfg["warmup"]
    models = [measure_model(comm, name, steps, warmup) for name in args.models.split(",")]
    result: dict = {"ranks": comm.size, "communicator": type(comm).__name__, "device": str(backend.get_device()),
              "threads_per_rank": os.environ.get("OPENBLAS_NUM_THREADS"), "models": models}
    if comm.size > 1:      # the standard sizes and each model's gradient buffer (its all-reduce alone)
        sizes = sorted(set(cfg["bandwidth_sizes"]) | {m["gradient_bytes"] // 4 for m in models})
        bandwidth = result["bandwidth"] = measure_bandwidth(comm, sizes)
        alone = {row["bytes"]: row["seconds"] for row in bandwidth}
        for m in models:
            m["allreduce_alone_seconds"] = alone[m["gradient_bytes"]]
    if comm.rank == 0:
        Path(args.worker_out).write_text(json.dumps(result))
    return 0


# --------------------------------------------------------------------------- #
# The parent: one mpiexec per process count, then the tables
# --------------------------------------------------------------------------- #
def mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (pip's MPICH), else the first on PATH."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def mpiexec_env(env: dict) -> dict:
    """``env`` for an ``mpiexec`` run; as root, with Open MPI's consent to run as root.

    Open MPI refuses to start as root without it (seen on the GPU machine, whose
    MPI is Open MPI and whose user is root); MPICH ignores these variables.
    """
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        env = {**env, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    return env


def run_ranks(ranks: int, args, cores: int) -> dict:
    """One ``mpiexec -n ranks`` run of the worker, the cores split between the ranks; its JSON."""
    threads = str(args.threads or max(1, cores // ranks))
    env = {**os.environ, "OPENBLAS_NUM_THREADS": threads, "OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads,
           "NUMBA_NUM_THREADS": threads, "CAMADAS_DEVICE": args.device}
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [mpiexec(), "-n", str(ranks), sys.executable, "-m", "bench", "scaling", "--worker",
                   "--worker-out", str(out), "--models", args.models, "--device", args.device]
        command += ["--steps", str(args.steps)] if args.steps else []
        command += ["--quick"] if args.quick else []
        proc = subprocess.run(command, capture_output=True, text=True, env=mpiexec_env(env), timeout=args.timeout)
        if proc.returncode != 0 or not out.exists():
            raise RuntimeError(f"mpiexec -n {ranks} failed (status {proc.returncode}):\n{proc.stderr[-3000:]}")
        return json.loads(out.read_text())


def allreduce_seconds(nbytes: float, workers: int, bandwidth: float, latency: float) -> float:
    """Ring all-reduce: ``latency + 2 (N - 1) / N · bytes / bandwidth`` (0 for one worker)."""
    if workers <= 1:
        return 0.0
    return latency + 2.0 * (workers - 1) / workers * nbytes / bandwidth


def projections(rows) -> list:
    """Weak scaling (the per-worker batch fixed) of every model, from its compute time and the links assumed.

    Efficiency ``t_c / (t_c + t_ar)``: the all-reduce is not overlapped with the
    backward pass. CPU rows use the measured compute time per step of one rank
    (2-rank run: the step less its all-reduce); GPU rows estimate the compute time from the model's FLOPs at
    ``GPU_FLOPS`` (with a floor for kernel launches): owed to a GPU run.
    """
    out = []
    for row in rows:
        if row["ranks"] != 2:
            continue
        cpu_compute = max(row["step_seconds"] - row["allreduce_seconds"], 1e-9)
        gpu_compute = max(row["flops_per_sample"] * row["rank_batch"] / GPU_FLOPS, GPU_STEP_FLOOR)
        settings = [("CPU nodes, 10 GbE", "ethernet", (2, 4), cpu_compute, "measured"),
                    ("GPUs, one node (NVLink)", "nvlink", (8,), gpu_compute, "estimated"),
                    ("GPU nodes x 8 (InfiniBand)", "infiniband", (16, 32), gpu_compute, "estimated")]
        for label, link, counts, compute, how in settings:
            spec = LINKS[link]
            for workers in counts:
                t_ar = allreduce_seconds(row["gradient_bytes"], workers, spec["bandwidth"], spec["latency"])
                efficiency = compute / (compute + t_ar)
                out.append({"model": row["model"], "setting": label, "workers": workers, "link": link,
                            "compute_seconds": compute, "compute_is": how, "allreduce_seconds": t_ar,
                            "efficiency": efficiency, "speedup": workers * efficiency,
                            "samples_per_second": workers * row["rank_batch"] / (compute + t_ar)})
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench scaling``."""
    parser.add_argument("--ranks", default=DEFAULTS["ranks"], help="process counts, comma-separated (default 1,2)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"from {', '.join(MODELS)} (default both)")
    parser.add_argument("--steps", type=positive_int, default=None, help="timed steps (default 20; quick 3)")
    parser.add_argument("--device", choices=["cpu", "gpu", "auto"], default="cpu",
                        help="cpu (default); gpu: one GPU per rank, NCCL")
    parser.add_argument("--threads", type=positive_int, default=None,
                        help="CPU threads per rank (default: the cores divided between the ranks)")
    parser.add_argument("--quick", action="store_true", help="few steps (seconds; used by the tests)")
    parser.add_argument("--timeout", type=positive_int, default=600, help="seconds per mpiexec run (default 600)")
    parser.add_argument("--json", metavar="PATH", type=output_file, default=None, help="write every figure as JSON")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--worker-out", default=None, help=argparse.SUPPRESS)


def _parse(args):
    try:
        ranks = sorted({int(r) for r in args.ranks.split(",")})
    except ValueError:
        raise SystemExit(f"--ranks: expected comma-separated integers, got {args.ranks!r}") from None
    if ranks[0] < 1:
        raise SystemExit(f"--ranks: expected counts >= 1, got {args.ranks!r}")
    unknown = [m for m in args.models.split(",") if m not in MODELS]
    if unknown:
        raise SystemExit(f"--models: expected names from {', '.join(MODELS)}, got {', '.join(unknown)}")
    return ranks


def run(args) -> int:
    """Measure at every process count, print the tables, write the JSON; 1 when mpiexec or mpi4py is missing."""
    if args.worker:
        return worker(args)
    ranks = _parse(args)
    if mpiexec() is None:
        print('scaling: needs mpiexec and mpi4py: pip install -e ".[distributed]"', file=sys.stderr)
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    environment = environment_info()
    print(format_environment(environment))
    runs = {r: run_ranks(r, args, cores) for r in ranks}
    rows = [row for r in ranks for row in runs[r]["models"]]
    base = {row["model"]: row for row in runs[ranks[0]]["models"]}
    for row in rows:
        row["samples_per_second"] = row["global_batch"] / row["step_seconds"]
        row["allreduce_share"] = row["allreduce_seconds"] / row["step_seconds"]
        if "allreduce_alone_seconds" in row:
            row["allreduce_alone_share"] = row["allreduce_alone_seconds"] / row["step_seconds"]
        first = base[row["model"]]
        row["speedup"] = row["samples_per_second"] / (first["global_batch"] / first["step_seconds"])
    bandwidth = [dict(b, ranks=r) for r in ranks for b in runs[r].get("bandwidth", [])]
    projected = projections(rows)
    split = f"{args.threads} thread(s) per rank" if args.threads else f"{cores} cores split between the ranks"
    print(f"\nData-parallel training step (forward, backward, all-reduce, Adam) on {args.device}, {split}; "
          f"step = the slowest rank's, median of {len(rows[0]['step_times'])} steps;\n"
          "all-reduce: the time a rank spends in it during the step (waiting for the slowest rank included), "
          "and alone: the same buffer's all-reduce after a barrier")
    print(format_table(rows, [("model", "model"), ("ranks", "ranks"), ("global_batch", "global batch"),
                              ("rank_batch", "per rank"), ("step_seconds", "step ms", _scaled(1e3, ".2f")),
                              ("allreduce_seconds", "all-reduce ms", _scaled(1e3, ".3f")),
                              ("allreduce_share", "all-reduce share", ".1%"),
                              ("allreduce_alone_seconds", "alone ms", _scaled(1e3, ".3f")),
                              ("allreduce_alone_share", "alone share", ".1%"),
                              ("samples_per_second", "samples/s", ".0f"), ("speedup", "vs 1 rank", ".2f")]))
    if bandwidth:
        print("\nall-reduce of one float32 buffer (median and fastest of the calls; bus bandwidth = algbw x 2(N-1)/N "
              "from the median)")
        print(format_table(bandwidth, [("ranks", "ranks"), ("bytes", "bytes"), ("seconds", "us", _scaled(1e6, ".1f")),
                                       ("min_seconds", "min us", _scaled(1e6, ".1f")),
                                       ("algbw", "algbw GB/s", _scaled(1e-9, ".3f")),
                                       ("busbw", "busbw GB/s", _scaled(1e-9, ".3f"))]))
    verdict = _verdict(rows, args.quick)
    if projected:
        print("\nProjected weak scaling (per-worker batch fixed; all-reduce not overlapped):")
        print(format_table(projected, [("model", "model"), ("setting", "setting"), ("workers", "workers"),
                                       ("compute_seconds", "compute ms", _scaled(1e3, ".2f")),
                                       ("compute_is", "compute"),
                                       ("allreduce_seconds", "all-reduce ms", _scaled(1e3, ".3f")),
                                       ("efficiency", "efficiency", ".0%"), ("speedup", "speedup", ".1f")]))
        for name, spec in LINKS.items():
            print(f"  {name}: {spec['note']}")
        print(f"  GPU compute per step estimated as FLOPs / {GPU_FLOPS / 1e12:.0f} TFLOP/s, at least "
              f"{GPU_STEP_FLOOR * 1e3:.1f} ms (kernel launches): owed to a GPU run")
    if verdict:
        print(verdict)
    if args.json:
        payload = {"benchmark": "scaling", "environment": environment,
                   "config": {"ranks": ranks, "models": args.models, "device": args.device, "quick": args.quick,
                              "cores": cores, "threads_per_rank": args.threads or "cores // ranks",
                              "links_assumed": LINKS, "gpu_flops_assumed": GPU_FLOPS},
                   "rows": rows, "bandwidth": bandwidth, "projections": projected, "verdict": verdict}
        print(f"json: {write_json(args.json, payload)}")
    return 0


def _scaled(factor: float, spec: str):
    """A format_table formatter: the value times ``factor``, formatted with ``spec``."""
    return lambda value: format(value * factor, spec)


def _verdict(rows, quick: bool) -> str | None:
    mlp = [r for r in rows if r["model"] == "mlp" and r["ranks"] == 2]
    if quick or not mlp:
        return None
    row = mlp[0]
    share = row["allreduce_share"]
    status = "met" if share < TARGET_OVERHEAD else "NOT met"
    alone = row.get("allreduce_alone_share")
    return (f"target (all-reduce < {TARGET_OVERHEAD:.0%} of the MLP's step at 2 ranks): {status}, {share:.1%} in the "
            f"step ({row['allreduce_seconds'] * 1e3:.2f} of {row['step_seconds'] * 1e3:.1f} ms, waiting for the "
            f"slower rank included)" + ("" if alone is None else f"; the all-reduce alone: {alone:.1%}"))
