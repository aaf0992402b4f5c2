"""A small Xception (Chollet, 2017; book section 22.9.6): depthwise-separable convolutions with residual connections."""

from __future__ import annotations

from backend.checks import check_positive_int

from layers import (BatchNormalization, Convolution2D, MaxPooling2D, ReLU, Residual, SeparableConvolution2D,
                    Sequential, ZeroPadding2D)

from .blocks import check_common, classifier_head, conv_bn_relu


def _separable_bn(channels_in, channels_out, seeds, relu_first=True) -> list:
    layers = [ReLU()] if relu_first else []
    return layers + [SeparableConvolution2D(channels_in, channels_out, 3, padding="same", seed=next(seeds)),
                     BatchNormalization(channels_out)]


def entry_block(channels_in, channels_out, seeds) -> Residual:
    """Two separable convolutions, then 3x3 max pooling with stride 2; the shortcut a strided 1x1 convolution.

    The pooling pads one zero on each side (our pooling has no padding), so
    both paths give ``ceil(H / 2)`` rows.
    """
    branch = _separable_bn(channels_in, channels_out, seeds) + _separable_bn(channels_out, channels_out, seeds)
    branch += [ZeroPadding2D(1), MaxPooling2D(3, stride=2)]
    shortcut = Sequential([Convolution2D(channels_in, channels_out, 1, stride=2, seed=next(seeds)),
                           BatchNormalization(channels_out)])
    return Residual(Sequential(branch), shortcut)


def middle_block(channels, seeds) -> Residual:
    """Xception's middle flow: three ReLU + separable convolution + BN, added to the identity."""
    branch = []
    for _ in range(3):
        branch += _separable_bn(channels, channels, seeds)
    return Residual(Sequential(branch))


def xception_small(input_shape=(32, 32, 1), num_classes=10, widths=(32, 64, 128), middle_blocks=2, seed=0):
    """Stem, entry blocks that halve the image (``widths``), ``middle_blocks`` middle blocks, a separable exit.

    Every convolution after the stem is depthwise-separable
    (:class:`~layers.SeparableConvolution2D`): Xception's hypothesis that
    cross-channel and spatial correlations can be mapped separately.

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(H, W, C)``, H and W >= 4.
    num_classes : int
    widths : tuple of int
        Channels of the stem and of each entry block (default ``(32, 64, 128)``: two halvings).
    middle_blocks : int
        Residual middle blocks at the last width (default 2).
    seed : int or None

    Returns
    -------
    Sequential
        ``(B, H, W, C) -> (B, num_classes)`` logits.
    """
    widths = tuple(check_positive_int(w, f"widths[{i}]", where="xception_small") for i, w in enumerate(widths))
    (height, width, channels), num_classes, seeds = check_common("xception_small", input_shape, num_classes, seed, 4)
    middle_blocks = check_positive_int(middle_blocks, "middle_blocks", minimum=0, where="xception_small")
    stack = conv_bn_relu(channels, widths[0], 3, seeds)
    for c_in, c_out in zip(widths, widths[1:]):
        stack.append(entry_block(c_in, c_out, seeds))
    stack += [middle_block(widths[-1], seeds) for _ in range(middle_blocks)]
    stack += _separable_bn(widths[-1], widths[-1] * 2, seeds) + [ReLU()]
    return Sequential(stack + classifier_head(widths[-1] * 2, num_classes, seeds),
                      input_shape=(height, width, channels))
