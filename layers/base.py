"""The Layer protocol of the book (section 6.2 and every code block of chapters 7, 8 and 22).

A layer is anything with::

    forward(input_data)  -> output
    backward(grad_output) -> (grad_input, param_grads)

``param_grads`` is a list aligned with ``layer.params`` (``None`` when the
layer has no parameters). The book's code blocks subclass this class as
printed (``from layers.base import Layer``; ``super().__init__()`` with no
arguments), and they work unchanged inside :class:`layers.Sequential`.

Blocks made of other layers (Sequential, and later residual and branching
blocks) list their children with :meth:`Layer.sublayers`; their ``params`` is
the concatenation of their children's, in that order. :func:`walk` visits a
whole tree, which is all the training loop, checkpoints and diagnostics need.

Checks once, not every call: a layer validates its arguments in every public
``forward``/``backward`` call, except inside :func:`checks_done`, the block a
caller opens after it validated the same shapes, dtypes and device once (the
training loop does, after its first checked step of each batch shape).
Work nobody reads: inside :func:`input_gradient_unused` a layer may skip its
``grad_input`` (the first layer of a model trained by ``fit``).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar

import numpy as np

import backend
from backend.checks import check_bool, check_dtype

from .saving.registry import register_library_class

#: Attribute names of parameters that are not weights (no L1/L2 penalty, no weight decay).
BIAS_NAMES = frozenset({"b", "bias", "biases", "beta", "gamma"})

_CHECKS_DONE: ContextVar[bool] = ContextVar("camadas_checks_done", default=False)

#: ``checks_skipped()`` is True inside a :func:`checks_done` block: a layer then skips the argument checks of
#: its ``forward``/``backward`` (a ContextVar read: about 40 ns, once per call).
checks_skipped = _CHECKS_DONE.get


@contextmanager
def checks_done():
    """A block in which layers and losses trust their arguments: the caller has validated them once.

    Inside it, ``forward``/``backward`` skip the checks that only look at
    their arguments' types, dtypes, shapes and devices (``check_input``,
    feature counts, ``grad_output`` shapes, a block's checks of its children's
    results, a loss's per-batch target check) and compute exactly what they
    compute outside it: results are bit-identical. A layer reads
    :func:`checks_skipped` to know; layers that do not (the book's own
    classes, a user's layers) simply keep checking.

    The contract is the caller's: every call inside the block gets arguments
    of the shapes, dtypes and device that already passed the checks (the
    training loop runs the first step of each batch signature outside the
    block, and the targets were checked once on the whole data set). A wrong
    argument inside the block is not reported clearly (it may fail deep in a
    kernel, or not at all). Thread- and task-local (a ContextVar): other
    threads keep their checks. Nesting is allowed.

    Example
    -------
    >>> with layers.base.checks_done():           # doctest: +SKIP
    ...     out = model.forward(x)                  # x: the shape/dtype already checked once
    """
    token = _CHECKS_DONE.set(True)
    try:
        yield
    finally:
        _CHECKS_DONE.reset(token)


class Layer:
    """Base class of every layer.

    Class attribute ``integer_input`` is True for layers that take integer
    ids (Embedding): ``fit`` and ``predict`` then pass integer data to the
    model as it is instead of casting it to the model's float dtype.
    Class attribute ``embedding_table`` is True for layers whose parameters
    are embedding tables (no penalty, no weight decay: :func:`weight_mask`).

    Attributes
    ----------
    params : list of arrays
        Trainable arrays on the layer's device (``[]`` when none). Optimizers
        update them in place, so the layer's own attributes stay valid.
    training : bool
        True while training (Dropout, RReLU, NoisyReLU and BatchNormalization
        behave differently in evaluation).
    buffers : dict of str -> array
        Non-trainable state that must be saved and moved with the layer
        (BatchNormalization's running statistics).

    Every subclass defined inside camadas is registered under its class name
    (``"Dense"``), the name checkpoints store; a user's layer is saved and
    loaded once registered with :func:`layers.register_layer`.
    """

    integer_input = False
    #: True for layers whose params are embedding tables (rows looked up by id or position, not multiplied:
    #: Embedding, LearnedPositionalEmbedding, ClassToken); :func:`weight_mask` leaves them out.
    embedding_table = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        register_library_class(cls)

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        # Remember the constructor arguments so a checkpoint can rebuild the
        # layer without every subclass writing a get_config().
        obj._init_args = (args, kwargs)
        return obj

    def __init__(self):
        self.params = []
        self.training = True
        self.buffers = {}

    # -- the protocol -------------------------------------------------------
    def forward(self, input_data):
        """Compute the layer's output; cache only what ``backward`` needs."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_output):
        """Return ``(grad_input, param_grads)`` given dE/d(output)."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __call__(self, input_data):
        return self.forward(input_data)

    # -- structure ------------------------------------------------------------
    def sublayers(self) -> list:
        """The layers this one is made of (``[]`` for a plain layer; a block's children in order)."""
        return []

    # -- modes --------------------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode (``mode=False`` is :meth:`eval`) on this layer and every sublayer; returns self.

        ``mode`` must be a bool (``"no"`` is refused, not read as True).
        """
        self.training = check_bool(mode, "mode", f"{type(self).__name__}.train")
        for child in self.sublayers():
            set_mode(child, mode)
        return self

    def eval(self):
        """Set evaluation mode; returns self."""
        return self.train(False)

    # -- parameters ---------------------------------------------------------
    def count_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(int(np.prod(p.shape)) for p in getattr(self, "params", [])))

    def param_names(self) -> list:
        """A name per entry of ``params``: the attribute holding it (``"W"``, ``"b"``), else ``"params[i]"``.

        Blocks prefix their children's names with the child's index (``"0.W"``).
        """
        children = self.sublayers()
        if children:
            return [f"{i}.{name}" for i, child in enumerate(children) for name in param_names(child)]
        names = {id(v): name for name, v in vars(self).items() if name not in ("params", "buffers")}
        return [names.get(id(p), f"params[{i}]") for i, p in enumerate(getattr(self, "params", []) or [])]

    def output_shape(self, input_shape):
        """Shape of the output for an input of ``input_shape`` (batch axis included).

        The default runs a forward pass on zeros (integer ids for a block that
        starts with an Embedding) in evaluation mode; layers with cheap shape
        arithmetic override it.
        """
        modes = [(layer, getattr(layer, "training", True)) for _, layer in walk(self)]
        set_mode(self, False)
        try:
            probe = np.zeros(input_shape, dtype=np.int64 if takes_integer_input(self) else backend.get_default_dtype())
            params = self.params
            if params and backend.is_cupy_array(params[0]):
                probe = backend.to_device(probe, backend.device_of(params[0]))
            return tuple(self.forward(probe).shape)
        finally:
            restore_modes(modes)

    def map_arrays(self, convert) -> None:
        """Replace every param and buffer ``a`` by ``convert(a)``, rebinding the attributes that alias them.

        What :meth:`to`, :meth:`astype` and checkpoint loading are built on;
        a block applies it to its sublayers.
        """
        children = self.sublayers()
        if children:
            for child in children:
                child.map_arrays(convert)
            return
        params = getattr(self, "params", [])
        buffers = getattr(self, "buffers", {})
        replaced = {}
        for i, p in enumerate(params):
            new = convert(p)
            replaced[id(p)] = new
            params[i] = new
        for key, b in list(buffers.items()):
            new = convert(b)
            replaced[id(b)] = new
            buffers[key] = new
        if replaced:
            for name, value in list(vars(self).items()):
                if id(value) in replaced and name not in ("params", "buffers"):
                    setattr(self, name, replaced[id(value)])

    def to(self, device):
        """Move params and buffers to ``device`` ("cpu", "gpu", "gpu:N", "auto"); returns self."""
        dev = backend.resolve_device(device)
        self.map_arrays(lambda a: backend.to_device(a, dev))
        return self

    def astype(self, dtype):
        """Cast params and buffers to ``dtype`` (float32, or float64 for gradient checks); returns self.

        Raises
        ------
        TypeError
            ``dtype`` is not float32 or float64 (parameters must stay floats;
            float16 is refused, see :mod:`backend.dtypes`).
        """
        dtype = check_dtype(dtype, where=f"{type(self).__name__}.astype")
        self.map_arrays(lambda a: a.astype(dtype, copy=False))
        return self

    def get_config(self) -> dict:
        """Constructor arguments, used by checkpoints: ``{"args": [...], "kwargs": {...}}``."""
        args, kwargs = getattr(self, "_init_args", ((), {}))
        return {"args": list(args), "kwargs": dict(kwargs)}

    def __repr__(self) -> str:
        args, kwargs = getattr(self, "_init_args", ((), {}))
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"


_INPUT_GRADIENT_UNUSED: ContextVar = ContextVar("camadas_input_gradient_unused", default=None)


@contextmanager
def input_gradient_unused(layer):
    """A block in which nobody reads ``layer``'s ``grad_input``: its ``backward`` may return None for it.

    ``fit`` runs ``model.backward`` inside ``input_gradient_unused(model)``:
    the data are not differentiated. A layer that can skip the work asks
    :func:`input_gradient_needed` (Dense skips ``dE/dx = dE/dy W^T``, the
    largest matrix product of a first layer with many inputs); a
    :class:`~layers.Sequential` passes the fact on to its first layer, the
    only one that sees its input. Every other layer computes as usual.
    Parameter gradients are the same either way.
    """
    token = _INPUT_GRADIENT_UNUSED.set(layer)
    try:
        yield
    finally:
        _INPUT_GRADIENT_UNUSED.reset(token)


def input_gradient_needed(layer) -> bool:
    """False inside :func:`input_gradient_unused` for this very ``layer`` (then its ``grad_input`` may be None)."""
    return _INPUT_GRADIENT_UNUSED.get() is not layer


# -- the protocol for any object with forward/backward (the book's classes need not subclass Layer) ----------
def sublayers(layer) -> list:
    """``layer.sublayers()`` when it has one, else ``[]`` (objects with only forward/backward are leaves)."""
    method = getattr(layer, "sublayers", None)
    return list(method()) if callable(method) else []


def walk(layer, prefix: str = ""):
    """Yield ``(path, layer)`` for ``layer`` and every layer inside it, depth first, parents first.

    ``path`` is ``""`` for the root and ``"2.0"`` for the first child of the
    root's third child.
    """
    yield prefix, layer
    for i, child in enumerate(sublayers(layer)):
        yield from walk(child, f"{prefix}.{i}" if prefix else str(i))


def set_mode(layer, mode: bool) -> None:
    """Training (True) or evaluation (False) mode on ``layer`` and everything inside it."""
    if callable(getattr(layer, "train", None)):
        layer.train(mode)
    else:
        layer.training = bool(mode)


def restore_modes(modes) -> None:
    """Give each layer of ``[(layer, training), ...]`` its recorded mode back (only that layer's flag)."""
    for layer, mode in modes:
        layer.training = mode


def param_names(layer) -> list:
    """``layer.param_names()`` when it has one, else ``"params[i]"`` for each of its params."""
    method = getattr(layer, "param_names", None)
    if callable(method):
        return list(method())
    return [f"params[{i}]" for i in range(len(getattr(layer, "params", None) or []))]


def param_owners(layer) -> list:
    """For each of ``layer.params``: ``(path, leaf layer)`` of the layer that holds it (identity lookup)."""
    owner = {}
    for path, node in walk(layer):
        if not sublayers(node):
            for p in getattr(node, "params", None) or []:
                owner[id(p)] = (path, node)
    return [owner.get(id(p), ("", layer)) for p in (getattr(layer, "params", None) or [])]


def first_leaf(layer):
    """The first layer that sees the input: the first leaf of :func:`walk` (``layer`` itself if it has no sublayers)."""
    for _, node in walk(layer):
        if not sublayers(node):
            return node
    return layer


def takes_integer_input(layer) -> bool:
    """True when the first layer that sees the input takes integer ids (``integer_input``, e.g. Embedding)."""
    return bool(getattr(first_leaf(layer), "integer_input", False))


def weight_mask(layer) -> list:
    """For each of ``layer.params``: is it a weight (penalised by L1/L2, decayed by AdamW)?

    The one rule of the library: a parameter is a weight when

    * it has ``ndim >= 2`` (biases and per-channel vectors are not), and
    * its attribute name is not one of :data:`BIAS_NAMES` (``b``, ``bias``,
      ``biases``, and the normalization shift ``beta`` and scale ``gamma``), and
    * the layer holding it is not an embedding table (``embedding_table =
      True``: :class:`~layers.Embedding`, :class:`~layers.LearnedPositionalEmbedding`,
      :class:`~layers.ClassToken`): decaying a table pulls the rows of rare
      ids towards 0 on every step though they only get a gradient when seen.

    ``fit``'s ``l1``/``l2``, the optimizers' ``l1``/``l2`` (through the mask
    ``fit`` passes), :class:`~optimizers.AdamW`'s decay and
    :func:`optimizers.flatten_parameters` all read this function.
    """
    names = param_names(layer)
    params = getattr(layer, "params", None) or []
    owners = param_owners(layer)
    return [p.ndim >= 2 and name.rsplit(".", 1)[-1] not in BIAS_NAMES
            and not getattr(owner, "embedding_table", False)
            for p, name, (_, owner) in zip(params, names, owners)]
