"""How one step's parameters map onto kernel calls: runs of a flat buffer, or one array at a time.

Parameters that are views tiling one contiguous 1-D buffer (what
:func:`optimizers.flatten_parameters` makes) are updated by one kernel call per
*run*, a stretch of the buffer whose parameters all get a gradient and share one
weight-decay flag; their optimizer state lives in buffers of the same layout
(``optimizer.state[i]["m"]`` is a view) and their gradients are packed into a
gradient buffer of that layout, unless they already are views of one (then
nothing is copied). Any other parameter is a run of its own.
"""

from __future__ import annotations

import itertools
import operator

import numpy as np

import backend
from backend.arrays import data_address as address
from backend.arrays import memory_owner as root


def _zeros(shape, like, dtype=None):
    """Zeros of ``shape`` on ``like``'s device, in ``dtype`` (default ``like``'s)."""
    dtype = like.dtype if dtype is None else dtype
    if isinstance(like, np.ndarray):
        return np.zeros(shape, dtype)
    with like.device:
        return backend.get_array_module(like).zeros(shape, dtype)


def _convert(array, like):
    """``array`` on ``like``'s device and in its dtype (no copy when it already is)."""
    array = backend.to_device(array, backend.device_of(like))
    return array if array.dtype == like.dtype else array.astype(like.dtype)


class SingleRun:
    """One parameter array, its state arrays and its decay flag."""

    def __init__(self, index, param, states, decayed):
        self.indices = (index,)
        self.param, self.states, self.decayed = param, states, decayed

    def gradient(self, grads):
        """This run's gradient: the one array of ``grads`` at its parameter's position."""
        return grads[self.indices[0]]


class FlatRun:
    """Elements ``[start, stop)`` of a :class:`FlatGroup`'s buffer: consecutive parameters of one decay flag."""

    def __init__(self, group, start, stop, indices, decayed, states):
        self.group, self.indices, self.decayed = group, tuple(indices), decayed
        self.start, self.stop = start, stop
        self.param = group.buffer[start:stop]
        self.states = [s[start:stop] for s in states]

    def gradient(self, grads):
        """This run's gradient: elements ``[start, stop)`` of the group's gathered gradient buffer."""
        return self.group.source[self.start:self.stop]


class FlatGroup:
    """Parameters (by position in the step's list) tiling the 1-D ``buffer`` at ``offsets`` (in elements)."""

    def __init__(self, buffer, members, offsets, params):
        self.buffer, self.members, self.offsets = buffer, members, offsets
        self.shapes = {i: tuple(params[i].shape) for i in members}
        self.grad_buffer = None
        self.grad_views = None
        self.source = None                       # this step's gradients in this layout (gather)
        self._source, self._source_grads = None, None

    def view(self, array, i):
        """The view of the 1-D ``array`` (this group's layout) holding parameter ``i``'s elements."""
        offset = self.offsets[i]
        return array[offset:offset + int(np.prod(self.shapes[i], dtype=np.int64))].reshape(self.shapes[i])

    def state_buffers(self, state, slots) -> list:
        """One buffer per state slot in this layout; ``state[i][slot]`` made views of it (values kept)."""
        buffers = []
        for slot in slots:
            existing = [state.get(i, {}).get(slot) for i in self.members]
            buf = self._common_buffer(existing)
            if buf is None:
                buf = _zeros(self.buffer.size, self.buffer)
                for i, old in zip(self.members, existing):
                    if old is not None:
                        self.view(buf, i)[...] = _convert(old, self.buffer)
            for i in self.members:
                state.setdefault(i, {})[slot] = self.view(buf, i)
            buffers.append(buf)
        for i in self.members:
            state.setdefault(i, {})["shape"] = self.shapes[i]
        return buffers

    def _common_buffer(self, arrays):
        """The 1-D buffer that ``arrays`` (one per member) already tile in this layout, else None."""
        if any(a is None for a in arrays):
            return None
        buf = root(arrays[0])
        if (type(buf) is not type(self.buffer) or buf.ndim != 1 or buf.size != self.buffer.size
                or buf.dtype != self.buffer.dtype or backend.device_of(buf) != backend.device_of(self.buffer)):
            return None
        itemsize = buf.dtype.itemsize
        for i, a in zip(self.members, arrays):
            if root(a) is not buf or not a.flags.c_contiguous or \
                    address(a) - address(buf) != self.offsets[i] * itemsize:
                return None
        return buf

    def runs(self, decayed, states) -> list:
        """Maximal stretches of consecutive members with one decay flag, as :class:`FlatRun`."""
        order = sorted(self.members, key=self.offsets.__getitem__)
        runs, current = [], [order[0]]
        for i in order[1:]:
            previous = current[-1]
            end = self.offsets[previous] + int(np.prod(self.shapes[previous], dtype=np.int64))
            if self.offsets[i] == end and decayed[i] == decayed[previous]:
                current.append(i)
            else:
                runs.append(current)
                current = [i]
        runs.append(current)
        out = []
        for members in runs:
            last = members[-1]
            stop = self.offsets[last] + int(np.prod(self.shapes[last], dtype=np.int64))
            out.append(FlatRun(self, self.offsets[members[0]], stop, members, decayed[members[0]], states))
        return out

    def gather(self, grads) -> None:
        """Set :attr:`source` to a 1-D buffer holding every member's gradient of this step in this layout.

        The gradients' own buffer when they are views of one in this layout (no
        copy: :meth:`optimizers.FlatParameters.pack_grads`), else this group's
        gradient buffer after copying them in.
        """
        members = self.members
        if self._source is not None and all(grads[i] is g for i, g in zip(members, self._source_grads)):
            self.source = self._source          # the same views of the same buffer: nothing to check again
            return
        candidate = self._common_buffer([grads[i] for i in members])
        if candidate is not None:
            self._source, self._source_grads = candidate, [grads[i] for i in members]
            self.source = candidate
            return
        if self.grad_buffer is None:
            self.grad_buffer = _zeros(self.buffer.size, self.buffer)
            self.grad_views = {i: self.view(self.grad_buffer, i) for i in members}
        for i in members:
            self.grad_views[i][...] = grads[i]
        self.source = self.grad_buffer


def _flat_groups(params, stepped):
    """{id(buffer): (buffer, [i, ...])} for the stepped parameters that are views of one 1-D buffer."""
    groups = {}
    for i in stepped:
        p = params[i]
        buf = root(p)
        if buf is p or buf.ndim != 1 or not buf.flags.c_contiguous or buf.dtype != p.dtype \
                or not p.flags.c_contiguous:
            continue
        groups.setdefault(id(buf), (buf, []))[1].append(i)
    return groups


def _offsets(buffer, members, params):
    """{i: offset in elements} when the members are disjoint views of ``buffer``; None otherwise."""
    itemsize = buffer.dtype.itemsize
    spans = []
    for i in members:
        start, rem = divmod(address(params[i]) - address(buffer), itemsize)
        if rem:
            return None
        spans.append((start, start + params[i].size, i))
    spans.sort()
    if any(a[1] > b[0] for a, b in itertools.pairwise(spans)):
        return None  # overlapping (the same parameter twice): one array at a time
    return {i: start for start, _, i in spans}


class Plan:
    """The runs of one list of parameters, reused while the same arrays come back in the same order.

    Each run has ``flag``, a one-element view of an int32 array (one per
    device, one slot per run) that its kernel sets on a non-finite value.
    """

    def __init__(self, params, key, runs):
        self.params, self.key, self.runs = list(params), key, runs
        self.groups = list({id(run.group): run.group for run in runs if isinstance(run, FlatRun)}.values())
        by_device = {}
        for run in runs:
            by_device.setdefault(_device_key(run.param), []).append(run)
        self.flags = []
        for members in by_device.values():
            flags = _zeros(len(members), members[0].param, np.int32)
            for k, run in enumerate(members):
                run.flag = flags[k:k + 1]
            self.flags.append((flags, members))

    def matches(self, params, key) -> bool:
        """True when ``params`` are the very arrays (by identity, in order) this plan was built for, with ``key``."""
        return self.key == key and len(self.params) == len(params) and all(map(operator.is_, self.params, params))

    def gather(self, grads) -> None:
        """Bring this step's gradients into every flat group's layout (once per group, before the runs)."""
        for group in self.groups:
            group.gather(grads)

    def clear_flags(self) -> None:
        """Reset every run's non-finite flag to 0 before a step."""
        for flags, _ in self.flags:
            flags.fill(0)

    def flagged(self) -> list:
        """Positions of the parameters whose run stored a non-finite value in this step (one read per device)."""
        out = []
        for flags, members in self.flags:
            values = flags if isinstance(flags, np.ndarray) else flags.get()
            if np.count_nonzero(values):
                out += [i for run, value in zip(members, values) if value for i in run.indices]
        return out


def _device_key(array):
    return None if isinstance(array, np.ndarray) else backend.device_of(array)


def plan_runs(params, stepped, decayed, state, slots) -> list:
    """The kernel calls of a step: :class:`FlatRun` for flat buffers, :class:`SingleRun` for the rest.

    Creates the state arrays that do not exist yet (zeros), lays the state of
    flat groups out as views of one buffer per slot, and moves state arrays to
    their parameter's device and dtype (after ``to()``/``astype()``). The
    caller has already checked the shapes.

    Parameters
    ----------
    params : list of arrays
    stepped : list of int
        Positions of the parameters that have a gradient this step.
    decayed : list of bool
        Per parameter: does AdamW's decoupled decay apply (all False otherwise)?
    state : dict
        The optimizer's ``state``, keyed by position (modified).
    slots : tuple of str
        Names of the state arrays (``("m", "v")`` for Adam).
    """
    runs, grouped = [], set()
    for buffer, members in _flat_groups(params, stepped).values():
        if len(members) < 2:
            continue
        offsets = _offsets(buffer, members, params)
        if offsets is None:
            continue
        group = FlatGroup(buffer, members, offsets, params)
        runs += group.runs(decayed, group.state_buffers(state, slots))
        grouped.update(members)
    for i in stepped:
        if i in grouped:
            continue
        p = params[i]
        entry = state.setdefault(i, {})
        entry["shape"] = tuple(p.shape)
        states = []
        for slot in slots:
            old = entry.get(slot)
            entry[slot] = _zeros(p.shape, p) if old is None else _convert(old, p)
            states.append(entry[slot])
        runs.append(SingleRun(i, p, states, decayed[i]))
    return runs
