"""What every augmentation layer shares: the seeded generator on the input's device and the training switch."""

from __future__ import annotations

import backend
from backend.checks import check_input, check_seed

from ..base import Layer


class RandomAugmentation(Layer):
    """Base of the augmentation layers: identity in evaluation mode, ``_transform`` in training mode.

    Subclasses implement ``_transform(x, xp, rng)`` (returns the output and
    keeps what the adjoint needs) and ``_adjoint(grad_output, xp)``. The
    generator is created on the input's device (NumPy or CuPy) at the first
    training forward; :meth:`reset_rng` restarts it.

    Parameters
    ----------
    seed : int, optional
        Seed of the layer's generator (reproducible augmentation).
    """

    #: Number of dimensions of the accepted inputs (None: any).
    ndim: int | None = 4

    def __init__(self, seed=None):
        super().__init__()
        self.seed = check_seed(seed, type(self).__name__)
        self._rng = None
        self._rng_xp = None
        self._identity = None  # None: no forward yet
        self._shape = None

    def reset_rng(self, seed=None):
        """Restart the generator from ``seed`` (default: the constructor's); returns self."""
        if seed is not None:
            self.seed = check_seed(seed, type(self).__name__)
        self._rng, self._rng_xp = None, None
        return self

    def _generator(self, xp):
        if self._rng is None or self._rng_xp is not xp:
            self._rng, self._rng_xp = backend.generator_for(xp, self.seed), xp
        return self._rng

    def forward(self, input_data):
        x = check_input(input_data, ndim=self.ndim, layer=type(self).__name__)
        self._shape = tuple(x.shape)
        self._identity = not self.training or self._is_identity()
        if self._identity:
            return x
        xp = backend.get_array_module(x)
        return self._transform(x, xp, self._generator(xp))

    def backward(self, grad_output):
        if self._identity is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        if tuple(grad_output.shape) != self._shape:
            raise ValueError(f"{type(self).__name__}: grad_output: expected shape {self._shape} (the forward "
                             f"output), got {tuple(grad_output.shape)}")
        if self._identity:
            return grad_output, None
        return self._adjoint(grad_output, backend.get_array_module(grad_output)), None

    def output_shape(self, input_shape):
        return tuple(input_shape)

    def _is_identity(self) -> bool:
        """True when the arguments make the transform the identity (e.g. a zero shift)."""
        return False

    def _transform(self, x, xp, rng):
        raise NotImplementedError

    def _adjoint(self, grad_output, xp):
        raise NotImplementedError
