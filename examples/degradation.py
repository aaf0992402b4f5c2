"""Chapter 23: why does a skip connection help? A plain deep CNN and a ResNet of the same depth, side by side.

He et al. (2016) found that deeper *plain* networks reach a *higher training
error* than shallower ones (the degradation problem): not overfitting, an
optimisation difficulty, which residual blocks ``y = ReLU(F(x) + x)`` remove.
This script trains, with the same budget on scikit-learn's 8x8 digits
(stratified 75/25 split, ``random_state=0``; no augmentation, so the training
loss is what the optimiser achieves):

* ``plain-D``: :func:`models.plain_cnn` of ``--depth`` D weight layers (default 20),
* ``resnet-D``: :func:`models.resnet`, the same layers with the skip connections,
* ``plain-8``: the shallow plain network, the baseline the deep one should match.

It prints each network's training loss per epoch, the first epoch whose loss
is below 0.1, its final training and test accuracy, and the gradient norm of every layer's weights at
initialization on one batch (``layers.training.diagnostics.layer_gradient_norms``):
the ratio between the first and the last layers says how much of the loss's
gradient reaches the start of each network. ``fit(track_gradients=True)``
records the same norms, averaged per epoch, during training. Figures:
``degradation_loss.png`` (training-loss curves) and ``degradation_grad_norms.png``
(per-layer norms at initialization and, for the first layer, during training).

Run::

    python examples/degradation.py [--device cpu|gpu|auto] [--depth 20] [--epochs N] [--quick] [--out DIR]
"""

from __future__ import annotations

import numpy as np

import backend
from _common import make_parser, pyplot, save_figure, select_device, stratified_split

EPOCHS = 12


def load_data():
    """Digits as (N, 8, 8, 1) images in [0, 1]; the stratified 25 % test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return stratified_split((digits.images / 16.0).reshape(-1, 8, 8, 1).astype(np.float32), digits.target, seed=0)


def networks(depth: int, width: int, seed: int) -> dict:
    """``{"plain-D": ..., "resnet-D": ..., "plain-8": ...}`` (the shallow one left out when D is 8)."""
    import models

    nets = {f"plain-{depth}": models.plain_cnn(depth, (8, 8, 1), 10, width=width, seed=seed),
            f"resnet-{depth}": models.resnet(depth, (8, 8, 1), 10, width=width, seed=seed)}
    if depth != 8:
        nets["plain-8"] = models.plain_cnn(8, (8, 8, 1), 10, width=width, seed=seed)
    return nets


def gradient_norms_at_init(model, X, y) -> tuple:
    """Per-layer gradient norms of the weights (biases and BN parameters too) on one batch, before training."""
    from layers.losses import SparseCategoricalCrossEntropy
    from layers.training.diagnostics import layer_gradient_norms

    labels, norms = layer_gradient_norms(model, backend.to_device(X), backend.to_device(y),
                                         SparseCategoricalCrossEntropy(from_logits=True))
    # one value per weight layer of the depth count: convolutions and the dense output (the normalizations
    # follow their convolution; the ResNet's projection shortcuts, paths "<block>.1.0", are not counted)
    keep = [i for i, label in enumerate(labels) if label.endswith(("Convolution2D", "Dense"))
            and not label.split(":")[0].endswith(".1.0")]
    return [labels[i] for i in keep], [norms[i] for i in keep]


def main(argv=None) -> dict:
    """Train the networks; returns ``{"runs": {name: {...}}, "figures": [...]}``."""
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    parser.add_argument("--depth", type=int, default=20, help="weight layers, 6 n + 2 (default: 20)")
    parser.add_argument("--width", type=int, default=16, help="filters of the first stage (default: 16)")
    parser.add_argument("--batch-size", type=int, default=64, help="mini-batch size (default: 64)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate (default: 1e-3)")
    args = parser.parse_args(argv)
    depth, width = (8, 4) if args.quick else (args.depth, args.width)
    epochs = args.epochs or (2 if args.quick else EPOCHS)
    select_device(args.device)
    X_train, X_test, y_train, y_test = load_data()
    if args.quick:
        X_train, y_train = X_train[:128], y_train[:128]
    probe = slice(0, 256)
    print(f"Digits 8x8, {len(X_train)} training images; Adam lr {args.learning_rate:g}, batch {args.batch_size}, "
          f"{epochs} epochs; depth {depth}, width {width}")
    runs = {}
    for name, model in networks(depth, width, args.seed).items():
        labels, norms = gradient_norms_at_init(model, X_train[probe], y_train[probe])
        history = model.fit(backend.to_device(X_train), backend.to_device(y_train),
                            loss=SparseCategoricalCrossEntropy(from_logits=True),
                            optimizer=Adam(learning_rate=args.learning_rate), epochs=epochs,
                            batch_size=args.batch_size, seed=args.seed, verbose=0, track_gradients=True)
        train_acc = float(model.evaluate(backend.to_device(X_train), backend.to_device(y_train))["accuracy"])
        test_acc = float(model.evaluate(backend.to_device(X_test), backend.to_device(y_test))["accuracy"])
        first = history.labels["grad_norms"][0]
        runs[name] = {"loss": history.history["loss"], "train_accuracy": train_acc, "test_accuracy": test_acc,
                      "init_labels": labels, "init_grad_norms": norms, "parameters": model.count_params(),
                      "first_layer": first,
                      "first_layer_norms": [epoch_norms[0] for epoch_norms in history.history["grad_norms"]]}
        ratio = norms[0] / norms[-1]
        print(f"  {name:<10s} {model.count_params():>8,d} params  training loss "
              + " ".join(f"{v:.3f}" for v in history.history["loss"])
              + f"\n             final training accuracy {100 * train_acc:.2f}%, test {100 * test_acc:.2f}%; "
              f"gradient norm at init: first layer {norms[0]:.3g}, last {norms[-1]:.3g} (first/last {ratio:.3g})",
              flush=True)
    for name, run in runs.items():
        below = next((i + 1 for i, v in enumerate(run["loss"]) if v < 0.1), None)
        run["epochs_to_loss_0.1"] = below
        print(f"  {name:<10s} first epoch with training loss < 0.1: {below if below else f'none in {epochs}'}")
    figures = []
    if not args.no_plot:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6.5, 4))
        for name, run in runs.items():
            ax.plot(np.arange(1, len(run["loss"]) + 1), run["loss"], marker="o", ms=3, label=name)
        ax.set_xlabel("epoch")
        ax.set_ylabel("training loss (cross-entropy)")
        ax.set_yscale("log")
        ax.set_title("degradation: plain vs residual, same depth (chapter 23)")
        ax.grid(alpha=0.3)
        ax.legend()
        figures.append(save_figure(fig, args.out, "degradation_loss.png"))
        fig, (ax_init, ax_train) = plt.subplots(1, 2, figsize=(11, 4))
        for name, run in runs.items():
            ax_init.plot(np.arange(1, len(run["init_grad_norms"]) + 1), run["init_grad_norms"], marker="o", ms=3,
                         label=name)
            ax_train.plot(np.arange(1, len(run["first_layer_norms"]) + 1), run["first_layer_norms"], marker="o",
                          ms=3, label=name)
        ax_init.set_xlabel("layer (input to output)")
        ax_init.set_ylabel("||dE/dW|| at initialization")
        ax_train.set_xlabel("epoch")
        ax_train.set_ylabel("first layer's ||dE/dW||, epoch mean")
        for ax in (ax_init, ax_train):
            ax.set_yscale("log")
            ax.grid(alpha=0.3)
            ax.legend()
        figures.append(save_figure(fig, args.out, "degradation_grad_norms.png"))
    return {"runs": runs, "figures": figures}


if __name__ == "__main__":
    main()
