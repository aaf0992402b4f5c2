"""``python -m bench training``: how the activations react in training (book 7.6, 7.8, 8.3, 8.6).

The second half of the book's performance comparison (sections 7.9 and 8.7
compare speed; this compares behaviour). One deep MLP, the same for every
activation::

    64 inputs -> [Dense(64) -> activation] x depth (default 8) -> Dense(10) logits

is trained on a fixed data set, once per activation, with the activation's
conventional initialization and otherwise identical settings (seed, data
order, optimizer, learning rate, batch size, epochs):

==============================  ======================  ==========================
family (book chapter)           activations             hidden-layer init
==============================  ======================  ==========================
sigmoidal (7)                   sigmoid, tanh, ...      Xavier/Glorot uniform
rectifier (8)                   relu, leaky_relu, ...   He normal (SELU: LeCun normal)
modern (9)                      gelu, silu, ...         He normal
==============================  ======================  ==========================

The output layer is Xavier uniform for every run. Loss: softmax cross-entropy
on the logits (section 11.3). Optimizer: SGD with momentum 0.9 (eq. 6.14),
learning rate 0.01, batches of 32 (``--optimizer``/``--learning-rate`` change
it for every activation alike).

Data: scikit-learn's handwritten digits (1,797 8x8 images, no download),
stratified 25 % test split with ``random_state=0`` (the split of
``examples/digits_cnn.py``), features standardized with the training set's
mean and standard deviation. Without scikit-learn, a generated data set of the
same shape (10 Gaussian classes in 64 dimensions, seeded) is used and the
report says so.

Reported per activation
-----------------------
* final train and test accuracy (evaluation mode, after the last epoch);
* epochs to 90 %: the first epoch (counted from 1) after which the *test*
  accuracy is at least 90 % ("-" if never);
* the gradient norm of every Dense layer, ``sqrt(sum g^2)`` over its weights
  and biases, of the mean loss over the whole training set (training mode),
  at initialization and after the first epoch: vanishing gradients show as
  norms that shrink from the output layer towards the input (section 7.8);
* dead units (section 8.3): the fraction of hidden units whose derivative
  f'(z) is 0 for every training sample after training (evaluation mode); for
  ReLU this is a unit whose output is 0 for every sample, the "dying ReLU";
  for the hard sigmoid/tanh it is a unit saturated on every sample;
* the largest gradient norm seen (section 8.6): the largest norm of the whole
  gradient (every parameter, PReLU's slopes included) over every training
  batch of every epoch (before any clipping); per Dense layer in the JSON;
* time per epoch on every device asked for: the median over epochs 2..N of the
  wall time of the training batches (validation excluded, GPU synchronized,
  the diagnostics' own bookkeeping subtracted); the first epoch, which
  includes JIT compilation or cache loading, is in the JSON only.

On the GPU every model starts from the CPU model's initial weights (built on
the CPU, then moved), so CPU and GPU runs differ only by floating-point
rounding and, for RReLU/NoisyReLU, by the device's random draws.

Deterministic on the CPU for a given ``--seed`` (timings aside): the weights,
the data order and the random activations are seeded.

Options: ``--device cpu|gpu|all`` (default all: every device, a GPU that does
not answer is listed as unavailable with the reason), ``--epochs``,
``--activations relu,tanh,...``, ``--seed``, ``--depth``, ``--width``,
``--quick`` (3 epochs, for tests), ``--json PATH``, ``--plot DIR``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import numpy as np

import backend
from bench import options
from bench.common import environment_info, format_environment, format_table, resolve_devices, write_json

#: Activations with no place in a hidden layer of this comparison.
EXCLUDED = ("softmax",)

DEFAULTS = {
    "depth": 8,
    "width": 64,
    "epochs": 30,
    "batch_size": 32,
    "optimizer": "momentum",
    "learning_rate": 0.01,
    "seed": 0,
}
QUICK_EPOCHS = 3
TARGET_ACCURACY = 0.90


# --------------------------------------------------------------------------- #
# What is compared
# --------------------------------------------------------------------------- #
def activation_families() -> dict:
    """``{family: [activation names]}`` from :data:`kernels.activations.FAMILIES`, softmax left out."""
    from kernels.activations import FAMILIES

    return {family: [n for n in names if n not in EXCLUDED] for family, names in FAMILIES.items()}


def family_of(name: str) -> str:
    for family, names in activation_families().items():
        if name in names:
            return family
    raise ValueError(f"--activations: unknown activation {name!r}; expected one of "
                     f"{', '.join(n for names in activation_families().values() for n in names)}")


def conventional_init(name: str) -> str:
    """Xavier for sigmoidal units, He for rectifiers and modern units, LeCun for SELU."""
    if name == "selu":
        return "lecun_normal"
    return "xavier_uniform" if family_of(name) == "sigmoidal" else "he_normal"


def load_data(seed: int = 0):
    """``(X_train, X_test, y_train, y_test, description)``: digits, or a generated stand-in.

    Features are standardized with the training set's statistics; float64
    NumPy arrays and int64 labels.
    """
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError:
        X_train, X_test, y_train, y_test = _generated_data(seed)
        description = ("generated: 10 Gaussian classes in 64 dimensions, 1,797 samples, 25 % test "
                       "(scikit-learn is not installed, so the digits are unavailable)")
    else:
        digits = load_digits()
        X_train, X_test, y_train, y_test = train_test_split(
            digits.data.astype(np.float64), digits.target.astype(np.int64), test_size=0.25,
            stratify=digits.target, random_state=0)
        description = "digits (scikit-learn load_digits, 8x8), stratified 25 % test split, random_state=0"
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std == 0] = 1.0
    return (X_train - mean) / std, (X_test - mean) / std, y_train, y_test, description


def _generated_data(seed: int):
    """Ten Gaussian classes in 64 dimensions (overlapping, so accuracy is not trivially 100 %)."""
    rng = np.random.default_rng(seed)
    centers = rng.standard_normal((10, 64)) * 0.6
    y = np.repeat(np.arange(10), 180)[:1797]
    X = centers[y] + rng.standard_normal((len(y), 64))
    order = rng.permutation(len(y))
    X, y = X[order], y[order].astype(np.int64)
    test = np.zeros(len(y), dtype=bool)
    for c in range(10):  # stratified 25 % test split
        idx = np.flatnonzero(y == c)
        test[idx[: len(idx) // 4]] = True
    return X[~test], X[test], y[~test], y[test]


def build_model(activation: str, n_inputs: int, n_classes: int, depth: int, width: int, seed: int):
    """The MLP of the module docstring, on the CPU, seeded (layer i uses seed + i)."""
    from layers import Dense, Sequential, get_activation

    init = conventional_init(activation)
    layers, size = [], n_inputs
    for i in range(depth):
        layers.append(Dense(size, width, weight_init=init, seed=seed + i))
        layers.append(_make_activation(get_activation, activation, seed + 1000 + i))
        size = width
    layers.append(Dense(size, n_classes, weight_init="xavier_uniform", seed=seed + depth))
    return Sequential(layers)


def _make_activation(get_activation, name: str, seed: int):
    """``get_activation(name)``, seeded when the activation draws random numbers (RReLU, NoisyReLU)."""
    try:
        return get_activation(name, seed=seed)
    except TypeError:  # activations without randomness take no seed
        return get_activation(name)


def _make_optimizer(name: str, learning_rate: float):
    from optimizers import get_optimizer

    return get_optimizer(name, learning_rate=learning_rate)


# --------------------------------------------------------------------------- #
# Diagnostics
# --------------------------------------------------------------------------- #
def _dense_positions(labels) -> list:
    """Positions in ``labels`` (:func:`layers.training.diagnostics.parameter_layers`) of the Dense layers reported."""
    return [k for k, label in enumerate(labels) if label.endswith(":Dense")]


def layer_gradient_norms(model, X, y) -> list:
    """Gradient norm of every Dense layer for the mean loss over ``(X, y)``, in training mode.

    ``X``, ``y`` are on the model's device; returns Python floats, input layer first
    (:func:`layers.training.diagnostics.layer_gradient_norms`).
    """
    from layers.losses import SparseCategoricalCrossEntropy
    from layers.training import diagnostics

    labels, norms = diagnostics.layer_gradient_norms(model, X, y, SparseCategoricalCrossEntropy(from_logits=True))
    return [norms[k] for k in _dense_positions(labels)]


def dead_unit_fractions(model, X) -> list:
    """Per hidden activation layer: fraction of units with f'(z) = 0 on every sample of ``X`` (eval mode).

    :func:`layers.training.diagnostics.dead_unit_fractions` over the layers that are not Dense
    (PReLU, with its slope, included).
    """
    from layers import Dense
    from layers.training import diagnostics

    return diagnostics.dead_unit_fractions(model, X, select=lambda layer: not isinstance(layer, Dense))[1]


def _probe_callback():
    """A Callback that times the training batches of every epoch and records gradient norms per batch."""
    from layers.callbacks import Callback
    from layers.training.diagnostics import gradient_norms_by_layer, parameter_layers

    class TrainingProbe(Callback):
        def __init__(self):
            self.epoch_seconds = []
            self.max_global_sq = None
            self.max_layer_norm = None
            self.after_first_epoch = None
            self.probe_data = None  # (X, y) on the device, set by the caller

        def on_train_begin(self, logs=None):
            self.labels, self.layer_of_param = parameter_layers(self.model)

        def on_epoch_begin(self, epoch, logs=None):
            backend.synchronize()
            self._overhead = self._overhead_before_last = 0.0
            self._start = self._last = time.perf_counter()

        def on_batch_end(self, batch, logs=None):
            backend.synchronize()
            stamp = time.perf_counter()
            self._last, self._overhead_before_last = stamp, self._overhead
            norms = gradient_norms_by_layer(self.model.grads, self.layer_of_param, len(self.labels))
            xp = backend.get_array_module(norms[0])
            layer_norms = xp.stack(norms)
            total = xp.square(layer_norms).sum()
            if self.max_global_sq is None:
                self.max_global_sq, self.max_layer_norm = total, layer_norms
            else:
                self.max_global_sq = xp.maximum(self.max_global_sq, total)
                self.max_layer_norm = xp.maximum(self.max_layer_norm, layer_norms)
            self._overhead += time.perf_counter() - stamp

        def on_epoch_end(self, epoch, logs=None):
            self.epoch_seconds.append(self._last - self._start - self._overhead_before_last)
            if epoch == 0 and self.probe_data is not None:
                self.after_first_epoch = layer_gradient_norms(self.model, *self.probe_data)

    return TrainingProbe()


# --------------------------------------------------------------------------- #
# One run, all runs
# --------------------------------------------------------------------------- #
def train_one(activation: str, data, device: str, *, depth: int, width: int, epochs: int, batch_size: int,
              optimizer: str, learning_rate: float, seed: int) -> dict:
    """Train the MLP with ``activation`` on ``device``; return every measurement of the module docstring."""
    X_train, X_test, y_train, y_test = data[:4]
    dtype = np.float32
    with backend.use_device("cpu"):
        model = build_model(activation, X_train.shape[1], int(y_train.max()) + 1, depth, width, seed)
        model.astype(dtype)
    with backend.use_device(device) as dev:
        model.to(dev)
        Xtr, Xte = (backend.to_device(a.astype(dtype), dev) for a in (X_train, X_test))
        ytr, yte = (backend.to_device(a, dev) for a in (y_train, y_test))
        grad_init = layer_gradient_norms(model, Xtr, ytr)
        dead_init = dead_unit_fractions(model, Xtr)
        probe = _probe_callback()
        probe.probe_data = (Xtr, ytr)
        from layers.losses import SparseCategoricalCrossEntropy

        history = model.fit(Xtr, ytr, loss=SparseCategoricalCrossEntropy(from_logits=True),
                            optimizer=_make_optimizer(optimizer, learning_rate), epochs=epochs,
                            batch_size=batch_size, validation_data=(Xte, yte), callbacks=[probe],
                            shuffle=True, seed=seed, verbose=0)
        train_eval = model.evaluate(Xtr, ytr)
        test_eval = model.evaluate(Xte, yte)
        dead_final = dead_unit_fractions(model, Xtr)
        val_acc = [float(a) for a in history.history.get("val_accuracy", [])]
        reached = [i + 1 for i, a in enumerate(val_acc) if a >= TARGET_ACCURACY]
        later = probe.epoch_seconds[1:] or probe.epoch_seconds
        max_norms = backend.to_numpy(probe.max_layer_norm)
        max_layer = [float(max_norms[k]) for k in _dense_positions(probe.labels)]
        return {
            "activation": activation,
            "family": family_of(activation),
            "init": conventional_init(activation),
            "device": str(dev),
            "train_accuracy": float(train_eval["accuracy"]),
            "test_accuracy": float(test_eval["accuracy"]),
            "train_loss": float(train_eval["loss"]),
            "test_loss": float(test_eval["loss"]),
            "epochs_to_90": reached[0] if reached else None,
            "grad_norms_init": grad_init,
            "grad_norms_epoch1": probe.after_first_epoch,
            "dead_fraction_init": _mean(dead_init),
            "dead_fraction": _mean(dead_final),
            "dead_fraction_per_layer": dead_final,
            "max_grad_norm": float(np.sqrt(float(probe.max_global_sq))),
            "max_grad_norm_per_layer": max_layer,
            "seconds_per_epoch": statistics.median(later),
            "first_epoch_seconds": probe.epoch_seconds[0],
            "epoch_seconds": probe.epoch_seconds,
            "loss": [float(v) for v in history.history["loss"]],
            "val_loss": [float(v) for v in history.history.get("val_loss", [])],
            "val_accuracy": val_acc,
            "accuracy": [float(v) for v in history.history.get("accuracy", [])],
        }


def _mean(values):
    return float(np.mean(values)) if len(values) else None


def compare(activations=None, devices=("cpu",), *, epochs=None, seed=0, depth=None, width=None,
            batch_size=None, optimizer=None, learning_rate=None, quick=False, log=print) -> dict:
    """Run the comparison; return the JSON payload (see :func:`run`).

    Parameters
    ----------
    activations : list of str, optional
        Default: every sigmoidal, rectifier and modern activation.
    devices : list of str
        ``"cpu"`` and/or ``"gpu"``; a GPU that does not answer is recorded as
        unavailable with the reason.
    """
    config = dict(DEFAULTS)
    config.update({k: v for k, v in dict(depth=depth, width=width, batch_size=batch_size, optimizer=optimizer,
                                         learning_rate=learning_rate).items() if v is not None})
    config["epochs"] = epochs if epochs is not None else (QUICK_EPOCHS if quick else DEFAULTS["epochs"])
    config["seed"] = seed
    if activations is None:
        activations = [n for names in activation_families().values() for n in names]
    for name in activations:
        family_of(name)  # unknown names fail before any training
    *data, description = load_data(seed)
    config.update(activations=list(activations), data=description, train_samples=len(data[0]),
                  test_samples=len(data[1]), target_accuracy=TARGET_ACCURACY)
    result = {"benchmark": "training", "config": config, "environment": environment_info(), "devices": {}}
    for name, available, reason in resolve_devices_list(devices):
        if not available:
            result["devices"][name] = {"available": False, "reason": reason, "runs": {}}
            continue
        runs = {}
        for activation in activations:
            t0 = time.perf_counter()
            runs[activation] = train_one(
                activation, data, name, depth=config["depth"], width=config["width"], epochs=config["epochs"],
                batch_size=config["batch_size"], optimizer=config["optimizer"],
                learning_rate=config["learning_rate"], seed=seed)
            r = runs[activation]
            log(f"  {name} {activation:<13s} test {100 * r['test_accuracy']:5.1f}%  "
                f"{r['seconds_per_epoch']:.3f} s/epoch  ({time.perf_counter() - t0:.1f} s)")
        result["devices"][name] = {"available": True, "reason": None, "runs": runs}
    return result


def resolve_devices_list(devices):
    """``[(name, available, reason)]`` for the device names given (order kept, duplicates dropped)."""
    out, seen = [], set()
    for d in devices:
        for entry in resolve_devices(d):
            if entry[0] not in seen:
                seen.add(entry[0])
                out.append(entry)
    return out


# --------------------------------------------------------------------------- #
# Report
# --------------------------------------------------------------------------- #
def _primary_runs(result) -> tuple:
    for name, dev in result["devices"].items():
        if dev["available"] and dev["runs"]:
            return name, dev["runs"]
    return None, {}


def _pct(v):
    return f"{100 * v:.1f}"


def _sci(v):
    return f"{v:.2e}"


def report(result) -> str:
    """The three tables: summary, gradient norms at initialization, after the first epoch."""
    primary, runs = _primary_runs(result)
    devices = result["devices"]
    rows = []
    for activation, r in runs.items():
        row = {
            "activation": activation, "family": r["family"], "init": r["init"],
            "train": r["train_accuracy"], "test": r["test_accuracy"], "to90": r["epochs_to_90"],
            "g_first0": r["grad_norms_init"][0], "g_last0": r["grad_norms_init"][-1],
            "g_first1": (r["grad_norms_epoch1"] or [None])[0], "dead": r["dead_fraction"],
            "gmax": r["max_grad_norm"],
        }
        for name, dev in devices.items():
            if dev["available"]:
                run = dev["runs"].get(activation)
                row[f"t_{name}"] = run["seconds_per_epoch"] if run else None
            else:
                row[f"t_{name}"] = "n/a"
        rows.append(row)
    columns = [
        ("activation", "activation"), ("family", "family"), ("init", "init"),
        ("train", "train %", _pct), ("test", "test %", _pct), ("to90", "ep->90%"),
        ("g_first0", "|g| L1 init", _sci), ("g_last0", "|g| out init", _sci),
        ("g_first1", "|g| L1 ep1", _sci), ("dead", "dead %", _pct), ("gmax", "max |g|", _sci),
    ]
    columns += [(f"t_{name}", f"s/epoch {name}", ".4f") for name in devices]
    cfg = result["config"]
    lines = [
        format_environment(result["environment"]),
        f"MLP {cfg['depth']} x {cfg['width']} on {cfg['data']}: {cfg['train_samples']} train / "
        f"{cfg['test_samples']} test; {cfg['optimizer']} (lr {cfg['learning_rate']:g}), batch {cfg['batch_size']}, "
        f"{cfg['epochs']} epochs, seed {cfg['seed']}; metrics from the {primary} runs",
        "",
        format_table(rows, columns),
    ]
    for name, dev in devices.items():
        if not dev["available"]:  # the reason is on the environment's GPU line above
            lines.append(f"{name}: not measured (unavailable: see the {name.upper()} line above)")
    lines += [
        "",
        "ep->90%: first epoch with test accuracy >= 90 %. |g|: gradient norm of a layer for the mean loss over",
        "the training set (L1 = first hidden layer, out = output layer) at initialization / after epoch 1.",
        "dead %: hidden units with f'(z) = 0 on every training sample after training (section 8.3).",
        "max |g|: largest whole-gradient norm over all training batches (section 8.6).",
    ]
    n_layers = len(next(iter(runs.values()))["grad_norms_init"]) if runs else 0
    for key, title in (("grad_norms_init", "at initialization"), ("grad_norms_epoch1", "after the first epoch")):
        grad_rows = []
        for activation, r in runs.items():
            row = {"activation": activation}
            for j, v in enumerate(r[key] or []):
                row[f"L{j + 1}"] = v
            grad_rows.append(row)
        grad_cols = [("activation", "activation")] + [
            (f"L{j + 1}", "out" if j == n_layers - 1 else f"L{j + 1}", ".1e") for j in range(n_layers)]
        lines += ["", f"Gradient norm per layer {title} (section 7.8; L1 = input side):",
                  format_table(grad_rows, grad_cols)]
    return "\n".join(lines)


def plot(result, out_dir) -> list:
    """Loss curves per activation and per-layer gradient norms (log scale); returns the PNG paths."""
    from pathlib import Path

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    _, runs = _primary_runs(result)
    families = {}
    for activation, r in runs.items():
        families.setdefault(r["family"], []).append(activation)
    paths = []

    fig, axes = plt.subplots(2, len(families), figsize=(5 * len(families), 7.5), squeeze=False)
    for col, (family, names) in enumerate(families.items()):
        for k, activation in enumerate(names):
            r = runs[activation]
            epochs = np.arange(1, len(r["loss"]) + 1)
            axes[0, col].plot(epochs, r["loss"], color=f"C{k}", label=activation)
            axes[1, col].plot(epochs, 100 * np.asarray(r["val_accuracy"]), color=f"C{k}", label=activation)
        axes[0, col].set_yscale("log")
        axes[0, col].set_title(f"{family}: training loss")
        axes[1, col].set_title(f"{family}: test accuracy (%)")
        axes[1, col].axhline(100 * TARGET_ACCURACY, color="0.6", linestyle=":", linewidth=1)
        for ax in axes[:, col]:
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8)
    paths.append(_save(plt, fig, out_dir / "training_loss.png"))

    fig, axes = plt.subplots(1, len(families), figsize=(5 * len(families), 4), squeeze=False)
    for col, (family, names) in enumerate(families.items()):
        ax = axes[0, col]
        for k, activation in enumerate(names):
            r = runs[activation]
            layers = np.arange(1, len(r["grad_norms_init"]) + 1)
            ax.plot(layers, r["grad_norms_init"], "o-", color=f"C{k}", label=f"{activation}")
            if r["grad_norms_epoch1"]:
                ax.plot(layers, r["grad_norms_epoch1"], "x--", color=f"C{k}", alpha=0.7)
        ax.set_yscale("log")
        ax.set_xlabel("layer (1 = input side, last = output)")
        ax.set_title(f"{family}: gradient norm per layer\n(o- at init, x-- after epoch 1)")
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    paths.append(_save(plt, fig, out_dir / "training_grad_norms.png"))
    return paths


def _save(plt, fig, path):
    """Lay out, write and close ``fig``; returns ``path``."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #
def _optimizer_name(text: str) -> str:
    """An optimizer name known to :func:`optimizers.get_optimizer` (argparse type)."""
    from optimizers import OPTIMIZERS

    key = text.strip().lower().replace("-", "_")
    if key not in OPTIMIZERS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(OPTIMIZERS)}, got {text!r}")
    return key


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``python -m bench training``."""
    parser.add_argument("--device", choices=["cpu", "gpu", "all"], default="all",
                        help="where to train (default: all = CPU, and the GPU or the reason it is unavailable)")
    parser.add_argument("--epochs", type=options.positive_int, default=None,
                        help=f"epochs per activation (default {DEFAULTS['epochs']}; {QUICK_EPOCHS} with --quick)")
    parser.add_argument("--activations", default=None,
                        help="comma-separated names (default: every sigmoidal, rectifier and modern activation)")
    parser.add_argument("--seed", type=options.seed, default=DEFAULTS["seed"],
                        help="seed of weights, data order, noise")
    parser.add_argument("--depth", type=options.positive_int, default=DEFAULTS["depth"],
                        help="hidden layers (default 8)")
    parser.add_argument("--width", type=options.positive_int, default=DEFAULTS["width"],
                        help="units per hidden layer (default 64)")
    parser.add_argument("--batch-size", type=options.positive_int, default=DEFAULTS["batch_size"], help="default 32")
    parser.add_argument("--optimizer", type=_optimizer_name, default=DEFAULTS["optimizer"],
                        help="optimizer name for optimizers.get_optimizer (default: momentum, 0.9)")
    parser.add_argument("--learning-rate", type=options.positive_float, default=DEFAULTS["learning_rate"],
                        help="default 0.01")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_EPOCHS} epochs (smoke test)")
    parser.add_argument("--json", metavar="PATH", type=options.output_file, default=None,
                        help="write every measurement as JSON")
    parser.add_argument("--plot", metavar="DIR", type=options.output_dir, default=None,
                        help="write training_loss.png and training_grad_norms.png into DIR")


def run(args) -> int:
    """Run the comparison from parsed arguments; print the report; return 0."""
    activations = None
    if args.activations:
        activations = [a.strip().lower().replace("-", "_") for a in args.activations.split(",") if a.strip()]
    try:
        for name in activations or ():
            family_of(name)
    except ValueError as err:
        print(f"bench training: {err}", file=sys.stderr)
        return 2
    result = compare(activations, [args.device], epochs=args.epochs, seed=args.seed, depth=args.depth,
                     width=args.width, batch_size=args.batch_size, optimizer=args.optimizer,
                     learning_rate=args.learning_rate, quick=args.quick)
    print()
    print(report(result))
    if args.json:
        path = write_json(args.json, result)
        print(f"\njson: {path}")
    if args.plot:
        for path in plot(result, args.plot):
            print(f"figure: {path}")
    return 0


def main(argv=None) -> int:
    """``python -m bench.training ...`` (same options as ``python -m bench training``)."""
    parser = argparse.ArgumentParser(prog="python -m bench training", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
