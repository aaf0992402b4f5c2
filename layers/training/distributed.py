"""Data-parallel ``fit``: what changes when the same script runs on every rank of a communicator.

:func:`fit` calls :func:`start` once and the returned :class:`DataParallelFit`
at a few points marked ``[distributed]`` in loop.py. Every rank holds the whole
data set and the whole model; for each global batch (the same seeded order on
every rank) rank r trains on its contiguous slice, the gradients are averaged
by :class:`optimizers.DataParallel` (one all-reduce), the epoch's sums and the
validation metrics are combined over the ranks, so every rank logs the same
numbers and its callbacks (EarlyStopping, ReduceLROnPlateau) decide the same;
progress is printed and files are written by rank 0 only; a rank that raises
ends every rank with a message naming it (:meth:`Communicator.abort`).
"""

from __future__ import annotations

import traceback

import numpy as np

from ..base import sublayers, walk
from .callbacks import Callback


class DataParallelFit:
    """The per-rank side of one data-parallel :func:`~layers.training.loop.fit` (built by :func:`start`).

    Attributes
    ----------
    data_parallel : optimizers.DataParallel
        Averages the gradients; ``optimizer`` is the optimizer it wraps.
    communicator : backend.distributed.Communicator
    seed : int
        The shuffling seed, the same on every rank (rank 0's draw when fit got None).
    """

    def __init__(self, model, data_parallel, n: int, seed: int, mean_loss: bool, per_batch_agreement: bool):
        from backend.distributed import use_communicator

        self.model, self.data_parallel = model, data_parallel
        self.communicator = data_parallel.communicator
        self.optimizer = data_parallel.optimizer
        self.n, self.seed = n, seed
        self._mean_loss, self._per_batch = mean_loss, per_batch_agreement
        self._weight = 1.0
        self._epoch, self._step = 0, -1
        self._stopped = False
        self._context = use_communicator(self.communicator)
        self._context.__enter__()

    # -- rank-0-only output -----------------------------------------------------------------------
    def verbose(self, verbose: int) -> int:
        """``verbose`` on rank 0, 0 elsewhere: one progress bar per job."""
        return verbose if self.communicator.rank == 0 else 0

    # -- one step ------------------------------------------------------------------------------------
    def shard(self, index, epoch: int, step: int):
        """This rank's contiguous slice of the global batch ``index`` (a slice or an index array).

        Rank r of R takes positions ``[B r // R, B (r + 1) // R)`` of the B
        samples, so the ranks' slices partition the batch.
        """
        self._epoch, self._step = epoch, step
        rank, size = self.communicator.rank, self.communicator.size
        if isinstance(index, slice):
            start, stop = index.start, min(index.stop, self.n)
            total = stop - start
            low, high = total * rank // size, total * (rank + 1) // size
            local = slice(start + low, start + high)
        else:
            total = len(index)
            low, high = total * rank // size, total * (rank + 1) // size
            local = index[low:high]
        # A mean loss over b samples, averaged over R ranks, is the mean over the B samples when each rank's
        # gradient is scaled by R b / B (1 for equal slices); a summed loss needs R.
        self._weight = size * (high - low) / total if self._mean_loss else float(size)
        return local

    def local_gradient(self, grad_output):
        """dE/d(output) of this rank's slice, scaled so that the mean over the ranks is the global batch's."""
        if self._weight == 1.0:
            return grad_output
        return grad_output * grad_output.dtype.type(self._weight)

    def reduce(self, params, grads) -> list:
        """The gradients averaged over the ranks (one all-reduce per device and dtype)."""
        return self.data_parallel.reduce(params, grads)

    def agree_to_stop(self, model, batch: bool = False) -> None:
        """Stop on every rank when a callback stopped one (``batch``: only when a callback acts per batch)."""
        if batch and not self._per_batch or self._stopped:
            return
        comm = self.communicator
        flags = np.zeros(comm.size, np.int64)
        flags[comm.rank] = bool(getattr(model, "stop_training", False))
        comm.allreduce_sum([flags])
        if not flags.any():
            return
        history = getattr(model, "history", None)
        reasons = comm.allgather_object(getattr(history, "stop_reason", None))
        model.stop_training = self._stopped = True
        if history is not None:
            stopped = [r for r in range(comm.size) if flags[r]]
            first = next((reasons[r] for r in stopped if reasons[r]), None)
            history.stop_reason = f"rank {stopped[0]}: {first}" if first else f"rank {stopped[0]} stopped training"

    # -- one epoch -----------------------------------------------------------------------------------
    def reduce_epoch(self, loss_sum, seen, sums, counts):
        """``(loss_sum, seen, sums, counts)`` summed over the ranks, in rank order (the same on every rank)."""
        gathered = self.communicator.allgather_object((float(loss_sum), int(seen), dict(sums), dict(counts)))
        loss_sum = sum(g[0] for g in gathered)
        seen = sum(g[1] for g in gathered)
        sums = {name: sum(float(g[2][name]) for g in gathered) for name in sums}
        counts = {name: sum(int(g[3][name]) for g in gathered) for name in counts}
        return loss_sum, seen, sums, counts

    def average_buffers(self, model) -> None:
        """Average the float buffers of unsynchronized layers (per-rank BatchNorm statistics) over the ranks."""
        arrays = [a for layer, a in _leaf_buffers(model)
                  if not getattr(layer, "sync", False) and np.dtype(a.dtype).kind == "f"]
        if arrays:
            self.communicator.allreduce_mean(arrays)

    def evaluate(self, evaluate_batches, model, X, y, *args) -> dict:
        """``evaluate_batches`` on this rank's contiguous slice of ``(X, y)``, combined over the ranks.

        Each result is weighted by its slice's size; the combination runs in
        rank order on the gathered results, so every rank gets the same dict.
        """
        comm = self.communicator
        n = len(X)
        low, high = n * comm.rank // comm.size, n * (comm.rank + 1) // comm.size
        local = evaluate_batches(model, X[low:high], y[low:high], *args) if high > low else None
        gathered = [(count, result) for count, result in comm.allgather_object((high - low, local)) if count]
        total = sum(count for count, _ in gathered)
        return {key: sum(result[key] * count for count, result in gathered) / total for key in gathered[0][1]}

    def same_logs(self, logs: dict) -> dict:
        """Rank 0's epoch logs on every rank, so that every rank's callbacks see exactly the same numbers."""
        return self.communicator.broadcast_object(logs, root=0)

    # -- the end ---------------------------------------------------------------------------------------
    def fail(self, exc) -> None:
        """End every rank after an exception on this one (print the traceback, then abort naming the rank).

        With one rank there is nobody to wait: the exception propagates as usual.
        """
        if self.communicator.size == 1:
            return
        traceback.print_exception(exc)
        self.communicator.abort(f"{type(exc).__name__} in fit (epoch {self._epoch + 1}, batch {self._step + 1}): "
                                f"{exc}")

    def close(self) -> None:
        """Restore the communicator that was current before fit."""
        self._context.__exit__(None, None, None)


def start(model, communicator, optimizer, *, n: int, batch_size: int, epochs: int, shuffle: bool, seed, loss,
          callbacks) -> DataParallelFit | None:
    """Set up a data-parallel fit (None when neither ``communicator`` nor a DataParallel optimizer is given).

    Checks that every rank runs the same fit (samples, batch size, epochs,
    shuffling, seed, parameter shapes and dtypes) and that every global batch
    gives every rank at least one sample, raising the same ValueError on every
    rank otherwise; then broadcasts rank 0's parameters and buffers and its
    seed (when ``seed`` is None), and wraps ``optimizer`` in
    :class:`optimizers.DataParallel` unless it is one.
    """
    from backend.distributed import Communicator
    from backend.distributed.base import same_on_every_rank
    from optimizers import DataParallel

    wrapped = isinstance(optimizer, DataParallel)
    if communicator is None and not wrapped:
        return None
    if communicator is not None and not isinstance(communicator, Communicator):
        raise TypeError(f"fit: communicator: expected a backend.distributed.Communicator (from create_communicator) "
                        f"or None, got {type(communicator).__name__}")
    if wrapped and communicator is not None and optimizer.communicator is not communicator:
        raise ValueError("fit: communicator: the DataParallel optimizer has another communicator; give one of them")
    data_parallel = optimizer if wrapped else DataParallel(optimizer, communicator)
    comm = data_parallel.communicator
    params = list(model.params)
    same_on_every_rank(comm, {"len(X)": n, "batch_size": batch_size, "epochs": epochs, "shuffle": shuffle,
                              "seed": seed, "parameters": [(tuple(p.shape), str(p.dtype)) for p in params]}, "fit")
    if seed is None:
        seed = int(np.random.SeedSequence().generate_state(1, np.uint64)[0] >> 1) if comm.rank == 0 else None
        seed = comm.broadcast_object(seed, root=0)
    last = n % batch_size
    if batch_size < comm.size or 0 < last < comm.size:
        raise ValueError(f"fit: batch_size: with {comm.size} ranks every batch needs at least {comm.size} samples "
                         f"(one per rank); batch_size={batch_size} and {n} samples leave "
                         f"{'batches' if batch_size < comm.size else f'a last batch of {last}'} smaller; choose a "
                         f"batch_size >= {comm.size} whose last batch (n % batch_size) is 0 or >= {comm.size}")

    comm.broadcast(params + [a for _, a in _leaf_buffers(model)], root=0)
    data_parallel.needs_broadcast = False
    per_batch = any(type(cb).on_batch_end is not Callback.on_batch_end
                    or type(cb).on_batch_begin is not Callback.on_batch_begin for cb in callbacks)
    return DataParallelFit(model, data_parallel, n, seed, getattr(loss, "reduction", "mean") == "mean", per_batch)


def _leaf_buffers(model) -> list:
    """``[(layer, array)]`` for every buffer (running statistics) of every leaf layer, each array once."""
    out, seen = [], set()
    for _, layer in walk(model):
        if sublayers(layer):
            continue
        for array in (getattr(layer, "buffers", None) or {}).values():
            if id(array) not in seen:
                seen.add(id(array))
                out.append((layer, array))
    return out
