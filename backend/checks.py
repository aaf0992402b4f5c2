"""Argument checks shared by every package of camadas (layers, losses, optimizers, kernels, bench).

One module, below layers and optimizers, so that every message has the same
shape: the argument's name (prefixed by where it was given, e.g. the layer),
what was expected and what was received, and the fix when there is one::

    Dense: input_data: expected a 2-D array, got shape (4,) (1-D)
    learning_rate: expected a finite number > 0, got inf

Each ``check_*`` returns the checked value, converted (``int``, ``float``,
pair of ints), so callers write ``self.rate = check_rate(rate, "rate")``.
``where`` (optional everywhere) prefixes the message with ``"<where>: "``.
Whole data sets are scanned in :func:`chunks` (:func:`first_violation`), so a
check never holds a temporary the size of the data.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def _prefix(name: str, where: str = "") -> str:
    return f"{where}: {name}" if where else name


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}"


# -- arrays -------------------------------------------------------------------------------------------------
#: The float dtypes camadas computes in (parameters, layer inputs, checkpoints); float16 is refused.
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_FLOAT16_REASON = (" (float16 is not supported: its range and precision make normalization statistics, "
                   "exponentials and cross-entropies wrong; compute in float32)")


def _unsupported(dtype) -> str:
    return _FLOAT16_REASON if dtype == np.float16 else ""


def check_dtype(dtype, name: str = "dtype", where: str = "") -> np.dtype:
    """Return ``np.dtype(dtype)`` after checking it is float32 or float64 (float16 refused, with the reason).

    Raises
    ------
    TypeError
        Not a dtype, or a dtype other than float32/float64.
    """
    prefix = _prefix(name, where)
    try:
        new = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{prefix}: expected float32 or float64, got {_describe(dtype)}") from exc
    if new not in SUPPORTED_DTYPES:
        raise TypeError(f"{prefix}: expected float32 or float64, got {new}{_unsupported(new)}")
    return new


def check_float_array(x, name: str = "input_data", where: str = ""):
    """Raise TypeError unless ``x`` is a floating-point NumPy/CuPy array; return it unchanged.

    The one float-array check of the library (layers, losses and kernel
    dispatchers call it). The message names the argument, the expected and
    the received type or dtype, and how to convert.
    """
    prefix = _prefix(name, where)
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


def check_input(x, ndim=None, name: str = "input_data", layer: str = ""):
    """Check that ``x`` is a float32/float64 NumPy/CuPy array with ``ndim`` dimensions; return it.

    ``ndim`` may be an int or a tuple of allowed ints; messages are prefixed
    ``"<layer>: <name>:"``. float16 (and other float widths) are refused with
    a TypeError saying why and how to convert (:data:`SUPPORTED_DTYPES`).
    """
    check_float_array(x, name, where=layer)
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{_prefix(name, layer)}: expected a float32 or float64 array, got dtype {x.dtype}"
                        f"{_unsupported(x.dtype)}; convert with {name}.astype(np.float32)")
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if x.ndim not in allowed:
            expected = " or ".join(str(a) for a in allowed)
            raise ValueError(
                f"{_prefix(name, layer)}: expected a {expected}-D array, got shape {tuple(x.shape)} ({x.ndim}-D)"
            )
    return x


#: Elements per chunk of a whole-array scan (:func:`chunks`): temporaries of 1 MiB of bools at most.
CHUNK_ELEMENTS = 1 << 20


def chunks(a, elements: int = CHUNK_ELEMENTS):
    """Yield ``(start, a[start:stop])`` along axis 0, each chunk about ``elements`` elements (one sample at least).

    Scans of a whole data set (finiteness, target values) go chunk by chunk so
    their temporaries stay small whatever the data's size (memory-mapped
    arrays are read one chunk at a time).
    """
    if a.ndim == 0:
        yield 0, a.reshape(1)
        return
    per_sample = 1
    for d in a.shape[1:]:
        per_sample *= int(d)
    rows = max(1, elements // max(1, per_sample))
    for start in range(0, len(a), rows):
        yield start, a[start:start + rows]


def first_violation(a, is_bad):
    """Position and value of the first entry of ``a`` where ``is_bad`` holds, scanning in :func:`chunks`.

    Parameters
    ----------
    a : NumPy or CuPy array, shape (samples, ...)
    is_bad : callable ``(chunk, xp) -> bool array``
        Of the chunk's shape (a test per element) or of its leading axes
        (``chunk.shape[:k]``, a test per sample or per row).

    Returns
    -------
    (tuple of int, value) or None
        The index of the first offending entry (row-major order, in ``a``'s
        coordinates) and ``a[index]`` as a Python scalar or list; None when
        every entry passes.
    """
    from .arrays import get_array_module

    xp = get_array_module(a)
    for start, chunk in chunks(a):
        bad = is_bad(chunk, xp)
        if bool(bad.any()):
            local = np.unravel_index(int(xp.argmax(bad.reshape(-1))), bad.shape)
            value = chunk[local].tolist()
            index = (int(local[0]) + start,) + tuple(int(i) for i in local[1:]) if a.ndim else ()
            return index, value
    return None


def format_index(name: str, index) -> str:
    """``"y[500]"`` or ``"y[3, 1]"`` (``name`` alone for a 0-D array)."""
    return f"{name}[{', '.join(str(i) for i in index)}]" if index else name


# -- integers -----------------------------------------------------------------------------------------------
def check_positive_int(value, name: str, minimum: int = 1, where: str = "") -> int:
    """Return ``value`` as int after checking it is an integer >= ``minimum`` (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{_prefix(name, where)}: expected an integer >= {minimum}, got {_describe(value)}")
    if value < minimum:
        raise ValueError(f"{_prefix(name, where)}: expected an integer >= {minimum}, got {value}")
    return int(value)


def check_pair(value, name: str, minimum: int = 1, where: str = "") -> tuple[int, int]:
    """Accept ``n`` or ``(h, w)``; return ``(h, w)`` checked to be integers >= ``minimum``."""
    if isinstance(value, (tuple, list)):
        if len(value) != 2:
            raise ValueError(f"{_prefix(name, where)}: expected an int or a pair (h, w), got {value!r}")
        return (check_positive_int(value[0], f"{name}[0]", minimum, where),
                check_positive_int(value[1], f"{name}[1]", minimum, where))
    v = check_positive_int(value, name, minimum, where)
    return v, v


def check_seed(seed, where: str = "", name: str = "seed"):
    """``None`` or an int >= 0 (NumPy's generators refuse negative seeds); returns it."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{_prefix(name, where)}: expected an int or None, got {_describe(seed)}")
    if seed < 0:
        raise ValueError(f"{_prefix(name, where)}: expected an int >= 0 or None, got {seed}")
    return int(seed)


# -- real numbers -------------------------------------------------------------------------------------------
def check_real(value, name: str, where: str = "", minimum=None) -> float:
    """Return ``value`` as a finite float (``>= minimum`` when given); bools and NaN/inf refused."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, where)}: expected a real number, got {_describe(value)}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{_prefix(name, where)}: expected a finite number, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_prefix(name, where)}: expected a number >= {minimum}, got {value}")
    return value


def check_positive(value, name: str, where: str = "") -> float:
    """Return ``value`` as float after checking it is a finite real number > 0 (learning rates, ε)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, where)}: expected a number > 0, got {_describe(value)}")
    if not value > 0:
        raise ValueError(f"{_prefix(name, where)}: expected a number > 0, got {value}")
    if not math.isfinite(value):
        raise ValueError(f"{_prefix(name, where)}: expected a finite number > 0, got {value}")
    return float(value)


def check_nonnegative(value, name: str, where: str = "") -> float:
    """Return ``value`` as float after checking it is a finite real number >= 0 (penalties, min_delta)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, where)}: expected a number >= 0, got {_describe(value)}")
    if not value >= 0:
        raise ValueError(f"{_prefix(name, where)}: expected a number >= 0, got {value}")
    if not math.isfinite(value):
        raise ValueError(f"{_prefix(name, where)}: expected a finite number >= 0, got {value}")
    return float(value)


def check_positive_or_none(value, name: str, where: str = ""):
    """Return ``None`` or ``value`` as float after checking it is a finite real number > 0 (clipnorm)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, where)}: expected a number > 0 or None, got {_describe(value)}")
    if not value > 0:
        raise ValueError(f"{_prefix(name, where)}: expected a number > 0 or None, got {value}")
    if not math.isfinite(value):
        raise ValueError(f"{_prefix(name, where)}: expected a finite number > 0 or None, got {value}")
    return float(value)


def check_rate(value, name: str, low: float = 0.0, high: float = 1.0, *, include_high=False, where: str = "") -> float:
    """Return ``value`` as float after checking ``low <= value < high`` (``<=`` with ``include_high``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, where)}: expected a number, got {_describe(value)}")
    ok = low <= value <= high if include_high else low <= value < high
    if not ok:  # also false for NaN
        bracket = "]" if include_high else ")"
        raise ValueError(f"{_prefix(name, where)}: expected a value in [{low}, {high}{bracket}, got {value}")
    return float(value)


def check_decay(value, name: str, where: str = "") -> float:
    """Return ``value`` as float after checking ``0 <= value < 1`` (momentum, ρ, β1, β2)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{_prefix(name, where)}: expected a number in [0, 1), got {_describe(value)}")
    if not 0 <= value < 1:
        raise ValueError(f"{_prefix(name, where)}: expected a number in [0, 1), got {value}")
    return float(value)


# -- other kinds --------------------------------------------------------------------------------------------
def check_bool(value, name: str, where: str = "") -> bool:
    """Return ``value`` after checking it is a real bool (``"no"`` or ``1`` are refused, not read as True)."""
    if isinstance(value, np.bool_):  # NumPy bools are accepted too
        return bool(value)
    if not isinstance(value, bool):
        raise TypeError(f"{_prefix(name, where)}: expected True or False, got {_describe(value)}")
    return value


def check_choice(value, name: str, choices, where: str = ""):
    """Return ``value`` after checking it is one of ``choices``."""
    if value not in tuple(choices):
        expected = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{_prefix(name, where)}: expected one of {expected}, got {value!r}")
    return value


def same_module(*arrays):
    """:func:`backend.get_array_module` with its mixed-device TypeError (the name camadas 0.1 gave it)."""
    from .arrays import get_array_module

    return get_array_module(*arrays)
