"""The MPI communicator (mpi4py): every collective of :class:`~backend.distributed.base.Communicator` on MPI.

NumPy buffers go to MPI directly (``Allreduce`` in place, ``Bcast``). CuPy
buffers are staged through host memory, unless MPI is CUDA-aware
(``cuda_aware=True``: Open MPI or MVAPICH built with CUDA, MPICH with GPU
support), when the device pointer is handed to MPI after the current stream
has finished. mpi4py is imported only when a communicator is created.
"""

from __future__ import annotations

from .. import cupy_probe
from ..arrays import is_cupy_array
from .base import Communicator


class DistributedUnavailableError(RuntimeError):
    """mpi4py, an MPI library or NCCL is missing; the message says what and how to install it."""


INSTALL_HINT = 'install the distributed extra: pip install "camadas[distributed]" (mpi4py and MPICH)'


def mpi_module():
    """``mpi4py.MPI`` (initialises MPI on first import); DistributedUnavailableError when it does not import."""
    try:
        from mpi4py import MPI
    except Exception as exc:  # ImportError, or an MPI library that fails to load
        raise DistributedUnavailableError(f"mpi4py is not usable ({type(exc).__name__}: {exc}); "
                                          f"{INSTALL_HINT}") from exc
    return MPI


def node_ranks(comm) -> tuple[int, int]:
    """``(local_rank, local_size)``: this process's index among the ranks of ``comm`` on its machine, and how many."""
    MPI = mpi_module()
    local = comm.Split_type(MPI.COMM_TYPE_SHARED, key=comm.Get_rank())
    try:
        return local.Get_rank(), local.Get_size()
    finally:
        local.Free()


class MpiCommunicator(Communicator):
    """A communicator on MPI (mpi4py): the processes ``mpiexec -n N`` starts, or any MPI communicator.

    Parameters
    ----------
    comm : mpi4py.MPI.Comm, optional
        Default ``MPI.COMM_WORLD``. Creating the communicator is collective:
        every rank of ``comm`` must create it.
    cuda_aware : bool
        Hand CuPy buffers to MPI directly (MPI built with CUDA support);
        default False: copy them to the host and back.
    """

    name = "mpi"

    def __init__(self, comm=None, cuda_aware: bool = False):
        MPI = mpi_module()
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.cuda_aware = bool(cuda_aware)
        super().__init__(self.comm.Get_rank(), self.comm.Get_size(), *node_ranks(self.comm))

    def _allreduce_buffer(self, buffer) -> None:
        if not is_cupy_array(buffer):
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
            return
        if self.cuda_aware:
            cupy_probe.cupy_module().cuda.get_current_stream().synchronize()
            self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
            return
        host = buffer.get()
        self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self.MPI.SUM)
        buffer.set(host)

    def _broadcast_buffer(self, buffer, root: int) -> None:
        if not is_cupy_array(buffer):
            self.comm.Bcast(buffer, root=root)
            return
        if self.cuda_aware:
            cupy_probe.cupy_module().cuda.get_current_stream().synchronize()
            self.comm.Bcast(buffer, root=root)
            return
        host = buffer.get()
        self.comm.Bcast(host, root=root)
        buffer.set(host)

    def barrier(self) -> None:
        self.comm.Barrier()

    def broadcast_object(self, obj, root: int = 0):
        return self.comm.bcast(obj, root=self._check_root(root, f"{type(self).__name__}.broadcast_object"))

    def allgather_object(self, obj) -> list:
        return self.comm.allgather(obj)

    def _abort_transport(self, status: int) -> None:
        self.comm.Abort(status)
