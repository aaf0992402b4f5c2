"""The default floating dtype (float32, as in every mainstream framework)."""

from __future__ import annotations

import numpy as np

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


def check_float_array(x, name: str = "input_data"):
    """Raise TypeError unless ``x`` is a floating-point array; return it unchanged.

    The message names the argument, the expected and the received dtype.
    """
    dtype = getattr(x, "dtype", None)
    if dtype is None:
        raise TypeError(f"{name}: expected a NumPy or CuPy float array, got {type(x).__name__}")
    if dtype.kind != "f":
        raise TypeError(
            f"{name}: expected a floating-point array (float32 or float64), got dtype {dtype}; "
            f"convert with x.astype(np.float32)"
        )
    return x
