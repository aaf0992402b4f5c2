"""The dead-ReLU diagnostic of :meth:`layers.Sequential.fit` with ``track_gradients=True`` (book section 8.3).

A ReLU unit is *dead* for an epoch when it output 0 for every sample of every
batch: its gradient is then 0 too and it stops learning. The fraction of dead
units per ReLU layer is logged as ``"dead_relu_fraction"``.
"""

from __future__ import annotations

import backend


def is_relu(layer) -> bool:
    """True for ``ReLU`` layers (the library's, the book's user class, or subclasses of either)."""
    return any(cls.__name__ == "ReLU" for cls in type(layer).__mro__)


class DeadReluMonitor:
    """Which units of each ReLU layer gave a non-zero output at least once this epoch (section 8.3).

    Parameters
    ----------
    relu_indices : iterable of int
        Indices (in the model's layer list) of the layers to watch.

    Notes
    -----
    ``observe(index, output)`` takes a layer's output of shape (batch, ..., units)
    (the last axis is the unit axis; 1-D outputs count as one unit);
    ``fractions()`` returns, per watched layer, 1 - (units that fired) / units
    (NaN for a layer never observed) and starts a new epoch.
    """

    def __init__(self, relu_indices):
        self.indices = list(relu_indices)
        self.alive = {}

    def observe(self, index, output) -> None:
        if index not in self.indices:
            return
        units = output.shape[-1] if output.ndim > 1 else 1
        fired = (output != 0).reshape(-1, units).any(axis=0)
        seen = self.alive.get(index)
        self.alive[index] = fired if seen is None else (seen | fired)

    def fractions(self) -> list:
        out = []
        for i in self.indices:
            alive = self.alive.get(i)
            if alive is None:
                out.append(float("nan"))
                continue
            xp = backend.get_array_module(alive)
            out.append(1.0 - int(xp.count_nonzero(alive)) / alive.size)
        self.alive = {}
        return out
