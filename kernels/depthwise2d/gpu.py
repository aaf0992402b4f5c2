"""Depthwise convolution on the GPU (book section 22.9.6): cuDNN where it loads, else numba-cuda kernels.

Each ``*_gpu`` function first offers the case to :func:`kernels.cudnn.call`
as a grouped convolution (``groups = C``); when cuDNN is off, missing or
declines, our path runs:

* forward: one thread per output element sums its ``kh kw`` taps;
* backward, input: a *gather*, one thread per input element sums the outputs
  that read it (no atomics: deterministic);
* backward, kernels: ``kh kw`` CuPy reductions of ``g`` times the tap's
  strided window of the input (deterministic, memory-bound).

Under Numba's CUDA simulator the functions take NumPy arrays (CI checks the
index arithmetic that way); where numba-cuda cannot compile, the same steps run
as array operations (:func:`forward_arrays`, :func:`backward_input_arrays`).
"""

from __future__ import annotations

import functools
import types

import numpy as np

import backend

from .. import cudnn
from ..cuda_launch import device_functions, numba_cuda, run_step, windows_view
from ..geometry import as_pair, conv2d_geometry

#: ``numba.cuda``, bound by :func:`cuda_kernels` (the kernels refer to it as a module global).
cuda = None


@functools.lru_cache(maxsize=None)
def cuda_kernels():
    """Compile-on-first-use namespace of the numba-cuda kernels (``forward``, ``backward_input``)."""
    global cuda
    cuda = numba_cuda()
    unravel_nhwc, tap_output = device_functions().unravel_nhwc, device_functions().tap_output

    @cuda.jit
    def forward(x, kt, bias, mult, sh, sw, ph, pw, dh, dw, out):
        # out[b, oh, ow, f] = bias[f] + Σ_{i, j} xpad[b, oh*sh + i*dh, ow*sw + j*dw, f // M] kt[i, j, f]
        height, width = x.shape[1], x.shape[2]
        out_h, out_w, filters = out.shape[1], out.shape[2], out.shape[3]
        kh, kw = kt.shape[0], kt.shape[1]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, out.shape[0] * out_h * out_w * filters, step):
            b, oh, ow, f = unravel_nhwc(t, out_h, out_w, filters)
            c = f // mult
            acc = bias[f]
            for i in range(kh):
                ih = oh * sh - ph + i * dh
                if ih < 0 or ih >= height:
                    continue
                for j in range(kw):
                    iw = ow * sw - pw + j * dw
                    if iw >= 0 and iw < width:
                        acc += x[b, ih, iw, c] * kt[i, j, f]
            out[b, oh, ow, f] = acc

    @cuda.jit
    def backward_input(g, kt, mult, sh, sw, ph, pw, dh, dw, zero, grad_input):
        # gather: dx[b, h, w, c] = Σ_{m, i, j} g[b, oh, ow, c M + m] kt[i, j, c M + m] over oh*sh + i*dh - ph = h, ...
        height, width, channels = grad_input.shape[1], grad_input.shape[2], grad_input.shape[3]
        out_h, out_w = g.shape[1], g.shape[2]
        kh, kw = kt.shape[0], kt.shape[1]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, grad_input.shape[0] * height * width * channels, step):
            b, ih, iw, c = unravel_nhwc(t, height, width, channels)
            acc = zero  # a scalar of the arrays' dtype
            for i in range(kh):
                oh = tap_output(ih, ph, i * dh, sh, out_h)
                if oh < 0:
                    continue
                for j in range(kw):
                    ow = tap_output(iw, pw, j * dw, sw, out_w)
                    if ow < 0:
                        continue
                    for m in range(mult):
                        f = c * mult + m
                        acc += g[b, oh, ow, f] * kt[i, j, f]
            grad_input[b, ih, iw, c] = acc

    return types.SimpleNamespace(forward=forward, backward_input=backward_input)


# --------------------------------------------------------------------------
# the same steps as array operations (CuPy on a GPU, NumPy in tests)
# --------------------------------------------------------------------------
def _padded(xp, a, ph, pw):
    return xp.pad(a, ((0, 0), (ph, ph), (pw, pw), (0, 0)))


def forward_arrays(x, kt, bias, mult, sh, sw, ph, pw, dh, dw, out):
    """:func:`cuda_kernels` ``forward`` as array operations (same arguments): one product per tap."""
    xp = backend.get_array_module(x, out)
    batch, out_h, out_w, filters = out.shape
    kh, kw = kt.shape[0], kt.shape[1]
    windows = windows_view(xp, _padded(xp, x, ph, pw), out_h, out_w, kh, kw, sh, sw, dh, dw)
    acc = xp.broadcast_to(bias, out.shape).reshape(batch, out_h, out_w, -1, mult).copy()
    for i in range(kh):
        for j in range(kw):
            acc += windows[:, :, :, i, j, :, None] * kt[i, j].reshape(-1, mult)
    out[...] = acc.reshape(out.shape)


def backward_input_arrays(g, kt, mult, sh, sw, ph, pw, dh, dw, zero, grad_input):
    """:func:`cuda_kernels` ``backward_input`` as array operations: ``kh kw`` strided additions."""
    xp = backend.get_array_module(g, grad_input)
    batch, height, width, channels = grad_input.shape
    _, out_h, out_w, _ = g.shape
    kh, kw = kt.shape[0], kt.shape[1]
    g5 = g.reshape(batch, out_h, out_w, channels, mult)
    padded = xp.zeros((batch, height + 2 * ph, width + 2 * pw, channels), dtype=grad_input.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw, :] += \
                (g5 * kt[i, j].reshape(channels, mult)).sum(axis=4)
    grad_input[...] = padded[:, ph:ph + height, pw:pw + width, :]


# --------------------------------------------------------------------------
# GPU implementations (CuPy arrays; NumPy arrays under the CUDA simulator)
# --------------------------------------------------------------------------
def _tap_major(xp, kernels, dtype):
    f, _, kh, kw = kernels.shape
    return xp.ascontiguousarray(kernels.reshape(f, kh, kw).transpose(1, 2, 0).astype(dtype, copy=False))


def _geometry(shape, kernel_shape, stride, padding, dilation):
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry(shape[1:3], kernel_shape[2:], stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    return sh, sw, ph, pw, dh, dw, out_h, out_w


def depthwise2d_forward_gpu(x, kernels, biases=None, stride=1, padding=0, dilation=1):
    """GPU forward; see :func:`kernels.depthwise2d.depthwise2d_forward`."""
    xp = backend.get_array_module(x, kernels)
    dtype = np.dtype(x.dtype)
    x = xp.ascontiguousarray(x)
    filters, channels = kernels.shape[0], x.shape[3]
    sh, sw, ph, pw, dh, dw, out_h, out_w = _geometry(x.shape, kernels.shape, stride, padding, dilation)
    bias = xp.zeros(filters, dtype) if biases is None else biases.astype(dtype, copy=False).reshape(filters)
    done = cudnn.call("conv2d_forward", x, kernels.astype(dtype, copy=False), bias.reshape(filters, 1), (sh, sw),
                      (ph, pw), (dh, dw), channels, dtype=dtype)
    if done is not None:
        return done
    out = xp.empty((x.shape[0], out_h, out_w, filters), dtype=dtype)
    run_step(cuda_kernels, "forward", out.size,
             (x, _tap_major(xp, kernels, dtype), xp.ascontiguousarray(bias), filters // channels, sh, sw, ph, pw, dh,
              dw, out), forward_arrays)
    return out


def depthwise2d_backward_input_gpu(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1):
    """GPU dE/dx; see :func:`kernels.depthwise2d.depthwise2d_backward_input`."""
    xp = backend.get_array_module(grad_output, kernels)
    dtype = np.dtype(grad_output.dtype)
    g = xp.ascontiguousarray(grad_output)
    input_shape = tuple(int(s) for s in input_shape)
    channels = input_shape[3]
    sh, sw, ph, pw, dh, dw, _, _ = _geometry(input_shape, kernels.shape, stride, padding, dilation)
    done = cudnn.call("conv2d_backward_input", g, kernels.astype(dtype, copy=False), input_shape, (sh, sw), (ph, pw),
                      (dh, dw), channels, dtype=dtype)
    if done is not None:
        return done
    grad_input = xp.empty(input_shape, dtype=dtype)
    run_step(cuda_kernels, "backward_input", grad_input.size,
             (g, _tap_major(xp, kernels, dtype), kernels.shape[0] // channels, sh, sw, ph, pw, dh, dw, dtype.type(0),
              grad_input), backward_input_arrays)
    return grad_input


def depthwise2d_backward_kernels_gpu(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1):
    """GPU dE/dK; see :func:`kernels.depthwise2d.depthwise2d_backward_kernels` (``kh kw`` reductions)."""
    xp = backend.get_array_module(grad_output, x)
    dtype = np.dtype(grad_output.dtype)
    g = xp.ascontiguousarray(grad_output)
    x = xp.ascontiguousarray(x.astype(dtype, copy=False))
    filters, _, kh, kw = (int(s) for s in kernel_shape)
    channels = x.shape[3]
    sh, sw, ph, pw, dh, dw, out_h, out_w = _geometry(x.shape, kernel_shape, stride, padding, dilation)
    done = cudnn.call("conv2d_backward_kernels", g, x, (filters, 1, kh, kw), (sh, sw), (ph, pw), (dh, dw), channels,
                      dtype=dtype)
    if done is not None:
        return done
    mult = filters // channels
    windows = windows_view(xp, _padded(xp, x, ph, pw), out_h, out_w, kh, kw, sh, sw, dh, dw)
    g5 = g.reshape(g.shape[0], out_h, out_w, channels, mult)
    grad = xp.empty((kh, kw, filters), dtype=dtype)
    for i in range(kh):
        for j in range(kw):
            grad[i, j] = (g5 * windows[:, :, :, i, j, :, None]).sum(axis=(0, 1, 2)).reshape(filters)
    return xp.ascontiguousarray(grad.transpose(2, 0, 1).reshape(filters, 1, kh, kw))
