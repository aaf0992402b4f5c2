"""The script the MPI tests start with ``mpiexec -n N``: tiny trainings whose weights every rank writes to a file.

Every scenario trains a tiny model in float64 for a few steps; ``run(name, None)``
is the single-process reference on the same global batches (the tests call it
in their own process); the History's metrics (F1, AUC, R², the confusion
matrix, ... merged over the ranks) are written too. ``--fail`` makes rank 1 raise in the middle of
training; ``--stop`` makes rank 1 see a NaN loss (TerminateOnNaN);
``--raise-outside-fit`` makes rank 1 raise while rank 0 waits in a barrier;
``--mismatch`` gives rank 1 another batch size. On a GPU
machine, ``--device gpu --kind nccl`` runs the same on NCCL and first checks
NCCL's all-reduce and broadcast directly (they run even on one rank).

Run: ``mpiexec -n 2 python tests/distributed/mpi_worker.py --out DIR [--scenarios a,b] [--fail | --stop]
[--device cpu|gpu] [--kind mpi|nccl|auto]``
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

import backend

SAMPLES, BATCH, EPOCHS = 51, 16, 2          # 51 = 3 x 16 + 3: a short last batch, uneven slices


def data(kind: str):
    rng = np.random.default_rng(7)
    shape = (SAMPLES, 6, 6, 1) if kind == "cnn" else (SAMPLES, 5)
    X, y = rng.standard_normal(shape), rng.integers(0, 3, SAMPLES)
    if kind == "binary":
        return X, (y == 1).astype(np.float64)[:, None]
    if kind == "memmap":        # the same numbers read from a memory-mapped file (batches prefetched in a thread)
        import tempfile

        folder = Path(tempfile.mkdtemp())
        np.save(folder / "X.npy", X)
        mapped = np.load(folder / "X.npy", mmap_mode="r")
        (folder / "X.npy").unlink()       # the mapping stays valid; nothing is left behind
        folder.rmdir()
        return mapped, y
    return X, y


def mlp(seed: int, batch_norm=None):
    from layers import BatchNormalization, Dense, ReLU, Sequential

    middle = [] if batch_norm is None else [BatchNormalization(8, sync=batch_norm)]
    return Sequential([Dense(5, 8, seed=seed), *middle, ReLU(), Dense(8, 3, seed=seed + 1)])


def binary(seed: int):
    from layers import Dense, ReLU, Sequential

    return Sequential([Dense(5, 8, seed=seed), ReLU(), Dense(8, 1, seed=seed + 1)])


def cnn(seed: int):
    from layers import Convolution2D, Dense, Flatten, MaxPooling2D, ReLU, Sequential

    return Sequential([Convolution2D(1, 3, 3, padding=1, seed=seed), ReLU(), MaxPooling2D((2, 2)), Flatten(),
                       Dense(27, 3, seed=seed + 1)])


def optimizer(name: str):
    from optimizers import SGD, Adam, CosineDecay, Momentum

    return {"sgd": lambda: SGD(0.1), "momentum": lambda: Momentum(0.05, momentum=0.9),
            "adam": lambda: Adam(CosineDecay(1e-2, decay_steps=6))}[name]()


#: name -> (data kind, model builder, optimizer)
SCENARIOS = {
    "mlp_sgd": ("mlp", mlp, "sgd"),
    "mlp_momentum_wrapper": ("mlp", mlp, "momentum"),        # fit(optimizer=DataParallel(...)): the wrapper alone
    "mlp_adam_schedule_flat": ("mlp", mlp, "adam"),          # flatten_parameters: the zero-copy path
    "cnn_adam_schedule": ("cnn", cnn, "adam"),
    "mlp_sync_batchnorm": ("mlp", lambda seed: mlp(seed, batch_norm=True), "momentum"),
    "custom_loop_wrapper": ("mlp", mlp, "momentum"),         # DataParallel.step in a hand-written loop
    "custom_loop_late_broadcast": ("mlp", mlp, "sgd"),       # no broadcast before: the first update is skipped
    "mlp_metrics_memmap": ("memmap", mlp, "momentum"),        # metric states merged; X memory-mapped, prefetched
    "binary_auc": ("binary", binary, "adam"),                  # AUC, F1, R² ... of a binary classifier, merged
}


def fit_options(name: str, X, y) -> dict:
    """The loss, metrics and validation data of scenario ``name`` (its fit's other arguments are shared)."""
    from layers.training.metrics import F1Score, TopKAccuracy

    if name == "binary_auc":
        return {"loss": "bce", "validation_data": (X[:20], y[:20]),
                "metrics": ("accuracy", "auc", "f1", "precision", "recall", "r2", "mae", "rmse")}
    options = {"loss": "sparse_categorical_crossentropy", "validation_data": (X[:10], y[:10])}
    if name == "mlp_metrics_memmap":   # 2 validation samples: on 3 ranks rank 0 evaluates none
        options.update(validation_data=(X[:2], y[:2]),
                       metrics=("accuracy", "f1_macro", F1Score(average="micro"), TopKAccuracy(2), "precision",
                                "recall", "confusion_matrix", mean_margin))
    return options


def mean_margin(y_pred, y_true):
    """A plain function metric (averaged over batches by size): the mean of the largest logit."""
    return float(y_pred.max(axis=-1).mean())


def run(name: str, communicator) -> dict:
    """Train scenario ``name`` (``communicator`` None: one process) and return its final arrays."""
    from optimizers import DataParallel, flatten_parameters

    kind, build, opt_name = SCENARIOS[name]
    X, y = data(kind)
    rank = 0 if communicator is None else communicator.rank
    with backend.use_dtype(np.float64):
        model = build(1 + 10 * rank)       # different weights on each rank: the broadcast must fix them
    opt = optimizer(opt_name)
    if name.endswith("_flat"):
        flatten_parameters(model)
    if name.startswith("custom_loop"):
        custom_loop(model, opt, X, y, communicator, broadcast=name == "custom_loop_wrapper")
        history_loss = []
    else:
        kwargs = {"communicator": communicator}
        if name.endswith("_wrapper") and communicator is not None:
            opt, kwargs = DataParallel(opt, communicator), {}
        history = model.fit(X, y, optimizer=opt, epochs=EPOCHS, batch_size=BATCH, seed=3, verbose=0,
                            **fit_options(name, X, y), **kwargs)
        history_loss = history.history["loss"] + history.history["val_loss"]
        metrics = {key: values for key, values in history.history.items() if key not in ("loss", "val_loss", "lr")}
    arrays = {f"param{i}": backend.to_numpy(p) for i, p in enumerate(model.params)}
    arrays.update({f"buffer.{k}": backend.to_numpy(v) for k, v in model.buffers.items()})
    arrays["loss"] = np.array(history_loss)
    if not name.startswith("custom_loop"):
        arrays.update({f"history.{key}": np.array(values, dtype=np.float64) for key, values in metrics.items()})
    return arrays


def custom_loop(model, opt, X, y, communicator, broadcast: bool) -> None:
    """Batches of 12 (equal slices on 2 or 3 ranks), each rank its slice, ``DataParallel.step``."""
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import DataParallel

    loss = SparseCategoricalCrossEntropy(from_logits=True)
    size, rank = (1, 0) if communicator is None else (communicator.size, communicator.rank)
    step = opt if communicator is None else DataParallel(opt, communicator)
    if broadcast and communicator is not None:
        step.broadcast_parameters(model.params)
    for start in range(0, 48, 12):
        share = 12 // size
        index = slice(start + rank * share, start + (rank + 1) * share)
        loss.forward(model.forward(backend.to_device(X[index])), backend.to_device(y[index]))
        _, grads = model.backward(loss.backward())
        step.step(model.params, grads)


def fail_on_rank_one(communicator):
    """A callback raising on rank 1 at its third batch (the failure test)."""
    from layers.training import Callback

    class Fail(Callback):
        def on_batch_end(self, batch, logs=None):
            if communicator.rank == 1 and batch == 2:
                raise RuntimeError("injected failure on rank 1")

    return Fail()


def stop_on_rank_one(communicator):
    """TerminateOnNaN that sees a NaN loss on rank 1 at its second batch (the stop test)."""
    from layers.training import TerminateOnNaN

    class NaNOnRankOne(TerminateOnNaN):
        def on_batch_end(self, batch, logs=None):
            if communicator.rank == 1 and batch == 1:
                logs = {**(logs or {}), "loss": math.nan}
            super().on_batch_end(batch, logs)

    return NaNOnRankOne()


def nccl_self_check(communicator) -> dict:
    """NCCL's own calls on CuPy buffers (float32, float64): the sum over the ranks, then rank 0's values."""
    xp = backend.get_device().xp
    out = {}
    for dtype in (np.float32, np.float64):
        buffer = xp.arange(5, dtype=dtype) + communicator.rank
        communicator._allreduce_buffer(buffer)
        expected = sum(np.arange(5, dtype=dtype) + r for r in range(communicator.size))
        out[f"allreduce_{np.dtype(dtype).name}"] = bool(np.array_equal(backend.to_numpy(buffer), expected))
        buffer = xp.full(3, communicator.rank + 1.0, dtype=dtype)
        communicator._broadcast_buffer(buffer, 0)
        out[f"broadcast_{np.dtype(dtype).name}"] = bool((backend.to_numpy(buffer) == 1.0).all())
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--fail", action="store_true")
    parser.add_argument("--stop", action="store_true")
    parser.add_argument("--raise-outside-fit", action="store_true")
    parser.add_argument("--mismatch", action="store_true")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--kind", default="mpi")
    args = parser.parse_args(argv)
    from backend.distributed import create_communicator

    communicator = create_communicator(args.kind, device=args.device)
    if args.raise_outside_fit:
        if communicator.rank == 1:
            raise RuntimeError("injected failure outside fit")
        communicator.barrier()          # rank 0 would wait here forever without the exception hook
    if communicator.name == "nccl":
        np.savez(args.out / f"nccl-rank{communicator.rank}.npz", **nccl_self_check(communicator))
    if args.mismatch:                   # rank 1 asks for another batch size: every rank refuses, the same way
        X, y = data("mlp")
        with backend.use_dtype(np.float64):
            mlp(1).fit(X, y, loss="sparse_categorical_crossentropy", batch_size=BATCH + communicator.rank, verbose=0,
                       communicator=communicator)
    if args.fail or args.stop:
        X, y = data("mlp")
        with backend.use_dtype(np.float64):
            model = mlp(1)
        callback = fail_on_rank_one(communicator) if args.fail else stop_on_rank_one(communicator)
        history = model.fit(X, y, loss="sparse_categorical_crossentropy", optimizer="sgd", epochs=EPOCHS,
                            batch_size=BATCH, seed=3, verbose=0, communicator=communicator, callbacks=[callback])
        np.savez(args.out / f"stop-rank{communicator.rank}.npz", iterations=model.optimizer.iterations,
                 reason=np.array(str(history.stop_reason)),
                 weights=np.concatenate([p.ravel() for p in model.params]))
        return 0
    for name in args.scenarios.split(","):
        np.savez(args.out / f"{name}-rank{communicator.rank}.npz", **run(name, communicator))
    return 0


if __name__ == "__main__":
    sys.exit(main())
