"""2-D pooling on the GPU (book section 22.3): numba-cuda kernels on CuPy arrays, average pooling by cuDNN.

* Forward, max and average: one thread per output element ``(b, oh, ow, c)``;
  consecutive threads take consecutive channels (coalesced NHWC reads and
  writes). Max pooling records the window-local index of the first maximum
  (int32; NaN wins, as on the CPU).
* Backward: one thread per *input* element gathers the gradients of the
  windows that contain it: no atomics, deterministic, every element written
  once (no zeroing pass).
* Global average pooling: CuPy's own reductions.
* Average pooling is first offered to cuDNN (:func:`kernels.cudnn.call`);
  max pooling stays ours, since its backward takes the recorded argmax
  (first maximum, NaN wins), which cuDNN does not return.

Launch helpers and the index arithmetic come from :mod:`kernels.cuda_launch`
(shared with :mod:`kernels.conv2d.gpu`): under Numba's CUDA simulator these
functions take NumPy arrays; when numba-cuda cannot compile, the same steps run
as array operations (``*_arrays``). float16 is computed in float32 and rounded back.
"""

from __future__ import annotations

import functools
import types

import numpy as np

import backend

from .. import cudnn
from ..cuda_launch import device_functions, numba_cuda, run_step, windows_view
from ..geometry import pool_geometry

#: ``numba.cuda``, bound by :func:`cuda_kernels` (the kernels refer to it as a module global).
cuda = None


@functools.lru_cache(maxsize=None)
def cuda_kernels():
    """Compile-on-first-use namespace of the pooling kernels (max/avg, forward/backward)."""
    global cuda
    cuda = numba_cuda()

    helpers = device_functions()
    unravel_nhwc = helpers.unravel_nhwc
    windows_covering = helpers.windows_covering

    @cuda.jit
    def max_forward(x, ph, pw, sh, sw, out, argmax):
        channels = x.shape[3]
        out_h, out_w = out.shape[1], out.shape[2]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, out.size, step):
            b, oh, ow, c = unravel_nhwc(t, out_h, out_w, channels)
            h0 = oh * sh
            w0 = ow * sw
            best = x[b, h0, w0, c]
            best_k = 0
            for i in range(ph):
                for j in range(pw):
                    v = x[b, h0 + i, w0 + j, c]
                    if v > best or (v != v and best == best):
                        best = v
                        best_k = i * pw + j
            out[b, oh, ow, c] = best
            argmax[b, oh, ow, c] = best_k

    @cuda.jit
    def max_backward(grad_output, argmax, ph, pw, sh, sw, zero, grad_input):
        height, width, channels = grad_input.shape[1], grad_input.shape[2], grad_input.shape[3]
        out_h, out_w = grad_output.shape[1], grad_output.shape[2]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, grad_input.size, step):
            b, ih, iw, c = unravel_nhwc(t, height, width, channels)
            oh_lo, oh_hi = windows_covering(ih, ph, sh, out_h)
            ow_lo, ow_hi = windows_covering(iw, pw, sw, out_w)
            acc = zero
            for oh in range(oh_lo, oh_hi):
                for ow in range(ow_lo, ow_hi):
                    if argmax[b, oh, ow, c] == (ih - oh * sh) * pw + (iw - ow * sw):
                        acc += grad_output[b, oh, ow, c]
            grad_input[b, ih, iw, c] = acc

    @cuda.jit
    def avg_forward(x, ph, pw, sh, sw, scale, out):
        channels = x.shape[3]
        out_h, out_w = out.shape[1], out.shape[2]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, out.size, step):
            b, oh, ow, c = unravel_nhwc(t, out_h, out_w, channels)
            acc = scale * 0
            for i in range(ph):
                for j in range(pw):
                    acc += x[b, oh * sh + i, ow * sw + j, c]
            out[b, oh, ow, c] = acc * scale

    @cuda.jit
    def avg_backward(grad_output, ph, pw, sh, sw, scale, grad_input):
        height, width, channels = grad_input.shape[1], grad_input.shape[2], grad_input.shape[3]
        out_h, out_w = grad_output.shape[1], grad_output.shape[2]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, grad_input.size, step):
            b, ih, iw, c = unravel_nhwc(t, height, width, channels)
            oh_lo, oh_hi = windows_covering(ih, ph, sh, out_h)
            ow_lo, ow_hi = windows_covering(iw, pw, sw, out_w)
            acc = scale * 0
            for oh in range(oh_lo, oh_hi):
                for ow in range(ow_lo, ow_hi):
                    acc += grad_output[b, oh, ow, c] * scale
            grad_input[b, ih, iw, c] = acc

    return types.SimpleNamespace(max_forward=max_forward, max_backward=max_backward,
                                 avg_forward=avg_forward, avg_backward=avg_backward)


# --------------------------------------------------------------------------
# the same steps as array operations (CuPy on a GPU, NumPy in tests)
# --------------------------------------------------------------------------
def _window_slices(i, j, sh, sw, out_h, out_w):
    """Index of the pixels at offset (i, j) of every window: a strided slice of the input."""
    return (slice(None), slice(i, i + sh * (out_h - 1) + 1, sh), slice(j, j + sw * (out_w - 1) + 1, sw), slice(None))


def max_forward_arrays(x, ph, pw, sh, sw, out, argmax):
    """``max_forward`` as array operations: argmax over a strided window view (first maximum, NaN wins)."""
    xp = backend.get_array_module(x, out)
    batch, out_h, out_w, channels = out.shape
    windows = xp.ascontiguousarray(windows_view(xp, x, out_h, out_w, ph, pw, sh, sw))
    windows = windows.reshape(batch, out_h, out_w, ph * pw, channels)
    argmax[...] = windows.argmax(axis=3)
    out[...] = xp.take_along_axis(windows, argmax[:, :, :, None, :].astype(np.int64), axis=3)[:, :, :, 0, :]


def max_backward_arrays(grad_output, argmax, ph, pw, sh, sw, zero, grad_input):
    """``max_backward`` as array operations: one masked strided addition per window position."""
    xp = backend.get_array_module(grad_output, grad_input)
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    grad_input[...] = 0
    for i in range(ph):
        for j in range(pw):
            hit = argmax == i * pw + j
            grad_input[_window_slices(i, j, sh, sw, out_h, out_w)] += xp.where(hit, grad_output, zero)


def avg_forward_arrays(x, ph, pw, sh, sw, scale, out):
    """``avg_forward`` as array operations: a sum over a strided window view."""
    xp = backend.get_array_module(x, out)
    out_h, out_w = out.shape[1], out.shape[2]
    out[...] = windows_view(xp, x, out_h, out_w, ph, pw, sh, sw).sum(axis=(3, 4)) * scale


def avg_backward_arrays(grad_output, ph, pw, sh, sw, scale, grad_input):
    """``avg_backward`` as array operations: one strided addition per window position."""
    out_h, out_w = grad_output.shape[1], grad_output.shape[2]
    scaled = grad_output * scale
    grad_input[...] = 0
    for i in range(ph):
        for j in range(pw):
            grad_input[_window_slices(i, j, sh, sw, out_h, out_w)] += scaled


def _compute_dtype(x):
    dtype = np.dtype(x.dtype)
    return (np.dtype(np.float32), dtype) if dtype == np.float16 else (dtype, dtype)


def max_pool2d_forward_gpu(x, pool_size=(2, 2), stride=None):
    """GPU forward; see :func:`kernels.pool2d.max_pool2d_forward`."""
    xp = backend.get_array_module(x)
    compute, result = _compute_dtype(x)
    x = xp.ascontiguousarray(x.astype(compute, copy=False))
    batch, height, width, channels = x.shape
    (ph, pw), (sh, sw), (out_h, out_w) = pool_geometry((height, width), pool_size, stride)
    out = xp.empty((batch, out_h, out_w, channels), dtype=compute)
    argmax = xp.empty((batch, out_h, out_w, channels), dtype=np.int32)
    run_step(cuda_kernels, "max_forward", out.size, (x, ph, pw, sh, sw, out, argmax), max_forward_arrays)
    return out.astype(result, copy=False), argmax


def max_pool2d_backward_gpu(grad_output, argmax, input_shape, pool_size=(2, 2), stride=None):
    """GPU backward; see :func:`kernels.pool2d.max_pool2d_backward`."""
    xp = backend.get_array_module(grad_output, argmax)
    compute, result = _compute_dtype(grad_output)
    g = xp.ascontiguousarray(grad_output.astype(compute, copy=False))
    argmax = xp.ascontiguousarray(argmax.astype(np.int32, copy=False))
    shape = tuple(int(s) for s in input_shape)
    (ph, pw), (sh, sw), _ = pool_geometry(shape[1:3], pool_size, stride)
    grad_input = xp.empty(shape, dtype=compute)
    run_step(cuda_kernels, "max_backward", grad_input.size, (g, argmax, ph, pw, sh, sw, compute.type(0), grad_input),
             max_backward_arrays)
    return grad_input.astype(result, copy=False)


def avg_pool2d_forward_gpu(x, pool_size=(2, 2), stride=None):
    """GPU forward; see :func:`kernels.pool2d.avg_pool2d_forward`."""
    xp = backend.get_array_module(x)
    compute, result = _compute_dtype(x)
    x = xp.ascontiguousarray(x.astype(compute, copy=False))
    batch, height, width, channels = x.shape
    (ph, pw), (sh, sw), (out_h, out_w) = pool_geometry((height, width), pool_size, stride)
    done = cudnn.call("avg_pool2d_forward", x, (ph, pw), (sh, sw), (out_h, out_w), dtype=result)
    if done is not None:
        return done
    out = xp.empty((batch, out_h, out_w, channels), dtype=compute)
    run_step(cuda_kernels, "avg_forward", out.size, (x, ph, pw, sh, sw, compute.type(1.0 / (ph * pw)), out),
             avg_forward_arrays)
    return out.astype(result, copy=False)


def avg_pool2d_backward_gpu(grad_output, input_shape, pool_size=(2, 2), stride=None):
    """GPU backward; see :func:`kernels.pool2d.avg_pool2d_backward`."""
    xp = backend.get_array_module(grad_output)
    compute, result = _compute_dtype(grad_output)
    g = xp.ascontiguousarray(grad_output.astype(compute, copy=False))
    shape = tuple(int(s) for s in input_shape)
    (ph, pw), (sh, sw), _ = pool_geometry(shape[1:3], pool_size, stride)
    done = cudnn.call("avg_pool2d_backward", g, shape, (ph, pw), (sh, sw), dtype=result)
    if done is not None:
        return done
    grad_input = xp.empty(shape, dtype=compute)
    run_step(cuda_kernels, "avg_backward", grad_input.size,
             (g, ph, pw, sh, sw, compute.type(1.0 / (ph * pw)), grad_input), avg_backward_arrays)
    return grad_input.astype(result, copy=False)


def global_avg_pool2d_forward_gpu(x):
    """GPU forward (a CuPy reduction); see :func:`kernels.pool2d.global_avg_pool2d_forward`."""
    compute, result = _compute_dtype(x)
    return x.astype(compute, copy=False).mean(axis=(1, 2), keepdims=True).astype(result, copy=False)


def global_avg_pool2d_backward_gpu(grad_output, input_shape):
    """GPU backward (a CuPy broadcast); see :func:`kernels.pool2d.global_avg_pool2d_backward`."""
    xp = backend.get_array_module(grad_output)
    shape = tuple(int(s) for s in input_shape)
    scaled = grad_output / (shape[1] * shape[2])
    return xp.ascontiguousarray(xp.broadcast_to(scaled, shape)).astype(grad_output.dtype, copy=False)
