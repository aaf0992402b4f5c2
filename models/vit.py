"""The Vision Transformer (book section 26.7; Dosovitskiy et al., 2021) as a Sequential of library layers."""

from __future__ import annotations

from backend.checks import check_choice, check_pair, check_positive_int, check_rate, check_seed
from layers import (ClassToken, Dense, Dropout, LayerNormalization, LearnedPositionalEmbedding, PatchEmbedding,
                    Sequential, TokenPooling, TransformerEncoderBlock)
from layers.attention.multi_head import check_heads, derived_seed
from layers.attention.patches import check_patch_grid


def _check_image_shape(input_shape):
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"vit: input_shape: expected (height, width, channels), got {input_shape!r}")
    return tuple(check_positive_int(s, f"input_shape[{i}]", where="vit") for i, s in enumerate(input_shape))


def vit(input_shape, num_classes, patch_size=4, dim=64, depth=4, num_heads=4, mlp_ratio=2, dropout=0.0,
        pool="cls", norm_first=True, seed=0):
    """A ViT classifier: patches -> tokens (+ class token, + positions) -> encoder blocks -> LayerNorm -> logits.

    ::

        (H, W, C) -> PatchEmbedding(p, dim)            (N, dim), N = (H/p)(W/p)
                  -> ClassToken(dim)                   (N + 1, dim)        [pool="cls"]
                  -> LearnedPositionalEmbedding        (N (+1), dim)
                  -> Dropout -> depth x TransformerEncoderBlock(dim, num_heads, mlp_ratio, dropout, norm_first)
                  -> LayerNormalization(dim) -> TokenPooling("first" | "mean") -> Dense(dim, num_classes)

    Parameters
    ----------
    input_shape : (height, width, channels)
        One NHWC image.
    num_classes : int
        Outputs (logits: train with ``SparseCategoricalCrossEntropy(from_logits=True)``).
    patch_size : int or (int, int)
        Must divide the image (8x8 digits: 2 or 4).
    dim, depth, num_heads, mlp_ratio : int
        Token width, number of blocks, heads per block, MLP width / dim.
    dropout : float in [0, 1)
        Of the tokens after the positions and inside every block.
    pool : {"cls", "mean"}
        Classify from the class token or from the mean of the tokens (no class token).
    norm_first : bool
        Pre-norm blocks (default) or post-norm.
    seed : int
        Seeds every layer (distinct offsets).

    Returns
    -------
    Sequential
        Input ``(B, H, W, C)`` -> logits ``(B, num_classes)``.

    Raises
    ------
    ValueError
        A patch size that does not divide the image, ``dim`` not a multiple of
        ``num_heads``, and the other arguments' checks (named).
    """
    H, W, C = _check_image_shape(input_shape)
    num_classes = check_positive_int(num_classes, "num_classes", where="vit")
    patch = check_pair(patch_size, "patch_size", where="vit")
    rows, cols = check_patch_grid((H, W), patch, where="vit")
    depth = check_positive_int(depth, "depth", where="vit")
    dim, num_heads = check_heads(dim, num_heads, "vit", name="dim")
    dropout = check_rate(dropout, "dropout", where="vit")
    pool = check_choice(pool, "pool", ("cls", "mean"), where="vit")
    seed = check_seed(seed, where="vit")
    tokens = rows * cols + (1 if pool == "cls" else 0)
    layers = [PatchEmbedding(patch, dim, input_channels=C, seed=seed)]
    if pool == "cls":
        layers.append(ClassToken(dim))
    layers += [LearnedPositionalEmbedding(tokens, dim, seed=derived_seed(seed, 1)),
               Dropout(dropout, seed=derived_seed(seed, 2))]
    layers += [TransformerEncoderBlock(dim, num_heads, mlp_ratio=mlp_ratio, dropout=dropout, norm_first=norm_first,
                                       seed=derived_seed(seed, 100 * (i + 1))) for i in range(depth)]
    layers += [LayerNormalization(dim), TokenPooling("first" if pool == "cls" else "mean"),
               Dense(dim, num_classes, seed=derived_seed(seed, 3))]
    return Sequential(layers, input_shape=(H, W, C))
