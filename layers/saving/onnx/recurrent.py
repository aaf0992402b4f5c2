"""ONNX converters of the recurrent layers (book chapter 24) on ONNX's RNN, LSTM and GRU operators.

Our sequences are batch-major ``(B, T, I)``, ONNX's are time-major
``(T, B, I)``: each layer transposes in and out (ONNX Runtime's CPU kernels
refuse ``layout=1``). The gate blocks of W, U, b are reordered: LSTM i, f, g, o
(ours, PyTorch's) -> i, o, f, c (ONNX's); GRU r, z, n -> z, r, h. LSTM
peepholes are ONNX's P input (rows i, o, f); GRU's ``reset_after=True`` is
``linear_before_reset=1``; ``reverse`` is ``direction="reverse"``.
:class:`Bidirectional` converts its two layers (they may differ in size or
cell) and merges them as its forward pass does; :class:`TimeDistributed`
folds the steps into the batch around its layer. The file takes the sequence
alone, as ``predict`` does: no initial state, mask or lengths; a layer with
``return_state=True`` (a tuple output) is refused.
"""

from __future__ import annotations

import numpy as np

import backend

from ...recurrent import GRU, LSTM, Bidirectional, SimpleRNN, TimeDistributed
from .graph import Value
from .registry import register_converter

#: ONNX's gate order as indices into ours (LSTM i,f,g,o -> i,o,f,c; GRU r,z,n -> z,r,h).
GATE_ORDER = {SimpleRNN: (0,), LSTM: (0, 3, 1, 2), GRU: (1, 0, 2)}
TO_TIME_MAJOR = (1, 0, 2)  # (B, T, F) <-> (T, B, F), its own inverse


def _no_state_output(layer):
    """The check of the recurrent layers: the file has one output, the sequence or the last state."""
    if layer.return_state:
        return ("return_state=True makes its output the tuple (output, final_state), and an exported model has "
                "one output; export the model with return_state=False (the final state is the output when "
                "return_sequences=False)")
    return None


def _host(array) -> np.ndarray:
    return np.asarray(backend.to_numpy(array))


def _gates(array, order) -> np.ndarray:
    """The gate blocks of ``array``'s last axis in ONNX's ``order``."""
    blocks = np.split(_host(array), len(order), axis=-1)
    return np.concatenate([blocks[k] for k in order], axis=-1)


@register_converter(SimpleRNN, LSTM, GRU, check=_no_state_output)
def _recurrent(layer, graph, x):
    """ONNX RNN/LSTM/GRU with ``W^T``, ``U^T`` and the biases in ONNX's gate order, one direction.

    ONNX's B is ``[Wb, Rb]``: ours ``b`` is Wb; Rb is GRU's ``b_h`` with
    ``reset_after`` (the bias inside the product by r), else zeros.
    """
    order = GATE_ORDER[type(layer)]
    H = layer.hidden_size
    recurrent_bias = _gates(layer.b_h, order) if getattr(layer, "reset_after", False) else np.zeros(len(order) * H)
    inputs = [graph.node("Transpose", [x.name], perm=list(TO_TIME_MAJOR)),
              graph.constant(_gates(layer.W, order).T[None], "W"),
              graph.constant(_gates(layer.U, order).T[None], "R"),
              graph.constant(np.concatenate([_gates(layer.b, order), recurrent_bias])[None], "B")]
    attributes = {"hidden_size": H, "direction": "reverse" if layer.reverse else "forward"}
    if isinstance(layer, SimpleRNN):
        attributes["activations"] = [{"tanh": "Tanh", "relu": "Relu"}[layer.activation]]
    if isinstance(layer, GRU):
        attributes["linear_before_reset"] = int(layer.reset_after)
    if getattr(layer, "peephole", False):
        p_i, p_f, p_o = _host(layer.p)
        inputs += ["", "", "", graph.constant(np.concatenate([p_i, p_o, p_f])[None], "P")]  # no lengths, h0, c0
    op_type = {SimpleRNN: "RNN", LSTM: "LSTM", GRU: "GRU"}[type(layer)]
    y, y_h = graph.node(op_type, inputs, outputs=2, **attributes)[:2]
    if not layer.return_sequences:  # the last state (B, H): Y_h (directions = 1, B, H)
        return graph.node("Squeeze", [y_h, graph.constant(np.array([0]), "axes")])
    steps = graph.node("Squeeze", [y, graph.constant(np.array([1]), "axes")])  # Y (T, 1, B, H) -> (T, B, H)
    return graph.node("Transpose", [steps], perm=list(TO_TIME_MAJOR))


@register_converter(Bidirectional, check=_no_state_output)
def _bidirectional(layer, graph, x):
    """Both layers on ``x``, merged: Concat on the features, Add, (Add) * 1/2 or Mul."""
    forward, backward = (graph.convert(child, x, i).name for i, child in enumerate(layer.sublayers()))
    if layer.merge == "concat":
        return graph.node("Concat", [forward, backward], axis=-1)
    if layer.merge == "mul":
        return graph.node("Mul", [forward, backward])
    total = graph.node("Add", [forward, backward])
    return total if layer.merge == "sum" else graph.node("Mul", [total, graph.constant(np.array(0.5), "half")])


@register_converter(TimeDistributed)
def _time_distributed(layer, graph, x):
    """(B, T, ...) -> (B T, ...) -> layer -> (B, T, ...out), with the sizes read when the file runs."""
    folded_shape = graph.node("Concat", [graph.constant(np.array([-1]), "minus_one"), graph.shape(x.name, 2)], axis=0)
    folded = graph.node("Reshape", [x.name, folded_shape])
    inner = graph.convert(layer.layer, Value(folded, (x.shape[0] * x.shape[1], *x.shape[2:])), 0)
    unfolded_shape = graph.node("Concat", [graph.shape(x.name, 0, 2), graph.shape(inner.name, 1)], axis=0)
    return graph.node("Reshape", [inner.name, unfolded_shape])
