"""Squeeze-and-excitation ResNets (Hu et al., 2018; book section 22.9.7)."""

from __future__ import annotations

from backend.checks import check_positive_int

from .resnet import build_resnet


def se_resnet(depth=20, input_shape=(32, 32, 1), num_classes=10, width=16, ratio=8, seed=0):
    """:func:`models.resnet` with a :class:`~layers.SqueezeExcitation` block at the end of every residual branch.

    ``y = ReLU(F(x) ⊙ s(F(x)) + S(x))``: each block reweighs its channels
    by scales computed from the whole image before the skip connection adds.

    Parameters
    ----------
    depth : int
        ``6 n + 2`` (8, 14, 20, ...).
    input_shape : (int, int, int)
    num_classes : int
    width : int
        Filters of the first stage.
    ratio : int
        Squeeze-and-excitation reduction (default 8: the blocks are narrow; the paper's 16 is for >= 256 channels).
    seed : int or None

    Returns
    -------
    Sequential
        ``(B, H, W, C) -> (B, num_classes)`` logits.
    """
    ratio = check_positive_int(ratio, "ratio", where="se_resnet")
    return build_resnet("se_resnet", depth, input_shape, num_classes, width, seed, se_ratio=ratio)
