"""Grouped convolution as a loop over channel groups of the ungrouped kernels (book section 22.2; Xception, 22.9.6).

With ``groups = G`` the ``C`` input channels and ``F`` filters are split into
``G`` groups; filter group ``g`` (``F / G`` filters) sees only input group
``g`` (``C / G`` channels), so the kernels are ``(F, C / G, kh, kw)``. Each
function here runs the ungrouped implementation it is given once per group,
on contiguous copies of the group's channels, and joins the results: NumPy
or CuPy arrays alike. (cuDNN takes the groups itself: :mod:`kernels.cudnn`.
Depthwise convolution, ``G = C``, has its own kernels: :mod:`kernels.depthwise2d`.)
"""

from __future__ import annotations

import backend


def _group(a, g, size, axis=3):
    xp = backend.get_array_module(a)
    index = [slice(None)] * a.ndim
    index[axis] = slice(g * size, (g + 1) * size)
    return xp.ascontiguousarray(a[tuple(index)])


def forward(single, x, kernels, biases, stride, padding, dilation, groups):
    """``single(x_g, K_g, b_g, ...)`` per group, outputs joined along the channels."""
    xp = backend.get_array_module(x)
    cg, fg = x.shape[3] // groups, kernels.shape[0] // groups
    outs = [single(_group(x, g, cg), _group(kernels, g, fg, 0), _group(biases, g, fg, 0), stride, padding, dilation)
            for g in range(groups)]
    return xp.concatenate(outs, axis=3)


def backward_input(single, grad_output, kernels, input_shape, stride, padding, dilation, groups):
    """dE/dx: ``single(g_g, K_g, shape_g, ...)`` per group, joined along the channels."""
    xp = backend.get_array_module(grad_output)
    batch, height, width, channels = (int(s) for s in input_shape)
    cg, fg = channels // groups, kernels.shape[0] // groups
    parts = [single(_group(grad_output, g, fg), _group(kernels, g, fg, 0), (batch, height, width, cg), stride,
                    padding, dilation) for g in range(groups)]
    return xp.concatenate(parts, axis=3)


def backward_kernels(single, grad_output, x, kernel_shape, stride, padding, dilation, groups):
    """dE/dK: ``single(g_g, x_g, (F/G, C/G, kh, kw), ...)`` per group, joined along the filters."""
    xp = backend.get_array_module(grad_output)
    filters, cg, kh, kw = (int(s) for s in kernel_shape)
    fg = filters // groups
    parts = [single(_group(grad_output, g, fg), _group(x, g, cg), (fg, cg, kh, kw), stride, padding, dilation)
             for g in range(groups)]
    return xp.concatenate(parts, axis=0)
