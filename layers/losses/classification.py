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

import numpy as np

from backend.checks import check_bool, check_positive, first_violation, format_index

from .base import Loss, in_unit_interval, log_softmax, probability_epsilon, stable_sigmoid


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
    (any numeric dtype; soft labels allowed). A target outside [0, 1] (or NaN)
    raises ValueError naming its value and position (:meth:`check_targets`).
    """

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = check_bool(from_logits, "from_logits", type(self).__name__)

    def check_targets(self, y_true, y_pred_shape, name="y_true"):
        """Same shape as the predictions, every target in [0, 1]."""
        self._check_shape(y_true, y_pred_shape, name)
        self._check_values(y_true, in_unit_interval, "targets in [0, 1]", name)

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

    def check_targets(self, y_true, y_pred_shape, name="y_true"):
        """Same shape as the predictions; labels in {-1, 1} or in {0, 1} over the whole array (never both -1 and 0)."""
        self._check_shape(y_true, y_pred_shape, name)
        self._check_values(y_true, lambda c, xp: ~((c == -1) | (c == 0) | (c == 1)),
                           "labels in {-1, 1} (or {0, 1})", name, what="got the label")
        first_zero = first_violation(y_true, lambda c, xp: c == 0)
        first_minus = first_violation(y_true, lambda c, xp: c == -1) if first_zero is not None else None
        if first_minus is not None:
            raise ValueError(
                f"Hinge: {name}: expected labels in {{-1, 1}} or in {{0, 1}}, got a mix of -1 "
                f"(at {format_index(name, first_minus[0])}) and 0 (at {format_index(name, first_zero[0])})")

    def _prepare_targets(self, y_pred, y_true, xp):
        t = y_true.astype(y_pred.dtype, copy=False)
        if bool((t == 0).any()):  # the {0, 1} encoding (check_targets refused a mix with -1)
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
    Targets are probabilities: a value outside [0, 1] raises ValueError (:meth:`check_targets`).
    """

    per_sample = True

    def __init__(self, from_logits: bool = False, reduction: str = "mean"):
        super().__init__(reduction)
        self.from_logits = check_bool(from_logits, "from_logits", type(self).__name__)

    def check_targets(self, y_true, y_pred_shape, name="y_true"):
        """Same shape as the predictions, every target probability in [0, 1]."""
        self._check_shape(y_true, y_pred_shape, name)
        self._check_values(y_true, in_unit_interval, "target probabilities in [0, 1]", name)

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
    (``from_logits=True``: -log softmax(z_n)_{t_n}, the log-sum-exp path of
    :class:`CategoricalCrossEntropy`, exact at logits of 1e4 in float32).

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
        self.from_logits = check_bool(from_logits, "from_logits", type(self).__name__)

    def check_targets(self, y_true, y_pred_shape, name="y_true"):
        """Labels of shape ``y_pred_shape[:-1]`` (or with a trailing 1), integral, in ``[0, classes)``."""
        loss = type(self).__name__
        expected = tuple(y_pred_shape[:-1])
        if tuple(y_true.shape) not in (expected, expected + (1,)):
            raise ValueError(
                f"{loss}: {name}: expected integer labels of shape {expected} (y_pred.shape[:-1] for y_pred of "
                f"shape {tuple(y_pred_shape)}), got shape {tuple(y_true.shape)}"
            )
        if y_true.dtype.kind == "f":
            self._check_values(y_true, lambda c, xp: c != xp.floor(c), "integer class labels", name,
                               what="got the label")
        classes = int(y_pred_shape[-1])
        found = first_violation(y_true, lambda c, xp: (c < 0) | (c >= classes))
        if found is not None:
            index, value = found
            raise ValueError(
                f"{loss}: {name}: label {int(value)} is out of range [0, {classes}) for y_pred with {classes} "
                f"classes, at {format_index(name, index)}"
            )

    def _prepare_targets(self, y_pred, y_true, xp):
        return y_true.reshape(y_pred.shape[:-1]).astype(np.int64, copy=False)

    def _one_hot(self, labels, y_pred, xp):
        classes = y_pred.shape[-1]
        return (xp.arange(classes) == labels[..., None]).astype(y_pred.dtype)

    def _values(self, y_pred, labels, xp):
        if self.from_logits:  # the path of CategoricalCrossEntropy: exact at logits of 1e4 in float32
            return -xp.take_along_axis(log_softmax(y_pred, xp), labels[..., None], axis=-1)[..., 0]
        picked = xp.take_along_axis(y_pred, labels[..., None], axis=-1)[..., 0]
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
    dℓ/dp = -d / p.  p is clipped to [1e-7, 1] inside the logarithm; d log d is
    exact for d > 0 and 0 at d = 0 (its limit), so terms with d = 0 contribute 0.

    Shapes: y_pred (probabilities), y_true (a target distribution):
    (batch, ..., classes) of the same shape; the class axis is last. A target
    outside [0, 1] raises ValueError (:meth:`check_targets`).
    """

    per_sample = True

    def check_targets(self, y_true, y_pred_shape, name="y_true"):
        """Same shape as the predictions, every target probability in [0, 1]."""
        self._check_shape(y_true, y_pred_shape, name)
        self._check_values(y_true, in_unit_interval, "target probabilities in [0, 1]", name)

    def _values(self, y_pred, y_true, xp):
        log_d = xp.log(xp.where(y_true > 0, y_true, 1))  # d log d -> 0 at d = 0; exact for tiny d
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
    same shape (the correct class y_n is where d_{n,k} = 1); anything else
    (values other than 0 and 1, rows without exactly one 1) raises ValueError.
    """

    per_sample = True

    def __init__(self, margin: float = 1.0, reduction: str = "mean"):
        super().__init__(reduction)
        self.margin = check_positive(margin, "margin", "MulticlassHinge")

    def check_targets(self, y_true, y_pred_shape, name="y_true"):
        """Same shape as the predictions, one-hot rows (0s and a single 1)."""
        self._check_shape(y_true, y_pred_shape, name)
        self._check_values(y_true, lambda c, xp: ~((c == 0) | (c == 1)), "one-hot targets (0 or 1)", name)
        self._check_values(y_true, lambda c, xp: c.sum(axis=-1) != 1, "one-hot rows (a single 1)", name)

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
