"""Skip connections and branches in the book's protocol (chapter 23 "Redes Residuais", section 22.9).

Each block applies its children to the *same* input and combines their
outputs; its backward sends the output gradient back through every child and
sums the input gradients where the paths meet (the multivariate chain rule)::

    Residual:     y = F(x) + S(x)          dE/dx = F'ᵀ g + S'ᵀ g     (S = identity by default)
    Add:          y = Σ_i B_i(x)           dE/dx = Σ_i B_i'ᵀ g
    Concatenate:  y = [B_1(x), ..., B_n(x)] along ``axis``; g is split along it
    Multiply:     y = Π_i B_i(x)           dE/dB_i = g ⊙ Π_{j≠i} B_j(x) (summed over broadcast axes)

``params`` is every child's params in order, and so is ``param_grads``.
"""

from __future__ import annotations

import numpy as np

import backend

from ..base import Layer
from .base import Container, check_layer, check_layer_list, child_backward


class Identity(Layer):
    """y = x (the identity shortcut of a residual block, or a branch that passes its input through).

    Shapes: any -> the same. Backward: ``dE/dx = dE/dy``.
    """

    def forward(self, input_data):
        return input_data

    def backward(self, grad_output):
        return grad_output, None

    def output_shape(self, input_shape):
        return tuple(input_shape)


def _shape_error(block: str, shapes, fix: str) -> ValueError:
    listed = ", ".join(f"branch {i}: {tuple(s)}" for i, s in enumerate(shapes))
    return ValueError(f"{block}: the branches' outputs do not match ({listed}); {fix}")


class _Branches(Container):
    """Children applied to the same input; subclasses combine the outputs and split the gradient."""

    def __init__(self, branches, name):
        super().__init__()
        self.branches = check_layer_list(branches, name)
        self._outputs = None

    def sublayers(self) -> list:
        return list(self.branches)

    def _forward_all(self, input_data):
        return [branch.forward(input_data) for branch in self.branches]

    def _backward_all(self, grads_out):
        grad_input, param_grads = None, []
        for i, (branch, g) in enumerate(zip(self.branches, grads_out)):
            gx, pg = child_backward(branch, g, f"{type(self).__name__}.branches[{i}]")
            param_grads += pg
            grad_input = gx if grad_input is None else grad_input + gx
        self.grads = param_grads
        return grad_input, param_grads


class Add(_Branches):
    """Sum of branches applied to the same input: ``y = Σ_i B_i(x)`` (Inception-style merges, chapter 23).

    Parameters
    ----------
    branches : list of Layer
        Each maps the input to outputs of one common shape.

    Shapes: input as every branch takes it -> the branches' common output shape.
    Backward: every branch gets ``g``; ``dE/dx = Σ_i (dE/dx from branch i)``.
    """

    def __init__(self, branches):
        super().__init__(branches, "Add: branches")

    def forward(self, input_data):
        outputs = self._forward_all(input_data)
        shapes = [tuple(o.shape) for o in outputs]
        if len(set(shapes)) > 1:
            raise _shape_error("Add", shapes, "make every branch give the same shape (e.g. a 1x1 strided "
                                              "Convolution2D as a projection)")
        out = outputs[0].copy() if len(outputs) == 1 else outputs[0] + outputs[1]
        for o in outputs[2:]:
            out += o
        return out

    def backward(self, grad_output):
        return self._backward_all([grad_output] * len(self.branches))

    def output_shape(self, input_shape):
        return tuple(self.branches[0].output_shape(input_shape))


class Residual(_Branches):
    """A residual block (He et al., 2016; book chapter 23): ``y = F(x) + S(x)``.

    Parameters
    ----------
    block : Layer
        F, the residual branch (usually a Sequential of convolutions and normalizations).
    shortcut : Layer, optional
        S; the identity when None. When F changes the shape (a stride or a new
        number of channels) use a projection, e.g. ``Sequential([Convolution2D(C, F, 1,
        stride=2), BatchNormalization(F)])``.

    Shapes: input x -> output of F(x), which must equal the shape of S(x).
    Backward: ``dE/dx = (dE/dx through F) + (dE/dx through S)``; params are
    F's then S's.
    """

    def __init__(self, block, shortcut=None):
        branches = [check_layer(block, "Residual: block"),
                    Identity() if shortcut is None else check_layer(shortcut, "Residual: shortcut")]
        super().__init__(branches, "Residual")
        self.block, self.shortcut = branches

    def forward(self, input_data):
        out = self.block.forward(input_data)
        skip = self.shortcut.forward(input_data)
        if tuple(out.shape) != tuple(skip.shape):
            raise ValueError(
                f"Residual: the block's output {tuple(out.shape)} does not match the shortcut's "
                f"{tuple(skip.shape)}; give Residual a projection shortcut (e.g. a 1x1 Convolution2D with the "
                "block's stride and channels, followed by BatchNormalization)"
            )
        return out + skip

    def backward(self, grad_output):
        return self._backward_all([grad_output, grad_output])

    def output_shape(self, input_shape):
        return tuple(self.block.output_shape(input_shape))


class Concatenate(_Branches):
    """Branches applied to the same input, joined along ``axis`` (Inception modules, section 22.9).

    Parameters
    ----------
    branches : list of Layer
    axis : int
        The axis to join along (default -1: the channels of NHWC).

    Shapes: the branches' outputs agree on every axis but ``axis``; the output
    has the sum of their sizes there. Backward: ``g`` is split along ``axis``
    into each branch's part.
    """

    def __init__(self, branches, axis=-1):
        super().__init__(branches, "Concatenate: branches")
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Concatenate: axis: expected an int, got {type(axis).__name__} {axis!r}")
        self.axis = int(axis)
        self._sizes = None

    def forward(self, input_data):
        outputs = self._forward_all(input_data)
        ndim = outputs[0].ndim
        if not -ndim <= self.axis < ndim:
            raise ValueError(f"Concatenate: axis: expected an axis of the {ndim}-D outputs, got {self.axis}")
        axis = self.axis % ndim
        rest = [tuple(s for k, s in enumerate(o.shape) if k != axis) for o in outputs]
        if len(set(rest)) > 1 or any(o.ndim != ndim for o in outputs):
            raise _shape_error("Concatenate", [o.shape for o in outputs],
                               f"every axis but {self.axis} must agree")
        self._sizes = [o.shape[axis] for o in outputs]
        return backend.get_array_module(*outputs).concatenate(outputs, axis=axis)

    def backward(self, grad_output):
        if self._sizes is None:
            raise RuntimeError("Concatenate.backward called before forward")
        axis = self.axis % grad_output.ndim
        parts, start = [], 0
        for size in self._sizes:
            index = [slice(None)] * grad_output.ndim
            index[axis] = slice(start, start + size)
            parts.append(grad_output[tuple(index)])
            start += size
        return self._backward_all(parts)

    def output_shape(self, input_shape):
        shapes = [tuple(b.output_shape(input_shape)) for b in self.branches]
        axis = self.axis % len(shapes[0])
        out = list(shapes[0])
        out[axis] = sum(s[axis] for s in shapes)
        return tuple(out)


def _sum_to_shape(grad, shape):
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``."""
    extra = grad.ndim - len(shape)
    if extra:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(k for k, s in enumerate(shape) if s == 1 and grad.shape[k] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad


class Multiply(_Branches):
    """Element-wise product of branches applied to the same input (squeeze-and-excitation, section 22.9).

    ``y = Π_i B_i(x)`` with NumPy broadcasting, so a branch giving per-channel
    scales ``(B, 1, 1, C)`` rescales another giving ``(B, H, W, C)``.

    Parameters
    ----------
    branches : list of Layer

    Backward: ``dE/dB_i = g ⊙ Π_{j≠i} B_j(x)``, summed over the axes
    broadcasting stretched, then sent back through branch i.
    """

    def __init__(self, branches):
        super().__init__(branches, "Multiply: branches")

    def forward(self, input_data):
        outputs = self._forward_all(input_data)
        try:
            np.broadcast_shapes(*[tuple(o.shape) for o in outputs])
        except ValueError:
            raise _shape_error("Multiply", [o.shape for o in outputs], "the shapes must broadcast together "
                               "(e.g. (B, H, W, C) and (B, 1, 1, C))") from None
        out = outputs[0]
        for o in outputs[1:]:
            out = out * o
        self._outputs = outputs
        return out

    def backward(self, grad_output):
        if self._outputs is None:
            raise RuntimeError("Multiply.backward called before forward")
        grads = []
        for i, o in enumerate(self._outputs):
            g = grad_output
            for j, other in enumerate(self._outputs):
                if j != i:
                    g = g * other
            grads.append(_sum_to_shape(g, o.shape))
        return self._backward_all(grads)

    def output_shape(self, input_shape):
        return tuple(np.broadcast_shapes(*[tuple(b.output_shape(input_shape)) for b in self.branches]))

