"""Layers made of layers: :class:`Sequential` (and, as the book's later chapters need them, residual and branching blocks)."""

from .sequential import Sequential

__all__ = ["Sequential"]
