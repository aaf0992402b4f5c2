"""Creating the communicator of a job: the transport, the GPU of each rank, and what ends a failed job.

:func:`create_communicator` is called once, by every rank, at the start of a
script that ``mpiexec -n N`` runs. It becomes the current communicator
(:func:`current_communicator`: what synchronized BatchNormalization and
``model.save`` consult), picks each rank's GPU, and installs an exception hook
so that an uncaught exception on one rank ends every rank instead of leaving
the others waiting in a collective.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
import sys

from .. import cupy_probe
from ..checks import check_bool, check_choice, check_positive_int
from ..device import get_device, resolve_device, set_device
from .base import Communicator
from .mpi import MpiCommunicator, mpi_module, node_ranks
from .nccl import NcclCommunicator, nccl_module

logger = logging.getLogger("camadas.distributed")

KINDS = ("mpi", "nccl", "auto")

_current: contextvars.ContextVar[Communicator | None] = contextvars.ContextVar("camadas_communicator", default=None)
_default: Communicator | None = None


def current_communicator() -> Communicator | None:
    """The communicator in effect: the one :func:`use_communicator` set, else the last one created, else None."""
    comm = _current.get()
    return comm if comm is not None else _default


@contextlib.contextmanager
def use_communicator(communicator):
    """Make ``communicator`` current inside the block (``fit(..., communicator=...)`` does); restored after.

    ``None`` makes the block single-process (no communicator).
    """
    if communicator is not None and not isinstance(communicator, Communicator):
        raise TypeError(f"use_communicator: communicator: expected a backend.distributed.Communicator or None, "
                        f"got {type(communicator).__name__}")
    token = _current.set(communicator)
    try:
        yield communicator
    finally:
        _current.reset(token)


def is_writer() -> bool:
    """True unless a communicator is in effect and this is not its rank 0: who writes files and prints."""
    comm = current_communicator()
    return comm is None or comm.rank == 0


def rank_device(local_rank: int, device=None):
    """The device of the rank with node-local index ``local_rank``.

    ``device`` None (the current device), ``"gpu"`` or ``"auto"``: GPU
    ``local_rank mod (GPUs on the node)`` when a GPU is in use, else the CPU.
    ``"gpu:N"`` and ``"cpu"`` are taken as given.
    """
    if device is None:
        kind = get_device().name
    else:
        text = device if isinstance(device, str) else str(device)
        if ":" in text:
            return resolve_device(text)
        kind = resolve_device(text).name
    if kind != "gpu":
        return resolve_device("cpu")
    count = cupy_probe.cupy_module().cuda.runtime.getDeviceCount()
    return resolve_device(f"gpu:{local_rank % count}")


def create_communicator(kind: str = "auto", *, device=None, cuda_aware: bool = False,
                        abort_on_error: bool = True, threads=None) -> Communicator:
    """Join the processes of this job (``mpiexec -n N python script.py``) and return their communicator.

    Every rank calls it once, at the start. It also makes each rank's device
    current (rank r uses GPU ``r_local mod (GPUs on its node)`` when the device
    is a GPU; ranks on the CPU share the node's cores, see ``threads``), makes
    the communicator current (:func:`current_communicator`) and, with
    ``abort_on_error``, ends every rank when one raises an uncaught exception
    (:meth:`Communicator.abort`, the message naming the rank).

    Parameters
    ----------
    kind : {"auto", "mpi", "nccl"}
        ``"mpi"``: everything over MPI (CuPy arrays through the host unless
        ``cuda_aware``). ``"nccl"``: CuPy arrays over NCCL, the rest over MPI;
        needs a GPU. ``"auto"``: NCCL when this rank's device is a GPU and
        CuPy has NCCL, else MPI; the choice and its reason are logged
        (logger ``"camadas.distributed"``, level INFO).
    device : str, optional
        Default: the current device (:func:`backend.get_device`); ``"gpu"`` and
        ``"auto"`` pick the GPU per rank, ``"gpu:N"`` pins it.
    cuda_aware : bool
        MPI may read and write GPU memory directly (an MPI built with CUDA).
    abort_on_error : bool
        Install the exception hook (default True; only acts when size > 1).
    threads : int, optional
        CPU threads of each rank (BLAS, OpenMP, Numba). Default: on the CPU,
        when several ranks share a node, the node's usable cores divided
        between them (at least 1), unless a thread count is set in the
        environment (``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``,
        ``MKL_NUM_THREADS``, ``NUMBA_NUM_THREADS``): N ranks with every pool at
        the full core count would run N times too many threads.

    Returns
    -------
    Communicator
        :class:`~backend.distributed.mpi.MpiCommunicator` or
        :class:`~backend.distributed.nccl.NcclCommunicator`.

    Raises
    ------
    DistributedUnavailableError
        mpi4py or MPI is missing (the message says ``pip install
        "camadas[distributed]"``), or ``"nccl"`` without a GPU or NCCL.
    """
    global _default
    kind = check_choice(kind, "kind", KINDS, "create_communicator")
    cuda_aware = check_bool(cuda_aware, "cuda_aware", "create_communicator")
    abort_on_error = check_bool(abort_on_error, "abort_on_error", "create_communicator")
    if threads is not None:
        threads = check_positive_int(threads, "threads", where="create_communicator")
    world = mpi_module().COMM_WORLD
    local_rank, local_size = node_ranks(world)
    dev = set_device(rank_device(local_rank, device))
    if dev.name == "cpu":
        share_cpu_threads(local_size, threads)
    if kind == "auto":
        kind, reason = _choose(dev)
        logger.info("create_communicator: %s (%s)", kind, reason)
    comm = NcclCommunicator(world) if kind == "nccl" else MpiCommunicator(world, cuda_aware=cuda_aware)
    _default = comm
    if abort_on_error and comm.size > 1:
        install_abort_hook(comm)
    logger.info("create_communicator: %r on %s", comm, dev)
    return comm


THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def share_cpu_threads(local_size: int, threads=None) -> int | None:
    """Cap this process's thread pools (BLAS, OpenMP, Numba) at ``threads``, or at its share of the node's cores.

    Returns the cap applied, or None when nothing was changed (one rank on the
    node, or a thread count already set in the environment).
    """
    if threads is None:
        if local_size <= 1 or any(os.environ.get(name) for name in THREAD_VARIABLES):
            return None
        try:
            cores = len(os.sched_getaffinity(0))
        except (AttributeError, OSError):
            cores = os.cpu_count() or 1
        threads = max(1, cores // local_size)
    import numba
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=threads)              # for the rest of the process
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    logger.info("create_communicator: %d CPU thread(s) per rank (%d rank(s) on this node)", threads, local_size)
    return threads


def _choose(dev) -> tuple[str, str]:
    if dev.name != "gpu":
        return "mpi", "this rank's device is the CPU"
    try:
        nccl_module()
    except Exception as exc:
        return "mpi", f"the device is a GPU but NCCL is not usable: {exc}"
    return "nccl", f"CuPy arrays on {dev} and NCCL available"


def install_abort_hook(communicator) -> None:
    """Make an uncaught exception print its traceback and then :meth:`~Communicator.abort` every rank.

    Without it a rank that dies leaves the others blocked in their next
    collective until the job's time limit (mpi4py's ``python -m mpi4py`` does
    the same). Installed by :func:`create_communicator`; calling it again
    replaces the communicator it aborts.
    """
    previous = getattr(sys.excepthook, "camadas_previous", sys.excepthook)

    def hook(kind, value, traceback):
        previous(kind, value, traceback)
        if issubclass(kind, KeyboardInterrupt):
            return
        communicator.abort(f"uncaught {kind.__name__}: {value}")

    hook.camadas_previous = previous  # type: ignore[attr-defined]
    sys.excepthook = hook
