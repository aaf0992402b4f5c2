"""The communicator protocol of data-parallel training (ChainerMN's design): rank, size and a few collectives.

Every process (rank) runs the same script; a :class:`Communicator` joins them.
The collectives take *lists* of arrays and move each ``(device, dtype)``
group as one contiguous buffer in one call (:mod:`.packing`); they work in
place, so every rank ends with the same values. Subclasses say how one
contiguous buffer is summed or broadcast (MPI, NCCL); everything else (checks,
packing, the mean, objects, aborting with the rank's name) lives here.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from .packing import StagingBuffers, contiguous_span, group_arrays

#: Seconds between writing the abort message and aborting: the launcher forwards a rank's output through a
#: pipe, and an abort that comes too soon kills it before the last lines (the traceback, the message) get out.
ABORT_GRACE = 0.5


def _is_array(x) -> bool:
    return hasattr(x, "shape") and hasattr(x, "dtype") and hasattr(x, "reshape")


def check_arrays(arrays, where: str, float_only: bool) -> list:
    """``arrays`` as a list after checking each entry is an array of a supported dtype (or None)."""
    if _is_array(arrays) or isinstance(arrays, (str, bytes)) or not hasattr(arrays, "__iter__"):
        shape = f" of shape {tuple(arrays.shape)}" if _is_array(arrays) else ""
        raise TypeError(f"{where}: arrays: expected a list of arrays, got {type(arrays).__name__}{shape}; wrap a "
                        f"single array in a list: {where.split('.')[-1]}([x])")
    arrays = list(arrays)
    for i, a in enumerate(arrays):
        if a is None:
            continue
        if not _is_array(a):
            raise TypeError(f"{where}: arrays[{i}]: expected a NumPy/CuPy array or None, got {type(a).__name__}")
        kind = np.dtype(a.dtype).kind
        if kind not in ("f", "i", "u") or (float_only and kind != "f"):
            expected = "a float array" if float_only else "a numeric array"
            raise TypeError(f"{where}: arrays[{i}]: expected {expected}, got dtype {a.dtype}")
        if not getattr(a.flags, "writeable", True):  # CuPy's flags have no writeable: its arrays always are
            raise ValueError(f"{where}: arrays[{i}]: expected a writeable array (the result is written in place)")
    return arrays


class Communicator:
    """Base class: the ranks of one data-parallel job and the collectives between them.

    Attributes
    ----------
    name : str
        ``"mpi"`` or ``"nccl"``.
    rank : int
        This process's index in ``0 .. size - 1``; rank 0 is the root (it
        writes checkpoints and prints progress).
    size : int
        The number of processes.
    local_rank, local_size : int
        The rank among the processes of this machine (node) and their number;
        rank r uses GPU ``local_rank mod (GPUs on the node)``.

    Notes
    -----
    Every rank must call the same collectives in the same order with arrays
    of the same shapes and dtypes (MPI's rule); a rank that fails must
    :meth:`abort`, or the others wait for it forever.
    """

    name = "base"

    def __init__(self, rank: int, size: int, local_rank: int = 0, local_size: int = 1):
        self.rank, self.size = int(rank), int(size)
        self.local_rank, self.local_size = int(local_rank), int(local_size)
        self._staging = StagingBuffers()

    @property
    def is_root(self) -> bool:
        """True on rank 0."""
        return self.rank == 0

    # -- what a transport implements --------------------------------------------------------------
    def _allreduce_buffer(self, buffer) -> None:
        """Sum the contiguous 1-D ``buffer`` over the ranks, in place."""
        raise NotImplementedError(f"{type(self).__name__}._allreduce_buffer is not implemented")

    def _broadcast_buffer(self, buffer, root: int) -> None:
        """Copy ``root``'s contiguous 1-D ``buffer`` into every rank's, in place."""
        raise NotImplementedError(f"{type(self).__name__}._broadcast_buffer is not implemented")

    def barrier(self) -> None:
        """Wait until every rank has called ``barrier``."""
        raise NotImplementedError(f"{type(self).__name__}.barrier is not implemented")

    def broadcast_object(self, obj, root: int = 0):
        """``root``'s picklable ``obj`` on every rank (small things: seeds, logs, settings)."""
        raise NotImplementedError(f"{type(self).__name__}.broadcast_object is not implemented")

    def allgather_object(self, obj) -> list:
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (small picklable things)."""
        raise NotImplementedError(f"{type(self).__name__}.allgather_object is not implemented")

    def _abort_transport(self, status: int) -> None:
        raise NotImplementedError(f"{type(self).__name__}._abort_transport is not implemented")

    # -- the collectives on lists of arrays --------------------------------------------------------
    def allreduce_sum(self, arrays) -> list:
        """Replace every array by its sum over the ranks, in place; return ``arrays`` as a list.

        The arrays are grouped by device and dtype; each group is one
        contiguous buffer and one collective call: the arrays' own memory when
        they tile one stretch (no copy: flat gradient buffers), else a staging
        buffer they are copied into and back from.

        Parameters
        ----------
        arrays : list of arrays or None
            NumPy or CuPy, float or integer, writeable; ``None`` entries are
            skipped. Same shapes and dtypes, in the same order, on every rank.

        Returns
        -------
        list
            ``arrays`` (the same objects), now holding the sums.
        """
        return self._collective(arrays, "allreduce_sum", self._allreduce_buffer, float_only=False)

    def allreduce_mean(self, arrays) -> list:
        """Replace every array by its mean over the ranks, in place; return ``arrays`` as a list.

        ``a <- (a_0 + a_1 + ... + a_{size-1}) / size``, each ``(device,
        dtype)`` group packed into one contiguous buffer and reduced with one
        collective call (zero-copy when the arrays tile one buffer, as the
        gradient views of :func:`optimizers.flatten_parameters` do, or when a
        flat buffer itself is given). The dtype of every array is kept.

        Parameters
        ----------
        arrays : list of float arrays or None
            Writeable; ``None`` entries are skipped. Same shapes and dtypes, in
            the same order, on every rank.

        Returns
        -------
        list
            ``arrays`` (the same objects), now holding the means.
        """
        return self._collective(arrays, "allreduce_mean", self._mean_buffer, float_only=True)

    def broadcast(self, arrays, root: int = 0) -> list:
        """Copy ``root``'s arrays into every rank's, in place; return ``arrays`` as a list.

        One collective call per ``(device, dtype)`` group, as in :meth:`allreduce_mean`.

        Parameters
        ----------
        arrays : list of arrays or None
            Same shapes and dtypes on every rank; overwritten except on ``root``.
        root : int
            The rank whose values are kept (default 0).
        """
        root = self._check_root(root, f"{type(self).__name__}.broadcast")
        return self._collective(arrays, "broadcast", lambda buffer: self._broadcast_buffer(buffer, root),
                                float_only=False)

    def _mean_buffer(self, buffer) -> None:
        self._allreduce_buffer(buffer)
        buffer /= self.size

    def _collective(self, arrays, name: str, operation, float_only: bool) -> list:
        """Check ``arrays``, then apply ``operation`` in place to one contiguous buffer per (device, dtype) group.

        The buffer is the arrays' own memory when they tile one stretch, else
        the staging buffer, copied back into them afterwards.
        """
        arrays = check_arrays(arrays, f"{type(self).__name__}.{name}", float_only=float_only)
        if self.size == 1:
            return arrays
        for positions in group_arrays(arrays).values():
            members = [arrays[i] for i in positions]
            span = contiguous_span(members)
            if span is not None:
                operation(span)
                continue
            packed = self._staging.pack(members)
            operation(packed)
            self._staging.unpack(packed, members)
        return arrays

    def _check_root(self, root, where: str) -> int:
        if isinstance(root, bool) or not isinstance(root, (int, np.integer)) or not 0 <= int(root) < self.size:
            raise ValueError(f"{where}: root: expected a rank in 0..{self.size - 1}, got {root!r}")
        return int(root)

    # -- failures -------------------------------------------------------------------------------
    def abort(self, message: str, status: int = 1):
        """End every rank of the job now: write ``message`` (prefixed with this rank) to stderr, then abort.

        The way out when one rank fails while the others wait in a collective
        (they would wait forever): MPI's ``Abort`` makes the launcher
        (``mpiexec``) end every process. Does not return.

        Parameters
        ----------
        message : str
            What went wrong; printed as ``"camadas: rank R of N: message"``.
        status : int
            The exit status the launcher reports (default 1).
        """
        text = f"camadas: rank {self.rank} of {self.size}: {message}"
        try:
            sys.stderr.write(text + "\n")
            sys.stderr.flush()
            sys.stdout.flush()
            time.sleep(ABORT_GRACE)
        finally:
            self._abort_transport(int(status))
        raise SystemExit(int(status))  # not reached: the transport ends the process

    def __repr__(self) -> str:
        return (f"{type(self).__name__}(rank={self.rank}, size={self.size}, local_rank={self.local_rank}, "
                f"local_size={self.local_size})")


def same_on_every_rank(communicator, values: dict, where: str) -> None:
    """Raise the same ValueError on every rank when one of ``values`` (name -> value) differs between ranks.

    One collective call (an allgather of the dict); the message names the first
    differing value and gives every rank's.
    """
    gathered = communicator.allgather_object(values)
    for name in values:
        if any(g.get(name) != gathered[0].get(name) for g in gathered):
            listing = ", ".join(f"rank {r}: {g.get(name)!r}" for r, g in enumerate(gathered))
            raise ValueError(f"{where}: {name}: expected the same value on every rank, got {listing}")
