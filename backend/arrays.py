"""Array dispatch: which module (NumPy or CuPy) an array belongs to, and moves between them."""

from __future__ import annotations

import numpy as np

from . import cupy_probe
from .device import CPU, Device, get_device, resolve_device


def is_cupy_array(x) -> bool:
    """True when ``x`` is a ``cupy.ndarray`` (False whenever CuPy is absent)."""
    # Cheap test first, so NumPy-only code never triggers the CuPy probe.
    if isinstance(x, np.ndarray) or not hasattr(x, "__cuda_array_interface__"):
        return False
    cp = cupy_probe.cupy_module()
    return cp is not None and isinstance(x, cp.ndarray)


def get_array_module(*arrays):
    """Return ``numpy`` or ``cupy`` according to the arrays given.

    Non-array arguments (``None``, Python scalars) are ignored. Works when
    CuPy is not installed.

    Raises
    ------
    TypeError
        NumPy and CuPy arrays are mixed in one call.
    """
    gpu = cpu = None
    for position, a in enumerate(arrays):
        if is_cupy_array(a):
            gpu = gpu if gpu is not None else position
        elif isinstance(a, np.ndarray):
            cpu = cpu if cpu is not None else position
    if gpu is not None and cpu is not None:
        raise TypeError(
            f"mixed devices: argument {cpu} is a numpy.ndarray (CPU) and argument {gpu} "
            "is a cupy.ndarray (GPU); move them to one device first with "
            "backend.to_device(x, 'cpu') / backend.to_device(x, 'gpu') or model.to(device)"
        )
    return cupy_probe.cupy_module() if gpu is not None else np


def device_of(x) -> Device:
    """The :class:`Device` an array lives on."""
    if is_cupy_array(x):
        return Device("gpu", int(x.device.id))
    return CPU


def to_device(x, device=None):
    """Move ``x`` to ``device`` (default: the current device); no copy when already there.

    Parameters
    ----------
    x : array_like
        NumPy or CuPy array, or anything ``numpy.asarray`` accepts.
    device : str or Device, optional
        ``"cpu"``, ``"gpu"``, ``"gpu:N"`` or ``"auto"``.
    """
    dev = get_device() if device is None else resolve_device(device)
    if dev.name == "cpu":
        return to_numpy(x)
    cp = cupy_probe.cupy_module()
    if is_cupy_array(x) and int(x.device.id) == dev.index:
        return x
    with cp.cuda.Device(dev.index):
        return cp.asarray(x)


def data_address(a) -> int:
    """The address of ``a``'s first element (NumPy or CuPy), to tell whether arrays share or tile memory."""
    if isinstance(a, np.ndarray):
        return a.__array_interface__["data"][0]
    return int(a.data.ptr)


def memory_owner(a):
    """The array that owns ``a``'s memory (``a`` itself when it owns it): the end of its chain of ``base``."""
    while getattr(a, "base", None) is not None and hasattr(a.base, "dtype"):
        a = a.base
    return a


def to_numpy(x):
    """Return ``x`` as a NumPy array (``.get()`` for CuPy; no copy for NumPy)."""
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)


def synchronize() -> None:
    """Wait for all queued GPU work to finish (no-op on the CPU or without CuPy).

    Call it before reading a timer around GPU work.
    """
    dev = get_device()
    if dev.name == "gpu":
        dev.xp.cuda.get_current_stream().synchronize()
        dev.xp.cuda.Device(dev.index).synchronize()
