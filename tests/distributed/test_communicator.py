"""The communicator's packing and checks, in one process (no MPI): contiguous spans, staging, in-place results."""

from __future__ import annotations

import sys

import numpy as np
import pytest

import backend
from backend.distributed import DistributedUnavailableError, create_communicator, rank_device
from backend.distributed.world import THREAD_VARIABLES, share_cpu_threads
from backend.distributed.packing import contiguous_span, group_arrays
from tests.distributed.loopback import LoopbackCommunicator


def test_contiguous_span_of_views_tiling_a_buffer_in_any_order():
    buffer = np.arange(10.0)
    views = [buffer[4:].reshape(2, 3), buffer[:4].reshape(2, 2)]
    span = contiguous_span(views)
    assert span.base is not None and span.size == 10 and span.dtype == buffer.dtype
    span += 1
    np.testing.assert_array_equal(views[1].ravel(), [1, 2, 3, 4])


@pytest.mark.parametrize("make", [
    lambda b: [b[:3], b[4:]],                       # a gap
    lambda b: [b[:4], b[2:6]],                      # overlapping, not the same
    lambda b: [b[:4], np.arange(4.0)],              # another owner
    lambda b: [b[::2]],                             # not contiguous
    lambda b: [b[:4], b[4:].astype(np.float32)],    # another dtype
])
def test_contiguous_span_refuses_what_does_not_tile(make):
    assert contiguous_span(make(np.arange(10.0))) is None


def test_contiguous_span_counts_the_same_view_once():
    buffer = np.zeros(6)
    assert contiguous_span([buffer[:3], buffer[3:], buffer[:3]]).size == 6


def test_group_arrays_by_device_and_dtype_keeps_order_and_skips_none():
    a, b, c = np.zeros(2), np.zeros(3, np.float32), np.zeros(4)
    assert list(group_arrays([a, None, b, c]).values()) == [[0, 3], [2]]


def test_allreduce_mean_of_separate_arrays_is_one_call_per_dtype_and_in_place():
    comm = LoopbackCommunicator(size=3)
    a, b, c = np.full((2, 2), 3.0), np.arange(3, dtype=np.float32), np.full(5, -1.0)
    out = comm.allreduce_mean([a, None, b, c])
    assert out[0] is a and out[1] is None and out[2] is b
    assert [kind for kind, _ in comm.calls] == ["allreduce", "allreduce"]   # float64 (a, c) and float32 (b)
    np.testing.assert_array_equal(a, 3.0)
    np.testing.assert_array_equal(b, [0, 1, 2])
    assert b.dtype == np.float32


def test_allreduce_of_a_flat_buffer_is_zero_copy():
    comm = LoopbackCommunicator(size=2)
    buffer = np.arange(6.0)
    views = [buffer[:2], buffer[2:].reshape(2, 2)]
    comm.allreduce_sum(views)
    (_, reduced), = comm.calls
    assert reduced.size == buffer.size and np.shares_memory(reduced, buffer)
    np.testing.assert_array_equal(buffer, 2 * np.arange(6.0))


def test_allreduce_sum_keeps_integers():
    comm = LoopbackCommunicator(size=4)
    flags = np.array([1, 0, 2], np.int64)
    comm.allreduce_sum([flags])
    np.testing.assert_array_equal(flags, [4, 0, 8])


@pytest.mark.parametrize("call, arrays, error, text", [
    ("allreduce_mean", np.zeros(3), TypeError, "expected a list of arrays"),
    ("allreduce_mean", [np.zeros(3, np.int64)], TypeError, "expected a float array"),
    ("allreduce_sum", [np.zeros(3, bool)], TypeError, "expected a numeric array"),
    ("allreduce_sum", ["x"], TypeError, "arrays[0]"),
    ("broadcast", [np.broadcast_to(np.zeros(1), (3,))], ValueError, "writeable"),
])
def test_bad_arrays_are_refused_before_any_communication(call, arrays, error, text):
    comm = LoopbackCommunicator(size=2)
    with pytest.raises(error, match=text.replace("[", r"\[").replace("]", r"\]")):
        getattr(comm, call)(arrays)
    assert comm.calls == []


def test_broadcast_root_is_checked():
    with pytest.raises(ValueError, match=r"root: expected a rank in 0..1, got 2"):
        LoopbackCommunicator(size=2).broadcast([np.zeros(2)], root=2)


def test_abort_names_the_rank(capsys, monkeypatch):
    monkeypatch.setattr("backend.distributed.base.ABORT_GRACE", 0.0)
    with pytest.raises(RuntimeError, match="aborted with status 3"):
        LoopbackCommunicator(rank=1, size=4).abort("something broke", status=3)
    assert "camadas: rank 1 of 4: something broke" in capsys.readouterr().err


def test_create_communicator_without_mpi4py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)        # import mpi4py fails
    with pytest.raises(DistributedUnavailableError, match=r'pip install "camadas\[distributed\]"'):
        create_communicator("mpi")


def test_create_communicator_checks_kind_first():
    with pytest.raises(ValueError, match="kind: expected one of 'mpi', 'nccl', 'auto', got 'gloo'"):
        create_communicator("gloo")


def test_rank_device_on_the_cpu():
    with backend.use_device("cpu"):
        assert rank_device(3).name == "cpu"
    assert rank_device(1, "cpu").name == "cpu"


@pytest.mark.gpu
def test_rank_device_cycles_through_the_gpus():
    if not backend.has_gpu():
        pytest.skip(f"no GPU: {backend.unavailable_reason()}")
    count = backend.Device("gpu").xp.cuda.runtime.getDeviceCount()
    assert [rank_device(r, "gpu").index for r in range(2 * count)] == list(range(count)) * 2
    assert rank_device(5, "gpu:0").index == 0


def test_cpu_threads_are_shared_between_the_ranks_of_a_node(monkeypatch):
    calls = []
    monkeypatch.setattr("threadpoolctl.threadpool_limits", lambda limits: calls.append(("blas", limits)))
    monkeypatch.setattr("numba.set_num_threads", lambda n: calls.append(("numba", n)))
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(8)), raising=False)
    for name in THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert share_cpu_threads(1) is None and calls == []          # one rank on the node: nothing to share
    assert share_cpu_threads(3) == 2 and calls[0] == ("blas", 2)
    assert share_cpu_threads(16) == 1
    assert share_cpu_threads(2, threads=3) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert share_cpu_threads(2) is None                          # the environment's choice wins
