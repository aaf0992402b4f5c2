"""Images as sequences of patches, for Vision Transformers (book section 26.7, "Vision Transformers (ViT)").

A ViT (Dosovitskiy et al., 2021) cuts the image into non-overlapping
``p x p`` patches, projects each to a token of ``dim`` features
(:class:`PatchEmbedding`), prepends a learned class token
(:class:`ClassToken`), adds positions, runs Transformer encoder blocks and
classifies from the class token or from the mean of the tokens
(:class:`TokenPooling`).
"""

from __future__ import annotations

import backend
from backend.checks import check_choice, check_input, check_pair, check_positive_int, check_seed

from ..base import Layer
from ..initializers import filled, make_param


def check_patch_grid(image_shape, patch_size, where="PatchEmbedding"):
    """``(rows, cols)`` of ``(ph, pw)`` patches in an ``(H, W)`` image; ValueError when they do not divide it."""
    (H, W), (ph, pw) = tuple(image_shape), tuple(patch_size)
    if H % ph or W % pw:
        raise ValueError(f"{where}: patch_size: expected a divisor of the image size (height, width) = ({H}, {W}), "
                         f"got ({ph}, {pw})")
    return H // ph, W // pw


class PatchEmbedding(Layer):
    """Cut NHWC images into ``p x p`` patches and project each one to a token: ``tokens = patches W + b``.

    Equivalent to a ``Convolution2D`` with a ``p x p`` kernel and stride ``p``,
    computed as one matrix product: the image ``(B, H, W, C)`` is viewed as
    ``(B, H/p, p, W/p, p, C)``, the patches are flattened in ``(row, column,
    channel)`` order and taken row by row (left to right, top to bottom).

    Parameters
    ----------
    patch_size : int or (int, int)
        ``p`` or ``(ph, pw)``; must divide the image's height and width.
    dim : int
        Features of each token.
    input_channels : int
        C of the images (default 1: grey levels).
    weight_init : str or callable
        Initializer of ``W`` (default ``"xavier_uniform"``).
    seed : int, optional

    Shapes
    ------
    input (B, H, W, C) -> output (B, N, dim), ``N = (H / ph)(W / pw)``;
    ``params = [W (ph pw C, dim), b (dim,)]``.

    Backward: ``dE/dW = patches^T G``, ``dE/db = Σ G``, ``dE/dpatches = G W^T``
    put back in place (the patches do not overlap).
    """

    def __init__(self, patch_size, dim, input_channels=1, weight_init="xavier_uniform", seed=None):
        super().__init__()
        self.patch_size = check_pair(patch_size, "patch_size", where="PatchEmbedding")
        self.dim = check_positive_int(dim, "dim", where="PatchEmbedding")
        self.input_channels = check_positive_int(input_channels, "input_channels", where="PatchEmbedding")
        ph, pw = self.patch_size
        features = ph * pw * self.input_channels
        self.W = make_param(weight_init, (features, self.dim), features, self.dim,
                            check_seed(seed, where="PatchEmbedding"))
        self.b = filled((self.dim,), 0.0)
        self.params = [self.W, self.b]
        self._shape = None
        self._patches = None

    def forward(self, input_data):
        x = check_input(input_data, ndim=4, layer="PatchEmbedding")
        if x.shape[-1] != self.input_channels:
            raise ValueError(f"PatchEmbedding: input_data: expected NHWC images with {self.input_channels} channel(s), "
                             f"got shape {tuple(x.shape)}")
        rows, cols = check_patch_grid(x.shape[1:3], self.patch_size)
        backend.get_array_module(x, self.W)  # mixed-device TypeError
        B, C = x.shape[0], self.input_channels
        ph, pw = self.patch_size
        patches = x.reshape(B, rows, ph, cols, pw, C).transpose(0, 1, 3, 2, 4, 5).reshape(B * rows * cols, -1)
        self._shape, self._patches = x.shape, patches
        out = patches @ self.W + self.b
        return out.reshape(B, rows * cols, self.dim)

    def backward(self, grad_output):
        if self._patches is None:
            raise RuntimeError("PatchEmbedding.backward called before forward")
        B, H, W, C = self._shape
        ph, pw = self.patch_size
        g = grad_output.reshape(-1, self.dim)
        grad_patches = (g @ self.W.T).reshape(B, H // ph, W // pw, ph, pw, C)
        grad_input = grad_patches.transpose(0, 1, 3, 2, 4, 5).reshape(self._shape)
        return grad_input, [self._patches.T @ g, g.sum(axis=0)]

    def output_shape(self, input_shape):
        B, H, W, _ = input_shape
        rows, cols = check_patch_grid((H, W), self.patch_size)
        return (B, rows * cols, self.dim)


class ClassToken(Layer):
    """Prepend a learned token to every sequence: ``y = [c; x_1; ...; x_N]`` (BERT's [CLS], ViT; section 26.7).

    After the encoder, the class token's output summarises the sequence
    (``TokenPooling("first")``).

    Parameters
    ----------
    dim : int
    weight_init : str or callable
        Initializer of the token (default ``"zeros"``, as torchvision's ViT).
    seed : int, optional

    Shapes
    ------
    input (B, N, dim) -> output (B, N + 1, dim); ``params = [token (1, 1, dim)]``.
    Backward: ``dE/dx = G[:, 1:]``, ``dE/dtoken = Σ_batch G[:, :1]``.
    """

    embedding_table = True  # no penalty, no weight decay (layers.base.weight_mask)

    def __init__(self, dim, weight_init="zeros", seed=None):
        super().__init__()
        self.dim = check_positive_int(dim, "dim", where="ClassToken")
        self.token = make_param(weight_init, (1, 1, self.dim), 1, self.dim, check_seed(seed, where="ClassToken"))
        self.params = [self.token]

    def forward(self, input_data):
        x = check_input(input_data, ndim=3, layer="ClassToken")
        if x.shape[-1] != self.dim:
            raise ValueError(f"ClassToken: input_data: expected shape (batch, tokens, {self.dim}), "
                             f"got {tuple(x.shape)}")
        xp = backend.get_array_module(x, self.token)
        token = xp.broadcast_to(self.token.astype(x.dtype, copy=False), (x.shape[0], 1, self.dim))
        return xp.concatenate([token, x], axis=1)

    def backward(self, grad_output):
        return grad_output[:, 1:], [grad_output[:, :1].sum(axis=0, keepdims=True)]

    def output_shape(self, input_shape):
        B, N, D = input_shape
        return (B, N + 1, D)


class TokenPooling(Layer):
    """One vector per sequence: the mean of the tokens, or the first token (the class token; section 26.7).

    Parameters
    ----------
    mode : {"mean", "first"}
        ``"mean"``: ``y = (1/N) Σ_t x_t``; ``"first"``: ``y = x_0``.

    Shapes
    ------
    input (B, N, D) -> output (B, D). No params.
    Backward: ``dE/dx_t = G / N`` (mean); ``dE/dx_0 = G`` and 0 elsewhere (first).
    """

    def __init__(self, mode="mean"):
        super().__init__()
        self.mode = check_choice(mode, "mode", ("mean", "first"), where="TokenPooling")
        self._shape = None

    def forward(self, input_data):
        x = check_input(input_data, ndim=3, layer="TokenPooling")
        self._shape = x.shape
        return x.mean(axis=1) if self.mode == "mean" else x[:, 0].copy()

    def backward(self, grad_output):
        if self._shape is None:
            raise RuntimeError("TokenPooling.backward called before forward")
        xp = backend.get_array_module(grad_output)
        if self.mode == "mean":
            grad = xp.broadcast_to(grad_output[:, None] / grad_output.dtype.type(self._shape[1]), self._shape)
            return xp.ascontiguousarray(grad), None
        grad = xp.zeros(self._shape, dtype=grad_output.dtype)
        grad[:, 0] = grad_output
        return grad, None

    def output_shape(self, input_shape):
        return (input_shape[0], input_shape[2])
