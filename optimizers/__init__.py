"""camadas optimizers (book chapter 6, and the training tools of chapter 26).

Two kinds:

* the book's function minimiser :class:`GradientDescent` (section 6.1.3), and
  :func:`minimize`, which runs any optimizer below on a plain function;
* network optimizers with ``optimizer.step(params, grads)`` updating the arrays
  in place on their own device, each rule as one fused kernel pass per
  parameter (:mod:`optimizers.fused`: Numba on the CPU, CuPy on the GPU), or
  per buffer after :func:`flatten_parameters`.

=====================  ===================================  =====================================
class                  name for ``get_optimizer``           book section / equation
=====================  ===================================  =====================================
:class:`SGD`           "sgd"                                6.1, 6.3.2; eqs. 6.1, 6.8-6.11
:class:`Momentum`      "momentum"                           6.3.1; eqs. 6.13 (Polyak), 6.14
:class:`Nesterov`      "nesterov"                           6.4.1
:class:`AdaGrad`       "adagrad"                            6.4.2
:class:`RMSProp`       "rmsprop"                            6.4.3
:class:`Adam`          "adam"                               6.4.4
:class:`Nadam`         "nadam"                              6.4.5
:class:`AdamW`         "adamw"                              26 (Loshchilov & Hutter, 2019)
:class:`Newton`        "newton"                             6.5 (needs a Hessian)
=====================  ===================================  =====================================

Every network optimizer accepts ``l1``, ``l2`` (weight penalties),
``clipnorm`` (global norm) and ``clipvalue`` (:mod:`optimizers.regularization`),
``on_nonfinite`` (warn, raise or ignore when a step leaves inf/NaN), and a
learning rate that is a number or a schedule (:mod:`optimizers.schedules`:
StepDecay, ExponentialDecay, CosineDecay, WarmupCosineDecay,
InverseSquareRootDecay). :mod:`optimizers.reference` keeps the plain array
formulas the kernels are tested against. :class:`DataParallel` wraps any of
them for data-parallel training over several processes (MPI, NCCL).
"""

from __future__ import annotations

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend",))  # one clear error if a sibling is not ours

from . import reference, regularization, schedules
from .adagrad import AdaGrad
from .adam import Adam
from .adamw import AdamW, decay_mask
from .base import NonFiniteWarning, Optimizer
from .data_parallel import DataParallel
from .flat import FlatParameters, flatten_parameters
from .gradient_descent import GradientDescent
from .minimize import minimize
from .momentum import Momentum
from .nadam import Nadam
from .nesterov import Nesterov
from .newton import Newton
from .rmsprop import RMSProp
from .schedules import (
    CosineDecay,
    ExponentialDecay,
    InverseSquareRootDecay,
    LearningRateSchedule,
    StepDecay,
    WarmupCosineDecay,
)
from .sgd import SGD

OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "nadam": Nadam,
    "adamw": AdamW,
    "newton": Newton,
}

__all__ = [
    "SGD",
    "AdaGrad",
    "Adam",
    "AdamW",
    "CosineDecay",
    "DataParallel",
    "ExponentialDecay",
    "FlatParameters",
    "GradientDescent",
    "InverseSquareRootDecay",
    "LearningRateSchedule",
    "Momentum",
    "Nadam",
    "Nesterov",
    "Newton",
    "NonFiniteWarning",
    "Optimizer",
    "RMSProp",
    "StepDecay",
    "WarmupCosineDecay",
    "decay_mask",
    "flatten_parameters",
    "get_optimizer",
    "minimize",
    "reference",
    "regularization",
    "schedules",
]


def get_optimizer(name, **kwargs) -> Optimizer:
    """Return an optimizer from a name, an Optimizer class or an instance.

    Parameters
    ----------
    name : str, Optimizer subclass or Optimizer instance
        One of "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
        "nadam", "adamw", "newton" (case-insensitive); a class is instantiated
        with ``kwargs``; an instance is returned as is (``kwargs`` must be empty).
    **kwargs
        Constructor arguments, e.g. ``get_optimizer("adam", learning_rate=1e-3, clipnorm=1.0)``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    TypeError
        Anything else, or kwargs with an instance.
    """
    if isinstance(name, Optimizer):
        if kwargs:
            raise TypeError(f"get_optimizer: got a {type(name).__name__} instance and extra arguments {kwargs}")
        return name
    if isinstance(name, type) and issubclass(name, Optimizer):
        return name(**kwargs)
    if isinstance(name, str):
        key = name.strip().lower().replace("-", "_")
        if key not in OPTIMIZERS:
            raise ValueError(f"get_optimizer: unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
        return OPTIMIZERS[key](**kwargs)
    raise TypeError(f"get_optimizer: expected an optimizer name (str), an Optimizer subclass or instance, "
                    f"got {type(name).__name__}")
