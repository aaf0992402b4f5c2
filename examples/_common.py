"""What every example script shares: its command line, the device and where figures go.

Every example accepts::

    --device cpu|gpu|auto   where the model lives (default: auto = GPU when one answers)
    --out DIR               folder for the figures (default: examples/figures)
    --quick                 small settings (used by the tests; seconds on a laptop CPU)
    --seed N                seed of the data and of the weights
    --no-plot               skip the figures (print only)

Each script's ``main(argv=None)`` parses its arguments, prints what it shows and
returns a dict of the numbers it printed, so the tests can call it directly.
Figures are written with matplotlib's non-interactive Agg backend, never shown.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

import backend

EXAMPLES_DIR = Path(__file__).resolve().parent
DEFAULT_OUT = EXAMPLES_DIR / "figures"


def make_parser(description: str, *, allow_all_devices: bool = False, epochs: int | None = None):
    """An :class:`argparse.ArgumentParser` with the options every example shares.

    Parameters
    ----------
    description : str
        First line of ``--help``.
    allow_all_devices : bool
        Also accept ``--device all`` (run on every device that answers).
    epochs : int, optional
        Default of an ``--epochs`` option; no such option when None.
    """
    parser = argparse.ArgumentParser(description=description)
    choices = ["cpu", "gpu", "auto"] + (["all"] if allow_all_devices else [])
    parser.add_argument("--device", choices=choices, default="auto",
                        help="where to run (default: auto = the GPU when one answers, else the CPU)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"folder for the figures (default: {DEFAULT_OUT})")
    parser.add_argument("--quick", action="store_true", help="small settings (seconds; used by the tests)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the data and the weights (default: 0)")
    parser.add_argument("--no-plot", action="store_true", help="print only; write no figure")
    if epochs is not None:
        parser.add_argument("--epochs", type=int, default=None,
                            help=f"training epochs (default: {epochs}; fewer with --quick)")
    return parser


def select_device(name: str) -> backend.Device:
    """Make ``name`` the current device and say which one is used.

    A GPU asked for explicitly and unavailable ends the script with the reason.
    """
    try:
        dev = backend.set_device(name)
    except backend.DeviceUnavailableError as err:
        raise SystemExit(f"--device {name}: {err}") from None
    print(describe_device(dev, name))
    return dev


def describe_device(dev: backend.Device, asked: str) -> str:
    """``"device: cpu"``, with why when ``asked`` was ``"auto"`` and no GPU answered."""
    reason = backend.unavailable_reason() if dev.name == "cpu" and asked == "auto" else None
    return f"device: {dev}" + (f" (no GPU: {reason})" if reason else "")


def devices_to_run(name: str) -> list[str]:
    """``"all"`` -> every device that answers (cpu, then gpu); anything else -> ``[name]``."""
    if name != "all":
        return [name]
    names = ["cpu"]
    if backend.has_gpu():
        names.append("gpu")
    else:
        print(f"gpu: skipped ({backend.unavailable_reason()})")
    return names


def output_dir(path) -> Path:
    """Create ``path`` (and parents) when missing; return it as a Path."""
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def pyplot():
    """``matplotlib.pyplot`` with the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def save_figure(fig, out: Path, name: str) -> Path:
    """Save ``fig`` as ``out/name``, close it, print and return the path."""
    path = output_dir(out) / name
    fig.savefig(path, dpi=110, bbox_inches="tight")
    fig.clf()
    import matplotlib.pyplot as plt

    plt.close(fig)
    print(f"figure: {path}")
    return path


def decision_grid(X, margin: float = 0.5, steps: int = 200):
    """A ``steps x steps`` grid covering the 2-D points ``X`` plus ``margin``.

    Returns ``(xx, yy, points)`` with ``points`` of shape (steps*steps, 2), float.
    """
    X = np.asarray(X)
    x0, x1 = X[:, 0].min() - margin, X[:, 0].max() + margin
    y0, y1 = X[:, 1].min() - margin, X[:, 1].max() + margin
    xx, yy = np.meshgrid(np.linspace(x0, x1, steps), np.linspace(y0, y1, steps))
    return xx, yy, np.c_[xx.ravel(), yy.ravel()]


def plot_decision_boundary(ax, predict_proba, X, y, title: str, steps: int = 200):
    """Shade ``predict_proba(points)`` (probability of class 1) and scatter the data.

    ``predict_proba`` takes a NumPy (n, 2) array and returns n probabilities.
    """
    xx, yy, points = decision_grid(X, steps=steps)
    proba = np.asarray(predict_proba(points)).reshape(xx.shape)
    ax.contourf(xx, yy, proba, levels=np.linspace(0.0, 1.0, 11), cmap="RdBu_r", alpha=0.6)
    ax.contour(xx, yy, proba, levels=[0.5], colors="k", linewidths=1.5)
    ax.scatter(X[:, 0], X[:, 1], c=y, cmap="RdBu_r", edgecolors="k", s=18)
    ax.set_title(title)
    ax.set_aspect("equal", adjustable="box")


def save_decision_boundary(model, X, y, title: str, out: Path, name: str, size: float = 4.5) -> Path:
    """One square figure of ``model``'s decision boundary over the points ``X`` (NumPy (n, 2)); saved as ``out/name``.

    The shading is :func:`predict_proba` (the model outputs one logit); returns the figure's path.
    """
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(size, size))
    plot_decision_boundary(ax, lambda p: predict_proba(model, p), X, y, title)
    return save_figure(fig, out, name)


def stratified_split(X, y, seed: int):
    """scikit-learn's stratified 75/25 split: ``X_train, X_test, y_train, y_test``."""
    from sklearn.model_selection import train_test_split

    return train_test_split(X, y, test_size=0.25, stratify=y, random_state=seed)


def epoch_timer():
    """A :class:`layers.callbacks.Callback` recording each epoch's training time (validation excluded).

    ``timer.seconds[k]`` is the wall time of epoch k's batches; the GPU is synchronized.
    """
    from layers.callbacks import Callback

    class EpochTimer(Callback):
        def __init__(self):
            self.seconds = []
            self._start = self._last = 0.0

        def on_epoch_begin(self, epoch, logs=None):
            backend.synchronize()
            self._start = self._last = time.perf_counter()

        def on_batch_end(self, batch, logs=None):
            backend.synchronize()
            self._last = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(self._last - self._start)

    return EpochTimer()


def train_classifier(build_model, data, device: str, *, epochs: int, seed: int, batch_size: int,
                     learning_rate: float, progress: bool = False) -> dict:
    """Build ``build_model(seed)`` on ``device``, train it with softmax cross-entropy and Adam, evaluate it.

    ``data`` is ``(X_train, X_test, y_train, y_test)`` (NumPy; integer labels). Prints the device
    first; ``progress`` shows ``fit``'s progress bar (one per epoch). Returns the device, parameter
    count, test and train accuracy (computed in batches of ``batch_size``), the time of the first epoch
    and the median of the others, and the loss and test-accuracy curves.
    """
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    X_train, X_test, y_train, y_test = data
    with backend.use_device(device) as dev:
        print(describe_device(dev, device), flush=True)
        dtype = backend.get_default_dtype()
        model = build_model(seed)
        timer = epoch_timer()
        to = lambda a, t=None: backend.to_device(np.asarray(a, dtype=t or dtype))  # noqa: E731
        history = model.fit(to(X_train), to(y_train, np.int64),
                            loss=SparseCategoricalCrossEntropy(from_logits=True),
                            optimizer=Adam(learning_rate=learning_rate), epochs=epochs,
                            batch_size=batch_size, validation_data=(to(X_test), to(y_test, np.int64)),
                            callbacks=[timer], shuffle=True, seed=seed, verbose=1 if progress else 0)
        # evaluated in training-size batches, as fit's validation: the shapes (and kernels) training compiled,
        # not a whole-set batch whose convolution paths would compile only for these two calls
        logits = backend.to_numpy(model.predict(to(X_test), batch_size=batch_size))
        test_acc = float(np.mean(np.argmax(logits, axis=1) == y_test))
        later = timer.seconds[1:] or timer.seconds
        return {
            "device": str(dev), "parameters": model.count_params(), "epochs": epochs,
            "test_accuracy": test_acc,
            "train_accuracy": float(model.evaluate(to(X_train), to(y_train, np.int64),
                                                   batch_size=batch_size)["accuracy"]),
            "first_epoch_s": timer.seconds[0],
            "epoch_s_median": statistics.median(later),
            "epoch_seconds": timer.seconds,
            "loss": history.history["loss"], "val_accuracy": history.history["val_accuracy"],
        }


def train_and_report(build_model, data, args, epochs: int, *, full_epochs: int, target: float, figure: str) -> dict:
    """Train ``build_model`` on every device ``args.device`` names, print each run, plot the curves.

    ``args`` carries ``device``, ``seed``, ``batch_size``, ``learning_rate``, ``out``,
    ``no_plot`` and optionally ``no_progress``; the target accuracy is checked when ``epochs >= full_epochs``. Returns
    ``{"runs": {device: run}, "figures": [paths]}`` (a run is :func:`train_classifier`'s dict).
    """
    runs = {}
    for device in devices_to_run(args.device):
        try:
            run = train_classifier(build_model, data, device, epochs=epochs, seed=args.seed,
                                   batch_size=args.batch_size, learning_rate=args.learning_rate,
                                   progress=not getattr(args, "no_progress", True))
        except backend.DeviceUnavailableError as err:
            print(f"  {device}: unavailable ({err})")
            continue
        runs[run["device"]] = run
        print(f"  {run['device']:<6s} test accuracy {100 * run['test_accuracy']:.2f}%  "
              f"(train {100 * run['train_accuracy']:.2f}%)  time per epoch {run['epoch_s_median']:.3f} s "
              f"(median of epochs 2-{epochs}; first epoch {run['first_epoch_s']:.3f} s, "
              f"{run['parameters']} parameters)")
    met = all(r["test_accuracy"] >= target for r in runs.values())
    if runs and epochs >= full_epochs:
        print(f"  target >= {100 * target:.0f}% test accuracy: {'met' if met else 'NOT met'}")
    figures = []
    if runs and not args.no_plot:
        plt = pyplot()
        fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 3.8))
        for name, r in runs.items():
            ep = np.arange(1, len(r["loss"]) + 1)
            ax_l.plot(ep, r["loss"], label=name)
            ax_a.plot(ep, 100 * np.asarray(r["val_accuracy"]), label=name)
        ax_l.set_title("training loss")
        ax_a.set_title("test accuracy (%)")
        for ax in (ax_l, ax_a):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
            ax.legend()
        figures.append(save_figure(fig, args.out, figure))
    return {"runs": runs, "figures": figures}


class Stopwatch:
    """``with Stopwatch() as sw: ...`` then ``sw.seconds``; synchronizes the GPU on both ends."""

    def __enter__(self):
        backend.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        backend.synchronize()
        self.seconds = time.perf_counter() - self._start
        return False


# --------------------------------------------------------------------------- #
# Binary classifiers (xor.py, circles.py, moons.py)
# --------------------------------------------------------------------------- #
def fit_binary(model, X, y, *, epochs: int, batch_size: int, learning_rate: float, seed: int,
               validation_data=None):
    """Train ``model`` (which outputs one logit) with BCE from logits and Adam.

    ``X`` (n, 2) and ``y`` (n,) or (n, 1) are NumPy arrays; they are moved to the
    current device. Returns the :class:`layers.history.History`.
    """
    from layers.losses import BinaryCrossEntropy
    from optimizers import Adam

    data = (backend.to_device(np.asarray(X, dtype=backend.get_default_dtype())),
            backend.to_device(np.asarray(y, dtype=backend.get_default_dtype()).reshape(-1, 1)))
    val = None
    if validation_data is not None:
        Xv, yv = validation_data
        val = (backend.to_device(np.asarray(Xv, dtype=backend.get_default_dtype())),
               backend.to_device(np.asarray(yv, dtype=backend.get_default_dtype()).reshape(-1, 1)))
    return model.fit(*data, loss=BinaryCrossEntropy(from_logits=True),
                     optimizer=Adam(learning_rate=learning_rate), epochs=epochs,
                     batch_size=batch_size, validation_data=val, shuffle=True, seed=seed, verbose=0)


def predict_proba(model, X) -> np.ndarray:
    """Probability of class 1 for the points ``X`` (NumPy), from the model's logit."""
    x = backend.to_device(np.asarray(X, dtype=backend.get_default_dtype()))
    logits = backend.to_numpy(model.predict(x)).astype(np.float64).ravel()
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # the logistic sigmoid, without overflow


def accuracy(model, X, y) -> float:
    """Fraction of points whose predicted class (probability > 0.5) equals ``y``."""
    return float(np.mean((predict_proba(model, X) > 0.5) == (np.asarray(y).ravel() > 0.5)))
