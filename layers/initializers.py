"""Weight initializers (book section 25.1; slides 003: Xavier/Glorot and He).

Each initializer is ``init(shape, fan_in, fan_out, rng, dtype) -> ndarray`` on
the generator's device. For a Dense layer ``fan_in = input_size`` and
``fan_out = output_size``; for a convolution ``fan_in = C_in * kh * kw`` and
``fan_out = C_out * kh * kw``.

====================  ==============================================
name                  distribution
====================  ==============================================
``"xavier_uniform"``  U(-a, a), a = sqrt(6 / (fan_in + fan_out))
``"xavier_normal"``   N(0, 2 / (fan_in + fan_out))
``"he_normal"``       N(0, 2 / fan_in)            (rectifiers)
``"he_uniform"``      U(-a, a), a = sqrt(6 / fan_in)
``"lecun_normal"``    N(0, 1 / fan_in)            (SELU, section 8.5)
``"lecun_uniform"``   U(-a, a), a = sqrt(3 / fan_in)
``"book"``            0.01 * N(0, 1)              (the book's code blocks)
``"normal"``          N(0, 1)                     (embeddings)
``"small_normal"``    N(0, 0.02²)                 (GPT-2 / ViT embeddings, section 26)
``"orthogonal"``      Q of the QR of a normal matrix (recurrent weights, Saxe et al. 2014)
``"zeros"``           0
====================  ==============================================

``"glorot_uniform"`` and ``"glorot_normal"`` are aliases of the Xavier ones.

Layers create their arrays through :func:`make_param` and :func:`filled`, so
that loading a checkpoint (:func:`deferred_allocation`) builds the model's
structure without allocating or drawing anything until the stored arrays'
shapes have been checked.
"""

from __future__ import annotations

import contextlib
import contextvars
import math

import numpy as np

import backend
from backend.checks import check_seed


def _normal(rng, shape, std, dtype):
    return (rng.standard_normal(shape) * std).astype(dtype, copy=False)


def _uniform(rng, shape, limit, dtype):
    return rng.uniform(-limit, limit, size=shape).astype(dtype, copy=False)


def xavier_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """Glorot & Bengio (2010): U(-a, a), a = sqrt(6 / (fan_in + fan_out))."""
    return _uniform(rng, shape, math.sqrt(6.0 / (fan_in + fan_out)), dtype)


def xavier_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """Glorot & Bengio (2010): N(0, σ²), σ = sqrt(2 / (fan_in + fan_out))."""
    return _normal(rng, shape, math.sqrt(2.0 / (fan_in + fan_out)), dtype)


def he_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """He et al. (2015): N(0, σ²), σ = sqrt(2 / fan_in)."""
    return _normal(rng, shape, math.sqrt(2.0 / fan_in), dtype)


def he_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """He et al. (2015): U(-a, a), a = sqrt(6 / fan_in)."""
    return _uniform(rng, shape, math.sqrt(6.0 / fan_in), dtype)


def lecun_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """LeCun (1998), used with SELU: N(0, σ²), σ = sqrt(1 / fan_in)."""
    return _normal(rng, shape, math.sqrt(1.0 / fan_in), dtype)


def lecun_uniform(shape, fan_in, fan_out, rng, dtype=np.float32):
    """LeCun: U(-a, a), a = sqrt(3 / fan_in)."""
    return _uniform(rng, shape, math.sqrt(3.0 / fan_in), dtype)


def book(shape, fan_in, fan_out, rng, dtype=np.float32):
    """The book's code blocks: ``np.random.randn(*shape) * 0.01``."""
    return _normal(rng, shape, 0.01, dtype)


def normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """The standard normal N(0, 1) (embeddings, as PyTorch initialises them)."""
    return _normal(rng, shape, 1.0, dtype)


def small_normal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """N(0, 0.02²): the token, position and class-token embeddings of GPT-2 and ViT (section 26.5)."""
    return _normal(rng, shape, 0.02, dtype)


def orthogonal(shape, fan_in, fan_out, rng, dtype=np.float32):
    """Saxe et al. (2014): a matrix with orthonormal rows or columns (recurrent weights, chapter 24).

    The array is viewed as ``(shape[0], prod(shape[1:]))``; a standard normal
    matrix of the taller orientation is factored as ``Q R`` and ``Q`` (with the
    signs of ``diag(R)`` folded in, so Q is uniformly distributed) is returned,
    transposed when the array is wide. An ``(H, 4H)`` recurrent kernel gets
    orthonormal rows: every gate's ``(H, H)`` block has singular values near 1,
    so repeated products neither explode nor vanish at initialization.
    """
    rows = int(shape[0]) if len(shape) else 1
    cols = int(np.prod(shape[1:])) if len(shape) > 1 else 1
    a = rng.standard_normal((max(rows, cols), min(rows, cols)))
    xp = np if isinstance(a, np.ndarray) else backend.get_array_module(a)
    q, r = xp.linalg.qr(a)
    q = q * xp.sign(xp.diagonal(r))
    if rows < cols:
        q = q.T
    return q.reshape(shape).astype(dtype, copy=False)


def zeros(shape, fan_in, fan_out, rng, dtype=np.float32):
    """All zeros (biases)."""
    return (rng.standard_normal(shape) * 0).astype(dtype, copy=False)


INITIALIZERS = {
    "xavier_uniform": xavier_uniform,
    "glorot_uniform": xavier_uniform,
    "xavier_normal": xavier_normal,
    "glorot_normal": xavier_normal,
    "he_normal": he_normal,
    "he_uniform": he_uniform,
    "lecun_normal": lecun_normal,
    "lecun_uniform": lecun_uniform,
    "book": book,
    "normal": normal,
    "small_normal": small_normal,
    "orthogonal": orthogonal,
    "zeros": zeros,
}


def get_initializer(name_or_fn):
    """Return the initializer function for a name in :data:`INITIALIZERS`, or a callable as is."""
    if callable(name_or_fn):
        return name_or_fn
    if isinstance(name_or_fn, str) and name_or_fn.lower() in INITIALIZERS:
        return INITIALIZERS[name_or_fn.lower()]
    raise ValueError(
        f"weight_init: expected one of {sorted(INITIALIZERS)} or a callable, got {name_or_fn!r}"
    )


def register_initializer(name: str, fn) -> None:
    """Add ``fn`` (``fn(shape, fan_in, fan_out, rng, dtype)``) under ``name``, so layers and checkpoints know it.

    A layer built with an unregistered callable as ``weight_init`` cannot be
    saved (checkpoints store initializers by name and load only registered ones).
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_initializer: name: expected a non-empty str, got {name!r}")
    if not callable(fn):
        raise TypeError(f"register_initializer: fn: expected a callable, got {type(fn).__name__}")
    existing = INITIALIZERS.get(name.lower())
    if existing is not None and existing is not fn:
        raise ValueError(f"register_initializer: name {name!r} is already taken by {existing.__name__}")
    INITIALIZERS[name.lower()] = fn


def initializer_name(fn) -> str | None:
    """The registered name of the initializer function ``fn`` (the first, for aliases), or None."""
    for name, registered in INITIALIZERS.items():
        if registered is fn:
            return name
    return None


# -- allocation that a checkpoint load can defer ------------------------------------------------------------
_DEFERRED = contextvars.ContextVar("camadas_deferred_allocation", default=False)


@contextlib.contextmanager
def deferred_allocation():
    """Inside the block, :func:`make_param` and :func:`filled` return zero-strided placeholders.

    A placeholder has the shape and dtype the layer asked for but allocates
    one element and draws no random numbers; checkpoint loading builds a
    model this way, checks the stored arrays against the placeholders' shapes,
    and only then puts the stored arrays in place.
    """
    token = _DEFERRED.set(True)
    try:
        yield
    finally:
        _DEFERRED.reset(token)


def _placeholder(shape, dtype):
    return np.broadcast_to(np.zeros((), dtype=dtype), tuple(int(s) for s in shape))


def make_param(init, shape, fan_in, fan_out, seed=None, dtype=None):
    """A parameter array drawn by ``init`` on the current device.

    Parameters
    ----------
    init : str or callable
        See :func:`get_initializer`.
    shape : tuple of int
    fan_in, fan_out : int
        As the initializer formulas use them (module docstring).
    seed : int, optional
        Seed of the generator (:func:`backend.rng`).
    dtype : dtype, optional
        Default: :func:`backend.get_default_dtype`.
    """
    dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
    init = get_initializer(init)
    seed = check_seed(seed)
    if _DEFERRED.get():
        return _placeholder(shape, dtype)
    return init(tuple(shape), fan_in, fan_out, backend.rng(seed), dtype)


def filled(shape, value=0.0, dtype=None):
    """An array of ``shape`` filled with ``value`` on the current device (biases, scales, running statistics)."""
    dtype = backend.get_default_dtype() if dtype is None else np.dtype(dtype)
    if _DEFERRED.get():
        return _placeholder(shape, dtype)
    return backend.get_device().xp.full(tuple(shape), value, dtype=dtype)
