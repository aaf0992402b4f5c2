"""An encoder-decoder Transformer reverses digit strings (book section 26.6.3, "Encoder-Decoder").

Synthetic translation: the source is a random string of ``--length`` digits,
the target the same digits reversed. The encoder reads the source; the
decoder, with teacher forcing, reads ``[START] + target[:-1]`` and predicts
every target digit at once (causal self-attention, cross-attention to the
encoder). At test time the decoder writes the answer one digit at a time,
feeding back its own most likely digit (:func:`models.greedy_decode`).
Reversing needs position i of the output to find position L - 1 - i of the
input: one cross-attention head learns exactly that map.
Target: at least 95% exact-match accuracy (every digit right) on 1,000
held-out strings. Training: Adam with a hand-set linear decay of the learning
rate (a library schedule can replace it).

Run::

    python examples/reverse_strings.py [--device cpu|gpu|auto] [--epochs N] [--length L] [--quick]
"""

from __future__ import annotations

import statistics

import numpy as np

import backend
from _common import Stopwatch, make_parser, pyplot, save_figure, select_device

EPOCHS = 5
TARGET = 0.95
START = 10  # the decoder's first input; digits are 0-9


def make_data(samples, length, seed):
    """``(source, decoder_input, target)`` int64 arrays.

    target = the reversed source; decoder_input = START followed by target[:-1].
    """
    rng = np.random.default_rng(seed)
    source = rng.integers(0, 10, size=(samples, length))
    target = source[:, ::-1].copy()
    decoder_input = np.concatenate([np.full((samples, 1), START), target[:, :-1]], axis=1)
    return source, decoder_input, target


def exact_match(model, source, target) -> float:
    """Fraction of strings whose greedy decoding equals the target exactly."""
    from models import greedy_decode

    decoded = greedy_decode(model, source, START, target.shape[1])
    return float(np.mean((decoded == target).all(axis=1)))


def train(length, samples, epochs, seed, dim=64, depth=2, batch_size=64, peak_lr=1e-3, verbose=True) -> dict:
    """Build and train the encoder-decoder on the current device; returns accuracies and times."""
    from layers.losses import SparseCategoricalCrossEntropy
    from models import encoder_decoder
    from optimizers import Adam

    source, decoder_input, target = make_data(samples, length, seed)
    test_source, _, test_target = make_data(1000, length, seed + 1)
    model = encoder_decoder(10, 11, length, length, dim=dim, depth=depth, num_heads=4, mlp_ratio=2, dropout=0.0,
                            seed=seed)
    optimizer = Adam(learning_rate=peak_lr)
    X = backend.to_device(np.concatenate([source, decoder_input], axis=1))
    y = backend.to_device(target)
    losses, token_accuracy, seconds = [], [], []
    for epoch in range(epochs):
        optimizer.learning_rate = peak_lr * (1.0 - epoch / epochs)
        with Stopwatch() as sw:
            history = model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), optimizer=optimizer,
                                epochs=1, batch_size=batch_size, shuffle=True, seed=seed + epoch, verbose=0)
        seconds.append(sw.seconds)
        losses.append(history.history["loss"][-1])
        token_accuracy.append(history.history["accuracy"][-1])
        if verbose:
            print(f"  epoch {epoch + 1:3d}  loss {losses[-1]:.4f}  digit accuracy (teacher forcing) "
                  f"{100 * token_accuracy[-1]:.2f}%  {seconds[-1]:.2f} s")
    return {"exact_match": exact_match(model, test_source, test_target), "loss": losses,
            "token_accuracy": token_accuracy, "epoch_seconds": seconds, "parameters": model.count_params(),
            "epochs": epochs, "length": length, "samples": samples, "example": (test_source[0], model, START)}


def main(argv=None) -> dict:
    """Train and report the exact-match accuracy; returns the numbers printed."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    parser.add_argument("--length", type=int, default=8, help="digits per string (default: 8)")
    parser.add_argument("--samples", type=int, default=20000, help="training strings (default: 20000)")
    args = parser.parse_args(argv)
    dev = select_device(args.device)
    epochs = args.epochs or (2 if args.quick else EPOCHS)
    samples = 512 if args.quick else args.samples
    dim, depth = (16, 1) if args.quick else (64, 2)
    print(f"Reverse strings of {args.length} digits: {samples} training strings, 1000 test strings; "
          f"encoder-decoder (dim {dim}, {depth}+{depth} blocks), {epochs} epochs")
    result = train(args.length, samples, epochs, args.seed, dim=dim, depth=depth)
    source, model, start = result.pop("example")
    from models import greedy_decode

    decoded = greedy_decode(model, source[None], start, args.length)[0]
    print(f"  example: {''.join(map(str, source))} -> {''.join(map(str, decoded))}")
    result["device"] = str(dev)
    result["epoch_s_median"] = statistics.median(result["epoch_seconds"][1:] or result["epoch_seconds"])
    print(f"  {dev}: exact match {100 * result['exact_match']:.2f}% (greedy decoding, 1000 test strings); time per "
          f"epoch {result['epoch_s_median']:.2f} s; {result['parameters']} parameters")
    if epochs >= EPOCHS:
        print(f"  target >= {100 * TARGET:.0f}% exact match: {'met' if result['exact_match'] >= TARGET else 'NOT met'}")
    result["figures"] = []
    if not args.no_plot:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.plot(np.arange(1, epochs + 1), result["loss"])
        ax.set_xlabel("epoch")
        ax.set_title("training loss (teacher forcing)")
        ax.grid(alpha=0.3)
        result["figures"].append(save_figure(fig, args.out, "reverse_strings_loss.png"))
    return result


if __name__ == "__main__":
    main()
