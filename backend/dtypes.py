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


def check_float_array(x, name: str = "input_data", where: str = ""):
    """Raise TypeError unless ``x`` is a floating-point NumPy/CuPy array; return it unchanged.

    The one float-array check of the library (layers, losses and kernel
    dispatchers call it). The message names the argument (prefixed by
    ``where``, e.g. the layer, loss or op, when given), the expected and the
    received type or dtype, and how to convert.
    """
    prefix = f"{where}: {name}" if where else name
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        raise TypeError(
            f"{prefix}: expected a NumPy or CuPy array, got {type(x).__name__}; "
            f"pass a float array, e.g. np.asarray({name}, dtype=np.float32)"
        )
    if x.dtype.kind != "f":
        raise TypeError(
            f"{prefix}: expected a floating-point array (float32 or float64), got dtype {x.dtype}; "
            f"convert with {name}.astype(np.float32)"
        )
    return x
