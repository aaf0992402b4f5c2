"""The NCCL communicator: CuPy buffers summed and broadcast GPU to GPU by NCCL (``cupy.cuda.nccl``).

One process per GPU (ChainerMN's ``pure_nccl`` communicator). MPI starts the
processes and carries the rest: rank 0 creates NCCL's unique id and
broadcasts it over MPI, every rank joins with ``ncclCommInitRank`` on its
current device; NumPy buffers, objects, barriers and aborts go over MPI.
NCCL calls are queued on CuPy's current stream, in order with the kernels
around them, so nothing waits on the host.
"""

from __future__ import annotations

import numpy as np

from .. import cupy_probe
from ..arrays import is_cupy_array
from .mpi import DistributedUnavailableError, MpiCommunicator


def nccl_module():
    """``cupy.cuda.nccl``; DistributedUnavailableError saying why when CuPy, a GPU or NCCL is missing."""
    if not cupy_probe.has_gpu():
        raise DistributedUnavailableError(f"NCCL needs a GPU: {cupy_probe.unavailable_reason()}")
    try:
        from cupy.cuda import nccl
    except Exception as exc:
        raise DistributedUnavailableError(f"CuPy's NCCL binding does not import ({type(exc).__name__}: {exc}); "
                                          "pip install nvidia-nccl-cu12 (or -cu13) beside CuPy") from exc
    if not getattr(nccl, "available", False):
        raise DistributedUnavailableError("CuPy was built without NCCL (cupy.cuda.nccl.available is False); "
                                          "pip install nvidia-nccl-cu12 (or -cu13) beside CuPy")
    return nccl


def nccl_datatype(nccl, dtype) -> int:
    """NCCL's code for ``dtype`` (float32/64, int32/64, uint8); TypeError for others."""
    table = {np.dtype(np.float32): nccl.NCCL_FLOAT32, np.dtype(np.float64): nccl.NCCL_FLOAT64,
             np.dtype(np.int32): nccl.NCCL_INT32, np.dtype(np.int64): nccl.NCCL_INT64,
             np.dtype(np.uint8): nccl.NCCL_UINT8}
    try:
        return table[np.dtype(dtype)]
    except KeyError:
        raise TypeError(f"NcclCommunicator: dtype: expected one of {', '.join(str(d) for d in table)}, "
                        f"got {np.dtype(dtype)}") from None


class NcclCommunicator(MpiCommunicator):
    """A communicator whose CuPy collectives run on NCCL, bootstrapped and completed by MPI.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        The MPI communicator of the job (default ``MPI.COMM_WORLD``).

    Notes
    -----
    Each rank must have made its GPU current before creating it
    (:func:`~backend.distributed.create_communicator` does: GPU
    ``local_rank mod (GPUs on the node)``); every CuPy buffer given to it must
    live on that GPU.
    """

    name = "nccl"

    def __init__(self, comm=None):
        nccl = nccl_module()
        super().__init__(comm)
        self.nccl = nccl
        cp = cupy_probe.cupy_module()
        self.device_id = int(cp.cuda.Device().id)
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = self.broadcast_object(unique_id, root=0)
        self.nccl_comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)

    def _stream_for(self, buffer) -> int:
        if int(buffer.device.id) != self.device_id:
            raise ValueError(f"NcclCommunicator: a buffer on GPU {int(buffer.device.id)}; this rank's NCCL "
                             f"communicator runs on GPU {self.device_id} (move the model with model.to('gpu:"
                             f"{self.device_id}'))")
        return cupy_probe.cupy_module().cuda.get_current_stream().ptr

    def _allreduce_buffer(self, buffer) -> None:
        if not is_cupy_array(buffer):
            super()._allreduce_buffer(buffer)
            return
        stream = self._stream_for(buffer)
        ptr = buffer.data.ptr
        self.nccl_comm.allReduce(ptr, ptr, buffer.size, nccl_datatype(self.nccl, buffer.dtype), self.nccl.NCCL_SUM,
                                 stream)

    def _broadcast_buffer(self, buffer, root: int) -> None:
        if not is_cupy_array(buffer):
            super()._broadcast_buffer(buffer, root)
            return
        stream = self._stream_for(buffer)
        self.nccl_comm.bcast(buffer.data.ptr, buffer.size, nccl_datatype(self.nccl, buffer.dtype), root, stream)

    def _abort_transport(self, status: int) -> None:
        try:
            self.nccl_comm.abort()      # frees this rank's NCCL resources; the MPI abort ends the job
        finally:
            super()._abort_transport(status)
