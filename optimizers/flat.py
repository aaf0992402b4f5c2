"""One contiguous buffer per dtype and device for all of a model's parameters (PyTorch's fused/multi-tensor path).

After :func:`flatten_parameters`, every parameter is a view of its group's
1-D buffer and every layer's attributes (``Dense.W``) point at those views
(rebound through :meth:`layers.base.Layer.map_arrays`), so the model works as
before, while an optimizer step is one kernel call per buffer (per run of one
weight-decay flag, for AdamW) instead of one per parameter, and the optimizer
state lives in buffers of the same layout. The gradient buffers have the same
layout too: what one all-reduce of data-parallel training wants.

Nothing else changes: ``model.params`` lists the views in the same order,
checkpoints save them as arrays, and a model whose parameters are later
replaced (``to(device)``, ``astype``, loading) simply has separate arrays
again; the optimizer notices and carries its state over.
"""

from __future__ import annotations

import numpy as np

import backend


class FlatParameters:
    """The flat buffers of one model, from :func:`flatten_parameters`.

    Attributes
    ----------
    params : list of arrays
        The views, aligned with ``model.params`` when it was flattened.
    names : list of str
        ``layers.base.param_names(model)``, aligned with ``params``.
    buffers : list of 1-D arrays
        One per (dtype, device): the parameters' memory (weights first, then
        the parameters ``layers.base.weight_mask`` leaves out, each in model order).
    grad_buffers : list of 1-D arrays
        Zeros of the same sizes and layout, for the gradients.
    grads : list of arrays
        Views of ``grad_buffers`` aligned with ``params`` (shapes of the params).
    """

    def __init__(self, params, names, buffers, grad_buffers, grads):
        self.params, self.names = params, names
        self.buffers, self.grad_buffers, self.grads = buffers, grad_buffers, grads

    def pack_grads(self, grads) -> list:
        """Copy ``grads`` (aligned with :attr:`params`) into :attr:`grads`; return those views.

        ``None`` entries stay None (a frozen parameter); a gradient that already
        is its view is not copied. Passing the returned list to
        ``optimizer.step`` costs no further copy.
        """
        grads = list(grads)
        if len(grads) != len(self.grads):
            raise ValueError(f"pack_grads: grads: expected {len(self.grads)} gradients, got {len(grads)}")
        for i, (view, g) in enumerate(zip(self.grads, grads)):
            if g is not None and tuple(g.shape) != tuple(view.shape):
                raise ValueError(f"pack_grads: grads[{i}]: expected shape {tuple(view.shape)}, got {tuple(g.shape)}")
        out = []
        for view, g in zip(self.grads, grads):
            if g is None:
                out.append(None)
                continue
            if g is not view:
                view[...] = g
            out.append(view)
        return out

    def __repr__(self) -> str:
        sizes = ", ".join(f"{b.size} {b.dtype} on {backend.device_of(b)}" for b in self.buffers)
        return f"FlatParameters({len(self.params)} params in {len(self.buffers)} buffer(s): {sizes})"


def _leaves_without_map_arrays(model):
    from layers.base import sublayers, walk

    return [f"{path or 'model'} ({type(layer).__name__})" for path, layer in walk(model)
            if not sublayers(layer) and getattr(layer, "params", None)
            and not callable(getattr(layer, "map_arrays", None))]


def _empty(size, like):
    if isinstance(like, np.ndarray):
        return np.empty(size, like.dtype)
    with like.device:
        return backend.get_array_module(like).empty(size, like.dtype)


def flatten_parameters(model) -> FlatParameters:
    """Move every parameter of ``model`` into one contiguous buffer per dtype and device; return them.

    Each parameter is copied into a view of its buffer and the layers are
    rebound to the views (:meth:`~layers.base.Layer.map_arrays`), so
    ``Dense.W`` is that view from now on (references taken before this call
    still point at the old arrays). A parameter shared by two layers stays
    shared. Call it before ``fit`` (or before creating the optimizer's state:
    existing state is carried over either way). Optimizers need nothing more:
    they detect the layout and update each buffer with one kernel call.

    Parameters
    ----------
    model : Layer
        A model (``Sequential``, a block, a layer) whose leaves with
        parameters are :class:`~layers.base.Layer` subclasses.

    Returns
    -------
    FlatParameters

    Raises
    ------
    ValueError
        The model has no parameters.
    TypeError
        A layer with parameters cannot rebind them (no ``map_arrays``: the
        book's own classes that do not subclass Layer), or a parameter is not
        a float array. Nothing is changed then.
    """
    from layers.base import param_names, weight_mask

    params = list(getattr(model, "params", None) or [])
    if not params:
        raise ValueError(f"flatten_parameters: model: {type(model).__name__} has no parameters")
    missing = _leaves_without_map_arrays(model)
    if missing or not callable(getattr(model, "map_arrays", None)):
        raise TypeError(f"flatten_parameters: model: these layers hold params but have no map_arrays(), so their "
                        f"attributes cannot be rebound: {', '.join(missing) or type(model).__name__}; subclass "
                        "layers.base.Layer")
    for i, p in enumerate(params):
        backend.check_float_array(p, f"params[{i}]", where="flatten_parameters")
    names = param_names(model)
    weights = weight_mask(model)

    groups = {}  # (dtype, device) -> unique parameters, weights first
    seen = set()
    for _, i in sorted((not weights[i], i) for i in range(len(params))):
        p = params[i]
        if id(p) in seen:
            continue
        seen.add(id(p))
        groups.setdefault((p.dtype.str, backend.device_of(p)), []).append(p)

    views, buffers, grad_buffers, grad_views = {}, [], [], {}
    for members in groups.values():
        total = sum(int(p.size) for p in members)
        buffer, grad_buffer = _empty(total, members[0]), _empty(total, members[0])
        grad_buffer[...] = 0
        offset = 0
        for p in members:
            view = buffer[offset:offset + p.size].reshape(p.shape)
            view[...] = p
            views[id(p)] = view
            grad_views[id(p)] = grad_buffer[offset:offset + p.size].reshape(p.shape)
            offset += int(p.size)
        buffers.append(buffer)
        grad_buffers.append(grad_buffer)

    model.map_arrays(lambda a: views.get(id(a), a))
    flat = [views[id(p)] for p in params]
    now = list(model.params)
    if len(now) != len(flat) or any(a is not b for a, b in zip(now, flat)):
        originals = {id(views[id(p)]): p for p in params}
        model.map_arrays(lambda a: originals.get(id(a), a))  # put the old arrays back
        raise TypeError("flatten_parameters: model: after map_arrays, model.params are not the new views (a layer "
                        "rebuilds its params list itself); nothing was changed")
    return FlatParameters(flat, names, buffers, grad_buffers, [grad_views[id(p)] for p in params])
