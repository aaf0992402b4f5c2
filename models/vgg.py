"""A small VGG network (Simonyan and Zisserman, 2014; book section 22.9.4): stacks of 3x3 convolutions, then pooling."""

from __future__ import annotations

from backend.checks import check_positive_int, check_rate

from layers import Dense, Dropout, Flatten, MaxPooling2D, ReLU, Sequential

from .blocks import check_common, conv_bn_relu


def vgg_small(input_shape=(32, 32, 1), num_classes=10, widths=(16, 32, 64), convs_per_stage=2, dense_units=128,
              dropout=0.3, seed=0) -> Sequential:
    """VGG's design at a small size: stages of ``convs_per_stage`` 3x3 convolutions, each stage closed by 2x2 max
    pooling, the width doubling from stage to stage, then two dense layers.

    Two 3x3 convolutions see a 5x5 window with fewer parameters than one 5x5
    (VGG's argument); batch normalization after every convolution (not in the
    2014 paper) lets the small network train in a few epochs.

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(H, W, C)``; H and W >= ``2 ** len(widths)``.
    num_classes : int
    widths : tuple of int
        Filters of each stage (default ``(16, 32, 64)``).
    convs_per_stage : int
        3x3 convolutions per stage (default 2).
    dense_units : int
        Units of the hidden dense layer (default 128).
    dropout : float in [0, 1)
        Before the output layer (default 0.3).
    seed : int or None

    Returns
    -------
    Sequential
        ``(B, H, W, C) -> (B, num_classes)`` logits.
    """
    widths = tuple(check_positive_int(w, f"widths[{i}]", where="vgg_small") for i, w in enumerate(widths))
    (height, width, channels), num_classes, seeds = check_common("vgg_small", input_shape, num_classes, seed,
                                                                 2 ** len(widths))
    convs_per_stage = check_positive_int(convs_per_stage, "convs_per_stage", where="vgg_small")
    dense_units = check_positive_int(dense_units, "dense_units", where="vgg_small")
    dropout = check_rate(dropout, "dropout", where="vgg_small")
    stack, c, h, w = [], channels, height, width
    for filters in widths:
        for _ in range(convs_per_stage):
            stack += conv_bn_relu(c, filters, 3, seeds)
            c = filters
        stack.append(MaxPooling2D(2))
        h, w = h // 2, w // 2
    stack += [Flatten(), Dense(c * h * w, dense_units, weight_init="he_normal", seed=next(seeds)), ReLU(),
              Dropout(dropout, seed=next(seeds)), Dense(dense_units, num_classes, seed=next(seeds))]
    return Sequential(stack, input_shape=(height, width, channels))
