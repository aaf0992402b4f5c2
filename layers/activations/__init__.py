"""Activation layers (book chapters 7-9, section 11.1, slides 001) and their string lookup.

Sigmoidal (ch. 7): Sigmoid, Tanh, Softsign, HardSigmoid, HardTanh.
Rectifiers (ch. 8): ReLU, LeakyReLU, PReLU, RReLU, ELU, SELU, NoisyReLU.
Modern (ch. 9, slides 001): GELU, SiLU (= Swish), Softplus, Mish. And Softmax (11.1).

>>> import layers
>>> act = layers.get_activation("leaky_relu", alpha=0.1)
"""

from __future__ import annotations

from ..base import Layer
from .elementwise import ElementwiseActivation
from .modern import GELU, Mish, SiLU, Softplus, Swish
from .rectifiers import ELU, SELU, LeakyReLU, NoisyReLU, PReLU, ReLU, RReLU
from .sigmoidal import HardSigmoid, HardTanh, Sigmoid, Softsign, Tanh
from .softmax import Softmax

__all__ = [
    "ELU", "GELU", "SELU", "ElementwiseActivation", "HardSigmoid", "HardTanh", "LeakyReLU", "Mish",
    "NoisyReLU", "PReLU", "RReLU", "ReLU", "SiLU", "Sigmoid", "Softmax", "Softplus", "Softsign",
    "Swish", "Tanh", "ACTIVATION_NAMES", "get_activation",
]

_BY_NAME = {
    "relu": ReLU,
    "leaky_relu": LeakyReLU,
    "prelu": PReLU,
    "rrelu": RReLU,
    "elu": ELU,
    "selu": SELU,
    "noisy_relu": NoisyReLU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softsign": Softsign,
    "hard_sigmoid": HardSigmoid,
    "hard_tanh": HardTanh,
    "gelu": GELU,
    "silu": SiLU,
    "swish": SiLU,
    "softplus": Softplus,
    "mish": Mish,
    "softmax": Softmax,
}

#: The names :func:`get_activation` accepts (case-insensitive; "-" may replace "_").
ACTIVATION_NAMES = tuple(_BY_NAME)


def get_activation(name, **kwargs) -> Layer:
    """Build an activation layer from its name, e.g. ``get_activation("elu", alpha=0.5)``.

    Parameters
    ----------
    name : str or Layer
        One of :data:`ACTIVATION_NAMES`, case-insensitive (``"ReLU"``, ``"leaky-relu"``
        work); a Layer instance is returned as it is (no kwargs allowed then).
    **kwargs
        Constructor arguments of the layer (``alpha``, ``seed``, ``approximate``, ...).

    Raises
    ------
    ValueError
        Unknown name; the message lists the valid ones.
    TypeError
        ``name`` is neither a string nor a Layer, or a keyword the layer does not take.
    """
    if isinstance(name, Layer):
        if kwargs:
            raise TypeError(f"get_activation: keyword arguments {sorted(kwargs)} given with a layer instance")
        return name
    if not isinstance(name, str):
        raise TypeError(f"get_activation: name: expected a string, got {type(name).__name__} {name!r}")
    key = name.strip().lower().replace("-", "_")
    if key not in _BY_NAME:
        raise ValueError(f"get_activation: unknown activation {name!r}; expected one of: {', '.join(ACTIVATION_NAMES)}")
    cls = _BY_NAME[key]
    try:
        return cls(**kwargs)
    except TypeError as exc:
        if "unexpected keyword" in str(exc) or "positional argument" in str(exc):
            raise TypeError(f"get_activation({name!r}): {cls.__name__} does not take {sorted(kwargs)}: {exc}") from None
        raise
