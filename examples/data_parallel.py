"""Data-parallel training of the digits CNN over several processes: MPI on CPUs, NCCL between GPUs.

The same script runs on every rank (``mpiexec -n N``). Each rank builds the
CNN of ``digits_cnn.py`` and joins the job with
``backend.distributed.create_communicator``; ``fit(..., communicator=comm)``
does the rest: rank 0's weights are broadcast, every global batch of
``--batch-size`` samples is split over the ranks, the gradients are averaged
in one all-reduce per step, the epoch logs and the validation accuracy are
combined over the ranks; rank 0 alone prints the progress and writes the
checkpoint. On GPUs, rank r uses GPU r mod (GPUs on its node).

Run (two processes; ``pip install -e ".[distributed,examples]"``)::

    mpiexec -n 2 python examples/data_parallel.py [--epochs N] [--batch-size B] [--communicator auto|mpi|nccl]
"""

from __future__ import annotations

import time

from _common import make_parser

EPOCHS = 30


def main(argv=None) -> dict:
    """Train on every rank; returns (on every rank) the accuracy, the times and the job's size."""
    parser = make_parser(__doc__.splitlines()[0], epochs=EPOCHS)
    parser.add_argument("--batch-size", type=int, default=64,
                        help="global mini-batch size, split over the ranks (default: 64)")
    parser.add_argument("--learning-rate", type=float, default=3e-3, help="Adam's learning rate (default: 3e-3)")
    parser.add_argument("--communicator", choices=("auto", "mpi", "nccl"), default="auto",
                        help="auto: NCCL between GPUs when it is available, else MPI (default)")
    args = parser.parse_args(argv)

    from digits_cnn import build_model, load_data

    from backend.distributed import create_communicator
    from layers.losses import SparseCategoricalCrossEntropy
    from layers.training import Callback, ModelCheckpoint
    from optimizers import Adam

    comm = create_communicator(args.communicator, device=args.device)
    epochs = args.epochs or (3 if args.quick else EPOCHS)
    X_train, X_test, y_train, y_test = load_data()
    model = build_model(args.seed)

    class EpochTimes(Callback):
        def __init__(self):
            self.seconds, self._start = [], 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self._start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds.append(time.perf_counter() - self._start)

    times = EpochTimes()
    out = args.out
    out.mkdir(parents=True, exist_ok=True)
    if comm.rank == 0:
        print(f"{comm.size} rank(s), {type(comm).__name__}; rank 0 on {model.device}; {len(X_train)} training "
              f"images, global batch {args.batch_size} ({args.batch_size // comm.size} per rank), {epochs} epochs")
    history = model.fit(X_train, y_train, loss=SparseCategoricalCrossEntropy(from_logits=True),
                        optimizer=Adam(args.learning_rate), epochs=epochs, batch_size=args.batch_size,
                        validation_data=(X_test, y_test), seed=args.seed, verbose=0 if args.quick else 1,
                        callbacks=[times, ModelCheckpoint(out / "data_parallel_digits.npz", monitor="val_accuracy",
                                                          save_best_only=True)],
                        communicator=comm)
    accuracy = history.history["val_accuracy"][-1]
    later = times.seconds[1:] or times.seconds
    per_epoch = sorted(later)[len(later) // 2]
    result = {"ranks": comm.size, "communicator": comm.name, "test_accuracy": accuracy,
              "first_epoch_seconds": times.seconds[0], "epoch_seconds": per_epoch,
              "samples_per_second": len(X_train) / per_epoch}
    if comm.rank == 0:
        print(f"test accuracy {accuracy:.4f}; epoch {per_epoch:.3f} s ({result['samples_per_second']:.0f} "
              f"samples/s over {comm.size} rank(s)); first epoch {times.seconds[0]:.3f} s (compilation included); "
              f"best checkpoint: {out / 'data_parallel_digits.npz'}")
    return result


if __name__ == "__main__":
    main()
