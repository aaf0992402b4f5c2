"""The default floating dtype (float32, as in every mainstream framework)."""

from __future__ import annotations

import numpy as np

from .checks import check_float_array  # noqa: F401 (re-exported: backend.dtypes.check_float_array)

_ALLOWED = (np.dtype(np.float16), np.dtype(np.float32), np.dtype(np.float64))
_default = np.dtype(np.float32)


def get_default_dtype() -> np.dtype:
    """The dtype used for new parameters and for inputs converted by the layers."""
    return _default


def set_default_dtype(dtype) -> np.dtype:
    """Set the default float dtype (``np.float64`` for the book's exact figures and gradient checks).

    Returns the previous default, so callers can restore it.
    """
    global _default
    new = np.dtype(dtype)
    if new not in _ALLOWED:
        raise TypeError(
            f"dtype: expected one of float16, float32, float64, got {new}"
        )
    previous, _default = _default, new
    return previous
