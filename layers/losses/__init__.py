"""Losses (book chapters 10-11, eq. 6.4; slides 003) and the ``get_loss`` lookup.

Every loss follows the :class:`~layers.losses.base.Loss` protocol::

    E = loss.forward(y_pred, y_true)   # Python float
    grad = loss.backward()             # dE/dy_pred, shape and dtype of y_pred

======================================  ===================================  ==================
class                                   names for ``get_loss``               book / slides
======================================  ===================================  ==================
:class:`MeanSquaredError`               "mse", "mean_squared_error"          eq. 6.4; slides 003
:class:`MeanAbsoluteError`              "mae", "mean_absolute_error"         slides 003
:class:`Huber`                          "huber"                              slides 003
:class:`BinaryCrossEntropy`             "bce", "binary_crossentropy"         section 10.2
:class:`Hinge`                          "hinge"                              section 10.3
:class:`CategoricalCrossEntropy`        "cce", "categorical_crossentropy"    section 11.2
:class:`SparseCategoricalCrossEntropy`  "sparse_categorical_crossentropy"    section 11.3
:class:`KLDivergence`                   "kl_divergence", "kld"               slides 003
:class:`MulticlassHinge`                "multiclass_hinge"                   slides 003
======================================  ===================================  ==================

The classes live in small modules (``base``, ``regression``,
``classification``) and are all importable from here. ``fit`` and
``evaluate`` build a loss named by a string with :func:`loss_for_model`,
which reads ``from_logits`` from the model's last layer (module ``for_model``).
"""

from __future__ import annotations

from .base import Loss
from .classification import (
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    Hinge,
    KLDivergence,
    MulticlassHinge,
    SparseCategoricalCrossEntropy,
)
from .regression import Huber, MeanAbsoluteError, MeanSquaredError

__all__ = [
    "BinaryCrossEntropy",
    "CategoricalCrossEntropy",
    "Hinge",
    "Huber",
    "KLDivergence",
    "Loss",
    "MeanAbsoluteError",
    "MeanSquaredError",
    "MulticlassHinge",
    "SparseCategoricalCrossEntropy",
    "get_loss",
    "loss_for_model",
]

LOSSES = {
    "mse": MeanSquaredError,
    "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError,
    "mean_absolute_error": MeanAbsoluteError,
    "huber": Huber,
    "bce": BinaryCrossEntropy,
    "binary_crossentropy": BinaryCrossEntropy,
    "binary_cross_entropy": BinaryCrossEntropy,
    "hinge": Hinge,
    "cce": CategoricalCrossEntropy,
    "categorical_crossentropy": CategoricalCrossEntropy,
    "categorical_cross_entropy": CategoricalCrossEntropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossEntropy,
    "sparse_categorical_cross_entropy": SparseCategoricalCrossEntropy,
    "scce": SparseCategoricalCrossEntropy,
    "kl_divergence": KLDivergence,
    "kld": KLDivergence,
    "multiclass_hinge": MulticlassHinge,
}


def get_loss(name_or_obj, **kwargs) -> Loss:
    """Return a loss from a name, a Loss class or a Loss instance.

    Parameters
    ----------
    name_or_obj : str, Loss subclass or Loss instance
        A name from the table in this module (case-insensitive; "-" and " "
        read as "_"), a class (instantiated with ``kwargs``) or an instance
        (returned as is; ``kwargs`` must then be empty).
    **kwargs
        Constructor arguments, e.g. ``get_loss("cce", from_logits=True)``.

    Raises
    ------
    ValueError
        Unknown name (the message lists the known ones).
    TypeError
        Anything else, or kwargs given with an instance.
    """
    if isinstance(name_or_obj, Loss):
        if kwargs:
            raise TypeError(f"get_loss: got a {type(name_or_obj).__name__} instance and extra arguments {kwargs}")
        return name_or_obj
    if isinstance(name_or_obj, type) and issubclass(name_or_obj, Loss):
        return name_or_obj(**kwargs)
    if isinstance(name_or_obj, str):
        key = name_or_obj.strip().lower().replace("-", "_").replace(" ", "_")
        if key not in LOSSES:
            raise ValueError(f"get_loss: unknown loss {name_or_obj!r}; expected one of {', '.join(sorted(LOSSES))}")
        return LOSSES[key](**kwargs)
    raise TypeError(
        f"get_loss: expected a loss name (str), a Loss subclass or a Loss instance, got {type(name_or_obj).__name__}"
    )


from .for_model import loss_for_model  # noqa: E402 (it uses get_loss, defined above)
