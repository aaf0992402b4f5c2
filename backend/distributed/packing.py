"""Packing arrays into one contiguous buffer per dtype and device, so that one collective call moves them all.

A collective call has a fixed cost (latency, a kernel launch, a Python call),
so many small gradients are sent as one buffer. Arrays that already tile one
contiguous stretch of memory (the views :func:`optimizers.flatten_parameters`
makes, or a single 1-D buffer) are reduced where they are, without a copy;
others are copied into a staging buffer and back (:class:`StagingBuffers`).
"""

from __future__ import annotations

import numpy as np

from ..arrays import data_address, device_of, get_array_module, memory_owner


def buffer_key(a) -> tuple:
    """``(device, dtype)`` of ``a``: arrays with one key can share one buffer."""
    return (device_of(a), np.dtype(a.dtype).str)


def group_arrays(arrays) -> dict:
    """``{buffer_key: [positions]}`` of the arrays in ``arrays`` (``None`` entries left out), in order."""
    groups: dict = {}
    for i, a in enumerate(arrays):
        if a is not None:
            groups.setdefault(buffer_key(a), []).append(i)
    return groups


def contiguous_span(arrays):
    """The 1-D array covering exactly the memory of ``arrays`` when they tile one contiguous stretch; else None.

    The arrays must be C-contiguous views of one owner of their dtype,
    disjoint (the same array twice is allowed and counted once) and without
    gaps between them, in any order. The span is a view of that owner, so an
    operation on it in place changes every array.

    Parameters
    ----------
    arrays : list of arrays
        NumPy or CuPy arrays of one dtype and device (see :func:`group_arrays`).

    Returns
    -------
    1-D array or None
    """
    if not arrays:
        return None
    first = arrays[0]
    owner = memory_owner(first)
    if type(owner) is not type(first) or owner.dtype != first.dtype or not owner.flags.c_contiguous:
        return None
    itemsize = first.dtype.itemsize
    spans = set()
    for a in arrays:
        if type(a) is not type(first) or a.dtype != first.dtype or not a.flags.c_contiguous \
                or memory_owner(a) is not owner:
            return None
        spans.add((data_address(a), data_address(a) + a.size * itemsize))
    ordered = sorted(spans)
    for (_, end), (start, _) in zip(ordered, ordered[1:]):
        if start != end:
            return None  # a gap, or two arrays overlapping without being the same
    offset, remainder = divmod(ordered[0][0] - data_address(owner), itemsize)
    if remainder:
        return None
    return owner.reshape(-1)[offset:offset + (ordered[-1][1] - ordered[0][0]) // itemsize]


class StagingBuffers:
    """One reusable 1-D buffer per ``(device, dtype)``, grown on demand, for arrays that do not tile one."""

    def __init__(self):
        self._buffers: dict = {}

    def pack(self, arrays):
        """Copy ``arrays`` (one key) one after another into the staging buffer; return its used part."""
        first = arrays[0]
        total = sum(int(a.size) for a in arrays)
        key = buffer_key(first)
        buffer = self._buffers.get(key)
        if buffer is None or buffer.size < total:
            xp = get_array_module(first)
            if xp is np:
                buffer = np.empty(total, first.dtype)
            else:
                with first.device:
                    buffer = xp.empty(total, first.dtype)
            self._buffers[key] = buffer
        packed = buffer[:total]
        offset = 0
        for a in arrays:
            packed[offset:offset + a.size] = a.reshape(-1)
            offset += int(a.size)
        return packed

    @staticmethod
    def unpack(packed, arrays) -> None:
        """Copy the consecutive pieces of ``packed`` back into ``arrays``, in place."""
        offset = 0
        for a in arrays:
            a[...] = packed[offset:offset + a.size].reshape(a.shape)
            offset += int(a.size)
