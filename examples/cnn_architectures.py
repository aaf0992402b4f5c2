"""Every CNN architecture of models/ trained on scikit-learn's digits with the same budget (book 22.9, chapter 23).

The 1,797 8x8 digits (``load_digits``, no download), split 75/25 stratified
with ``random_state=0`` as in ``digits_cnn.py``, are upsampled by repeating
every pixel (nearest neighbour, what ``UpSampling2D`` does): 2x2 to 16x16 for
every builder but LeNet-5, 4x4 to 32x32 for LeNet-5 (the paper's input size;
its two valid 5x5 convolutions and two poolings need at least 14x14). No new
information is made up: the networks only get room for their poolings and strides.

Every architecture gets the same budget: ``--epochs`` epochs of Adam
(``--learning-rate``, cosine-decayed to 0 over the run), batches of 32, the
same seed, and the same light augmentation in training (book section 25.6:
``RandomTranslation`` by up to one original pixel and ``RandomRotation`` up to
10 degrees, as the first layers of the model; ``--no-augment`` turns it off).
The script prints, per architecture: the book section, the input size, the
number of parameters, the test accuracy, and the median time per epoch on
each device (``--device all``; the first epoch, which compiles, apart).
Targets: LeNet-5 and the ResNet at least 98.5 % test accuracy.

Run::

    python examples/cnn_architectures.py [--device cpu|gpu|auto|all] [--epochs N] [--only lenet5,resnet] [--quick]
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

import backend
from layers.callbacks import Callback
from _common import describe_device, devices_to_run, make_parser, pyplot, save_figure, stratified_split

EPOCHS = 20
#: builder -> (input side, keyword arguments); the ResNet is ResNet-20 (and SE-ResNet-20)
BUILDS = {
    "lenet5": (32, {}),
    "vgg_small": (16, {}),
    "inception_small": (16, {}),
    "resnet": (16, {"depth": 20}),
    "xception_small": (16, {}),
    "se_resnet": (16, {"depth": 20}),
}
#: --quick: small networks and a few batches, so the tests run in seconds
QUICK = {"vgg_small": {"widths": (4, 8), "dense_units": 16}, "resnet": {"depth": 8, "width": 4},
         "xception_small": {"widths": (4, 8), "middle_blocks": 1}, "se_resnet": {"depth": 8, "width": 4, "ratio": 2},
         "inception_small": {}, "lenet5": {}}
TARGET = {"lenet5": 0.985, "resnet": 0.985}


def load_data(side: int, seed: int = 0):
    """Digits in [0, 1] as NHWC images of ``side x side`` (pixels repeated), stratified 25 % test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    factor = side // 8
    images = np.repeat(np.repeat(digits.images / 16.0, factor, axis=1), factor, axis=2)
    return stratified_split(images.reshape(-1, side, side, 1).astype(np.float32), digits.target, seed=0)


class CosineDecay(Callback):
    """Adam's learning rate ``lr0 (1 + cos(pi t / T)) / 2`` at the start of epoch ``t`` of ``T``."""

    def __init__(self, initial: float, epochs: int):
        self.initial, self.epochs = initial, epochs

    def on_epoch_begin(self, epoch, logs=None):
        self.model.optimizer.learning_rate = max(1e-6, self.initial * 0.5 * (1 + math.cos(math.pi * epoch
                                                                                           / self.epochs)))


class EpochTimer(Callback):
    """Wall time of each epoch's training batches; the GPU is synchronized."""

    def __init__(self):
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        backend.synchronize()
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        backend.synchronize()
        self.seconds.append(time.perf_counter() - self._start)


def build(name: str, side: int, quick: bool, augment: bool, seed: int):
    """The builder's model for ``side x side`` digits, behind the augmentation layers when ``augment``."""
    import models
    from layers import RandomRotation, RandomTranslation, Sequential

    builder, section = models.ARCHITECTURES[name]
    kwargs = QUICK[name] if quick else BUILDS[name][1]
    model = builder(input_shape=(side, side, 1), num_classes=10, seed=seed, **kwargs)
    if augment:
        augmentation = [RandomTranslation(side // 8, seed=seed), RandomRotation(10.0, seed=seed + 1)]
        model = Sequential(augmentation + model.layers, input_shape=(side, side, 1))
    return model, section


def train(name: str, device: str, args, epochs: int) -> dict:
    """Train and evaluate one architecture on one device; returns what the table prints."""
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    side = BUILDS[name][0]
    X_train, X_test, y_train, y_test = load_data(side)
    if args.quick:
        X_train, y_train = X_train[:96], y_train[:96]
    with backend.use_device(device) as dev:
        model, section = build(name, side, args.quick, not args.no_augment, args.seed)
        timer = EpochTimer()
        history = model.fit(backend.to_device(X_train), backend.to_device(y_train),
                            loss=SparseCategoricalCrossEntropy(from_logits=True),
                            optimizer=Adam(learning_rate=args.learning_rate), epochs=epochs,
                            batch_size=args.batch_size, callbacks=[CosineDecay(args.learning_rate, epochs), timer],
                            seed=args.seed, verbose=0 if args.no_progress else 1)
        logits = backend.to_numpy(model.predict(backend.to_device(X_test)))
    later = timer.seconds[1:] or timer.seconds
    return {"architecture": name, "section": section, "device": str(dev), "input": f"{side}x{side}",
            "parameters": model.count_params(), "test_accuracy": float(np.mean(logits.argmax(axis=1) == y_test)),
            "epoch_s_median": statistics.median(later), "first_epoch_s": timer.seconds[0],
            "loss": history.history["loss"]}


def main(argv=None) -> dict:
    """Train every (or ``--only``) architecture on each device; returns ``{"runs": [...], "figures": [...]}``."""
    import models

    parser = make_parser(__doc__.splitlines()[0], allow_all_devices=True, epochs=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=3e-3,
                        help="Adam's initial learning rate, cosine-decayed (default: 3e-3)")
    parser.add_argument("--only", default=None,
                        help=f"comma-separated builders (default: all of {', '.join(models.ARCHITECTURES)})")
    parser.add_argument("--no-augment", action="store_true", help="train without the augmentation layers")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar while training")
    args = parser.parse_args(argv)
    names = list(models.ARCHITECTURES) if args.only is None else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in models.ARCHITECTURES]
    if unknown:
        parser.error(f"--only: unknown builders {unknown}; expected some of {list(models.ARCHITECTURES)}")
    epochs = args.epochs or (1 if args.quick else EPOCHS)
    print(f"Digits (load_digits 8x8, pixels repeated to 16x16, 32x32 for LeNet-5): stratified 25 % test split; "
          f"Adam lr {args.learning_rate:g} (cosine decay), batch {args.batch_size}, {epochs} epochs, "
          f"augmentation {'off' if args.no_augment else 'on (translation 1 px of 8, rotation 10 degrees)'}")
    runs = []
    for device in devices_to_run(args.device):
        try:
            with backend.use_device(device) as dev:
                print(describe_device(dev, device), flush=True)
        except backend.DeviceUnavailableError as err:
            print(f"  {device}: unavailable ({err})")
            continue
        for name in names:
            run = train(name, device, args, epochs)
            runs.append(run)
            print(f"  {name:<16s} book {run['section']:<10s} {run['input']:>6s} {run['parameters']:>8,d} params  "
                  f"test accuracy {100 * run['test_accuracy']:6.2f}%  {run['device']}: "
                  f"{run['epoch_s_median']:.2f} s/epoch (first {run['first_epoch_s']:.2f} s)", flush=True)
    if runs and epochs >= EPOCHS and not args.quick:
        for name, target in TARGET.items():
            for run in (r for r in runs if r["architecture"] == name):
                met = "met" if run["test_accuracy"] >= target else "NOT met"
                print(f"  target {name} >= {100 * target:.1f}% on {run['device']}: {met}")
    figures = []
    if runs and not args.no_plot:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(7, 4))
        for run in runs:
            ax.plot(np.arange(1, len(run["loss"]) + 1), run["loss"], label=f"{run['architecture']} ({run['device']})")
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss")
        ax.set_yscale("log")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
        figures.append(save_figure(fig, args.out, "cnn_architectures_loss.png"))
    return {"runs": runs, "figures": figures}


if __name__ == "__main__":
    main()
