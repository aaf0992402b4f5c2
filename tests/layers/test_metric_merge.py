"""Metric.merge and merge_states: the states of several parts (the ranks of a data-parallel fit), merged in
order, give the metric of one pass over the whole data (the single-process value)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import layers
from layers.training import metrics as M
from layers.training.metrics.base import merge_states

SCCE = layers.SparseCategoricalCrossEntropy(from_logits=True)
BCE = layers.BinaryCrossEntropy(from_logits=True)


def _one_pass(metric, y_pred, y_true, loss):
    metric = metric.fresh()
    metric.prepare(loss, y_true, y_pred.shape)
    metric.reset()
    for s in range(0, len(y_pred), 8):
        metric.update(y_pred[s:s + 8], y_true[s:s + 8])
    return metric


def _merged(metric, y_pred, y_true, loss, bounds):
    """Part ``[bounds[i], bounds[i + 1])`` fed to its own copy; the states pickled (as MPI sends them), merged."""
    states = []
    for low, high in zip(bounds[:-1], bounds[1:]):
        part = metric.fresh()
        part.prepare(loss, y_true, y_pred.shape)     # every rank prepares from the whole y
        part.reset()
        for s in range(low, high, 5):
            part.update(y_pred[s:min(s + 5, high)], y_true[s:min(s + 5, high)])
        states.append(pickle.loads(pickle.dumps(part.state())))
    prepared = metric.fresh()
    prepared.prepare(loss, y_true, y_pred.shape)
    return merge_states(prepared, states)


def _data(binary: bool):
    rng = np.random.default_rng(3)
    if binary:
        logits = np.round(rng.standard_normal((61, 1)), 1)             # rounded: ties across the parts
        return logits, (rng.random((61, 1)) < 0.4).astype(np.float64), BCE
    logits = rng.standard_normal((61, 4))
    return logits, rng.integers(0, 4, 61), SCCE


CASES = [
    (M.Accuracy(), False), (M.TopKAccuracy(2), False), (M.ConfusionMatrix(), False),
    (M.F1Score(average="macro"), False), (M.F1Score(average="micro"), False), (M.Precision(), False),
    (M.Recall(), False), (M.F1Score(), True), (M.Precision(), True), (M.AUC(), True),
    (M.MeanAbsoluteError(), True), (M.RootMeanSquaredError(), True), (M.R2Score(), True), (M.R2Score(), False),
    (M.BatchMean(lambda p, t: p.mean()), True),
]


@pytest.mark.parametrize("bounds", [(0, 30, 61), (0, 20, 40, 61), (0, 0, 33, 61)], ids=["2", "3", "3-one-empty"])
@pytest.mark.parametrize("metric, binary", CASES, ids=[f"{type(m).__name__}-{b}" for m, b in CASES])
def test_merged_parts_equal_one_pass_over_the_whole_data(metric, binary, bounds):
    y_pred, y_true, loss = _data(binary)
    if isinstance(metric, M.R2Score) and not binary:    # R² of the 4 logits against one-hot rows: 4 columns
        y_true = np.eye(4)[y_true]
        loss = layers.MeanSquaredError()
    expected = _one_pass(metric, y_pred, y_true, loss).result()
    merged = _merged(metric, y_pred, y_true, loss, bounds)
    np.testing.assert_allclose(merged.result(), expected, rtol=1e-13, atol=1e-15)


def test_f1_and_auc_merged_over_three_parts_equal_one_process_exactly():
    y_pred, y_true, loss = _data(binary=True)
    for metric in (M.F1Score(), M.AUC()):
        assert _merged(metric, y_pred, y_true, loss, (0, 17, 40, 61)).result() == \
            _one_pass(metric, y_pred, y_true, loss).result()


def test_merging_leaves_the_states_and_the_running_metric_as_they_were():
    """A loopback communicator gathers the same state object once per rank: merging must not change it."""
    y_pred, y_true, loss = _data(binary=True)
    for metric in (M.AUC(), M.R2Score(), M.ConfusionMatrix()):
        running = _one_pass(metric, y_pred, y_true, loss)
        before = running.result()
        state = running.state()
        doubled = merge_states(running, [state, state])
        assert np.array_equal(running.result(), before, equal_nan=True)
        assert np.array_equal(merge_states(running, [state]).result(), before, equal_nan=True)
        if isinstance(metric, M.ConfusionMatrix):
            np.testing.assert_array_equal(doubled.result(), 2 * before)
        else:                                   # the same data twice: the same AUC and R²
            np.testing.assert_allclose(doubled.result(), before, rtol=1e-13)


def test_nan_in_one_part_makes_the_merged_metric_nan():
    y_pred, y_true, loss = _data(binary=False)
    y_pred = y_pred.copy()
    y_pred[40, 1] = np.nan
    for metric in (M.Accuracy(), M.TopKAccuracy(2), M.F1Score()):
        assert np.isnan(_merged(metric, y_pred, y_true, loss, (0, 30, 61)).result())


def test_a_metric_without_merge_says_so():
    class Last(M.Metric):
        def update(self, y_pred, y_true):
            self.value = float(y_pred.mean())

        def result(self):
            return self.value

    with pytest.raises(NotImplementedError, match="Last.merge is not implemented"):
        Last().merge(Last())
    with pytest.raises(ValueError, match="expected at least one state"):
        merge_states(M.Accuracy(), [])
