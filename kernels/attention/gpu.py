"""CuPy kernels of the attention softmax: one warp per row of scores, in CUDA C compiled by NVRTC.

:data:`CUDA_SOURCE` is the whole source (templates on the element type, with
``extern "C"`` entry points named in :data:`KERNEL_NAMES`), so it can be
compiled without a GPU (``cuda.bindings.nvrtc``) to check it. The module is
built on first use and memoized; importing this file needs neither CuPy nor a
GPU. Each warp owns one row ``r`` of ``(R, Tk)``: its 32 lanes stride over the
keys, reduce the maximum and the sum with ``__shfl_xor_sync``, and write the
row. The row, mask and causal conventions are the CPU kernels'
(:mod:`kernels.attention.cpu`); a fully masked row is zeros. The matrix
products around the softmax stay with cuBLAS (CuPy's ``matmul``).
"""

from __future__ import annotations

import functools

import numpy as np

#: float32 and float64 (float16 goes to the reference code).
SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))

#: Threads per block: four warps, four rows.
THREADS = 128

CUDA_SOURCE = r"""
template <typename T> __device__ __forceinline__ T neg_inf();
template <> __device__ __forceinline__ float neg_inf<float>() { return -__int_as_float(0x7f800000); }
template <> __device__ __forceinline__ double neg_inf<double>() { return -__longlong_as_double(0x7ff0000000000000LL); }

template <typename T> __device__ __forceinline__ T warp_max(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) {
        T other = __shfl_xor_sync(0xffffffffu, v, offset);
        v = other > v ? other : v;
    }
    return v;
}

template <typename T> __device__ __forceinline__ T warp_sum(T v) {
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
    return v;
}

// out[r] = softmax(scale * scores[r] + mask[row of r]) with the causal cut; zeros when no key is left.
template <typename T>
__device__ void softmax_fwd(const T* scores, const T* mask, T* out, T scale, long long rows, int keys,
                            int heads, int queries, int mask_b, int mask_h, int mask_q, int has_mask, int causal) {
    long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int i = (int)(r % queries);
    int limit = causal ? min(keys, i + 1) : keys;
    const T* src = scores + r * keys;
    T* row = out + r * keys;
    const T* m = 0;
    if (has_mask) {
        long long b = r / ((long long)heads * queries);
        int h = (int)((r / queries) % heads);
        m = mask + (((b % mask_b) * mask_h + (h % mask_h)) * mask_q + (i % mask_q)) * (long long)keys;
    }
    T top = neg_inf<T>();
    for (int j = lane; j < limit; j += 32) {
        T v = scale * src[j] + (has_mask ? m[j] : (T)0);
        row[j] = v;
        top = v > top ? v : top;
    }
    top = warp_max(top);
    if (top == neg_inf<T>()) {
        for (int j = lane; j < keys; j += 32) row[j] = (T)0;
        return;
    }
    T total = (T)0;
    for (int j = lane; j < limit; j += 32) {
        T e = exp(row[j] - top);
        row[j] = e;
        total += e;
    }
    T inv = (T)1 / warp_sum(total);
    for (int j = lane; j < keys; j += 32) row[j] = j < limit ? row[j] * inv : (T)0;
}

// out[r] = scale * P[r] * (G[r] - <G[r], P[r]>)
template <typename T>
__device__ void softmax_bwd(const T* grad, const T* probs, T* out, T scale, long long rows, int keys,
                            int queries, int causal) {
    long long r = (long long)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    int limit = causal ? min(keys, (int)(r % queries) + 1) : keys;
    const T* g = grad + r * keys;
    const T* p = probs + r * keys;
    T* row = out + r * keys;
    T dot = (T)0;
    for (int j = lane; j < limit; j += 32) dot += g[j] * p[j];
    dot = warp_sum(dot);
    for (int j = lane; j < keys; j += 32) row[j] = j < limit ? scale * p[j] * (g[j] - dot) : (T)0;
}

#define CAMADAS_ATTENTION_ENTRY_POINTS(T, NAME)                                                              \
extern "C" __global__ void attention_softmax_fwd_##NAME(                                                    \
        const T* scores, const T* mask, T* out, T scale, long long rows, int keys, int heads, int queries,  \
        int mask_b, int mask_h, int mask_q, int has_mask, int causal) {                                     \
    softmax_fwd<T>(scores, mask, out, scale, rows, keys, heads, queries, mask_b, mask_h, mask_q, has_mask,  \
                   causal);                                                                                  \
}                                                                                                            \
extern "C" __global__ void attention_softmax_bwd_##NAME(                                                    \
        const T* grad, const T* probs, T* out, T scale, long long rows, int keys, int queries, int causal) { \
    softmax_bwd<T>(grad, probs, out, scale, rows, keys, queries, causal);                                   \
}

CAMADAS_ATTENTION_ENTRY_POINTS(float, float32)
CAMADAS_ATTENTION_ENTRY_POINTS(double, float64)
"""

#: dtype name -> (forward entry point, backward entry point) in :data:`CUDA_SOURCE`.
KERNEL_NAMES = {
    "float32": ("attention_softmax_fwd_float32", "attention_softmax_bwd_float32"),
    "float64": ("attention_softmax_fwd_float64", "attention_softmax_bwd_float64"),
}


@functools.cache
def _module():
    import cupy

    return cupy.RawModule(code=CUDA_SOURCE, options=("--std=c++11",))


def _kernel(dtype, direction: int):
    return _module().get_function(KERNEL_NAMES[np.dtype(dtype).name][direction])


def supports(*arrays) -> bool:
    """True when every array is a C-contiguous CuPy float32/float64 array of one dtype."""
    dtypes = {a.dtype for a in arrays}
    return (len(dtypes) == 1 and dtypes.pop() in SUPPORTED_DTYPES
            and all(hasattr(a, "data") and a.flags.c_contiguous for a in arrays))


def _grid(rows: int):
    return ((rows + THREADS // 32 - 1) // (THREADS // 32),)


def softmax_forward(scores, scale, mask, causal, out):
    """Launch the forward kernel over ``scores (B, H, Tq, Tk)`` into ``out``; ``mask`` ``(mb, mh, mq, Tk)`` or None."""
    batch, heads, queries, keys = scores.shape
    rows = batch * heads * queries
    dtype = scores.dtype.type
    if mask is None:
        mask_arg, sizes, has_mask = out, (1, 1, 1), 0  # never read
    else:
        mask_arg, sizes, has_mask = mask, mask.shape[:3], 1
    _kernel(scores.dtype, 0)(_grid(rows), (THREADS,), (
        scores, mask_arg, out, dtype(scale), np.int64(rows), np.int32(keys), np.int32(heads), np.int32(queries),
        *(np.int32(s) for s in sizes), np.int32(has_mask), np.int32(bool(causal))))
    return out


def softmax_backward(grad_output, probs, scale, causal, out):
    """Launch the backward kernel over ``(B, H, Tq, Tk)`` arrays into ``out``."""
    keys, queries = probs.shape[-1], probs.shape[-2]
    rows = probs.size // keys
    _kernel(probs.dtype, 1)(_grid(rows), (THREADS,), (
        grad_output, probs, out, probs.dtype.type(scale), np.int64(rows), np.int32(keys), np.int32(queries),
        np.int32(bool(causal))))
    return out
