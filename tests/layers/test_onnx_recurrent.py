"""ONNX export of the recurrent layers (chapter 24) checked by ONNX Runtime against ``predict`` (float32, 1e-5).

SimpleRNN, LSTM (with peepholes) and GRU (both reset forms) in every
direction and output form, Bidirectional with each merge, TimeDistributed,
the time axis left dynamic, the configurations that cannot be exported, and
the digits-by-rows LSTM of ``examples/digits_rnn.py``.
"""

from __future__ import annotations

import pytest

from layers import (GRU, LSTM, Bidirectional, Convolution2D, Dense, Flatten, ReLU, Sequential, SimpleRNN,
                    TimeDistributed)
from layers.saving.onnx import OnnxExportError, export
from tests.layers.onnx_checks import (assert_same_as_onnx, assert_trained_example_runs_the_same, onnx, randn,
                                      randomize, run_onnx)

SEQUENCES = (3, 6, 4)  # batch, steps, features


def recurrent_layers():
    """Every cell in every configuration that changes the converted graph."""
    out = []
    for return_sequences in (False, True):
        for reverse in (False, True):
            options = {"return_sequences": return_sequences, "reverse": reverse}
            out += [SimpleRNN(4, 5, activation="tanh", **options), SimpleRNN(4, 5, activation="relu", **options),
                    LSTM(4, 5, **options), LSTM(4, 5, peephole=True, **options),
                    GRU(4, 5, reset_after=True, **options), GRU(4, 5, reset_after=False, **options)]
    return out


def describe(layer):
    extra = {SimpleRNN: lambda r: r.activation, LSTM: lambda r: "peephole" * r.peephole,
             GRU: lambda r: "reset_after" if r.reset_after else "reset_before"}[type(layer)](layer)
    return (f"{type(layer).__name__}-{extra}-{'sequences' if layer.return_sequences else 'last'}"
            f"{'-reverse' if layer.reverse else ''}")


@pytest.mark.parametrize("layer", recurrent_layers(), ids=describe)
def test_recurrent_layer(layer, tmp_path):
    """Random W, U, b (and b_h, peepholes): every gate block must land in ONNX's order."""
    randomize(layer, scale=0.5)
    assert_same_as_onnx(layer, tmp_path, randn(*SEQUENCES), more=[randn(1, 6, 4, seed=1)])


@pytest.mark.parametrize("merge", ["concat", "sum", "ave", "mul"])
@pytest.mark.parametrize("return_sequences", [False, True], ids=["last", "sequences"])
def test_bidirectional_merges(merge, return_sequences, tmp_path):
    model = randomize(Bidirectional(LSTM(4, 5, return_sequences=return_sequences, peephole=True, seed=0),
                                    merge=merge), scale=0.5)
    assert_same_as_onnx(model, tmp_path, randn(*SEQUENCES))


def test_bidirectional_of_two_different_layers(tmp_path):
    """The backward layer may be another cell of another size (concat): each direction is its own node."""
    model = Bidirectional(GRU(4, 5, return_sequences=True, seed=0),
                          backward_layer=SimpleRNN(4, 3, return_sequences=True, reverse=True, seed=1))
    assert_same_as_onnx(randomize(model, scale=0.5), tmp_path, randn(*SEQUENCES))


@pytest.mark.parametrize("inner", [
    Dense(5, 3, seed=0),
    Sequential([Dense(5, 4, seed=0), ReLU(), Dense(4, 2, seed=1)]),
], ids=["Dense", "Sequential"])
def test_time_distributed_after_a_recurrent_layer(inner, tmp_path):
    model = randomize(Sequential([GRU(4, 5, return_sequences=True, seed=0), TimeDistributed(inner)]), scale=0.5)
    assert_same_as_onnx(model, tmp_path, randn(*SEQUENCES))


def test_time_distributed_convolution_over_frames(tmp_path):
    """(B, T, H, W, C) frames: every frame through the same NHWC convolution, then an LSTM over the frames."""
    model = Sequential([TimeDistributed(Sequential([Convolution2D(2, 3, 3, seed=0), Flatten()])),
                        LSTM(3 * 3 * 3, 4, seed=1)])
    assert_same_as_onnx(randomize(model, scale=0.5), tmp_path, randn(2, 4, 5, 5, 2))


def test_any_number_of_steps_with_dynamic_axes(tmp_path):
    """One file, exported at 6 steps, runs sequences of 1 to 11 steps and batches of 1 to 5."""
    model = randomize(Sequential([Bidirectional(LSTM(4, 5, return_sequences=True, seed=0), merge="sum"),
                                  TimeDistributed(Dense(5, 2, seed=1)), GRU(2, 3, reverse=True, seed=2)]), scale=0.5)
    path = assert_same_as_onnx(model, tmp_path, randn(*SEQUENCES), dynamic_axes={1: "steps"},
                               more=[randn(1, 1, 4, seed=1), randn(5, 11, 4, seed=2)])
    dims = onnx.load(path).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", "steps", 4]


def test_without_dynamic_axes_the_steps_are_fixed(tmp_path):
    path = export(SimpleRNN(4, 5, seed=0), tmp_path / "m.onnx", (6, 4))
    with pytest.raises(Exception, match="(?i)invalid dimensions"):  # ONNX Runtime checks the declared shape
        run_onnx(path, randn(2, 7, 4))


# --------------------------------------------------------------------------- #
# What cannot be exported: named, with its path, nothing written
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("layer", [LSTM(4, 5, return_state=True),
                                   Bidirectional(GRU(4, 5, return_sequences=True, return_state=True))],
                         ids=["LSTM", "Bidirectional"])
def test_return_state_is_refused_with_the_layer_path(layer, tmp_path):
    model = Sequential([TimeDistributed(Dense(4, 4, seed=0)), layer])
    name = type(layer).__name__
    with pytest.raises(OnnxExportError, match=rf"layer '1' \({name}\) cannot be exported to ONNX: return_state=True"):
        model.export_onnx(tmp_path / "m.onnx", (6, 4))
    with pytest.raises(OnnxExportError, match=rf"the model \({name}\) .*one output"):
        export(layer, tmp_path / "m.onnx", (6, 4))
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- #
# The digits read row by row by an LSTM (examples/digits_rnn.py)
# --------------------------------------------------------------------------- #
def test_digits_lstm_runs_the_same_in_onnx_runtime(tmp_path):
    assert_trained_example_runs_the_same(tmp_path, "digits_rnn.py",
                                         lambda example: example.model_builder("lstm", bidirectional=False)(seed=0),
                                         (8, 8), learning_rate=1e-2, epochs=3)
