"""The book's activation code blocks, pasted as user code (a test helper, not a test file).

Sigmoid (section 7.4.1), Tanh (7.5.1), Softsign (7.6.1), HardSigmoid and
HardTanh (7.7.1), ReLU (8.2.1) and LeakyReLU (8.4.1.1) are copied from
``000_8814347de1640870.txt`` as printed (only the PDF's line breaks are
joined, and ``from layers.base import Layer`` is added to the Sigmoid block,
which uses Layer without importing it). They subclass ``layers.base.Layer``
exactly as the book imports it; nothing in them knows about Sequential,
devices or dtypes. Some of them promote float32 gradients to float64
(``np.where(..., 1, 0)`` gives int64, ``np.where(..., 1, alpha)`` float64).

Softsign is kept with its printed bug: its backward names ``softsign_grad``,
which is never defined, and raises a NameError.

Used by ``test_book_code_blocks.py`` (each block against our layer) and
``test_book_code_in_sequential.py`` (each block trained inside a Sequential),
which import it as ``tests.layers.book_code_blocks`` (pytest's importlib
import mode gives ``tests/`` that package name).
"""

from __future__ import annotations

import numpy as np  # the blocks' own imports: `import numpy as np` and
from layers.base import Layer  # `from layers.base import Layer`

__all__ = ["Sigmoid", "Tanh", "Softsign", "HardSigmoid", "HardTanh", "ReLU", "LeakyReLU"]


# ----------------------------------------------------------------------------- the book's code, as printed
class Sigmoid(Layer):
    def __init__(self):
        super().__init__()
        self.input = None
        self.sigmoid = None

    def forward(self, input_data):
        self.input = input_data
        self.sigmoid_output = 1/ (1 + np.exp(-input_data))
        return self.sigmoid_output

    def backward(self, grad_output):
        sigmoid_grad = self.sigmoid_output * (1 - self.sigmoid_output)
        return grad_output * sigmoid_grad, None


class Tanh(Layer):
    def __init__(self):
        super().__init__()
        self.input = None
        self.tanh_output = None

    def forward(self, input_data):
        self.input = input_data
        self.tanh_output = np.tanh(self.input)
        return self.tanh_output

    def backward(self, grad_output):
        tanh_grad = 1 - self.tanh_output**2
        return grad_output * tanh_grad, None


class Softsign(Layer):
    def __init__(self):
        super().__init__()
        self.input = None

    def forward(self, input_data):
        self.input = input_data
        return self.input / (1 + np.abs(self.input))

    def backward(self, grad_output):
        grad = (1 / (1 + np.abs(self.input))**2)  # noqa: F841  (the book's typo: the next line misnames it)
        return grad_output * softsign_grad, None  # noqa: F821  (the book's typo)


class HardSigmoid(Layer):

    def __init__(self):
        super().__init__()
        self.input = None

    def forward(self, input_data):
        self.input = input_data

        output = self.input / 6 + 0.5
        output = np.clip(output, 0, 1) # A more concise way to handle the bounds

        return output

    def backward(self, grad_output):
        hard_sigmoid_grad = np.full_like(self.input, 1 / 6)

        hard_sigmoid_grad[self.input < -3] = 0
        hard_sigmoid_grad[self.input > 3] = 0

        return grad_output * hard_sigmoid_grad, None


class HardTanh(Layer):
    def __init__(self):
        super().__init__()
        self.input = None

    def forward(self, input_data):
        self.input = input_data
        return np.clip(self.input, -1, 1)

    def backward(self, grad_output):

        hard_tanh_grad = np.where((self.input > -1) & (self.input < 1), 1, 0)

        return grad_output * hard_tanh_grad, None


class ReLU(Layer):
    def __init__(self):
        super().__init__()
        self.input = None

    def forward(self, input_data):
        self.input = input_data
        return np.maximum(0, self.input)

    def backward(self, grad_output):
        relu_grad = (self.input > 0)

        # Apply the chain rule
        return grad_output * relu_grad, None


class LeakyReLU(Layer):
    def __init__(self, alpha=0.01):
        super().__init__()
        self.input = None
        self.alpha = alpha

    def forward(self, input_data):
        self.input = input_data
        return np.maximum(self.input * self.alpha, self.input)

    def backward(self, grad_output):
        leaky_relu_grad = np.where(self.input > 0, 1, self.alpha)
        return grad_output * leaky_relu_grad, None
# ----------------------------------------------------------------------------- end of the book's code
