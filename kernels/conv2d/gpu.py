"""2-D convolution on the GPU (book section 22.2): cuDNN where it loads, else numba-cuda im2col + cuBLAS.

On CuPy arrays each ``*_gpu`` function first offers the case to
:func:`kernels.cudnn.call` (NHWC, deterministic algorithms, float32 without
TF32); when cuDNN is off, missing or declines, our path runs. Our path is
the CPU's algorithm in chunks of whole images (``cols`` below :data:`CHUNK_BYTES`):

* forward: ``cols = im2col(x)`` (numba-cuda, one thread per element of
  ``cols``, coalesced writes), ``out = cols @ Wm + bias`` (``cupy.matmul``: cuBLAS);
* backward, kernels: ``dWm += cols^T @ g``, chunks added in order;
* backward, input: ``gcols = g @ Wm^T``, then col2im as a *gather* (one thread
  per input element sums the entries that came from it: no atomics, deterministic);
* backward, bias: a CuPy sum over (B, OH, OW).

Under Numba's CUDA simulator the functions take NumPy arrays and run our
kernels, which is how CI checks the index arithmetic without a GPU; when
numba-cuda cannot compile, the same steps run as CuPy array operations
(:func:`im2col_arrays`, :func:`col2im_arrays`). float16 is computed in float32
and rounded back. The bias gradient is always ours (a CuPy reduction).
"""

from __future__ import annotations

import functools
import types

import numpy as np

import backend

from .. import cudnn
from ..cuda_launch import (  # noqa: F401 (launch helpers, importable here as in camadas 0.1)
    MAX_BLOCKS,
    PREFER_NUMBA_CUDA,
    THREADS_PER_BLOCK,
    device_functions,
    launch,
    numba_cuda,
    numba_cuda_error,
    run_step,
    windows_view,
)
from ..geometry import as_pair, conv2d_geometry
from . import groups as grouped

#: Target size in bytes of one chunk of ``cols`` (whole images per chunk).
CHUNK_BYTES = 256 << 20

#: ``numba.cuda``, bound by :func:`cuda_kernels` (the kernels refer to it as a module global).
cuda = None


@functools.lru_cache(maxsize=None)
def cuda_kernels():
    """Compile-on-first-use namespace of the numba-cuda kernels (``im2col``, ``col2im``)."""
    global cuda
    cuda = numba_cuda()
    unravel_nhwc, tap_output = device_functions().unravel_nhwc, device_functions().tap_output

    @cuda.jit
    def im2col(x, b0, n_rows, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols):
        # cols[row, (i*kw + j)*C + c] = xpad[b0 + row // (OH*OW), oh*sh + i*dh, ow*sw + j*dw, c]
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        k_total = kh * kw * channels
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, n_rows * k_total, step):
            row, i, j, c = unravel_nhwc(t, kh, kw, channels)  # cols as (n_rows, kh, kw, C)
            col = t - row * k_total
            bl, oh, ow, _ = unravel_nhwc(row, out_h, out_w, 1)  # rows as (images, OH, OW, 1)
            b = b0 + bl
            ih = oh * sh - ph + i * dh
            iw = ow * sw - pw + j * dw
            if ih >= 0 and ih < height and iw >= 0 and iw < width:
                cols[row, col] = x[b, ih, iw, c]
            else:
                cols[row, col] = 0

    @cuda.jit
    def col2im(gcols, b0, n_images, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, zero, grad_input):
        # gather: dx[b, h, w, c] = Σ gcols[row(b, oh, ow), (i*kw + j)*C + c] over oh*sh + i*dh - ph = h, ...
        height, width, channels = grad_input.shape[1], grad_input.shape[2], grad_input.shape[3]
        start = cuda.grid(1)
        step = cuda.gridsize(1)
        for t in range(start, n_images * height * width * channels, step):
            bl, ih, iw, c = unravel_nhwc(t, height, width, channels)
            acc = zero  # a scalar of the arrays' dtype
            for i in range(kh):
                oh = tap_output(ih, ph, i * dh, sh, out_h)
                if oh < 0:
                    continue
                for j in range(kw):
                    ow = tap_output(iw, pw, j * dw, sw, out_w)
                    if ow < 0:
                        continue
                    acc += gcols[(bl * out_h + oh) * out_w + ow, (i * kw + j) * channels + c]
            grad_input[b0 + bl, ih, iw, c] = acc

    return types.SimpleNamespace(im2col=im2col, col2im=col2im)


# --------------------------------------------------------------------------
# the same steps as array operations (CuPy on a GPU, NumPy in tests)
# --------------------------------------------------------------------------
def im2col_arrays(x, b0, n_rows, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols):
    """:func:`cuda_kernels` ``im2col`` as array operations (same arguments)."""
    xp = backend.get_array_module(x, cols)
    n_images = n_rows // (out_h * out_w)
    padded = xp.pad(x[b0:b0 + n_images], ((0, 0), (ph, ph), (pw, pw), (0, 0)))
    target = cols[:n_rows].reshape(n_images, out_h, out_w, kh, kw, x.shape[3])
    target[...] = windows_view(xp, padded, out_h, out_w, kh, kw, sh, sw, dh, dw)


def col2im_arrays(gcols, b0, n_images, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, zero, grad_input):
    """:func:`cuda_kernels` ``col2im`` as array operations: ``kh*kw`` strided additions."""
    xp = backend.get_array_module(gcols, grad_input)
    _, height, width, channels = grad_input.shape
    g6 = gcols[:n_images * out_h * out_w].reshape(n_images, out_h, out_w, kh, kw, channels)
    padded = xp.zeros((n_images, height + 2 * ph, width + 2 * pw, channels), dtype=grad_input.dtype)
    for i in range(kh):
        for j in range(kw):
            padded[:, i * dh:i * dh + sh * (out_h - 1) + 1:sh, j * dw:j * dw + sw * (out_w - 1) + 1:sw, :] += \
                g6[:, :, :, i, j, :]
    grad_input[b0:b0 + n_images] = padded[:, ph:ph + height, pw:pw + width, :]


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------
def _compute_dtype(*arrays):
    dtype = np.result_type(*(a.dtype for a in arrays))
    if dtype == np.float16:
        return np.dtype(np.float32), dtype
    return dtype, dtype


def _image_chunks(batch, out_h, out_w, k_total, itemsize):
    """``(rows, chunks)``: chunks ``(b0, b1, n)`` of whole images, ``n`` im2col rows each, below
    :data:`CHUNK_BYTES` of ``cols``; ``rows`` is the largest ``n`` (the size of the buffer)."""
    per_image = out_h * out_w
    step = int(min(batch, max(1, CHUNK_BYTES // max(1, per_image * k_total * itemsize))))
    chunks = [(b0, min(batch, b0 + step), (min(batch, b0 + step) - b0) * per_image) for b0 in range(0, batch, step)]
    return step * per_image, chunks


def _kernel_matrix(xp, kernels, dtype):
    f, c, kh, kw = kernels.shape
    return xp.ascontiguousarray(kernels.transpose(2, 3, 1, 0).reshape(kh * kw * c, f).astype(dtype, copy=False))


# --------------------------------------------------------------------------
# GPU implementations (CuPy arrays; NumPy arrays under the CUDA simulator)
# --------------------------------------------------------------------------
def conv2d_forward_gpu(x, kernels, biases, stride=1, padding=0, dilation=1, groups=1):
    """GPU forward; see :func:`kernels.conv2d.conv2d_forward` (groups: cuDNN's, else one call per group)."""
    xp = backend.get_array_module(x, kernels, biases)
    compute, result = _compute_dtype(x, kernels, biases)
    x = xp.ascontiguousarray(x.astype(compute, copy=False))
    batch, height, width, channels = x.shape
    filters, _, kh, kw = kernels.shape
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry((height, width), (kh, kw), stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    done = cudnn.call("conv2d_forward", x, kernels.astype(compute, copy=False), biases.astype(compute, copy=False),
                      (sh, sw), (ph, pw), (dh, dw), groups, dtype=result)
    if done is not None:
        return done
    if groups > 1:
        return grouped.forward(conv2d_forward_gpu, x, kernels, biases, stride, padding, dilation, groups)
    k_total = kh * kw * channels
    wm = _kernel_matrix(xp, kernels, compute)
    bias = biases.astype(compute, copy=False).reshape(filters)
    out = xp.empty((batch, out_h, out_w, filters), dtype=compute)
    out2d = out.reshape(batch * out_h * out_w, filters)
    rows, chunks = _image_chunks(batch, out_h, out_w, k_total, x.itemsize)
    cols = xp.empty((rows, k_total), dtype=compute)
    for b0, _, n in chunks:
        run_step(cuda_kernels, "im2col", n * k_total,
                 (x, b0, n, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols), im2col_arrays)
        block = out2d[b0 * out_h * out_w:b0 * out_h * out_w + n]
        xp.matmul(cols[:n], wm, out=block)
        block += bias
    return out if compute == result else out.astype(result)


def conv2d_backward_input_gpu(grad_output, kernels, input_shape, stride=1, padding=0, dilation=1, groups=1):
    """GPU dE/dx; see :func:`kernels.conv2d.conv2d_backward_input`."""
    xp = backend.get_array_module(grad_output, kernels)
    compute, result = _compute_dtype(grad_output, kernels)
    g = xp.ascontiguousarray(grad_output.astype(compute, copy=False))
    batch, height, width, channels = (int(s) for s in input_shape)
    filters, _, kh, kw = kernels.shape
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry((height, width), (kh, kw), stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    done = cudnn.call("conv2d_backward_input", g, kernels.astype(compute, copy=False),
                      (batch, height, width, channels), (sh, sw), (ph, pw), (dh, dw), groups, dtype=result)
    if done is not None:
        return done
    if groups > 1:
        return grouped.backward_input(conv2d_backward_input_gpu, g, kernels, input_shape, stride, padding, dilation,
                                      groups)
    k_total = kh * kw * channels
    wm_t = _kernel_matrix(xp, kernels, compute).T
    grad_input = xp.empty((batch, height, width, channels), dtype=compute)
    g2d = g.reshape(batch * out_h * out_w, filters)
    rows, chunks = _image_chunks(batch, out_h, out_w, k_total, g.itemsize)
    gcols = xp.empty((rows, k_total), dtype=compute)
    for b0, b1, n in chunks:
        xp.matmul(g2d[b0 * out_h * out_w:b0 * out_h * out_w + n], wm_t, out=gcols[:n])
        run_step(cuda_kernels, "col2im", (b1 - b0) * height * width * channels,
                 (gcols, b0, b1 - b0, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, compute.type(0), grad_input),
                 col2im_arrays)
    return grad_input if compute == result else grad_input.astype(result)


def conv2d_backward_kernels_gpu(grad_output, x, kernel_shape, stride=1, padding=0, dilation=1, groups=1):
    """GPU dE/dK; see :func:`kernels.conv2d.conv2d_backward_kernels`."""
    xp = backend.get_array_module(grad_output, x)
    compute, result = _compute_dtype(grad_output, x)
    g = xp.ascontiguousarray(grad_output.astype(compute, copy=False))
    x = xp.ascontiguousarray(x.astype(compute, copy=False))
    batch, height, width, channels = x.shape
    filters, kernel_channels, kh, kw = (int(s) for s in kernel_shape)
    (sh, sw), (ph, pw), out_h, out_w = conv2d_geometry((height, width), (kh, kw), stride, padding, dilation)
    dh, dw = as_pair(dilation, "dilation", 1)
    done = cudnn.call("conv2d_backward_kernels", g, x, (filters, kernel_channels, kh, kw), (sh, sw), (ph, pw),
                      (dh, dw), groups, dtype=result)
    if done is not None:
        return done
    if groups > 1:
        return grouped.backward_kernels(conv2d_backward_kernels_gpu, g, x, kernel_shape, stride, padding, dilation,
                                        groups)
    k_total = kh * kw * channels
    g2d = g.reshape(batch * out_h * out_w, filters)
    grad_wm = xp.zeros((k_total, filters), dtype=compute)
    rows, chunks = _image_chunks(batch, out_h, out_w, k_total, x.itemsize)
    cols = xp.empty((rows, k_total), dtype=compute)
    for b0, _, n in chunks:
        run_step(cuda_kernels, "im2col", n * k_total,
                 (x, b0, n, kh, kw, sh, sw, ph, pw, dh, dw, out_h, out_w, cols), im2col_arrays)
        grad_wm += xp.matmul(cols[:n].T, g2d[b0 * out_h * out_w:b0 * out_h * out_w + n])
    grad = grad_wm.reshape(kh, kw, channels, filters).transpose(3, 2, 0, 1)
    return xp.ascontiguousarray(grad.astype(result, copy=False))


def conv2d_backward_bias_gpu(grad_output):
    """GPU dE/dbias; see :func:`kernels.conv2d.conv2d_backward_bias` (a CuPy reduction)."""
    filters = grad_output.shape[-1]
    compute, result = _compute_dtype(grad_output)
    g2d = grad_output.reshape(-1, filters)
    return g2d.sum(axis=0, dtype=compute).astype(result, copy=False).reshape(filters, 1)
