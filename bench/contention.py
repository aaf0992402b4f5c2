"""``python -m bench contention``: how much a training step slows down beside one busy process.

A machine is rarely ours alone. On 2 cores, one busy process takes one of
them: a fair share is a 1.5-2x slower step. A library whose threads wait for
each other (a BLAS or OpenMP worker spinning, or descheduled, while the main
thread waits for it) loses far more. Two steps are measured, ours and
PyTorch's twin of it (same shapes, float32, each library's default threads):

* ``conv``: Convolution2D(8 -> 16, 3x3, padding 1) and ReLU on (32, 28, 28, 8),
  forward and backward (the thin layer of ``python -m bench kernels``);
* ``mlp``: 784-256-256-10 with ReLU, batch 128, softmax cross-entropy on the
  logits, forward, backward and an SGD step.

Each is timed alone and beside one busy process (``python -c "while True:
pass"``, started for the block and stopped after), alternating in
``--rounds`` rounds; per round the slowdown is busy / alone (medians of
``--steps`` steps). Reported: the medians, and the slowdown's median and
range over the rounds. Target: at most 2x.

Example::

    python -m bench contention --json bench/results/contention-cpu.json
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager

import numpy as np

from . import common, options
from .kernels import ForeignLoad
from .timing import time_function

#: The busy neighbour: one pure-Python loop, one core.
BUSY_CODE = "while True: pass"
#: Seconds the busy process runs before a block is timed (it must be on its core).
BUSY_RAMP_S = 0.3
#: The target of the slowdown beside one busy process.
TARGET_SLOWDOWN = 2.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the options of ``contention`` to its sub-parser."""
    parser.add_argument("--rounds", type=options.positive_int, default=5,
                        help="alone/busy rounds per step (default 5)")
    parser.add_argument("--steps", type=options.positive_int, default=30,
                        help="timed steps per block (default 30; 2 untimed before)")
    parser.add_argument("--no-torch", action="store_true", help="do not measure PyTorch even if it imports")
    parser.add_argument("--json", metavar="PATH", type=options.output_file, default=None,
                        help="write environment, settings and rows as JSON")
    parser.add_argument("--quick", action="store_true", help="2 rounds of 5 steps (CI smoke run)")


@contextmanager
def busy_process():
    """One busy Python process beside this one for the duration of the block (stopped after)."""
    proc = subprocess.Popen([sys.executable, "-c", BUSY_CODE], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(BUSY_RAMP_S)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - terminate is honoured by a Python loop
            proc.kill()
            proc.wait()


def conv_step_ours(seed=0):
    """Convolution2D(8, 16, 3, padding=1) + ReLU forward and backward on (32, 28, 28, 8), float32."""
    from layers import Convolution2D, get_activation

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((32, 28, 28, 8)).astype(np.float32)
    g = rng.standard_normal((32, 28, 28, 16)).astype(np.float32)
    conv, relu = Convolution2D(8, 16, 3, padding=1, seed=seed), get_activation("relu")

    def step():
        relu.forward(conv.forward(x))
        conv.backward(relu.backward(g)[0])

    return step


def mlp_step_ours(seed=0):
    """784-256-256-10 (ReLU), batch 128, cross-entropy on the logits, forward, backward and an SGD step."""
    from layers import Dense, Sequential, get_activation
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import SGD

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((128, 784)).astype(np.float32)
    y = rng.integers(0, 10, 128)
    model = Sequential([Dense(784, 256, seed=seed), get_activation("relu"), Dense(256, 256, seed=seed + 1),
                        get_activation("relu"), Dense(256, 10, seed=seed + 2)])
    loss, optimizer = SparseCategoricalCrossEntropy(from_logits=True), SGD(learning_rate=0.01)

    def step():
        loss.forward(model.forward(x), y)
        _, grads = model.backward(loss.backward())
        optimizer.step(model.params, grads)

    return step


def conv_step_torch(torch, seed=0):
    """PyTorch's twin of :func:`conv_step_ours` (NCHW tensors in channels_last memory)."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((32, 8, 28, 28)).astype(np.float32))
    x = x.contiguous(memory_format=torch.channels_last).requires_grad_(True)
    g = torch.from_numpy(rng.standard_normal((32, 16, 28, 28)).astype(np.float32))
    g = g.contiguous(memory_format=torch.channels_last)
    conv = torch.nn.Conv2d(8, 16, 3, padding=1).to(memory_format=torch.channels_last)

    def step():
        y = torch.relu(conv(x))
        torch.autograd.grad(y, (x, *conv.parameters()), g)

    return step


def mlp_step_torch(torch, seed=0):
    """PyTorch's twin of :func:`mlp_step_ours`."""
    rng = np.random.default_rng(seed)
    x = torch.from_numpy(rng.standard_normal((128, 784)).astype(np.float32))
    y = torch.from_numpy(rng.integers(0, 10, 128))
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    loss = nn.CrossEntropyLoss()

    def step():
        optimizer.zero_grad()
        loss(model(x), y).backward()
        optimizer.step()

    return step


def measure(steps: dict, rounds: int, n_steps: int, progress=None) -> list[dict]:
    """Median step times alone and beside :func:`busy_process`, alternating, for each ``(workload, library)``.

    Returns one row per entry of ``steps``: ``alone_s`` and ``busy_s`` (per round), ``slowdowns`` (per
    round), and their medians.
    """
    runs = {key: {"alone": [], "busy": []} for key in steps}
    other_load = []  # CPU share of other processes during each "alone" block (the machine is not ours alone)
    for step in steps.values():
        step()  # compile / load caches outside the timing
    for r in range(rounds):
        for state in ("alone", "busy"):
            if progress:
                progress(f"round {r + 1}/{rounds}: {state}")
            context = busy_process() if state == "busy" else _nothing()
            with context:
                load = ForeignLoad()
                for key, step in steps.items():
                    runs[key][state].append(time_function(step, repeat=n_steps, warmup=2)["median"])
                if state == "alone":
                    other_load.append(load.fraction())
    rows = []
    for (workload, library), run in runs.items():
        slowdowns = [b / a for a, b in zip(run["alone"], run["busy"])]
        rows.append({"workload": workload, "library": library, "alone_s": run["alone"], "busy_s": run["busy"],
                     "alone_median_s": statistics.median(run["alone"]),
                     "busy_median_s": statistics.median(run["busy"]),
                     "slowdowns": slowdowns, "slowdown_median": statistics.median(slowdowns),
                     "slowdown_min": min(slowdowns), "slowdown_max": max(slowdowns),
                     "other_load_alone": other_load})
    return rows


@contextmanager
def _nothing():
    yield None


def report(rows) -> str:
    """The table and the target lines."""
    table = common.format_table(
        [dict(row, alone_ms=1e3 * row["alone_median_s"], busy_ms=1e3 * row["busy_median_s"],
              spread=f"{row['slowdown_min']:.2f}-{row['slowdown_max']:.2f}") for row in rows],
        [("workload", "step"), ("library", "library"), ("alone_ms", "alone ms", ".3f"), ("busy_ms", "busy ms", ".3f"),
         ("slowdown_median", "slowdown", ".2f"), ("spread", "range")])
    lines = [table, f"slowdown: step time beside one busy process / alone (medians per round); target <= "
                    f"{TARGET_SLOWDOWN:g}x; a fair share of 2 cores is 1.5-2x"]
    loads = [v for v in (rows[0]["other_load_alone"] if rows else []) if v is not None]
    if loads:
        lines.append(f"other processes used {100 * min(loads):.0f}-{100 * max(loads):.0f}% of the CPU during the "
                     "'alone' blocks (above 10%, 'alone' was not alone: compare the step times too)")
    for row in rows:
        met = "met " if row["slowdown_median"] <= TARGET_SLOWDOWN else "MISS"
        lines.append(f"  [{met}] {row['workload']} {row['library']}: {row['slowdown_median']:.2f}x")
    return "\n".join(lines)


def run(args) -> int:
    """Run the contention benchmark; returns the exit status."""
    rounds, n_steps = (2, 5) if args.quick else (args.rounds, args.steps)
    env = common.environment_info()
    print(common.format_environment(env))
    steps = {("conv", "ours"): conv_step_ours(), ("mlp", "ours"): mlp_step_ours()}
    torch = None if args.no_torch else common.torch_or_none()
    if torch is not None:
        steps[("conv", "torch")] = conv_step_torch(torch)
        steps[("mlp", "torch")] = mlp_step_torch(torch)
    elif not args.no_torch:
        print(f"PyTorch: not measured ({common.torch_unavailable_reason()})")
    rows = measure(steps, rounds, n_steps, progress=lambda text: print(text, file=sys.stderr, flush=True))
    print(report(rows))
    if args.json:
        common.write_json(args.json, {"environment": env, "rounds": rounds, "steps": n_steps, "busy": BUSY_CODE,
                                      "target_slowdown": TARGET_SLOWDOWN, "rows": rows})
        print(f"JSON written to {args.json}")
    return 0
