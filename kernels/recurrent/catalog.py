"""Gate layouts, cell options and the cache that a forward pass leaves for its backward (book chapter 24).

One place that says, for every recurrent cell the kernels know, how its
parameters are laid out (PyTorch's gate order, so weights copy across with a
transpose) and what a forward pass keeps for backpropagation through time.
"""

from __future__ import annotations

import copy
import types
from dataclasses import dataclass, field

#: Gates per cell, in the order their blocks sit along the last axis of W, U and b (PyTorch's order).
GATES = {
    "rnn": ("h",),
    "lstm": ("i", "f", "g", "o"),
    "gru": ("r", "z", "n"),
}

#: Activations of the simple (Elman) cell that have a fused kernel (PyTorch's ``nonlinearity`` choices).
RNN_ACTIVATIONS = ("tanh", "relu")

#: Peephole weights of the LSTM, one row each, in this order: input gate, forget gate, output gate.
PEEPHOLES = ("i", "f", "o")


def time_steps(steps: int, reverse: bool):
    """The order in which a layer visits the time steps: ``0..T-1``, or ``T-1..0`` when ``reverse``."""
    return range(steps - 1, -1, -1) if reverse else range(steps)


@dataclass
class SequenceCache:
    """What a forward pass keeps for its backward (backpropagation through time).

    Attributes
    ----------
    cell : str
        ``"rnn"``, ``"lstm"`` or ``"gru"``.
    module : module
        The module whose ``<cell>_backward`` consumes this cache
        (:mod:`kernels.recurrent.sequence` or :mod:`kernels.recurrent.reference`).
    shape : (B, T, I, H)
    options : dict
        The cell's options (``activation``, ``reset_after``, ``reverse``, ``return_sequences``, ...).
    arrays : dict
        The saved tensors, named by the module that made them.
    """

    cell: str
    module: object
    shape: tuple
    options: dict = field(default_factory=dict)
    arrays: dict = field(default_factory=dict)

    def __deepcopy__(self, memo):
        """A copy of the arrays that shares the modules (a layer deep-copied after forward can still backward)."""
        def keep(value):
            return value if isinstance(value, types.ModuleType) else copy.deepcopy(value, memo)

        return SequenceCache(self.cell, self.module, self.shape, {k: keep(v) for k, v in self.options.items()},
                             copy.deepcopy(self.arrays, memo))
