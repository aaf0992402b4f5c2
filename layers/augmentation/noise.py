"""Additive Gaussian noise (book section 25.6): a regulariser that perturbs inputs or activations in training."""

from __future__ import annotations

from backend.checks import check_nonnegative

from .base import RandomAugmentation


class GaussianNoise(RandomAugmentation):
    """Adds zero-mean Gaussian noise in training: ``y = x + σ ε``, ``ε ~ N(0, 1)`` per element.

    Parameters
    ----------
    stddev : float >= 0
        σ (0 makes the layer the identity).
    seed : int, optional

    Shapes
    ------
    any -> the same (the noise is drawn in the input's dtype and device). No params.
    Backward: ``dE/dx = dE/dy``; evaluation: ``y = x``.
    """

    ndim = None  # any shape

    def __init__(self, stddev, seed=None):
        super().__init__(seed)
        self.stddev = check_nonnegative(stddev, "stddev", "GaussianNoise")

    def _is_identity(self):
        return self.stddev == 0.0

    def _transform(self, x, xp, rng):
        noise = rng.standard_normal(x.shape, dtype=x.dtype)
        noise *= x.dtype.type(self.stddev)
        return x + noise

    def _adjoint(self, grad_output, xp):
        return grad_output
