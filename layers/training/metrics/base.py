"""The Metric protocol: a running state updated batch by batch, read once per epoch.

A metric is reduced over the batches of an epoch from its *state* (counts, a
confusion matrix, sums, the scores seen), never as a mean of per-batch values
where that would be wrong (F1, AUC, R² of a whole epoch are not the means of
their batch values). ``fit`` and ``evaluate`` call, per run::

    metric.prepare(loss, y_true, output_shape)   # once: how to read predictions; False: does not apply
    metric.reset()                               # every epoch (and every evaluation)
    metric.update(y_pred, y_true)                # every batch
    metric.result()                              # the epoch's value (a float; ConfusionMatrix: an array)

The state lives on the predictions' device (no host synchronisation per
batch on the GPU, except for :class:`~layers.training.metrics.AUC`'s scores).
A data-parallel ``fit`` gathers every rank's :meth:`Metric.state` and
combines them with :meth:`Metric.merge` in rank order (:func:`merge_states`),
so the value is the one of a single process on the global batches.
"""

from __future__ import annotations

import copy

import numpy as np

import backend

from .accuracy_rules import BINARY, CATEGORICAL, SIGN, SPARSE, accuracy_kind


class Metric:
    """Base class of the metrics of ``fit(metrics=...)`` and ``evaluate``.

    Attributes
    ----------
    name : str
        The key in the logs and in :class:`~layers.training.history.History`
        (``"val_" + name`` on validation data).
    """

    name = "metric"
    #: The attributes holding the running state: what :meth:`reset` sets, :meth:`update` adds to,
    #: :meth:`state` copies to the host and :meth:`merge` combines.
    state_names: tuple = ()

    def prepare(self, loss, y_true, output_shape) -> bool:
        """Decide how to read predictions; return False when the metric does not apply (it is then dropped).

        Parameters
        ----------
        loss : Loss
            The loss of the run (it says whether outputs are logits, probabilities or scores).
        y_true : array
            Targets: the whole ``y`` (arrays) or the first batch's (generators).
        output_shape : tuple of int
            The model's output shape for one batch.

        Raises
        ------
        ValueError
            The metric was asked for explicitly and cannot be computed for this loss and these targets.
        """
        return True

    def reset(self) -> None:
        """Forget the state (a new epoch)."""

    def update(self, y_pred, y_true) -> None:
        """Add one batch to the state."""
        raise NotImplementedError(f"{type(self).__name__}.update is not implemented")

    def result(self):
        """The metric over every batch since :meth:`reset` (NaN when a prediction was NaN)."""
        raise NotImplementedError(f"{type(self).__name__}.result is not implemented")

    def merge(self, other: "Metric") -> None:
        """Add the state of ``other`` (the same metric, prepared alike, over other batches) to this one.

        Afterwards :meth:`result` is the metric over the batches of both, as
        if one object had seen them all (another rank's batches in a
        data-parallel fit). ``other`` is left as it was; the merged state
        replaces this one's attributes (new arrays, none changed in place).
        A metric written for data-parallel training implements it with
        :attr:`state_names`.
        """
        raise NotImplementedError(f"{type(self).__name__}.merge is not implemented (a data-parallel fit combines "
                                  "the ranks' states with it)")

    def state(self) -> dict:
        """The running state (:attr:`state_names`) as host values: picklable, what one rank sends the others.

        Device arrays become NumPy arrays, lists become new lists; the metric itself is not changed.
        """
        return {name: _host(getattr(self, name)) for name in self.state_names}

    def fresh(self) -> "Metric":
        """An unprepared copy with the same settings (each run and the validation pass get their own)."""
        return copy.deepcopy(self)

    def __call__(self, y_pred, y_true, loss=None):
        """The metric of one set of predictions: ``prepare``, ``reset``, ``update`` and ``result`` at once.

        ``loss`` says how predictions are read (default: read as probabilities
        or scores, see each metric).
        """
        metric = self.fresh()
        metric.prepare(loss, y_true, tuple(y_pred.shape))
        metric.reset()
        metric.update(y_pred, y_true)
        return metric.result()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


def merge_states(metric: Metric, states) -> Metric:
    """A copy of ``metric`` whose state is ``states`` (from :meth:`Metric.state`) merged in their order.

    Parameters
    ----------
    metric : Metric
        Prepared; its settings (name, decision rule, function) are shared by the copy, its state is not read.
    states : sequence of dict
        One :meth:`Metric.state` per part (per rank, in rank order), at least one.

    Returns
    -------
    Metric
        ``copy(metric)`` with ``states[0]``, then ``merge`` of a copy with
        each later state: the same bits wherever the same states are merged.
    """
    merged = None
    for state in states:
        part = copy.copy(metric)
        for name, value in state.items():
            setattr(part, name, value)
        if merged is None:
            merged = part
        else:
            merged.merge(part)
    if merged is None:
        raise ValueError(f"merge_states: states: expected at least one state of {metric!r}, got none")
    return merged


def _host(value):
    """A state value on the host: NumPy arrays for device arrays, new lists for lists, other values as they are."""
    if isinstance(value, list):
        return [_host(v) for v in value]
    if backend.is_cupy_array(value):
        return backend.to_numpy(value)
    return value


class BatchMean(Metric):
    """A user's function ``fn(y_pred, y_true) -> float``, averaged over batches weighted by batch size.

    Right for per-sample means (a mean absolute error); for anything else
    (F1, AUC) write a :class:`Metric` with a state.
    """

    state_names = ("total", "count")

    def __init__(self, fn, name=None):
        self.fn = fn
        self.name = name or getattr(fn, "__name__", "metric")
        self.reset()

    def reset(self):
        self.total, self.count = 0.0, 0

    def update(self, y_pred, y_true):
        self.total += float(self.fn(y_pred, y_true)) * len(y_pred)
        self.count += len(y_pred)

    def merge(self, other):
        self.total, self.count = self.total + other.total, self.count + other.count

    def result(self):
        return self.total / max(self.count, 1)


def has_nan(y_pred):
    """A device bool: does ``y_pred`` hold a NaN (no host synchronisation)?"""
    xp = backend.get_array_module(y_pred)
    return xp.isnan(y_pred).any()


class ClassDecisions:
    """How a classification metric turns predictions and targets into class labels (the accuracy rules).

    ``kind`` and ``threshold`` come from :func:`accuracy_kind`; ``classes``
    is the number of classes (2 for the binary kinds, whose decisions are
    taken element by element).
    """

    def __init__(self, loss, y_true, output_shape, metric: str):
        found = accuracy_kind(loss, y_true, tuple(output_shape)) if loss is not None else kind_without_loss(
            y_true, output_shape)
        if found is None:
            raise ValueError(f"metrics: {metric!r} needs class predictions; with loss {type(loss).__name__} and "
                             "targets that are not class labels, one-hot rows or 0/1 values it does not apply")
        self.kind, self.threshold = found
        width = output_shape[-1] if len(output_shape) > 1 else 1
        self.classes = 2 if self.kind in (BINARY, SIGN) else int(width)

    def labels(self, y_pred, y_true):
        """``(predicted, true)`` integer label arrays of one shape, on the predictions' device."""
        xp = backend.get_array_module(y_pred)
        if self.kind == SPARSE:
            predicted = xp.argmax(y_pred, axis=-1)
            return predicted, y_true.reshape(predicted.shape).astype(xp.int64)
        if self.kind == CATEGORICAL:
            predicted = xp.argmax(y_pred, axis=-1)
            truth = y_true if y_true.ndim == y_pred.ndim - 1 else xp.argmax(y_true, axis=-1)
            return predicted, truth.astype(xp.int64)
        truth = y_true.reshape(y_pred.shape) > (0.0 if self.kind == SIGN else 0.5)
        threshold = self.threshold if self.threshold is not None else (0.5 if self.kind == BINARY else 0.0)
        return (y_pred > threshold).astype(xp.int64), truth.astype(xp.int64)


def kind_without_loss(y_true, output_shape):
    """``(kind, threshold)`` for a metric called without a loss: class scores for several columns, else p > 0.5."""
    width = output_shape[-1] if len(output_shape) > 1 else 1
    if width > 1:
        labels = y_true.ndim == len(output_shape) - 1
        return (SPARSE if labels else CATEGORICAL), None
    return BINARY, 0.5


def host_float(value) -> float:
    """A device scalar as a Python float (one synchronisation on the GPU)."""
    return float(backend.to_numpy(value)) if not isinstance(value, (int, float)) else float(value)


def as_columns(a, width: int):
    """``a`` as (rows, width) float64 (regression metrics compare outputs column by column)."""
    return a.reshape(-1, width).astype(np.float64, copy=False)
