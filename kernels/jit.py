"""Numba settings shared by every CPU kernel.

* ``njit``: ``numba.njit(cache=True, ...)``, so a second process loads the
  compiled machine code instead of recompiling.
* Cache location: Numba writes its cache beside the source (``__pycache__``).
  When that directory is not writable (a system-wide install) and the user has
  not chosen one with ``NUMBA_CACHE_DIR``, the cache goes to a per-user
  directory (``$XDG_CACHE_HOME/camadas/numba`` or ``~/.cache/camadas/numba``)
  instead of failing. This sets ``numba.config.CACHE_DIR``; ``os.environ`` is
  never written.
* Threads: ``parallel_threads()`` is the number of threads a kernel call is
  split over (:func:`backend.host.kernel_threads`: Numba's count, capped by
  ``limit_threads``), read on every call without ``numba.get_num_threads()``,
  which would launch Numba's threading layer (no kernel here uses it).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numba

from backend.host import kernel_threads

_PACKAGE_DIR = Path(__file__).resolve().parent


def user_cache_dir() -> Path:
    """The per-user Numba cache directory camadas falls back to."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "camadas" / "numba"


def _configure_cache_dir() -> None:
    if os.environ.get("NUMBA_CACHE_DIR") or numba.config.CACHE_DIR:
        return  # the user decided
    probe_dir = _PACKAGE_DIR / "__pycache__"
    try:
        probe_dir.mkdir(exist_ok=True)
        writable = os.access(probe_dir, os.W_OK)
    except OSError:
        writable = False
    if not writable:
        target = user_cache_dir()
        target.mkdir(parents=True, exist_ok=True)
        numba.config.CACHE_DIR = str(target)


_configure_cache_dir()

#: ``@njit`` for camadas kernels: nopython mode, cached on disk.
njit = functools.partial(numba.njit, cache=True)


#: Threads a kernel call is split over (:func:`backend.host.kernel_threads`).
parallel_threads = kernel_threads
