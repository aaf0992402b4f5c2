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
