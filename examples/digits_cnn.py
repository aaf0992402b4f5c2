"""A small CNN on scikit-learn's handwritten digits (book chapter 22: Convolution2D, MaxPooling2D, Flatten).

The 1,797 8x8 grey-level digits bundled with scikit-learn (``load_digits``, no
download) are split 75/25, stratified, ``random_state=0``. The network, NHWC as
in the book::

    (8, 8, 1) -> Convolution2D(1, 16, 3, padding=1) -> ReLU -> MaxPooling2D(2)     (4, 4, 16)
              -> Convolution2D(16, 32, 3, padding=1) -> ReLU -> MaxPooling2D(2)    (2, 2, 32)
              -> Flatten -> Dense(128, 64) -> ReLU -> Dense(64, 10)               10 logits

is trained with the softmax cross-entropy on the logits (section 11.3) and Adam.
Target: at least 98% accuracy on the held-out quarter (scikit-learn's
MLPClassifier reaches about 97.6-98% on that split). The script prints the
device it trains on, a progress bar per epoch (``fit``'s tqdm bar; ``--no-progress``
turns it off), the test accuracy and the time per epoch on each device
(``--device all`` runs every device that answers; the first epoch, which
includes Numba compilation or loading and GPU kernel compilation, is
reported separately).

Run::

    python examples/digits_cnn.py [--device cpu|gpu|auto|all] [--epochs N] [--quick] [--out DIR] [--no-progress]
"""

from __future__ import annotations

import statistics
import time

import numpy as np

import backend
from layers.callbacks import Callback
from _common import describe_device, devices_to_run, make_parser, pyplot, save_figure, stratified_split

EPOCHS = 30


def load_data():
    """Digits as NHWC float images in [0, 1] and integer labels; stratified 25% test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0).reshape(-1, 8, 8, 1)
    y = digits.target
    return stratified_split(X, y, seed=0)


def build_model(seed: int):
    """The CNN of the module docstring (about 13 k parameters)."""
    from layers import Convolution2D, Dense, Flatten, MaxPooling2D, Sequential, get_activation

    return Sequential([
        Convolution2D(1, 16, 3, padding=1, seed=seed),
        get_activation("relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Convolution2D(16, 32, 3, padding=1, seed=seed + 1),
        get_activation("relu"),
        MaxPooling2D(pool_size=(2, 2)),
        Flatten(),
        Dense(128, 64, weight_init="he_normal", seed=seed + 2),
        get_activation("relu"),
        Dense(64, 10, weight_init="xavier_uniform", seed=seed + 3),
    ])


class EpochTimer(Callback):
    """Wall time of each epoch's training batches (validation excluded); the GPU is synchronized."""

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


def train_on(device: str, data, epochs: int, seed: int, batch_size: int, learning_rate: float,
             progress: bool = True) -> dict:
    """Build, train and evaluate the CNN on ``device``; return accuracy, times and the loss curve.

    Prints the device first; ``progress`` shows ``fit``'s progress bar (one per epoch).
    """
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    X_train, X_test, y_train, y_test = data
    with backend.use_device(device) as dev:
        print(describe_device(dev, device), flush=True)
        dtype = backend.get_default_dtype()
        model = build_model(seed)
        timer = EpochTimer()
        to = lambda a, t=None: backend.to_device(np.asarray(a, dtype=t or dtype))  # noqa: E731
        history = model.fit(to(X_train), to(y_train, np.int64),
                            loss=SparseCategoricalCrossEntropy(from_logits=True),
                            optimizer=Adam(learning_rate=learning_rate), epochs=epochs,
                            batch_size=batch_size, validation_data=(to(X_test), to(y_test, np.int64)),
                            callbacks=[timer], shuffle=True, seed=seed, verbose=1 if progress else 0)
        logits = backend.to_numpy(model.predict(to(X_test)))
        test_acc = float(np.mean(np.argmax(logits, axis=1) == y_test))
        later = timer.seconds[1:] or timer.seconds
        return {
            "device": str(dev), "parameters": model.count_params(), "epochs": epochs,
            "test_accuracy": test_acc,
            "train_accuracy": float(model.evaluate(to(X_train), to(y_train, np.int64))["accuracy"]),
            "first_epoch_s": timer.seconds[0],
            "epoch_s_median": statistics.median(later),
            "epoch_seconds": timer.seconds,
            "loss": history.history["loss"], "val_accuracy": history.history["val_accuracy"],
        }


def main(argv=None) -> dict:
    """Train on each requested device; returns ``{"runs": {device: {...}}, "figures": [...]}``."""
    parser = make_parser(__doc__.splitlines()[0], allow_all_devices=True, epochs=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's learning rate (default: 3e-3)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while training")
    args = parser.parse_args(argv)
    epochs = args.epochs or (4 if args.quick else EPOCHS)
    data = load_data()
    print(f"Digits (load_digits, 8x8): {len(data[0])} training / {len(data[1])} test images "
          f"(stratified 25%, random_state=0); CNN, Adam (lr {args.learning_rate:g}), batch {args.batch_size}, "
          f"{epochs} epochs")
    runs = {}
    for device in devices_to_run(args.device):
        try:
            run = train_on(device, data, epochs, args.seed, args.batch_size, args.learning_rate,
                           progress=not args.no_progress)
        except backend.DeviceUnavailableError as err:
            print(f"  {device}: unavailable ({err})")
            continue
        runs[run["device"]] = run
        print(f"  {run['device']:<6s} test accuracy {100 * run['test_accuracy']:.2f}%  "
              f"(train {100 * run['train_accuracy']:.2f}%)  time per epoch {run['epoch_s_median']:.3f} s "
              f"(median of epochs 2-{epochs}; first epoch {run['first_epoch_s']:.3f} s, "
              f"{run['parameters']} parameters)")
    target = all(r["test_accuracy"] >= 0.98 for r in runs.values())
    if runs and epochs >= EPOCHS:
        print(f"  target >= 98% test accuracy: {'met' if target else 'NOT met'}")
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
        figures.append(save_figure(fig, args.out, "digits_cnn_training.png"))
    return {"runs": runs, "figures": figures}


if __name__ == "__main__":
    main()
