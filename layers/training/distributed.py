"""Data-parallel ``fit``: what changes when the same script runs on every rank of a communicator.

:func:`fit` calls :func:`start` once and the returned :class:`DataParallelFit`
at the points marked ``[distributed N]`` in loop.py: the batch source
(:class:`~layers.training.batches.ArrayBatches`) takes this rank's slice of
every global batch (the same seeded order on every rank), the
:class:`~layers.training.loop.TrainingStep` scales and averages the gradients
(:class:`optimizers.DataParallel`, one all-reduce), the epoch's loss sums and
metric states (:meth:`~layers.training.metrics.Metric.merge`) and the
validation pass are combined over the ranks, so every rank logs the same
numbers and its callbacks (EarlyStopping, ReduceLROnPlateau) decide the same;
progress is printed and files are written by rank 0 only; a rank that raises
ends every rank with a message naming it (:meth:`Communicator.abort`).
"""

from __future__ import annotations

import traceback

import numpy as np

from ..base import sublayers, walk
from .batches import ArrayBatches
from .callbacks import Callback
from .metrics import Metric
from .metrics.base import merge_states


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

    def __init__(self, model, data_parallel, n: int, batch_size: int, seed: int, mean_loss: bool,
                 per_batch_agreement: bool):
        from backend.distributed import use_communicator

        self.model, self.data_parallel = model, data_parallel
        self.communicator = data_parallel.communicator
        self.optimizer = data_parallel.optimizer
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self._mean_loss, self._per_batch = mean_loss, per_batch_agreement
        self._epoch, self._step = 0, -1
        self._stopped = False
        self._context = use_communicator(self.communicator)
        self._context.__enter__()

    # -- rank-0-only output -----------------------------------------------------------------------
    def verbose(self, verbose: int) -> int:
        """``verbose`` on rank 0, 0 elsewhere: one progress bar per job."""
        return verbose if self.communicator.rank == 0 else 0

    # -- one step ------------------------------------------------------------------------------------
    def shard(self, index, samples: int):
        """This rank's contiguous slice of the global batch ``index`` (a slice or an index array), or None if empty.

        Rank r of R takes positions ``[B r // R, B (r + 1) // R)`` of the B
        samples, so the ranks' slices partition the batch. ``samples``: the
        size of the set (a slice's stop may pass it). Pure (it reads no
        state), so a prefetching thread may call it ahead of the training step.
        """
        rank, size = self.communicator.rank, self.communicator.size
        if isinstance(index, slice):
            start, stop = index.start, min(index.stop, samples)
            total = stop - start
            low, high = total * rank // size, total * (rank + 1) // size
            local = slice(start + low, start + high)
        else:
            total = len(index)
            low, high = total * rank // size, total * (rank + 1) // size
            local = index[low:high]
        return local if high > low else None

    def local_gradient(self, grad_output, epoch: int, step: int):
        """dE/d(output) of this rank's slice of global batch ``step``, scaled so that the ranks' mean is the batch's.

        A mean loss over this rank's b samples, averaged over R ranks, is the
        mean over the batch's B samples when the gradient is scaled by
        ``R b / B`` (1 for equal slices); a summed loss needs R. Also records
        where training is, for :meth:`fail`'s message.
        """
        self._epoch, self._step = epoch, step
        size = self.communicator.size
        if self._mean_loss:
            total = min(self.batch_size, self.n - step * self.batch_size)
            rank = self.communicator.rank
            weight = size * (total * (rank + 1) // size - total * rank // size) / total
        else:
            weight = float(size)
        if weight == 1.0:
            return grad_output
        return grad_output * grad_output.dtype.type(weight)

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
    def reduce_epoch(self, loss_sum, seen, running):
        """``(loss_sum, seen, merged)`` over the ranks: the sums added and the metrics merged in rank order.

        ``running``: this rank's metric objects (prepared alike on every
        rank); ``merged``: host copies of them holding every rank's state
        (:func:`~layers.training.metrics.base.merge_states`), whose
        ``result()`` is the metric over the global batches; the running
        objects are not changed. One ``allgather_object``; the same values,
        bit for bit, on every rank.
        """
        running = list(running or ())
        gathered = self.communicator.allgather_object((float(loss_sum), int(seen), [m.state() for m in running]))
        loss_sum = sum(g[0] for g in gathered)
        seen = sum(g[1] for g in gathered)
        merged = [merge_states(m, [g[2][i] for g in gathered]) for i, m in enumerate(running)]
        return loss_sum, seen, merged

    def average_buffers(self, model) -> None:
        """Average the float buffers of unsynchronized layers (per-rank BatchNorm statistics) over the ranks."""
        arrays = [a for layer, a in _leaf_buffers(model)
                  if not getattr(layer, "sync", False) and np.dtype(a.dtype).kind == "f"]
        if arrays:
            self.communicator.allreduce_mean(arrays)

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


def start(model, communicator, optimizer, train, validation=None, *, epochs: int, shuffle: bool, seed, loss,
          callbacks=(), metrics=()) -> DataParallelFit | None:
    """Set up a data-parallel fit (None when neither ``communicator`` nor a DataParallel optimizer is given).

    Refuses what cannot be split between ranks: batches from an iterable
    (``train`` or ``validation`` not an :class:`~layers.training.batches.ArrayBatches`)
    and metrics without :meth:`~layers.training.metrics.Metric.merge`, before any
    communication. Then checks that every rank runs the same fit (samples,
    batch size, epochs, shuffling, seed, parameter shapes and dtypes) and that
    every global batch gives every rank at least one sample, raising the same
    ValueError on every rank otherwise; broadcasts rank 0's parameters and
    buffers and its seed (when ``seed`` is None); wraps ``optimizer`` in
    :class:`optimizers.DataParallel` unless it is one; and sets the sources'
    ``shard`` to this rank's slice of every batch.

    Parameters
    ----------
    train, validation : ArrayBatches (validation: or None)
        The batch sources of ``fit``.
    metrics : sequence of Metric
        The metric objects of ``fit(metrics=...)``.
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
    for source, name in ((train, "X"), (validation, "validation_data")):
        if source is not None and not isinstance(source, ArrayBatches):
            raise ValueError(f"fit: {name}: data-parallel training needs arrays (in memory, or memory-mapped: "
                             "numpy.load(path, mmap_mode='r') reads batch by batch), which every rank loads and "
                             "splits into its slice of every global batch; got an iterable of batches")
    for metric in metrics:
        if type(metric).merge is Metric.merge:
            raise TypeError(f"fit: metrics: {metric.name!r} ({type(metric).__name__}) has no merge(other); a "
                            "data-parallel fit combines the ranks' metric states with it (see layers.training.metrics)")
    data_parallel = optimizer if wrapped else DataParallel(optimizer, communicator)
    comm = data_parallel.communicator
    params = list(model.params)
    n, batch_size = train.samples, train.batch_size
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
    parallel = DataParallelFit(model, data_parallel, n, batch_size, seed,
                               getattr(loss, "reduction", "mean") == "mean", per_batch)
    for source in (train, validation):
        if source is not None:
            source.shard = parallel.shard
    return parallel


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
