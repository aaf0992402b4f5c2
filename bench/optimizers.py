"""``python -m bench optimizers``: the fused optimizers against the 0.1 array formulas and PyTorch (issue 15).

Two measurements, every implementation interleaved round by round in one
process (medians of the round medians; the spread is in the JSON):

1. Adam's step on one float32 parameter of n elements: camadas 0.1's array
   formulas (:mod:`optimizers.reference`), the fused kernel, PyTorch's default
   and fused Adam; also as a fraction of the memory roofline (a plain copy of
   the same bytes: Adam reads p, g, m, v and writes p, m, v).
2. One training step (forward, loss, backward, Adam) of the MLP 784-256-256-10
   at several batch sizes: camadas with the 0.1 formulas, fused per array, and
   fused on flat buffers (:func:`optimizers.flatten_parameters`), beside a
   PyTorch twin with its default and its fused Adam. Every twin starts from the
   same weights and sees the same batches: the losses of the first steps are
   printed side by side as proof of the same math. The GEMM floor is the time
   of the step's eight matrix products alone (NumPy/BLAS).
"""

from __future__ import annotations

import argparse
import itertools
import os

import numpy as np

import backend

from .common import (
    copy_roofline,
    environment_info,
    format_environment,
    format_size,
    format_table,
    parse_sizes,
    resolve_devices,
    summarize_times,
    time_function,
    torch_or_none,
    torch_unavailable_reason,
    write_json,
)

DEFAULTS = {"sizes": "2^10,2^14,2^17,2^20,2^22", "batch_sizes": "32,128,512", "rounds": 5, "repeat": 20,
            "steps": 20, "seed": 0, "proof_steps": 5}
QUICK = {"sizes": "2^10,2^17", "batch_sizes": "32", "rounds": 2, "repeat": 5, "steps": 5}
LAYERS = (784, 256, 256, 10)
MAX_SIZE, MAX_BATCH = 1 << 26, 1 << 14     # 7 float32 arrays of 2^26 elements: 1.8 GiB
LEARNING_RATE, EPSILON = 1e-3, 1e-8


class ReferenceAdam:
    """Adam with camadas 0.1's array formulas (:func:`optimizers.reference.adam`): the "before"."""

    def __init__(self, learning_rate=LEARNING_RATE):
        self.learning_rate, self.states, self.t = learning_rate, None, 0

    def step(self, params, grads):
        from optimizers import reference

        if self.states is None:
            self.states = [{} for _ in params]
        self.t += 1
        for p, g, state in zip(params, grads, self.states):
            reference.adam(p, g, state, self.t, learning_rate=self.learning_rate, epsilon=EPSILON)


def _interleaved(functions: dict, rounds: int, repeat: int, sync=None) -> dict:
    """{name: summary of the per-round medians}, the functions timed in turn within every round."""
    medians = {name: [] for name in functions}
    for r in range(rounds):
        for name, fn in functions.items():
            timing = time_function(fn, repeat=repeat, warmup=2 if r == 0 else 1, sync=sync)
            medians[name].append(timing["median"])
    return {name: summarize_times(values) for name, values in medians.items()}


# -- 1. Adam's step per parameter size ----------------------------------------------------------------------
def adam_step_times(sizes, device="cpu", rounds=5, repeat=20, seed=0) -> list:
    """One row per size: seconds per step of each implementation, ratios and the roofline fraction."""
    from optimizers import Adam, reference

    torch = torch_or_none()
    sync = backend.synchronize if device == "gpu" else None
    rows = []
    for n in sizes:
        rng = np.random.default_rng(seed)
        with backend.use_device(device):
            p = backend.to_device(rng.standard_normal(n).astype(np.float32))
            g = backend.to_device(rng.standard_normal(n).astype(np.float32) * 1e-2)
        def reference_step(p=p, g=g, state={}, t=[0]):  # noqa: B006 (this size's own state and counter)
            t[0] += 1
            reference.adam(p, g, state, t[0], learning_rate=LEARNING_RATE, epsilon=EPSILON)

        fused = Adam(LEARNING_RATE, epsilon=EPSILON)
        functions = {"0.1 formulas": reference_step, "fused": lambda p=p, g=g, fused=fused: fused.step([p], [g])}
        if torch is not None and (device == "cpu" or torch.cuda.is_available()):
            where = "cpu" if device == "cpu" else "cuda"
            for label, kwargs in (("torch default", {}), ("torch fused", {"fused": True})):
                tp = torch.nn.Parameter(torch.tensor(backend.to_numpy(p), device=where))
                tp.grad = torch.tensor(backend.to_numpy(g), device=where)
                functions[label] = torch.optim.Adam([tp], lr=LEARNING_RATE, eps=EPSILON, **kwargs).step
        timings = _interleaved(functions, rounds, repeat, sync)
        roof = copy_roofline(n * 4, "float32", device)
        row = {"elements": n, "size": format_size(n), "device": device}
        for name, timing in timings.items():
            row[f"{name} us"] = timing["median"] * 1e6
        row["fused / 0.1"] = timings["fused"]["median"] / timings["0.1 formulas"]["median"]
        if "torch fused" in timings:
            row["fused / torch fused"] = timings["fused"]["median"] / timings["torch fused"]["median"]
        row["fused % of copy roofline"] = 100 * (7 * n * 4 / timings["fused"]["median"]) / (roof["gbps"] * 1e9)
        row["timings"] = timings
        rows.append(row)
    return rows


# -- 2. The MLP training step ------------------------------------------------------------------------------
def _camadas_mlp(seed):
    from layers import Dense, ReLU, Sequential

    d0, d1, d2, d3 = LAYERS
    return Sequential([Dense(d0, d1, seed=seed), ReLU(), Dense(d1, d2, seed=seed + 1), ReLU(),
                       Dense(d2, d3, seed=seed + 2)])


def _camadas_variants(seed, device):
    """{label: (model, optimizer, loss)} of the camadas twins, on ``device``."""
    from layers import SparseCategoricalCrossEntropy
    from optimizers import Adam, flatten_parameters

    variants = {}
    for label in ("0.1 formulas", "fused", "fused + flat"):
        model = _camadas_mlp(seed).to(device)
        if label == "fused + flat":
            flatten_parameters(model)
        optimizer = ReferenceAdam() if label == "0.1 formulas" else Adam(LEARNING_RATE, epsilon=EPSILON)
        variants[label] = (model, optimizer, SparseCategoricalCrossEntropy(from_logits=True))
    return variants


def _torch_variants(weights, device):
    torch = torch_or_none()
    if torch is None or (device == "gpu" and not torch.cuda.is_available()):
        return {}
    where = "cpu" if device == "cpu" else "cuda"
    variants = {}
    for label, kwargs in (("torch default", {}), ("torch fused", {"fused": True})):
        model = torch.nn.Sequential(torch.nn.Linear(LAYERS[0], LAYERS[1]), torch.nn.ReLU(),
                                    torch.nn.Linear(LAYERS[1], LAYERS[2]), torch.nn.ReLU(),
                                    torch.nn.Linear(LAYERS[2], LAYERS[3])).to(where)
        with torch.no_grad():
            for linear, (W, b) in zip([m for m in model if isinstance(m, torch.nn.Linear)],
                                      zip(weights[0::2], weights[1::2])):
                linear.weight.copy_(torch.tensor(W.T))
                linear.bias.copy_(torch.tensor(b))
        optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE, eps=EPSILON, **kwargs)
        variants[label] = (model, optimizer, torch.nn.CrossEntropyLoss())
    return variants


def _step_function(label, variant, batches, device):
    """A function running one training step on the next batch (cycling), returning the loss."""
    model, optimizer, loss = variant
    position = [0]
    torch = torch_or_none() if label.startswith("torch") else None
    if torch is not None:
        where = "cpu" if device == "cpu" else "cuda"
        data = [(torch.tensor(x, device=where), torch.tensor(y, device=where)) for x, y in batches]

        def step():
            x, y = data[position[0] % len(data)]
            position[0] += 1
            optimizer.zero_grad(set_to_none=True)
            value = loss(model(x), y)
            value.backward()
            optimizer.step()
            return value.detach()
        return step

    data = [(backend.to_device(x, device), backend.to_device(y, device)) for x, y in batches]
    params = model.params

    def step():
        x, y = data[position[0] % len(data)]
        position[0] += 1
        value = loss.forward(model.forward(x), y)
        _, grads = model.backward(loss.backward())
        optimizer.step(params, grads)
        return value
    return step


def _gemm_floor(batch, device, seed):
    """The step's matrix products alone: 3 forward, 3 weight gradients, 2 input gradients."""
    rng = np.random.default_rng(seed)
    xp = backend.get_device().xp if device == "gpu" else np
    acts = [xp.asarray(rng.standard_normal((batch, d)).astype(np.float32)) for d in LAYERS]
    weights = [xp.asarray(rng.standard_normal((a, b)).astype(np.float32)) for a, b in itertools.pairwise(LAYERS)]

    def products():
        for a, W in zip(acts, weights):
            a @ W                                           # forward
        for k, W in enumerate(weights):
            acts[k].T @ acts[k + 1]                         # dE/dW
            if k:
                acts[k + 1] @ W.T                           # dE/dx (not for the input)
    return products


def mlp_step_times(batch_sizes, device="cpu", rounds=5, steps=20, seed=0, proof_steps=5) -> list:
    """One row per batch size: seconds per training step of each twin, the GEMM floor and the first losses."""
    rows = []
    sync = backend.synchronize if device == "gpu" else None
    torch = torch_or_none()
    for batch in batch_sizes:
        rng = np.random.default_rng(seed + batch)
        batches = [(rng.standard_normal((batch, LAYERS[0])).astype(np.float32),
                    rng.integers(0, LAYERS[-1], batch)) for _ in range(max(steps, proof_steps))]
        with backend.use_device(device):
            ours = _camadas_variants(seed, device)
        weights = [backend.to_numpy(p) for p in next(iter(ours.values()))[0].params]
        variants = {**ours, **_torch_variants(weights, device)}
        functions = {label: _step_function(label, v, batches, device) for label, v in variants.items()}
        losses = {label: [float(fn()) for _ in range(proof_steps)] for label, fn in functions.items()}
        if torch is not None and device == "gpu":
            sync = _combined_sync(torch)
        with backend.use_device(device):
            functions["GEMM floor"] = _gemm_floor(batch, device, seed)
        timings = _interleaved(functions, rounds, steps, sync)
        row = {"batch": batch, "device": device}
        for label, timing in timings.items():
            row[f"{label} ms"] = timing["median"] * 1e3
        best = min(("fused", "fused + flat"), key=lambda k: timings[k]["median"])
        for other in ("torch default", "torch fused"):
            if other in timings:
                row[f"ours / {other}"] = timings[best]["median"] / timings[other]["median"]
        row["ours / GEMM floor"] = timings[best]["median"] / timings["GEMM floor"]["median"]
        row["ours"] = best
        row["losses"] = losses
        row["max loss difference"] = max(abs(a - b) for values in losses.values()
                                         for a, b in zip(values, losses["fused"]))
        row["timings"] = timings
        rows.append(row)
    return rows


def _combined_sync(torch):
    def sync():
        backend.synchronize()
        torch.cuda.synchronize()
    return sync


# -- report -------------------------------------------------------------------------------------------------
def report(result) -> str:
    lines = [format_environment(result["environment"]), ""]
    if result.get("torch") is not None:
        lines.append(f"PyTorch: {result['torch']}")
    lines.append("1. Adam step on one float32 parameter (microseconds, median of round medians)")
    adam_columns = [("size", "n"), ("0.1 formulas us", "0.1", ".1f"), ("fused us", "fused", ".1f"),
                    ("torch default us", "torch", ".1f"), ("torch fused us", "torch fused", ".1f"),
                    ("fused / 0.1", "fused/0.1", ".3f"), ("fused / torch fused", "fused/torch fused", ".2f"),
                    ("fused % of copy roofline", "% roofline", ".0f")]
    lines.append(format_table(result["adam"], adam_columns))
    lines += ["", "2. MLP 784-256-256-10 training step, float32 (milliseconds; 'ours' = the faster fused variant)"]
    mlp_columns = [("batch", "batch"), ("0.1 formulas ms", "0.1", ".3f"), ("fused ms", "fused", ".3f"),
                   ("fused + flat ms", "flat", ".3f"), ("torch default ms", "torch", ".3f"),
                   ("torch fused ms", "torch fused", ".3f"), ("GEMM floor ms", "GEMM", ".3f"),
                   ("ours / torch default", "ours/torch", ".2f"), ("ours / torch fused", "ours/fused", ".2f"),
                   ("ours / GEMM floor", "ours/GEMM", ".2f")]
    lines.append(format_table(result["mlp"], mlp_columns))
    lines += ["", "Same math: the losses of the first steps from the same weights on the same batches"]
    for row in result["mlp"]:
        lines.append(f"batch {row['batch']} (max difference {row['max loss difference']:.2e}):")
        for label, values in row["losses"].items():
            lines.append(f"  {label:<14} " + "  ".join(f"{v:.6f}" for v in values))
    return "\n".join(lines)


# -- command line -------------------------------------------------------------------------------------------
def _positive(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def _bounded_sizes(limit):
    def parse(text):
        try:
            sizes = parse_sizes(text)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        if max(sizes) > limit:
            raise argparse.ArgumentTypeError(f"expected sizes up to {format_size(limit)}, "
                                             f"got {format_size(max(sizes))}")
        return sizes
    return parse


def _seed(text):
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench optimizers``."""
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu", help="default cpu")
    parser.add_argument("--sizes", type=_bounded_sizes(MAX_SIZE), default=None,
                        help=f"parameter sizes of the Adam step (default {DEFAULTS['sizes']})")
    parser.add_argument("--batch-sizes", type=_bounded_sizes(MAX_BATCH), default=None,
                        help=f"batch sizes of the MLP step (default {DEFAULTS['batch_sizes']})")
    parser.add_argument("--rounds", type=_positive, default=None, help=f"interleaved rounds (default "
                                                                       f"{DEFAULTS['rounds']})")
    parser.add_argument("--repeat", type=_positive, default=None,
                        help=f"timed Adam steps per round (default {DEFAULTS['repeat']})")
    parser.add_argument("--steps", type=_positive, default=None,
                        help=f"timed training steps per round (default {DEFAULTS['steps']})")
    parser.add_argument("--seed", type=_seed, default=DEFAULTS["seed"], help="seed of weights and data")
    parser.add_argument("--torch-threads", type=_positive, default=None,
                        help="torch.set_num_threads for the PyTorch rows (default: PyTorch's own choice); 1 keeps "
                             "its OpenMP workers from waiting on a core another process holds")
    parser.add_argument("--quick", action="store_true", help="small settings (smoke test)")
    parser.add_argument("--json", metavar="PATH", default=None, help="write every measurement as JSON")


def run(args) -> int:
    """Run both measurements from parsed arguments; print the report; return 0 (2 for an unusable option)."""
    if args.json:
        directory = os.path.dirname(os.path.abspath(args.json)) or "."
        if not os.path.isdir(directory) or not os.access(directory, os.W_OK):
            print(f"bench optimizers: --json: directory {directory!r} does not exist or is not writable")
            return 2
    (device, available, reason), = resolve_devices(args.device)
    if not available:
        print(f"bench optimizers: --device {device}: unavailable ({reason})")
        return 2
    torch = torch_or_none()
    if torch is not None and args.torch_threads is not None:
        torch.set_num_threads(args.torch_threads)
    settings = QUICK if args.quick else DEFAULTS
    sizes = args.sizes or parse_sizes(settings["sizes"])
    batch_sizes = args.batch_sizes or parse_sizes(settings["batch_sizes"])
    rounds = args.rounds or settings["rounds"]
    result = {
        "environment": environment_info(),
        "torch": None if torch is None else f"{torch.__version__}, {torch.get_num_threads()} threads",
        "torch_unavailable": torch_unavailable_reason(),
        "settings": {"device": device, "rounds": rounds, "learning_rate": LEARNING_RATE, "epsilon": EPSILON},
        "adam": adam_step_times(sizes, device, rounds, args.repeat or settings["repeat"], args.seed),
        "mlp": mlp_step_times(batch_sizes, device, rounds, args.steps or settings["steps"], args.seed),
    }
    print(report(result))
    if args.json:
        print(f"\njson: {write_json(args.json, result)}")
    return 0


def main(argv=None) -> int:
    """``python -m bench.optimizers ...`` (same options as ``python -m bench optimizers``)."""
    parser = argparse.ArgumentParser(prog="python -m bench optimizers", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
