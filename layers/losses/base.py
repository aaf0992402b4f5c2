"""The Loss protocol (book chapters 10-11; section 6.2 for the squared error) and its input checks.

A loss is anything with::

    forward(y_pred, y_true) -> float     # the reduced loss, a Python float
    backward()              -> dE/dy_pred  # same shape and dtype as y_pred

Subclasses compute an *unreduced* loss (one value per element, or one per
sample for the losses that sum over the class axis) and its derivative; the
base class applies the reduction:

==============  ==============================================================
``reduction``   E
==============  ==============================================================
``"mean"``      (1/N) Σ_n ℓ_n  over the N unreduced values (the default)
``"sum"``       Σ_n ℓ_n
==============  ==============================================================

For the element-wise losses (MSE, MAE, Huber, BCE, Hinge) N is the number of
elements of ``y_pred``; for the class-axis losses (categorical cross-entropy,
sparse, KL, multiclass hinge) ℓ_n is a per-sample sum over the last axis and N
is the number of samples (every axis but the last).

:meth:`Loss.check_targets` is the one check of the targets' shape and values
(labels in range, probabilities in [0, 1], ...): ``forward`` runs it on every
batch, and ``fit``/``evaluate`` run it once on the whole ``y`` (in chunks)
before anything changes, so a bad label in a late batch is reported before
training starts, with its value and position.
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_input, first_violation, format_index

from ..base import checks_skipped


def _describe(x) -> str:
    return f"{type(x).__name__} with dtype {x.dtype} and shape {tuple(x.shape)}"


class Loss:
    """Base class of every loss.

    Parameters
    ----------
    reduction : {"mean", "sum"}
        How the unreduced values are combined (see the module docstring).

    Notes
    -----
    ``forward`` validates its inputs, caches them, and returns a Python float
    (one device synchronisation on the GPU). ``backward`` returns dE/dy_pred
    for the *reduced* loss, as an array of ``y_pred``'s shape, dtype and device.
    ``loss(y_pred, y_true)`` is ``loss.forward(y_pred, y_true)``.
    """

    #: reductions a subclass accepts; MeanSquaredError adds "book".
    reductions = ("mean", "sum")
    #: True for losses whose unreduced values are per sample (sum over the last axis).
    per_sample = False

    def __init__(self, reduction: str = "mean"):
        if reduction not in self.reductions:
            raise ValueError(
                f"{type(self).__name__}: reduction: expected one of {', '.join(map(repr, self.reductions))}, "
                f"got {reduction!r}"
            )
        self.reduction = reduction
        self._cache = None

    # -- subclass hooks ------------------------------------------------------
    def _values(self, y_pred, y_true, xp):
        """Unreduced loss values (per element or per sample)."""
        raise NotImplementedError

    def _grad(self, y_pred, y_true, xp):
        """Derivative of the *sum* of the unreduced values w.r.t. ``y_pred``."""
        raise NotImplementedError

    def check_targets(self, y_true, y_pred_shape, name: str = "y_true") -> None:
        """Raise ValueError unless ``y_true`` holds valid targets for predictions of shape ``y_pred_shape``.

        The hook that :meth:`forward` runs on every batch and that
        :func:`layers.training.fit` and ``evaluate`` run once on the whole
        ``y`` before training (scanning it in chunks: no full-size
        temporaries). Messages name ``name``, the offending value and its
        position (``y[500]``). The base class checks nothing; each loss
        documents its rule (labels in ``[0, classes)``, targets in ``[0, 1]``, ...).

        Parameters
        ----------
        y_true : array, shape (samples, ...)
            Targets (NumPy or CuPy), as given to ``forward`` or ``fit``.
        y_pred_shape : tuple of int
            Shape of the predictions for these targets (``(samples,) + output shape``).
        name : str
            The argument's name in messages (``"y"`` in ``fit``).
        """

    def _prepare_targets(self, y_pred, y_true, xp):
        """Convert ``y_true`` (checked by :meth:`check_targets`); default: same shape as y_pred, cast to its dtype."""
        self._check_same_shape(y_pred, y_true)
        return y_true.astype(y_pred.dtype, copy=False)

    def _scale(self, count: int) -> float:
        """Factor turning Σ ℓ_n into the reduced loss."""
        return 1.0 / count if self.reduction == "mean" else 1.0

    # -- the protocol --------------------------------------------------------
    def forward(self, y_pred, y_true) -> float:
        """Return the reduced loss as a Python float and cache what ``backward`` needs.

        Parameters
        ----------
        y_pred : float array, shape (batch, ...)
            Predictions (probabilities, logits or values, see each loss).
        y_true : array_like
            Targets, on the same device as ``y_pred``; shape and dtype as each
            loss documents (same shape as ``y_pred`` unless stated).
        """
        if checks_skipped():  # arrays and targets checked once by the caller (layers.base.checks_done)
            xp = backend.get_array_module(y_pred)
        else:
            xp = self._check_arguments(y_pred, y_true)
            if not hasattr(y_true, "dtype"):
                y_true = xp.asarray(y_true)
            self.check_targets(y_true, tuple(y_pred.shape))
        y_true = self._prepare_targets(y_pred, y_true, xp)
        values = self._values(y_pred, y_true, xp)
        count = int(values.size)
        self._cache = (y_pred, y_true, count)
        return float(values.sum(dtype=np.float64)) * self._scale(count)

    def backward(self):
        """dE/dy_pred of the last ``forward``: same shape, dtype and device as ``y_pred``."""
        if self._cache is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        y_pred, y_true, count = self._cache
        xp = backend.get_array_module(y_pred)
        grad = self._grad(y_pred, y_true, xp)
        scale = self._scale(count)
        if scale != 1.0:
            grad *= scale  # Python float: keeps grad's dtype
        return grad.astype(y_pred.dtype, copy=False)

    def __call__(self, y_pred, y_true) -> float:
        return self.forward(y_pred, y_true)

    # -- helpers -------------------------------------------------------------
    def _check_arguments(self, y_pred, y_true):
        """The checks of ``forward``'s arguments (not of the target values); returns y_pred's array module."""
        name = type(self).__name__
        check_input(y_pred, name="y_pred", layer=name)
        xp = backend.get_array_module(y_pred)
        if not hasattr(y_true, "dtype"):
            y_true = xp.asarray(y_true)
        backend.get_array_module(y_pred, y_true)  # mixed-device TypeError naming both
        if y_true.dtype.kind not in "biuf":
            raise TypeError(f"{name}: y_true: expected a numeric array, got {_describe(y_true)}")
        if y_pred.size == 0:
            raise ValueError(f"{name}: y_pred: expected a non-empty array, got shape {tuple(y_pred.shape)}")
        if self.per_sample and y_pred.ndim < 1:
            raise ValueError(f"{name}: y_pred: expected an array of shape (..., classes), got a 0-D array")
        return xp

    def _check_same_shape(self, y_pred, y_true, name: str = "y_true"):
        self._check_shape(y_true, tuple(y_pred.shape), name)

    def _check_shape(self, y_true, y_pred_shape, name: str):
        if tuple(y_true.shape) != tuple(y_pred_shape):
            raise ValueError(
                f"{type(self).__name__}: {name}: expected the shape of y_pred {tuple(y_pred_shape)}, "
                f"got shape {tuple(y_true.shape)}"
            )

    def _check_values(self, y_true, is_bad, expected: str, name: str, what: str = "got"):
        """ValueError naming the first entry of ``y_true`` where ``is_bad(chunk, xp)`` holds (chunked scan)."""
        found = first_violation(y_true, is_bad)
        if found is not None:
            index, value = found
            raise ValueError(f"{type(self).__name__}: {name}: expected {expected}, {what} {_number(value)} "
                             f"at {format_index(name, index)}")

    def get_config(self) -> dict:
        """Constructor arguments (for saving a model's training setup)."""
        return {"reduction": self.reduction}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


def _number(value) -> str:
    """A target for a message: integral values without a decimal point, lists as they are."""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def in_unit_interval(chunk, xp):
    """Bad-entry mask for targets that must lie in [0, 1] (NaN is bad too)."""
    return ~((chunk >= 0) & (chunk <= 1))


def probability_epsilon(dtype) -> float:
    """Clip bound ε for probabilities: p is clipped to [ε, 1 - ε] before the logarithm.

    1e-7 (as Keras) for every dtype: ``1 - 1e-7`` is still below 1 in float32,
    so log(1 - p) stays finite, and -log(ε) ≈ 16.1 caps a confidently wrong
    prediction's loss.
    """
    return 1e-7


def stable_sigmoid(z, xp):
    """σ(z) = 1 / (1 + e^{-z}) without overflow: e^{-|z|} never exceeds 1 (eq. 6.3)."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(z.dtype, copy=False)


def log_softmax(z, xp, axis=-1):
    """log softmax(z) = z - max - log Σ exp(z - max) (log-sum-exp; finite at logits ±1000)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=axis, keepdims=True))
