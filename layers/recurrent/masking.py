"""Variable-length sequences: the mask that tells a recurrent layer which steps are real (book chapter 24).

A batch of sequences of different lengths is padded to one length ``T``; the
mask ``(B, T)`` says which steps are real (1, True) and which are padding (0).
A recurrent layer skips padded steps: the state passes through unchanged, the
output there is 0, and no gradient reaches the padded inputs. ``lengths``
``(B,)`` is the short form for sequences padded at the end.
"""

from __future__ import annotations

import numpy as np

import backend


def sequence_mask(lengths, steps: int, dtype=np.float32):
    """``mask[b, t] = 1`` where ``t < lengths[b]``, else 0.

    Parameters
    ----------
    lengths : int array or sequence, shape (B,)
        Every length in ``[0, steps]``; NumPy or CuPy (the mask follows it).
    steps : int
        T, the padded length.
    dtype : dtype
        Of the mask (default float32).

    Returns
    -------
    mask : array (B, T) of ``dtype``
    """
    xp = backend.get_array_module(lengths) if hasattr(lengths, "dtype") else np
    lengths = xp.asarray(lengths)
    return (xp.arange(steps)[None, :] < lengths[:, None]).astype(dtype)


def resolve_mask(x, mask=None, lengths=None, where: str = ""):
    """The mask of a batch ``x`` (B, T, ...) in x's dtype and on x's device, or None when neither is given.

    Parameters
    ----------
    x : array (B, T, ...)
    mask : array (B, T), optional
        bool, integer or float; nonzero marks a real step.
    lengths : int array or sequence (B,), optional
        The number of real steps of each sequence (padded at the end); a
        host list or NumPy array is moved to x's device (it is B numbers).
    where : str
        Prefix of the error messages (the layer's name).

    Raises
    ------
    ValueError
        Both given; a mask whose shape is not (B, T); a lengths vector of the
        wrong size or with a value outside [0, T].
    TypeError
        A mask or lengths that is not an array of the right kind; a mask on another device than x.
    """
    if mask is None and lengths is None:
        return None
    B, T = int(x.shape[0]), int(x.shape[1])
    if mask is not None and lengths is not None:
        raise ValueError(f"{where}: mask and lengths: expected one of them, got both")
    if lengths is not None:
        if not hasattr(lengths, "dtype"):
            lengths = np.asarray(lengths)
        if lengths.dtype.kind not in "iu":
            raise TypeError(f"{where}: lengths: expected integer lengths (B,) = ({B},), got dtype {lengths.dtype}")
        if tuple(lengths.shape) != (B,):
            raise ValueError(f"{where}: lengths: expected shape ({B},) (one length per sequence), "
                             f"got {tuple(lengths.shape)}")
        if B:
            low, high = int(lengths.min()), int(lengths.max())
            if low < 0 or high > T:
                bad = low if low < 0 else high
                raise ValueError(f"{where}: lengths: expected every length in [0, {T}] (T = {T} steps), got {bad}")
        return sequence_mask(backend.to_device(lengths, backend.device_of(x)), T, x.dtype)
    if not hasattr(mask, "dtype") or not hasattr(mask, "shape"):
        raise TypeError(f"{where}: mask: expected an array (B, T) = ({B}, {T}), got {type(mask).__name__}")
    if mask.dtype.kind not in "biuf":
        raise TypeError(f"{where}: mask: expected a bool, integer or float array, got dtype {mask.dtype}")
    backend.get_array_module(x, mask)
    if tuple(mask.shape) != (B, T):
        raise ValueError(f"{where}: mask: expected shape (B, T) = ({B}, {T}), got {tuple(mask.shape)}")
    return (mask != 0).astype(x.dtype)
