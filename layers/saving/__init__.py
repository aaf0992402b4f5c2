"""Saving models: checkpoints (:mod:`layers.saving.checkpoint`) and the registry of public layer names.

Only the registry is imported here (the Layer base class needs it); the
checkpoint module is imported by :mod:`layers` itself.
"""

from .registry import layer_class, layer_name, register_layer, registered_layers

__all__ = ["layer_class", "layer_name", "register_layer", "registered_layers"]
