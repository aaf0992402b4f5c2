"""The one place where CuPy is imported, lazily and defensively.

``has_cupy()`` answers "does ``import cupy`` work?"; ``has_gpu()`` answers
"does a CUDA device answer?". They are separate facts: CuPy can be installed
on a machine without a driver. Probing happens on first use, never at import
of :mod:`backend`, and every failure is caught and remembered as a reason
string that error messages and the fallback log can show.
"""

from __future__ import annotations

import threading

_lock = threading.Lock()
_probed = False
_cupy = None
_cupy_reason: str | None = None
_gpu_probed = False
_gpu_ok = False
_gpu_reason: str | None = None

INSTALL_HINT = (
    "install the GPU extra matching your CUDA driver: "
    "pip install 'camadas[cuda12]' (CUDA 12.x) or 'camadas[cuda13]' (CUDA 13.x)"
)


def _probe_import() -> None:
    global _probed, _cupy, _cupy_reason
    with _lock:
        if _probed:
            return
        try:
            import cupy  # noqa: PLC0415 - the single optional import point

            _cupy = cupy
        except Exception as exc:  # ImportError, or a broken CUDA install
            _cupy = None
            _cupy_reason = f"CuPy is not importable ({type(exc).__name__}: {exc}); {INSTALL_HINT}"
        _probed = True


def cupy_module():
    """Return the ``cupy`` module, or ``None`` when it does not import."""
    _probe_import()
    return _cupy


def has_cupy() -> bool:
    """True when ``import cupy`` succeeds (says nothing about a device)."""
    return cupy_module() is not None


def has_gpu() -> bool:
    """True when CuPy imports *and* at least one CUDA device answers."""
    global _gpu_probed, _gpu_ok, _gpu_reason
    cp = cupy_module()
    if cp is None:
        return False
    with _lock:
        if not _gpu_probed:
            try:
                count = cp.cuda.runtime.getDeviceCount()
                if count < 1:
                    raise RuntimeError("cudaGetDeviceCount returned 0 devices")
                # Touch the device: a driver mismatch only shows up here.
                cp.cuda.Device(0).compute_capability  # noqa: B018 (the access is the probe)
                _gpu_ok = True
            except Exception as exc:  # CUDARuntimeError and anything else
                _gpu_ok = False
                _gpu_reason = (
                    f"CuPy is installed but no CUDA device answered "
                    f"({type(exc).__name__}: {exc})"
                )
            _gpu_probed = True
    return _gpu_ok


def unavailable_reason() -> str | None:
    """Why the GPU cannot be used, or ``None`` when it can."""
    if not has_cupy():
        return _cupy_reason
    if not has_gpu():
        return _gpu_reason
    return None


def _reset_for_tests() -> None:
    """Forget every probe result (tests simulate CuPy being absent)."""
    global _probed, _cupy, _cupy_reason, _gpu_probed, _gpu_ok, _gpu_reason
    with _lock:
        _probed = False
        _cupy = None
        _cupy_reason = None
        _gpu_probed = False
        _gpu_ok = False
        _gpu_reason = None
