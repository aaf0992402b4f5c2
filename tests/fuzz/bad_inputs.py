"""The bad-input catalogue: wrong types and values for every constructor argument, bad arrays for every
layer and loss, bad arguments to fit/evaluate/predict, the model and the backend (issue 13, section 7).

Each :class:`BadInput` is a call that must raise one of ``errors`` with a
message matching ``pattern`` (which names the argument). :func:`answer` runs
one and says how it was answered:

* ``"clear"``: the expected error type, and a message naming the argument;
* ``"unclear"``: the expected type, but the message does not match;
* ``"crash"``: another exception type (AttributeError, IndexError, ...);
* ``"accepted"``: no error at all (a silent acceptance).

``tests/fuzz/test_bad_inputs.py`` asserts that every entry is ``"clear"``;
``tests/fuzz_report.py`` counts the four answers.
"""

from __future__ import annotations

import math
import pathlib
import re
import tempfile
from dataclasses import dataclass
from typing import Callable

import numpy as np

import backend
import layers
import optimizers
from layers import losses

NAN, INF = math.nan, math.inf


@dataclass(frozen=True)
class BadInput:
    """One bad call: ``call()`` must raise one of ``errors`` with a message matching ``pattern``."""

    name: str
    call: Callable
    pattern: str
    errors: tuple = (TypeError, ValueError)


def answer(entry: BadInput) -> tuple[str, str]:
    """``(verdict, detail)``: verdict is "clear", "unclear", "crash" or "accepted" (module docstring)."""
    try:
        entry.call()
    except entry.errors as exc:
        message = str(exc)
        if re.search(entry.pattern, message):
            return "clear", message
        return "unclear", f"{type(exc).__name__}: {message}"
    except Exception as exc:  # noqa: BLE001 (that is the point: anything else is a crash)
        return "crash", f"{type(exc).__name__}: {exc}"
    return "accepted", "no error"


# ----------------------------------------------------------------------------- constructor arguments
INT_BAD = ("3", 2.5, True, 0, -1, None, [3])
REAL_BAD = ("x", NAN, INF, True, None, [1.0])
BOOL_BAD = ("no", 1, 0.0, None)
SEED_BAD = (-1, 1.5, "x", True)
PAIR_BAD = ("3", 0, (3,), (3, 0), (3, 3, 3), 2.5, True, None)
PADDING_BAD = (-1, (1, -1), "1", 1.5, None, (1, 2, 3))
RATE_BAD = (1.0, -0.1, NAN, "0.5", True, None)
EPSILON_BAD = (0, -1.0, NAN, INF, "x", True, None)
REDUCTION_BAD = ("avg", None, 3, ["mean"])
CHOICE_BAD = ("nope", None, 3, True)

#: (factory, valid keyword arguments, {argument: bad values})
CONSTRUCTORS = [
    (layers.Dense, {"input_size": 3, "output_size": 2},
     {"input_size": INT_BAD, "output_size": INT_BAD, "weight_init": ("nope", 3, None), "use_bias": BOOL_BAD,
      "seed": SEED_BAD}),
    (layers.Dropout, {"rate": 0.5}, {"rate": RATE_BAD, "seed": SEED_BAD}),
    (layers.Softmax, {}, {"axis": ("1", 1.5, True, None)}),
    (layers.LeakyReLU, {}, {"alpha": REAL_BAD}),
    (layers.PReLU, {}, {"num_parameters": INT_BAD, "init": REAL_BAD}),
    (layers.RReLU, {}, {"lower": REAL_BAD + (-0.1, 0.5), "upper": REAL_BAD + (0.05,), "seed": SEED_BAD}),
    (layers.ELU, {}, {"alpha": REAL_BAD + (-1.0,)}),
    (layers.NoisyReLU, {}, {"std": REAL_BAD + (-1.0,), "seed": SEED_BAD}),
    (layers.GELU, {}, {"approximate": CHOICE_BAD}),
    (layers.Convolution2D, {"input_channels": 1, "num_filters": 2, "kernel_size": 3},
     {"input_channels": INT_BAD, "num_filters": INT_BAD, "kernel_size": PAIR_BAD, "stride": PAIR_BAD,
      "padding": PADDING_BAD + ("SAME", "full"), "weight_init": ("nope", 3, None), "seed": SEED_BAD,
      "dilation": PAIR_BAD, "groups": INT_BAD + (2, 3)}),
    (layers.DepthwiseConvolution2D, {"channels": 2, "kernel_size": 3},
     {"channels": INT_BAD, "kernel_size": PAIR_BAD, "depth_multiplier": INT_BAD, "stride": PAIR_BAD,
      "padding": PADDING_BAD, "dilation": PAIR_BAD, "use_bias": BOOL_BAD, "weight_init": ("nope", 3, None),
      "seed": SEED_BAD}),
    (layers.SeparableConvolution2D, {"input_channels": 2, "num_filters": 3, "kernel_size": 3},
     {"input_channels": INT_BAD, "num_filters": INT_BAD, "kernel_size": PAIR_BAD, "depth_multiplier": INT_BAD,
      "stride": PAIR_BAD, "padding": PADDING_BAD, "dilation": PAIR_BAD, "seed": SEED_BAD}),
    (layers.Convolution2DTranspose, {"input_channels": 2, "num_filters": 4, "kernel_size": 3, "stride": 2},
     {"input_channels": INT_BAD, "num_filters": INT_BAD, "kernel_size": PAIR_BAD, "stride": PAIR_BAD,
      "padding": PADDING_BAD, "output_padding": (-1, 2, (0, 3), "1", None), "dilation": PAIR_BAD,
      "groups": INT_BAD + (3,), "seed": SEED_BAD}),
    (layers.Convolution1D, {"input_channels": 2, "num_filters": 4, "kernel_size": 3},
     {"input_channels": INT_BAD, "num_filters": INT_BAD, "kernel_size": INT_BAD, "stride": INT_BAD,
      "padding": PADDING_BAD + ((1, 1),), "dilation": INT_BAD, "groups": INT_BAD + (3,), "seed": SEED_BAD}),
    (layers.ZeroPadding2D, {}, {"padding": PADDING_BAD + ("same", ((1, 1), (1, -1)))}),
    (layers.UpSampling2D, {}, {"size": PAIR_BAD}),
    (layers.SqueezeExcitation, {"channels": 4}, {"channels": INT_BAD, "ratio": INT_BAD, "seed": SEED_BAD}),
    (layers.RandomFlip, {}, {"mode": CHOICE_BAD, "seed": SEED_BAD}),
    (layers.RandomTranslation, {}, {"max_shift": (-1, "2", 1.5, None, (1, 2, 3)), "seed": SEED_BAD}),
    (layers.RandomRotation, {}, {"max_degrees": (-1.0, NAN, INF, "10", None), "seed": SEED_BAD}),
    (layers.GaussianNoise, {"stddev": 0.1}, {"stddev": (-1.0, NAN, INF, "x", None), "seed": SEED_BAD}),
    (layers.MaxPooling2D, {}, {"pool_size": PAIR_BAD, "stride": PAIR_BAD[:-1]}),
    (layers.AveragePooling2D, {}, {"pool_size": PAIR_BAD, "stride": PAIR_BAD[:-1]}),
    (layers.BatchNormalization, {"num_features": 3},
     {"num_features": INT_BAD, "momentum": RATE_BAD, "epsilon": EPSILON_BAD, "axis": ("x", 1.5, True, None)}),
    (layers.LayerNormalization, {"normalized_shape": 3},
     {"normalized_shape": (0, (), (3, 0), "3", 2.5, None, True, (3, "a")), "epsilon": EPSILON_BAD,
      "center": BOOL_BAD, "scale": BOOL_BAD}),
    (layers.Sequential, {}, {"layers": ("x", 3, [object()], [layers.Dense], layers.Dense(2, 2)),
                             "input_shape": (0, (0,), "3", (2.5,), (3, -1))}),
    (losses.MeanSquaredError, {}, {"reduction": REDUCTION_BAD}),
    (losses.MeanAbsoluteError, {}, {"reduction": REDUCTION_BAD + ("book",)}),
    (losses.Huber, {}, {"delta": REAL_BAD + (0.0, -1.0), "reduction": REDUCTION_BAD}),
    (losses.BinaryCrossEntropy, {}, {"from_logits": BOOL_BAD, "reduction": REDUCTION_BAD}),
    (losses.Hinge, {}, {"reduction": REDUCTION_BAD}),
    (losses.CategoricalCrossEntropy, {}, {"from_logits": BOOL_BAD, "reduction": REDUCTION_BAD}),
    (losses.SparseCategoricalCrossEntropy, {}, {"from_logits": BOOL_BAD, "reduction": REDUCTION_BAD}),
    (losses.KLDivergence, {}, {"reduction": REDUCTION_BAD}),
    (losses.MulticlassHinge, {}, {"margin": REAL_BAD + (0.0, -1.0), "reduction": REDUCTION_BAD}),
    (layers.EarlyStopping, {}, {"monitor": (3, None), "patience": (-1, 1.5, "2", True),
                                "restore_best_weights": BOOL_BAD, "min_delta": (NAN, -1.0, "x", INF),
                                "mode": CHOICE_BAD}),
    (optimizers.SGD, {}, {"learning_rate": REAL_BAD + (0.0, -1.0), "l1": (-1.0, NAN, "x"), "l2": (-1.0, INF),
                          "clipnorm": (0.0, -1.0, NAN, "x"), "clipvalue": (0.0, INF)}),
    (optimizers.Momentum, {}, {"momentum": (1.0, -0.1, NAN, "x")}),
    (optimizers.Adam, {}, {"beta1": (1.0, -0.1, NAN), "beta2": (1.0, "x"), "epsilon": EPSILON_BAD}),
    (optimizers.RMSProp, {}, {"rho": (1.0, -0.5, NAN)}),
]


def _constructor_entries():
    entries = []
    for factory, valid, bad in CONSTRUCTORS:
        for argument, values in bad.items():
            for value in values:
                kwargs = dict(valid, **{argument: value})
                entries.append(BadInput(f"{factory.__name__}({argument}={value!r})",
                                        lambda f=factory, k=kwargs: f(**k), rf"\b{argument}\b"))
    return entries


# ----------------------------------------------------------------------------- arrays given to layers
def _arrays_2d():
    return {"1-D": np.ones(3, np.float32), "3 features for 4": np.ones((2, 3), np.float32),
            "int": np.ones((2, 4), np.int64), "bool": np.ones((2, 4), bool), "complex": np.ones((2, 4), np.complex64),
            "float16": np.ones((2, 4), np.float16), "string": np.full((2, 4), "x"), "list": [[1.0] * 4] * 2,
            "None": None, "scalar": 1.0, "object": np.array([[object()] * 4] * 2)}


def _arrays_4d():
    return {"3-D": np.ones((2, 6, 6), np.float32), "2 channels for 3": np.ones((1, 6, 6, 2), np.float32),
            "NCHW": np.ones((1, 3, 6, 6), np.float32), "int": np.ones((1, 6, 6, 3), np.int32),
            "float16": np.ones((1, 6, 6, 3), np.float16), "list": np.ones((1, 6, 6, 3)).tolist(), "None": None,
            "too small": np.ones((1, 1, 1, 3), np.float32)}


def _forward_entries():
    entries = []
    flat = {"Dense(4, 2)": lambda: layers.Dense(4, 2), "BatchNormalization(4)": lambda: layers.BatchNormalization(4),
            "LayerNormalization(4)": lambda: layers.LayerNormalization(4), "PReLU(4)": lambda: layers.PReLU(4)}
    elementwise = {"ReLU": layers.ReLU, "Sigmoid": layers.Sigmoid, "GELU": layers.GELU, "Softmax": layers.Softmax,
                   "Dropout(0.5)": lambda: layers.Dropout(0.5)}
    images = {"Convolution2D(3, 2, 3)": lambda: layers.Convolution2D(3, 2, 3),
              "Convolution2D(3, 2, 3, dilation=2)": lambda: layers.Convolution2D(3, 2, 3, dilation=2),
              "DepthwiseConvolution2D(3, 3)": lambda: layers.DepthwiseConvolution2D(3, 3),
              "SeparableConvolution2D(3, 2, 3)": lambda: layers.SeparableConvolution2D(3, 2, 3),
              "Convolution2DTranspose(3, 2, 3)": lambda: layers.Convolution2DTranspose(3, 2, 3),
              "GlobalMaxPooling2D": layers.GlobalMaxPooling2D, "ZeroPadding2D": layers.ZeroPadding2D,
              "UpSampling2D": layers.UpSampling2D, "SqueezeExcitation(3)": lambda: layers.SqueezeExcitation(3),
              "MaxPooling2D(2)": lambda: layers.MaxPooling2D(2),
              "AveragePooling2D(2)": lambda: layers.AveragePooling2D(2),
              "GlobalAveragePooling2D": layers.GlobalAveragePooling2D, "Flatten": layers.Flatten}
    kinds_elementwise = ("int", "bool", "complex", "float16", "string", "list", "None", "scalar", "object")
    for label, make in flat.items():
        for kind, x in _arrays_2d().items():
            if label.startswith("PReLU") and kind == "1-D":
                continue  # a vector of 4 is a valid PReLU(4) input
            entries.append(BadInput(f"{label}.forward({kind})", lambda m=make, x=x: m().forward(x), r"input_data"))
    for label, make in elementwise.items():
        for kind in kinds_elementwise:
            x = _arrays_2d()[kind]
            entries.append(BadInput(f"{label}.forward({kind})", lambda m=make, x=x: m().forward(x), r"input_data"))
    for label, make in images.items():
        for kind, x in _arrays_4d().items():
            if label in ("Flatten", "GlobalAveragePooling2D") and kind in ("2 channels for 3", "NCHW", "too small",
                                                                           "3-D"):
                continue  # valid inputs for these
            if label in ("GlobalMaxPooling2D", "ZeroPadding2D", "UpSampling2D") and kind in (
                    "2 channels for 3", "NCHW", "too small"):
                continue  # any channels, any size
            if label.startswith(("Convolution2DTranspose", "SqueezeExcitation")) and kind == "too small":
                continue  # a 1x1 image is a valid input
            if label.startswith(("MaxPooling", "AveragePooling")) and kind in ("2 channels for 3", "NCHW"):
                continue  # pooling takes any number of channels
            pattern = r"input_data|pool_size|kernel_size"
            entries.append(BadInput(f"{label}.forward({kind})", lambda m=make, x=x: m().forward(x), pattern))
    # backward before forward, and a gradient of the wrong shape
    for label, make in {**flat, **elementwise, **images}.items():
        entries.append(BadInput(f"{label}.backward before forward", lambda m=make: m().backward(np.ones((2, 4))),
                                r"backward called before forward|grad_output", (RuntimeError, ValueError)))
    x = np.ones((2, 4), np.float32)
    for label, make in {"Dense(4, 2)": lambda: layers.Dense(4, 2), "Sigmoid": layers.Sigmoid,
                        "Softmax": layers.Softmax, "BatchNormalization(4)": lambda: layers.BatchNormalization(4),
                        "LayerNormalization(4)": lambda: layers.LayerNormalization(4)}.items():
        def wrong_grad(m=make):
            layer = m()
            layer.forward(x)
            layer.backward(np.ones((3, 5), np.float32))

        entries.append(BadInput(f"{label}.backward(wrong shape)", wrong_grad, r"grad_output|shape"))
    return entries


# ----------------------------------------------------------------------------- losses
def _loss_entries():
    p = np.full((3, 2), 0.5, np.float32)
    entries = []
    every = [losses.MeanSquaredError(), losses.MeanAbsoluteError(), losses.Huber(), losses.BinaryCrossEntropy(),
             losses.Hinge(), losses.CategoricalCrossEntropy(), losses.SparseCategoricalCrossEntropy(),
             losses.KLDivergence(), losses.MulticlassHinge()]
    for loss in every:
        name = type(loss).__name__
        good_true = np.array([0, 1, 1]) if name.startswith("Sparse") else np.eye(2, dtype=np.float32)[[0, 1, 1]]
        cases = {"y_pred int": (np.ones((3, 2), np.int64), good_true, "y_pred"),
                 "y_pred list": ([[0.5, 0.5]] * 3, good_true, "y_pred"),
                 "y_pred float16": (p.astype(np.float16), good_true, "y_pred"),
                 "y_pred empty": (np.ones((0, 2), np.float32), good_true[:0], "y_pred"),
                 "y_true strings": (p, np.full(good_true.shape, "a"), "y_true"),
                 "y_true wrong shape": (p, np.ones((4, 3)), "y_true"),
                 "y_true None": (p, None, "y_true")}
        for kind, (y_pred, y_true, argument) in cases.items():
            entries.append(BadInput(f"{name}({kind})", lambda fn=loss, a=y_pred, b=y_true: fn(a, b), argument))
        entries.append(BadInput(f"{name}.backward before forward", lambda cls=loss.__class__: cls().backward(),
                                "backward called before forward", (RuntimeError,)))
    targets = [(losses.BinaryCrossEntropy(), np.array([[0.0, 2.0]] * 3), r"y_true: expected targets in \[0, 1\]"),
               (losses.BinaryCrossEntropy(), np.array([[0.0, -0.5]] * 3), r"y_true: expected targets in \[0, 1\]"),
               (losses.SparseCategoricalCrossEntropy(), np.array([0, 2, 1]), r"y_true: label 2 is out of range"),
               (losses.SparseCategoricalCrossEntropy(), np.array([0, -1, 1]), r"y_true: label -1 is out of range"),
               (losses.SparseCategoricalCrossEntropy(), np.array([0, 0.5, 1]), r"y_true: expected integer class"),
               (losses.Hinge(), np.array([[1, 3]] * 3), r"y_true: expected labels in"),
               (losses.Hinge(), np.array([[1, 0], [-1, 1], [1, 1]]), r"y_true: .*mix of -1"),
               (losses.CategoricalCrossEntropy(), np.array([[1.5, -0.5]] * 3), r"y_true: expected target probab"),
               (losses.KLDivergence(), np.array([[2.0, -1.0]] * 3), r"y_true: expected target probab"),
               (losses.MulticlassHinge(), np.array([[1, 1]] * 3), r"y_true: expected one-hot rows")]
    for loss, y_true, pattern in targets:
        entries.append(BadInput(f"{type(loss).__name__}(targets {y_true.tolist()[1]})",
                                lambda fn=loss, t=y_true: fn(p, t), pattern))
    entries += [
        BadInput("get_loss('nope')", lambda: losses.get_loss("nope"), r"unknown loss 'nope'"),
        BadInput("get_loss(3)", lambda: losses.get_loss(3), r"get_loss: expected a loss name"),
        BadInput("get_loss(instance, kwargs)", lambda: losses.get_loss(losses.Hinge(), reduction="sum"),
                 r"extra arguments"),
        BadInput("get_activation('nope')", lambda: layers.get_activation("nope"), r"unknown activation 'nope'"),
        BadInput("get_activation(3)", lambda: layers.get_activation(3), r"name: expected a string"),
        BadInput("get_activation('elu', beta=1)", lambda: layers.get_activation("elu", beta=1), r"beta"),
    ]
    return entries


# ----------------------------------------------------------------------------- fit, evaluate, predict
def _data():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((16, 4)).astype(np.float32)
    return X, rng.integers(0, 2, 16)


def _model():
    return layers.Sequential([layers.Dense(4, 2, seed=0)])


def _fit(**overrides):
    X, y = _data()
    kwargs = {"X": X, "y": y, "loss": losses.SparseCategoricalCrossEntropy(from_logits=True), "verbose": 0}
    kwargs.update(overrides)
    return lambda: _model().fit(**kwargs)


def _with(a, index, value):
    a = np.array(a, dtype=np.float64 if isinstance(value, float) else a.dtype)
    a[index] = value
    return a


def _training_entries():
    X, y = _data()
    return [
        BadInput("fit(X with NaN)", _fit(X=_with(X, (3, 1), NAN)), r"^X: expected finite values"),
        BadInput("fit(X with inf)", _fit(X=_with(X, (3, 1), INF)), r"^X: expected finite values"),
        BadInput("fit(y with NaN)", _fit(y=_with(y, 3, NAN)), r"^y: expected finite values"),
        BadInput("fit(X strings)", _fit(X=np.full((16, 4), "a")), r"^X: expected a numeric"),
        BadInput("fit(X ragged list)", _fit(X=[[1.0, 2.0], [3.0]] * 8), r"^X: expected an array"),
        BadInput("fit(X None)", _fit(X=None), r"^X: expected a numeric"),
        BadInput("fit(X 3 features)", _fit(X=X[:, :3]), r"^X: does not fit the model"),
        BadInput("fit(X empty)", _fit(X=X[:0], y=y[:0]), r"^X: expected at least one sample"),
        BadInput("fit(y shorter)", _fit(y=y[:10]), r"len\(y\)=10"),
        BadInput("fit(y strings)", _fit(y=np.full(16, "a")), r"^y: expected a numeric"),
        BadInput("fit(y label out of range)", _fit(y=_with(y, 12, 5)), r"y: label 5 is out of range.*y\[12\]"),
        BadInput("fit(y wrong shape)", _fit(y=np.ones((16, 3)), loss="mse"), r"^y: does not fit"),
        BadInput("fit(epochs=0)", _fit(epochs=0), r"^epochs"),
        BadInput("fit(epochs=1.5)", _fit(epochs=1.5), r"^epochs"),
        BadInput("fit(epochs='3')", _fit(epochs="3"), r"^epochs"),
        BadInput("fit(epochs=True)", _fit(epochs=True), r"^epochs"),
        BadInput("fit(batch_size=0)", _fit(batch_size=0), r"^batch_size"),
        BadInput("fit(batch_size=2.5)", _fit(batch_size=2.5), r"^batch_size"),
        BadInput("fit(verbose=3)", _fit(verbose=3), r"^verbose"),
        BadInput("fit(verbose=True)", _fit(verbose=True), r"^verbose"),
        BadInput("fit(validation_data=X)", _fit(validation_data=X), r"^validation_data"),
        BadInput("fit(validation_data 3 items)", _fit(validation_data=(X, y, y)), r"^validation_data"),
        BadInput("fit(validation_data 3 features)", _fit(validation_data=(X[:, :3], y)), r"^validation_data"),
        BadInput("fit(validation_data NaN)", _fit(validation_data=(_with(X, (0, 0), NAN), y)), r"^X_val"),
        BadInput("fit(validation_data label 9)", _fit(validation_data=(X, _with(y, 1, 9))), r"y_val: label 9"),
        BadInput("fit(callbacks=[object()])", _fit(callbacks=[object()]), r"^callbacks\[0\]"),
        BadInput("fit(callbacks='x')", _fit(callbacks="x"), r"^callbacks\[0\]"),
        BadInput("fit(metrics=['f2'])", _fit(metrics=["f2"]), r"^metrics"),  # an unknown name
        BadInput("fit(metrics=[3])", _fit(metrics=[3]), r"^metrics"),
        BadInput("fit(loss='nope')", _fit(loss="nope"), r"unknown loss 'nope'"),
        BadInput("fit(loss=3)", _fit(loss=3), r"get_loss: expected a loss name"),
        BadInput("fit(optimizer='nope')", _fit(optimizer="nope"), r"optimizer|nope"),
        BadInput("fit(optimizer=3)", _fit(optimizer=3), r"^optimizer"),
        BadInput("fit(clipnorm=-1)", _fit(clipnorm=-1), r"^clipnorm"),
        BadInput("fit(clipvalue=0)", _fit(clipvalue=0), r"^clipvalue"),
        BadInput("fit(l1=-1)", _fit(l1=-1.0), r"^l1"),
        BadInput("fit(l2=nan)", _fit(l2=NAN), r"^l2"),
        BadInput("fit(shuffle='no')", _fit(shuffle="no"), r"^shuffle"),
        BadInput("fit(track_gradients='yes')", _fit(track_gradients="yes"), r"^track_gradients"),
        BadInput("fit(seed=-1)", _fit(seed=-1), r"seed"),
        BadInput("fit(clipnorm in fit and optimizer)", _fit(clipnorm=1.0, optimizer=optimizers.SGD(0.1, clipnorm=2.0)),
                 r"^clipnorm: set both"),
        BadInput("fit(model without params)", lambda: layers.Sequential([layers.ReLU()]).fit(X, y, verbose=0),
                 r"model: expected a model with trainable parameters"),
        BadInput("evaluate(never fit, no loss)", lambda: _model().evaluate(X, y), r"^evaluate: loss"),
        BadInput("evaluate(X 3 features)", lambda: _model().evaluate(X[:, :3], y, loss="mse"), r"^X"),
        BadInput("evaluate(y NaN)", lambda: _model().evaluate(X, _with(y, 0, NAN), loss="mse"), r"^y"),
        BadInput("evaluate(batch_size=0)", lambda: _model().evaluate(X, y, loss="mse", batch_size=0), r"^batch_size"),
        BadInput("evaluate(label 2 of 2)", lambda: _model().evaluate(X, _with(y, 4, 2), loss="scce"),
                 r"y: label 2 is out of range.*y\[4\]"),
        BadInput("predict(X 3 features)", lambda: _model().predict(X[:, :3]), r"input_data"),
        BadInput("predict(X strings)", lambda: _model().predict(np.full((2, 4), "a")), r"^X"),
        BadInput("predict(batch_size=0)", lambda: _model().predict(X, batch_size=0), r"^batch_size"),
    ]


# ----------------------------------------------------------------------------- the model and the backend
def _set_weights(weights):
    return lambda: _model().set_weights(weights)


def _load_from(write=None, name="missing.npz"):
    """Load a checkpoint named ``name`` in a fresh temporary folder, after ``write(path)`` when given."""
    def call():
        with tempfile.TemporaryDirectory() as folder:
            path = pathlib.Path(folder) / name
            if write is not None:
                write(path)
            layers.Sequential.load(path)

    return call


def _model_entries():
    W, b = _model().get_weights()
    return [
        BadInput("set_weights(too few)", _set_weights([W]), r"weights"),
        BadInput("set_weights(wrong shape)", _set_weights([W, np.ones(3, np.float32)]), r"weights\[1\]"),
        BadInput("set_weights(not an array)", _set_weights([W, "b"]), r"weights\[1\]"),
        BadInput("set_weights(not a list)", _set_weights(W), r"weights"),
        BadInput("astype(int32)", lambda: _model().astype(np.int32), r"dtype"),
        BadInput("astype(float16)", lambda: _model().astype(np.float16), r"dtype.*float16"),
        BadInput("astype('nope')", lambda: _model().astype("nope"), r"dtype"),
        BadInput("to('tpu')", lambda: _model().to("tpu"), r"device"),
        BadInput("to(3)", lambda: _model().to(3), r"device"),
        BadInput("load(missing file)", _load_from(), r"missing.npz", (FileNotFoundError, layers.CheckpointError)),
        BadInput("load(a text file)", _load_from(lambda path: path.write_text("not a checkpoint"), "notes.txt"),
                 r"notes.txt.*not a readable camadas checkpoint", (layers.CheckpointError,)),
        BadInput("set_device('tpu')", lambda: backend.set_device("tpu"), r"device"),
        BadInput("set_device(3)", lambda: backend.set_device(3), r"device"),
        BadInput("use_device('gpu:x')", lambda: backend.use_device("gpu:x").__enter__(), r"device"),
        BadInput("set_default_dtype(float16)", lambda: backend.set_default_dtype(np.float16), r"dtype.*float16"),
        BadInput("set_default_dtype(int32)", lambda: backend.set_default_dtype(np.int32), r"dtype"),
        BadInput("set_default_dtype('x')", lambda: backend.set_default_dtype("x"), r"dtype"),
        BadInput("use_dtype(float16)", lambda: backend.use_dtype(np.float16).__enter__(), r"dtype.*float16"),
        BadInput("to_device(x, 'nope')", lambda: backend.to_device(np.ones(2), "nope"), r"device"),
    ]


def _mixed_device_entries():
    """NumPy and CuPy arrays in one op (only where a GPU answers)."""
    if not backend.has_gpu():
        return []

    def dense_gpu_numpy_input():
        with backend.use_device("gpu"):
            layer = layers.Dense(4, 2)
        layer.forward(np.ones((2, 4), np.float32))

    def loss_mixed():
        y_pred = backend.to_device(np.full((2, 1), 0.5, np.float32), "gpu")
        losses.MeanSquaredError()(y_pred, np.zeros((2, 1), np.float32))

    return [BadInput("Dense on the GPU, NumPy input", dense_gpu_numpy_input, r"mixed devices.*to_device"),
            BadInput("loss with GPU y_pred and NumPy y_true", loss_mixed, r"mixed devices.*to_device")]


def catalogue() -> list:
    """Every bad input of this module (the mixed-device ones only where a GPU answers)."""
    return (_constructor_entries() + _forward_entries() + _loss_entries() + _training_entries()
            + _model_entries() + _mixed_device_entries())
