"""The attention softmax in plain array code: the executable spec of the fused kernels (book section 26.2).

Written with ``xp`` (NumPy or CuPy, from the arrays), so it is also the
fallback for dtypes and layouts the fast kernels do not take. Shapes follow
:mod:`kernels.attention`: ``scores (B, H, Tq, Tk)``; ``mask`` an additive
float array broadcastable to it (already checked and converted by the
dispatcher), or None.
"""

from __future__ import annotations

import backend


def causal_allowed(queries: int, keys: int, xp):
    """Boolean ``(Tq, Tk)``: query i may attend to key j when ``j <= i`` (top-left aligned, as PyTorch's is_causal)."""
    return xp.arange(keys)[None, :] <= xp.arange(queries)[:, None]


def softmax_forward(scores, scale, mask=None, causal=False):
    """``P = softmax(scale * S + M)`` over the last axis; rows with no allowed key are all zeros.

    Parameters
    ----------
    scores : array (..., Tq, Tk), float
    scale : float
    mask : float array broadcastable to ``scores``, optional
        Added to ``scale * scores`` (0 keeps a key, -inf removes it).
    causal : bool
        Remove every key j > i from the row of query i.

    Returns
    -------
    P : array of the shape and dtype of ``scores``.

    The maximum of each row is subtracted before the exponential; a row whose
    maximum is -inf (fully masked) gives exp(-inf) = 0 everywhere and a sum
    of 0, which is replaced by 1 so that the row comes out as zeros, not NaN.
    """
    xp = backend.get_array_module(scores)
    z = scores * scores.dtype.type(scale)
    if mask is not None:
        z = z + mask.astype(scores.dtype, copy=False)
    if causal:
        z = xp.where(causal_allowed(scores.shape[-2], scores.shape[-1], xp), z, scores.dtype.type(-xp.inf))
    row_max = z.max(axis=-1, keepdims=True)
    row_max = xp.where(xp.isneginf(row_max), scores.dtype.type(0), row_max)
    e = xp.exp(z - row_max)
    total = e.sum(axis=-1, keepdims=True)
    total = xp.where(total == 0, scores.dtype.type(1), total)
    return e / total


def softmax_backward(grad_output, probs, scale):
    """``dE/dS = scale * P ⊙ (G - Σ_j G_j P_j)`` (the softmax Jacobian, then the chain rule through ``scale``).

    The mask and the causal cut are constants: masked entries have P = 0 and
    receive no gradient, and a fully masked row gets zeros.
    """
    dot = (grad_output * probs).sum(axis=-1, keepdims=True)
    return probs * (grad_output - dot) * probs.dtype.type(scale)
