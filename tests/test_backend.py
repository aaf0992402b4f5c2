"""Device selection and NumPy/CuPy dispatch (issue 2, "backend/").

CuPy being absent is simulated by making ``import cupy`` fail
(``sys.modules["cupy"] = None``) and forgetting the probes, never by mocking
the math.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import threading

import numpy as np
import pytest

import backend
from backend import cupy_probe, device as device_module


@pytest.fixture
def fresh_backend():
    """Forget probes, the default device and the current device before and after the test."""
    cupy_probe._reset_for_tests()
    device_module._reset_for_tests()
    yield
    cupy_probe._reset_for_tests()
    device_module._reset_for_tests()


@pytest.fixture
def no_cupy(monkeypatch, fresh_backend):
    """``import cupy`` raises ImportError for the duration of the test."""
    monkeypatch.setitem(sys.modules, "cupy", None)
    cupy_probe._reset_for_tests()
    device_module._reset_for_tests()
    yield


# -- names --------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, expected",
    [("cpu", ("cpu", 0)), ("CPU", ("cpu", 0)), ("gpu", ("gpu", 0)), ("gpu:0", ("gpu", 0)),
     ("gpu:3", ("gpu", 3)), ("cuda:1", ("gpu", 1)), (" auto ", ("auto", 0))],
)
def test_device_names_are_parsed(name, expected):
    assert device_module._parse(name) == expected


@pytest.mark.parametrize("name", ["tpu", "gpu:", "gpu:x", "gpu:-1", "", "cpu:0"])
def test_unknown_device_name_is_a_value_error_naming_it(name):
    with pytest.raises(ValueError, match=r"device: expected 'cpu', 'gpu', 'gpu:N' or 'auto', got"):
        backend.set_device(name)
    with pytest.raises(ValueError, match="tpu" if name == "tpu" else "got"):
        backend.resolve_device(name)


def test_device_name_of_wrong_type_is_a_type_error():
    with pytest.raises(TypeError, match="device: expected a str .* got int 0"):
        backend.set_device(0)


# -- current device -----------------------------------------------------------------------
def test_set_device_cpu_returns_the_active_device(fresh_backend):
    dev = backend.set_device("cpu")
    assert dev.name == "cpu" and dev.xp is np and str(dev) == "cpu"
    assert backend.get_device() == dev


def test_use_device_restores_the_previous_device(fresh_backend):
    backend.set_device("cpu")
    before = backend.get_device()
    with backend.use_device("cpu") as dev:
        assert backend.get_device() is dev
        with backend.use_device("auto"):
            assert backend.get_device().name in ("cpu", "gpu")
        assert backend.get_device() is dev
    assert backend.get_device() == before


def test_use_device_restores_after_an_exception(fresh_backend):
    backend.set_device("cpu")
    with pytest.raises(RuntimeError, match="boom"):
        with backend.use_device("cpu"):
            raise RuntimeError("boom")
    assert backend.get_device().name == "cpu"


def test_device_choice_is_per_thread(fresh_backend):
    """The current device is a ContextVar: a thread's set_device does not leak into the caller."""
    seen = {}

    def worker():
        seen["before"] = device_module._current.get()
        backend.set_device("cpu")
        seen["after"] = device_module._current.get()

    t = threading.Thread(target=worker)
    t.start()
    t.join()
    assert seen["before"] is None  # a new thread starts from the default
    assert seen["after"] is not None and seen["after"].name == "cpu"
    assert device_module._current.get() is None  # untouched in this thread


def test_environment_variable_is_read_once(monkeypatch, fresh_backend):
    monkeypatch.setenv(backend.ENV_VAR, "cpu")
    assert backend.get_device().name == "cpu"
    monkeypatch.setenv(backend.ENV_VAR, "definitely-not-a-device")
    assert backend.get_device().name == "cpu"  # not read again


def test_environment_variable_with_bad_value_fails_on_first_use(monkeypatch, fresh_backend):
    monkeypatch.setenv(backend.ENV_VAR, "tpu")
    with pytest.raises(ValueError, match="'tpu'"):
        backend.get_device()


# -- CuPy absent ------------------------------------------------------------------------------
def test_without_cupy_auto_falls_back_to_cpu_and_logs_why_once(no_cupy, caplog):
    caplog.set_level(logging.INFO, logger="camadas.backend")
    assert not backend.has_cupy()
    assert not backend.has_gpu()
    dev = backend.set_device("auto")
    assert dev.name == "cpu"
    records = [r for r in caplog.records if r.name == "camadas.backend"]
    assert len(records) == 1
    assert "CuPy is not importable" in records[0].getMessage()
    assert "camadas[cuda12]" in records[0].getMessage()
    backend.set_device("auto")
    assert len([r for r in caplog.records if r.name == "camadas.backend"]) == 1  # once


def test_without_cupy_default_auto_is_cpu(no_cupy, monkeypatch):
    monkeypatch.delenv(backend.ENV_VAR, raising=False)
    assert backend.get_device().name == "cpu"


@pytest.mark.parametrize("name", ["gpu", "gpu:1", "cuda"])
def test_without_cupy_gpu_raises_naming_the_extras(no_cupy, name):
    with pytest.raises(backend.DeviceUnavailableError, match=r"camadas\[cuda12\].*camadas\[cuda13\]"):
        backend.set_device(name)
    assert issubclass(backend.DeviceUnavailableError, RuntimeError)
    assert "CuPy is not importable" in backend.unavailable_reason()


def test_without_cupy_arrays_dispatch_to_numpy(no_cupy):
    x = np.ones(3, dtype=np.float32)
    assert backend.get_array_module(x) is np
    assert backend.is_cupy_array(x) is False
    assert backend.to_device(x, "cpu") is x
    backend.synchronize()  # a no-op on the CPU


def test_probing_is_lazy_not_at_import():
    code = (
        "import sys; import backend, backend.cupy_probe as p; "
        "assert 'cupy' not in sys.modules and p._probed is False; "
        "backend.get_array_module(__import__('numpy').zeros(1)); assert p._probed is False; "
        "backend.has_cupy(); assert p._probed is True; print('ok')"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# -- dispatch ------------------------------------------------------------------------------
def test_get_array_module_with_numpy_and_non_arrays():
    x = np.zeros(2)
    assert backend.get_array_module(x) is np
    assert backend.get_array_module(x, None, 3.0, [1, 2]) is np
    assert backend.get_array_module() is np


def test_mixing_numpy_and_cupy_raises_type_error():
    if not backend.has_gpu():
        pytest.skip(f"needs CuPy and a GPU to build a cupy array: {backend.unavailable_reason()}")
    cp = backend.get_device().xp if backend.get_device().name == "gpu" else __import__("cupy")
    with pytest.raises(TypeError, match=r"numpy\.ndarray .* cupy\.ndarray.*to_device"):
        backend.get_array_module(np.zeros(2), cp.zeros(2))


def test_to_device_does_not_copy_on_the_same_device(device):
    x = backend.to_device(np.arange(4, dtype=np.float32), device)
    assert backend.to_device(x, device) is x
    assert backend.device_of(x) == device
    back = backend.to_numpy(x)
    assert isinstance(back, np.ndarray)
    np.testing.assert_array_equal(back, np.arange(4, dtype=np.float32))
    host = np.ones(2)
    assert backend.to_numpy(host) is host


def test_seeded_generators_repeat(device):
    a = backend.to_numpy(backend.rng(7).standard_normal(5))
    b = backend.to_numpy(backend.rng(7).standard_normal(5))
    np.testing.assert_array_equal(a, b)


def test_default_dtype_set_and_restore():
    assert backend.get_default_dtype() == np.float32
    previous = backend.set_default_dtype(np.float64)
    try:
        assert previous == np.float32 and backend.get_default_dtype() == np.float64
    finally:
        backend.set_default_dtype(previous)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got int32"):
        backend.set_default_dtype(np.int32)
