"""backend.host: the thread pools (threadpoolctl + Numba), capping them together, and the CPU description."""

from __future__ import annotations

import sys

import numba
import numpy as np  # noqa: F401  (loads NumPy's BLAS, so threadpoolctl has a pool to report)
import pytest

import backend
from backend.host import cpu_description, describe_thread_pools, limit_threads, thread_pools

pytest.importorskip("threadpoolctl", reason="thread pools are read with threadpoolctl (a dependency)")


def test_thread_pools_list_numba_then_the_native_libraries():
    pools = thread_pools()
    assert pools[0]["user_api"] == "numba" and pools[0]["num_threads"] == numba.get_num_threads()
    assert all({"user_api", "num_threads"} <= set(pool) for pool in pools)
    assert any(pool["user_api"] == "blas" for pool in pools)  # NumPy's BLAS is loaded
    assert describe_thread_pools().startswith("numba ") and "threads" in describe_thread_pools()


def test_limit_threads_caps_every_pool_and_restores_them():
    before = [(p["user_api"], p.get("filepath"), p["num_threads"]) for p in thread_pools()]
    with pytest.raises(RuntimeError):
        with limit_threads(1):
            assert all(pool["num_threads"] == 1 for pool in thread_pools())
            raise RuntimeError("restored even so")
    assert [(p["user_api"], p.get("filepath"), p["num_threads"]) for p in thread_pools()] == before


@pytest.mark.parametrize("n, error", [(0, ValueError), ("2", TypeError), (True, TypeError)])
def test_limit_threads_checks_its_argument(n, error):
    with pytest.raises(error, match="limit_threads: n: expected an integer >= 1"):
        with limit_threads(n):
            pass


def test_cpu_description(monkeypatch):
    keys = {"brand", "arch", "cores", "usable_cores", "vector_flags", "source"}
    monkeypatch.setitem(sys.modules, "cpuinfo", None)  # py-cpuinfo absent: platform's answer
    info = cpu_description()
    assert set(info) == keys and info["source"] == "platform" and info["vector_flags"] == []
    assert backend.cpu_description is cpu_description and backend.limit_threads is limit_threads


def test_kernel_threads_follow_numba_set_num_threads_and_limit_threads():
    from kernels.jit import parallel_threads

    previous = numba.get_num_threads()  # launches Numba's layer in this test process, as a user may
    try:
        numba.set_num_threads(1)
        assert parallel_threads() == backend.host.kernel_threads() == 1
        numba.set_num_threads(previous)
        assert parallel_threads() == previous
        with limit_threads(1):
            assert parallel_threads() == 1 and numba.get_num_threads() == 1
        assert parallel_threads() == previous and numba.get_num_threads() == previous
    finally:
        numba.set_num_threads(previous)


TORCH_SAFE = """
import numpy as np
import torch
x = torch.ones(256, 256)
x @ x  # PyTorch's OpenMP runtime is up
torch.set_num_threads(1)
from backend.host import describe_thread_pools, limit_threads
from kernels import activations, conv2d, pool2d
from layers import Convolution2D, Dense, Flatten, MaxPooling2D, Sequential, get_activation
rng = np.random.default_rng(0)
activations.backward("gelu", np.ones(4096, np.float32), rng.standard_normal(4096).astype(np.float32), None)
model = Sequential([Convolution2D(1, 4, 3, padding=1, seed=0), get_activation("relu"), MaxPooling2D(2), Flatten(),
                    Dense(16, 3, seed=1)])
model.fit(rng.random((8, 4, 4, 1)).astype(np.float32), rng.integers(0, 3, 8), loss="sparse_categorical_crossentropy",
          optimizer="adam", epochs=1, verbose=0)
describe_thread_pools()
with limit_threads(1):
    activations.forward("relu", np.ones(8, np.float32))
x @ x
print("TORCH THREADS", torch.get_num_threads())
"""


def test_camadas_calls_leave_pytorchs_thread_count_alone():
    """Numba's OpenMP layer, once launched, resets a shared OpenMP runtime: camadas never launches it."""
    import os
    import subprocess
    from pathlib import Path

    pytest.importorskip("torch", reason="the check is about a process that also uses PyTorch")
    root = Path(__file__).resolve().parents[1]
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    env["NUMBA_NUM_THREADS"] = "2"
    result = subprocess.run([sys.executable, "-c", TORCH_SAFE], cwd=root, env=env, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert "TORCH THREADS 1" in result.stdout, result.stdout


def _blas_counts():
    return [p["num_threads"] for p in thread_pools() if p["user_api"] == "blas"]


def test_blas_threads_caps_every_blas_library_and_restores_it():
    from backend.host import blas_threads

    before = _blas_counts()
    with pytest.raises(RuntimeError):
        with blas_threads(1):
            assert _blas_counts() == [1] * len(before)
            raise RuntimeError("restored even so")
    assert _blas_counts() == before


def test_blas_threads_for_limits_only_products_blas_would_split():
    from kernels import threads

    before = _blas_counts()
    for macs in (0, threads.BLAS_ALONE_MAX_MACS - 1, threads.BLAS_SPLIT_MIN_MACS):
        with threads.blas_threads_for(macs):
            assert _blas_counts() == before  # too small to split, or large enough to: BLAS decides
    with threads.blas_threads_for(threads.BLAS_ALONE_MAX_MACS):
        assert _blas_counts() == [1] * len(before)
    assert _blas_counts() == before
