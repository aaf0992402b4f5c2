"""The double moons (slides 003): a perceptron against a small MLP.

Two interleaved half-moons (scikit-learn's ``make_moons``) are not linearly
separable. The slides first fit a single neuron (a straight boundary), then a
multilayer network. Both are trained here on the same stratified 75/25 split:

* perceptron: Dense(2, 1) (a logistic regression, BCE on the logit);
* MLP: Dense(2, 16) -> ReLU -> Dense(16, 16) -> ReLU -> Dense(16, 1), He init.

The script prints both accuracies and draws both decision boundaries.

Run::

    python examples/moons.py [--device cpu|gpu|auto] [--epochs N] [--quick] [--out DIR]
"""

from __future__ import annotations

from _common import (accuracy, fit_binary, make_parser, plot_decision_boundary, predict_proba,
                     pyplot, save_figure, select_device, stratified_split)

EPOCHS = 150


def make_data(n_samples: int, seed: int):
    """Two noisy half-moons, stratified 75/25 split."""
    from sklearn.datasets import make_moons

    X, y = make_moons(n_samples=n_samples, noise=0.2, random_state=seed)
    return stratified_split(X, y, seed)


def build_perceptron(seed: int):
    from layers import Dense, Sequential

    return Sequential([Dense(2, 1, weight_init="xavier_uniform", seed=seed)])


def build_mlp(seed: int, hidden: int = 16):
    from layers import Dense, Sequential, get_activation

    return Sequential([
        Dense(2, hidden, weight_init="he_normal", seed=seed),
        get_activation("relu"),
        Dense(hidden, hidden, weight_init="he_normal", seed=seed + 1),
        get_activation("relu"),
        Dense(hidden, 1, weight_init="xavier_uniform", seed=seed + 2),
    ])


def main(argv=None) -> dict:
    """Train both models; returns ``{"perceptron": {...}, "mlp": {...}, "figures": [...]}``."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    args = parser.parse_args(argv)
    select_device(args.device)
    epochs = args.epochs or (60 if args.quick else EPOCHS)
    X_train, X_test, y_train, y_test = make_data(400 if args.quick else 1000, args.seed)
    print(f"Double moons: {len(X_train)} training / {len(X_test)} test points, "
          f"{epochs} epochs of Adam (lr 0.02), BCE on the logit")
    results, models = {}, {}
    for name, build in (("perceptron", build_perceptron), ("mlp", build_mlp)):
        model = build(args.seed)
        history = fit_binary(model, X_train, y_train, epochs=epochs, batch_size=32, learning_rate=0.02,
                             seed=args.seed)
        results[name] = {
            "parameters": model.count_params(),
            "train_accuracy": accuracy(model, X_train, y_train),
            "test_accuracy": accuracy(model, X_test, y_test),
            "loss": history.history["loss"],
        }
        models[name] = model
        r = results[name]
        print(f"  {name:<10s} ({r['parameters']:3d} parameters): final loss {r['loss'][-1]:.4f}, "
              f"train accuracy {100 * r['train_accuracy']:.1f}%, test accuracy {100 * r['test_accuracy']:.1f}%")
    figures = []
    if not args.no_plot:
        plt = pyplot()
        fig, axes = plt.subplots(1, 2, figsize=(10, 4.5))
        titles = {"perceptron": "perceptron (1 neuron)", "mlp": "MLP 2-16-16-1 (ReLU)"}
        for ax, (name, model) in zip(axes, models.items()):
            plot_decision_boundary(ax, lambda p, m=model: predict_proba(m, p), X_test, y_test,
                                   f"{titles[name]}: test {100 * results[name]['test_accuracy']:.1f}%")
        figures.append(save_figure(fig, args.out, "moons_decision_boundary.png"))
    results["figures"] = figures
    return results


if __name__ == "__main__":
    main()
