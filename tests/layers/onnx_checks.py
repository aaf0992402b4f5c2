"""What the ONNX export tests share: run a file in ONNX Runtime and compare it with ``predict``.

Importing this module skips the importing test module when onnx or
onnxruntime is missing (the ``onnx`` extra).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest

import backend
from layers import Sequential
from layers.training import predict

onnx = pytest.importorskip("onnx", reason="ONNX export needs the onnx extra: pip install 'camadas[onnx]'")
ort = pytest.importorskip("onnxruntime", reason="running the exported files needs onnxruntime (the onnx extra)")

from layers.saving.onnx import export  # noqa: E402

TOL = {"rtol": 1e-5, "atol": 1e-5}
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run_onnx(path, x):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {"input": x})[0]


def assert_same_as_onnx(model, tmp_path, x, name="model.onnx", dynamic_axes=None, more=()):
    """Export ``model`` for samples shaped like ``x[0]``; ONNX Runtime must give ``model.predict`` on ``x``.

    ``more``: further inputs run through the same file (other batch sizes, and other sizes of the
    ``dynamic_axes``). Returns the path of the file.
    """
    if isinstance(model, Sequential) or hasattr(model, "export_onnx"):
        path = model.export_onnx(tmp_path / name, x.shape[1:], dynamic_axes=dynamic_axes)
    else:
        path = export(model, tmp_path / name, x.shape[1:], dynamic_axes=dynamic_axes)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for inputs in (x, *more):
        got = session.run(None, {"input": inputs})[0]
        expected = predict(model, inputs)
        assert got.dtype == np.float32 and got.shape == expected.shape
        np.testing.assert_allclose(got, expected, **TOL)
    return path


def randn(*shape, seed=0, scale=1.0):
    return (scale * np.random.default_rng(seed).standard_normal(shape)).astype(np.float32)


def randomize(model, seed=1, scale=1.0):
    """Non-trivial parameters and buffers (biases, gamma, beta, running statistics, PReLU slopes, peepholes)."""
    rng = np.random.default_rng(seed)
    for p in model.params:  # to the parameter's device: CuPy 14 refuses a NumPy array on the right of p[...] =
        p[...] = backend.to_device(rng.uniform(-scale, scale, p.shape).astype(p.dtype), backend.device_of(p))
    for b in model.buffers.values():
        b[...] = backend.to_device(rng.uniform(0.5, 1.5, b.shape).astype(b.dtype), backend.device_of(b))
    return model


def assert_trained_example_runs_the_same(tmp_path, script, build, input_shape, learning_rate, epochs):
    """Train the digits model of ``examples/<script>`` briefly, export it: ONNX Runtime gives ``predict``'s logits.

    ``build(example_module)`` returns the model; it trains on 512 digits and
    must beat chance on the test quarter (the comparison is not on noise).
    """
    pytest.importorskip("sklearn", reason="the digits come with scikit-learn (the examples extra)")
    sys.path.insert(0, str(EXAMPLES))
    try:
        spec = importlib.util.spec_from_file_location(f"camadas_example_{Path(script).stem}_onnx", EXAMPLES / script)
        example = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(example)
        X_train, X_test, y_train, y_test = example.load_data()
    finally:
        sys.path.remove(str(EXAMPLES))
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    with backend.use_device("cpu"):
        model = build(example)
        model.fit(X_train[:512].astype(np.float32), y_train[:512], loss=SparseCategoricalCrossEntropy(from_logits=True),
                  optimizer=Adam(learning_rate=learning_rate), epochs=epochs, batch_size=32, seed=0, verbose=0)
        x = X_test.astype(np.float32)
        path = model.export_onnx(tmp_path / "digits.onnx", input_shape)
        expected = model.predict(x)
    got = run_onnx(path, x)
    np.testing.assert_allclose(got, expected, **TOL)
    np.testing.assert_array_equal(got.argmax(axis=1), expected.argmax(axis=1))
    assert (expected.argmax(axis=1) == y_test).mean() > 0.5
