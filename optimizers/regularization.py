"""Weight penalties (L1/L2, slides 002 "Regularizações L1 e L2") and gradient clipping.

Used by every :class:`~optimizers.base.Optimizer` (its ``l1``, ``l2``,
``clipnorm`` and ``clipvalue`` options) and available to training loops that
want the penalty's value for the reported loss.

Penalty added to the loss (Keras' convention, no factor 1/2)::

    Ω(θ) = l1 Σ |θ| + l2 Σ θ²,      ∂Ω/∂θ = l1 sign(θ) + 2 l2 θ

Clipping (Pascanu et al., 2013)::

    clipnorm:   g_i <- g_i · min(1, c / ‖g‖),  ‖g‖ = sqrt(Σ_i Σ g_i²)  (global norm over ALL gradients)
    clipvalue:  g   <- clip(g, -c, c)                                    (element-wise)

None of these functions modify their inputs: they return new arrays (or the
same array object when nothing changes), on the arrays' own device. Norms are
accumulated in float64, so float32 gradients of 1e30 do not overflow, and no
host synchronisation happens (the clip factor stays a device scalar).
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_nonnegative, check_positive_or_none  # noqa: F401 (re-exported)


def penalty_value(params, l1: float = 0.0, l2: float = 0.0) -> float:
    """Ω(θ) = l1 Σ|θ| + l2 Σ θ² over every array in ``params``, as a Python float."""
    total = 0.0
    for p in params:
        xp = backend.get_array_module(p)
        if l1:
            total += l1 * float(xp.abs(p).sum(dtype=np.float64))
        if l2:
            total += l2 * float(xp.square(p.astype(np.float64, copy=False)).sum())
    return total


def add_penalty_gradients(params, grads, l1: float = 0.0, l2: float = 0.0, weight_mask=None) -> list:
    """Return ``[g + l1 sign(θ) + 2 l2 θ for θ, g]`` (new arrays; ``None`` grads stay None).

    ``weight_mask`` (a bool per parameter, e.g. :func:`layers.base.weight_mask`)
    limits the penalty to the parameters it marks; ``None`` penalises all.
    """
    if not l1 and not l2:
        return list(grads)
    out = []
    for k, (p, g) in enumerate(zip(params, grads)):
        if g is None or (weight_mask is not None and not weight_mask[k]):
            out.append(g)
            continue
        xp = backend.get_array_module(p, g)
        g = g.copy()
        if l1:
            g += l1 * xp.sign(p)
        if l2:
            g += (2.0 * l2) * p
        out.append(g)
    return out


def global_norm(grads):
    """‖g‖ = sqrt(Σ_i Σ g_i²) over all non-None gradients, as a float64 0-d array on their device."""
    total = None
    for g in grads:
        if g is None:
            continue
        xp = backend.get_array_module(g)
        s = xp.square(g.astype(np.float64, copy=False)).sum()
        total = s if total is None else total + s
    if total is None:
        return np.float64(0.0)
    return backend.get_array_module(total).sqrt(total)


def clip_by_global_norm(grads, clipnorm: float) -> list:
    """Scale every gradient by ``min(1, clipnorm / ‖g‖)`` (global norm); returns new arrays."""
    norm = global_norm(grads)
    xp = backend.get_array_module(norm)
    # clipnorm / max(norm, clipnorm) == min(1, clipnorm / norm), and is 1 for a zero gradient.
    factor = clipnorm / xp.maximum(norm, clipnorm)
    return [None if g is None else g * factor.astype(g.dtype) for g in grads]


def clip_by_value(grads, clipvalue: float) -> list:
    """Clip every gradient element-wise to [-clipvalue, clipvalue]; returns new arrays."""
    out = []
    for g in grads:
        if g is None:
            out.append(None)
            continue
        xp = backend.get_array_module(g)
        out.append(xp.clip(g, -clipvalue, clipvalue))
    return out


def process_gradients(params, grads, *, l1=0.0, l2=0.0, clipnorm=None, clipvalue=None, weight_mask=None) -> list:
    """Penalties first (they are part of the loss), then clipnorm, then clipvalue.

    The one implementation of these four options, for the optimizers and for
    ``fit``: penalties apply to the parameters ``weight_mask`` marks (all when
    it is None; ``fit`` passes the model's :func:`layers.base.weight_mask`,
    which leaves biases and normalization scales out), clipping to every gradient.

    Parameters
    ----------
    params, grads : lists of arrays, aligned (a ``None`` grad marks a parameter to skip)
    l1, l2 : float >= 0
    clipnorm, clipvalue : float > 0 or None
    weight_mask : list of bool or None

    Returns
    -------
    list
        The gradients to apply; the input lists and arrays are not modified.
    """
    grads = add_penalty_gradients(params, grads, l1, l2, weight_mask)
    if clipnorm is not None:
        grads = clip_by_global_norm(grads, clipnorm)
    if clipvalue is not None:
        grads = clip_by_value(grads, clipvalue)
    return grads
