"""A character-level GPT trained on Shakespeare (book section 26.6.2, "Decoder-Only (Ex: GPT)").

The corpus is ``examples/data/shakespeare_excerpt.txt`` (about 220 KB of
Shakespeare's plays, public domain; see ``examples/data/README.md``). Every
character is a token; the model (:func:`models.gpt`: token and position
embeddings, causal pre-norm Transformer blocks, a linear head) reads windows
of ``--context`` characters and predicts, at every position, the next one.
Training: softmax cross-entropy, Adam with a hand-set warm-up then cosine
learning rate (:func:`learning_rate_at`; a library schedule can replace it),
on random windows of the first 90% of the text; the last 10% gives the
validation loss. At the end it prints samples generated with temperature and
top-k (:func:`models.generate`), the loss curve (figure), and the time per
training step on the device.

Run::

    python examples/char_gpt.py [--device cpu|gpu|auto] [--steps N] [--quick] [--out DIR]
"""

from __future__ import annotations

import math
import statistics
import time
from pathlib import Path

import numpy as np

import backend
from _common import make_parser, pyplot, save_figure, select_device

CORPUS = Path(__file__).resolve().parent / "data" / "shakespeare_excerpt.txt"
STEPS = 1500


def load_corpus(path=CORPUS, limit=None):
    """``(ids int64 (N,), alphabet str)``: the text as indices into its sorted set of characters."""
    text = Path(path).read_text(encoding="utf-8")
    if limit is not None:
        text = text[:limit]
    alphabet = "".join(sorted(set(text)))
    index = {c: i for i, c in enumerate(alphabet)}
    return np.array([index[c] for c in text], dtype=np.int64), alphabet


def windows(ids, starts, context):
    """``(X, y)``: ``X[b] = ids[s : s + context]``, ``y[b] = ids[s + 1 : s + context + 1]`` for each start s."""
    offsets = np.asarray(starts)[:, None] + np.arange(context + 1)[None, :]
    chunk = ids[offsets]
    return chunk[:, :-1], chunk[:, 1:]


def learning_rate_at(step, steps, peak, warmup=100):
    """Linear warm-up to ``peak`` over ``warmup`` steps, then cosine decay to ``peak / 10``."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, steps - warmup))
    return peak * (0.1 + 0.45 * (1.0 + math.cos(math.pi * progress)))


def decode(ids, alphabet) -> str:
    return "".join(alphabet[int(i)] for i in ids)


def train(ids, vocab, steps, context, batch_size, seed, dim=128, depth=4, num_heads=4, peak_lr=3e-3,
          eval_every=100, verbose=True) -> dict:
    """Train a GPT on random windows of ``ids``; returns the model, loss curves and times per step."""
    from layers.losses import SparseCategoricalCrossEntropy
    from layers.training import evaluation_mode
    from models import gpt
    from optimizers import Adam

    split = int(0.9 * len(ids))
    train_ids, val_ids = ids[:split], ids[split:]
    model = gpt(vocab, context, dim=dim, depth=depth, num_heads=num_heads, mlp_ratio=4, dropout=0.1, seed=seed)
    params = model.params
    optimizer = Adam(learning_rate=peak_lr)
    loss = SparseCategoricalCrossEntropy(from_logits=True)
    rng = np.random.default_rng(seed)
    val_X, val_y = windows(val_ids, rng.integers(0, len(val_ids) - context - 1, 64), context)
    val_X, val_y = backend.to_device(val_X), backend.to_device(val_y)
    curve, val_curve, step_seconds = [], [], []
    for step in range(steps):
        optimizer.learning_rate = learning_rate_at(step, steps, peak_lr)
        X, y = windows(train_ids, rng.integers(0, len(train_ids) - context - 1, batch_size), context)
        backend.synchronize()
        start = time.perf_counter()
        logits = model.forward(backend.to_device(X))
        value = loss.forward(logits, backend.to_device(y))
        _, grads = model.backward(loss.backward())
        optimizer.step(params, grads)
        backend.synchronize()
        step_seconds.append(time.perf_counter() - start)
        curve.append(float(value))
        if (step + 1) % eval_every == 0 or step + 1 == steps:
            with evaluation_mode(model):
                val_curve.append((step + 1, float(loss.forward(model.forward(val_X), val_y))))
            if verbose:
                print(f"  step {step + 1:5d}  loss {np.mean(curve[-eval_every:]):.4f}  val loss {val_curve[-1][1]:.4f}"
                      f"  lr {optimizer.learning_rate:.2e}  {1e3 * statistics.median(step_seconds[-eval_every:]):.1f}"
                      " ms/step")
    return {"model": model, "loss": curve, "val_loss": val_curve, "step_seconds": step_seconds,
            "parameters": model.count_params()}


def main(argv=None) -> dict:
    """Train, sample and report; returns the numbers and samples printed."""
    parser = make_parser(__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default: {STEPS}; 3 with --quick)")
    parser.add_argument("--context", type=int, default=64, help="characters per window (default: 64)")
    parser.add_argument("--batch-size", type=int, default=32, help="windows per step (default: 32)")
    parser.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (default: 0.8)")
    parser.add_argument("--top-k", type=int, default=10, help="sample among the k likeliest (default: 10)")
    parser.add_argument("--sample-length", type=int, default=300, help="characters per sample (default: 300)")
    args = parser.parse_args(argv)
    dev = select_device(args.device)
    steps = args.steps or (3 if args.quick else STEPS)
    ids, alphabet = load_corpus(limit=20000 if args.quick else None)
    dim, depth = (32, 1) if args.quick else (128, 4)
    sample_length = 20 if args.quick else args.sample_length
    print(f"corpus: {CORPUS.name}, {len(ids)} characters, {len(alphabet)} distinct; GPT dim {dim}, {depth} blocks, "
          f"4 heads, context {args.context}; batch {args.batch_size}, {steps} steps")
    result = train(ids, len(alphabet), steps, args.context, args.batch_size, args.seed, dim=dim, depth=depth,
                   eval_every=max(1, min(100, steps)))
    model = result.pop("model")
    from models import generate

    prompt = np.array([alphabet.index(c) for c in "ROMEO:\n"])
    samples = {}
    for temperature, top_k in ((args.temperature, args.top_k), (1.0, None)):
        text = decode(generate(model, prompt, sample_length, temperature=temperature, top_k=top_k,
                               seed=args.seed), alphabet)
        samples[f"temperature={temperature:g}, top_k={top_k}"] = text
        print(f"\n--- sample (temperature {temperature:g}, top-k {top_k}) ---\n{text}\n")
    later = result["step_seconds"][1:] or result["step_seconds"]
    result.update({"device": str(dev), "samples": samples, "step_ms_median": 1e3 * statistics.median(later),
                   "first_step_s": result["step_seconds"][0], "steps": steps, "alphabet_size": len(alphabet)})
    print(f"  {dev}: final val loss {result['val_loss'][-1][1]:.4f} (nats/char); time per step "
          f"{result['step_ms_median']:.1f} ms (median; first step {result['first_step_s']:.2f} s, "
          f"batch {args.batch_size} x {args.context} chars); {result['parameters']} parameters")
    result["figures"] = []
    if not args.no_plot:
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 3.8))
        ax.plot(np.arange(1, steps + 1), result["loss"], alpha=0.5, label="training (per step)")
        ax.plot(*zip(*result["val_loss"]), "o-", label="validation")
        ax.set_xlabel("step")
        ax.set_ylabel("cross-entropy (nats/char)")
        ax.set_title("char GPT on Shakespeare")
        ax.grid(alpha=0.3)
        ax.legend()
        result["figures"].append(save_figure(fig, args.out, "char_gpt_loss.png"))
    return result


if __name__ == "__main__":
    main()
