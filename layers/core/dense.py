"""Fully connected layer (book section 6.2, eqs. 6.2 and 6.5-6.11)."""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_bool, check_input, check_positive_int, check_seed
from kernels.threads import blas_threads_for

from ..base import Layer, checks_skipped, input_gradient_needed
from ..initializers import filled, make_param


class Dense(Layer):
    """Affine map ``y = x W + b`` (eq. 6.2: x_j = Σ_i y_i w_ji + b_j, in batch form).

    Parameters
    ----------
    input_size, output_size : int
        Number of input and output features.
    weight_init : str or callable
        See :mod:`layers.initializers`; default ``"xavier_uniform"``.
        ``"he_normal"`` suits rectifiers, ``"lecun_normal"`` SELU, ``"book"``
        reproduces the book's ``0.01 * randn``.
    use_bias : bool
        Add the bias ``b`` (default True). The slides' worked example has none.
    seed : int, optional
        Seed of the initializer's generator, for reproducible models.

    Shapes
    ------
    input (batch, input_size) -> output (batch, output_size); more leading axes are
    allowed, (batch, ..., input_size) -> (batch, ..., output_size) (every token of a
    sequence, as in a Transformer, section 26.4);
    ``params = [W (input_size, output_size), b (output_size,)]``.

    Backward (eqs. 6.5-6.7, 6.12)::

        dE/dx = dE/dy W^T,   dE/dW = x^T dE/dy,   dE/db = Σ_batch dE/dy

    with the leading axes flattened into one batch axis for ``dE/dW`` and ``dE/db``.
    Inside :func:`layers.base.checks_done` the argument checks are skipped
    (same results); inside :func:`layers.base.input_gradient_unused` for this
    layer, ``dE/dx`` is not computed (None).
    """

    def __init__(self, input_size, output_size, weight_init="xavier_uniform", use_bias=True, seed=None):
        super().__init__()
        self.input_size = check_positive_int(input_size, "input_size")
        self.output_size = check_positive_int(output_size, "output_size")
        seed = check_seed(seed, "Dense")
        self.W = make_param(weight_init, (self.input_size, self.output_size), self.input_size, self.output_size,
                            seed)
        self.params = [self.W]
        self.use_bias = check_bool(use_bias, "use_bias", "Dense")
        if self.use_bias:
            self.b = filled((self.output_size,), 0.0)
            self.params.append(self.b)
        self.input = None

    def forward(self, input_data):
        if not checks_skipped():
            check_input(input_data, layer="Dense")
            if input_data.ndim < 2 or input_data.shape[-1] != self.input_size:
                raise ValueError(
                    f"Dense: input_data: expected {self.input_size} features (shape (batch, {self.input_size}) or "
                    f"(batch, ..., {self.input_size})), got shape {tuple(input_data.shape)}"
                )
            backend.get_array_module(input_data, self.W)  # mixed-device TypeError
        self.input = input_data
        with blas_threads_for(self._macs(input_data)):  # one BLAS thread for a product too small to split
            if input_data.ndim == 2:
                out = input_data @ self.W
                if self.use_bias:
                    out += self.b
                return out
            # One matrix product over every leading position (a (B, T, F) input is B*T rows).
            out = input_data.reshape(-1, self.input_size) @ self.W
        if self.use_bias:
            out += self.b
        return out.reshape(*input_data.shape[:-1], self.output_size)

    def backward(self, grad_output):
        x = self.input
        if x is None:
            raise RuntimeError("Dense.backward called before forward")
        if not checks_skipped():
            expected = (*tuple(x.shape)[:-1], self.output_size)
            if tuple(getattr(grad_output, "shape", ())) != expected:
                raise ValueError(f"Dense: grad_output: expected shape {expected} (the last forward's output), "
                                 f"got {tuple(getattr(grad_output, 'shape', ()))}")
        needed = input_gradient_needed(self)   # not for the first layer in fit: nobody reads dE/dx of the data
        with blas_threads_for(self._macs(grad_output)):
            if x.ndim == 2:
                g = grad_output
                grad_input = g @ self.W.T if needed else None
            else:
                g = grad_output.reshape(-1, self.output_size)
                grad_input = (g @ self.W.T).reshape(x.shape) if needed else None
                x = x.reshape(-1, self.input_size)
            # One row: dE/dW is an outer product, one rounding per entry whatever computes it; numpy.dot's BLAS
            # call is 4x faster than matmul's loop for an inner dimension of 1 (the same values).
            grad_w = np.dot(x.T, g) if len(x) == 1 and isinstance(x, np.ndarray) else x.T @ g
        if self.use_bias:
            return grad_input, [grad_w, g.sum(axis=0)]
        return grad_input, [grad_w]

    def _macs(self, batch_array) -> int:
        """Multiply-adds of one product of this layer on a NumPy batch (0 for other arrays: no BLAS limit)."""
        if type(batch_array) is not np.ndarray:
            return 0
        return (batch_array.size // batch_array.shape[-1]) * self.input_size * self.output_size

    def output_shape(self, input_shape):
        return (*tuple(input_shape)[:-1], self.output_size)
