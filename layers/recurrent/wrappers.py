"""Layers that wrap a layer: both directions of a sequence, and one layer applied at every step (book 24.4).

:class:`Bidirectional` runs a recurrent layer forwards and a mirror of it
backwards over the same sequence and merges the two; :class:`TimeDistributed`
applies any layer to every step of a sequence (a Dense on each output of an
RNN). Both are blocks (:class:`~layers.containers.Container`): their params
are their children's, and they save, load and move like any block.
"""

from __future__ import annotations

import inspect

import backend
from backend.checks import check_choice

from ..containers.base import Container, check_layer, child_backward
from .base import Recurrent, derived_seed, unpack_input
from .masking import resolve_mask

#: How Bidirectional joins the two directions' outputs.
MERGES = ("concat", "sum", "ave", "mul")


def mirrored(layer):
    """A new recurrent layer like ``layer`` but reading the other way (``reverse`` flipped), with fresh weights.

    Built from ``layer``'s constructor arguments, with the seed (when there is
    one) replaced by a stream of it of its own, on ``layer``'s device and dtype.
    """
    config = layer.get_config()
    bound = inspect.signature(type(layer)).bind(*config["args"], **config["kwargs"])
    arguments = dict(bound.arguments)
    arguments["reverse"] = not layer.reverse
    if arguments.get("seed") is not None:
        arguments["seed"] = derived_seed(arguments["seed"], 7)
    mirror = type(layer)(**arguments)
    if mirror.W.dtype != layer.W.dtype:
        mirror.astype(layer.W.dtype)
    if backend.device_of(mirror.W) != backend.device_of(layer.W):
        mirror.to(backend.device_of(layer.W))
    return mirror


class Bidirectional(Container):
    """A recurrent layer run in both directions over the same sequence, outputs merged (Schuster and Paliwal, 1997).

    Parameters
    ----------
    layer : SimpleRNN, LSTM or GRU
        The forward direction (its ``return_sequences`` and ``return_state`` decide the block's).
    merge : {"concat", "sum", "ave", "mul"}
        How the two outputs join: side by side along the features (default),
        their sum, their mean or their elementwise product.
    backward_layer : SimpleRNN, LSTM or GRU, optional
        The backward direction; by default a mirror of ``layer`` (same
        arguments, ``reverse`` flipped, new weights: :func:`mirrored`).

    Shapes
    ------
    input (B, T, I) -> (B, T, H_f + H_b) with ``"concat"`` and ``return_sequences``,
    (B, T, H) with the other merges; without ``return_sequences`` the merged last
    states: the forward direction's after step T-1 and the backward one's after step 0.
    ``params = forward_layer.params + backward_layer.params``.

    Input, initial state and mask follow :class:`~layers.recurrent.base.Recurrent`;
    the initial state is the pair ``(state_forward, state_backward)`` (either may
    be None), and so is the final state with ``return_state``:
    ``(output, (state_forward, state_backward))``.

    Backward: the output gradient is split (concat), shared (sum), halved (ave)
    or multiplied by the other direction's output (mul); ``dE/dx`` is the sum of
    both directions' input gradients.
    """

    def __init__(self, layer, merge="concat", backward_layer=None):
        super().__init__()
        self.forward_layer = _check_recurrent(layer, "layer")
        self.merge = check_choice(merge, "merge", MERGES, where="Bidirectional")
        if backward_layer is None:
            backward_layer = mirrored(layer)
        else:
            _check_recurrent(backward_layer, "backward_layer")
            _check_pair(layer, backward_layer, self.merge)
        self.backward_layer = backward_layer
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._outputs = None
        self._given = None

    def sublayers(self) -> list:
        return [self.forward_layer, self.backward_layer]

    def forward(self, input_data, initial_state=None, mask=None, lengths=None):
        x, initial_state, mask, structure = unpack_input(input_data, initial_state, mask, "Bidirectional")
        if initial_state is not None and not (isinstance(initial_state, (tuple, list)) and len(initial_state) == 2):
            raise TypeError("Bidirectional: initial_state: expected a pair (state_forward, state_backward), "
                            f"got {type(initial_state).__name__}")
        states = (None, None) if initial_state is None else tuple(initial_state)
        if hasattr(x, "shape") and len(x.shape) >= 2:
            mask = resolve_mask(x, mask, lengths, where="Bidirectional")
        outputs = [child.forward(x, initial_state=s, mask=mask) for child, s in zip(self.sublayers(), states)]
        finals = None
        if self.return_state:
            outputs, finals = [o[0] for o in outputs], tuple(o[1] for o in outputs)
        self._outputs = outputs
        self._given = (structure, states)
        merged = self._merge(*outputs)
        return (merged, finals) if self.return_state else merged

    def backward(self, grad_output):
        if self._outputs is None:
            raise RuntimeError("Bidirectional.backward called before forward")
        d_out, d_finals = grad_output, (None, None)
        if self.return_state:
            if not (isinstance(grad_output, (tuple, list)) and len(grad_output) == 2):
                raise TypeError("Bidirectional: grad_output: expected a tuple (d_output, (d_state_forward, "
                                f"d_state_backward)) (return_state=True), got {type(grad_output).__name__}")
            d_out, d_finals = grad_output
            d_finals = (None, None) if d_finals is None else tuple(d_finals)
        parts = self._split(d_out)
        grad_x, initial_grads, param_grads = None, [], []
        for i, (child, g, d_final) in enumerate(zip(self.sublayers(), parts, d_finals)):
            child_grad = (g, d_final) if self.return_state else g
            gx, pg = child_backward(child, child_grad, f"Bidirectional.{('forward', 'backward')[i]}_layer")
            given = self._given[1][i] is not None
            dx, d_initial = gx if given else (gx, None)
            grad_x = dx if grad_x is None else grad_x + dx
            initial_grads.append(d_initial)
            param_grads += pg
        self.grads = param_grads
        structure, states = self._given
        d_state = None if states == (None, None) else tuple(initial_grads)
        if structure == 1 and d_state is None:
            return grad_x, param_grads
        return (grad_x, d_state) + (None,) * max(structure - 2, 0), param_grads

    # -- merging ------------------------------------------------------------------------------
    def _merge(self, yf, yb):
        if self.merge == "concat":
            return backend.get_array_module(yf).concatenate([yf, yb], axis=-1)
        if self.merge == "sum":
            return yf + yb
        if self.merge == "ave":
            return (yf + yb) * yf.dtype.type(0.5)
        return yf * yb

    def _split(self, g):
        if g is None:
            return None, None
        yf, yb = self._outputs
        expected = tuple(self._merge(yf[:1], yb[:1]).shape[1:])
        if tuple(g.shape[1:]) != expected or g.shape[0] != yf.shape[0]:
            raise ValueError(f"Bidirectional: grad_output: expected shape {(yf.shape[0],) + expected} "
                             f"(the output's), got {tuple(g.shape)}")
        if self.merge == "concat":
            h = yf.shape[-1]
            return g[..., :h], g[..., h:]
        if self.merge == "sum":
            return g, g
        if self.merge == "ave":
            half = g * g.dtype.type(0.5)
            return half, half
        return g * yb, g * yf

    def output_shape(self, input_shape):
        f = self.forward_layer.output_shape(input_shape)
        if self.merge != "concat":
            return tuple(f)
        b = self.backward_layer.output_shape(input_shape)
        return tuple(f[:-1]) + (f[-1] + b[-1],)


class TimeDistributed(Container):
    """Applies ``layer`` to every time step of a sequence: ``y[:, t] = layer(x[:, t])`` (weights shared over time).

    Parameters
    ----------
    layer : Layer
        Takes ``(N, ...)`` (e.g. Dense, an activation, a Sequential).

    Shapes
    ------
    input (B, T, ...) -> (B, T, ...out): the steps are folded into the batch,
    ``(B·T, ...)``, for one call of ``layer``. ``params = layer.params``.

    Backward: ``layer.backward`` on the folded gradient; its parameter
    gradients are already summed over every step of every sequence.
    """

    def __init__(self, layer):
        super().__init__()
        self.layer = check_layer(layer, "TimeDistributed: layer")
        self._shape = None

    def sublayers(self) -> list:
        return [self.layer]

    def forward(self, input_data):
        if not hasattr(input_data, "shape") or len(input_data.shape) < 2:
            got = f"shape {tuple(input_data.shape)}" if hasattr(input_data, "shape") else type(input_data).__name__
            raise ValueError(f"TimeDistributed: input_data: expected an array (batch, steps, ...), got {got}")
        B, T = input_data.shape[:2]
        self._shape = tuple(input_data.shape)
        out = self.layer.forward(input_data.reshape((B * T,) + tuple(input_data.shape[2:])))
        return out.reshape((B, T) + tuple(out.shape[1:]))

    def backward(self, grad_output):
        if self._shape is None:
            raise RuntimeError("TimeDistributed.backward called before forward")
        B, T = self._shape[:2]
        if tuple(grad_output.shape[:2]) != (B, T):
            raise ValueError(f"TimeDistributed: grad_output: expected shape ({B}, {T}, ...) (the output's), "
                             f"got {tuple(grad_output.shape)}")
        gx, grads = child_backward(self.layer, grad_output.reshape((B * T,) + tuple(grad_output.shape[2:])),
                                   "TimeDistributed.layer")
        self.grads = grads
        return (None if gx is None else gx.reshape(self._shape)), grads

    def output_shape(self, input_shape):
        B, T = input_shape[:2]
        inner = self.layer.output_shape((B * T,) + tuple(input_shape[2:]))
        return (B, T) + tuple(inner[1:])


def _check_recurrent(layer, name):
    if not isinstance(layer, Recurrent):
        raise TypeError(f"Bidirectional: {name}: expected a recurrent layer (SimpleRNN, LSTM or GRU), "
                        f"got {type(layer).__name__}")
    return layer


def _check_pair(layer, backward_layer, merge):
    for attr in ("input_size", "return_sequences", "return_state"):
        if getattr(layer, attr) != getattr(backward_layer, attr):
            raise ValueError(f"Bidirectional: backward_layer: {attr}: expected {getattr(layer, attr)!r} "
                             f"(the forward layer's), got {getattr(backward_layer, attr)!r}")
    if backward_layer.reverse == layer.reverse:
        raise ValueError(f"Bidirectional: backward_layer: reverse: expected {not layer.reverse!r} (the opposite "
                         f"of the forward layer's), got {backward_layer.reverse!r}")
    if merge != "concat" and backward_layer.hidden_size != layer.hidden_size:
        raise ValueError(f"Bidirectional: backward_layer: hidden_size: expected {layer.hidden_size} (merge="
                         f"{merge!r} needs equal sizes), got {backward_layer.hidden_size}")
