"""Data checks and batching for :meth:`layers.Sequential.fit`, ``evaluate`` and ``predict`` (book chapter 6).

Everything here runs before training starts, so bad data (NaN/inf, mismatched
lengths, non-numeric dtypes, targets the loss refuses) is reported with the
argument's name instead of surfacing as a NaN loss several epochs later. The
whole-array scans go in chunks (:func:`backend.checks.chunks`), so checking a
60000 x 784 set holds no full-size temporary (memory-mapped data is read a
chunk at a time).

``X`` may also be a tuple of parts for a model whose forward takes a tuple
(a recurrent layer's ``(x, initial_state, mask)``, a two-input model): every
array part is checked and batched along its first axis, a ``None`` part
passes as ``None``, and :class:`SequenceLengths` becomes each batch's mask.
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import chunks, first_violation, format_index


def as_array(a, name: str):
    """NumPy/CuPy arrays as they are; lists and other array-likes through ``numpy.asarray``.

    Raises
    ------
    TypeError
        ``a`` cannot be made into an array (ragged lists and the like); the message names ``name``.
    """
    if isinstance(a, np.ndarray) or backend.is_cupy_array(a):
        return a
    try:
        return np.asarray(a)
    except Exception as exc:  # ragged lists and the like
        raise TypeError(f"{name}: expected an array, got {type(a).__name__} ({exc})") from exc


def check_finite(a, name: str) -> None:
    """Raise a ValueError naming ``name``, the first bad value and its sample when a float ``a`` holds NaN/inf.

    Scans ``a`` in chunks (temporaries of about 1 MiB, whatever its size).

    Parameters
    ----------
    a : array, shape (samples, ...)
        Non-float arrays are accepted as they are.
    """
    if a.dtype.kind != "f":
        return
    found = first_violation(a, lambda chunk, xp: ~xp.isfinite(chunk))
    if found is not None:
        index, value = found
        xp = backend.get_array_module(a)
        count = sum(int(chunk.size - xp.count_nonzero(xp.isfinite(chunk))) for _, chunk in chunks(a))
        raise ValueError(
            f"{name}: expected finite values, got {count} NaN/inf value(s) (first in sample "
            f"{index[0] if index else 0}), {value} at {format_index(name, index)}; clean or impute the data "
            "before fit (training has not started)"
        )


def check_targets(loss, y, output_shape, yname: str = "y") -> None:
    """Run ``loss.check_targets`` once on the whole ``y`` for a model whose output has ``output_shape``.

    Parameters
    ----------
    loss : Loss
    y : array, shape (samples, ...)
    output_shape : tuple of int
        The model's output shape for any batch (its first axis is replaced by ``len(y)``).
    yname : str
        The argument's name in the message (``"y"``, ``"y_val"``).
    """
    loss.check_targets(y, (len(y),) + tuple(output_shape[1:]), name=yname)


def batch_error(exc, argument: str, epoch: int, step: int, index=None):
    """``exc`` again, its message prefixed with the argument, the batch and the epoch (counting from 1).

    For the failures that only a later batch can reveal (a custom loss's
    check, a layer refusing values it meets in training, a generator's
    batch). ``index``: the batch's samples (a slice or an index array), None
    for a batch from an iterable.
    """
    if index is None:
        try:
            return type(exc)(f"{argument}: batch {step + 1} of epoch {epoch + 1}: {exc}")
        except Exception:  # an exception type whose constructor wants more than a message
            return exc
    if isinstance(index, slice):
        samples = f"samples {index.start}..{index.stop - 1}"
    else:
        shown = ", ".join(str(int(i)) for i in index[:5])
        samples = f"samples {shown}{', ...' if len(index) > 5 else ''} of the shuffled order"
    try:
        return type(exc)(f"{argument}: batch {step + 1} of epoch {epoch + 1} ({samples}): {exc}")
    except Exception:  # an exception type whose constructor wants more than a message
        return exc


class SequenceLengths:
    """Lengths of padded sequences (samples,) that become a mask ``(batch, steps)`` batch by batch.

    The part of a tuple ``X`` that ``fit(..., sample_lengths=...)`` adds:
    ``(X, None, SequenceLengths(lengths, X.shape[1]))`` is a recurrent
    layer's ``(x, initial_state, mask)``, without building the whole mask.

    Parameters
    ----------
    lengths : int array (samples,)
        Every length in ``[0, steps]``.
    steps : int
        T, the padded length (``X.shape[1]``).
    """

    def __init__(self, lengths, steps: int, name: str = "sample_lengths"):
        self.name = name
        lengths = as_array(lengths, name)
        if lengths.dtype.kind not in "iu" or lengths.ndim != 1:
            raise TypeError(f"{name}: expected integer lengths of shape (samples,), got dtype {lengths.dtype} "
                            f"and shape {tuple(lengths.shape)}")
        if len(lengths):
            low, high = int(lengths.min()), int(lengths.max())
            if low < 0 or high > steps:
                raise ValueError(f"{name}: expected every length in [0, {steps}] (X.shape[1] = {steps} steps), "
                                 f"got {low if low < 0 else high}")
        self.lengths, self.steps = lengths, int(steps)

    def __len__(self) -> int:
        return len(self.lengths)

    def mask(self, index, device, dtype):
        """The mask of the samples ``index`` on ``device``: 1 where ``t < length``, in ``dtype``."""
        from ..recurrent.masking import sequence_mask

        return sequence_mask(backend.to_device(self.lengths[index], device), self.steps, dtype)


def is_parts(X) -> bool:
    """True when ``X`` is a tuple of parts: arrays (with ``shape`` and ``dtype``), None, :class:`SequenceLengths`.

    A tuple of numbers or of lists is data (rows), as ``numpy.asarray`` reads it.
    """
    return (isinstance(X, tuple) and any(p is not None for p in X)
            and all(p is None or isinstance(p, SequenceLengths) or (hasattr(p, "shape") and hasattr(p, "dtype"))
                    for p in X))


def parts_of(X) -> list:
    """The parts of ``X`` that have samples (``[X]`` for an array; the non-None entries of a tuple)."""
    return [p for p in X if p is not None] if is_parts(X) else [X]


def sample_count(X) -> int:
    """The number of samples of ``X`` (an array or a tuple of parts)."""
    return len(parts_of(X)[0])


def check_inputs(X, xname: str = "X"):
    """``X`` as an array, or a tuple of checked parts (arrays, None, :class:`SequenceLengths`).

    Every array part: numeric, at least one sample, finite; all parts of one length.
    """
    if not is_parts(X):
        return _check_array(X, xname)
    parts = tuple(p if p is None or isinstance(p, SequenceLengths) else _check_array(p, f"{xname}[{i}]")
                  for i, p in enumerate(X))
    counts = {len(p) for p in parts if p is not None}
    if len(counts) > 1:
        raise ValueError(f"{xname}: expected the same number of samples in every part, got "
                         + ", ".join(f"len({xname}[{i}])={len(p)}" for i, p in enumerate(parts) if p is not None))
    return parts


def _check_array(X, xname):
    X = as_array(X, xname)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{xname}: expected a numeric (float) array, got dtype {X.dtype}")
    if X.ndim < 1 or len(X) == 0:
        raise ValueError(f"{xname}: expected at least one sample (shape (samples, ...)), got shape {tuple(X.shape)}")
    check_finite(X, xname)
    return X


def check_data(X, y, xname: str = "X", yname: str = "y"):
    """Validate a data set for fit/evaluate/predict; return ``(X, y)`` as arrays (X: or a tuple of parts).

    Parameters
    ----------
    X : array_like, shape (samples, ...), or a tuple of parts
        Numeric (float, int or bool), at least one sample, finite; a tuple:
        see the module docstring.
    y : array_like, shape (samples, ...), or None
        Numeric, as many samples as ``X``, finite; ``None`` for predict.
    xname, yname : str
        The names the error messages use (``"X_val"``, ``"y_val"`` for validation data).
    """
    if y is not None:
        y = as_array(y, yname)
        if y.dtype.kind not in "biuf":
            raise TypeError(f"{yname}: expected a numeric array (floats, or integer class labels), got dtype {y.dtype}")
    X = check_inputs(X, xname)
    if y is not None:
        n = sample_count(X)
        if y.ndim < 1 or len(y) != n:
            got = len(y) if y.ndim else "a scalar"
            raise ValueError(
                f"{xname} and {yname}: expected the same number of samples, got len({xname})={n} "
                f"and len({yname})={got}"
            )
        check_finite(y, yname)
    return X, y


def take_batch(a, index, device, dtype, cast_integers: bool):
    """One batch ``a[index]`` on ``device``; float data cast to ``dtype``, int/bool data too with ``cast_integers``.

    Parameters
    ----------
    a : array, shape (samples, ...), or a tuple of parts (see the module docstring)
        NumPy or CuPy. Of a tuple's parts only the first follows
        ``cast_integers``; the other integer parts are kept.
    index : slice or int array
        The batch's samples (a NumPy index array is moved to ``a``'s device first).
    device
        Where the batch goes (the model's device).
    dtype
        The model's dtype.
    cast_integers : bool
        True for inputs (XOR tables written as ints), False for targets
        (integer class labels are kept).

    Returns
    -------
    array, shape (batch, ...), or a tuple of them
    """
    if is_parts(a):
        return tuple(None if part is None
                     else part.mask(index, device, dtype) if isinstance(part, SequenceLengths)
                     else take_batch(part, index, device, dtype, cast_integers and i == 0)
                     for i, part in enumerate(a))
    if isinstance(index, np.ndarray) and backend.is_cupy_array(a):
        index = backend.to_device(index, backend.device_of(a))
    part = a[index]
    if part.dtype.kind == "f" or cast_integers and part.dtype.kind in "biu":
        part = part.astype(dtype, copy=False)
    return backend.to_device(part, device)
