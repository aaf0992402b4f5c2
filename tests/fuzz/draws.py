"""Where the fuzz generators take their random choices from: Hypothesis in the test suite, a seeded NumPy
generator in ``tests/fuzz_report.py``.

A generator is a function of a *draw* object with three methods::

    d.integer(low, high)   # an int in [low, high]
    d.choice(options)      # one element of a sequence
    d.seed()               # an int seed for the NumPy generator of the array values

so the same generators run under Hypothesis (which shrinks a failure to a
small case) and in a plain counted loop (which counts every mismatch).
"""

from __future__ import annotations

import numpy as np


class HypothesisDraw:
    """Choices drawn from a Hypothesis ``st.data()`` object."""

    def __init__(self, data):
        from hypothesis import strategies as st

        self._data, self._st = data, st

    def integer(self, low: int, high: int) -> int:
        return self._data.draw(self._st.integers(low, high))

    def choice(self, options):
        return self._data.draw(self._st.sampled_from(list(options)))

    def seed(self) -> int:
        return self._data.draw(self._st.integers(0, 2**32 - 1))


class RandomDraw:
    """Choices drawn from a seeded NumPy generator (``tests/fuzz_report.py``)."""

    def __init__(self, seed: int):
        self._rng = np.random.default_rng(seed)

    def integer(self, low: int, high: int) -> int:
        return int(self._rng.integers(low, high + 1))

    def choice(self, options):
        options = list(options)
        return options[int(self._rng.integers(len(options)))]

    def seed(self) -> int:
        return int(self._rng.integers(2**32))


def values(d, shape, dtype, scales=(0.01, 1.0, 5.0, 30.0), low=None, high=None):
    """An array of ``shape`` and ``dtype``: normal values times a drawn scale, or uniform in [low, high)."""
    rng = np.random.default_rng(d.seed())
    if low is not None:
        return rng.uniform(low, high, shape).astype(dtype)
    return (rng.standard_normal(shape) * d.choice(scales)).astype(dtype)


def arrange(d, a):
    """``a``'s values in a drawn memory layout: C order, Fortran order, a strided view or a reversed view."""
    layout = d.choice(("c", "fortran", "strided", "reversed"))
    if layout == "fortran" or a.ndim == 0:
        return np.asfortranarray(a)
    if layout == "strided":
        axis = d.integer(0, a.ndim - 1)
        shape = list(a.shape)
        shape[axis] *= 2
        big = np.zeros(shape, a.dtype)
        index = [slice(None)] * a.ndim
        index[axis] = slice(None, None, 2)
        big[tuple(index)] = a
        return big[tuple(index)]
    if layout == "reversed":
        return a[::-1].copy()[::-1]
    return np.ascontiguousarray(a)
