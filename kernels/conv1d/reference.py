"""1-D convolution by loops (section 22.2.1's loops along one axis): the specification of :mod:`kernels.conv1d`."""

from __future__ import annotations

import numpy as np


def conv1d_forward(x, kernels, biases, stride=1, padding=0, dilation=1, groups=1):
    """``out[b, t, f] = Σ_{i, c} xpad[b, t*s + i*d, c] K[f, c, i] + bias[f]`` (``c`` in the group of ``f``).

    Parameters
    ----------
    x : ndarray, shape (B, T, C)
    kernels : ndarray, shape (F, C / groups, k)
    biases : ndarray, shape (F, 1)
    stride, padding, dilation, groups : int

    Returns
    -------
    out : ndarray, shape (B, OT, F), ``OT = (T + 2 p - d (k - 1) - 1) // s + 1``
    """
    batch, steps, _ = x.shape
    filters, cg, k = kernels.shape
    x_padded = np.pad(x, ((0, 0), (padding, padding), (0, 0)))
    out_steps = (steps + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    out = np.zeros((batch, out_steps, filters), dtype=x.dtype)
    fg = filters // groups
    for b in range(batch):
        for f in range(filters):
            channels = slice((f // fg) * cg, (f // fg + 1) * cg)
            for t in range(out_steps):
                start = t * stride
                window = x_padded[b, start:start + dilation * (k - 1) + 1:dilation, channels]  # (k, C / groups)
                out[b, t, f] = np.sum(window * kernels[f].T) + biases[f, 0]
    return out
