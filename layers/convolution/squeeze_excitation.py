"""The squeeze-and-excitation block (SENet, Hu et al. 2018; book section 22.9.7), built from the library's blocks."""

from __future__ import annotations

from backend.checks import check_positive_int, check_seed

from ..activations import ReLU, Sigmoid
from ..containers import Identity, Multiply, Sequential
from .conv2d import Convolution2D
from .pooling import GlobalAveragePooling2D


class SqueezeExcitation(Multiply):
    """Rescales every channel by a weight in (0, 1) that the block computes from the whole image.

    ``y = x ⊙ s(x)`` with ``s(x) = σ(W2 ReLU(W1 GAP(x) + b1) + b2)``: a global
    average pooling "squeezes" each channel to one number, two 1x1
    convolutions (C -> C / ratio -> C, the bottleneck) and a sigmoid "excite"
    them into per-channel scales ``(B, 1, 1, C)``, and :class:`Multiply`
    broadcasts them over the image. Put it at the end of a residual branch
    (:func:`models.se_resnet`).

    Parameters
    ----------
    channels : int
        C.
    ratio : int
        Reduction of the bottleneck: ``max(1, C // ratio)`` hidden units (default 16).
    seed : int, optional
        Seeds of the two convolutions (``seed`` and ``seed + 1``).

    Shapes
    ------
    input ``(B, H, W, C)`` -> output ``(B, H, W, C)``. ``params`` = the two
    convolutions' ``[W1 (C/r, C, 1, 1), b1, W2 (C, C/r, 1, 1), b2]``.

    Backward: :class:`Multiply`'s (product rule, the scales' gradient summed over H and W).
    """

    def __init__(self, channels, ratio=16, seed=None):
        channels = check_positive_int(channels, "channels")
        ratio = check_positive_int(ratio, "ratio")
        seed = check_seed(seed, "SqueezeExcitation")
        hidden = max(1, channels // ratio)
        excite = Sequential([
            GlobalAveragePooling2D(),
            Convolution2D(channels, hidden, 1, seed=seed), ReLU(),
            Convolution2D(hidden, channels, 1, weight_init="glorot_uniform", seed=None if seed is None else seed + 1),
            Sigmoid(),
        ])
        super().__init__([Identity(), excite])
        self.channels, self.ratio, self.hidden = channels, ratio, hidden
