"""A small Inception network (GoogLeNet, Szegedy et al., 2014; book section 22.9.3): parallel branches, concatenated."""

from __future__ import annotations

from layers import Concatenate, MaxPooling2D, Sequential, ZeroPadding2D

from .blocks import check_common, classifier_head, conv_bn_relu


def inception_module(channels_in, b1, b3_reduce, b3, b5_reduce, b5, pool_proj, seeds) -> Concatenate:
    """GoogLeNet's module: four branches on the same input, joined along the channels.

    Branches: a 1x1 convolution (``b1``); 1x1 (``b3_reduce``) then 3x3 (``b3``);
    1x1 (``b5_reduce``) then two 3x3 (``b5``: the 5x5 window of the paper, as
    Inception-v2 factorises it); 3x3 max pooling (stride 1, zero-padded:
    the input is a ReLU's output, >= 0, so zeros never win over a real value)
    then 1x1 (``pool_proj``). Every convolution is followed by batch
    normalization and ReLU. Output channels: ``b1 + b3 + b5 + pool_proj``.
    """
    def unit(cin, cout, k):
        return conv_bn_relu(cin, cout, k, seeds)

    return Concatenate([
        Sequential(unit(channels_in, b1, 1)),
        Sequential(unit(channels_in, b3_reduce, 1) + unit(b3_reduce, b3, 3)),
        Sequential(unit(channels_in, b5_reduce, 1) + unit(b5_reduce, b5, 3) + unit(b5, b5, 3)),
        Sequential([ZeroPadding2D(1), MaxPooling2D(3, stride=1)] + unit(channels_in, pool_proj, 1)),
    ], axis=-1)


def inception_small(input_shape=(32, 32, 1), num_classes=10, seed=0) -> Sequential:
    """A stem, two Inception modules, max pooling, two more modules, global average pooling, a dense output.

    Sized for small images (GoogLeNet's 224x224 stem of 7x7 strided
    convolutions is a single 3x3 convolution here).

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(H, W, C)``, H and W >= 4.
    num_classes : int
    seed : int or None

    Returns
    -------
    Sequential
        ``(B, H, W, C) -> (B, num_classes)`` logits.
    """
    (height, width, channels), num_classes, seeds = check_common("inception_small", input_shape, num_classes, seed, 4)
    stem = conv_bn_relu(channels, 32, 3, seeds)
    return Sequential(stem + [
        inception_module(32, 16, 16, 24, 8, 8, 8, seeds),       # -> 56 channels
        inception_module(56, 24, 24, 32, 8, 16, 16, seeds),     # -> 88
        MaxPooling2D(2),
        inception_module(88, 32, 32, 48, 12, 24, 24, seeds),    # -> 128
        inception_module(128, 48, 32, 64, 16, 24, 24, seeds),   # -> 160
    ] + classifier_head(160, num_classes, seeds), input_shape=(height, width, channels))


