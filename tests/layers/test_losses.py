"""Losses (layers/losses.py): gradient checks, known values, limits at ±1000, bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

import backend
from layers.losses import (
    BinaryCrossEntropy,
    CategoricalCrossEntropy,
    Hinge,
    Huber,
    KLDivergence,
    Loss,
    MeanAbsoluteError,
    MeanSquaredError,
    MulticlassHinge,
    SparseCategoricalCrossEntropy,
    get_loss,
)
from layers.testing import check_loss_gradients

B, K = 5, 4


def _softmax(z):
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def _away_from_zero(rng, shape, low=0.2, high=1.0):
    return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(low, high, size=shape)


# Each case: (id, loss factory, data(rng) -> (y_pred, y_true)); inputs sampled away from kinks.
def _regression(rng):
    y_true = rng.standard_normal((B, K))
    return y_true + _away_from_zero(rng, (B, K)), y_true


def _huber(rng):
    y_true = rng.standard_normal((B, K))
    small = _away_from_zero(rng, (B, K), 0.1, 0.8)   # quadratic part (δ = 1)
    large = _away_from_zero(rng, (B, K), 1.2, 3.0)   # linear part
    residual = np.where(rng.uniform(size=(B, K)) < 0.5, small, large)
    return y_true + residual, y_true


def _bce_probabilities(rng):
    return rng.uniform(0.05, 0.95, (B, K)), rng.uniform(0.0, 1.0, (B, K))


def _bce_logits(rng):
    return 3.0 * rng.standard_normal((B, K)), rng.integers(0, 2, (B, K))


def _hinge(rng):
    t = rng.choice([-1.0, 1.0], size=(B, K))
    return t * (1.0 + _away_from_zero(rng, (B, K))), t


def _categorical_probabilities(rng):
    return _softmax(rng.standard_normal((B, K))), _softmax(2.0 * rng.standard_normal((B, K)))


def _categorical_logits_3d(rng):
    labels = rng.integers(0, K, (2, 3))
    return 4.0 * rng.standard_normal((2, 3, K)), np.eye(K)[labels]


def _sparse(rng):
    return _softmax(rng.standard_normal((B, K))), rng.integers(0, K, B)


def _sparse_logits(rng):
    return 4.0 * rng.standard_normal((B, K)), rng.integers(0, K, B)


def _multiclass_hinge(rng):
    labels = rng.integers(0, K, B)
    scores = rng.standard_normal((B, K))
    for n in range(B):  # keep every margin s_j - s_y + 1 away from the kink at 0
        while True:
            margins = scores[n] - scores[n, labels[n]] + 1.0
            margins[labels[n]] = 1.0
            if np.all(np.abs(margins) > 0.1):
                break
            scores[n] = rng.standard_normal(K)
    return scores, np.eye(K)[labels]


CASES = [
    ("mse_mean", lambda: MeanSquaredError(), _regression),
    ("mse_book", lambda: MeanSquaredError(reduction="book"), _regression),
    ("mse_sum", lambda: MeanSquaredError(reduction="sum"), _regression),
    ("mae", lambda: MeanAbsoluteError(), _regression),
    ("huber", lambda: Huber(delta=1.0), _huber),
    ("bce", lambda: BinaryCrossEntropy(), _bce_probabilities),
    ("bce_logits", lambda: BinaryCrossEntropy(from_logits=True), _bce_logits),
    ("hinge", lambda: Hinge(), _hinge),
    ("cce", lambda: CategoricalCrossEntropy(), _categorical_probabilities),
    ("cce_logits_3d", lambda: CategoricalCrossEntropy(from_logits=True), _categorical_logits_3d),
    ("scce", lambda: SparseCategoricalCrossEntropy(), _sparse),
    ("scce_logits", lambda: SparseCategoricalCrossEntropy(from_logits=True), _sparse_logits),
    ("kl", lambda: KLDivergence(), _categorical_probabilities),
    ("multiclass_hinge", lambda: MulticlassHinge(), _multiclass_hinge),
]


def _on_device(*arrays):
    return tuple(backend.to_device(np.asarray(a)) for a in arrays)


@pytest.mark.parametrize("make_loss, make_data", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_gradient_matches_central_differences(device, make_loss, make_data):
    y_pred, y_true = _on_device(*make_data(np.random.default_rng(7)))
    report = check_loss_gradients(make_loss(), y_pred, y_true)
    assert report.ok(1e-6), str(report)


@pytest.mark.parametrize("make_loss, make_data", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_returns_float_and_backward_keeps_shape_dtype_device(device, make_loss, make_data, dtype):
    y_pred, y_true = make_data(np.random.default_rng(3))
    y_pred, y_true = _on_device(y_pred.astype(dtype), y_true)
    loss = make_loss()
    value = loss(y_pred, y_true)
    grad = loss.backward()
    assert type(value) is float and math.isfinite(value)
    assert grad.shape == y_pred.shape and grad.dtype == np.dtype(dtype)
    assert backend.get_array_module(grad) is backend.get_array_module(y_pred)


# -- known values ------------------------------------------------------------------------------

def test_mse_reductions_and_book_gradient(device):
    y_pred, y_true = _on_device([[1.0, 2.0], [3.0, 4.0]], [[0.0, 0.0], [0.0, 1.0]])
    book = MeanSquaredError(reduction="book")
    assert book(y_pred, y_true) == pytest.approx(0.5 * (1 + 4 + 9 + 9))  # eq. 6.4: 1/2 Σ_c Σ_j (y - d)²
    np.testing.assert_allclose(backend.to_numpy(book.backward()), [[1, 2], [3, 3]])  # dE/dy = y - d
    assert MeanSquaredError()(y_pred, y_true) == pytest.approx(23 / 4)
    assert MeanSquaredError(reduction="sum")(y_pred, y_true) == pytest.approx(23)


def test_mse_book_reproduces_slides_worked_example(device):
    # Slides 003: o = 0.191 for target 1 gives E = 1/2 (o - y)^2 = 0.327.
    loss = MeanSquaredError(reduction="book")
    assert loss(*_on_device([[0.191]], [[1.0]])) == pytest.approx(0.327, abs=5e-4)


def test_mae_and_huber_known_values(device):
    y_pred, y_true = _on_device([0.5, -3.0, 1.0], [0.0, 0.0, 1.0])
    assert MeanAbsoluteError()(y_pred, y_true) == pytest.approx(3.5 / 3)
    huber = Huber(delta=1.0)
    assert huber(y_pred, y_true) == pytest.approx((0.125 + 2.5 + 0.0) / 3)  # r²/2 ; δ(|r| - δ/2)
    np.testing.assert_allclose(backend.to_numpy(huber.backward()), np.array([0.5, -1.0, 0.0]) / 3)


def test_bce_known_value_and_logits_agree_with_sigmoid(device):
    p, y = _on_device([0.8, 0.3], [1.0, 0.0])
    assert BinaryCrossEntropy()(p, y) == pytest.approx(-(math.log(0.8) + math.log(0.7)) / 2)
    z = np.array([[-2.0, 0.5], [1.5, 3.0]])
    labels = np.array([[0, 1], [1, 0]])
    z_dev, labels_dev = _on_device(z, labels)
    from_logits = BinaryCrossEntropy(from_logits=True)
    on_probs = BinaryCrossEntropy()
    assert from_logits(z_dev, labels_dev) == pytest.approx(on_probs(*_on_device(1 / (1 + np.exp(-z)), labels)))


def test_cce_from_logits_equals_cce_of_softmax(device, rng):
    z = 3.0 * rng.standard_normal((6, 5))
    d = np.eye(5)[rng.integers(0, 5, 6)]
    from_logits = CategoricalCrossEntropy(from_logits=True)
    value = from_logits(*_on_device(z, d))
    assert value == pytest.approx(CategoricalCrossEntropy()(*_on_device(_softmax(z), d)), rel=1e-12)
    # dE/dz = (softmax(z) - d) / N
    np.testing.assert_allclose(backend.to_numpy(from_logits.backward()), (_softmax(z) - d) / 6, atol=1e-15)


def test_cce_slides_example_and_sparse_equals_one_hot(device):
    # Slides 003: probabilities (0.7, 0.2, 0.1) against one-hot (1, 0, 0): -log 0.7.
    assert CategoricalCrossEntropy()(*_on_device([[0.7, 0.2, 0.1]], [[1, 0, 0]])) == pytest.approx(-math.log(0.7))
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6]])
    labels = np.array([0, 2])
    dense = CategoricalCrossEntropy()
    sparse = SparseCategoricalCrossEntropy()
    assert sparse(*_on_device(probs, labels)) == pytest.approx(dense(*_on_device(probs, np.eye(3)[labels])))
    np.testing.assert_allclose(backend.to_numpy(sparse.backward()), backend.to_numpy(dense.backward()))
    # labels of shape (batch, 1) and integral floats are accepted
    assert sparse(*_on_device(probs, labels[:, None].astype(float))) == pytest.approx(
        -(math.log(0.7) + math.log(0.6)) / 2)


def test_hinge_known_values_and_zero_one_labels(device):
    y_pred = np.array([0.3, -2.0, 2.0, 1.5])
    t = np.array([1.0, -1.0, -1.0, 1.0])
    loss = Hinge()
    assert loss(*_on_device(y_pred, t)) == pytest.approx((0.7 + 0.0 + 3.0 + 0.0) / 4)
    np.testing.assert_allclose(backend.to_numpy(loss.backward()), np.array([-1.0, 0.0, 1.0, 0.0]) / 4)
    assert loss(*_on_device(y_pred, (t + 1) / 2)) == pytest.approx((0.7 + 3.0) / 4)  # {0, 1} -> {-1, 1}


def test_kl_divergence_known_value(device):
    value = KLDivergence()(*_on_device([[0.25, 0.75], [0.5, 0.5]], [[0.5, 0.5], [1.0, 0.0]]))
    expected = (0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75) + math.log(1.0 / 0.5)) / 2
    assert value == pytest.approx(expected)


def test_multiclass_hinge_cs231n_example(device):
    # Scores of three images (rows) for cat, car, frog; correct classes cat, car, frog: losses 2.9, 0, 12.9.
    scores = np.array([[3.2, 5.1, -1.7], [1.3, 4.9, 2.0], [2.2, 2.5, -3.1]])
    loss = MulticlassHinge()
    assert loss(*_on_device(scores, np.eye(3))) == pytest.approx((2.9 + 0.0 + 12.9) / 3)
    expected = np.array([[-1, 1, 0], [0, 0, 0], [1, 1, -2]]) / 3
    np.testing.assert_allclose(backend.to_numpy(loss.backward()), expected)


# -- limits at ±1000, no warnings ------------------------------------------------------------

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logit_losses_at_plus_minus_1000(device, dtype):
    z = backend.to_device(np.array([[1000.0, -1000.0, 0.0]], dtype=dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = BinaryCrossEntropy(from_logits=True)
        assert bce(z, backend.to_device(np.array([[1, 0, 0]]))) == pytest.approx(math.log(2) / 3, rel=1e-6)
        assert bce(z, backend.to_device(np.array([[0, 1, 0]]))) == pytest.approx((2000 + math.log(2)) / 3, rel=1e-6)
        np.testing.assert_allclose(backend.to_numpy(bce.backward()), np.array([[1, -1, 0.5]]) / 3, rtol=1e-6)
        for loss, target in [(CategoricalCrossEntropy(from_logits=True), np.array([[0, 1, 0]])),
                             (SparseCategoricalCrossEntropy(from_logits=True), np.array([1]))]:
            assert loss(z, backend.to_device(target)) == pytest.approx(2000.0, rel=1e-6)
            grad = backend.to_numpy(loss.backward())
            assert grad.dtype == dtype
            np.testing.assert_allclose(grad, [[1, -1, 0]], atol=1e-6)
            target_right = np.array([[1, 0, 0]]) if target.ndim == 2 else np.array([0])
            assert loss(z, backend.to_device(target_right)) == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_probability_losses_are_clipped_and_finite(device, dtype):
    p = backend.to_device(np.array([[1000.0, -1000.0, 1.0, 0.0]], dtype=dtype))
    wrong = backend.to_device(np.array([[0, 1, 0, 1]]))
    right = backend.to_device(np.array([[1, 0, 1, 0]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bce = BinaryCrossEntropy()
        assert bce(p, right) == pytest.approx(0.0, abs=1e-6)
        assert 15.0 < bce(p, wrong) < 16.2  # -log(1e-7) = 16.1 (float32 rounds 1 - 1e-7)
        grad = backend.to_numpy(bce.backward())
        assert np.all(np.isfinite(grad)) and grad.dtype == dtype
        for loss in (CategoricalCrossEntropy(), KLDivergence()):
            value = loss(p, wrong)
            assert math.isfinite(value) and value > 15.0
            assert np.all(np.isfinite(backend.to_numpy(loss.backward())))
        sparse = SparseCategoricalCrossEntropy()
        assert sparse(p, backend.to_device(np.array([1]))) == pytest.approx(-math.log(1e-7), rel=1e-3)


# -- bad input --------------------------------------------------------------------------------

@pytest.mark.parametrize("make_loss", [c[1] for c in CASES if "scce" not in c[0]],
                         ids=[c[0] for c in CASES if "scce" not in c[0]])
def test_shape_mismatch_names_both_shapes(make_loss):
    with pytest.raises(ValueError, match=r"\(3, 2\).*\(3, 1\)"):
        make_loss()(np.zeros((3, 2)), np.zeros((3, 1)))


@pytest.mark.parametrize("bad", [np.array([[1, 2]]), np.array([[1, 2]], dtype=object), [[0.5, 0.5]]])
def test_non_float_y_pred_is_a_type_error(bad):
    with pytest.raises(TypeError, match="y_pred"):
        MeanSquaredError()(bad, np.array([[0.0, 1.0]]))


def test_object_y_true_is_a_type_error():
    with pytest.raises(TypeError, match="y_true"):
        MeanSquaredError()(np.zeros(2), np.array([None, 1.0], dtype=object))


def test_sparse_label_out_of_range_names_label_and_range():
    loss = SparseCategoricalCrossEntropy(from_logits=True)
    with pytest.raises(ValueError, match=r"label 5 is out of range \[0, 3\)"):
        loss(np.zeros((2, 3)), np.array([0, 5]))
    with pytest.raises(ValueError, match=r"label -1 is out of range \[0, 3\)"):
        loss(np.zeros((2, 3)), np.array([-1, 0]))
    with pytest.raises(ValueError, match=r"integer class labels, got the label 1.5"):
        loss(np.zeros((2, 3)), np.array([1.5, 0.0]))
    with pytest.raises(ValueError, match=r"shape \(2,\).*got shape \(2, 3\)"):
        loss(np.zeros((2, 3)), np.zeros((2, 3)))


def test_hinge_rejects_other_labels():
    with pytest.raises(ValueError, match="got the label 2"):
        Hinge()(np.zeros(3), np.array([1.0, 2.0, -1.0]))
    with pytest.raises(ValueError, match=r"mix of -1 \(at y_true\[2\]\) and 0 \(at y_true\[1\]\)"):
        Hinge()(np.zeros(3), np.array([1.0, 0.0, -1.0]))


def test_constructor_and_protocol_errors():
    with pytest.raises(ValueError, match="reduction.*'book'.*got 'avg'"):
        MeanSquaredError(reduction="avg")
    with pytest.raises(ValueError, match="reduction"):
        MeanAbsoluteError(reduction="book")
    with pytest.raises(ValueError, match="Huber: delta: expected a number > 0, got -1"):
        Huber(delta=-1)
    with pytest.raises(ValueError, match="margin"):
        MulticlassHinge(margin=0)
    with pytest.raises(RuntimeError, match="before forward"):
        MeanSquaredError().backward()
    with pytest.raises(ValueError, match="non-empty"):
        MeanSquaredError()(np.zeros((0, 2)), np.zeros((0, 2)))


NAMES = {
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError, "mae": MeanAbsoluteError,
    "huber": Huber, "bce": BinaryCrossEntropy, "binary_crossentropy": BinaryCrossEntropy, "hinge": Hinge,
    "cce": CategoricalCrossEntropy, "categorical_crossentropy": CategoricalCrossEntropy,
    "sparse_categorical_crossentropy": SparseCategoricalCrossEntropy, "kl_divergence": KLDivergence,
    "multiclass_hinge": MulticlassHinge,
}


@pytest.mark.parametrize("name, cls", NAMES.items())
def test_get_loss_names(name, cls):
    assert type(get_loss(name)) is cls
    assert type(get_loss(name.upper())) is cls


def test_get_loss_objects_kwargs_and_unknown():
    loss = Huber(2.0)
    assert get_loss(loss) is loss
    assert get_loss("cce", from_logits=True).from_logits is True
    assert isinstance(get_loss(MeanSquaredError), MeanSquaredError)
    assert isinstance(get_loss("mse"), Loss)
    with pytest.raises(ValueError, match="unknown loss 'msee'.*mse"):
        get_loss("msee")
    with pytest.raises(TypeError, match="got int"):
        get_loss(3)


def test_layers_package_exports_losses():
    import layers

    assert layers.MeanSquaredError is MeanSquaredError and layers.get_loss is get_loss


# ----------------------------------------------------------------------------- issue 13: targets, flags, precision
def test_sparse_from_logits_is_exact_at_large_logits_like_categorical():
    """[[1e4, 1e4]], label 0: log 2 = 0.693147 (float32's log-sum-exp used to give 0.69336)."""
    z = np.array([[1e4, 1e4], [1e4, -1e4]], np.float32)
    sparse = SparseCategoricalCrossEntropy(from_logits=True, reduction="sum")
    dense = CategoricalCrossEntropy(from_logits=True, reduction="sum")
    assert sparse(z[:1], np.array([0])) == pytest.approx(math.log(2), rel=1e-6)
    assert sparse(z, np.array([0, 1])) == dense(z, np.array([[1, 0], [0, 1]], np.float32))
    np.testing.assert_array_equal(sparse.backward(), dense.backward())


@pytest.mark.parametrize("cls", [BinaryCrossEntropy, CategoricalCrossEntropy, SparseCategoricalCrossEntropy])
@pytest.mark.parametrize("flag", ["no", "False", 1, 0.0, None, np.array([True])])
def test_from_logits_must_be_a_bool(cls, flag):
    with pytest.raises(TypeError, match=rf"{cls.__name__}: from_logits: expected True or False, got"):
        cls(from_logits=flag)
    assert cls(from_logits=np.bool_(True)).from_logits is True


@pytest.mark.parametrize("loss, y_pred_shape, y_true, message", [
    (BinaryCrossEntropy(), (4, 1), np.array([[0.0], [1.0], [2.0], [1.0]]),
     r"BinaryCrossEntropy: y: expected targets in \[0, 1\], got 2 at y\[2, 0\]"),
    (BinaryCrossEntropy(from_logits=True), (3,), np.array([0.5, -0.25, 1.0]),
     r"expected targets in \[0, 1\], got -0.25 at y\[1\]"),
    (CategoricalCrossEntropy(), (2, 3), np.array([[0.0, 1.0, 0.0], [1.5, -0.5, 0.0]]),
     r"CategoricalCrossEntropy: y: expected target probabilities in \[0, 1\], got 1.5 at y\[1, 0\]"),
    (CategoricalCrossEntropy(), (2, 3), np.ones((2, 4)), r"y: expected the shape of y_pred \(2, 3\), got shape"),
    (KLDivergence(), (1, 2), np.array([[-0.1, 1.1]]), r"KLDivergence: y: expected .* got -0.1 at y\[0, 0\]"),
    (Hinge(), (3,), np.array([1, 3, -1]), r"Hinge: y: expected labels in \{-1, 1\} \(or \{0, 1\}\), got the label 3"),
    (MulticlassHinge(), (2, 3), np.array([[0, 1, 0], [1, 1, 0]]), r"one-hot rows \(a single 1\), got \[1, 1, 0\]"
                                                                      r" at y\[1\]"),
    (MulticlassHinge(), (1, 2), np.array([[0.5, 0.5]]), r"one-hot targets \(0 or 1\), got 0.5 at y\[0, 0\]"),
    (SparseCategoricalCrossEntropy(), (3, 4), np.array([0, 1.5, 2]), r"integer class labels, got the label 1.5 "
                                                                     r"at y\[1\]"),
    (SparseCategoricalCrossEntropy(), (3, 4), np.array([[0], [1], [2]]), None),
])
def test_check_targets_names_the_argument_the_value_and_its_position(loss, y_pred_shape, y_true, message):
    if message is None:
        loss.check_targets(y_true, y_pred_shape, name="y")  # a trailing axis of 1 is accepted
        return
    with pytest.raises(ValueError, match=message):
        loss.check_targets(y_true, y_pred_shape, name="y")


def test_a_label_out_of_range_late_in_a_large_y_is_found_with_its_position():
    y = np.zeros(3_000_000, np.int64)  # more than one chunk
    y[2_500_001] = 7
    with pytest.raises(ValueError, match=r"y: label 7 is out of range \[0, 3\) for y_pred with 3 classes, "
                                         r"at y\[2500001\]"):
        SparseCategoricalCrossEntropy().check_targets(y, (len(y), 3), name="y")


def test_forward_runs_the_same_target_check():
    with pytest.raises(ValueError, match=r"BinaryCrossEntropy: y_true: expected targets in \[0, 1\], got 2"):
        BinaryCrossEntropy()(np.full((1, 1), 0.5, np.float32), np.array([[2.0]]))
    with pytest.raises(ValueError, match=r"y_true: expected targets in \[0, 1\], got nan"):
        BinaryCrossEntropy()(np.full((1, 1), 0.5, np.float32), np.array([[np.nan]]))


def test_the_base_check_targets_accepts_anything():
    Loss().check_targets(np.array(["anything"]), (7, 7))
    MeanSquaredError().check_targets(np.full(3, 1e9), (3,))


def test_kl_divergence_is_exact_for_tiny_targets():
    """d log d used to be computed with d clipped to 1e-7: off by 4.6e-9 at d = 1e-9 (PyTorch's xlogy is exact)."""
    d = np.array([[1e-9, 0.0, 1.0 - 1e-9]])
    p = np.array([[0.25, 0.25, 0.5]])
    exact = sum(t * (math.log(t) - math.log(q)) for t, q in zip(d[0], p[0]) if t > 0)
    assert KLDivergence()(p, d) == pytest.approx(exact, rel=1e-14)
