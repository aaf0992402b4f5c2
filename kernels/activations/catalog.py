"""Names, families and parameters of the elementwise activations (book chapters 7-9).

One place that says, for every activation the kernels know:

* its family (the book's chapter 7 "sigmoidal", chapter 8 "rectifier", chapter 9 /
  slides 001 "modern"),
* which cached tensor its backward reads (``"input"`` x or ``"output"`` y,
  whichever is cheaper; the layers cache only that one),
* its keyword parameters and their defaults.

Softmax is not here: it is not elementwise (it lives in :mod:`layers.activations.softmax`).
"""

from __future__ import annotations

#: Activations per family, in the book's order (sections 7.4-7.7, 8.2-8.5, ch. 9 / slides 001).
FAMILIES = {
    "sigmoidal": ("sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh"),
    "rectifier": ("relu", "leaky_relu", "prelu", "rrelu", "elu", "selu", "noisy_relu"),
    "modern": ("gelu", "silu", "softplus", "mish"),
}

#: The 16 elementwise activations, family by family.
ACTIVATIONS = tuple(name for names in FAMILIES.values() for name in names)

#: Which tensor ``backward`` reads besides ``grad_output``.
#: ``"output"``: the derivative is cheapest from y (sigmoid y(1-y), tanh 1-y^2,
#: ELU/SELU y + alpha, ReLU y > 0); ``"input"``: it needs x.
BACKWARD_NEEDS = {
    "sigmoid": "output",
    "tanh": "output",
    "softsign": "input",
    "hard_sigmoid": "input",
    "hard_tanh": "input",
    "relu": "output",
    "leaky_relu": "input",
    "prelu": "input",
    "rrelu": "input",
    "elu": "output",
    "selu": "output",
    "noisy_relu": "input",
    "gelu": "input",
    "silu": "input",
    "softplus": "input",
    "mish": "input",
}

#: Keyword parameters and their defaults.
#: ``prelu.alpha``: a scalar or an array of shape (C,) broadcast over the last axis.
#: ``rrelu.slopes`` / ``noisy_relu.noise``: arrays of x's shape drawn by the caller
#: (training); ``None`` means evaluation mode (RReLU uses (lower + upper) / 2,
#: NoisyReLU is a plain ReLU).
DEFAULTS = {
    "sigmoid": {},
    "tanh": {},
    "softsign": {},
    "hard_sigmoid": {},
    "hard_tanh": {},
    "relu": {},
    "leaky_relu": {"alpha": 0.01},
    "prelu": {"alpha": 0.25},
    "rrelu": {"slopes": None, "lower": 1.0 / 8.0, "upper": 1.0 / 3.0},
    "elu": {"alpha": 1.0},
    "selu": {},
    "noisy_relu": {"noise": None},
    "gelu": {"approximate": "none"},
    "silu": {},
    "softplus": {},
    "mish": {},
}

#: SELU constants (Klambauer et al. 2017, eq. 8.11), to the digits the paper gives.
SELU_ALPHA = 1.6732632423543772848170429916717
SELU_SCALE = 1.0507009873554804934193349852946

#: Constants of the GELU formulas (exact: Phi(x) = erfc(-x / sqrt 2) / 2; tanh form of Hendrycks & Gimpel).
SQRT2 = 1.4142135623730951
INV_SQRT_2PI = 0.3989422804014327
GELU_TANH_K = 0.7978845608028654  # sqrt(2 / pi)
GELU_TANH_C = 0.044715


def check_name(name) -> str:
    """Return ``name`` if it is one of :data:`ACTIVATIONS`, else raise ValueError listing them."""
    if name not in DEFAULTS:
        raise ValueError(
            f"unknown activation {name!r}; expected one of: {', '.join(ACTIVATIONS)}"
        )
    return name


def resolve_params(name: str, kwargs: dict) -> dict:
    """Defaults of ``name`` updated with ``kwargs``; unknown keywords raise TypeError.

    ``gelu``'s ``approximate`` must be ``"none"`` or ``"tanh"`` (ValueError otherwise).
    """
    defaults = DEFAULTS[check_name(name)]
    unknown = sorted(set(kwargs) - set(defaults))
    if unknown:
        accepted = ", ".join(defaults) or "no keyword arguments"
        raise TypeError(f"activation {name!r}: unexpected keyword {', '.join(unknown)}; accepted: {accepted}")
    params = dict(defaults)
    params.update(kwargs)
    if name == "gelu" and params["approximate"] not in ("none", "tanh"):
        raise ValueError(f"gelu: approximate: expected 'none' or 'tanh', got {params['approximate']!r}")
    return params


def check_prelu_slopes(count: int, x_shape) -> None:
    """PReLU takes one slope, or one per channel (the last axis of x, eq. 8.6); ValueError otherwise."""
    channels = x_shape[-1] if len(x_shape) else 1
    if count != 1 and count != channels:
        raise ValueError(f"prelu: alpha: expected 1 slope or one per channel (last axis of x, {channels}), got {count}")
