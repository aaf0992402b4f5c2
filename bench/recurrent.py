"""``python -m bench recurrent``: how fast the recurrent cells run, and the short-term memory problem (book 24.5).

Two parts (``--part speed|memory|all``).

Speed
-----
SimpleRNN, LSTM and GRU, forward and forward + backward (full BPTT, every
step's output gets a gradient), batch 64, 100 steps, 128 inputs, 128 hidden
units, float32: camadas' layers (input projection as one matrix product, per
step one product and one fused kernel), the book-style per-step code
(:mod:`kernels.recurrent.reference`) as the baseline, and PyTorch's
``nn.RNN/LSTM/GRU`` in the same process (CPU; cuDNN on a CUDA GPU). Medians
of ``--repeat`` calls after two warm-up calls; the first call (Numba
compilation or cache load) is reported apart. Speed is also given in GFLOP/s
(the products: ``2·T·B·(I + H)·G·H`` forward, three times that forward +
backward) and as a fraction of a square matrix product timed in the same run.

The short-term memory problem
-----------------------------
Two synthetic tasks at growing lengths ``L`` (default 10, 50, 100, 200):

* adding (Hochreiter and Schmidhuber, 1997): two features per step, a value
  in [0, 1) and a marker; two steps are marked (one in each half); the target
  is the sum of their values. Mean squared error; predicting 1 scores 1/6.
* recall (their experiment 2b): a symbol (one of 8) at the first step, then
  L - 2 random distractor symbols (another 8), then a "recall" marker; the
  target is the first symbol. Accuracy; chance is 1/8.

Every cell (SimpleRNN, LSTM, LSTM with peepholes, GRU; 32 units) is trained
with the same budget and seed: 2,048 sequences, 20 epochs, batches of 32,
Adam (3e-3), ``clipnorm=1`` (fit's gradient clipping, for every cell alike),
then a Dense read-out of the last state. Reported per task, length and cell:
the test metric on 512 new sequences, the gradient norm reaching the first
time step (``mean_b |dE/dx_0|`` over 256 test sequences, at initialization and
after training; how much of the loss's gradient survives L steps back), and
the time per epoch (median). Deterministic for a seed on the CPU (timings
aside; the BLAS thread count changes the rounding).

Options: ``--part``, ``--device cpu|gpu|all``, ``--quick`` (tiny sizes, for
tests), ``--json PATH``, ``--plot DIR``, ``--seed``, ``--lengths``,
``--cells``, ``--tasks``, ``--epochs``, ``--repeat``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

import backend
from bench.common import (
    environment_info,
    format_environment,
    format_table,
    matmul_roofline,
    resolve_devices,
    time_function,
    time_on_device,
    torch_or_none,
    torch_unavailable_reason,
    write_json,
)

#: The cells compared: name -> (layer class name, constructor options, PyTorch module or None).
CELLS = {
    "rnn": ("SimpleRNN", {}, "RNN"),
    "lstm": ("LSTM", {}, "LSTM"),
    "lstm_peephole": ("LSTM", {"peephole": True}, None),
    "gru": ("GRU", {}, "GRU"),
}
GATES = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}
TASKS = ("adding", "recall")

SPEED = {"batch": 64, "steps": 100, "inputs": 128, "hidden": 128, "repeat": 10, "baseline_repeat": 3,
         "roofline_n": 2048, "cells": ("rnn", "lstm", "gru")}
QUICK_SPEED = dict(SPEED, batch=8, steps=12, inputs=16, hidden=16, repeat=2, baseline_repeat=1, roofline_n=128)
MEMORY = {"lengths": (10, 50, 100, 200), "hidden": 32, "train": 2048, "test": 512, "probe": 256, "epochs": 20,
          "batch_size": 32, "learning_rate": 3e-3, "clipnorm": 1.0, "symbols": 8, "distractors": 8}
QUICK_MEMORY = dict(MEMORY, lengths=(5, 12), hidden=8, train=96, test=32, probe=16, epochs=2)


# --------------------------------------------------------------------------- #
# The tasks
# --------------------------------------------------------------------------- #
def adding_problem(n: int, length: int, rng):
    """``(X (n, L, 2) float32, y (n, 1) float32)``: values and markers; y = the sum of the two marked values.

    One marker falls in the first half ``[0, L/2)``, the other in ``[L/2, L)``.
    """
    if length < 2:
        raise ValueError(f"adding_problem: length: expected an int >= 2, got {length}")
    X = np.zeros((n, length, 2), dtype=np.float32)
    X[:, :, 0] = rng.random((n, length))
    rows = np.arange(n)
    first = rng.integers(0, length // 2, n)
    second = rng.integers(length // 2, length, n)
    X[rows, first, 1] = 1.0
    X[rows, second, 1] = 1.0
    y = (X[rows, first, 0] + X[rows, second, 0]).reshape(-1, 1)
    return X, y


def recall_task(n: int, length: int, rng, symbols: int = 8, distractors: int = 8):
    """``(X (n, L, symbols + distractors + 1) float32, y (n,) int64)``: recall the first step's symbol at the end.

    One-hot steps: a symbol at step 0, random distractors at steps 1..L-2 (their
    own alphabet), the recall marker (last channel) at step L-1.
    """
    if length < 2:
        raise ValueError(f"recall_task: length: expected an int >= 2, got {length}")
    X = np.zeros((n, length, symbols + distractors + 1), dtype=np.float32)
    y = rng.integers(0, symbols, n)
    X[np.arange(n), 0, y] = 1.0
    if length > 2:
        noise = rng.integers(symbols, symbols + distractors, (n, length - 2))
        X[np.arange(n)[:, None], np.arange(1, length - 1)[None, :], noise] = 1.0
    X[:, length - 1, symbols + distractors] = 1.0
    return X, y.astype(np.int64)


def make_task(task: str, n: int, length: int, rng, config=MEMORY):
    if task == "adding":
        return adding_problem(n, length, rng)
    return recall_task(n, length, rng, config["symbols"], config["distractors"])


def build_cell(cell: str, input_size: int, hidden: int, seed: int, **kw):
    """The recurrent layer named ``cell`` (a key of :data:`CELLS`)."""
    import layers

    class_name, options, _ = CELLS[cell]
    return getattr(layers, class_name)(input_size, hidden, seed=seed, **options, **kw)


def build_model(task: str, cell: str, input_size: int, config, seed: int):
    """``Sequential([cell, Dense])``: one output (adding) or one logit per symbol (recall)."""
    from layers import Dense, Sequential

    outputs = 1 if task == "adding" else config["symbols"]
    return Sequential([build_cell(cell, input_size, config["hidden"], seed),
                       Dense(config["hidden"], outputs, seed=seed + 1)])


def task_loss(task: str):
    from layers.losses import MeanSquaredError, SparseCategoricalCrossEntropy

    return MeanSquaredError() if task == "adding" else SparseCategoricalCrossEntropy(from_logits=True)


def gradient_by_step(model, loss, X, y):
    """``mean_b |dE/dx_t|`` for every step t (NumPy, float64), for the mean loss over ``(X, y)`` (no update)."""
    loss.forward(model.forward(X), y)
    dx, _ = model.backward(loss.backward())
    xp = backend.get_array_module(dx)
    return backend.to_numpy(xp.sqrt((dx.astype(np.float64) ** 2).sum(axis=2)).mean(axis=0))


def first_step_gradient(model, loss, X, y) -> dict:
    """``{"first": mean_b |dE/dx_0|, "last": mean_b |dE/dx_{L-1}|}`` (see :func:`gradient_by_step`)."""
    norms = gradient_by_step(model, loss, X, y)
    return {"first": float(norms[0]), "last": float(norms[-1])}


def train_memory(task: str, cell: str, length: int, device: str, config, seed: int) -> dict:
    """Train one cell on one task at one length; return the measurements of the module docstring."""
    from layers.callbacks import Callback
    from optimizers import Adam

    rng = np.random.default_rng([seed, length, TASKS.index(task)])
    X, y = make_task(task, config["train"], length, rng, config)
    X_test, y_test = make_task(task, config["test"], length, rng, config)

    class EpochTimer(Callback):
        def __init__(self):
            self.seconds = []

        def on_epoch_begin(self, epoch, logs=None):
            backend.synchronize()
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            backend.synchronize()
            self.seconds.append(time.perf_counter() - self._start)

    with backend.use_device("cpu"):
        model = build_model(task, cell, X.shape[2], config, seed)
    with backend.use_device(device) as dev:
        model.to(dev)
        X_d, y_d, Xt, yt = (backend.to_device(a, dev) for a in (X, y, X_test, y_test))
        probe = (Xt[:config["probe"]], yt[:config["probe"]])
        loss = task_loss(task)
        grad_init = first_step_gradient(model, loss, *probe)
        timer = EpochTimer()
        history = model.fit(X_d, y_d, loss=loss, optimizer=Adam(learning_rate=config["learning_rate"]),
                            epochs=config["epochs"], batch_size=config["batch_size"], callbacks=[timer],
                            clipnorm=config["clipnorm"], seed=seed, verbose=0)
        test = model.evaluate(Xt, yt)
        grad_final = first_step_gradient(model, loss, *probe)
    later = timer.seconds[1:] or timer.seconds
    return {
        "task": task, "cell": cell, "length": length, "device": str(dev),
        "test_loss": float(test["loss"]),
        "test_accuracy": float(test["accuracy"]) if "accuracy" in test else None,
        "metric": float(test["loss"]) if task == "adding" else float(test["accuracy"]),
        "grad_first_init": grad_init["first"], "grad_last_init": grad_init["last"],
        "grad_first_final": grad_final["first"], "grad_last_final": grad_final["last"],
        "seconds_per_epoch": statistics.median(later), "epoch_seconds": timer.seconds,
        "loss": [float(v) for v in history.history["loss"]],
    }


def memory_problem(devices, config, tasks, cells, seed, log=print) -> dict:
    """Every task x length x cell on every device: ``{device: {"available", "reason", "runs": [...]}}``."""
    out = {}
    for name, available, reason in devices:
        if not available:
            out[name] = {"available": False, "reason": reason, "runs": []}
            continue
        runs = []
        for task in tasks:
            for length in config["lengths"]:
                for cell in cells:
                    r = train_memory(task, cell, length, name, config, seed)
                    runs.append(r)
                    log(f"  {name} {task:<6s} L={length:<4d} {cell:<13s} "
                        f"{'mse' if task == 'adding' else 'acc'} {r['metric']:.4f}  "
                        f"|dE/dx0| {r['grad_first_init']:.1e} -> {r['grad_first_final']:.1e}  "
                        f"{r['seconds_per_epoch']:.2f} s/epoch")
        out[name] = {"available": True, "reason": None, "runs": runs}
    return out


# --------------------------------------------------------------------------- #
# Speed
# --------------------------------------------------------------------------- #
def _flops(class_name, cfg) -> float:
    """Multiply-adds x 2 of the matrix products of one forward pass."""
    g = GATES[class_name]
    return 2.0 * cfg["steps"] * cfg["batch"] * (cfg["inputs"] + cfg["hidden"]) * g * cfg["hidden"]


def _ours(cell, cfg, device, x, dy):
    """(forward, forward + backward, first call seconds) closures of camadas' layer on ``device``."""
    with backend.use_device("cpu"):
        layer = build_cell(cell, cfg["inputs"], cfg["hidden"], 0, return_sequences=True)
    layer.to(device)
    x_d, dy_d = backend.to_device(x, device), backend.to_device(dy, device)

    def forward():
        layer.forward(x_d)

    def both():
        layer.forward(x_d)
        layer.backward(dy_d)

    start = time.perf_counter()
    both()
    backend.synchronize()
    return forward, both, time.perf_counter() - start, layer


def _book(layer, x, dy):
    """Forward + backward of the book-style per-step reference with the layer's weights (CPU)."""
    from kernels.recurrent import reference

    W, U, b = (backend.to_numpy(p) for p in layer.params[:3])
    B, H = x.shape[0], layer.hidden_size
    h0 = np.zeros((B, H), dtype=x.dtype)
    name = type(layer).__name__

    def both():
        if name == "LSTM":
            _, _, cache = reference.lstm_forward(x, W, U, b, h0, h0)
            reference.lstm_backward(cache, dy, None, None)
        elif name == "GRU":
            _, _, cache = reference.gru_forward(x, W, U, b, backend.to_numpy(layer.params[3]), h0)
            reference.gru_backward(cache, dy, None)
        else:
            _, _, cache = reference.rnn_forward(x, W, U, b, h0)
            reference.rnn_backward(cache, dy, None)

    return both


def _torch(cell, cfg, device, x, dy):
    torch = torch_or_none()
    module_name = CELLS[cell][2]
    if torch is None or module_name is None:
        return None
    if device == "gpu" and not torch.cuda.is_available():
        return None
    dev = "cuda" if device == "gpu" else "cpu"
    torch.manual_seed(0)
    module = getattr(torch.nn, module_name)(cfg["inputs"], cfg["hidden"], batch_first=True).to(dev)
    xt = torch.from_numpy(x).to(dev).requires_grad_()
    dyt = torch.from_numpy(dy).to(dev)

    def forward():
        with torch.no_grad():
            module(xt)

    def both():
        out, _ = module(xt)
        out.backward(dyt)

    sync = torch.cuda.synchronize if dev == "cuda" else None
    return forward, both, sync


def _timed(fn, device, repeat, sync=None):
    if sync is not None:
        return time_function(fn, repeat=repeat, warmup=2, sync=sync)
    return time_on_device(fn, device, repeat=repeat, warmup=2)


def speed(devices, cfg, cells, log=print) -> dict:
    """Time every implementation of every cell on every device (see the module docstring)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((cfg["batch"], cfg["steps"], cfg["inputs"])).astype(np.float32)
    dy = rng.standard_normal((cfg["batch"], cfg["steps"], cfg["hidden"])).astype(np.float32)
    out: dict = {}
    for name, available, reason in devices:
        if not available:
            out[name] = {"available": False, "reason": reason, "rows": []}
            continue
        roof = matmul_roofline("float32", name, n=cfg["roofline_n"])
        rows = []
        for cell in cells:
            class_name = CELLS[cell][0]
            flops = _flops(class_name, cfg)
            forward, both, first, layer = _ours(cell, cfg, name, x, dy)
            entries = {"camadas": (forward, both, None, cfg["repeat"])}
            if name == "cpu":
                entries["book"] = (None, _book(layer, x, dy), None, cfg["baseline_repeat"])
            torch_fns = _torch(cell, cfg, name, x, dy)
            if torch_fns is not None:
                entries["pytorch"] = (torch_fns[0], torch_fns[1], torch_fns[2], cfg["repeat"])
            row = {"cell": class_name, "device": name, "first_call_seconds": first, "flops_forward": flops}
            for impl, (fwd, fb, sync, repeat) in entries.items():
                row[f"{impl}_forward"] = None if fwd is None else _timed(fwd, name, repeat, sync)
                row[f"{impl}_both"] = _timed(fb, name, repeat, sync)
            both_s = row["camadas_both"]["median"]
            row["camadas_gflops"] = 3 * flops / both_s / 1e9
            row["camadas_roofline_fraction"] = row["camadas_gflops"] / roof["gflops"]
            if "pytorch_both" in row:
                row["ratio_to_pytorch"] = both_s / row["pytorch_both"]["median"]
            if "book_both" in row:
                row["speedup_over_book"] = row["book_both"]["median"] / both_s
            rows.append(row)
            log(f"  {name} {class_name:<9s} fwd+bwd camadas {1e3 * both_s:8.2f} ms"
                + (f"  pytorch {1e3 * row['pytorch_both']['median']:8.2f} ms" if "pytorch_both" in row else "")
                + (f"  book {1e3 * row['book_both']['median']:9.2f} ms" if "book_both" in row else ""))
        out[name] = {"available": True, "reason": None, "matmul_roofline": roof, "rows": rows}
    if torch_or_none() is None:
        out["pytorch_unavailable"] = torch_unavailable_reason()
    return out


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def _ms(entry):
    return None if not entry else 1e3 * entry["median"]


def speed_report(result) -> list:
    cfg = result["config"]["speed"]
    lines = [f"Speed: batch {cfg['batch']}, {cfg['steps']} steps, {cfg['inputs']} inputs, {cfg['hidden']} hidden, "
             "float32; medians in ms (forward / forward + backward)"]
    rows = []
    for name, dev in result["speed"].items():
        if not isinstance(dev, dict):
            continue
        if not dev["available"]:
            lines.append(f"{name}: unavailable - {dev['reason']}")
            continue
        for r in dev["rows"]:
            rows.append({
                "cell": r["cell"], "device": name,
                "fwd": _ms(r.get("camadas_forward")), "both": _ms(r.get("camadas_both")),
                "t_fwd": _ms(r.get("pytorch_forward")), "t_both": _ms(r.get("pytorch_both")),
                "ratio": r.get("ratio_to_pytorch"), "book": _ms(r.get("book_both")),
                "speedup": r.get("speedup_over_book"), "gflops": r["camadas_gflops"],
                "roof": r["camadas_roofline_fraction"], "first": r["first_call_seconds"],
            })
    lines.append(format_table(rows, [
        ("cell", "cell"), ("device", "device"), ("fwd", "camadas fwd", ".2f"), ("both", "camadas f+b", ".2f"),
        ("t_fwd", "pytorch fwd", ".2f"), ("t_both", "pytorch f+b", ".2f"), ("ratio", "camadas/pytorch", ".2f"),
        ("book", "book f+b", ".1f"), ("speedup", "x book", ".1f"), ("gflops", "GFLOP/s", ".1f"),
        ("roof", "of matmul", lambda v: f"{100 * v:.0f}%"), ("first", "first call s", ".2f"),
    ]))
    lines.append("camadas/pytorch < 1: camadas is faster. book: the per-step reference "
                 "(kernels/recurrent/reference.py). first call: compilation or cache load.")
    return lines


def memory_report(result) -> list:
    cfg = result["config"]["memory"]
    lines = [f"The short-term memory problem (24.5): {cfg['hidden']} units, {cfg['train']} sequences, "
             f"{cfg['epochs']} epochs, batch {cfg['batch_size']}, Adam {cfg['learning_rate']:g}, "
             f"clipnorm {cfg['clipnorm']:g}, seed {result['config']['seed']}"]
    for name, dev in result["memory"].items():
        if not dev["available"]:
            lines.append(f"{name}: unavailable - {dev['reason']}")
            continue
        for task in TASKS:
            runs = sorted((r for r in dev["runs"] if r["task"] == task), key=lambda r: (r["length"],))
            if not runs:
                continue
            what = "test MSE" if task == "adding" else "test acc"
            rows = [{"L": r["length"], "cell": r["cell"], "metric": r["metric"], "g0": r["grad_first_init"],
                     "ratio": r["grad_first_init"] / r["grad_last_init"] if r["grad_last_init"] else None,
                     "g0_final": r["grad_first_final"], "s": r["seconds_per_epoch"]} for r in runs]
            baseline = "predicting 1 scores 0.167" if task == "adding" else "chance is 0.125"
            lines += ["", f"{task} on {name} ({baseline}):", format_table(rows, [
                ("L", "L"), ("cell", "cell"), ("metric", what, ".3f"), ("g0", "|dE/dx_0| init", ".1e"),
                ("ratio", "|dE/dx_0|/|dE/dx_L-1| init", ".1e"), ("g0_final", "|dE/dx_0| trained", ".1e"),
                ("s", "s/epoch", ".2f")])]
    lines += ["", "|dE/dx_0|: mean over test sequences of the norm of the loss gradient reaching the first step's "
              "input (no update); the ratio to the last step's shows how much of it survives L steps back."]
    return lines


def report(result) -> str:
    lines = [format_environment(result["environment"])]
    if "speed" in result:
        lines += [""] + speed_report(result)
    if "memory" in result:
        lines += [""] + memory_report(result)
    return "\n".join(lines)


def plot(result, out_dir) -> list:
    """``recurrent_memory.png`` (metric and first-step gradient by length) and ``recurrent_speed.png``."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    memory = next((d for d in result.get("memory", {}).values() if d["available"]), None)
    if memory:
        fig, axes = plt.subplots(2, len(TASKS), figsize=(11, 7.5), squeeze=False)
        for col, task in enumerate(TASKS):
            runs = [r for r in memory["runs"] if r["task"] == task]
            for k, cell in enumerate(dict.fromkeys(r["cell"] for r in runs)):
                mine = [r for r in runs if r["cell"] == cell]
                lengths = [r["length"] for r in mine]
                axes[0, col].plot(lengths, [r["metric"] for r in mine], "o-", color=f"C{k}", label=cell)
                axes[1, col].plot(lengths, [r["grad_first_init"] for r in mine], "o-", color=f"C{k}", label=cell)
                axes[1, col].plot(lengths, [r["grad_first_final"] for r in mine], "x--", color=f"C{k}", alpha=0.7)
            axes[0, col].set_title(f"{task}: " + ("test MSE (lower is better)" if task == "adding"
                                                  else "test accuracy (higher is better)"))
            axes[0, col].axhline(1 / 6 if task == "adding" else 1 / 8, color="0.6", linestyle=":", linewidth=1)
            axes[1, col].set_yscale("log")
            axes[1, col].set_title(f"{task}: |dE/dx_0| (o- at init, x-- trained)")
            for ax in axes[:, col]:
                ax.set_xlabel("sequence length L")
                ax.grid(alpha=0.3)
                ax.legend(fontsize=8)
        fig.tight_layout()
        path = out_dir / "recurrent_memory.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    speed_dev = next((d for d in result.get("speed", {}).values() if isinstance(d, dict) and d["available"]), None)
    if speed_dev:
        fig, ax = plt.subplots(figsize=(7, 4))
        impls = ("camadas", "pytorch", "book")
        width = 0.25
        for k, impl in enumerate(impls):
            values = [_ms(r.get(f"{impl}_both")) or 0.0 for r in speed_dev["rows"]]
            ax.bar(np.arange(len(values)) + k * width, values, width, label=impl, color=f"C{k}")
        ax.set_xticks(np.arange(len(speed_dev["rows"])) + width)
        ax.set_xticklabels([r["cell"] for r in speed_dev["rows"]])
        ax.set_yscale("log")
        ax.set_ylabel("forward + backward, ms (log)")
        ax.legend()
        ax.grid(alpha=0.3, axis="y")
        fig.tight_layout()
        path = out_dir / "recurrent_speed.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        paths.append(path)
    return paths


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _names(text, allowed, option):
    names = [n.strip().lower() for n in text.split(",") if n.strip()]
    bad = [n for n in names if n not in allowed]
    if bad or not names:
        raise SystemExit(f"{option}: expected names from {', '.join(allowed)}, got {text!r}")
    return names


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench recurrent``."""
    parser.add_argument("--part", choices=["speed", "memory", "all"], default="all",
                        help="speed table, short-term memory table, or both (default)")
    parser.add_argument("--device", choices=["cpu", "gpu", "all"], default="all",
                        help="default all: the CPU, and the GPU or the reason it is unavailable")
    parser.add_argument("--quick", action="store_true", help="tiny sizes (seconds; used by the tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data, weights and data order")
    parser.add_argument("--lengths", default=None, help="memory: comma-separated lengths (default 10,50,100,200)")
    parser.add_argument("--cells", default=None, help=f"memory: cells from {', '.join(CELLS)} (default all)")
    parser.add_argument("--tasks", default=None, help="memory: adding,recall (default both)")
    parser.add_argument("--epochs", type=int, default=None, help=f"memory: epochs (default {MEMORY['epochs']})")
    parser.add_argument("--repeat", type=int, default=None, help=f"speed: timed calls (default {SPEED['repeat']})")
    parser.add_argument("--json", metavar="PATH", default=None, help="write every measurement as JSON")
    parser.add_argument("--plot", metavar="DIR", default=None,
                        help="write recurrent_memory.png and recurrent_speed.png into DIR")


def run(args) -> int:
    """Run the parts asked for; print the tables; write the JSON and the plots; return 0."""
    speed_cfg: dict = dict(QUICK_SPEED if args.quick else SPEED)
    memory_cfg: dict = dict(QUICK_MEMORY if args.quick else MEMORY)
    if args.lengths:
        try:
            memory_cfg["lengths"] = tuple(int(v) for v in args.lengths.split(","))
        except ValueError:
            raise SystemExit(f"--lengths: expected comma-separated integers, got {args.lengths!r}") from None
        if min(memory_cfg["lengths"]) < 2:
            raise SystemExit(f"--lengths: expected lengths >= 2, got {args.lengths!r}")
    for option, value in (("--epochs", args.epochs), ("--repeat", args.repeat)):
        if value is not None and value < 1:
            raise SystemExit(f"{option}: expected an integer >= 1, got {value}")
    if args.epochs:
        memory_cfg["epochs"] = args.epochs
    if args.repeat:
        speed_cfg["repeat"] = args.repeat
    cells = _names(args.cells, tuple(CELLS), "--cells") if args.cells else list(CELLS)
    tasks = _names(args.tasks, TASKS, "--tasks") if args.tasks else list(TASKS)
    devices = resolve_devices(args.device)
    result: dict = {"benchmark": "recurrent", "environment": environment_info(),
              "config": {"seed": args.seed, "quick": bool(args.quick)}}
    if args.part in ("speed", "all"):
        result["config"]["speed"] = {k: v for k, v in speed_cfg.items()}
        result["speed"] = speed(devices, speed_cfg, speed_cfg["cells"])
    if args.part in ("memory", "all"):
        result["config"]["memory"] = dict(memory_cfg, cells=cells, tasks=tasks)
        result["memory"] = memory_problem(devices, memory_cfg, tasks, cells, args.seed)
    print()
    print(report(result))
    if args.json:
        print(f"\njson: {write_json(args.json, result)}")
    if args.plot:
        for path in plot(result, args.plot):
            print(f"figure: {path}")
    return 0


def main(argv=None) -> int:
    """``python -m bench.recurrent ...`` (same options as ``python -m bench recurrent``)."""
    parser = argparse.ArgumentParser(prog="python -m bench recurrent", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
