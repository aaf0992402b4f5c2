"""Flatten (book section 22.4, code block "Classe completa de Flatten")."""

from __future__ import annotations

from backend.checks import check_input

from ..base import Layer, checks_skipped


class Flatten(Layer):
    """Flatten every axis but the batch axis: the bridge from convolutions to Dense layers.

    Shapes
    ------
    input ``(B, d1, d2, ...)`` -> output ``(B, d1 * d2 * ...)`` in C order
    (for NHWC images: ``(B, H * W * C)``). No params.

    Formulas::

        y = x.reshape(B, -1),    dE/dx = (dE/dy).reshape(input_shape)

    Both are views when the arrays are contiguous (no copy).
    """

    def __init__(self):
        super().__init__()
        self.input_shape = None

    def forward(self, input_data):
        if checks_skipped():
            self.input_shape = input_data.shape
            return input_data.reshape(input_data.shape[0], -1)
        check_input(input_data, layer="Flatten")
        if input_data.ndim < 2:
            raise ValueError(
                f"Flatten: input_data: expected an array of at least 2 dimensions (batch, ...), "
                f"got shape {tuple(input_data.shape)} ({input_data.ndim}-D)"
            )
        self.input_shape = tuple(input_data.shape)
        return input_data.reshape(input_data.shape[0], -1)

    def backward(self, grad_output):
        if self.input_shape is None:
            raise RuntimeError("Flatten.backward called before forward")
        if checks_skipped():
            return grad_output.reshape(self.input_shape), None
        expected = self.output_shape(self.input_shape)
        if tuple(grad_output.shape) != expected:
            raise ValueError(
                f"Flatten: grad_output: expected shape {expected} (the forward output), "
                f"got {tuple(grad_output.shape)}"
            )
        return grad_output.reshape(self.input_shape), None

    def output_shape(self, input_shape):
        size = 1
        for d in input_shape[1:]:
            size *= int(d)
        return (input_shape[0], size)
