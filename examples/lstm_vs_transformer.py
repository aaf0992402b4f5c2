"""Book section 26.1 measured: an LSTM and a Transformer of similar size on the same long-range task.

Section 26.1 ("the sequential bottleneck of RNNs"): a recurrent network
carries what it read early through every later step, one step at a time,
while attention links any two positions directly, in parallel. The task is
:mod:`long_range`'s: random symbols of lengths 8 to 128; is the first symbol
equal to the last? Both models see the very same sequences (the Transformer
with the padding masked at the end, the LSTM with it in front, so its last
step is the last symbol), are trained with the same budget (Adam, epochs,
batch) and are compared by test accuracy per length and wall time per epoch.

Run::

    python examples/lstm_vs_transformer.py [--device cpu|gpu|auto] [--epochs N] [--lengths 8,32,128] [--quick]
"""

from __future__ import annotations

import statistics

import numpy as np

import backend
from _common import Stopwatch, make_parser, pyplot, save_figure, select_device
from long_range import make_first_last_task, transformer_sequence_task

EPOCHS = 10
LENGTHS = "8,16,32,64,128"


def pad_in_front(task: dict) -> np.ndarray:
    """The task's sequences with the padding moved before the symbols: ``(N, T)`` int64.

    ``make_first_last_task`` pads at the end; a recurrent model reading left
    to right must see the last symbol at its last step, so each row
    ``[s_1 .. s_L, pad .. pad]`` becomes ``[pad .. pad, s_1 .. s_L]``.
    """
    X, lengths = task["X"], task["lengths"]
    out = np.full_like(X, task["pad_id"])
    T = X.shape[1]
    for i, L in enumerate(lengths):
        out[i, T - L:] = X[i, :L]
    return out


def lstm_model(vocab_size: int, num_classes: int, *, embed_dim: int, hidden: int, seed: int):
    """Embedding -> LSTM (last state) -> Dense logits (book 24.5.1)."""
    from layers import LSTM, Dense, Embedding, Sequential

    return Sequential([Embedding(vocab_size, embed_dim, weight_init="small_normal", seed=seed),
                       LSTM(embed_dim, hidden, seed=seed + 1), Dense(hidden, num_classes, seed=seed + 2)])


def lstm_sequence_task(train, test, *, embed_dim=64, hidden=96, epochs=EPOCHS, batch_size=64,
                       learning_rate=1e-3, seed=0, verbose=False) -> dict:
    """Train the LSTM on ``train`` (padding in front) and measure it on ``test``, by length.

    Same arguments and result as :func:`long_range.transformer_sequence_task`
    (``hidden`` sets the size: report ``parameters`` beside the Transformer's).
    """
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    model = lstm_model(train["vocab_size"], train["num_classes"], embed_dim=embed_dim, hidden=hidden, seed=seed)
    optimizer = Adam(learning_rate=learning_rate)
    X, y = backend.to_device(pad_in_front(train)), backend.to_device(train["y"])
    losses, seconds = [], []
    for epoch in range(epochs):
        with Stopwatch() as sw:
            history = model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), optimizer=optimizer,
                                epochs=1, batch_size=batch_size, shuffle=True, seed=seed + epoch, verbose=0,
                                clipnorm=1.0)
        seconds.append(sw.seconds)
        losses.append(history.history["loss"][-1])
        if verbose:
            print(f"  LSTM epoch {epoch + 1:3d}  loss {losses[-1]:.4f}  {seconds[-1]:.2f} s")
    logits = model.predict(backend.to_device(pad_in_front(test)), batch_size=256)
    correct = backend.to_numpy(logits).argmax(axis=1) == test["y"]
    by_length = {int(L): float(correct[test["lengths"] == L].mean()) for L in np.unique(test["lengths"])}
    return {"accuracy_by_length": by_length, "test_accuracy": float(correct.mean()), "epoch_seconds": seconds,
            "epoch_s_median": statistics.median(seconds[1:] or seconds), "loss": losses,
            "parameters": model.count_params(), "device": str(backend.get_device())}


def main(argv=None) -> dict:
    """Train both models on the same sequences; print accuracy by length and time per epoch side by side."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    parser.add_argument("--lengths", default=LENGTHS, help=f"sequence lengths (default: {LENGTHS})")
    parser.add_argument("--samples", type=int, default=6000, help="training sequences (default: 6000)")
    args = parser.parse_args(argv)
    select_device(args.device)
    lengths = [int(s) for s in args.lengths.split(",")]
    epochs = args.epochs or (1 if args.quick else EPOCHS)
    samples = 128 if args.quick else args.samples
    size = {"dim": 16, "hidden": 24, "embed": 16} if args.quick else {"dim": 64, "hidden": 96, "embed": 64}
    train = make_first_last_task(samples, lengths, seed=args.seed)
    test = make_first_last_task(128 if args.quick else 2000, lengths, seed=args.seed + 1)
    print(f"first symbol == last symbol? lengths {lengths}; {samples} training / {len(test['y'])} test sequences; "
          f"{epochs} epochs each, Adam lr 1e-3, batch 64")
    runs = {
        "Transformer": transformer_sequence_task(train, test, dim=size["dim"], epochs=epochs, seed=args.seed),
        "LSTM": lstm_sequence_task(train, test, embed_dim=size["embed"], hidden=size["hidden"], epochs=epochs,
                                   seed=args.seed),
    }
    header = "  length " + "".join(f"{name:>14s}" for name in runs)
    print(header)
    for L in sorted(runs["LSTM"]["accuracy_by_length"]):
        print(f"  {L:6d} " + "".join(f"{100 * r['accuracy_by_length'][L]:13.1f}%" for r in runs.values()))
    for name, r in runs.items():
        print(f"  {name:<11s} {r['parameters']:7d} parameters, {r['epoch_s_median']:.2f} s per epoch "
              f"({r['device']}), overall {100 * r['test_accuracy']:.1f}%")
    result = {"runs": runs, "lengths": lengths, "epochs": epochs, "samples": samples, "figures": []}
    if not args.no_plot:
        plt = pyplot()
        fig, (ax_a, ax_t) = plt.subplots(1, 2, figsize=(10, 3.8))
        for name, r in runs.items():
            ls = sorted(r["accuracy_by_length"])
            ax_a.plot(ls, [100 * r["accuracy_by_length"][L] for L in ls], "o-", label=name)
        ax_a.set_xscale("log", base=2)
        ax_a.set_xlabel("sequence length")
        ax_a.set_ylabel("test accuracy (%)")
        ax_a.set_ylim(40, 101)
        ax_t.bar(list(runs), [r["epoch_s_median"] for r in runs.values()])
        ax_t.set_ylabel("seconds per epoch")
        for ax in (ax_a, ax_t):
            ax.grid(alpha=0.3)
        ax_a.legend()
        result["figures"].append(save_figure(fig, args.out, "lstm_vs_transformer.png"))
    return result


if __name__ == "__main__":
    main()
