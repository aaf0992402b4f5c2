"""The attention softmax ``P = softmax(scale * S + M)`` fused in one kernel per device (book section 26.2).

Public API
----------
``softmax_forward(scores, scale=1.0, mask=None, causal=False, out=None)``
    ``scores (B, H, Tq, Tk)`` or ``(B, Tq, Tk)``; the softmax runs over the
    last axis (the keys). NumPy float32/float64 C-contiguous arrays go to the
    Numba kernels of :mod:`kernels.attention.cpu`, CuPy ones to the CUDA
    kernels of :mod:`kernels.attention.gpu`, anything else to
    :mod:`kernels.attention.reference` (the spec): never a wrong answer.
``softmax_backward(grad_output, probs, scale=1.0, causal=False, out=None)``
    ``dE/dS = scale * P ⊙ (G - Σ_j G_j P_j)``.
``prepare_mask(mask, shape, dtype, where)``
    The mask check and conversion every attention layer uses.

Masks. ``mask`` is boolean (True: the query may attend to the key, as in
PyTorch's ``scaled_dot_product_attention``) or float (added to the scaled
scores: 0 keeps, ``-inf`` removes), of a shape that broadcasts to the scores
with its last axis equal to Tk, by NumPy's rules (right-aligned): ``(Tk,)``,
``(Tq, Tk)``, ``(B, 1, 1, Tk)`` (padding), ``(B, 1, Tq, Tk)``, ``(B, H, Tq, Tk)``. ``causal=True`` lets query
i see keys ``j <= i`` (top-left aligned, PyTorch's ``is_causal``).

Fully masked rows: a query with no key left gets probabilities of zero (so
the attention output of that query is 0, and its gradient is 0), never NaN.
"""

from __future__ import annotations

import numpy as np

import backend

from . import cpu, gpu, reference

__all__ = ["implementation", "prepare_mask", "reference", "softmax_backward", "softmax_forward"]


def implementation(*arrays):
    """The module computing on these arrays: ``cpu``, ``gpu`` or ``reference`` (TypeError when devices mix)."""
    xp = backend.get_array_module(*arrays)
    fast = cpu if xp is np else gpu
    return fast if fast.supports(*arrays) else reference


def _as_4d(shape):
    return (shape[0], 1, *shape[1:]) if len(shape) == 3 else tuple(shape)


def prepare_mask(mask, shape, dtype, where: str = "attention"):
    """Check ``mask`` against scores of ``shape`` and return it as an additive 4-D array, or None.

    Parameters
    ----------
    mask : bool or float array, or None
        See the module docstring.
    shape : tuple
        The scores' shape, ``(B, H, Tq, Tk)`` or ``(B, Tq, Tk)``.
    dtype : float dtype
        The scores' dtype; the returned mask has it (0 / -inf for a boolean mask).
    where : str
        Prefix of the error messages (the layer's name).

    Returns
    -------
    array ``(mb, mh, mq, Tk)`` C-contiguous, each of ``mb, mh, mq`` 1 or the scores' size.

    Raises
    ------
    TypeError
        Not an array, or an integer/other dtype.
    ValueError
        A shape that does not broadcast to the scores, or whose last axis is not Tk.
    """
    if mask is None:
        return None
    if not hasattr(mask, "shape") or not hasattr(mask, "dtype"):
        raise TypeError(f"{where}: mask: expected a bool or float array, got {type(mask).__name__}")
    if mask.dtype.kind not in "bf":
        raise TypeError(f"{where}: mask: expected a bool (True = attend) or float (additive) array, got dtype "
                        f"{mask.dtype}; use mask.astype(bool)")
    shape = tuple(shape)
    expected = "NumPy broadcasting to the scores, last axis Tk, e.g. (Tk,), (Tq, Tk), (B, 1, Tq, Tk)"
    if mask.ndim < 1 or mask.ndim > len(shape) or mask.shape[-1] != shape[-1]:
        raise ValueError(f"{where}: mask: expected a shape that broadcasts to the scores {shape} with its "
                         f"last axis Tk={shape[-1]} ({expected}), got shape {tuple(mask.shape)}")
    padded = (1,) * (len(shape) - mask.ndim) + tuple(mask.shape)  # right-aligned, as NumPy broadcasts
    if any(size not in (1, target) for size, target in zip(padded, shape)):
        raise ValueError(f"{where}: mask: expected a shape that broadcasts to the scores {shape} "
                         f"({expected}), got shape {tuple(mask.shape)}")
    lead = _as_4d(padded)[:3]
    xp = backend.get_array_module(mask)
    mask = mask.reshape(*lead, shape[-1])
    if mask.dtype.kind == "b":
        additive = xp.where(mask, dtype.type(0), dtype.type(-np.inf)).astype(dtype, copy=False)
    else:
        additive = mask.astype(dtype, copy=False)
    return xp.ascontiguousarray(additive)


def _check_scores(scores, name: str, where: str):
    backend.check_float_array(scores, name, where=where)
    if scores.ndim not in (3, 4):
        raise ValueError(f"{where}: {name}: expected (B, Tq, Tk) or (B, H, Tq, Tk), got shape {tuple(scores.shape)}")


def _check_out(out, like, where: str):
    backend.check_float_array(out, "out", where=where)
    if tuple(out.shape) != tuple(like.shape) or out.dtype != like.dtype:
        raise ValueError(f"{where}: out: expected shape {tuple(like.shape)} and dtype {like.dtype}, "
                         f"got shape {tuple(out.shape)} and dtype {out.dtype}")


def _finish(result, out):
    """``result``, or ``out`` filled with it."""
    if out is None:
        return result
    out[...] = result
    return out


def softmax_forward(scores, scale=1.0, mask=None, causal=False, out=None, where: str = "attention"):
    """``P = softmax(scale * scores + mask)`` over the last axis (optionally causal), on the scores' device.

    Parameters
    ----------
    scores : float array ``(B, Tq, Tk)`` or ``(B, H, Tq, Tk)``
        ``Q K^T``, one row per query.
    scale : float
        Usually ``1 / sqrt(d_k)`` (eq. of section 26.2).
    mask : bool or float array, optional
        See the module docstring (checked with :func:`prepare_mask`).
    causal : bool
        Query i sees keys ``j <= i`` only.
    out : array, optional
        Where to write P (shape and dtype of ``scores``; may be ``scores`` itself).
    where : str
        Prefix of the error messages.

    Returns
    -------
    P : array of the shape and dtype of ``scores`` (``out`` when given); rows sum to 1, fully
    masked rows are 0.
    """
    _check_scores(scores, "scores", where)
    mask4 = prepare_mask(mask, scores.shape, scores.dtype, where)
    if out is not None:
        _check_out(out, scores, where)
    shape4 = _as_4d(scores.shape)
    arrays = [scores] + ([] if mask4 is None else [mask4]) + ([] if out is None else [out])
    impl = implementation(*arrays)
    if impl is reference:
        return _finish(reference.softmax_forward(scores.reshape(shape4), scale, mask4, causal).reshape(scores.shape),
                       out)
    xp = backend.get_array_module(scores)
    target = xp.empty_like(scores) if out is None else out
    impl.softmax_forward(scores.reshape(shape4), float(scale), mask4, causal, target.reshape(shape4))
    return target


def softmax_backward(grad_output, probs, scale=1.0, causal=False, out=None, where: str = "attention"):
    """``dE/dS = scale * P ⊙ (G - Σ_j G_j P_j)`` over the last axis, on the arrays' device.

    Parameters
    ----------
    grad_output : float array
        ``G = dE/dP``, the shape of ``probs``.
    probs : float array ``(B, Tq, Tk)`` or ``(B, H, Tq, Tk)``
        The forward's output.
    scale : float
        The forward's scale.
    causal : bool
        The forward's flag (lets the kernel skip the keys it cut; the result is the same).
    out : array, optional
        Where to write dE/dS (may be ``grad_output`` itself).

    Returns
    -------
    array of the shape and dtype of ``probs``.
    """
    _check_scores(probs, "probs", where)
    backend.check_float_array(grad_output, "grad_output", where=where)
    if tuple(grad_output.shape) != tuple(probs.shape):
        raise ValueError(f"{where}: grad_output: expected shape {tuple(probs.shape)}, got {tuple(grad_output.shape)}")
    grad_output = grad_output.astype(probs.dtype, copy=False)
    if out is not None:
        _check_out(out, probs, where)
    impl = implementation(grad_output, probs, *([] if out is None else [out]))
    if impl is reference:
        return _finish(reference.softmax_backward(grad_output, probs, scale), out)
    xp = backend.get_array_module(probs)
    target = xp.empty_like(probs) if out is None else out
    shape4 = _as_4d(probs.shape)
    impl.softmax_backward(grad_output.reshape(shape4), probs.reshape(shape4), float(scale), causal,
                          target.reshape(shape4))
    return target
