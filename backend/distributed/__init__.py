"""Data-parallel training's communicator: one process per GPU (or CPU), joined by MPI and NCCL (ChainerMN's design).

Start N copies of a script with ``mpiexec -n N python script.py``; each calls
:func:`create_communicator` and gets its ``rank`` and the ``size`` of the job.
The collectives (:meth:`~base.Communicator.allreduce_mean`,
:meth:`~base.Communicator.allreduce_sum`, :meth:`~base.Communicator.broadcast`,
:meth:`~base.Communicator.barrier`) take lists of arrays and move each
``(device, dtype)`` group as one contiguous buffer in one call; a failing rank
ends every rank with :meth:`~base.Communicator.abort`. mpi4py and CuPy's NCCL
are imported only when a communicator is created (``pip install
"camadas[distributed]"``). The training side is :class:`optimizers.DataParallel`
and ``fit(..., communicator=...)``.
"""

from .base import Communicator
from .mpi import DistributedUnavailableError, MpiCommunicator
from .nccl import NcclCommunicator
from .world import (
    create_communicator,
    current_communicator,
    install_abort_hook,
    is_writer,
    rank_device,
    use_communicator,
)

__all__ = [
    "Communicator",
    "DistributedUnavailableError",
    "MpiCommunicator",
    "NcclCommunicator",
    "create_communicator",
    "current_communicator",
    "install_abort_hook",
    "is_writer",
    "rank_device",
    "use_communicator",
]
