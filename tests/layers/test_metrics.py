"""Metrics people expect (issue 14 §5): reduced over batches from a running state, equal to scikit-learn's
values on the whole set, in fit (History, progress bar) and evaluate; NaN outputs give NaN."""

from __future__ import annotations

import numpy as np
import pytest

import layers
import optimizers
from layers.training import metrics as M

sk = pytest.importorskip("sklearn.metrics", reason="scikit-learn (the examples extra) is the reference")


def _streamed(metric, y_pred, y_true, loss=None, batch=7):
    """The metric's value fed in batches of ``batch`` (what fit and evaluate do)."""
    metric = metric.fresh()
    metric.prepare(loss, y_true, y_pred.shape)
    metric.reset()
    for s in range(0, len(y_pred), batch):
        metric.update(y_pred[s:s + batch], y_true[s:s + batch])
    return metric.result()


@pytest.fixture
def multiclass():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((103, 5)).astype(np.float32)
    labels = rng.integers(0, 5, 103)
    labels[labels == 4] = 3          # class 4 never true: macro averages over the classes that occur, as sklearn
    return logits, labels


def test_classification_scores_equal_scikit_learn(multiclass):
    logits, labels = multiclass
    loss = layers.SparseCategoricalCrossEntropy(from_logits=True)
    predicted = logits.argmax(-1)
    for average in ("macro", "micro"):
        for ours, theirs in ((M.Precision, sk.precision_score), (M.Recall, sk.recall_score),
                             (M.F1Score, sk.f1_score)):
            expected = theirs(labels, predicted, average=average, zero_division=0)
            assert _streamed(ours(average=average), logits, labels, loss) == pytest.approx(expected, abs=1e-12)
    np.testing.assert_array_equal(_streamed(M.ConfusionMatrix(), logits, labels, loss),
                                  sk.confusion_matrix(labels, predicted, labels=range(5)))
    np.testing.assert_array_equal(M.confusion_matrix(labels, predicted, 5),
                                  sk.confusion_matrix(labels, predicted, labels=range(5)))
    for k in (1, 2, 3):
        expected = sk.top_k_accuracy_score(labels, logits, k=k, labels=range(5))
        assert _streamed(M.TopKAccuracy(k), logits, labels, loss) == pytest.approx(expected, abs=1e-12)
    one_hot = np.eye(5, dtype=np.float32)[labels]
    categorical = layers.CategoricalCrossEntropy(from_logits=True)
    assert _streamed(M.F1Score(), logits, one_hot, categorical) == pytest.approx(
        sk.f1_score(labels, predicted, average="macro"), abs=1e-12)


def test_binary_scores_and_auc_equal_scikit_learn():
    rng = np.random.default_rng(1)
    logits = np.round(rng.standard_normal((90, 1)), 1).astype(np.float32)   # rounded: ties, averaged as sklearn
    targets = (rng.random((90, 1)) < 0.4).astype(np.float32)
    loss = layers.BinaryCrossEntropy(from_logits=True)
    decided = (logits > 0).astype(int).ravel()
    assert _streamed(M.F1Score(), logits, targets, loss) == pytest.approx(sk.f1_score(targets.ravel(), decided))
    assert _streamed(M.Precision(), logits, targets, loss) == pytest.approx(
        sk.precision_score(targets.ravel(), decided))
    assert _streamed(M.AUC(), logits, targets, loss) == pytest.approx(
        sk.roc_auc_score(targets.ravel(), logits.ravel()), abs=1e-12)
    # two class columns: the score is z_1 - z_0
    two = np.concatenate([np.zeros_like(logits), logits], axis=1)
    assert _streamed(M.AUC(), two, targets.ravel().astype(np.int64),
                     layers.SparseCategoricalCrossEntropy(from_logits=True)) == pytest.approx(
        sk.roc_auc_score(targets.ravel(), logits.ravel()), abs=1e-12)
    assert np.isnan(M.roc_auc(np.ones(4), np.arange(4.0)))   # one class only: undefined


def test_regression_scores_equal_scikit_learn_per_output_column():
    rng = np.random.default_rng(2)
    truth = rng.standard_normal((101, 3)) * [1.0, 10.0, 0.1] + [0.0, 5.0, 1e3]   # an offset: no cancellation
    pred = (truth + rng.standard_normal((101, 3)) * [0.5, 2.0, 0.05]).astype(np.float32)
    truth = truth.astype(np.float32)
    assert _streamed(M.MeanAbsoluteError(), pred, truth) == pytest.approx(sk.mean_absolute_error(truth, pred),
                                                                          rel=1e-6)
    assert _streamed(M.RootMeanSquaredError(), pred, truth) == pytest.approx(
        sk.root_mean_squared_error(truth, pred), rel=1e-6)
    assert _streamed(M.R2Score(), pred, truth) == pytest.approx(sk.r2_score(truth, pred), rel=1e-6)
    column = truth[:, :1]
    assert _streamed(M.R2Score(), pred[:, :1], column.ravel()) == pytest.approx(
        sk.r2_score(column, pred[:, :1]), rel=1e-6)


def test_f1_and_auc_of_an_epoch_are_not_means_of_batch_values(multiclass):
    logits, labels = multiclass
    loss = layers.SparseCategoricalCrossEntropy(from_logits=True)
    batch_means = np.mean([sk.f1_score(labels[s:s + 7], logits[s:s + 7].argmax(-1), average="macro",
                                       zero_division=0) for s in range(0, 103, 7)])
    whole = _streamed(M.F1Score(), logits, labels, loss)
    assert whole == pytest.approx(sk.f1_score(labels, logits.argmax(-1), average="macro"))
    assert abs(whole - batch_means) > 1e-3


def test_fit_logs_every_metric_and_evaluate_equals_scikit_learn_on_predict():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((120, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(np.float32)[:, None]
    model = layers.Sequential([layers.Dense(6, 8, seed=0), layers.Tanh(), layers.Dense(8, 1, seed=1)])
    names = ["accuracy", "precision", "recall", "f1", "auc", "confusion_matrix"]
    history = model.fit(X, y, loss="bce", optimizer=optimizers.Adam(0.05), epochs=3, batch_size=16, verbose=0,
                        metrics=names, validation_data=(X, y))
    for name in names:
        assert len(history[name]) == 3 and len(history[f"val_{name}"]) == 3
    scores = model.predict(X).ravel()
    decided = (scores > 0).astype(int)
    result = model.evaluate(X, y, metrics=names, batch_size=13)
    assert result["f1"] == pytest.approx(sk.f1_score(y.ravel(), decided))
    assert result["recall"] == pytest.approx(sk.recall_score(y.ravel(), decided))
    assert result["auc"] == pytest.approx(sk.roc_auc_score(y.ravel(), scores))
    np.testing.assert_array_equal(result["confusion_matrix"], sk.confusion_matrix(y.ravel(), decided))
    assert history["val_f1"][-1] == pytest.approx(result["f1"])
    regression = layers.Sequential([layers.Dense(6, 2, seed=0)])
    targets = X[:, :2] * 3.0 + 1.0
    result = regression.fit(X, targets, loss="mse", epochs=2, batch_size=32, verbose=0,
                            metrics=["mae", "rmse", "r2"]).history
    assert set(result) == {"loss", "mae", "rmse", "r2", "lr"}
    final = regression.evaluate(X, targets, metrics=["mae", "rmse", "r2"], batch_size=50)
    assert final["r2"] == pytest.approx(sk.r2_score(targets, regression.predict(X)), rel=1e-5)


def test_progress_bar_shows_the_float_metrics_only():
    from layers.training.loop import _postfix

    matrix = M.ConfusionMatrix()
    f1 = M.F1Score()
    scores, labels = np.array([[0.2, 0.8], [0.9, 0.1]], np.float32), np.array([1, 1])
    for m in (matrix, f1):
        m.prepare(layers.SparseCategoricalCrossEntropy(), labels, scores.shape)
        m.reset()
        m.update(scores, labels)
    assert set(_postfix(0.5, [matrix, f1])) == {"loss", "f1"}


def test_metrics_of_nan_outputs_are_nan():
    logits = np.array([[0.1, 0.9], [np.nan, 0.0], [0.7, 0.3]], np.float32)
    labels = np.array([1, 0, 0])
    loss = layers.SparseCategoricalCrossEntropy(from_logits=True)
    for metric in (M.F1Score(), M.Precision(average="micro"), M.AUC(), M.TopKAccuracy(1), M.Accuracy()):
        assert np.isnan(_streamed(metric, logits, labels, loss, batch=1)), metric
    assert np.isnan(_streamed(M.ConfusionMatrix(), logits, labels, loss)).all()
    assert np.isnan(_streamed(M.R2Score(), logits, logits * 0 + 1.0))


def test_unknown_and_inapplicable_metrics_are_refused_before_training():
    X = np.zeros((8, 2), np.float32)
    model = layers.Sequential([layers.Dense(2, 1, seed=0)])
    with pytest.raises(ValueError, match=r"^metrics: expected one of 'accuracy', .*got 'f2'"):
        model.fit(X, X[:, :1], metrics=["f2"], verbose=0)
    before = model.get_weights()
    with pytest.raises(ValueError, match=r"'precision' needs class predictions"):
        model.fit(X, X[:, :1] + 0.5, loss="mse", metrics=["precision"], verbose=0)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), before))
    with pytest.raises(ValueError, match=r"'top_k_accuracy': top-k accuracy needs one score per class"):
        model.fit(X, X[:, :1], loss="mse", metrics=["top_k_accuracy"], verbose=0)
