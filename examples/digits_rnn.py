"""Handwritten digits read row by row by an LSTM (book chapter 24: a sequence of 8 steps of 8 pixels).

The 1,797 8x8 digits of scikit-learn (``load_digits``, no download), split
75/25, stratified, ``random_state=0`` (the split of ``digits_cnn.py``). Each
image is a sequence: step t is row t (8 grey levels in [0, 1]). The network::

    (8 steps, 8 pixels) -> LSTM(8, 64)  [or --cell gru / rnn, --bidirectional]  -> last state (64)
                        -> Dense(64, 10)                                          -> 10 logits

is trained with the softmax cross-entropy on the logits (section 11.3) and
Adam. Target: at least 97% accuracy on the held-out quarter (an LSTM sees the
digit one row at a time and must carry what it saw in its cell).

Run::

    python examples/digits_rnn.py [--device cpu|gpu|auto|all] [--cell lstm|gru|rnn] [--bidirectional] [--quick]
"""

from __future__ import annotations

from _common import make_parser, stratified_split, train_and_report

EPOCHS = 40
HIDDEN = 64


def load_data():
    """Digits as sequences ``(n, 8 rows, 8 pixels)`` in [0, 1] and integer labels; stratified 25% test split."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    return stratified_split(digits.images / 16.0, digits.target, seed=0)


def model_builder(cell: str, bidirectional: bool):
    """``build_model(seed)`` for the network of the module docstring."""
    from layers import GRU, LSTM, Bidirectional, Dense, Sequential, SimpleRNN

    layer_class = {"lstm": LSTM, "gru": GRU, "rnn": SimpleRNN}[cell]

    def build_model(seed: int):
        recurrent = layer_class(8, HIDDEN, seed=seed)
        if bidirectional:
            return Sequential([Bidirectional(recurrent), Dense(2 * HIDDEN, 10, seed=seed + 1)])
        return Sequential([recurrent, Dense(HIDDEN, 10, seed=seed + 1)])

    return build_model


def main(argv=None) -> dict:
    """Train on each requested device; returns ``{"runs": {device: {...}}, "figures": [...]}``."""
    parser = make_parser(__doc__.splitlines()[0], allow_all_devices=True, epochs=EPOCHS)
    parser.add_argument("--cell", choices=["lstm", "gru", "rnn"], default="lstm", help="recurrent cell (default lstm)")
    parser.add_argument("--bidirectional", action="store_true", help="read the rows downwards and upwards")
    parser.add_argument("--batch-size", type=int, default=32, help="mini-batch size (default: 32)")
    parser.add_argument("--learning-rate", type=float, default=5e-3, help="Adam's learning rate (default: 5e-3)")
    args = parser.parse_args(argv)
    epochs = args.epochs or (5 if args.quick else EPOCHS)
    data = load_data()
    name = ("Bidirectional " if args.bidirectional else "") + args.cell.upper()
    print(f"Digits read row by row (8 steps of 8 pixels): {len(data[0])} training / {len(data[1])} test images "
          f"(stratified 25%, random_state=0); {name}({HIDDEN}) + Dense(10), Adam (lr {args.learning_rate:g}), "
          f"batch {args.batch_size}, {epochs} epochs")
    return train_and_report(model_builder(args.cell, args.bidirectional), data, args, epochs, full_epochs=EPOCHS,
                            target=0.97, figure=f"digits_rnn_{args.cell}_training.png")


if __name__ == "__main__":
    main()
