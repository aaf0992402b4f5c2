"""A loss named by a string, built for the model it will train: ``from_logits`` read from the model's last layer.

``fit(X, y, loss="sparse_categorical_crossentropy")`` on a model ending in a
Dense layer would otherwise train a probability loss on raw scores (clipped to
[1e-7, 1]: a wrong loss, silently). The cross-entropies named by a string are
therefore built with ``from_logits=True`` unless the model's last leaf layer
(found with :func:`layers.base.walk`) already outputs probabilities: a
Softmax, Sigmoid or HardSigmoid (by class name, so the book's own classes
count too). A Loss instance is always used as it is.
"""

from __future__ import annotations

from ..base import sublayers, walk
from . import get_loss

#: Layers whose output is a probability (the class names, so user copies of the book's code blocks count too).
PROBABILITY_LAYERS = frozenset({"Softmax", "Sigmoid", "HardSigmoid"})
#: Losses whose ``from_logits`` is read from the model when they are named by a string.
LOGIT_AWARE = frozenset({"BinaryCrossEntropy", "CategoricalCrossEntropy", "SparseCategoricalCrossEntropy"})


def last_leaf(model):
    """The last layer ``model`` applies: the last leaf of :func:`layers.base.walk` (``model`` if it has none)."""
    leaf = model
    for _, layer in walk(model):
        if not sublayers(layer):
            leaf = layer
    return leaf


def outputs_probabilities(model) -> bool:
    """True when ``model``'s last leaf layer is a Softmax, Sigmoid or HardSigmoid (:data:`PROBABILITY_LAYERS`)."""
    return type(last_leaf(model)).__name__ in PROBABILITY_LAYERS


def loss_for_model(loss, model):
    """The Loss that ``fit``/``evaluate`` use for ``loss`` on ``model``.

    Parameters
    ----------
    loss : str, Loss subclass or Loss instance
        As for :func:`layers.losses.get_loss`. A *string* naming binary,
        categorical or sparse categorical cross-entropy gets
        ``from_logits=not outputs_probabilities(model)``; anything else is
        ``get_loss(loss)``.
    model : Layer

    Returns
    -------
    Loss
    """
    built = get_loss(loss)
    if isinstance(loss, str) and type(built).__name__ in LOGIT_AWARE:
        from_logits = not outputs_probabilities(model)
        if from_logits != built.from_logits:
            built = type(built)(from_logits=from_logits)
    return built
