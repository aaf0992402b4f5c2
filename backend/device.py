"""Device selection: where new parameters and batches are allocated.

The current device lives in a :class:`contextvars.ContextVar`, so threads and
asyncio tasks each see their own. Ops never consult it: they follow their
input arrays (see :func:`backend.get_array_module`).

Names accepted by :func:`set_device`:

* ``"cpu"``: NumPy.
* ``"gpu"`` or ``"gpu:N"``: CuPy on CUDA device N (default 0); raises
  :class:`DeviceUnavailableError` when CuPy or a device is missing.
* ``"auto"``: the GPU when one answers, else the CPU, logging once why.

The default comes from the environment variable ``CAMADAS_DEVICE``, read once
on first use (default ``"auto"``).
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import os
from dataclasses import dataclass

import numpy as np

from . import cupy_probe

logger = logging.getLogger("camadas.backend")

ENV_VAR = "CAMADAS_DEVICE"


class DeviceUnavailableError(RuntimeError):
    """A GPU was asked for explicitly and cannot be used; the message says why."""


@dataclass(frozen=True)
class Device:
    """A place where arrays live.

    Attributes
    ----------
    name : str
        ``"cpu"`` or ``"gpu"``.
    index : int
        CUDA device ordinal (0 on the CPU).
    """

    name: str
    index: int = 0

    @property
    def xp(self):
        """The array module of this device: ``numpy`` or ``cupy``."""
        if self.name == "cpu":
            return np
        return cupy_probe.cupy_module()

    def __str__(self) -> str:
        return "cpu" if self.name == "cpu" else f"gpu:{self.index}"


CPU = Device("cpu")

_current: contextvars.ContextVar[Device | None] = contextvars.ContextVar(
    "camadas_device", default=None
)
_default: Device | None = None
_fallback_logged = False


def _parse(name) -> tuple[str, int]:
    if isinstance(name, Device):
        return name.name, name.index
    if not isinstance(name, str):
        raise TypeError(
            f"device: expected a str 'cpu', 'gpu', 'gpu:N' or 'auto', got {type(name).__name__} {name!r}"
        )
    text = name.strip().lower()
    if text in ("cpu", "auto", "gpu", "cuda"):
        return ("gpu" if text == "cuda" else text), 0
    for prefix in ("gpu:", "cuda:"):
        if text.startswith(prefix) and text[len(prefix):].isdigit():
            return "gpu", int(text[len(prefix):])
    raise ValueError(
        f"device: expected 'cpu', 'gpu', 'gpu:N' or 'auto', got {name!r}"
    )


def resolve_device(name) -> Device:
    """Turn a device name into a :class:`Device` without making it current.

    Raises
    ------
    ValueError
        Unknown name.
    DeviceUnavailableError
        ``"gpu"`` requested and CuPy or a CUDA device is missing.
    """
    global _fallback_logged
    kind, index = _parse(name)
    if kind == "cpu":
        return CPU
    if kind == "auto":
        if cupy_probe.has_gpu():
            return Device("gpu", 0)
        if not _fallback_logged:
            logger.info("camadas: using the CPU (%s)", cupy_probe.unavailable_reason())
            _fallback_logged = True
        return CPU
    if not cupy_probe.has_gpu():
        raise DeviceUnavailableError(
            f"device {name!r} requested but unavailable: {cupy_probe.unavailable_reason()}"
        )
    count = cupy_probe.cupy_module().cuda.runtime.getDeviceCount()
    if index >= count:
        raise DeviceUnavailableError(
            f"device {name!r} requested but only {count} CUDA device(s) answer (gpu:0..gpu:{count - 1})"
        )
    return Device("gpu", index)


def _default_device() -> Device:
    global _default
    if _default is None:
        _default = resolve_device(os.environ.get(ENV_VAR, "auto") or "auto")
    return _default


def get_device() -> Device:
    """The current device (the context's, else the default from ``CAMADAS_DEVICE``)."""
    dev = _current.get()
    return dev if dev is not None else _default_device()


def set_device(name) -> Device:
    """Make ``name`` the current device in this context and return it.

    Parameters
    ----------
    name : str or Device
        ``"cpu"``, ``"gpu"``, ``"gpu:N"`` or ``"auto"``.
    """
    dev = resolve_device(name)
    _current.set(dev)
    if dev.name == "gpu":
        dev.xp.cuda.Device(dev.index).use()
    return dev


@contextlib.contextmanager
def use_device(name):
    """Context manager: run a block on ``name``, restoring the previous device on exit.

    Example
    -------
    >>> with use_device("cpu") as dev:
    ...     dev.name
    'cpu'
    """
    dev = resolve_device(name)
    token = _current.set(dev)
    try:
        if dev.name == "gpu":
            with dev.xp.cuda.Device(dev.index):
                yield dev
        else:
            yield dev
    finally:
        _current.reset(token)


def _reset_for_tests() -> None:
    global _default, _fallback_logged
    _default = None
    _fallback_logged = False
    _current.set(None)
