"""Transposed convolution by loops (book section 22.7's upsampling): the specification.

Every input pixel scatters its value times the kernel into the output, the
taps spaced ``dilation`` apart, the windows ``stride`` apart; the padding rows
and columns are cropped at the end. Layouts as :mod:`kernels.conv_transpose2d`.
"""

from __future__ import annotations

import numpy as np

from ..geometry import as_pair, check_padding, padding_amounts


def conv_transpose2d_forward(x, kernels, biases, stride=1, padding=0, output_padding=0, dilation=1, groups=1):
    """Transposed convolution forward by the loops.

    Parameters
    ----------
    x : ndarray, shape (B, H, W, C_in)
    kernels : ndarray, shape (C_in, C_out / groups, kh, kw)
    biases : ndarray, shape (C_out, 1)

    Returns
    -------
    out : ndarray, shape (B, OH, OW, C_out)::

        ypad[b, h*sh + i*dh, w*sw + j*dw, o] += x[b, h, w, c] K[c, o, i, j]    (o in the group of c)
    """
    from . import conv_transpose2d_output_size

    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    batch, height, width, channels = x.shape
    _, og, kh, kw = kernels.shape
    out_h, out_w = conv_transpose2d_output_size((height, width), (kh, kw), stride, padding, output_padding, dilation)
    if check_padding(padding) == "same":
        (top, _), (left, _) = padding_amounts("same", (out_h, out_w), (kh, kw), stride, dilation)
    else:
        top, left = check_padding(padding)
    (sh, sw), (dh, dw) = stride, dilation
    full_h = max((height - 1) * sh + dh * (kh - 1) + 1, top + out_h)
    full_w = max((width - 1) * sw + dw * (kw - 1) + 1, left + out_w)
    cg = channels // groups
    out = np.zeros((batch, full_h, full_w, og * groups), dtype=x.dtype)
    for b in range(batch):
        for c in range(channels):
            outs = slice((c // cg) * og, (c // cg + 1) * og)
            kernel = kernels[c].transpose(1, 2, 0)  # (kh, kw, C_out / groups)
            for h in range(height):
                for w in range(width):
                    hs, ws = h * sh, w * sw
                    out[b, hs:hs + dh * (kh - 1) + 1:dh, ws:ws + dw * (kw - 1) + 1:dw, outs] += x[b, h, w, c] * kernel
    out = out[:, top:top + out_h, left:left + out_w, :]
    return np.ascontiguousarray(out + biases.reshape(-1))
