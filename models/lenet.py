"""LeNet-5 (LeCun et al., 1998; book section 22.9.1): two convolution + subsampling stages and three dense layers."""

from __future__ import annotations

from backend.checks import check_choice

from layers import AveragePooling2D, Convolution2D, Dense, Flatten, Sequential, get_activation

from .blocks import check_common


def lenet5(input_shape=(32, 32, 1), num_classes=10, activation="tanh", padding="valid", seed=0) -> Sequential:
    """LeNet-5: C1 conv 6@5x5, S2 average pooling 2x2, C3 conv 16@5x5, S4 pooling, F5 120, F6 84, output.

    The layout of the 1998 network (32x32 -> 28 -> 14 -> 10 -> 5, then
    400 -> 120 -> 84 -> classes) with today's usual simplifications: the
    subsampling layers are plain average poolings, C3 sees every S2 map,
    and the output is a Dense layer of logits (train with a from-logits
    cross-entropy) instead of the RBF units.

    Parameters
    ----------
    input_shape : (int, int, int)
        ``(H, W, C)`` of one image; 32x32 in the paper (H and W >= 14, or >= 10 with ``padding="same"``).
    num_classes : int
    activation : str
        ``"tanh"`` (the paper's squashing function, default; Glorot initialisation) or
        ``"relu"`` (He initialisation).
    padding : "valid" or "same"
        C1's padding: "valid" as in the paper, "same" for 28x28 images (the MNIST variant: 28 -> 28 -> 14 -> 10 -> 5).
    seed : int or None
        Layer ``i`` is initialised with ``seed + i``.

    Returns
    -------
    Sequential
        ``(B, H, W, C) -> (B, num_classes)`` logits;
        ``6 (25 C + 1) + 16 (150 + 1) + 120 (16 h w + 1) + 84 (121) + num_classes (85)``
        parameters, ``h = ((H - 4) // 2 - 4) // 2`` (``H`` for ``H - 4`` with "same"; likewise ``w``).
    """
    check_choice(padding, "padding", ("valid", "same"), "lenet5")
    minimum = 14 if padding == "valid" else 10
    (height, width, channels), num_classes, seeds = check_common("lenet5", input_shape, num_classes, seed, minimum)
    check_choice(activation, "activation", ("tanh", "relu"), "lenet5")
    shrink = 4 if padding == "valid" else 0
    h, w = ((height - shrink) // 2 - 4) // 2, ((width - shrink) // 2 - 4) // 2
    init = "glorot_uniform" if activation == "tanh" else "he_normal"
    return Sequential([
        Convolution2D(channels, 6, 5, padding=padding, weight_init=init, seed=next(seeds)), get_activation(activation),
        AveragePooling2D(2),
        Convolution2D(6, 16, 5, weight_init=init, seed=next(seeds)), get_activation(activation),
        AveragePooling2D(2),
        Flatten(),
        Dense(16 * h * w, 120, weight_init=init, seed=next(seeds)), get_activation(activation),
        Dense(120, 84, weight_init=init, seed=next(seeds)), get_activation(activation),
        Dense(84, num_classes, weight_init="glorot_uniform", seed=next(seeds)),
    ], input_shape=(height, width, channels))
