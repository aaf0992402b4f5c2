"""The sigmoidal activations of chapter 7: Sigmoid, Tanh, Softsign, HardSigmoid, HardTanh.

The class names and (empty) constructors are the book's code blocks; the
arithmetic runs in the fused kernels of :mod:`kernels.activations` and equals
the book's NumPy expressions (:mod:`kernels.activations.reference`).
"""

from __future__ import annotations

from .elementwise import ElementwiseActivation

__all__ = ["Sigmoid", "Tanh", "Softsign", "HardSigmoid", "HardTanh"]


class Sigmoid(ElementwiseActivation):
    """Logistic sigmoid (section 7.4, eqs. 7.2-7.3).

    Forward::

        y = 1 / (1 + e^(-x))

    Backward, from the cached output (the book's reuse of the function's value)::

        dE/dx = dE/dy * y (1 - y)

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype, in (0, 1).

    Notes
    -----
    No overflow warning at x = -1000: the kernels' exp saturates to inf and
    1 / (1 + inf) = 0, which is the right limit.
    """

    kernel = "sigmoid"


class Tanh(ElementwiseActivation):
    """Hyperbolic tangent (section 7.5, eqs. 7.4-7.5).

    Forward::

        y = tanh(x) = (e^x - e^(-x)) / (e^x + e^(-x))

    Backward, from the cached output::

        dE/dx = dE/dy * (1 - y^2)          (sech^2 x = 1 - tanh^2 x)

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype, in (-1, 1).
    """

    kernel = "tanh"


class Softsign(ElementwiseActivation):
    """Softsign (section 7.6, eqs. 7.6-7.7), the sigmoidal without an exponential.

    Forward::

        y = x / (1 + |x|)

    Backward, from the cached input (the book's code names an undefined
    variable here; this is its eq. 7.7)::

        dE/dx = dE/dy / (1 + |x|)^2

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype, in (-1, 1).
    """

    kernel = "softsign"


class HardSigmoid(ElementwiseActivation):
    """Hard sigmoid (section 7.7, eqs. 7.8-7.9).

    Forward::

        y = clip(x / 6 + 1/2, 0, 1)

    Backward, from the cached input::

        dE/dx = dE/dy / 6   for -3 <= x <= 3,   0 elsewhere

    The derivative is 1/6 on the closed interval [-3, 3], where eq. 7.8 puts the
    linear piece and where the book's code keeps it (it zeroes only x < -3 and
    x > 3); eq. 7.9 writes strict bounds. The two differ only at x = +-3.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype, in [0, 1].
    """

    kernel = "hard_sigmoid"


class HardTanh(ElementwiseActivation):
    """Hard tanh (section 7.7, eqs. 7.10-7.11).

    Forward::

        y = clip(x, -1, 1)

    Backward, from the cached input::

        dE/dx = dE/dy   for -1 <= x <= 1,   0 elsewhere

    The closed interval matches the linear piece of eq. 7.10 and HardSigmoid;
    the book's code (and PyTorch) use the open interval: the two differ only at
    x = +-1 exactly.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype, in [-1, 1].
    """

    kernel = "hard_tanh"
