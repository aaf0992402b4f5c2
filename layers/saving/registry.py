"""Public names of the layer classes: what checkpoints store, and the allow-list loading obeys.

Every :class:`~layers.base.Layer` subclass defined inside camadas' packages is
registered under its class name (``"Dense"``, ``"Convolution2D"``) when its
module is imported, so a checkpoint names classes by public name, never by
file path, and moving a file breaks no saved model. A user's own layer is
saved and loaded once registered (as Keras' ``register_keras_serializable``)::

    @layers.register_layer
    class Cube(Layer): ...

Loading builds only registered classes: a checkpoint can never make camadas
import a module or call anything that was not registered.
"""

from __future__ import annotations

#: Top-level packages whose Layer subclasses register themselves.
LIBRARY_PACKAGES = ("layers", "models", "optimizers", "kernels", "backend", "camadas")

_LAYERS: dict = {}   # public name -> class
_NAMES: dict = {}    # class -> public name


def _key(cls) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def register_library_class(cls) -> None:
    """Register ``cls`` under its class name when it is defined in one of :data:`LIBRARY_PACKAGES`.

    Called by ``Layer.__init_subclass__``; private classes (``_Pooling2D``) and
    classes defined inside functions are not registered.
    """
    root = cls.__module__.split(".")[0]
    if root not in LIBRARY_PACKAGES or cls.__name__.startswith("_") or "<" in cls.__qualname__:
        return
    _add(cls.__name__, cls)


def _add(name: str, cls) -> None:
    existing = _LAYERS.get(name)
    if existing is not None and existing is not cls and _key(existing) != _key(cls):
        raise ValueError(f"register_layer: name {name!r} is already taken by {_key(existing)}; "
                         f"choose another name for {_key(cls)}")
    _LAYERS[name] = cls
    _NAMES[cls] = name


def register_layer(cls=None, *, name: str | None = None):
    """Allow checkpoints to save and load the user layer class ``cls`` (usable as a decorator).

    Parameters
    ----------
    cls : type
        A subclass of :class:`layers.base.Layer`, defined at module level.
    name : str, optional
        The public name stored in checkpoints; default ``"<module>:<qualname>"``
        (which is also how checkpoints of camadas 0.1 named it, so they load).
        Library names (``"Dense"``) cannot be taken.

    Returns
    -------
    type
        ``cls`` itself.
    """
    if cls is None:
        return lambda c: register_layer(c, name=name)
    from ..base import Layer

    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise TypeError(f"register_layer: cls: expected a subclass of layers.base.Layer, got {cls!r}")
    if "<" in cls.__qualname__:
        raise TypeError(f"register_layer: {cls.__qualname__} is defined inside a function; define it at module "
                        "level so a checkpoint can name it")
    if name is None:
        name = _key(cls)
    if not isinstance(name, str) or not name:
        raise TypeError(f"register_layer: name: expected a non-empty str, got {name!r}")
    _add(name, cls)
    return cls


def layer_name(cls) -> str | None:
    """The public name ``cls`` is registered under, or None."""
    return _NAMES.get(cls)


def layer_class(name: str):
    """The class registered under ``name``; also accepts the ``"module:qualname"`` names of camadas 0.1.

    Raises
    ------
    KeyError
        No such registered class (the message says how to register one).
    """
    cls = _LAYERS.get(name)
    if cls is None and isinstance(name, str) and ":" in name:
        module, qualname = name.split(":", 1)
        if module.split(".")[0] in LIBRARY_PACKAGES:  # "layers.dense:Dense" of camadas 0.1
            cls = _LAYERS.get(qualname)
    if cls is None:
        raise KeyError(f"no layer class is registered as {name!r}; library layers are registered when imported, "
                       "user layers with layers.register_layer(cls)")
    return cls


def registered_layers() -> dict:
    """Every registered public name -> class (a copy)."""
    return dict(_LAYERS)
