"""Pieces the architecture builders share: argument checks, seeds, and the convolution + normalization + ReLU unit."""

from __future__ import annotations

import itertools

from backend.checks import check_positive_int, check_seed
from layers import BatchNormalization, Convolution2D, ReLU


def check_image_shape(input_shape, builder: str, minimum: int) -> tuple:
    """``input_shape`` as ``(H, W, C)`` ints, with ``H, W >= minimum``; errors name the builder and ``input_shape``."""
    if not isinstance(input_shape, (tuple, list)) or len(input_shape) != 3:
        raise ValueError(f"{builder}: input_shape: expected (height, width, channels) of one NHWC image, "
                         f"got {input_shape!r}")
    height, width, channels = (check_positive_int(v, f"input_shape[{i}]", where=builder)
                               for i, v in enumerate(input_shape))
    if min(height, width) < minimum:
        raise ValueError(f"{builder}: input_shape: expected height and width >= {minimum} (upsample smaller images, "
                         f"e.g. examples/cnn_architectures.py), got {(height, width)}")
    return height, width, channels


def check_common(builder: str, input_shape, num_classes, seed, minimum: int):
    """The arguments every builder takes, checked: ``((H, W, C), num_classes, seeds)``."""
    shape = check_image_shape(input_shape, builder, minimum)
    num_classes = check_positive_int(num_classes, "num_classes", minimum=2, where=builder)
    return shape, num_classes, Seeds(check_seed(seed, builder))


class Seeds:
    """``next(seeds)``: a fresh seed per layer (``seed, seed + 1, ...``; all None when ``seed`` is None)."""

    def __init__(self, seed):
        self._counter = None if seed is None else itertools.count(seed)

    def __next__(self):
        return None if self._counter is None else next(self._counter)


def conv_bn_relu(channels_in, channels_out, kernel_size, seeds, stride=1, padding="same", relu=True) -> list:
    """``[Convolution2D, BatchNormalization, ReLU]`` (the ReLU left out with ``relu=False``)."""
    block = [Convolution2D(channels_in, channels_out, kernel_size, stride=stride, padding=padding, seed=next(seeds)),
             BatchNormalization(channels_out)]
    return block + [ReLU()] if relu else block


def classifier_head(channels, num_classes, seeds) -> list:
    """Global average pooling, Flatten and a Dense layer to the class logits."""
    from layers import Dense, Flatten, GlobalAveragePooling2D

    return [GlobalAveragePooling2D(), Flatten(), Dense(channels, num_classes, seed=next(seeds))]
