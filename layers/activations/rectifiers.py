"""The rectifiers of chapter 8: ReLU, LeakyReLU, PReLU, RReLU, ELU, SELU, NoisyReLU.

Derivatives at the kink x = 0 follow the book's equations: ReLU'(0) = 0 (8.2),
LeakyReLU'(0) = alpha (8.4), RReLU'(0) = its slope (8.8), ELU'(0) = alpha
(8.10), SELU'(0) = scale alpha (8.12), NoisyReLU'(0) = 0 (8.14); eq. 8.6 leaves
PReLU'(0) undefined and we take alpha, as for LeakyReLU.
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_input, check_positive_int
from kernels import activations as kernels
from kernels.activations import cpu as cpu_kernels

from ..base import checks_skipped
from ..initializers import filled
from .elementwise import ElementwiseActivation, RandomActivation, check_real

__all__ = ["ReLU", "LeakyReLU", "PReLU", "RReLU", "ELU", "SELU", "NoisyReLU"]


class ReLU(ElementwiseActivation):
    """Rectified Linear Unit (section 8.2, eqs. 8.1-8.2).

    Forward::

        y = max(0, x)

    Backward, from the cached output (y > 0 exactly where x > 0)::

        dE/dx = dE/dy   where x > 0,   0 where x <= 0   (ReLU'(0) = 0)

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "relu"


class LeakyReLU(ElementwiseActivation):
    """Leaky ReLU (section 8.4.1, eqs. 8.3-8.4).

    Forward::

        y = x   if x > 0,   alpha x   otherwise

    Backward, from the cached input::

        dE/dx = dE/dy   where x > 0,   alpha dE/dy where x <= 0   (LeakyReLU'(0) = alpha)

    Parameters
    ----------
    alpha : float
        Slope of the negative part (default 0.01, as in the book's code).

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "leaky_relu"

    def __init__(self, alpha=0.01):
        super().__init__()
        self.alpha = check_real(alpha, "alpha", "LeakyReLU")

    def kernel_params(self, x):
        return {"alpha": self.alpha}


class PReLU(ElementwiseActivation):
    """Parametric ReLU (section 8.4.2, eqs. 8.5-8.6): a LeakyReLU whose slope is learned.

    Forward::

        y = x   if x > 0,   alpha_c x   otherwise

    Backward, from the cached input (PReLU'(0) = alpha: eq. 8.6 leaves it undefined)::

        dE/dx       = dE/dy where x > 0, alpha_c dE/dy where x <= 0
        dE/dalpha_c = sum over the elements of channel c with x <= 0 of x dE/dy

    Parameters
    ----------
    num_parameters : int
        1 (default): one slope shared by every element. C: one slope per channel,
        the input's last axis (features of Dense outputs, channels of NHWC maps).
    init : float
        Initial slope (0.25, He et al. 2015).

    Shapes
    ------
    input (..., C) -> output of the same shape and dtype;
    ``params = [alpha]`` with alpha of shape (num_parameters,).
    """

    kernel = "prelu"

    def __init__(self, num_parameters=1, init=0.25):
        super().__init__()
        self.num_parameters = check_positive_int(num_parameters, "num_parameters")
        self.init = check_real(init, "init", "PReLU")
        self.alpha = filled((self.num_parameters,), self.init)
        self.params = [self.alpha]

    def forward(self, input_data):
        if checks_skipped():
            return super().forward(input_data)
        x = check_input(input_data, layer="PReLU")
        if self.num_parameters > 1 and (x.ndim == 0 or x.shape[-1] != self.num_parameters):
            raise ValueError(
                f"PReLU: input_data: expected the last axis to have {self.num_parameters} channels "
                f"(num_parameters), got shape {tuple(x.shape)}"
            )
        backend.get_array_module(x, self.alpha)  # mixed-device TypeError
        return super().forward(x)

    def kernel_params(self, x):
        return {"alpha": self.alpha}

    def backward(self, grad_output):
        x = self._cached()
        g = self._grad_output(grad_output, x)
        fast = type(g) is np.ndarray and checks_skipped()  # checked once: straight to the CPU kernel
        grad_input, grad_alpha = (cpu_kernels if fast else kernels).prelu_backward(g, x, self.alpha)
        return grad_input, [grad_alpha.astype(self.alpha.dtype, copy=False)]


class RReLU(RandomActivation):
    """Randomized Leaky ReLU (section 8.4.3, eqs. 8.7-8.8; Xu et al. 2015).

    Training: every element draws its own slope a_i ~ U[lower, upper) in every
    forward pass (on the input's device); evaluation uses the mean slope::

        y = x if x > 0,   a x otherwise,   a = a_i (training) or (lower + upper) / 2 (evaluation)

    Backward, from the cached input and the same slopes (RReLU'(0) = a)::

        dE/dx = dE/dy where x > 0,   a dE/dy where x <= 0

    Parameters
    ----------
    lower, upper : float
        Range of the random slopes, 0 <= lower <= upper (default 1/8 and 1/3).
    seed : int, optional
        Seed of the slope generator; :meth:`reset_rng` restarts it.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "rrelu"

    def __init__(self, lower=1.0 / 8.0, upper=1.0 / 3.0, seed=None):
        super().__init__(seed)
        self.lower = check_real(lower, "lower", "RReLU", minimum=0.0)
        self.upper = check_real(upper, "upper", "RReLU")
        if self.upper < self.lower:
            raise ValueError(f"RReLU: upper: expected upper >= lower = {self.lower}, got {self.upper}")
        self.slopes = None

    def kernel_params(self, x):
        if self.training:
            self.slopes = kernels.draw_rrelu_slopes(x, self.lower, self.upper, rng=self.generator(x))
        else:
            self.slopes = None
        return {"slopes": self.slopes, "lower": self.lower, "upper": self.upper}


class ELU(ElementwiseActivation):
    """Exponential Linear Unit (section 8.5.1, eqs. 8.9-8.10; Clevert et al. 2016).

    Forward::

        y = x   if x > 0,   alpha (e^x - 1)   otherwise

    Backward, from the cached output (alpha e^x = y + alpha for x <= 0)::

        dE/dx = dE/dy where y > 0,   dE/dy (y + alpha) otherwise   (ELU'(0) = alpha)

    Parameters
    ----------
    alpha : float >= 0
        Saturation value -alpha of the negative part (default 1). It must not be
        negative, so that y > 0 exactly where x > 0.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "elu"

    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = check_real(alpha, "alpha", "ELU", minimum=0.0)

    def kernel_params(self, x):
        return {"alpha": self.alpha}


class SELU(ElementwiseActivation):
    """Scaled ELU (section 8.5.2, eqs. 8.11-8.12; Klambauer et al. 2017).

    Forward::

        y = scale * (x if x > 0 else alpha (e^x - 1))

    with the paper's constants ``alpha = 1.6732632423543772848170429916717`` and
    ``scale = 1.0507009873554804934193349852946`` (pair it with LeCun normal
    initialisation, ``Dense(..., weight_init="lecun_normal")``).

    Backward, from the cached output::

        dE/dx = scale dE/dy where y > 0,   dE/dy (y + scale alpha) otherwise

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "selu"
    ALPHA = kernels.SELU_ALPHA
    SCALE = kernels.SELU_SCALE


class NoisyReLU(RandomActivation):
    """Noisy ReLU (section 8.5.3, eqs. 8.13-8.14; Nair & Hinton 2010).

    Training, as eq. 8.13: Gaussian noise is added to the active units only
    (the rectification is decided by the clean input, the noise comes after it)::

        y = x + n   where x > 0,   0 where x <= 0,   n ~ N(0, std^2) per element and pass

    Evaluation: y = max(0, x). Backward treats the noise as a constant of the
    step (eq. 8.14), from the cached input::

        dE/dx = dE/dy where x > 0,   0 where x <= 0

    Parameters
    ----------
    std : float >= 0
        Standard deviation of the noise, fixed (default 0.1; 0 makes the layer a
        ReLU). Nair & Hinton use a variance that depends on x (sigmoid(x)); the
        book writes N(0, sigma(z_i)) without fixing it: a constant std keeps the
        layer simple and its scale explicit.
    seed : int, optional
        Seed of the noise generator; :meth:`reset_rng` restarts it.

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype.
    """

    kernel = "noisy_relu"

    def __init__(self, std=0.1, seed=None):
        super().__init__(seed)
        self.std = check_real(std, "std", "NoisyReLU", minimum=0.0)
        self.noise = None

    def kernel_params(self, x):
        if self.training and self.std > 0.0:
            self.noise = kernels.draw_noise(x, self.std, rng=self.generator(x))
        else:
            self.noise = None
        return {"noise": self.noise}
