"""Residual networks (He et al., 2016; book section 22.9.5 and chapter 23) and their plain twins.

:func:`resnet` builds the CIFAR-style ResNets of the paper's section 4.2:
``depth = 6 n + 2`` layers with weights (ResNet-8, 14, 20, 32, ...): a 3x3
convolution, three stages of ``n`` basic blocks at 16, 32 and 64 filters
(the second and third halve the image with a stride of 2), global average
pooling and a dense output. :func:`plain_cnn` is the same stack without the
skip connections: the "plain" network of chapter 23's degradation
experiment (examples/degradation.py).
"""

from __future__ import annotations

from backend.checks import check_positive_int

from layers import BatchNormalization, Convolution2D, ReLU, Residual, Sequential

from .blocks import check_common, classifier_head, conv_bn_relu


def check_depth(depth, builder: str) -> int:
    """``depth = 6 n + 2`` with ``n >= 1``: returns ``n``; the error names ``depth`` and the accepted values."""
    depth = check_positive_int(depth, "depth", where=builder)
    if depth < 8 or (depth - 2) % 6:
        raise ValueError(f"{builder}: depth: expected 6 n + 2 layers with n >= 1 (8, 14, 20, 26, 32, ...), got {depth}")
    return (depth - 2) // 6


def basic_block(channels_in, channels_out, stride, seeds, skip=True, se_ratio=None):
    """The basic block: ``ReLU(F(x) + S(x))`` with ``F`` = conv3x3 (stride) + BN + ReLU + conv3x3 + BN.

    ``S`` is the identity, or a 1x1 strided convolution + BN (the paper's
    option B) when the stride or the width changes. ``skip=False`` drops
    ``S`` (the plain network); ``se_ratio`` appends a
    :class:`~layers.SqueezeExcitation` to ``F`` (SE-ResNet). Returns the layers
    to splice into a Sequential.
    """
    from layers import SqueezeExcitation

    branch = conv_bn_relu(channels_in, channels_out, 3, seeds, stride=stride)
    branch += conv_bn_relu(channels_out, channels_out, 3, seeds, relu=False)
    if se_ratio is not None:
        branch.append(SqueezeExcitation(channels_out, se_ratio, seed=next(seeds)))
    if not skip:
        return branch + [ReLU()]
    shortcut = None
    if stride != 1 or channels_in != channels_out:
        shortcut = Sequential([Convolution2D(channels_in, channels_out, 1, stride=stride, seed=next(seeds)),
                               BatchNormalization(channels_out)])
    return [Residual(Sequential(branch), shortcut), ReLU()]


def build_resnet(builder, depth, input_shape, num_classes, width, seed, skip=True, se_ratio=None) -> Sequential:
    """The stack shared by :func:`resnet`, :func:`plain_cnn` and :func:`models.se_resnet`."""
    n = check_depth(depth, builder)
    width = check_positive_int(width, "width", where=builder)
    (height, image_width, channels), num_classes, seeds = check_common(builder, input_shape, num_classes, seed, 4)
    stack = conv_bn_relu(channels, width, 3, seeds)
    c = width
    for stage in range(3):
        filters = width * 2 ** stage
        for block in range(n):
            stride = 2 if stage > 0 and block == 0 else 1
            stack += basic_block(c, filters, stride, seeds, skip=skip, se_ratio=se_ratio)
            c = filters
    return Sequential(stack + classifier_head(c, num_classes, seeds), input_shape=(height, image_width, channels))


def resnet(depth=20, input_shape=(32, 32, 1), num_classes=10, width=16, seed=0) -> Sequential:
    """ResNet of ``depth = 6 n + 2`` layers with basic blocks (ResNet-8/14/20/..., chapter 23).

    Parameters
    ----------
    depth : int
        8, 14, 20, 26, 32, ... (``6 n + 2``; ``n`` basic blocks per stage).
    input_shape : (int, int, int)
        ``(H, W, C)``, H and W >= 4.
    num_classes : int
    width : int
        Filters of the first stage (16 in the paper; 32 and 64 follow).
    seed : int or None

    Returns
    -------
    Sequential
        ``(B, H, W, C) -> (B, num_classes)`` logits. Each block is
        ``Residual(F, S)`` then ReLU: ``y = ReLU(F(x) + S(x))``, so the gradient
        reaches early layers through the identity paths (chapter 23).
    """
    return build_resnet("resnet", depth, input_shape, num_classes, width, seed)


def plain_cnn(depth=20, input_shape=(32, 32, 1), num_classes=10, width=16, seed=0) -> Sequential:
    """:func:`resnet` without its skip connections: the same layers and widths, chained (the "plain" network).

    The baseline of He et al.'s degradation experiment (chapter 23): deeper
    plain networks train *worse*, not only generalise worse. Same arguments
    as :func:`resnet`.
    """
    return build_resnet("plain_cnn", depth, input_shape, num_classes, width, seed, skip=False)
