"""Inverted dropout (book section 25.5, "Dropout: Menos Neurônios Mais Aprendizado"; slides 002)."""

from __future__ import annotations

import backend
from backend.checks import check_input, check_rate, check_seed

from ..base import Layer, checks_skipped


class Dropout(Layer):
    """Inverted dropout: in training each unit is kept with probability ``1 - rate``.

    In every training step each unit is "temporarily discarded" with
    probability ``rate`` (the dropout rate of slides 002). The kept units are
    scaled by ``1 / (1 - rate)`` during training ("inverted" dropout), so the
    expected value of every output equals its input and evaluation needs no
    rescaling::

        training:   m_i ~ Bernoulli(1 - rate),   y_i = x_i m_i / (1 - rate)
        evaluation: y = x

    Backward uses the cached scaled mask::

        dE/dx_i = dE/dy_i m_i / (1 - rate)       (training)
        dE/dx   = dE/dy                           (evaluation, or rate == 0)

    Parameters
    ----------
    rate : float in [0, 1)
        Probability of dropping a unit. ``rate = 0`` makes the layer the identity.
    seed : int, optional
        Seed of the mask generator, for reproducible training. The generator is
        created on the input's device (NumPy or CuPy) at the first training
        forward pass; :meth:`reset_rng` restarts it.

    Shapes
    ------
    input (batch, ...) -> output of the same shape and dtype; no params.

    Notes
    -----
    The mask is drawn in the input's dtype (float32 stays float32), never as a
    bool/int array that would promote the output to float64.
    """

    def __init__(self, rate, seed=None):
        super().__init__()
        self.rate = check_rate(rate, "rate")
        self.seed = check_seed(seed, "Dropout")
        self._rng = None
        self._rng_xp = None
        self.mask = None
        self._identity = None  # None: no forward yet; True: last forward was the identity

    def reset_rng(self, seed=None):
        """Restart the mask generator from ``seed`` (default: the constructor's seed); returns self.

        Use it to make every forward pass see the same mask, e.g.
        ``check_gradients(layer, x, reset=lambda l: l.reset_rng(0))``.
        """
        if seed is not None:
            self.seed = check_seed(seed, "Dropout")
        self._rng = None
        self._rng_xp = None
        return self

    def _generator(self, xp):
        if self._rng is None or self._rng_xp is not xp:
            # A new generator whenever the input moves to another array module,
            # so the mask is always drawn on the input's device.
            self._rng = backend.generator_for(xp, self.seed)
            self._rng_xp = xp
        return self._rng

    def forward(self, input_data):
        x = input_data if checks_skipped() else check_input(input_data, layer="Dropout")
        if not self.training or self.rate == 0.0:
            self.mask = None
            self._identity = True
            return x
        xp = backend.get_array_module(x)
        uniform = self._generator(xp).random(x.shape, dtype=x.dtype)  # U[0, 1)
        keep = uniform >= self.rate                                      # P(keep) = 1 - rate
        scale = 1.0 / (1.0 - self.rate)
        self.mask = keep.astype(x.dtype) * x.dtype.type(scale)
        self._identity = False
        return x * self.mask

    def backward(self, grad_output):
        if self._identity is None:
            raise RuntimeError("Dropout.backward called before forward")
        if self._identity:
            return grad_output, None
        if not checks_skipped() and tuple(grad_output.shape) != tuple(self.mask.shape):
            raise ValueError(
                f"Dropout: grad_output: expected shape {tuple(self.mask.shape)} (the last forward's output), "
                f"got {tuple(grad_output.shape)}"
            )
        return grad_output * self.mask.astype(grad_output.dtype, copy=False), None

    def output_shape(self, input_shape):
        return tuple(input_shape)
