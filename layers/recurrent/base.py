"""What every recurrent layer shares: parameters, the input protocol, masks, initial and final states.

A recurrent layer (book 24.2-24.4) keeps the book's protocol: ``forward(input_data)``
and ``backward(grad_output) -> (grad_input, param_grads)``. Everything beyond a
plain sequence travels in ``input_data`` (a tuple) or in keywords of
``forward``, and ``backward`` answers with the same structure (see
:class:`Recurrent`). The cell's work is one call to :mod:`kernels.recurrent`.
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_bool, check_input, check_positive_int, check_seed

from ..base import Layer
from ..initializers import filled, make_param
from .masking import resolve_mask


def derived_seed(seed, stream: int):
    """A seed for the ``stream``-th array of a layer built with ``seed`` (None stays None).

    Two arrays drawn with the same seed would start from the same random
    numbers; each array of a layer gets its own stream of one SeedSequence.
    """
    if seed is None:
        return None
    return int(np.random.SeedSequence([int(seed), int(stream)]).generate_state(1)[0])


class Recurrent(Layer):
    """Base class of :class:`SimpleRNN`, :class:`LSTM` and :class:`GRU` (batch-major sequences).

    Input (``forward(input_data, initial_state=None, mask=None, lengths=None)``)
    ----------------------------------------------------------------------------
    ``input_data`` is either the sequence ``x`` ``(B, T, input_size)`` or a tuple
    ``(x, initial_state)`` or ``(x, initial_state, mask)`` (``initial_state`` may
    be None there). The same can be given as keywords; ``lengths`` ``(B,)`` is
    a mask for sequences padded at the end. The state is ``h`` ``(B, H)``
    (SimpleRNN, GRU) or the pair ``(h, c)`` (LSTM); the default is zeros. A
    padded step (mask 0) keeps the state as it was, outputs 0 and receives no
    gradient.

    Output
    ------
    ``(B, T, H)`` with ``return_sequences`` (every step's h), else ``(B, H)``
    (the last state: at each sequence's last real step). With
    ``return_state`` the output is the tuple ``(output, final_state)``.

    Backward
    --------
    ``grad_output`` has the output's structure (with ``return_state``, a tuple
    ``(d_output, d_final_state)``; None anywhere means zero). ``grad_input``
    is ``dx`` for a plain input, and a tuple otherwise: ``(dx, d_initial_state)``
    when an initial state was given (by keyword or tuple), and for a tuple input
    a tuple of its length (None for a missing state and for the mask).

    Subclasses set ``cell`` (``"rnn"``, ``"lstm"``, ``"gru"``), ``gates`` (G)
    and ``states`` (the state's parts) and implement ``_run``/``_run_backward``.
    """

    cell = ""
    gates = 1
    states: tuple[str, ...] = ("h",)

    def __init__(self, input_size, hidden_size, return_sequences=False, return_state=False, reverse=False,
                 weight_init="xavier_uniform", recurrent_init="orthogonal", seed=None):
        super().__init__()
        name = type(self).__name__
        self.input_size = check_positive_int(input_size, "input_size", where=name)
        self.hidden_size = check_positive_int(hidden_size, "hidden_size", where=name)
        self.return_sequences = check_bool(return_sequences, "return_sequences", where=name)
        self.return_state = check_bool(return_state, "return_state", where=name)
        self.reverse = check_bool(reverse, "reverse", where=name)
        seed = check_seed(seed, where=name)
        I, GH = self.input_size, self.gates * self.hidden_size
        self.W = make_param(weight_init, (I, GH), I, GH, derived_seed(seed, 0))
        self.U = make_param(recurrent_init, (self.hidden_size, GH), self.hidden_size, GH, derived_seed(seed, 1))
        self.b = make_param(self._bias_init, (GH,), I, GH, None)
        self.params = [self.W, self.U, self.b]
        self._cache = None
        self._given = None

    # -- what subclasses provide ------------------------------------------------------------------
    def _bias_init(self, shape, fan_in, fan_out, rng, dtype):
        """Zeros (LSTM: 1 on the forget gate)."""
        return filled(shape, 0.0, dtype)

    def _param_keys(self) -> list:
        """The kernels' gradient names, aligned with ``params``."""
        return ["W", "U", "b"]

    def _run(self, x, state, mask):
        """``(y or None, final_state (a tuple of the state's parts), cache)`` from :mod:`kernels.recurrent`."""
        raise NotImplementedError

    def _run_backward(self, cache, dy, d_state):
        """``(dx, grads dict, d_initial_state tuple)``; ``d_state`` is a tuple of arrays or None."""
        raise NotImplementedError

    # -- the protocol ----------------------------------------------------------------------------
    def forward(self, input_data, initial_state=None, mask=None, lengths=None):
        """The output sequence or last state (and the final state with ``return_state``); see the class docstring.

        Raises
        ------
        ValueError, TypeError
            A sequence that is not ``(B, T, input_size)`` of the parameters' float dtype, a mask or
            lengths that do not fit it, an initial state of the wrong structure, shape or dtype.
        """
        name = type(self).__name__
        x, initial_state, mask, structure = unpack_input(input_data, initial_state, mask, name)
        self._check_sequence(x)
        mask = resolve_mask(x, mask, lengths, where=name)
        state = self._check_state(initial_state, x)
        y, final, cache = self._run(x, state, mask)
        self._cache = cache
        self._given = (structure, initial_state is not None, x.shape)
        final = tuple(s.copy() for s in final)
        out = y if self.return_sequences else final[0].copy()
        if self.return_state:
            return out, self._pack_state(final)
        return out

    def backward(self, grad_output):
        """Backpropagation through time: ``(grad_input, param_grads)`` (structures in the class docstring)."""
        name = type(self).__name__
        if self._cache is None:
            raise RuntimeError(f"{name}.backward called before forward")
        B, T = self._given[2][:2]
        H = self.hidden_size
        d_out, d_state = grad_output, None
        if self.return_state:
            if not (isinstance(grad_output, (tuple, list)) and len(grad_output) == 2):
                raise TypeError(f"{name}: grad_output: expected a tuple (d_output, d_final_state) "
                                f"(return_state=True), got {type(grad_output).__name__}")
            d_out, d_state = grad_output
            d_state = self._check_state(d_state, None, B=B, what="grad_output[1] (d_final_state)")
        out_shape = (B, T, H) if self.return_sequences else (B, H)
        if d_out is not None:
            backend.check_float_array(d_out, "grad_output", where=name)
            if tuple(d_out.shape) != out_shape:
                raise ValueError(f"{name}: grad_output: expected shape {out_shape} (the output's), "
                                 f"got {tuple(d_out.shape)}")
        dy = d_out if self.return_sequences else None
        if not self.return_sequences and d_out is not None:  # the output is the final h
            d_state = d_state or (None,) * len(self.states)
            d_state = (d_out if d_state[0] is None else d_state[0] + d_out,) + tuple(d_state[1:])
        dx, grads, d_initial = self._run_backward(self._cache, dy, d_state)
        param_grads = [grads[key] for key in self._param_keys()]
        structure, state_given, _ = self._given
        d_initial = self._pack_state(d_initial)
        if structure == 1 and not state_given:
            return dx, param_grads
        if structure <= 2:
            return (dx, d_initial if state_given else None), param_grads
        return (dx, d_initial if state_given else None, None), param_grads

    # -- checks and packing ------------------------------------------------------------------------
    def _check_sequence(self, x):
        name = type(self).__name__
        check_input(x, ndim=3, layer=name)
        if x.shape[2] != self.input_size:
            raise ValueError(f"{name}: input_data: expected {self.input_size} features per step "
                             f"(shape (batch, steps, {self.input_size})), got shape {tuple(x.shape)}")
        backend.get_array_module(x, self.W)  # mixed-device TypeError
        if x.dtype != self.W.dtype:
            raise TypeError(f"{name}: input_data: expected dtype {self.W.dtype} (the layer's parameters), "
                            f"got {x.dtype}; cast with x.astype(np.{self.W.dtype}) or the layer with "
                            f"layer.astype(np.{x.dtype})")
        if x.shape[1] == 0:
            raise ValueError(f"{name}: input_data: expected at least one time step, got shape {tuple(x.shape)}")

    def _check_state(self, state, x, B=None, what="initial_state"):
        """The state as a tuple of ``(B, H)`` arrays (None parts allowed only for gradients), or None."""
        if state is None:
            return None
        name = type(self).__name__
        B = x.shape[0] if B is None else B
        H = self.hidden_size
        parts = self.states
        if len(parts) == 1:
            state = (state,)
        elif not (isinstance(state, (tuple, list)) and len(state) == len(parts)):
            raise TypeError(f"{name}: {what}: expected a tuple ({', '.join(parts)}) of arrays of shape ({B}, {H}), "
                            f"got {type(state).__name__}")
        out = []
        for part, s in zip(parts, state):
            if s is None and x is None:
                out.append(None)
                continue
            label = what if len(parts) == 1 else f"{what}[{part}]"
            backend.check_float_array(s, label, where=name)
            if tuple(s.shape) != (B, H):
                raise ValueError(f"{name}: {label}: expected shape (batch, hidden_size) = ({B}, {H}), "
                                 f"got {tuple(s.shape)}")
            backend.get_array_module(s, self.W)
            if s.dtype != self.W.dtype:
                raise TypeError(f"{name}: {label}: expected dtype {self.W.dtype}, got {s.dtype}")
            out.append(s)
        return tuple(out)

    def _pack_state(self, parts):
        """A tuple of state parts as the API gives it: ``h`` alone, or ``(h, c)``."""
        return parts[0] if len(self.states) == 1 else tuple(parts)

    def output_shape(self, input_shape):
        B, T = input_shape[0], input_shape[1]
        out = (B, T, self.hidden_size) if self.return_sequences else (B, self.hidden_size)
        return out


def unpack_input(input_data, initial_state, mask, where):
    """``(x, initial_state, mask, structure)`` from an array or a tuple ``(x[, state[, mask]])`` and keywords.

    ``structure`` is 1 for a plain array, else the tuple's length.

    Raises
    ------
    ValueError
        A tuple of another length, or the state or mask given twice.
    """
    if not isinstance(input_data, (tuple, list)):
        return input_data, initial_state, mask, 1
    if not 1 <= len(input_data) <= 3:
        raise ValueError(f"{where}: input_data: expected an array or a tuple (x, initial_state[, mask]), "
                         f"got a {type(input_data).__name__} of length {len(input_data)}")
    parts = list(input_data) + [None] * (3 - len(input_data))
    for i, (given, keyword) in enumerate(((parts[1], initial_state), (parts[2], mask)), start=1):
        if given is not None and keyword is not None:
            label = ("initial_state", "mask")[i - 1]
            raise ValueError(f"{where}: {label}: given twice (in input_data[{i}] and as a keyword)")
    return (parts[0], parts[1] if parts[1] is not None else initial_state,
            parts[2] if parts[2] is not None else mask, len(input_data))
