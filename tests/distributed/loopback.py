"""An in-process stand-in for a communicator, for the tests that need no MPI.

``LoopbackCommunicator(rank, size)`` behaves as if every one of the ``size``
ranks held exactly this process's arrays: a sum is ``size`` times the array,
a mean the array itself, a broadcast changes nothing, a gathered object is
this one repeated. It records its calls, so tests can count collectives.
"""

from __future__ import annotations

from backend.distributed import Communicator


class LoopbackCommunicator(Communicator):
    name = "loopback"

    def __init__(self, rank: int = 0, size: int = 2):
        super().__init__(rank, size)
        self.calls: list = []

    def _allreduce_buffer(self, buffer) -> None:
        self.calls.append(("allreduce", buffer))
        buffer *= self.size

    def _broadcast_buffer(self, buffer, root: int) -> None:
        self.calls.append(("broadcast", buffer))

    def barrier(self) -> None:
        self.calls.append(("barrier", None))

    def broadcast_object(self, obj, root: int = 0):
        return obj

    def allgather_object(self, obj) -> list:
        return [obj] * self.size

    def _abort_transport(self, status: int) -> None:
        raise RuntimeError(f"aborted with status {status}")
