"""Concentric circles with 4 hidden nodes (slides 001: "an MLP with one hidden layer of four nodes").

Two rings of points (scikit-learn's ``make_circles``, no download) cannot be
split by a line; with four tanh units in one hidden layer the network draws a
closed boundary: each unit is a soft threshold (a "ridge"), and four of them
combine into a rounded square around the inner ring, as the slides' figures
show. Dense(2, 4) -> Tanh -> Dense(4, 1), BCE on the logit, Adam.

The data are split 75/25 (stratified); the script prints train and test
accuracy and draws the decision boundary over the test points.

Run::

    python examples/circles.py [--device cpu|gpu|auto] [--epochs N] [--quick] [--out DIR]
"""

from __future__ import annotations

from _common import accuracy, fit_binary, make_parser, save_decision_boundary, select_device, stratified_split

EPOCHS = 200


def make_data(n_samples: int, seed: int):
    """Two noisy concentric circles (radius ratio 0.5), stratified 75/25 split."""
    from sklearn.datasets import make_circles

    X, y = make_circles(n_samples=n_samples, factor=0.5, noise=0.08, random_state=seed)
    return stratified_split(X, y, seed)


def build_model(seed: int, hidden: int = 4):
    """Dense(2, hidden) -> Tanh -> Dense(hidden, 1)."""
    from layers import Dense, Sequential, get_activation

    return Sequential([
        Dense(2, hidden, weight_init="xavier_uniform", seed=seed),
        get_activation("tanh"),
        Dense(hidden, 1, weight_init="xavier_uniform", seed=seed + 1),
    ])


def main(argv=None) -> dict:
    """Train and report; returns ``{"train_accuracy", "test_accuracy", "loss", "figures"}``."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    args = parser.parse_args(argv)
    select_device(args.device)
    epochs = args.epochs or (100 if args.quick else EPOCHS)
    X_train, X_test, y_train, y_test = make_data(300 if args.quick else 600, args.seed)
    model = build_model(args.seed)
    history = fit_binary(model, X_train, y_train, epochs=epochs, batch_size=16, learning_rate=0.05,
                         seed=args.seed)
    train_acc, test_acc = accuracy(model, X_train, y_train), accuracy(model, X_test, y_test)
    print(f"Concentric circles, 2-4-1 network (tanh hidden, {model.count_params()} parameters), "
          f"{len(X_train)} training / {len(X_test)} test points, {epochs} epochs of Adam (lr 0.05)")
    print(f"  final loss {history.history['loss'][-1]:.4f}")
    print(f"  train accuracy {100 * train_acc:.1f}%   test accuracy {100 * test_acc:.1f}%")
    figures = []
    if not args.no_plot:
        figures.append(save_decision_boundary(model, X_test, y_test,
                                              f"Circles, 4 hidden nodes: test accuracy {100 * test_acc:.1f}%",
                                              args.out, "circles_decision_boundary.png", size=4.8))
    return {"train_accuracy": train_acc, "test_accuracy": test_acc, "loss": history.history["loss"],
            "figures": figures}


if __name__ == "__main__":
    main()
