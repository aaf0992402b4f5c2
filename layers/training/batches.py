"""Where ``fit``, ``evaluate`` and ``predict`` take their mini-batches from: arrays or iterables of batches.

* :class:`ArrayBatches`: NumPy/CuPy arrays, memory-mapped arrays included
  (``numpy.load(path, mmap_mode="r")``): each batch is gathered on its own
  (``X[index]``, the shuffled indices of one batch), so a memory-mapped set is
  never read whole into memory.
* :class:`IterableBatches`: any iterable or generator of ``(x, y)`` batches
  (``x`` alone for ``predict``), each batch checked as it arrives (numeric,
  finite, matching lengths); ``steps_per_epoch`` batches per epoch.

:func:`prefetched` runs a source one batch ahead in a background thread
(gather, cast, move to the device) while the current batch computes; the
order stays the source's, and an error in the producer is raised in the
caller, naming the argument, the batch and the epoch.
"""

from __future__ import annotations

import itertools
import queue
import threading
import time
from collections.abc import Iterator

import numpy as np

from .data import as_array, batch_error, check_finite, check_inputs, parts_of, sample_count, take_batch


class ArrayBatches:
    """Mini-batches of arrays (in memory or memory-mapped), in order or in a shuffled order per epoch.

    Parameters
    ----------
    X : array or tuple of parts (checked by :func:`~layers.training.data.check_data`)
    y : array or None
    batch_size : int or None
        None: every sample in one batch.
    device, dtype, cast : where batches go, the float dtype, whether integer inputs are cast
    names : (str, str)
        The arguments' names in error messages (``("X", "y")``).

    Attributes
    ----------
    shard : callable or None
        ``shard(index, samples) -> index or None``: the part of each batch
        this process takes (a data-parallel fit sets it to this rank's slice
        of every global batch, :meth:`layers.training.distributed.DataParallelFit.shard`;
        None: no part taken, the batch is skipped). Called where the batch is
        gathered, so a prefetched stream reads only this rank's samples.
    """

    targets_checked = True   # the whole y was checked once (Loss.check_targets) before training

    def __init__(self, X, y, batch_size, device, dtype, cast, names=("X", "y")):
        self.X, self.y = X, y
        self.shard = None
        self.samples = sample_count(X)
        self.batch_size = self.samples if batch_size is None else min(batch_size, self.samples)
        self.steps = -(-self.samples // self.batch_size)
        self.device, self.dtype, self.cast, self.names = device, dtype, cast, names
        # Memory-mapped data is read while the previous batch computes (a real copy, not a view of the file).
        self.memory_mapped = any(isinstance(p, np.memmap) for p in parts_of(X))

    @property
    def slow_to_load(self) -> bool:
        """True when loading a batch is worth a background thread: memory-mapped data, or a GPU to copy to."""
        return self.memory_mapped or self.device.name != "cpu"

    def batches(self, epoch: int, order=None):
        """Yield ``(index, xb, yb)`` for every batch of the epoch (``order``: a permutation, or None)."""
        size = self.batch_size
        for step in range(self.steps):
            index = slice(step * size, (step + 1) * size) if order is None else order[step * size:(step + 1) * size]
            if self.shard is not None:
                index = self.shard(index, self.samples)
                if index is None:
                    continue
            try:
                xb = self._take(self.X, index, self.cast)
                yb = None if self.y is None else self._take(self.y, index, False)
            except Exception as exc:
                raise batch_error(exc, self.names[0], epoch, step, index) from exc
            yield index, xb, yb

    def _take(self, a, index, cast):
        batch = take_batch(a, index, self.device, self.dtype, cast)
        if self.memory_mapped and isinstance(index, slice) and self.device.name == "cpu":
            # a slice of a memory-mapped file is a view: read it now (in the producer thread), not when used
            return tuple(_owned(p) for p in batch) if isinstance(batch, tuple) else _owned(batch)
        return batch   # shuffled indices gather a copy already


def _owned(a):
    """``a`` as an array that owns its memory (a view is copied; a copy or None is returned as it is)."""
    if not isinstance(a, np.ndarray) or a.base is None:
        return a
    return np.array(a)


class IterableBatches:
    """Mini-batches from an iterable (a generator, a list of batches, a data-loader object).

    Parameters
    ----------
    data : iterable
        Of ``(x, y)`` batches (``with_targets``), else of ``x`` batches (a
        ``(x, y)`` tuple is accepted there too: ``y`` is ignored). ``x`` may be
        a tuple of parts (see :mod:`layers.training.data`).
    steps : int or None
        Batches per epoch. None: until the iterable ends, every epoch starting
        again with ``iter(data)`` (a generator, which cannot start again, is
        then refused for more than one epoch). Given: the batches come from one
        iterator over the whole run; one that ends early starts again when
        ``data`` can (a list), else it is an error naming the batch.
    device, dtype, cast, with_targets, names : as for :class:`ArrayBatches`
    """

    targets_checked = False   # each batch's targets are checked as it arrives (Loss.check_targets)
    slow_to_load = True       # a generator may read files or decode: always one batch ahead

    def __init__(self, data, steps, device, dtype, cast, with_targets, names=("X", "y"), epochs=1):
        if isinstance(data, Iterator) and steps is None and epochs > 1:
            raise ValueError(f"{names[0]}: a generator (an iterator) cannot start again for epoch 2 of {epochs}; "
                             "pass steps_per_epoch=<batches per epoch> (and a generator that yields as many batches "
                             "as needed, e.g. with 'while True'), or a list of batches")
        self.data, self.steps = data, steps
        self.device, self.dtype, self.cast, self.with_targets, self.names = device, dtype, cast, with_targets, names
        self._iterator = None
        self.samples = None

    def batches(self, epoch: int, order=None):
        """Yield ``(None, xb, yb)`` for every batch of the epoch, checked and on the device."""
        for step, item in self._items(epoch):
            try:
                xb, yb = self._check(item)
            except Exception as exc:
                raise batch_error(exc, self.names[0], epoch, step) from exc
            yield None, xb, yb

    def _items(self, epoch):
        """``(step, item)`` for the epoch's batches, straight from the iterable."""
        if self.steps is None:
            iterator = iter(self.data)
            for step in itertools.count():
                item = self._pull(iterator, epoch, step)
                if item is _END:
                    if step == 0:
                        raise ValueError(f"{self.names[0]}: the iterable gave no batch in epoch {epoch + 1}")
                    return
                yield step, item
            return
        for step in range(self.steps):
            if self._iterator is None:
                self._iterator = iter(self.data)
            item = self._pull(self._iterator, epoch, step)
            if item is _END:  # start again when the iterable can (a list); a generator cannot
                restarted = iter(self.data)
                item = _END if restarted is self._iterator else self._pull(restarted, epoch, step)
                self._iterator = restarted
                if item is _END:
                    raise ValueError(f"{self.names[0]}: batch {step + 1} of epoch {epoch + 1}: the iterable ran out "
                                     f"of batches (steps_per_epoch={self.steps}); give one that yields as many "
                                     "batches as the run needs (a generator with 'while True', or a list)")
            yield step, item

    def _pull(self, iterator, epoch, step):
        try:
            return next(iterator)
        except StopIteration:
            return _END
        except Exception as exc:
            raise batch_error(exc, self.names[0], epoch, step) from exc

    def _check(self, item):
        names = self.names
        if self.with_targets:
            if not (isinstance(item, (tuple, list)) and len(item) == 2):
                raise TypeError(f"expected a batch (x, y), got {type(item).__name__}"
                                + (f" of length {len(item)}" if isinstance(item, (tuple, list)) else ""))
            x, y = item
        else:
            x, y = item, None
        x = check_inputs(x, names[0])
        if y is not None:
            y = as_array(y, names[1])
            if y.dtype.kind not in "biuf":
                raise TypeError(f"{names[1]}: expected a numeric array, got dtype {y.dtype}")
            if y.ndim < 1 or len(y) != sample_count(x):
                raise ValueError(f"{names[0]} and {names[1]}: expected the same number of samples in the batch, "
                                 f"got {sample_count(x)} and {len(y) if y.ndim else 'a scalar'}")
            check_finite(y, names[1])
        everything = slice(None)
        xb = take_batch(x, everything, self.device, self.dtype, self.cast)
        yb = None if y is None else take_batch(y, everything, self.device, self.dtype, False)
        return xb, yb


_END = object()


class prefetched:
    """Iterate ``iterator`` one item ahead in a background thread (the order and the errors are the iterator's).

    Use as a context manager (the thread is stopped on exit, also when the
    loop stops early)::

        with prefetched(source.batches(epoch, order)) as batches:
            for index, xb, yb in batches: ...

    ``depth`` items are produced ahead (default 1: the next batch while the current one computes).
    """

    _ITEM, _DONE, _ERROR = 0, 1, 2

    def __init__(self, iterator, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._produce, args=(iterator,), name="camadas-prefetch", daemon=True)
        self._thread.start()

    def _produce(self, iterator):
        try:
            for item in iterator:
                if not self._put((self._ITEM, item)):
                    return
            self._put((self._DONE, None))
        except BaseException as exc:  # handed to the caller, raised there
            self._put((self._ERROR, exc))

    def _put(self, entry) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self):
        return self

    def __next__(self):
        kind, value = self._queue.get()
        if kind == self._ITEM:
            return value
        self._queue.put((kind, value))  # later calls see the end (or the error) again
        if kind == self._DONE:
            raise StopIteration
        raise value

    def close(self, timeout: float = 5.0) -> None:
        """Stop the producer: it finishes the item it is making, then ends; wait for it up to ``timeout`` s.

        A producer stuck inside the iterator longer than that (a generator
        waiting on a network) is left behind as a daemon thread; it ends after
        that item.
        """
        self._stop.set()
        deadline = time.monotonic() + timeout
        while self._thread.is_alive() and time.monotonic() < deadline:
            try:
                self._queue.get(timeout=0.05)   # frees a producer blocked on a full queue
            except queue.Empty:
                pass
        self._thread.join(max(0.0, deadline - time.monotonic()))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def batch_stream(source, epoch: int, order=None, prefetch=None):
    """A context manager over the batches of ``source`` for one epoch: prefetched when it is slow to load.

    ``prefetch``: True/False to force it; None: :attr:`slow_to_load` decides
    (memory-mapped data, a GPU to copy to, any iterable).
    """
    batches = source.batches(epoch, order)
    if source.slow_to_load if prefetch is None else prefetch:
        return prefetched(batches)
    return _Inline(batches)


class _Inline:
    """The same interface as :class:`prefetched`, on the calling thread."""

    def __init__(self, iterator):
        self._iterator = iterator

    def __iter__(self):
        return self._iterator

    def __enter__(self):
        return self._iterator

    def __exit__(self, *exc):
        self._iterator.close()
