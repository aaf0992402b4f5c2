"""Data-parallel training with any optimizer: average the gradients over the ranks, then step (ChainerMN's
``create_multi_node_optimizer``).

Every rank holds the whole model and computes the gradient of its own shard
of the batch; one all-reduce per ``(device, dtype)`` makes every rank's
gradient the mean over the ranks (the gradient of the whole batch, when the
shards are equal and the loss is a mean), so every rank applies the same
update and the models stay identical. The parameters are broadcast from rank
0 before the first update, so the ranks also start identical.
"""

from __future__ import annotations

import warnings

import numpy as np

import backend
from backend.arrays import data_address, memory_owner
from backend.distributed.base import Communicator
from backend.distributed.packing import contiguous_span, group_arrays

from .base import Optimizer, _check_lists, _check_mask
from .runs import _zeros


class DataParallel:
    """Wrap ``optimizer`` so that every :meth:`step` first averages the gradients over the ranks.

    ``step(params, grads)``: ``g <- (1/size) Σ_ranks g`` (one collective call
    per device and dtype), then ``optimizer.step(params, g)``. Any optimizer of
    the library works unchanged, and so do its penalties and clipping, which
    see the averaged gradient (as they would in one process on the whole batch).

    The ranks must start from the same parameters: call
    :meth:`broadcast_parameters` before the first forward pass (``fit`` does).
    Otherwise the first ``step`` broadcasts them, and when they differed on
    some rank (its gradients were computed at other weights) that step's update
    is skipped on every rank, with a warning (ChainerMN's first update).

    Gradients that already tile one buffer per device and dtype (the views of
    :meth:`optimizers.FlatParameters.pack_grads`) are averaged where they are.
    Others are copied once into this wrapper's buffers, laid out like the
    parameters (after :func:`optimizers.flatten_parameters`, exactly their
    layout, so the fused step reads them without a further copy).

    Parameters
    ----------
    optimizer : Optimizer or str
        Any object with ``step(params, grads)``, or a name for
        :func:`optimizers.get_optimizer`.
    communicator : backend.distributed.Communicator
        From :func:`backend.distributed.create_communicator`.

    Attributes
    ----------
    optimizer : Optimizer
        The wrapped optimizer (its ``state`` and ``iterations`` are the ones
        that count); ``learning_rate``, ``schedule``, ``iterations``,
        ``last_learning_rate``, ``state`` and ``reset()`` read and write it.
    communicator : Communicator
    needs_broadcast : bool
        True until the parameters have been broadcast from rank 0.

    Notes
    -----
    ``fit(..., optimizer=DataParallel(...))`` and ``fit(...,
    communicator=...)`` are the same: fit averages through :meth:`reduce` and
    also shards every batch and reduces the logs over the ranks.
    """

    def __init__(self, optimizer, communicator):
        from . import get_optimizer

        if isinstance(optimizer, DataParallel):
            raise TypeError("DataParallel: optimizer: got a DataParallel already; wrap the optimizer once")
        if isinstance(optimizer, str):
            optimizer = get_optimizer(optimizer)
        if not callable(getattr(optimizer, "step", None)):
            raise TypeError(f"DataParallel: optimizer: expected an optimizer with step(params, grads) or a name, got "
                            f"{type(optimizer).__name__}")
        if not isinstance(communicator, Communicator):
            raise TypeError(f"DataParallel: communicator: expected a backend.distributed.Communicator (from "
                            f"create_communicator), got {type(communicator).__name__}")
        self.optimizer = optimizer
        self.communicator = communicator
        self.needs_broadcast = True
        self._layout_key: tuple | None = None
        self._layout_params: list = []
        self._views: list = []
        self._buffers: list = []

    # -- the optimizer's attributes, read and written through ---------------------------------------
    @property
    def learning_rate(self):
        """The wrapped optimizer's ``learning_rate`` (ReduceLROnPlateau sets it here)."""
        return self.optimizer.learning_rate

    @learning_rate.setter
    def learning_rate(self, value):
        self.optimizer.learning_rate = value

    @property
    def schedule(self):
        """The wrapped optimizer's schedule (None for a constant rate)."""
        return getattr(self.optimizer, "schedule", None)

    @property
    def iterations(self) -> int:
        """The wrapped optimizer's count of steps."""
        return getattr(self.optimizer, "iterations", 0)

    @property
    def last_learning_rate(self):
        """The rate of the wrapped optimizer's latest update."""
        return getattr(self.optimizer, "last_learning_rate", None)

    @property
    def state(self) -> dict:
        """The wrapped optimizer's per-parameter state."""
        return getattr(self.optimizer, "state", {})

    def reset(self):
        """Reset the wrapped optimizer (and broadcast the parameters again at the next step); returns self."""
        if callable(getattr(self.optimizer, "reset", None)):
            self.optimizer.reset()
        self.needs_broadcast = True
        return self

    # -- the protocol ------------------------------------------------------------------------------
    def step(self, params, grads, weight_mask=None) -> None:
        """Broadcast ``params`` from rank 0 (first call only), average ``grads`` over the ranks, then step.

        Parameters
        ----------
        params, grads, weight_mask
            As for :meth:`optimizers.Optimizer.step`; the same on every rank
            (shapes, dtypes, order), the gradients being each rank's own.

        Raises
        ------
        TypeError, ValueError
            As :meth:`optimizers.Optimizer.step`, before any communication.

        Warns
        -----
        UserWarning
            At the first step, when the ranks' parameters differed and were
            not broadcast before (that update is skipped).
        """
        name = f"DataParallel({type(self.optimizer).__name__})"
        params, grads = _check_lists(params, grads, name)
        weight_mask = _check_mask(weight_mask, len(params), name)
        if self.needs_broadcast and self._late_broadcast(params):
            return
        grads = self.reduce(params, grads)
        if isinstance(self.optimizer, Optimizer):
            self.optimizer.step(params, grads, weight_mask=weight_mask)
        else:
            self.optimizer.step(params, grads)

    def broadcast_parameters(self, params) -> None:
        """Copy rank 0's ``params`` into every rank's, in place (one call per device and dtype).

        Call it once before training (``model.params``), so that every rank
        starts from rank 0's weights.
        """
        self.communicator.broadcast(list(params), root=0)
        self.needs_broadcast = False

    def _late_broadcast(self, params) -> bool:
        """Broadcast at the first step; True (skip this update) when some rank's parameters changed."""
        before = [backend.get_array_module(p).array(p, copy=True) for p in params]
        self.broadcast_parameters(params)
        changed = [not bool(backend.get_array_module(p).array_equal(p, b)) for p, b in zip(params, before)]
        flags = np.array([any(changed)], np.int64)
        self.communicator.allreduce_sum([flags])
        if not flags[0]:
            return False
        warnings.warn("DataParallel.step: the ranks started from different parameters; rank 0's were broadcast and "
                      "this first update was skipped (its gradients were computed at other weights). Call "
                      "broadcast_parameters(model.params) before the first forward pass", stacklevel=3)
        return True

    def reduce(self, params, grads) -> list:
        """The mean over the ranks of each rank's ``grads``, aligned with ``params`` (``None`` entries kept).

        The returned arrays are the given ones when they tile one buffer per
        device and dtype (averaged in place), else views of this wrapper's
        buffers (valid until the next call); the given arrays are then not
        modified.
        """
        grads = list(grads)
        if _tile_buffers(grads):
            return self.communicator.allreduce_mean(grads)
        views = self._layout(params, grads)
        for view, g in zip(views, grads):
            if g is not None and g is not view:
                view[...] = g
        self.communicator.allreduce_mean(self._buffers)
        return [None if g is None else view for view, g in zip(views, grads)]

    def _layout(self, params, grads) -> list:
        """Views of one gradient buffer per (device, dtype), aligned with ``params``; built once per parameter list."""
        key = tuple(g is None for g in grads)
        if self._layout_key == key and len(self._layout_params) == len(params) \
                and all(a is b for a, b in zip(self._layout_params, params)):
            return self._views
        views: list = [None] * len(params)
        buffers = []
        for positions in group_arrays([p if g is not None else None for p, g in zip(params, grads)]).values():
            members = [params[i] for i in positions]
            span = contiguous_span(members)
            total = int(span.size) if span is not None else sum(int(p.size) for p in members)
            buffer = _zeros(total, members[0])
            if span is not None:        # the parameters' own layout (flatten_parameters)
                offsets = [(data_address(p) - data_address(span)) // span.dtype.itemsize for p in members]
            else:
                offsets, running = [], 0
                for p in members:
                    offsets.append(running)
                    running += int(p.size)
            for i, p, offset in zip(positions, members, offsets):
                views[i] = buffer[offset:offset + p.size].reshape(p.shape)
            buffers.append(buffer)
        self._layout_key, self._layout_params = key, list(params)
        self._views, self._buffers = views, buffers
        return views

    def get_config(self) -> dict:
        """The wrapped optimizer's configuration, and the communicator."""
        config = self.optimizer.get_config() if callable(getattr(self.optimizer, "get_config", None)) else {}
        return {**config, "communicator": repr(self.communicator)}

    def __repr__(self) -> str:
        return f"DataParallel({self.optimizer!r}, {self.communicator!r})"



def _tile_buffers(grads) -> bool:
    """True when the gradients of each (device, dtype) are views tiling one buffer (FlatParameters.pack_grads)."""
    for positions in group_arrays(grads).values():
        members = [grads[i] for i in positions]
        if any(memory_owner(g) is g for g in members) or contiguous_span(members) is None:
            return False
    return True
