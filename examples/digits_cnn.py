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

from _common import make_parser, stratified_split, train_and_report

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
    return train_and_report(build_model, data, args, epochs, full_epochs=EPOCHS, target=0.98,
                            figure="digits_cnn_training.png")


if __name__ == "__main__":
    main()
