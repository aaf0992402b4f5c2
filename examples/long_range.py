"""A long-range dependency by sequence length: the Transformer side of book section 26.1's comparison.

Section 26.1 ("the sequential bottleneck of RNNs"): a recurrent network must
carry what it read early through every later step, one step at a time,
while attention links any two positions directly. The task here makes that
measurable: sequences of random symbols of varying length; the label says
whether the first symbol equals the last. :func:`transformer_sequence_task`
trains an encoder-only Transformer (:class:`models.TransformerClassifier`,
section 26.6.1, padding masked) on any such task and returns the test
accuracy per sequence length and the wall time per epoch, so a recurrent
model can be run on the very same arrays and compared (the LSTM side is
another issue). Adam with a fixed learning rate (a schedule can replace it).

Run::

    python examples/long_range.py [--device cpu|gpu|auto] [--epochs N] [--lengths 8,16,32,64] [--quick]
"""

from __future__ import annotations

import statistics

import numpy as np

import backend
from _common import Stopwatch, make_parser, pyplot, save_figure, select_device

EPOCHS = 10


def make_first_last_task(samples, lengths, symbols=8, seed=0) -> dict:
    """Random sequences of ``symbols`` symbols, lengths drawn from ``lengths``, padded to the longest.

    Label 1 when the first symbol equals the last (half of the samples, by
    construction), else 0. The padding id is ``symbols``.

    Returns
    -------
    dict
        ``"X"`` int64 ``(samples, max(lengths))``, ``"lengths"`` ``(samples,)``,
        ``"y"`` int64 ``(samples,)``, ``"vocab_size"`` (symbols + 1), ``"pad_id"``, ``"num_classes"`` (2).
    """
    rng = np.random.default_rng(seed)
    lengths = np.asarray(lengths)
    seq_len = rng.choice(lengths, size=samples)
    X = np.full((samples, int(lengths.max())), symbols, dtype=np.int64)
    y = rng.integers(0, 2, size=samples)
    for i, L in enumerate(seq_len):
        row = rng.integers(0, symbols, size=L)
        if y[i]:
            row[-1] = row[0]
        elif row[-1] == row[0]:
            row[-1] = (row[0] + rng.integers(1, symbols)) % symbols
        X[i, :L] = row
    return {"X": X, "lengths": seq_len, "y": y.astype(np.int64), "vocab_size": symbols + 1, "pad_id": symbols,
            "num_classes": 2}


def transformer_sequence_task(train, test, *, dim=64, depth=2, num_heads=4, epochs=EPOCHS, batch_size=64,
                              learning_rate=1e-3, seed=0, verbose=False) -> dict:
    """Train a :class:`models.TransformerClassifier` on ``train`` and measure it on ``test``, by length.

    Parameters
    ----------
    train, test : dict
        As :func:`make_first_last_task` returns: ``X`` padded ids ``(N, T)``,
        ``lengths`` ``(N,)``, ``y`` labels ``(N,)``, and ``vocab_size``, ``pad_id``,
        ``num_classes`` (read from ``train``).
    dim, depth, num_heads : int
        Size of the model (report ``parameters`` to match a recurrent model's).
    epochs, batch_size, learning_rate, seed
        Training (Adam, softmax cross-entropy); on the current device.

    Returns
    -------
    dict
        ``"accuracy_by_length"`` ``{length: test accuracy}``, ``"test_accuracy"``,
        ``"epoch_seconds"`` (wall time of each epoch, the GPU synchronized),
        ``"epoch_s_median"`` (epochs 2.. when there are several), ``"loss"``,
        ``"parameters"``, ``"device"``.
    """
    from layers.losses import SparseCategoricalCrossEntropy
    from models import TransformerClassifier
    from optimizers import Adam

    model = TransformerClassifier(train["vocab_size"], train["num_classes"], train["X"].shape[1], dim=dim,
                                  depth=depth, num_heads=num_heads, mlp_ratio=2, pad_id=train["pad_id"], seed=seed)
    optimizer = Adam(learning_rate=learning_rate)
    X, y = backend.to_device(train["X"]), backend.to_device(train["y"])
    losses, seconds = [], []
    for epoch in range(epochs):
        with Stopwatch() as sw:
            history = model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), optimizer=optimizer,
                                epochs=1, batch_size=batch_size, shuffle=True, seed=seed + epoch, verbose=0)
        seconds.append(sw.seconds)
        losses.append(history.history["loss"][-1])
        if verbose:
            print(f"  epoch {epoch + 1:3d}  loss {losses[-1]:.4f}  {seconds[-1]:.2f} s")
    predicted = backend.to_numpy(model.predict(backend.to_device(test["X"]), batch_size=256)).argmax(axis=1)
    correct = predicted == test["y"]
    by_length = {int(L): float(correct[test["lengths"] == L].mean()) for L in np.unique(test["lengths"])}
    return {"accuracy_by_length": by_length, "test_accuracy": float(correct.mean()), "epoch_seconds": seconds,
            "epoch_s_median": statistics.median(seconds[1:] or seconds), "loss": losses,
            "parameters": model.count_params(), "device": str(backend.get_device())}


def main(argv=None) -> dict:
    """Run the Transformer on the first-equals-last task; print accuracy by length and time per epoch."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    parser.add_argument("--lengths", default="8,16,32,64", help="sequence lengths (default: 8,16,32,64)")
    parser.add_argument("--samples", type=int, default=8000, help="training sequences (default: 8000)")
    args = parser.parse_args(argv)
    select_device(args.device)
    lengths = [int(s) for s in args.lengths.split(",")]
    epochs = args.epochs or (1 if args.quick else EPOCHS)
    samples, dim = (256, 16) if args.quick else (args.samples, 64)
    train = make_first_last_task(samples, lengths, seed=args.seed)
    test = make_first_last_task(2000 if not args.quick else 256, lengths, seed=args.seed + 1)
    print(f"first symbol == last symbol? lengths {lengths}, {samples} training / {len(test['y'])} test sequences; "
          f"encoder-only Transformer dim {dim}, {epochs} epochs")
    result = transformer_sequence_task(train, test, dim=dim, epochs=epochs, seed=args.seed, verbose=True)
    for L, acc in result["accuracy_by_length"].items():
        print(f"  length {L:4d}: test accuracy {100 * acc:.1f}%")
    print(f"  {result['device']}: overall {100 * result['test_accuracy']:.1f}%; time per epoch "
          f"{result['epoch_s_median']:.2f} s; {result['parameters']} parameters")
    result["figures"] = []
    if not args.no_plot:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(list(result["accuracy_by_length"]), [100 * a for a in result["accuracy_by_length"].values()], "o-",
                label="Transformer")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sequence length")
        ax.set_ylabel("test accuracy (%)")
        ax.set_ylim(40, 101)
        ax.grid(alpha=0.3)
        ax.legend()
        result["figures"].append(save_figure(fig, args.out, "long_range_accuracy.png"))
    return result


if __name__ == "__main__":
    main()
