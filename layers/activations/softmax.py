"""Softmax (book section 11.1; slides 002 and 003)."""

from __future__ import annotations

import numbers

import backend
from backend.checks import check_input

from ..base import Layer, checks_skipped

__all__ = ["Softmax"]


class Softmax(Layer):
    """Softmax along one axis: the outputs are positive and sum to 1 (section 11.1).

    Forward, with the maximum subtracted so that no exponential overflows
    (the result is the same because softmax(x) = softmax(x - c))::

        y_i = e^(x_i - m) / sum_j e^(x_j - m),   m = max_j x_j

    Backward, from the cached output (the Jacobian diag(y) - y y^T applied to dE/dy)::

        dE/dx = y * (dE/dy - sum_j dE/dy_j y_j)

    For classification prefer raw logits with
    ``CategoricalCrossEntropy(from_logits=True)``, which fuses both steps.

    Parameters
    ----------
    axis : int
        The axis that sums to 1 (default -1, the classes of a (batch, classes) input).

    Shapes
    ------
    input (any shape with ``axis``) -> output of the same shape and dtype.
    """

    def __init__(self, axis=-1):
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"Softmax: axis: expected an int, got {type(axis).__name__} {axis!r}")
        self.axis = int(axis)
        self.output = None

    def forward(self, input_data):
        x = input_data
        if not checks_skipped():
            x = check_input(input_data, layer="Softmax")
            if not -x.ndim <= self.axis < x.ndim:
                raise ValueError(
                    f"Softmax: axis: expected an axis of a {x.ndim}-D input (-{x.ndim} to {x.ndim - 1}), "
                    f"got {self.axis} for shape {tuple(x.shape)}"
                )
        xp = backend.get_array_module(x)
        y = x - xp.max(x, axis=self.axis, keepdims=True)
        xp.exp(y, out=y)
        y /= xp.sum(y, axis=self.axis, keepdims=True)
        self.output = y
        return y

    def backward(self, grad_output):
        if self.output is None:
            raise RuntimeError("Softmax.backward called before forward")
        y = self.output
        if checks_skipped():
            g, xp = grad_output, backend.get_array_module(y)
        else:
            g = check_input(grad_output, name="grad_output", layer="Softmax")
            if tuple(g.shape) != tuple(y.shape):
                raise ValueError(
                    f"Softmax: grad_output: expected shape {tuple(y.shape)} (the last forward's output), "
                    f"got {tuple(g.shape)}"
                )
            xp = backend.get_array_module(g, y)
        g = g.astype(y.dtype, copy=False)
        return y * (g - xp.sum(g * y, axis=self.axis, keepdims=True)), None

    def output_shape(self, input_shape):
        return tuple(input_shape)
