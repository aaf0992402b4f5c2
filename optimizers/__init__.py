"""camadas optimizers (book chapter 6).

Two kinds:

* the book's function minimiser :class:`GradientDescent` (section 6.1.3), and
  :func:`minimize`, which runs any optimizer below on a plain function;
* network optimizers with ``optimizer.step(params, grads)`` updating the arrays
  in place on their own device.

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
:class:`Newton`        "newton"                             6.5 (needs a Hessian)
=====================  ===================================  =====================================

Every network optimizer accepts ``l1``, ``l2`` (weight penalties),
``clipnorm`` (global norm) and ``clipvalue``; see
:mod:`optimizers.regularization`.
"""

from __future__ import annotations

__camadas__ = True  # marks camadas's own package (camadas.packages.require_own checks it)

from camadas.packages import require_own

require_own(__name__, ("backend",))  # one clear error if a sibling is not ours

from . import regularization
from .adagrad import AdaGrad
from .adam import Adam
from .base import Optimizer
from .gradient_descent import GradientDescent
from .minimize import minimize
from .momentum import Momentum
from .nadam import Nadam
from .nesterov import Nesterov
from .newton import Newton
from .rmsprop import RMSProp
from .sgd import SGD

OPTIMIZERS = {
    "sgd": SGD,
    "momentum": Momentum,
    "nesterov": Nesterov,
    "adagrad": AdaGrad,
    "rmsprop": RMSProp,
    "adam": Adam,
    "nadam": Nadam,
    "newton": Newton,
}

__all__ = [
    "AdaGrad",
    "Adam",
    "GradientDescent",
    "Momentum",
    "Nadam",
    "Nesterov",
    "Newton",
    "Optimizer",
    "RMSProp",
    "SGD",
    "get_optimizer",
    "minimize",
    "regularization",
]


def get_optimizer(name, **kwargs) -> Optimizer:
    """Return an optimizer from a name, an Optimizer class or an instance.

    Parameters
    ----------
    name : str, Optimizer subclass or Optimizer instance
        One of "sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam",
        "nadam", "newton" (case-insensitive); a class is instantiated with
        ``kwargs``; an instance is returned as is (``kwargs`` must be empty).
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
