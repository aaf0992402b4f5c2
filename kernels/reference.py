"""The book's nested loops for convolution and pooling (chapter 22), under one name.

The loops live with their families (:mod:`kernels.conv2d.reference`,
:mod:`kernels.pool2d.reference`); this module re-exports them, and the shape
arithmetic of :mod:`kernels.geometry`, so ``from kernels import reference``
and ``kernels.reference.conv2d_forward`` keep working. They are the
executable specification the fast kernels are tested against and the
benchmark's baseline.
"""

from __future__ import annotations

from .conv2d.reference import (
    conv2d_backward_bias,
    conv2d_backward_input,
    conv2d_backward_kernels,
    conv2d_forward,
)
from .geometry import as_pair, conv2d_geometry, conv2d_output_size, pool_geometry
from .pool2d.reference import (
    avg_pool2d_backward,
    avg_pool2d_forward,
    global_avg_pool2d_backward,
    global_avg_pool2d_forward,
    max_pool2d_backward,
    max_pool2d_forward,
)

__all__ = [
    "as_pair",
    "avg_pool2d_backward",
    "avg_pool2d_forward",
    "conv2d_backward_bias",
    "conv2d_backward_input",
    "conv2d_backward_kernels",
    "conv2d_forward",
    "conv2d_geometry",
    "conv2d_output_size",
    "global_avg_pool2d_backward",
    "global_avg_pool2d_forward",
    "max_pool2d_backward",
    "max_pool2d_forward",
    "pool_geometry",
]
