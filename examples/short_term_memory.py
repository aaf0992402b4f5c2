"""The short-term memory problem (book 24.5): gradients that vanish through time, and ones that explode, clipped.

Two pictures on Hochreiter and Schmidhuber's adding problem (two marked values
among L; the target is their sum; ``bench.recurrent.adding_problem``):

1. How much of the loss's gradient reaches each step of the sequence,
   ``mean_b |dE/dx_t|`` against the number of steps back from the end, for a
   SimpleRNN, an LSTM and a GRU at initialization and after a short training.
   The simple cell's products of Jacobians shrink (or grow) geometrically; the
   LSTM's cell ``c_t = f c_{t-1} + i g`` is an additive path (24.3, 24.5.1).
2. Exploding gradients (book 8.6, now in time): a SimpleRNN trained with plain
   SGD (learning rate 0.1) on sequences of 50 steps. Once an update pushes the
   recurrent weights past a spectral radius of 1, the gradient through 50
   steps blows up and the next update destroys the weights (the loss goes to
   inf/NaN). The same run with ``fit(..., clipnorm=1.0)`` (the gradient's
   global norm rescaled to at most 1) trains. The full table by length and
   cell is ``python -m bench recurrent``.

Run::

    python examples/short_term_memory.py [--length 50] [--epochs N] [--quick] [--out DIR]
"""

from __future__ import annotations

import numpy as np

import backend
from _common import make_parser, pyplot, save_figure, select_device

CELLS = ("rnn", "lstm", "gru")
CLIP_LENGTH = 50


def gradient_profiles(length: int, epochs: int, seed: int, samples: int) -> dict:
    """``{cell: {"init": norms, "trained": norms, "mse": test MSE}}``; norms[t] = mean_b |dE/dx_t|."""
    from bench.recurrent import MEMORY, adding_problem, build_model, gradient_by_step, task_loss
    from optimizers import Adam

    rng = np.random.default_rng(seed)
    X, y = adding_problem(samples, length, rng)
    X_test, y_test = (backend.to_device(a) for a in adding_problem(256, length, rng))
    config = dict(MEMORY, hidden=32)
    out = {}
    for cell in CELLS:
        model = build_model("adding", cell, 2, config, seed)
        loss = task_loss("adding")
        init = gradient_by_step(model, loss, X_test, y_test)
        model.fit(X, y, loss=loss, optimizer=Adam(learning_rate=3e-3), epochs=epochs, batch_size=32,
                  clipnorm=1.0, seed=seed, verbose=0)
        out[cell] = {"init": init, "trained": gradient_by_step(model, loss, X_test, y_test),
                          "mse": float(model.evaluate(X_test, y_test)["loss"])}
    return out


def clipping_runs(length: int, epochs: int, seed: int, samples: int) -> dict:
    """SimpleRNN + SGD(0.1) with and without ``clipnorm=1``.

    Returns ``{label: {"loss" (per epoch), "grad_norms", "batch_loss" (per batch), "diverged"}}``.
    """
    from bench.recurrent import adding_problem
    from layers import Dense, Sequential, SimpleRNN
    from layers.callbacks import Callback, TerminateOnNaN
    from optimizers import SGD

    class GradientNorms(Callback):
        """Every batch's loss and whole-gradient norm before clipping (``model.grads``)."""

        def __init__(self):
            self.norms, self.losses = [], []

        def on_batch_end(self, batch, logs=None):
            total = sum(float((backend.to_numpy(g).astype(np.float64) ** 2).sum()) for g in self.model.grads)
            self.norms.append(float(np.sqrt(total)))
            self.losses.append(float(logs["loss"]))

    X, y = adding_problem(samples, length, np.random.default_rng(seed))
    runs = {}
    for label, clipnorm in (("no clipping", None), ("clipnorm=1", 1.0)):
        model = Sequential([SimpleRNN(2, 32, seed=seed), Dense(32, 1, seed=seed + 1)])
        norms = GradientNorms()
        with np.errstate(over="ignore", invalid="ignore"):  # the unclipped run overflows on purpose
            history = model.fit(X, y, loss="mse", optimizer=SGD(learning_rate=0.1), epochs=epochs, batch_size=32,
                                clipnorm=clipnorm, callbacks=[norms, TerminateOnNaN()], seed=seed, verbose=0)
        loss = [float(v) for v in history.history["loss"]]
        runs[label] = {"loss": loss, "grad_norms": norms.norms, "batch_loss": norms.losses,
                       "diverged": not all(np.isfinite(loss)) or loss[-1] > 1e3}
    return runs


def main(argv=None) -> dict:
    """Both experiments; returns ``{"profiles": ..., "clipping": ..., "figures": [...]}``."""
    parser = make_parser(__doc__.splitlines()[0], epochs=10)
    parser.add_argument("--length", type=int, default=50, help="steps of the sequences of part 1 (default 50)")
    args = parser.parse_args(argv)
    length = 20 if args.quick else args.length
    epochs = args.epochs or (1 if args.quick else 10)
    samples = 128 if args.quick else 2048
    select_device(args.device)
    profiles = gradient_profiles(length, epochs, args.seed, samples)
    clipping = clipping_runs(CLIP_LENGTH, 3 if args.quick else 10, args.seed, 256 if args.quick else samples)
    print(f"1. Gradient reaching each step, adding problem, L = {length} "
          "(mean_b |dE/dx_t|, relative to the last step):")
    for cell, p in profiles.items():
        print(f"   {cell:<5s} at init: first step {p['init'][0] / p['init'][-1]:.1e}   after {epochs} epochs: "
              f"{p['trained'][0] / p['trained'][-1]:.1e}   test MSE {p['mse']:.3f} (predicting 1: 0.167)")
    print(f"2. SimpleRNN, SGD(0.1), adding problem of {CLIP_LENGTH} steps:")
    for label, r in clipping.items():
        print(f"   {label:<12s} loss per epoch {', '.join(f'{v:.3g}' for v in r['loss'])}; largest gradient norm "
              f"{max(r['grad_norms']):.2e}{'  -> diverged' if r['diverged'] else ''}")
    figures = []
    if not args.no_plot:
        plt = pyplot()
        fig, axes = plt.subplots(1, 3, figsize=(15, 4))
        for k, (cell, p) in enumerate(profiles.items()):
            back = np.arange(length)[::-1]  # steps back from the end
            axes[0].plot(back, p["init"] / p["init"][-1], color=f"C{k}", label=f"{cell} (init)")
            axes[0].plot(back, p["trained"] / p["trained"][-1], "--", color=f"C{k}", label=f"{cell} (trained)")
        axes[0].set_yscale("log")
        axes[0].set_xlabel("steps back from the end")
        axes[0].set_title("|dE/dx_t| relative to the last step")
        for k, (label, r) in enumerate(clipping.items()):
            axes[1].plot(np.arange(1, len(r["grad_norms"]) + 1), r["grad_norms"], color=f"C{k + 3}", label=label)
            axes[2].plot(np.arange(1, len(r["batch_loss"]) + 1), r["batch_loss"], color=f"C{k + 3}", label=label)
        axes[1].set_yscale("log")
        axes[1].set_xlabel("batch")
        axes[1].set_title("gradient norm before clipping (SimpleRNN, SGD)")
        axes[2].set_yscale("log")
        axes[2].set_xlabel("batch")
        axes[2].set_title("training loss per batch (MSE; inf not drawn)")
        for ax in axes:
            ax.grid(alpha=0.3, which="both")
            ax.legend(fontsize=8)
        figures.append(save_figure(fig, args.out, "short_term_memory.png"))
    return {"profiles": profiles, "clipping": clipping, "figures": figures}


if __name__ == "__main__":
    main()
