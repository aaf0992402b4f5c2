"""Saving and loading a :class:`layers.Sequential` as one ``.npz`` file (no pickle).

File layout (``numpy.savez``, read back with ``allow_pickle=False``):

==================  ==========================================================
entry               content
==================  ==========================================================
``"format"``        the string ``"camadas.Sequential"``
``"architecture"``  JSON: ``{"version": 1, "model": <layer spec>}``
``"param.<k>"``     ``model.params[k]`` (NumPy, saved with ``backend.to_numpy``)
``"buffer.<key>"``  ``model.buffers[key]`` (e.g. ``"1.running_mean"``)
==================  ==========================================================

A layer spec is ``{"class": "module:qualname", "args": [...], "kwargs": {...}}``
from :meth:`Layer.get_config` (the constructor arguments). Arguments that JSON
cannot hold as such are tagged: tuples ``{"__tuple__": [...]}``, dtypes
``{"__dtype__": "float32"}``, layers (the layers of a Sequential)
``{"__layer__": spec}``, module-level functions ``{"__callable__": "module:qualname"}``.

Loading rebuilds every layer with its constructor and then replaces its
parameters and buffers by the saved arrays (keeping their dtype) on the chosen
device, so a model saved from the GPU loads on a CPU-only machine. Only
:class:`~layers.base.Layer` subclasses are rebuilt, and a checkpoint never
imports a module outside camadas' own packages: the module defining a user
layer must already be imported (as for ``pickle``, but without running code
from the file).

Saving writes to a temporary file in the destination's directory and renames
it over the destination (``os.replace``, atomic on POSIX and Windows), so a
crash or an error never leaves a half-written checkpoint.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import tempfile
import types
import zipfile

import numpy as np

import backend

from .base import Layer

FORMAT = "camadas.Sequential"
VERSION = 1
#: Packages whose modules a checkpoint may import to find a layer class.
TRUSTED_PACKAGES = ("layers", "optimizers", "kernels", "backend")


class CheckpointError(ValueError):
    """A file is not a readable camadas checkpoint (truncated, foreign, or incompatible)."""


# -- encoding the architecture -------------------------------------------------
def _reference(obj) -> str:
    module, qualname = obj.__module__, obj.__qualname__
    if "<" in qualname:  # <locals>, <lambda>
        raise TypeError(
            f"Sequential.save: {qualname} is a lambda or is defined inside a function; define it at module "
            "level so a checkpoint can name it"
        )
    return f"{module}:{qualname}"


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
    if isinstance(value, (types.FunctionType, type)):
        return {"__callable__": _reference(value)}
    raise TypeError(
        f"Sequential.save: {where}: cannot store a constructor argument of type {type(value).__name__} "
        f"({value!r}); use JSON-like values (numbers, strings, lists, tuples), dtypes, layers or "
        "module-level functions"
    )


def layer_spec(layer, where: str = "model") -> dict:
    """The JSON-ready description of ``layer``: class reference and encoded constructor arguments."""
    if not isinstance(layer, Layer):
        raise TypeError(
            f"Sequential.save: {where}: only layers.base.Layer subclasses can be saved, got {type(layer).__name__}"
        )
    config = layer.get_config()
    args = config.get("args", [])
    kwargs = config.get("kwargs", {})
    return {
        "class": _reference(type(layer)),
        "args": [_encode(a, f"{where}.args[{i}]") for i, a in enumerate(args)],
        "kwargs": {k: _encode(v, f"{where}.kwargs[{k!r}]") for k, v in kwargs.items()},
    }


# -- decoding ----------------------------------------------------------------------
def _resolve(reference: str, path: str):
    if not isinstance(reference, str) or ":" not in reference:
        raise CheckpointError(f"{path}: bad class reference {reference!r} in the architecture")
    module_name, qualname = reference.split(":", 1)
    module = sys.modules.get(module_name)
    if module is None:
        if module_name.split(".")[0] not in TRUSTED_PACKAGES:
            raise CheckpointError(
                f"{path}: the checkpoint uses {qualname} from module {module_name!r}, which is not imported; "
                f"import {module_name} before Sequential.load (checkpoints only import camadas' own modules)"
            )
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise CheckpointError(f"{path}: cannot import module {module_name!r} for {qualname}: {exc}") from exc
    obj = module
    for part in qualname.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise CheckpointError(f"{path}: module {module_name!r} has no {qualname!r}")
    return obj


def _decode(value, path: str):
    if isinstance(value, list):
        return [_decode(v, path) for v in value]
    if not isinstance(value, dict):
        return value
    if len(value) != 1:
        raise CheckpointError(f"{path}: unexpected entry {value!r} in the architecture")
    (tag, content), = value.items()
    if tag == "__tuple__":
        return tuple(_decode(v, path) for v in content)
    if tag == "__dict__":
        return {k: _decode(v, path) for k, v in content.items()}
    if tag == "__dtype__":
        return np.dtype(content)
    if tag == "__layer__":
        return build_layer(content, path)
    if tag == "__callable__":
        obj = _resolve(content, path)
        if not callable(obj):
            raise CheckpointError(f"{path}: {content!r} is not callable")
        return obj
    raise CheckpointError(f"{path}: unknown tag {tag!r} in the architecture")


def build_layer(spec: dict, path: str) -> Layer:
    """Rebuild a layer from :func:`layer_spec` output (constructor only; weights come later)."""
    if not isinstance(spec, dict) or "class" not in spec:
        raise CheckpointError(f"{path}: bad layer entry {spec!r} in the architecture")
    cls = _resolve(spec["class"], path)
    if not (isinstance(cls, type) and issubclass(cls, Layer)):
        raise CheckpointError(f"{path}: {spec['class']!r} is not a layers.base.Layer subclass; refusing to build it")
    args = _decode(spec.get("args", []), path)
    kwargs = {k: _decode(v, path) for k, v in spec.get("kwargs", {}).items()}
    try:
        return cls(*args, **kwargs)
    except Exception as exc:
        raise CheckpointError(f"{path}: cannot rebuild {spec['class']} from the saved arguments: {exc}") from exc


# -- arrays -------------------------------------------------------------------------
def _replace(layer, params, buffers) -> None:
    """Replace ``layer``'s params and buffers by the given arrays, rebinding attribute aliases."""
    if hasattr(layer, "layers"):  # a Sequential: hand each sub-layer its slice
        start = 0
        for i, sub in enumerate(layer.layers):
            count = len(getattr(sub, "params", []) or [])
            prefix = f"{i}."
            sub_buffers = {k[len(prefix):]: v for k, v in buffers.items() if k.startswith(prefix)}
            _replace(sub, params[start:start + count], sub_buffers)
            start += count
        return
    mapping = {id(old): new for old, new in zip(layer.params, params)}
    mapping.update({id(layer.buffers[k]): v for k, v in buffers.items()})
    layer._replace_arrays(lambda a: mapping.get(id(a), a))


def save_model(model, path) -> str:
    """Write ``model`` (architecture, parameters, buffers) to ``path`` atomically; return the path.

    The file is written exactly at ``path`` (no ``.npz`` is appended).

    Raises
    ------
    TypeError
        A layer is not a Layer subclass or has a constructor argument that
        cannot be stored (the message names it).
    FileNotFoundError
        The destination directory does not exist.
    """
    path = os.fspath(path)
    architecture = json.dumps({"version": VERSION, "model": layer_spec(model)})
    arrays = {"format": np.array(FORMAT), "architecture": np.array(architecture)}
    for k, p in enumerate(model.params):
        arrays[f"param.{k}"] = backend.to_numpy(p)
    for key, b in model.buffers.items():
        arrays[f"buffer.{key}"] = backend.to_numpy(b)

    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"Sequential.save: directory {directory!r} does not exist (path {path!r})")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def _read_all(path: str) -> dict:
    """Every entry of the ``.npz`` as NumPy arrays, or CheckpointError naming the path."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"Sequential.load: no such file: {path!r}")
    try:
        data = np.load(path, allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise CheckpointError(f"Sequential.load: {path!r} is a single .npy array, not a camadas checkpoint")
        with data:
            return {key: data[key] for key in data.files}
    except CheckpointError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise CheckpointError(
            f"Sequential.load: {path!r} is not a readable camadas checkpoint (truncated or not a .npz file): "
            f"{type(exc).__name__}: {exc}"
        ) from exc


def load_model(path, device=None):
    """Rebuild the model saved at ``path`` on ``device`` (default: the current device).

    Raises
    ------
    FileNotFoundError
        ``path`` does not exist.
    CheckpointError (a ValueError)
        Truncated, foreign or incompatible file; the message names ``path``.
        No model is returned in any failure.
    """
    path = os.fspath(path)
    entries = _read_all(path)
    fmt = entries.get("format")
    if fmt is None or fmt.dtype.kind != "U" or str(fmt) != FORMAT:
        raise CheckpointError(f"Sequential.load: {path!r} is not a camadas checkpoint (no 'format' entry {FORMAT!r})")
    try:
        architecture = json.loads(str(entries["architecture"]))
        version = architecture["version"]
        spec = architecture["model"]
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"Sequential.load: {path!r} has no readable architecture: {exc}") from exc
    if version != VERSION:
        raise CheckpointError(f"Sequential.load: {path!r} has format version {version}; this camadas reads {VERSION}")

    where = f"Sequential.load: {path!r}"
    dev = backend.get_device() if device is None else backend.resolve_device(device)
    with backend.use_device(dev):  # layers allocate their arrays (and generators) on dev
        model = build_layer(spec, where)
    params = model.params
    saved = [entries.get(f"param.{k}") for k in range(len(params))]
    n_saved = sum(k.startswith("param.") for k in entries)
    if any(a is None for a in saved) or n_saved != len(params):
        raise CheckpointError(
            f"{where}: the architecture has {len(params)} parameter arrays but the file holds {n_saved}"
        )
    for k, (p, a) in enumerate(zip(params, saved)):
        if tuple(p.shape) != tuple(a.shape):
            raise CheckpointError(f"{where}: param.{k}: expected shape {tuple(p.shape)}, the file holds {a.shape}")
    buffers = {}
    for key, b in model.buffers.items():
        a = entries.get(f"buffer.{key}")
        if a is None or tuple(a.shape) != tuple(b.shape):
            found = None if a is None else a.shape
            raise CheckpointError(f"{where}: buffer {key!r}: expected shape {tuple(b.shape)}, the file holds {found}")
        buffers[key] = backend.to_device(a, dev)
    _replace(model, [backend.to_device(a, dev) for a in saved], buffers)
    return model
