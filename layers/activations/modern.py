"""Modern smooth activations (chapter 9 and slides 001): GELU, SiLU (Swish), Softplus, Mish."""

from __future__ import annotations

from .elementwise import ElementwiseActivation

__all__ = ["GELU", "SiLU", "Swish", "Softplus", "Mish"]


class GELU(ElementwiseActivation):
    """Gaussian Error Linear Unit (Hendrycks & Gimpel 2016; slides 001).

    Forward (``approximate="none"``, the exact form)::

        y = x Phi(x) = x/2 erfc(-x / sqrt 2)

    ``approximate="tanh"``::

        y = x/2 (1 + tanh u) = x sigmoid(2u),   u = sqrt(2/pi) (x + 0.044715 x^3)

    (computed as x sigmoid(2u): the same function without the cancellation
    1 + tanh u -> 0 for very negative x).

    Backward, from the cached input::

        exact: dE/dx = dE/dy (Phi(x) + x phi(x)),   phi(x) = e^(-x^2/2) / sqrt(2 pi)
        tanh:  dE/dx = dE/dy (s + 2 x s (1 - s) sqrt(2/pi) (1 + 3 * 0.044715 x^2)),   s = sigmoid(2u)

    Parameters
    ----------
    approximate : {"none", "tanh"}
        The exact erf form (default) or the tanh approximation.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "gelu"

    def __init__(self, approximate="none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate: expected 'none' or 'tanh', got {approximate!r}")
        self.approximate = approximate

    def kernel_params(self, x):
        return {"approximate": self.approximate}


class SiLU(ElementwiseActivation):
    """Sigmoid Linear Unit, also called Swish (Elfwing et al. 2018, Ramachandran et al. 2017; slides 001).

    Forward::

        y = x sigmoid(x) = x / (1 + e^(-x))

    Backward, from the cached input::

        dE/dx = dE/dy s (1 + x (1 - s)),   s = sigmoid(x)

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "silu"


#: Swish with beta = 1 is SiLU.
Swish = SiLU


class Softplus(ElementwiseActivation):
    """Softplus, the smooth ReLU (Dugas et al. 2001; slides 001).

    Forward, without overflow for large |x|::

        y = log(1 + e^x) = max(x, 0) + log1p(e^(-|x|))

    Backward, from the cached input::

        dE/dx = dE/dy sigmoid(x)

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype, in (0, inf).
    """

    kernel = "softplus"


class Mish(ElementwiseActivation):
    """Mish (Misra 2019).

    Forward::

        y = x tanh(softplus(x))

    Backward, from the cached input::

        dE/dx = dE/dy (t + x sigmoid(x) (1 - t^2)),   t = tanh(softplus(x))

    The kernels compute t = n / (n + 2) with n = e^x (e^x + 2), one exponential.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "mish"
