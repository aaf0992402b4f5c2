"""The one-line dispatch of a kernel family on the array type (:mod:`kernels.conv2d`, :mod:`kernels.pool2d`).

A family package holds ``cpu`` (NumPy arrays) and ``gpu`` (CuPy arrays)
modules with the same ops, named ``<op>_cpu`` and ``<op>_gpu``;
:func:`implementation` picks the one for the input array (``gpu`` is imported
only when a CuPy array arrives). :func:`flat_names` keeps the names of the
flat CPU modules of camadas 0.1 readable on the package.
"""

from __future__ import annotations

import importlib

import backend


def implementation(package: str, op: str, x):
    """``<package>.cpu.<op>_cpu`` for a NumPy array ``x``, ``<package>.gpu.<op>_gpu`` for a CuPy array."""
    if backend.is_cupy_array(x):
        return getattr(importlib.import_module(f"{package}.gpu"), f"{op}_gpu")
    return getattr(importlib.import_module(f"{package}.cpu"), f"{op}_cpu")


def flat_names(package: str, cpu_module):
    """A PEP 562 ``__getattr__`` for ``package``: its ``gpu`` submodule, and every name of ``cpu_module``.

    ``kernels.conv2d.gemm_kf`` is ``kernels.conv2d.cpu.gemm_kf``, as when
    ``kernels/conv2d.py`` was one module. Reading works; a tunable must be set
    on the ``cpu`` module itself, where the kernels read it.
    """

    def __getattr__(name):
        if name == "gpu":
            return importlib.import_module(f"{package}.gpu")
        if not name.startswith("__") and hasattr(cpu_module, name):
            return getattr(cpu_module, name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__
