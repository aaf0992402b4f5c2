"""A Vision Transformer on scikit-learn's handwritten digits (book section 26.7: images as sequences of patches).

The 1,797 8x8 digits (``load_digits``, no download) are split 75/25,
stratified, ``random_state=0`` (the split of ``digits_cnn.py``). Each image is
cut into 2x2 patches (16 tokens of 4 pixels), projected to 64 features, given
learned positions, and read by four pre-norm Transformer encoder blocks
(:func:`models.vit`); the mean of the tokens is classified. In our runs
these settings (mean pooling, no dropout, batch 32, peak rate 1e-3) reached
the target; a class token with dropout 0.1, batch 64 and rate 2e-3 stalled
near 85%.
Training: softmax cross-entropy on the logits, Adam with a linear warm-up
then cosine decay of the learning rate, set by hand each epoch
(:func:`learning_rate_at`; a library schedule can replace it), and random
shifts of the images by one pixel as data augmentation (a ViT has no
convolution's built-in translation invariance).
Target: at least 97% test accuracy. Prints the accuracy and the time per epoch.

Run::

    python examples/vit_digits.py [--device cpu|gpu|auto] [--epochs N] [--quick] [--out DIR]
"""

from __future__ import annotations

import math
import statistics

import numpy as np

import backend
from _common import Stopwatch, make_parser, pyplot, save_figure, select_device, stratified_split

EPOCHS = 100
TARGET = 0.97


def load_data():
    """Digits as NHWC float images in [0, 1] and integer labels; stratified 25% test split (random_state=0)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = (digits.images / 16.0).reshape(-1, 8, 8, 1)
    return stratified_split(X, digits.target, seed=0)


def shift_images(X, rng, max_shift=1):
    """Each image moved by a random (dy, dx) in [-max_shift, max_shift]², zeros shifted in."""
    out = np.zeros_like(X)
    n, H, W, _ = X.shape
    shifts = rng.integers(-max_shift, max_shift + 1, size=(n, 2))
    for (dy, dx) in {tuple(s) for s in shifts}:
        rows = np.flatnonzero((shifts[:, 0] == dy) & (shifts[:, 1] == dx))
        src = X[rows, max(0, -dy):H - max(0, dy), max(0, -dx):W - max(0, dx)]
        out[rows, max(0, dy):H - max(0, -dy), max(0, dx):W - max(0, -dx)] = src
    return out


def learning_rate_at(epoch, epochs, peak, warmup=5):
    """Linear warm-up to ``peak`` over ``warmup`` epochs, then cosine decay to 0 (one value per epoch)."""
    if epoch < warmup:
        return peak * (epoch + 1) / warmup
    progress = (epoch - warmup) / max(1, epochs - warmup)
    return 0.5 * peak * (1.0 + math.cos(math.pi * progress))


def build_model(seed, dim=64, depth=4, num_heads=4, patch_size=2, dropout=0.0, pool="mean", mlp_ratio=2):
    """The ViT of the module docstring (:func:`models.vit`)."""
    from models import vit

    return vit((8, 8, 1), 10, patch_size=patch_size, dim=dim, depth=depth, num_heads=num_heads, mlp_ratio=mlp_ratio,
                dropout=dropout, pool=pool, seed=seed)


def train(data, epochs, seed, batch_size=32, peak_lr=1e-3, model_kwargs=None, verbose=True, augment=True) -> dict:
    """Train on the current device; returns accuracy, loss curve and times per epoch."""
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    X_train, X_test, y_train, y_test = data
    dtype = backend.get_default_dtype()
    model = build_model(seed, **(model_kwargs or {}))
    optimizer = Adam(learning_rate=peak_lr)
    loss = SparseCategoricalCrossEntropy(from_logits=True)
    rng = np.random.default_rng(seed)
    X_eval = backend.to_device(X_test.astype(dtype))
    curve, test_curve, seconds = [], [], []
    for epoch in range(epochs):
        optimizer.learning_rate = learning_rate_at(epoch, epochs, peak_lr)
        X_aug = backend.to_device((shift_images(X_train, rng) if augment else X_train).astype(dtype))
        with Stopwatch() as sw:
            history = model.fit(X_aug, backend.to_device(y_train.astype(np.int64)), loss=loss, optimizer=optimizer,
                                epochs=1, batch_size=batch_size, shuffle=True, seed=seed + epoch, verbose=0)
        seconds.append(sw.seconds)
        curve.append(history.history["loss"][-1])
        test_curve.append(float(np.mean(backend.to_numpy(model.predict(X_eval)).argmax(axis=1) == y_test)))
        if verbose and (epoch + 1) % 10 == 0:
            print(f"  epoch {epoch + 1:3d}  loss {curve[-1]:.4f}  test accuracy {100 * test_curve[-1]:.2f}%  "
                  f"lr {optimizer.learning_rate:.2e}")
    return {"test_accuracy": test_curve[-1], "loss": curve, "test_accuracy_curve": test_curve,
            "epoch_seconds": seconds, "parameters": model.count_params(), "epochs": epochs}


def main(argv=None) -> dict:
    """Train the ViT; returns ``{"test_accuracy", "epoch_s_median", ..., "figures"}``."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    args = parser.parse_args(argv)
    dev = select_device(args.device)
    epochs = args.epochs or (2 if args.quick else EPOCHS)
    model_kwargs = {"dim": 16, "depth": 1} if args.quick else {}
    data = load_data()
    print(f"Digits 8x8: {len(data[0])} training / {len(data[1])} test images; ViT with 2x2 patches, "
          f"Adam (peak lr {args.learning_rate:g}, warm-up + cosine), batch {args.batch_size}, {epochs} epochs")
    result = train(data, epochs, args.seed, args.batch_size, args.learning_rate, model_kwargs)
    result["device"] = str(dev)
    later = result["epoch_seconds"][1:] or result["epoch_seconds"]
    result["epoch_s_median"] = statistics.median(later)
    print(f"  {dev}: test accuracy {100 * result['test_accuracy']:.2f}%  time per epoch "
          f"{result['epoch_s_median']:.3f} s (median of epochs 2-{epochs}; first {result['epoch_seconds'][0]:.3f} s), "
          f"{result['parameters']} parameters")
    if epochs >= EPOCHS:
        verdict = "met" if result["test_accuracy"] >= TARGET else "NOT met"
        print(f"  target >= {100 * TARGET:.0f}% test accuracy: {verdict}")
    result["figures"] = []
    if not args.no_plot:
        plt = pyplot()
        fig, (ax_l, ax_a) = plt.subplots(1, 2, figsize=(10, 3.8))
        ep = np.arange(1, epochs + 1)
        ax_l.plot(ep, result["loss"])
        ax_l.set_title("training loss")
        ax_a.plot(ep, 100 * np.asarray(result["test_accuracy_curve"]))
        ax_a.set_title("test accuracy (%)")
        for ax in (ax_l, ax_a):
            ax.set_xlabel("epoch")
            ax.grid(alpha=0.3)
        result["figures"].append(save_figure(fig, args.out, "vit_digits_training.png"))
    return result


if __name__ == "__main__":
    main()
