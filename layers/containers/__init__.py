"""Layers made of layers (book chapters 6, 22.9 and 23).

:class:`Sequential` chains its layers; :class:`Residual`, :class:`Add`,
:class:`Concatenate` and :class:`Multiply` apply branches to the same input and
combine them (skip connections, Inception, squeeze-and-excitation);
:class:`Identity` passes its input through. All nest inside each other.
"""

from .base import Container
from .branches import Add, Concatenate, Identity, Multiply, Residual
from .sequential import Sequential

__all__ = ["Add", "Concatenate", "Container", "Identity", "Multiply", "Residual", "Sequential"]
