"""Argument checks shared by the layers: every message names the argument,
what was expected and what was received."""

from __future__ import annotations

import numbers

import backend


def check_input(x, ndim=None, name: str = "input_data", layer: str = ""):
    """Check that ``x`` is a float NumPy/CuPy array with ``ndim`` dimensions; return it.

    ``ndim`` may be an int or a tuple of allowed ints. The float check is
    :func:`backend.check_float_array` (messages prefixed ``"<layer>: <name>:"``).
    """
    backend.check_float_array(x, name, where=layer)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            expected = " or ".join(str(a) for a in allowed)
            where = f"{layer}: " if layer else ""
            raise ValueError(
                f"{where}{name}: expected a {expected}-D array, got shape {tuple(x.shape)} ({x.ndim}-D)"
            )
    return x


def check_positive_int(value, name: str, minimum: int = 1) -> int:
    """Return ``value`` as int after checking it is an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name}: expected an integer >= {minimum}, got {type(value).__name__} {value!r}")
    if value < minimum:
        raise ValueError(f"{name}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_pair(value, name: str, minimum: int = 1) -> tuple[int, int]:
    """Accept ``n`` or ``(h, w)``; return ``(h, w)`` checked to be integers >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{name}: expected an int or a pair (h, w), got {value!r}")
        return (check_positive_int(value[0], f"{name}[0]", minimum),
                check_positive_int(value[1], f"{name}[1]", minimum))
    v = check_positive_int(value, name, minimum)
    return v, v


def check_rate(value, name: str, low: float = 0.0, high: float = 1.0, *, include_high=False) -> float:
    """Return ``value`` as float after checking ``low <= value < high`` (``<=`` with include_high)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__} {value!r}")
    ok = low <= value <= high if include_high else low <= value < high
    if not ok:
        bracket = "]" if include_high else ")"
        raise ValueError(f"{name}: expected a value in [{low}, {high}{bracket}, got {value}")
    return float(value)


def same_module(*arrays):
    """``backend.get_array_module`` with its mixed-device TypeError."""
    return backend.get_array_module(*arrays)
