"""``python -m bench models``: whole models trained by ``fit`` against a PyTorch twin of each (issue 15).

Models, each with a PyTorch twin that starts from the same weights and sees
the same batches in the same order (the losses of the first steps are
printed side by side, the proof that both compute the same thing):

* ``cnn``: the digits CNN of ``examples/digits_cnn.py`` (Adam, batch 32) on
  scikit-learn's 8x8 digits; PyTorch in NCHW and in channels_last;
* ``mlp``: the MLP 784-256-256-10 (Adam, batches 32, 128, 512) against
  PyTorch's default and fused Adam; camadas with its fused Adam, per array
  and on flat buffers (:func:`optimizers.flatten_parameters`);
* ``deep``: the deep narrow MLP 8 x 64 (momentum SGD, batch 32);
* ``per-call``: one activation (ReLU) and one Dense(64, 64), forward and
  backward, at batch 1, 32 and 1024: the public call, the call inside
  :func:`layers.base.checks_done` (what ``fit`` runs after its first step),
  PyTorch's functional ops and plain NumPy.

Times are seconds per training step through ``fit`` (several epochs per
call, so its one-time checks are included and amortised), medians of
rounds in which every variant runs in turn. The floor of an MLP step is its
matrix products alone (NumPy/BLAS GEMM, the same shapes), measured in the
same rounds; the floor of a per-call row is plain NumPy.
"""

from __future__ import annotations

import argparse
import itertools
import time

import numpy as np

from . import options
from .common import environment_info, format_environment, format_table, torch_or_none, write_json
from .timing import summarize_times

SECTIONS = ("cnn", "mlp", "deep", "per-call")
DEFAULTS = {"batch_sizes": [32, 128, 512], "rounds": 5, "epochs": 2, "steps": 20, "per_call_batches": [1, 32, 1024],
            "calls": 2000}
QUICK = {"batch_sizes": [8], "rounds": 1, "epochs": 1, "steps": 2, "per_call_batches": [1], "calls": 20}
#: Losses printed side by side per model (the first steps of one epoch from fresh twins).
PROOF_STEPS = 5
MLP_SIZES = (784, 256, 256, 10)
DEEP_WIDTH, DEEP_DEPTH, DEEP_CLASSES = 64, 8, 10
CNN_LEARNING_RATE, MLP_LEARNING_RATE, DEEP_LEARNING_RATE, MOMENTUM, EPSILON = 3e-3, 1e-3, 1e-2, 0.9, 1e-8


# -- the models and their twins ------------------------------------------------------------------------------
def digits_cnn(seed: int):
    """The CNN of ``examples/digits_cnn.py`` (its ``build_model``), NHWC (8, 8, 1) -> 10 logits."""
    from layers import Convolution2D, Dense, Flatten, MaxPooling2D, Sequential, get_activation

    return Sequential([
        Convolution2D(1, 16, 3, padding=1, seed=seed), get_activation("relu"), MaxPooling2D(pool_size=(2, 2)),
        Convolution2D(16, 32, 3, padding=1, seed=seed + 1), get_activation("relu"), MaxPooling2D(pool_size=(2, 2)),
        Flatten(), Dense(128, 64, weight_init="he_normal", seed=seed + 2), get_activation("relu"),
        Dense(64, 10, weight_init="xavier_uniform", seed=seed + 3),
    ])


def mlp(sizes, seed: int, init="xavier_uniform"):
    """Dense -> ReLU -> ... -> Dense (logits) through ``sizes``."""
    from layers import Dense, ReLU, Sequential

    stack: list = []
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        last = i == len(sizes) - 2
        stack.append(Dense(a, b, weight_init="xavier_uniform" if last else init, seed=seed + i))
        if not last:
            stack.append(ReLU())
    return Sequential(stack)


def torch_twin(model, channels_last: bool = False):
    """A ``torch.nn.Sequential`` computing what ``model`` computes, from the same weights.

    Dense -> Linear (W transposed); Convolution2D -> Conv2d (the same cross-correlation, kernels
    (F, C, kh, kw)); the Flatten of NHWC maps is a permutation to NHWC then a flatten, so the
    Dense after it sees the features in camadas's order. Inputs are NCHW (channels_last: NCHW
    tensors in the channels-last memory format).
    """
    torch = torch_or_none()
    nn = torch.nn
    modules = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "Dense":
            linear = nn.Linear(layer.input_size, layer.output_size)
            with torch.no_grad():
                linear.weight.copy_(torch.from_numpy(np.ascontiguousarray(layer.W.T)))
                linear.bias.copy_(torch.from_numpy(layer.b))
            modules.append(linear)
        elif kind == "Convolution2D":
            filters, channels, kh, kw = layer.kernels.shape
            conv = nn.Conv2d(channels, filters, (kh, kw), stride=layer.stride, padding=layer.padding)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(layer.kernels))
                conv.bias.copy_(torch.from_numpy(layer.biases.reshape(-1)))
            modules.append(conv)
        elif kind == "ReLU":
            modules.append(nn.ReLU())
        elif kind == "MaxPooling2D":
            modules.append(nn.MaxPool2d(layer.pool_size, layer.stride))
        elif kind == "Flatten":
            modules.append(_NHWCFlatten())
        else:  # pragma: no cover - the models above use only these
            raise TypeError(f"torch_twin: no twin for {kind}")
    twin = nn.Sequential(*modules)
    return twin.to(memory_format=torch.channels_last) if channels_last else twin


def _NHWCFlatten():
    """A module flattening NCHW maps in NHWC order (what camadas's Flatten sees)."""
    torch = torch_or_none()

    class NHWCFlatten(torch.nn.Module):
        def forward(self, x):
            return x.permute(0, 2, 3, 1).flatten(1)

    return NHWCFlatten()


# -- training through fit and through the PyTorch loop ---------------------------------------------------------
def _loss_recorder():
    """A fit callback keeping every batch's loss in ``.values``."""
    from layers.callbacks import Callback

    class Recorder(Callback):
        def __init__(self):
            self.values = []

        def on_batch_end(self, batch, logs=None):
            self.values.append(float(logs["loss"]))

    return Recorder()


def _ours(model, optimizer, X, y, batch, epochs):
    """A function training ``epochs`` epochs through ``fit``; it returns the batch losses."""
    from layers import SparseCategoricalCrossEntropy

    loss = SparseCategoricalCrossEntropy(from_logits=True)

    def run():
        recorder = _loss_recorder()
        model.fit(X, y, loss=loss, optimizer=optimizer, epochs=epochs, batch_size=batch, shuffle=False, verbose=0,
                  metrics=(), callbacks=[recorder])
        return recorder.values
    return run


def _theirs(twin, optimizer, X, y, batch, epochs, channels_last=False):
    """The same for the PyTorch twin: zero_grad, forward, cross-entropy, backward, step, per batch."""
    torch = torch_or_none()
    loss = torch.nn.CrossEntropyLoss()
    inputs = torch.from_numpy(X if X.ndim == 2 else np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
    if channels_last:
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    targets = torch.from_numpy(y)
    batches = [(inputs[s:s + batch], targets[s:s + batch]) for s in range(0, len(X), batch)]

    def run():
        values = []
        for _ in range(epochs):
            for xb, yb in batches:
                optimizer.zero_grad(set_to_none=True)
                value = loss(twin(xb), yb)
                value.backward()
                optimizer.step()
                values.append(value.detach())
        return [float(v) for v in values]
    return run


def _gemm_floor(sizes, batch, seed):
    """One step's matrix products alone: a forward per layer, dE/dW per layer, dE/dx for all but the first."""
    rng = np.random.default_rng(seed)
    acts = [rng.standard_normal((batch, d)).astype(np.float32) for d in sizes]
    weights = [rng.standard_normal((a, b)).astype(np.float32) for a, b in itertools.pairwise(sizes)]

    def products():
        for a, W in zip(acts, weights):
            a @ W
        for k, W in enumerate(weights):
            acts[k].T @ acts[k + 1]
            if k:
                acts[k + 1] @ W.T
    return products


def _interleaved(functions: dict, rounds: int, per_call: dict) -> dict:
    """{name: summary of seconds per unit}; every function runs once per round, in turn (after one warm-up)."""
    seconds = {name: [] for name in functions}
    for fn in functions.values():
        fn()   # warm-up: compiles, fills caches, creates optimizer state
    for _ in range(rounds):
        for name, fn in functions.items():
            start = time.perf_counter()
            fn()
            seconds[name].append((time.perf_counter() - start) / per_call[name])
    return {name: summarize_times(values) for name, values in seconds.items()}


def _model_row(model_name, build_model, make_ours, make_theirs, torch_kinds, X, y, batch, floor, rounds, epochs):
    """Time camadas (per-array and flat parameters) and the PyTorch twins on the same batches; add the ratios
    to the fastest twin and to the floor, and the losses of the first steps of each (the proof)."""
    steps = -(-len(X) // batch)
    functions = {name: build() for name, build in
                 _variants(build_model, make_ours, make_theirs, X, y, batch, epochs, torch_kinds).items()}
    if floor is not None:   # as many steps per round as the models, so a round's start weighs the same
        functions["GEMM floor"] = _repeat(floor, epochs * steps)
    per_call = dict.fromkeys(functions, epochs * steps)
    timings = _interleaved(functions, rounds, per_call)
    ours = min((n for n in timings if n.startswith("camadas")), key=lambda n: timings[n]["median"])
    best = timings[ours]["median"]
    row = {"model": model_name, "batch": batch, "ours": ours, "ours ms": best * 1e3, "timings": timings}
    torch_names = [n for n in timings if n.startswith("torch")]
    for name in torch_names:
        row[f"ours / {name}"] = best / timings[name]["median"]
    if torch_names:
        row["fastest torch"] = min(torch_names, key=lambda n: timings[n]["median"])
        row["ours / fastest torch"] = best / timings[row["fastest torch"]]["median"]
    if floor is not None:
        row["ours / GEMM floor"] = best / timings["GEMM floor"]["median"]
    proof = _variants(build_model, make_ours, make_theirs, X, y, batch, 1, torch_kinds)
    losses = {name: build()()[:PROOF_STEPS] for name, build in proof.items()}
    row["losses"] = losses
    row["max loss difference"] = max(abs(a - b) for values in losses.values() for a, b in zip(values, losses[ours]))
    return row


# -- the sections ---------------------------------------------------------------------------------------------
def _variants(build_model, make_ours, make_theirs, X, y, batch, epochs, torch_kinds):
    """{name: builder of a training function} for camadas and its PyTorch twins, from one set of weights."""
    from optimizers import flatten_parameters

    reference = build_model()

    def ours(flat):
        def build():
            model = build_model()
            if flat:
                flatten_parameters(model)
            return _ours(model, make_ours(), X, y, batch, epochs)
        return build

    def theirs(optimizer_options, channels_last):
        def build():
            twin = torch_twin(reference, channels_last)
            optimizer = make_theirs(twin.parameters(), **optimizer_options)
            return _theirs(twin, optimizer, X, y, batch, epochs, channels_last)
        return build

    builders = {"camadas": ours(False), "camadas flat": ours(True)}
    if torch_or_none() is not None:
        builders.update({name: theirs(*kind) for name, kind in torch_kinds.items()})
    return builders


def mlp_rows(batch_sizes, rounds, epochs, steps, seed) -> list:
    """One row per batch size: the MLP 784-256-256-10 with Adam."""
    from optimizers import Adam

    torch = torch_or_none()
    kinds = {"torch default Adam": ({}, False), "torch fused Adam": ({"fused": True}, False)}

    def theirs(params, **kw):
        return torch.optim.Adam(params, lr=MLP_LEARNING_RATE, eps=EPSILON, **kw)

    rows = []
    for batch in batch_sizes:
        rng = np.random.default_rng(seed + batch)
        X = rng.standard_normal((batch * steps, MLP_SIZES[0])).astype(np.float32)
        y = rng.integers(0, MLP_SIZES[-1], batch * steps)
        rows.append(_model_row(f"MLP 784-256-256-10, Adam, batch {batch}", lambda: mlp(MLP_SIZES, seed),
                               lambda: Adam(MLP_LEARNING_RATE, epsilon=EPSILON), theirs, kinds, X, y, batch,
                               _gemm_floor(MLP_SIZES, batch, seed), rounds, epochs))
    return rows


def deep_rows(rounds, epochs, steps, seed, batch=32) -> list:
    """The deep narrow MLP 8 x 64 (He init) with momentum SGD at batch 32."""
    from optimizers import Momentum

    torch = torch_or_none()
    sizes = (DEEP_WIDTH,) * (DEEP_DEPTH + 1) + (DEEP_CLASSES,)
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((batch * steps, DEEP_WIDTH)).astype(np.float32)
    y = rng.integers(0, DEEP_CLASSES, batch * steps)

    def theirs(params, **kw):
        return torch.optim.SGD(params, lr=DEEP_LEARNING_RATE, **kw)

    return [_model_row(f"deep MLP {DEEP_DEPTH} x {DEEP_WIDTH}, momentum SGD, batch {batch}",
                       lambda: mlp(sizes, seed, init="he_normal"), lambda: Momentum(DEEP_LEARNING_RATE, MOMENTUM),
                       theirs, {"torch SGD momentum": ({"momentum": MOMENTUM}, False)}, X, y, batch,
                       _gemm_floor(sizes, batch, seed), rounds, epochs)]


def digits_data(seed: int, quick: bool):
    """scikit-learn's digits as NHWC float32 in [0, 1] and labels (a generated set of that shape without it)."""
    try:
        from sklearn.datasets import load_digits

        digits = load_digits()
        X = (digits.images / 16.0).reshape(-1, 8, 8, 1).astype(np.float32)
        y = digits.target.astype(np.int64)
        source = "scikit-learn load_digits"
    except ImportError:
        rng = np.random.default_rng(seed)
        X = rng.random((1797, 8, 8, 1)).astype(np.float32)
        y = rng.integers(0, 10, 1797)
        source = "generated (scikit-learn not installed)"
    order = np.random.default_rng(seed).permutation(len(X))
    n = 64 if quick else 1344   # 42 batches of 32, about the example's 75 % training split
    return X[order[:n]], y[order[:n]], source


def cnn_rows(rounds, epochs, seed, quick, batch=32) -> list:
    """The digits CNN with Adam at batch 32 against PyTorch in NCHW and in channels_last."""
    from optimizers import Adam

    torch = torch_or_none()
    X, y, source = digits_data(seed, quick)

    def theirs(params, **kw):
        return torch.optim.Adam(params, lr=CNN_LEARNING_RATE, eps=EPSILON, **kw)

    row = _model_row(f"digits CNN, Adam, batch {batch}", lambda: digits_cnn(seed),
                     lambda: Adam(CNN_LEARNING_RATE, epsilon=EPSILON), theirs,
                     {"torch NCHW": ({}, False), "torch channels_last": ({}, True)}, X, y, batch, None, rounds, epochs)
    steps = -(-len(X) // batch)
    row.update({"data": source, "steps per epoch": steps, "ours s/epoch": row["ours ms"] * steps / 1e3})
    return [row]


# -- per call ------------------------------------------------------------------------------------------------
def per_call_rows(batches, calls, rounds, seed) -> list:
    """Forward + backward of one ReLU and one Dense(64, 64), microseconds per call, at each batch size."""
    import layers
    from layers.base import checks_done

    torch = torch_or_none()
    rows = []
    for kind, batch in itertools.product(("ReLU", "Dense(64, 64)"), batches):
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((batch, 64)).astype(np.float32)
        g = rng.standard_normal((batch, 64)).astype(np.float32)
        layer = layers.ReLU() if kind == "ReLU" else layers.Dense(64, 64, seed=seed)

        def public(layer=layer, x=x, g=g):
            layer.forward(x)
            layer.backward(g)

        def trusted(public=public):
            with checks_done():
                for _ in range(calls):
                    public()

        functions = {"camadas public": _repeat(public, calls), "camadas checks_done": trusted}
        functions["NumPy"] = _repeat(_numpy_ops(kind, x, g, layer), calls)
        if torch is not None:
            functions["torch functional"] = _repeat(_torch_ops(kind, x, g, layer), calls)
        timings = _interleaved(functions, rounds, dict.fromkeys(functions, calls))
        row = {"layer": kind, "batch": batch, "timings": timings}
        for name, timing in timings.items():
            row[f"{name} us"] = timing["median"] * 1e6
        fast = timings["camadas checks_done"]["median"]
        row["overhead us"] = (fast - timings["NumPy"]["median"]) * 1e6
        row["fit path / NumPy"] = fast / timings["NumPy"]["median"]
        if torch is not None:
            row["fit path / torch"] = fast / timings["torch functional"]["median"]
        rows.append(row)
    return rows


def _repeat(fn, calls):
    def run():
        for _ in range(calls):
            fn()
    return run


def _numpy_ops(kind, x, g, layer):
    if kind == "ReLU":
        def relu():
            y = np.maximum(x, 0)
            g * (y > 0)
        return relu
    W, b = layer.W, layer.b

    def dense():
        y = x @ W
        y += b
        g @ W.T
        np.dot(x.T, g) if len(x) == 1 else x.T @ g
        g.sum(axis=0)
    return dense


def _torch_ops(kind, x, g, layer):
    torch = torch_or_none()
    tx, tg = torch.from_numpy(x), torch.from_numpy(g)
    if kind == "ReLU":
        def relu():
            y = torch.relu(tx)
            torch.ops.aten.threshold_backward(tg, y, 0)
        return relu
    W, b = torch.from_numpy(np.ascontiguousarray(layer.W.T)), torch.from_numpy(layer.b)

    def dense():
        torch.nn.functional.linear(tx, W, b)
        tg @ W
        tg.T @ tx
        tg.sum(0)
    return dense


# -- report --------------------------------------------------------------------------------------------------
def report(result) -> str:
    lines = [format_environment(result["environment"]), ""]
    lines.append(f"PyTorch: {result['torch'] or 'not installed (' + str(result.get('torch_unavailable')) + ')'}")
    lines.append(f"Machine note: {result['note']}")
    columns = [("model", "model"), ("ours", "camadas variant"), ("ours ms", "ms/step", ".3f"),
               ("fastest torch", "fastest torch"), ("ours / fastest torch", "ours/torch", ".2f"),
               ("ours / GEMM floor", "ours/GEMM", ".2f")]
    models = result["cnn"] + result["mlp"] + result["deep"]
    if models:
        lines += ["", "Training steps through fit (milliseconds per step, median of interleaved rounds)"]
        lines.append(format_table(models, columns))
        lines += ["", "Every variant (ms/step)"]
        for row in models:
            lines.append(f"  {row['model']}: " + ", ".join(f"{name} {t['median'] * 1e3:.3f}"
                                                         for name, t in row["timings"].items()))
        lines += ["", "Same math: the losses of the first steps, from the same weights on the same batches"]
        for row in models:
            lines.append(f"{row['model']} (max difference {row['max loss difference']:.2e}):")
            for name, values in row["losses"].items():
                lines.append(f"  {name:<22} " + "  ".join(f"{v:.6f}" for v in values))
    if result["per-call"]:
        lines += ["", "One layer, forward + backward (microseconds per call, median of interleaved rounds); "
                      "'checks_done' is the call fit makes after its first step"]
        lines.append(format_table(result["per-call"], [
            ("layer", "layer"), ("batch", "batch"), ("camadas public us", "public", ".2f"),
            ("camadas checks_done us", "checks_done", ".2f"), ("torch functional us", "torch", ".2f"),
            ("NumPy us", "NumPy", ".2f"), ("overhead us", "over NumPy", ".2f"),
            ("fit path / torch", "/torch", ".2f"), ("fit path / NumPy", "/NumPy", ".2f")]))
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------------------------
def _sections(text):
    chosen = [s.strip() for s in text.split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SECTIONS]
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(SECTIONS)}, got {text!r}")
    return chosen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench models``."""
    parser.add_argument("--sections", type=_sections, default=list(SECTIONS),
                        help=f"which comparisons to run (default all: {','.join(SECTIONS)})")
    parser.add_argument("--batch-sizes", type=options.sizes, default=None,
                        help="MLP batch sizes (default 32,128,512)")
    parser.add_argument("--rounds", type=options.positive_int, default=None, help="interleaved rounds (default 5)")
    parser.add_argument("--epochs", type=options.positive_int, default=None,
                        help="epochs per fit call in a round (default 2)")
    parser.add_argument("--steps", type=options.positive_int, default=None,
                        help="MLP batches per epoch (default 20)")
    parser.add_argument("--calls", type=options.positive_int, default=None,
                        help="calls per round in the per-call table (default 2000)")
    parser.add_argument("--seed", type=options.seed, default=0, help="seed of weights and data")
    parser.add_argument("--threads", type=options.positive_int, default=None,
                        help="threads of both libraries (camadas's BLAS and Numba pools through "
                             "backend.host.limit_threads, torch.set_num_threads); default: each library's own "
                             "choice. 1 gives steady figures on a shared machine")
    parser.add_argument("--note", default="shared machine: other processes were running; compare ratios",
                        help="a sentence about the machine's state, kept in the JSON")
    parser.add_argument("--quick", action="store_true", help="tiny settings (smoke test; figures meaningless)")
    parser.add_argument("--json", metavar="PATH", type=options.output_file, default=None,
                        help="write every measurement as JSON")


def run(args) -> int:
    """Run the chosen sections; print the report; return 0."""
    torch = torch_or_none()
    if args.threads is None:
        return _run(args, torch)
    from backend.host import limit_threads

    if torch is not None:
        torch.set_num_threads(args.threads)
    with limit_threads(args.threads):
        return _run(args, torch)


def _run(args, torch) -> int:
    settings = QUICK if args.quick else DEFAULTS
    rounds = args.rounds or settings["rounds"]
    epochs = args.epochs or settings["epochs"]
    steps = args.steps or settings["steps"]
    chosen = set(args.sections)
    result = {
        "benchmark": "models",
        "environment": environment_info(),
        "torch": None if torch is None else f"{torch.__version__}, {torch.get_num_threads()} threads",
        "torch_unavailable": None if torch is not None else "pip install torch (CPU) for the twins",
        "note": args.note,
        "settings": {"rounds": rounds, "epochs": epochs, "steps": steps, "seed": args.seed, "quick": args.quick,
                     "sections": sorted(chosen), "threads": args.threads},
        "cnn": cnn_rows(rounds, epochs, args.seed, args.quick) if "cnn" in chosen else [],
        "mlp": mlp_rows(args.batch_sizes or settings["batch_sizes"], rounds, epochs, steps, args.seed)
        if "mlp" in chosen else [],
        "deep": deep_rows(rounds, epochs, steps, args.seed) if "deep" in chosen else [],
        "per-call": per_call_rows(settings["per_call_batches"], args.calls or settings["calls"], rounds, args.seed)
        if "per-call" in chosen else [],
    }
    print(report(result))
    if args.json:
        print(f"\njson: {write_json(args.json, result)}")
    return 0
