"""Positional encodings (book section 26.5, "Entendendo a Posição: Codificação Posicional").

Attention is blind to order: permuting the tokens permutes its output. Adding
a vector that depends on the position to every token gives the model the
order back, either fixed sinusoids (Vaswani et al., 2017) or a learned table
(BERT, GPT, ViT). Both layers add to their input, so they sit in a
Sequential right after an Embedding or a PatchEmbedding.
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_input, check_positive_int, check_seed

from ..base import Layer
from ..initializers import make_param


def sinusoidal_table(max_len, dim, base=10000.0):
    """The table ``PE (max_len, dim)`` of section 26.5, in float64 NumPy::

        PE[pos, 2i]     = sin(pos / base^(2i / dim))
        PE[pos, 2i + 1] = cos(pos / base^(2i / dim))
    """
    positions = np.arange(max_len, dtype=np.float64)[:, None]
    rates = base ** (-np.arange(0, dim, 2, dtype=np.float64) / dim)
    table = np.zeros((max_len, dim), dtype=np.float64)
    table[:, 0::2] = np.sin(positions * rates)
    table[:, 1::2] = np.cos(positions * rates[: dim // 2])
    return table


def _check_tokens(x, max_len, dim, where):
    check_input(x, ndim=3, layer=where)
    if x.shape[-1] != dim:
        raise ValueError(f"{where}: input_data: expected shape (batch, tokens, {dim}), got {tuple(x.shape)}")
    if x.shape[1] > max_len:
        raise ValueError(f"{where}: input_data: expected at most max_len={max_len} tokens (the length of the "
                         f"positional table), got {x.shape[1]} (shape {tuple(x.shape)}); build the layer with a "
                         "larger max_len")


class SinusoidalPositionalEncoding(Layer):
    """``y[:, t] = x[:, t] + PE[t]`` with the fixed sinusoids of :func:`sinusoidal_table` (section 26.5).

    Each pair of features is a sine and a cosine of the position at one
    frequency, from ``1`` down to ``1 / base``; ``PE[t + k]`` is a rotation of
    ``PE[t]``, so relative offsets are easy to read out.

    Parameters
    ----------
    max_len : int
        The longest sequence accepted.
    dim : int
        Features per token.
    base : float
        The longest wavelength is ``2π base`` (default 10000, as the original paper).

    Shapes
    ------
    input (batch, tokens <= max_len, dim) -> output of the same shape and dtype. No params.
    Backward: ``dE/dx = dE/dy``.
    """

    def __init__(self, max_len, dim, base=10000.0):
        super().__init__()
        self.max_len = check_positive_int(max_len, "max_len", where="SinusoidalPositionalEncoding")
        self.dim = check_positive_int(dim, "dim", where="SinusoidalPositionalEncoding")
        self.base = float(base)
        self.table = sinusoidal_table(self.max_len, self.dim, self.base)
        self._converted = {}

    def _table_like(self, x):
        xp = backend.get_array_module(x)
        key = (xp.__name__, str(x.dtype), str(backend.device_of(x)))
        if key not in self._converted:
            self._converted[key] = backend.to_device(self.table.astype(x.dtype), backend.device_of(x))
        return self._converted[key]

    def forward(self, input_data):
        _check_tokens(input_data, self.max_len, self.dim, "SinusoidalPositionalEncoding")
        return input_data + self._table_like(input_data)[: input_data.shape[1]]

    def backward(self, grad_output):
        return grad_output, None

    def output_shape(self, input_shape):
        return tuple(input_shape)


class LearnedPositionalEmbedding(Layer):
    """``y[:, t] = x[:, t] + P[t]`` with a learned table ``P`` (BERT, GPT, ViT; section 26.5).

    Parameters
    ----------
    max_len : int
        The longest sequence accepted (rows of ``P``).
    dim : int
        Features per token.
    weight_init : str or callable
        Initializer of ``P`` (default ``"small_normal"``: N(0, 0.02²), as GPT-2 and ViT).
    seed : int, optional

    Shapes
    ------
    input (batch, tokens <= max_len, dim) -> output of the same shape;
    ``params = [P (max_len, dim)]``.

    Backward::

        dE/dx = dE/dy,   dE/dP[t] = Σ_batch dE/dy[:, t]  (t < tokens; 0 for the unused rows)
    """

    embedding_table = True  # no penalty, no weight decay (layers.base.weight_mask)

    def __init__(self, max_len, dim, weight_init="small_normal", seed=None):
        super().__init__()
        self.max_len = check_positive_int(max_len, "max_len", where="LearnedPositionalEmbedding")
        self.dim = check_positive_int(dim, "dim", where="LearnedPositionalEmbedding")
        self.P = make_param(weight_init, (self.max_len, self.dim), self.max_len, self.dim,
                            check_seed(seed, where="LearnedPositionalEmbedding"))
        self.params = [self.P]
        self.tokens = None

    def forward(self, input_data):
        _check_tokens(input_data, self.max_len, self.dim, "LearnedPositionalEmbedding")
        backend.get_array_module(input_data, self.P)  # mixed-device TypeError
        self.tokens = input_data.shape[1]
        return input_data + self.P[: self.tokens].astype(input_data.dtype, copy=False)

    def backward(self, grad_output):
        if self.tokens is None:
            raise RuntimeError("LearnedPositionalEmbedding.backward called before forward")
        xp = backend.get_array_module(grad_output)
        grad_P = xp.zeros_like(self.P)
        grad_P[: self.tokens] = grad_output.sum(axis=0)
        return grad_output, [grad_P]

    def output_shape(self, input_shape):
        return tuple(input_shape)
