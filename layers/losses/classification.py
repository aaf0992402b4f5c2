"""Classification losses: binary cross-entropy and hinge (book chapter 10), categorical and sparse
categorical cross-entropy (chapter 11), Kullback-Leibler divergence and multiclass hinge (slides 003).

Probabilities are clipped to [ε, 1 - ε] (ε = 1e-7) before any logarithm; with
``from_logits=True`` the losses work on raw scores through log-sum-exp, which is
finite and warning-free at logits of ±1000 in float32 and float64. Gradients
with clipped probabilities use the clipped value (a straight-through estimate
at the clip bounds), so a confidently wrong prediction still gets a finite,
non-zero gradient.
"""

from __future__ import annotations

import numbers

import numpy as np

from .base import Loss, log_softmax, probability_epsilon, stable_sigmoid


def _clip_probabilities(p, xp, high=True):
    eps = probability_epsilon(p.dtype)
    return xp.clip(p, eps, 1.0 - eps if high else 1.0)


class BinaryCrossEntropy(Loss):
    """Binary cross-entropy (book section 10.2; slides 003, "Binary Cross-Entropy").

    ℓ = -[d log p + (1 - d) log(1 - p)],   E = (1/N) Σ ℓ

    Parameters
    ----------
    from_logits : bool
        False (default): ``y_pred`` holds probabilities p (e.g. a Sigmoid's
        output), clipped to [1e-7, 1 - 1e-7]; dℓ/dp = (p - d) / (p (1 - p)).
        True: ``y_pred`` holds logits z, p = σ(z), and the loss is computed as
        ℓ = max(z, 0) - z d + log(1 + e^{-|z|}) with dℓ/dz = σ(z) - d
        (no overflow at z = ±1000).
    reduction : {"mean", "sum"}

    Shapes
    ------
    y_pred, y_true : (batch, ...) of the same shape; targets d in [0, 1]
    (any numeric dtype; soft labels allowed).
    """

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = bool(from_logits)

    def _values(self, y_pred, y_true, xp):
        if self.from_logits:
            z = y_pred
            return xp.maximum(z, 0) - z * y_true + xp.log1p(xp.exp(-xp.abs(z)))
        p = _clip_probabilities(y_pred, xp)
        return -(y_true * xp.log(p) + (1.0 - y_true) * xp.log1p(-p))

    def _grad(self, y_pred, y_true, xp):
        if self.from_logits:
            return stable_sigmoid(y_pred, xp) - y_true
        p = _clip_probabilities(y_pred, xp)
        return (p - y_true) / (p * (1.0 - p))

    def get_config(self):
        return {"from_logits": self.from_logits, "reduction": self.reduction}


class Hinge(Loss):
    """Hinge loss for binary classification (book section 10.3).

    ℓ = max(0, 1 - t y),   E = (1/N) Σ ℓ,   dℓ/dy = -t where t y < 1, else 0 (0 at the kink t y = 1).

    Labels: t in {-1, 1}. Labels in {0, 1} are also accepted and converted with
    t = 2 d - 1 (any 0 among the labels means the {0, 1} encoding); any other
    value raises ValueError. ``y_pred`` is a raw score (no sigmoid).

    Shapes: y_pred, y_true (batch, ...) of the same shape.
    """

    def _prepare_targets(self, y_pred, y_true, xp):
        self._check_same_shape(y_pred, y_true)
        t = y_true.astype(y_pred.dtype, copy=False)
        is_zero, is_one, is_minus = t == 0, t == 1, t == -1
        bad = ~(is_zero | is_one | is_minus)
        if bool(bad.any()):
            value = float(t[bad].ravel()[0])
            raise ValueError(f"Hinge: y_true: expected labels in {{-1, 1}} (or {{0, 1}}), got the label {value:g}")
        if bool(is_zero.any()):
            if bool(is_minus.any()):
                raise ValueError("Hinge: y_true: expected labels in {-1, 1} or in {0, 1}, got a mix of -1, 0 and 1")
            t = 2.0 * t - 1.0
        return t

    def _values(self, y_pred, y_true, xp):
        return xp.maximum(1.0 - y_true * y_pred, 0)

    def _grad(self, y_pred, y_true, xp):
        active = (1.0 - y_true * y_pred > 0).astype(y_pred.dtype)
        return -y_true * active


class CategoricalCrossEntropy(Loss):
    """Categorical cross-entropy with one-hot (or soft) targets (book section 11.2; slides 003).

    ℓ_n = -Σ_k d_{n,k} log p_{n,k},   E = (1/N) Σ_n ℓ_n over the N samples.

    Parameters
    ----------
    from_logits : bool
        False (default): ``y_pred`` holds probabilities (a Softmax's output),
        clipped to [1e-7, 1]; dℓ/dp = -d / p. They are not renormalised.
        True: ``y_pred`` holds logits z and log p = log softmax(z) through
        log-sum-exp (section 11.1), dℓ/dz = softmax(z) Σ_k d_k - d
        (= softmax(z) - d for one-hot targets). Prefer this to a Softmax layer
        followed by the probability form: it is exact at any logit size.
    reduction : {"mean", "sum"}

    Shapes
    ------
    y_pred, y_true : (batch, ..., classes) of the same shape; the class axis is last.
    """

    per_sample = True

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = bool(from_logits)

    def _log_probabilities(self, y_pred, xp):
        if self.from_logits:
            return log_softmax(y_pred, xp)
        return xp.log(_clip_probabilities(y_pred, xp, high=False))

    def _values(self, y_pred, y_true, xp):
        return -(y_true * self._log_probabilities(y_pred, xp)).sum(axis=-1)

    def _grad(self, y_pred, y_true, xp):
        if self.from_logits:
            softmax = xp.exp(log_softmax(y_pred, xp))
            return softmax * y_true.sum(axis=-1, keepdims=True) - y_true
        return -y_true / _clip_probabilities(y_pred, xp, high=False)

    def get_config(self):
        return {"from_logits": self.from_logits, "reduction": self.reduction}


class SparseCategoricalCrossEntropy(Loss):
    """Categorical cross-entropy with integer class labels (book section 11.3).

    ℓ_n = -log p_{n, t_n},   E = (1/N) Σ_n ℓ_n;  dℓ_n/dp_{n,k} = -[k = t_n] / p_{n,k}
    (probabilities, clipped to [1e-7, 1]) or dℓ_n/dz_{n,k} = softmax(z_n)_k - [k = t_n]
    (``from_logits=True``, through log-sum-exp).

    Parameters
    ----------
    from_logits : bool
        As in :class:`CategoricalCrossEntropy`.
    reduction : {"mean", "sum"}

    Shapes
    ------
    y_pred : (batch, ..., classes).
    y_true : (batch, ...) integer labels in [0, classes) — ``y_pred.shape[:-1]``;
    a trailing axis of size 1, (batch, ..., 1), is accepted too. Float labels
    with integral values are accepted; labels out of range raise ValueError
    naming the label and the range.
    """

    per_sample = True

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = bool(from_logits)

    def _prepare_targets(self, y_pred, y_true, xp):
        name = type(self).__name__
        expected = tuple(y_pred.shape[:-1])
        if tuple(y_true.shape) == expected + (1,):
            y_true = y_true.reshape(expected)
        if tuple(y_true.shape) != expected:
            raise ValueError(
                f"{name}: y_true: expected integer labels of shape {expected} (y_pred.shape[:-1] for y_pred of "
                f"shape {tuple(y_pred.shape)}), got shape {tuple(y_true.shape)}"
            )
        if y_true.dtype.kind == "f":
            if not bool((y_true == xp.floor(y_true)).all()):
                value = float(y_true[y_true != xp.floor(y_true)].ravel()[0])
                raise ValueError(f"{name}: y_true: expected integer class labels, got the label {value:g}")
        classes = int(y_pred.shape[-1])
        labels = y_true.astype(np.int64, copy=False)
        bad = (labels < 0) | (labels >= classes)
        if bool(bad.any()):
            value = int(labels[bad].ravel()[0])
            raise ValueError(
                f"{name}: y_true: label {value} is out of range [0, {classes}) for y_pred with {classes} classes"
            )
        return labels

    def _one_hot(self, labels, y_pred, xp):
        classes = y_pred.shape[-1]
        return (xp.arange(classes) == labels[..., None]).astype(y_pred.dtype)

    def _values(self, y_pred, labels, xp):
        picked = xp.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0]
        if self.from_logits:
            shift = y_pred.max(axis=-1)
            logsumexp = shift + xp.log(xp.exp(y_pred - shift[..., None]).sum(axis=-1))
            return logsumexp - picked
        return -xp.log(_clip_probabilities(picked, xp, high=False))

    def _grad(self, y_pred, labels, xp):
        one_hot = self._one_hot(labels, y_pred, xp)
        if self.from_logits:
            return xp.exp(log_softmax(y_pred, xp)) - one_hot
        return -one_hot / _clip_probabilities(y_pred, xp, high=False)

    def get_config(self):
        return {"from_logits": self.from_logits, "reduction": self.reduction}


class KLDivergence(Loss):
    """Kullback-Leibler divergence KL(d ‖ p) (slides 003).

    ℓ_n = Σ_k d_{n,k} (log d_{n,k} - log p_{n,k}),   E = (1/N) Σ_n ℓ_n;
    dℓ/dp = -d / p.  Both d and p are clipped to [1e-7, 1] inside the logarithms,
    so terms with d = 0 contribute 0.

    Shapes: y_pred (probabilities), y_true (a target distribution):
    (batch, ..., classes) of the same shape; the class axis is last.
    """

    per_sample = True

    def _values(self, y_pred, y_true, xp):
        log_d = xp.log(_clip_probabilities(y_true, xp, high=False))
        log_p = xp.log(_clip_probabilities(y_pred, xp, high=False))
        return (y_true * (log_d - log_p)).sum(axis=-1)

    def _grad(self, y_pred, y_true, xp):
        return -y_true / _clip_probabilities(y_pred, xp, high=False)


class MulticlassHinge(Loss):
    """Multiclass (Weston-Watkins) hinge loss, as in SVMs (slides 003).

    ℓ_n = Σ_{j ≠ y_n} max(0, s_{n,j} - s_{n,y_n} + Δ),   E = (1/N) Σ_n ℓ_n

    Gradient: dℓ/ds_j = [s_j - s_y + Δ > 0] for j ≠ y, and dℓ/ds_y = -Σ_{j≠y} [s_j - s_y + Δ > 0]
    (0 at the kinks).

    Parameters
    ----------
    margin : float > 0
        Δ (default 1.0).
    reduction : {"mean", "sum"}

    Shapes
    ------
    y_pred : (batch, ..., classes) raw scores s; y_true : one-hot targets of the
    same shape (the correct class y_n is where d_{n,k} = 1).
    """

    per_sample = True

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
            raise TypeError(f"MulticlassHinge: margin: expected a positive number, got {type(margin).__name__}")
        if not margin > 0:
            raise ValueError(f"MulticlassHinge: margin: expected a positive number, got {margin}")
        self.margin = float(margin)

    def _active(self, y_pred, y_true):
        correct = (y_pred * y_true).sum(axis=-1, keepdims=True)
        margins = (y_pred - correct + self.margin) * (1.0 - y_true)
        return margins

    def _values(self, y_pred, y_true, xp):
        return xp.maximum(self._active(y_pred, y_true), 0).sum(axis=-1)

    def _grad(self, y_pred, y_true, xp):
        active = (self._active(y_pred, y_true) > 0).astype(y_pred.dtype)
        return active - y_true * active.sum(axis=-1, keepdims=True)

    def get_config(self):
        return {"margin": self.margin, "reduction": self.reduction}
