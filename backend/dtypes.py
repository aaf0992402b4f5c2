"""The default floating dtype (float32, as in every mainstream framework), per context like the device.

The default lives in a :class:`contextvars.ContextVar`, the same rule as the
current device (:mod:`backend.device`): ``set_default_dtype`` changes it in
the calling thread or asyncio task only, ``use_dtype`` restores it on exit,
and a new thread starts from float32. It only decides the dtype of new
parameters and of converted inputs; ops follow their input arrays.

float16 is refused (:data:`SUPPORTED_DTYPES` is float32 and float64): in
float16, variances of inputs beyond ±256 overflow (65504 is its largest
value), ``exp`` overflows above 11 (so sigmoid(-12) is 0) and probabilities
round to 0 or 1, while the kernels compute in the input's dtype. Mixed
precision would need float32 statistics and a loss scale everywhere; until
then half precision is an error, never a silent wrong answer.
"""

from __future__ import annotations

import contextlib
import contextvars

import numpy as np

from .checks import SUPPORTED_DTYPES, check_dtype, check_float_array  # noqa: F401 (re-exported here)

#: The default of every new context.
DEFAULT_DTYPE = np.dtype(np.float32)

_current: contextvars.ContextVar[np.dtype] = contextvars.ContextVar("camadas_dtype", default=DEFAULT_DTYPE)


def get_default_dtype() -> np.dtype:
    """The dtype used for new parameters and for inputs converted by the layers, in this context."""
    return _current.get()


def set_default_dtype(dtype) -> np.dtype:
    """Set the default float dtype in this context (``np.float64`` for the book's exact figures and gradient checks).

    Parameters
    ----------
    dtype : float32 or float64
        float16 raises TypeError (see the module docstring).

    Returns
    -------
    np.dtype
        The previous default, so callers can restore it (or use :func:`use_dtype`).
    """
    new = check_dtype(dtype)
    previous = _current.get()
    _current.set(new)
    return previous


@contextlib.contextmanager
def use_dtype(dtype):
    """Context manager: ``dtype`` is the default inside the block, the previous one is restored on exit.

    Example
    -------
    >>> import numpy as np
    >>> with use_dtype(np.float64) as dtype:
    ...     dtype.name
    'float64'
    """
    new = check_dtype(dtype)
    token = _current.set(new)
    try:
        yield new
    finally:
        _current.reset(token)
