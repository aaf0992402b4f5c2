"""Saving and loading a model (any registered Layer, usually a Sequential) as one ``.npz`` file (no pickle).

File layout (``numpy.savez``, read back with ``allow_pickle=False``):

==================  ==========================================================
entry               content
==================  ==========================================================
``"format"``        the string ``"camadas.Sequential"``
``"architecture"``  JSON: ``{"version": 2, "model": <layer spec>}``
``"param.<k>"``     ``model.params[k]`` (NumPy, saved with ``backend.to_numpy``)
``"buffer.<key>"``  ``model.buffers[key]`` (e.g. ``"1.running_mean"``)
==================  ==========================================================

A layer spec is ``{"class": "<public name>", "args": [...], "kwargs": {...}}``
from :meth:`Layer.get_config`; the public name is the one the class is
registered under (:mod:`layers.saving.registry`: ``"Dense"``), never a file
path. Tagged values: tuples ``{"__tuple__": [...]}``, dicts ``{"__dict__": {...}}``,
dtypes ``{"__dtype__": "float32"}``, layers ``{"__layer__": spec}``,
initializers ``{"__initializer__": "he_normal"}``. Version 1 files (camadas
0.1, classes named ``"layers.dense:Dense"``) load too.

A checkpoint is untrusted input. Loading builds only registered layer
classes and registered initializers (an allow-list; nothing is imported or
called by name), builds the structure without allocating parameters
(:func:`layers.initializers.deferred_allocation`), reads every stored array's
shape and dtype from its header and checks it against that structure, and
only then reads the arrays. Anything malformed raises :class:`CheckpointError`
naming the path. Saving writes a temporary file beside the destination and
renames it over the destination (atomic); temporary files left by a crashed
save of the same checkpoint are removed by the next save.
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np

import backend
from backend.checks import SUPPORTED_DTYPES
from backend.distributed import is_writer

from ..base import Layer
from ..initializers import INITIALIZERS, deferred_allocation, initializer_name
from .files import check_directory, write_atomically
from .registry import LIBRARY_PACKAGES, layer_class, layer_name

FORMAT = "camadas.Sequential"
VERSION = 2
#: Versions this camadas reads (1: camadas 0.1, classes named by module path).
READABLE_VERSIONS = (1, 2)
#: Deepest nesting of layers and values an architecture may have.
MAX_DEPTH = 64
#: Largest architecture text read (characters).
MAX_ARCHITECTURE_CHARS = 1 << 24
#: Packages named by version-1 ``__callable__`` entries that are honoured (their registered initializers only).
TRUSTED_PACKAGES = LIBRARY_PACKAGES


class CheckpointError(ValueError):
    """A file is not a readable camadas checkpoint (truncated, foreign, hostile or incompatible)."""


# -- encoding the architecture -------------------------------------------------
def _encode(value, where: str):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        return {"__dict__": {k: _encode(v, f"{where}[{k!r}]") for k, v in value.items()}}
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name}
    if isinstance(value, Layer):
        return {"__layer__": layer_spec(value, where)}
    if callable(value):
        name = initializer_name(value)
        if name is not None:
            return {"__initializer__": name}
        raise TypeError(
            f"save: {where}: the callable {getattr(value, '__qualname__', value)!r} is not a registered "
            "initializer; pass an initializer by name (weight_init='he_normal') or register it with "
            "layers.initializers.register_initializer(name, fn)"
        )
    raise TypeError(
        f"save: {where}: cannot store a constructor argument of type {type(value).__name__} "
        f"({value!r}); use JSON-like values (numbers, strings, lists, tuples), dtypes, layers or "
        "registered initializers"
    )


def layer_spec(layer, where: str = "model") -> dict:
    """The JSON-ready description of ``layer``: registered class name and encoded constructor arguments.

    Raises
    ------
    TypeError
        ``layer`` is not a Layer, its class is not registered (the message says
        how: :func:`layers.register_layer`), or an argument cannot be stored.
    """
    if not isinstance(layer, Layer):
        raise TypeError(f"save: {where}: only layers.base.Layer subclasses can be saved, got {type(layer).__name__}")
    name = layer_name(type(layer))
    cls = type(layer)
    if name is None and "<" in cls.__qualname__:
        raise TypeError(f"save: {where}: {cls.__qualname__} is defined inside a function; define it at module "
                        "level and register it with layers.register_layer so a checkpoint can name it")
    if name is None:
        raise TypeError(
            f"save: {where}: the class {cls.__module__}.{cls.__qualname__} is not registered, so a checkpoint "
            "could not rebuild it; register it once with layers.register_layer (a decorator) before saving "
            "and loading"
        )
    config = layer.get_config()
    args = config.get("args", [])
    kwargs = config.get("kwargs", {})
    return {
        "class": name,
        "args": [_encode(a, f"{where}.args[{i}]") for i, a in enumerate(args)],
        "kwargs": {k: _encode(v, f"{where}.kwargs[{k!r}]") for k, v in kwargs.items()},
    }


# -- decoding (untrusted) ----------------------------------------------------------
def _legacy_callable(reference, path: str):
    """A version-1 ``{"__callable__": "module:qualname"}``: only registered initializers and layer classes."""
    if not isinstance(reference, str) or ":" not in reference:
        raise CheckpointError(f"{path}: bad callable reference {reference!r} in the architecture")
    module, qualname = reference.split(":", 1)
    if module.split(".")[0] in TRUSTED_PACKAGES:
        if qualname in INITIALIZERS and module.endswith("initializers"):
            return INITIALIZERS[qualname]
        try:
            return layer_class(reference)
        except KeyError:
            pass
    raise CheckpointError(f"{path}: the architecture names {reference!r}, which is not a registered initializer "
                          "or layer; refusing to call it")


def _decode(value, path: str, depth: int):
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{path}: the architecture is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        return [_decode(v, path, depth + 1) for v in value]
    if not isinstance(value, dict):
        if value is None or isinstance(value, (bool, int, float, str)):
            return value
        raise CheckpointError(f"{path}: unexpected value {value!r} in the architecture")
    if len(value) != 1:
        raise CheckpointError(f"{path}: unexpected entry {str(value)[:200]} in the architecture")
    (tag, content), = value.items()
    if tag == "__tuple__" and isinstance(content, list):
        return tuple(_decode(v, path, depth + 1) for v in content)
    if tag == "__dict__" and isinstance(content, dict):
        return {str(k): _decode(v, path, depth + 1) for k, v in content.items()}
    if tag == "__dtype__" and isinstance(content, str):
        try:
            dtype = np.dtype(content)
        except TypeError as exc:
            raise CheckpointError(f"{path}: unknown dtype {content!r} in the architecture") from exc
        if dtype.kind not in "biuf":
            raise CheckpointError(f"{path}: dtype {content!r} is not numeric; refusing it")
        return dtype
    if tag == "__layer__":
        return build_layer(content, path, depth + 1)
    if tag == "__initializer__" and isinstance(content, str):
        if content not in INITIALIZERS:
            raise CheckpointError(f"{path}: unknown initializer {content!r} (registered: {sorted(INITIALIZERS)})")
        return INITIALIZERS[content]
    if tag == "__callable__":
        return _legacy_callable(content, path)
    raise CheckpointError(f"{path}: unknown tag {tag!r} in the architecture")


def build_layer(spec: dict, path: str, depth: int = 0) -> Layer:
    """Rebuild a layer from :func:`layer_spec` output (constructor only; weights come later).

    Only registered classes are built; call it inside
    :func:`layers.initializers.deferred_allocation` to allocate nothing.
    """
    if depth > MAX_DEPTH:
        raise CheckpointError(f"{path}: the architecture is nested deeper than {MAX_DEPTH} levels")
    if not isinstance(spec, dict) or not isinstance(spec.get("class"), str):
        raise CheckpointError(f"{path}: bad layer entry {str(spec)[:200]} in the architecture")
    try:
        cls = layer_class(spec["class"])
    except KeyError as exc:
        raise CheckpointError(f"{path}: {exc.args[0]}") from None
    args, kwargs = spec.get("args", []), spec.get("kwargs", {})
    if not isinstance(args, list) or not isinstance(kwargs, dict):
        raise CheckpointError(f"{path}: {spec['class']}: 'args' must be a list and 'kwargs' an object")
    args = _decode(args, path, depth + 1)
    kwargs = {str(k): _decode(v, path, depth + 1) for k, v in kwargs.items()}
    try:
        return cls(*args, **kwargs)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot rebuild {spec['class']} from the saved arguments: "
                              f"{type(exc).__name__}: {exc}") from exc


# -- saving ---------------------------------------------------------------------------
def save_model(model, path) -> str:
    """Write ``model`` (architecture, parameters, buffers) to ``path`` atomically; return the path.

    The file is written exactly at ``path`` (no ``.npz`` is appended). In
    data-parallel training (a communicator in effect, see
    :func:`backend.distributed.current_communicator`) only rank 0 writes; the
    other ranks check the path and return it (their models are the same).

    Raises
    ------
    TypeError
        A layer is not a registered Layer subclass, or has a constructor
        argument that cannot be stored (the message names it and the fix).
    FileNotFoundError
        The destination directory does not exist.
    """
    path = check_directory(path, "save")
    if not is_writer():
        return path
    architecture = json.dumps({"version": VERSION, "model": layer_spec(model)})
    arrays = {"format": np.array(FORMAT), "architecture": np.array(architecture)}
    for k, p in enumerate(model.params):
        arrays[f"param.{k}"] = backend.to_numpy(p)
    for key, b in model.buffers.items():
        arrays[f"buffer.{key}"] = backend.to_numpy(b)
    return write_atomically(path, lambda f: np.savez(f, **arrays))


# -- reading ----------------------------------------------------------------------------
def _read_headers(path: str) -> dict:
    """``{entry: (shape, dtype)}`` of every ``.npy`` member, read from the headers only (no data)."""
    headers = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if not info.filename.endswith(".npy"):
                raise CheckpointError(f"load: {path!r} holds an unexpected member {info.filename!r}")
            with archive.open(info) as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, dtype = np.lib.format.read_array_header_1_0(member)
                elif version == (2, 0):
                    shape, _, dtype = np.lib.format.read_array_header_2_0(member)
                else:
                    raise CheckpointError(f"load: {path!r}: member {info.filename!r} has .npy format version "
                                          f"{version}, which camadas does not write")
            headers[info.filename[:-4]] = (tuple(shape), np.dtype(dtype))
    return headers


def _architecture(path: str, headers: dict) -> dict:
    fmt_header = headers.get("format")
    arch_header = headers.get("architecture")
    if fmt_header is None or arch_header is None:
        raise CheckpointError(f"load: {path!r} is not a camadas checkpoint (no 'format' and 'architecture' entries)")
    for key, (shape, dtype) in (("format", fmt_header), ("architecture", arch_header)):
        if dtype.kind != "U" or shape != ():
            raise CheckpointError(f"load: {path!r}: entry {key!r} is not a string")
    if arch_header[1].itemsize // 4 > MAX_ARCHITECTURE_CHARS:
        raise CheckpointError(f"load: {path!r}: the architecture is larger than {MAX_ARCHITECTURE_CHARS} characters")
    with np.load(path, allow_pickle=False) as data:
        fmt = str(data["format"])
        text = str(data["architecture"])
    if fmt != FORMAT:
        raise CheckpointError(f"load: {path!r} is not a camadas checkpoint (format {fmt[:80]!r})")
    try:
        architecture = json.loads(text)
        version = architecture["version"]
        spec = architecture["model"]
    except RecursionError as exc:
        raise CheckpointError(f"load: {path!r}: the architecture is nested too deeply") from exc
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"load: {path!r} has no readable architecture: {type(exc).__name__}: {exc}") from exc
    if version not in READABLE_VERSIONS:
        raise CheckpointError(f"load: {path!r} has format version {version!r}; this camadas reads "
                              f"{', '.join(map(str, READABLE_VERSIONS))}")
    return spec


def _check_arrays(path: str, model, headers: dict):
    """Every stored param/buffer: present, a float array, of the structure's shape; returns the entry names."""
    where = f"load: {path!r}"
    params = model.params
    stored = sorted(k for k in headers if k.startswith("param."))
    expected = [f"param.{k}" for k in range(len(params))]
    if sorted(expected) != stored:
        raise CheckpointError(f"{where}: the architecture has {len(params)} parameter arrays but the file holds "
                              f"{len(stored)}")
    buffers = model.buffers
    stored_buffers = sorted(k[len("buffer."):] for k in headers if k.startswith("buffer."))
    if sorted(buffers) != stored_buffers:
        raise CheckpointError(f"{where}: the architecture has buffers {sorted(buffers)} but the file holds "
                              f"{stored_buffers}")
    pairs = [(f"param.{k}", p) for k, p in enumerate(params)] + [(f"buffer.{k}", b) for k, b in buffers.items()]
    for entry, placeholder in pairs:
        shape, dtype = headers[entry]
        if dtype not in SUPPORTED_DTYPES:
            raise CheckpointError(f"{where}: {entry}: expected a float array (float32 or float64), the file holds "
                                  f"dtype {dtype}")
        if shape != tuple(placeholder.shape):
            raise CheckpointError(f"{where}: {entry}: expected shape {tuple(placeholder.shape)}, the file holds "
                                  f"{shape}")
    unexpected = set(headers) - {"format", "architecture"} - {entry for entry, _ in pairs}
    if unexpected:
        raise CheckpointError(f"{where}: unexpected entries {sorted(unexpected)[:5]}")
    return pairs


def load_model(path, device=None):
    """Rebuild the model saved at ``path`` on ``device`` (default: the current device).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError (a ValueError)
        Truncated, foreign, hostile or incompatible file; the message names
        ``path``. No model is returned in any failure, and nothing large is
        allocated before the stored arrays have been checked.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load: no such file: {path!r}")
    dev = backend.get_device() if device is None else backend.resolve_device(device)
    try:
        try:
            headers = _read_headers(path)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError):
            raise CheckpointError(
                f"load: {path!r} is not a readable camadas checkpoint: it is not a complete .npz archive "
                "(truncated, or another kind of file)"
            ) from None
        spec = _architecture(path, headers)
        where = f"load: {path!r}"
        with backend.use_device(dev), deferred_allocation():
            model = build_layer(spec, where)
        pairs = _check_arrays(path, model, headers)
        mapping = {}
        with np.load(path, allow_pickle=False) as data:
            for entry, placeholder in pairs:
                mapping[id(placeholder)] = backend.to_device(np.ascontiguousarray(data[entry]), dev)
        model.map_arrays(lambda a: mapping.get(id(a), a))
        return model
    except CheckpointError:
        raise
    except (RecursionError, AttributeError, TypeError, KeyError, ValueError, IndexError, OSError, EOFError,
            zipfile.BadZipFile) as exc:
        raise CheckpointError(f"load: {path!r} is not a readable camadas checkpoint: "
                              f"{type(exc).__name__}: {exc}") from exc
