"""Embedding: a lookup table of learned vectors for integer ids (recurrent networks, ch. 24; Transformers, ch. 26)."""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_positive_int

from ..base import Layer
from ..initializers import make_param


def scatter_add_rows(table_shape, ids, values, dtype):
    """``out = zeros(table_shape); out[ids[k]] += values[k]`` for every k, on the arrays' device.

    Parameters
    ----------
    table_shape : (V, D)
    ids : int array, shape (N,)
    values : array, shape (N, D)

    On the CPU the sum runs in index order (``numpy.add.at``: deterministic);
    on the GPU it is ``cupyx.scatter_add`` (atomic adds: float rounding may
    differ between runs when an id repeats).
    """
    xp = backend.get_array_module(values)
    out = xp.zeros(table_shape, dtype=dtype)
    if xp is np:
        np.add.at(out, ids, values)
    else:
        import cupyx

        cupyx.scatter_add(out, ids, values)
    return out


class Embedding(Layer):
    """Maps integer ids to learned vectors: ``y[..., :] = W[ids[...], :]``.

    Parameters
    ----------
    num_embeddings : int
        V, the number of ids (the vocabulary size); ids are in ``[0, V)``.
    embedding_dim : int
        D, the length of each vector.
    weight_init : str or callable
        Initializer of ``W`` (default ``"normal"``: N(0, 1), as PyTorch).
    seed : int, optional
        Seed of the initializer.

    Shapes
    ------
    input: integer ids of any shape ``(batch, ...)`` -> output ``(batch, ..., D)``
    in the parameters' dtype; ``params = [W (V, D)]``.

    Backward::

        dE/dW[v] = Σ_{positions p with ids[p] = v} dE/dy[p]     (a scatter-add)

    The ids are not differentiable: ``grad_input`` is None.
    """

    integer_input = True
    embedding_table = True  # no penalty, no weight decay (layers.base.weight_mask)

    def __init__(self, num_embeddings, embedding_dim, weight_init="normal", seed=None):
        super().__init__()
        self.num_embeddings = check_positive_int(num_embeddings, "num_embeddings")
        self.embedding_dim = check_positive_int(embedding_dim, "embedding_dim")
        self.W = make_param(weight_init, (self.num_embeddings, self.embedding_dim), self.num_embeddings,
                            self.embedding_dim, seed)
        self.params = [self.W]
        self.ids = None

    def _check(self, ids):
        if not hasattr(ids, "dtype") or not hasattr(ids, "shape"):
            raise TypeError(f"Embedding: input_data: expected an integer array of ids, got {type(ids).__name__}")
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Embedding: input_data: expected integer ids (e.g. int64), got dtype {ids.dtype}; "
                            "convert with ids.astype(np.int64)")
        if ids.ndim < 1:
            raise ValueError("Embedding: input_data: expected ids of shape (batch, ...), got a 0-D array")
        xp = backend.get_array_module(ids, self.W)
        if ids.size:
            low, high = int(xp.min(ids)), int(xp.max(ids))
            if low < 0 or high >= self.num_embeddings:
                bad = low if low < 0 else high
                raise ValueError(f"Embedding: input_data: ids must be in [0, {self.num_embeddings}) "
                                 f"(num_embeddings={self.num_embeddings}), got id {bad} (largest id {high})")

    def forward(self, input_data):
        self._check(input_data)
        self.ids = input_data
        return self.W[input_data]

    def backward(self, grad_output):
        if self.ids is None:
            raise RuntimeError("Embedding.backward called before forward")
        expected = tuple(self.ids.shape) + (self.embedding_dim,)
        if tuple(grad_output.shape) != expected:
            raise ValueError(f"Embedding: grad_output: expected shape {expected}, got {tuple(grad_output.shape)}")
        grad_w = scatter_add_rows(self.W.shape, self.ids.reshape(-1),
                                  grad_output.reshape(-1, self.embedding_dim).astype(self.W.dtype, copy=False),
                                  self.W.dtype)
        return None, [grad_w]

    def output_shape(self, input_shape):
        return tuple(input_shape) + (self.embedding_dim,)
