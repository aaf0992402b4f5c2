"""Seeded random generators on the current device."""

from __future__ import annotations

import numpy as np

from .device import get_device, resolve_device


def rng(seed=None, device=None):
    """A random generator on ``device`` (default: the current one).

    Returns ``numpy.random.Generator`` on the CPU and ``cupy.random.Generator``
    on the GPU; both offer ``standard_normal``, ``uniform``, ``random``,
    ``permutation`` with a ``dtype`` argument where it matters.
    """
    dev = get_device() if device is None else resolve_device(device)
    if dev.name == "cpu":
        return np.random.default_rng(seed)
    cp = dev.xp
    return cp.random.default_rng(seed)


def generator_for(xp, seed_or_rng=None):
    """A generator of the array module ``xp`` from a seed, an existing generator or None."""
    if seed_or_rng is not None and not isinstance(seed_or_rng, (int, np.integer)):
        return seed_or_rng
    if xp is np:
        return np.random.default_rng(seed_or_rng)
    return xp.random.default_rng(seed_or_rng)
