"""Data augmentation layers (book section 25.6 "Data Augmentation"): random transforms active only in training.

Put them first in a model; ``fit`` runs them on every batch (training mode),
``evaluate``/``predict`` and ONNX export see the identity (evaluation mode,
no cost). Each draws its randomness on the batch's device from its own seeded
generator, vectorised over the batch (no loop over images), and its backward
passes the gradient through the same transform's adjoint.
"""

from .geometric import RandomFlip, RandomRotation, RandomTranslation
from .noise import GaussianNoise

__all__ = ["GaussianNoise", "RandomFlip", "RandomRotation", "RandomTranslation"]
