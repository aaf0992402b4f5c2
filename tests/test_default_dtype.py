"""The default dtype follows the device's rule (a ContextVar per thread/task, ``use_dtype`` restores it), and
float16 is refused everywhere it could enter a computation (issue 13, sections 5 and 6)."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import backend
import layers
from layers import losses


def test_set_default_dtype_refuses_float16_saying_why():
    with pytest.raises(TypeError, match=r"dtype: expected float32 or float64, got float16 \(float16 is not supported"):
        backend.set_default_dtype(np.float16)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got float128|longdouble"):
        backend.set_default_dtype(np.longdouble)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got str 'half-ish'"):
        backend.set_default_dtype("half-ish")
    assert backend.get_default_dtype() == np.float32


def test_use_dtype_restores_the_previous_default_even_on_error():
    with backend.use_dtype(np.float64) as dtype:
        assert dtype == np.float64 and backend.get_default_dtype() == np.float64
        assert layers.Dense(2, 3).W.dtype == np.float64
        with backend.use_dtype("float32"):
            assert backend.get_default_dtype() == np.float32
        assert backend.get_default_dtype() == np.float64
    assert backend.get_default_dtype() == np.float32
    with pytest.raises(RuntimeError, match="inside"), backend.use_dtype(np.float64):
        raise RuntimeError("inside")
    assert backend.get_default_dtype() == np.float32
    with pytest.raises(TypeError, match="float16"), backend.use_dtype(np.float16):
        pass  # pragma: no cover (refused before the block)


def test_the_default_dtype_is_per_thread_like_the_device():
    seen = {}

    def worker(name, dtype):
        if dtype is not None:
            backend.set_default_dtype(dtype)
        barrier.wait()  # every thread has set its own default before any reads
        seen[name] = (backend.get_default_dtype(), layers.Dense(2, 2).W.dtype)

    barrier = threading.Barrier(3)
    backend.set_default_dtype(np.float64)  # the main thread's choice does not leak into new threads
    try:
        threads = [threading.Thread(target=worker, args=("f64", np.float64)),
                   threading.Thread(target=worker, args=("fresh", None)),
                   threading.Thread(target=worker, args=("f32", np.float32))]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert backend.get_default_dtype() == np.float64  # nor does theirs into the main thread
    finally:
        backend.set_default_dtype(np.float32)
    assert seen == {"f64": (np.float64, np.float64), "fresh": (np.float32, np.float32),
                    "f32": (np.float32, np.float32)}


def test_astype_refuses_float16_and_changes_nothing():
    model = layers.Sequential([layers.Dense(2, 3, seed=0), layers.BatchNormalization(3)])
    before = [p.copy() for p in model.params]
    for target in (model, model[0]):
        with pytest.raises(TypeError, match=r"astype: dtype: expected float32 or float64, got float16"):
            target.astype(np.float16)
    assert all(p.dtype == np.float32 for p in model.params)
    assert all(b.dtype == np.float32 for b in model.buffers.values())
    for a, b in zip(before, model.params):
        np.testing.assert_array_equal(a, b)


def test_a_float16_checkpoint_is_refused(tmp_path):
    model = layers.Sequential([layers.Dense(2, 3, seed=0)])
    path = model.save(tmp_path / "m.npz")
    with np.load(path) as data:
        entries = {k: data[k] for k in data.files}
    entries["param.0"] = entries["param.0"].astype(np.float16)
    np.savez(tmp_path / "half.npz", **entries)
    with pytest.raises(layers.CheckpointError, match=r"half.npz.*param.0: expected a float array \(float32 or "
                                                     r"float64\), the file holds dtype float16"):
        layers.Sequential.load(tmp_path / "half.npz")


def _float16_refusers():
    x2 = np.ones((2, 3), np.float16)
    x4 = np.ones((2, 4, 4, 3), np.float16)
    return [
        ("Dense", lambda: layers.Dense(3, 2).forward(x2)),
        ("Softmax", lambda: layers.Softmax().forward(x2)),
        ("Dropout", lambda: layers.Dropout(0.5).forward(x2)),
        ("Flatten", lambda: layers.Flatten().forward(x4)),
        ("BatchNormalization", lambda: layers.BatchNormalization(3).forward(x2)),
        ("LayerNormalization", lambda: layers.LayerNormalization(3).forward(x2)),
        ("Convolution2D", lambda: layers.Convolution2D(3, 2, 3).forward(x4)),
        ("MaxPooling2D", lambda: layers.MaxPooling2D().forward(x4)),
        ("AveragePooling2D", lambda: layers.AveragePooling2D().forward(x4)),
        ("GlobalAveragePooling2D", lambda: layers.GlobalAveragePooling2D().forward(x4)),
        ("PReLU", lambda: layers.PReLU().forward(x2)),
        ("Mish", lambda: layers.Mish().forward(x2)),
        ("BinaryCrossEntropy", lambda: losses.BinaryCrossEntropy()(x2, np.zeros((2, 3)))),
    ]


@pytest.mark.parametrize("name, call", _float16_refusers(), ids=[n for n, _ in _float16_refusers()])
def test_every_layer_and_loss_refuses_float16_inputs(name, call):
    argument = "y_pred" if name.endswith("Entropy") else "input_data"
    with pytest.raises(TypeError, match=rf"{name}: {argument}: expected a float32 or float64 array, got dtype "
                                        r"float16 \(float16 is not supported.*astype\(np.float32\)"):
        call()


def test_fit_converts_float16_data_to_the_model_dtype():
    """float16 *data* is fine: it is converted to the model's float32 before any computation."""
    X = np.random.default_rng(0).standard_normal((16, 3)).astype(np.float16)
    y = (X[:, 0] > 0).astype(np.float16).reshape(-1, 1)
    model = layers.Sequential([layers.Dense(3, 1, seed=0), layers.Sigmoid()])
    history = model.fit(X, y, loss="bce", epochs=2, verbose=0)
    assert np.isfinite(history["loss"]).all() and model.params[0].dtype == np.float32


def test_the_issues_float16_examples_are_refused_and_right_in_float32():
    """Issue 13, section 5: in float16 these were wrong (all zeros, inf, 0, a wrong sign); now float16 is
    refused and float32, the default, gives PyTorch's values."""
    row = np.array([[300.0, -300.0, 0.0]])
    expected = np.array([[1.2247449, -1.2247449, 0.0]])
    for layer, x in ((layers.LayerNormalization(3), row), (layers.BatchNormalization(1), row.T)):
        with pytest.raises(TypeError, match="float16"):
            layer.forward(x.astype(np.float16))
        out = layer.forward(x.astype(np.float32))
        np.testing.assert_allclose(out.reshape(1, 3), expected, rtol=1e-6, atol=1e-6)
    bce = losses.BinaryCrossEntropy()
    assert np.isfinite(bce(np.ones((1, 1), np.float32), np.zeros((1, 1))))
    sigmoid = layers.Sigmoid()
    assert sigmoid.forward(np.array([-12.0], np.float32))[0] > 0
    mish = layers.Mish()
    mish.forward(np.array([-12.0], np.float32))
    grad = mish.backward(np.ones(1, np.float32))[0][0]
    assert grad < 0 and grad == pytest.approx(-12 * np.exp(-12.0) + np.exp(-12.0), rel=1e-3)  # d/dx x e^x, x -> -inf
