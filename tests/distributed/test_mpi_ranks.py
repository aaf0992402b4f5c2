"""Data-parallel training on real MPI ranks: ``mpiexec -n 2`` and ``-n 3`` runs of mpi_worker.py, with a timeout.

After a few steps of every scenario (an MLP with SGD, Momentum through the
DataParallel wrapper, Adam with a schedule on flat buffers, a CNN, sync
BatchNormalization, a hand-written loop) the weights of every rank are
identical bit for bit and equal (float64, 1e-12) to one process trained on the
same global batches. A rank that raises ends the job within the timeout with a
message naming it; a NaN stop on one rank stops every rank at the same step.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backend

pytest.importorskip("mpi4py", reason="the MPI tests need mpi4py: pip install -e '.[distributed]'")

from bench.scaling import mpiexec, mpiexec_env  # noqa: E402 (one launcher lookup for the bench and the tests)
from tests.distributed import mpi_worker  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
WORKER = Path(mpi_worker.__file__)
TIMEOUT = 120          # seconds for one mpiexec run (a first run compiles the Numba kernels)


if mpiexec() is None:
    pytest.skip("the MPI tests need mpiexec: pip install -e '.[distributed]' (mpich)", allow_module_level=True)


def run_ranks(ranks: int, script=WORKER, *args, device="cpu") -> subprocess.CompletedProcess:
    """``mpiexec -n ranks python script args`` (on the CPU: one thread per rank), with a timeout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
           "CAMADAS_DEVICE": device, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "NUMBA_NUM_THREADS": "1"}
    return subprocess.run([mpiexec(), "-n", str(ranks), sys.executable, str(script), *map(str, args)], cwd=REPO,
                          env=mpiexec_env(env), capture_output=True, text=True, timeout=TIMEOUT)


@pytest.fixture(scope="module", params=[2, 3], ids=["2-ranks", "3-ranks"])
def trained(request, tmp_path_factory):
    """(ranks, folder of the per-rank results) after one mpiexec run of every scenario."""
    out = tmp_path_factory.mktemp(f"mpi{request.param}")
    proc = run_ranks(request.param, WORKER, "--out", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return request.param, out


_single: dict = {}


def single_process(name: str, device: str = "cpu") -> dict:
    """The one-process run of scenario ``name`` on the same global batches (computed once per device)."""
    if (name, device) not in _single:
        with backend.use_device(device):
            _single[name, device] = mpi_worker.run(name, None)
    return _single[name, device]


def per_rank(trained, name: str) -> list:
    ranks, out = trained
    return [dict(np.load(out / f"{name}-rank{r}.npz")) for r in range(ranks)]


COMPARED = [name for name in mpi_worker.SCENARIOS if name != "custom_loop_late_broadcast"]


@pytest.mark.parametrize("name", COMPARED)
def test_every_rank_ends_identical_and_equal_to_one_process(trained, name):
    check_against_one_process(per_rank(trained, name), single_process(name))


def check_against_one_process(results, reference) -> None:
    """Every rank's arrays identical to rank 0's, bit for bit; rank 0's equal to ``reference`` (1e-12)."""
    assert sorted(results[0]) == sorted(reference)
    for rank, result in enumerate(results[1:], start=1):
        for key in reference:
            assert np.array_equal(result[key], results[0][key]), f"rank {rank} differs from rank 0 in {key}"
    for key, expected in reference.items():
        np.testing.assert_allclose(results[0][key], expected, rtol=1e-12, atol=1e-12, err_msg=key)


def test_ranks_that_started_apart_end_identical(trained):
    """No broadcast before a hand-written loop: the first step broadcasts rank 0's weights and skips its update."""
    results = per_rank(trained, "custom_loop_late_broadcast")
    for result in results[1:]:
        assert all(np.array_equal(result[key], results[0][key]) for key in result)


def test_a_failing_rank_ends_every_rank_with_its_message(tmp_path):
    proc = run_ranks(2, WORKER, "--out", tmp_path, "--fail")
    assert proc.returncode != 0
    assert "camadas: rank 1 of 2: RuntimeError in fit (epoch 1, batch 3): injected failure on rank 1" in proc.stderr


def test_an_uncaught_exception_outside_fit_ends_every_rank(tmp_path):
    proc = run_ranks(2, WORKER, "--out", tmp_path, "--raise-outside-fit")
    assert proc.returncode != 0
    assert "camadas: rank 1 of 2: uncaught RuntimeError: injected failure outside fit" in proc.stderr


def test_ranks_that_disagree_on_the_fit_are_refused(tmp_path):
    proc = run_ranks(2, WORKER, "--out", tmp_path, "--mismatch")
    assert proc.returncode != 0
    assert "fit: batch_size: expected the same value on every rank, got rank 0: 16, rank 1: 17" in proc.stderr


def test_a_nan_stop_on_one_rank_stops_every_rank(tmp_path):
    proc = run_ranks(3, WORKER, "--out", tmp_path, "--stop")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    stops = [np.load(tmp_path / f"stop-rank{r}.npz") for r in range(3)]
    assert [int(s["iterations"]) for s in stops] == [2, 2, 2]
    assert all(str(s["reason"]).startswith("rank 1: TerminateOnNaN: loss is nan at epoch 1, batch 2") for s in stops)
    assert all(np.array_equal(s["weights"], stops[0]["weights"]) for s in stops)


@pytest.mark.slow
def test_the_readme_example_on_two_ranks(tmp_path):
    pytest.importorskip("sklearn", reason="the example needs scikit-learn's digits: pip install -e '.[examples]'")
    proc = run_ranks(2, REPO / "examples" / "data_parallel.py", "--quick", "--epochs", "1", "--out", tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "2 rank(s), MpiCommunicator" in proc.stdout and proc.stdout.count("test accuracy") == 1
    assert (tmp_path / "data_parallel_digits.npz").exists()


@pytest.mark.gpu
def test_nccl_on_the_gpus(tmp_path):
    """NCCL's all-reduce and broadcast, then every scenario on the GPU(s): 1 rank, and 2 when 2 GPUs answer."""
    if not backend.has_gpu():
        pytest.skip(f"no GPU: {backend.unavailable_reason()}")
    try:
        from cupy.cuda import nccl
    except ImportError as exc:
        pytest.skip(f"CuPy has no NCCL ({exc}): pip install nvidia-nccl-cu12")
    if not getattr(nccl, "available", False):
        pytest.skip("CuPy has no NCCL: pip install nvidia-nccl-cu12")
    gpus = backend.Device("gpu").xp.cuda.runtime.getDeviceCount()
    for ranks in (1, 2) if gpus >= 2 else (1,):
        out = tmp_path / f"nccl{ranks}"
        out.mkdir()
        proc = run_ranks(ranks, WORKER, "--out", out, "--device", "gpu", "--kind", "nccl", "--scenarios",
                         ",".join(COMPARED), device="gpu")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        for rank in range(ranks):
            checks = dict(np.load(out / f"nccl-rank{rank}.npz"))
            assert all(bool(v) for v in checks.values()), checks
        for name in COMPARED:
            results = [dict(np.load(out / f"{name}-rank{r}.npz")) for r in range(ranks)]
            check_against_one_process(results, single_process(name, "gpu"))
