"""Pooling layers, NHWC (book section 22.3): MaxPooling2D, AveragePooling2D and the global poolings."""

from __future__ import annotations

from backend.checks import check_input, check_pair
from kernels import pool2d
from kernels.geometry import conv2d_output_size

from ..base import Layer


class _Pooling2D(Layer):
    """Shared arguments and checks of the windowed pooling layers."""

    _name = "Pooling2D"

    def __init__(self, pool_size=(2, 2), stride=None):
        super().__init__()
        self.pool_size = check_pair(pool_size, "pool_size")
        self.stride = self.pool_size if stride is None else check_pair(stride, "stride")
        self.input_shape = None

    def _check(self, input_data):
        check_input(input_data, ndim=4, layer=self._name)
        height, width = input_data.shape[1], input_data.shape[2]
        if height < self.pool_size[0] or width < self.pool_size[1]:
            raise ValueError(
                f"{self._name}: pool_size {self.pool_size} is larger than the input's (height, width) "
                f"{(height, width)} (input shape {tuple(input_data.shape)}, NHWC)"
            )

    def _check_grad(self, grad_output):
        if self.input_shape is None:
            raise RuntimeError(f"{self._name}.backward called before forward")
        expected = self.output_shape(self.input_shape)
        if tuple(grad_output.shape) != expected:
            raise ValueError(
                f"{self._name}: grad_output: expected shape {expected} (the forward output), "
                f"got {tuple(grad_output.shape)}"
            )

    def output_shape(self, input_shape):
        out_h, out_w = conv2d_output_size(input_shape[1:3], self.pool_size, self.stride, 0)
        return (input_shape[0], out_h, out_w, input_shape[3])


class MaxPooling2D(_Pooling2D):
    """Max pooling (book section 22.3.1).

    Parameters
    ----------
    pool_size : int or (int, int)
        Window ``(ph, pw)``, default ``(2, 2)``.
    stride : int or (int, int) or None
        Step of the window; ``None`` (default) means ``pool_size``. A stride
        smaller than the pool gives overlapping windows.

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, OH, OW, C)``,
    ``OH = (H - ph) // sh + 1``; rows and columns that fit no window are
    ignored (their gradient is 0). No params.

    Formulas::

        out[b, oh, ow, c] = max_{i < ph, j < pw} x[b, oh*sh + i, ow*sw + j, c]
        dx[b, h, w, c]    = Σ_{windows whose recorded maximum is (h, w)} g[b, oh, ow, c]

    Ties: the first maximum in row-major window order wins and alone receives
    the gradient (the book's mask ``window == max`` would give it to every
    tied element). NaN counts as the largest value, so it propagates.
    """

    _name = "MaxPooling2D"

    def __init__(self, pool_size=(2, 2), stride=None):
        super().__init__(pool_size, stride)
        self.argmax = None

    def forward(self, input_data):
        self._check(input_data)
        self.input_shape = tuple(input_data.shape)
        out, self.argmax = pool2d.max_pool2d_forward(input_data, self.pool_size, self.stride)
        return out

    def backward(self, grad_output):
        self._check_grad(grad_output)
        grad_input = pool2d.max_pool2d_backward(grad_output, self.argmax, self.input_shape,
                                                self.pool_size, self.stride)
        return grad_input, None


class AveragePooling2D(_Pooling2D):
    """Average pooling (book section 22.3.2).

    Parameters
    ----------
    pool_size : int or (int, int)
        Window ``(ph, pw)``, default ``(2, 2)``.
    stride : int or (int, int) or None
        Step of the window; ``None`` (default) means ``pool_size``.

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, OH, OW, C)``, ``OH = (H - ph) // sh + 1``. No params.

    Formulas::

        out[b, oh, ow, c] = 1/(ph pw) Σ_{i, j} x[b, oh*sh + i, ow*sw + j, c]
        dx[b, h, w, c]    = Σ_{windows containing (h, w)} g[b, oh, ow, c] / (ph pw)
    """

    _name = "AveragePooling2D"

    def forward(self, input_data):
        self._check(input_data)
        self.input_shape = tuple(input_data.shape)
        return pool2d.avg_pool2d_forward(input_data, self.pool_size, self.stride)

    def backward(self, grad_output):
        self._check_grad(grad_output)
        return pool2d.avg_pool2d_backward(grad_output, self.input_shape, self.pool_size, self.stride), None


class GlobalAveragePooling2D(Layer):
    """Global average pooling (book section 22.3.3): the mean of every channel over the image.

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, 1, 1, C)`` (the book keeps the
    spatial axes; follow it with :class:`Flatten` to get ``(B, C)``). No params.

    Formulas::

        out[b, 0, 0, c] = 1/(H W) Σ_{h, w} x[b, h, w, c]
        dx[b, h, w, c]  = g[b, 0, 0, c] / (H W)
    """

    def __init__(self):
        super().__init__()
        self.input_shape = None

    def forward(self, input_data):
        check_input(input_data, ndim=4, layer="GlobalAveragePooling2D")
        self.input_shape = tuple(input_data.shape)
        return pool2d.global_avg_pool2d_forward(input_data)

    def backward(self, grad_output):
        if self.input_shape is None:
            raise RuntimeError("GlobalAveragePooling2D.backward called before forward")
        expected = self.output_shape(self.input_shape)
        if tuple(grad_output.shape) != expected:
            raise ValueError(
                f"GlobalAveragePooling2D: grad_output: expected shape {expected} (the forward output), "
                f"got {tuple(grad_output.shape)}"
            )
        return pool2d.global_avg_pool2d_backward(grad_output, self.input_shape), None

    def output_shape(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[3])


class GlobalMaxPooling2D(Layer):
    """Global max pooling: the largest value of every channel over the image (section 22.3.1 over the whole map).

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, 1, 1, C)`` (the spatial axes kept, as
    :class:`GlobalAveragePooling2D`; follow with :class:`Flatten` for ``(B, C)``). No params.

    Formulas::

        out[b, 0, 0, c] = max_{h, w} x[b, h, w, c]
        dx[b, h, w, c]  = g[b, 0, 0, c] at the recorded maximum, 0 elsewhere

    A :class:`MaxPooling2D` whose window is the whole image (its kernels, its
    tie rule: the first maximum in row-major order takes the gradient; NaN wins).
    """

    def __init__(self):
        super().__init__()
        self.input_shape = None
        self.argmax = None

    def forward(self, input_data):
        check_input(input_data, ndim=4, layer="GlobalMaxPooling2D")
        self.input_shape = tuple(input_data.shape)
        out, self.argmax = pool2d.max_pool2d_forward(input_data, self.input_shape[1:3])
        return out

    def backward(self, grad_output):
        if self.input_shape is None:
            raise RuntimeError("GlobalMaxPooling2D.backward called before forward")
        expected = self.output_shape(self.input_shape)
        if tuple(grad_output.shape) != expected:
            raise ValueError(
                f"GlobalMaxPooling2D: grad_output: expected shape {expected} (the forward output), "
                f"got {tuple(grad_output.shape)}"
            )
        window = self.input_shape[1:3]
        return pool2d.max_pool2d_backward(grad_output, self.argmax, self.input_shape, window, window), None

    def output_shape(self, input_shape):
        return (input_shape[0], 1, 1, input_shape[3])
