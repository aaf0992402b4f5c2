"""Batch and layer normalization on the GPU (book section 25.3): CUDA kernels in one ``cupy.RawModule``.

:func:`module_source` is the complete CUDA text of the module for one dtype:
what CuPy compiles here and what ``tests/kernels/test_gpu_compile.py`` hands to
NVRTC (with :func:`nvrtc_options`), so CI compiles what the GPU runs. The
kernels mirror :mod:`kernels.normalization.cpu`: statistics and gradient sums
in double, per column over fixed row ranges (one thread block each) whose
partial sums are added in range order, block reductions in a fixed tree order:
the same bits on every run. The module is compiled on first use and memoized,
so importing this file needs neither CuPy nor a GPU.
"""

from __future__ import annotations

import functools

import numpy as np

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Threads per block of every kernel (a power of two: :func:`module_source`'s tree reductions need it).
THREADS = 256
#: Batch normalization: at most this many row ranges (thread blocks) per column sum, each of at least
#: :data:`MIN_BLOCK_ROWS` rows; layer normalization's parameter gradients use the same rule.
MAX_ROW_BLOCKS = 1024
MIN_BLOCK_ROWS = 64
#: Largest grid of a grid-stride launch.
MAX_BLOCKS = 65535

_C_TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
#: Options CuPy 14 adds to a ``RawModule``'s own (see :mod:`kernels.activations.gpu_source`).
CUPY_OPTIONS_BEFORE_ARCH = ("--std=c++17", "-ftz=true")
CUPY_OPTIONS_AFTER_ARCH = ("--device-as-default-execution-space",)

_SOURCE = r"""
#define THREADS %(threads)d

// a b rounded once and never fused into a following subtraction (NVRTC contracts a * b - c into an FMA
// by default): the layer-norm backward subtracts the row mean of these very products, so a row of one
// feature gives exactly 0, as in exact arithmetic. Plain products on the host harness (g++).
#ifdef __CUDACC__
__device__ __forceinline__ float mul_rn(float a, float b) { return __fmul_rn(a, b); }
__device__ __forceinline__ double mul_rn(double a, double b) { return __dmul_rn(a, b); }
#else
inline float mul_rn(float a, float b) { return a * b; }
inline double mul_rn(double a, double b) { return a * b; }
#endif

// The sum of one value per thread over the block, in a fixed tree order (blockDim.x == THREADS).
__device__ double block_sum(double v, double* shared) {
    const int t = threadIdx.x;
    shared[t] = v;
    __syncthreads();
    for (int s = THREADS / 2; s > 0; s >>= 1) {
        if (t < s) shared[t] += shared[t + s];
        __syncthreads();
    }
    const double total = shared[0];
    __syncthreads();
    return total;
}

// MODE 0: (Σ (a - shift), Σ (a - shift)²); MODE 1: (Σ a, Σ a (b - shift)), in double.
template <int MODE>
__device__ __forceinline__ void accumulate(const T* a, const T* b, long long i, double shift,
                                           double& s1, double& s2) {
    if (MODE == 0) {
        const double d = (double)a[i] - shift;
        s1 += d;
        s2 += d * d;
    } else {
        const double g = (double)a[i];
        s1 += g;
        s2 += g * ((double)b[i] - shift);
    }
}

// Column sums of the rows [blockIdx.x * rows_per_block, ...) of (rows, channels) arrays into
// partials[2 blockIdx.x + k][c]. channels <= THREADS: thread t sums column t %% channels over every
// (THREADS / channels)-th row from its group t / channels on, then group 0 adds the groups in order;
// channels > THREADS: thread t sums the columns t, t + THREADS, ... alone.
template <int MODE>
__device__ void column_partials(const T* a, const T* b, long long rows, long long channels,
                                long long rows_per_block, const double* shift, double* partials) {
    __shared__ double sums1[THREADS];
    __shared__ double sums2[THREADS];
    const long long r0 = (long long)blockIdx.x * rows_per_block;
    const long long r1 = min(rows, r0 + rows_per_block);
    double* out1 = partials + 2LL * blockIdx.x * channels;
    double* out2 = out1 + channels;
    const int t = threadIdx.x;
    if (channels > THREADS) {
        for (long long c = t; c < channels; c += THREADS) {
            double s1 = 0.0, s2 = 0.0;
            for (long long r = r0; r < r1; ++r) accumulate<MODE>(a, b, r * channels + c, shift[c], s1, s2);
            out1[c] = s1;
            out2[c] = s2;
        }
        return;
    }
    const int width = (int)channels;
    const int groups = THREADS / width;
    const int c = t %% width;
    const int group = t / width;
    double s1 = 0.0, s2 = 0.0;
    if (group < groups) {
        const double sc = shift[c];
        for (long long r = r0 + group; r < r1; r += groups) accumulate<MODE>(a, b, r * channels + c, sc, s1, s2);
    }
    sums1[t] = s1;
    sums2[t] = s2;
    __syncthreads();
    if (group == 0) {
        for (int k = 1; k < groups; ++k) {
            s1 += sums1[k * width + c];
            s2 += sums2[k * width + c];
        }
        out1[c] = s1;
        out2[c] = s2;
    }
}

// Σ over the row ranges, in order, of partials[2 b + k][j].
__device__ double fold(const double* partials, long long n_blocks, long long width, int k, long long j) {
    double total = 0.0;
    for (long long b = 0; b < n_blocks; ++b) total += partials[(2 * b + k) * width + j];
    return total;
}

extern "C" __global__ void bn_column_sums(const T* __restrict__ x, const long long rows, const long long channels,
                                          const long long rows_per_block, const double* __restrict__ shift,
                                          double* __restrict__ partials) {
    column_partials<0>(x, x, rows, channels, rows_per_block, shift, partials);
}

extern "C" __global__ void bn_gradient_sums(const T* __restrict__ g, const T* __restrict__ x, const long long rows,
                                            const long long channels, const long long rows_per_block,
                                            const double* __restrict__ mean, double* __restrict__ partials) {
    column_partials<1>(g, x, rows, channels, rows_per_block, mean, partials);
}

// mean[c] = Σ x / rows (double)
extern "C" __global__ void bn_mean(const double* __restrict__ partials, const long long n_blocks,
                                   const long long channels, const long long rows, double* __restrict__ mean) {
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < channels;
         c += (long long)gridDim.x * blockDim.x) {
        mean[c] = fold(partials, n_blocks, channels, 0, c) / (double)rows;
    }
}

// stats = (μ, σ², 1 / sqrt(σ² + ε)), σ² = (Σ (x - μ)² - (Σ (x - μ))² / N) / N from the sums about μ
extern "C" __global__ void bn_statistics(const double* __restrict__ partials, const long long n_blocks,
                                         const long long channels, const long long rows, const double epsilon,
                                         const double* __restrict__ mean, T* __restrict__ stats) {
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < channels;
         c += (long long)gridDim.x * blockDim.x) {
        const double s1 = fold(partials, n_blocks, channels, 0, c);
        const double s2 = fold(partials, n_blocks, channels, 1, c);
        const double n = (double)rows;
        const double var = fmax((s2 - s1 * s1 / n) / n, 0.0);
        stats[c] = (T)mean[c];
        stats[channels + c] = (T)var;
        stats[2 * channels + c] = (T)(1.0 / sqrt(var + epsilon));
    }
}

// coefficients = (k_g, k_x, k_0, dE/dγ, dE/dβ): k_g = γ s, k_x = k_g s² Σ g (x - μ) / N, k_0 = k_g Σ g / N,
// dE/dγ = s Σ g (x - μ), dE/dβ = Σ g (s = inv_std)
extern "C" __global__ void bn_backward_coefficients(const double* __restrict__ partials, const long long n_blocks,
                                                    const long long channels, const long long rows,
                                                    const T* __restrict__ gamma, const T* __restrict__ inv_std,
                                                    T* __restrict__ coefficients) {
    for (long long c = (long long)blockIdx.x * blockDim.x + threadIdx.x; c < channels;
         c += (long long)gridDim.x * blockDim.x) {
        const double sg = fold(partials, n_blocks, channels, 0, c);
        const double sgx = fold(partials, n_blocks, channels, 1, c);
        const double s = (double)inv_std[c];
        const double k_g = (double)gamma[c] * s;
        const double n = (double)rows;
        coefficients[c] = (T)k_g;
        coefficients[channels + c] = (T)(k_g * s * s * sgx / n);
        coefficients[2 * channels + c] = (T)(k_g * sg / n);
        coefficients[3 * channels + c] = (T)(sgx * s);
        coefficients[4 * channels + c] = (T)sg;
    }
}

// y = γ ((x - μ) inv_std) + β, column c = i %% channels
extern "C" __global__ void bn_normalize(const T* __restrict__ x, const long long total, const long long channels,
                                        const T* __restrict__ mean, const T* __restrict__ inv_std,
                                        const T* __restrict__ gamma, const T* __restrict__ beta,
                                        T* __restrict__ y) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long c = i %% channels;
        y[i] = gamma[c] * ((x[i] - mean[c]) * inv_std[c]) + beta[c];
    }
}

// dE/dx = k_g g - k_x (x - μ) - k_0 (coefficients from bn_backward_coefficients)
extern "C" __global__ void bn_backward_input(const T* __restrict__ g, const T* __restrict__ x,
                                             const long long total, const long long channels,
                                             const T* __restrict__ mean, const T* __restrict__ coefficients,
                                             T* __restrict__ dx) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < total;
         i += (long long)gridDim.x * blockDim.x) {
        const long long c = i %% channels;
        dx[i] = coefficients[c] * g[i] - coefficients[channels + c] * (x[i] - mean[c]) - coefficients[2 * channels + c];
    }
}

// Layer normalization: one block per row (grid-stride), statistics in double.
extern "C" __global__ void ln_forward(const T* __restrict__ x, const long long rows, const long long d,
                                      const T* __restrict__ gamma, const T* __restrict__ beta, const double epsilon,
                                      T* __restrict__ y, T* __restrict__ mean_out, T* __restrict__ inv_std_out) {
    __shared__ double shared[THREADS];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const T* xr = x + r * d;
        T* yr = y + r * d;
        double s = 0.0;
        for (long long j = threadIdx.x; j < d; j += THREADS) s += (double)xr[j];
        const double mean64 = block_sum(s, shared) / (double)d;
        double s1 = 0.0, s2 = 0.0;
        for (long long j = threadIdx.x; j < d; j += THREADS) {
            const double v = (double)xr[j] - mean64;
            s1 += v;
            s2 += v * v;
        }
        s1 = block_sum(s1, shared);
        s2 = block_sum(s2, shared);
        const double var = fmax((s2 - s1 * s1 / (double)d) / (double)d, 0.0);
        const T mean = (T)mean64;
        const T inv_std = (T)(1.0 / sqrt(var + epsilon));
        if (threadIdx.x == 0) {
            mean_out[r] = mean;
            inv_std_out[r] = inv_std;
        }
        for (long long j = threadIdx.x; j < d; j += THREADS) yr[j] = gamma[j] * ((xr[j] - mean) * inv_std) + beta[j];
    }
}

// dE/dx = s (g γ - mean(g γ) - x̂ mean(g γ x̂)) per row, x̂ = (x - μ) s, the means in double
extern "C" __global__ void ln_backward_input(const T* __restrict__ g, const T* __restrict__ x, const long long rows,
                                             const long long d, const T* __restrict__ gamma,
                                             const T* __restrict__ mean, const T* __restrict__ inv_std,
                                             T* __restrict__ dx) {
    __shared__ double shared[THREADS];
    for (long long r = blockIdx.x; r < rows; r += gridDim.x) {
        const long long base = r * d;
        const T m = mean[r];
        const T s = inv_std[r];
        double t1 = 0.0, t2 = 0.0;
        for (long long j = threadIdx.x; j < d; j += THREADS) {
            const T gx = mul_rn(g[base + j], gamma[j]);
            const T xh = (x[base + j] - m) * s;
            t1 += (double)gx;
            t2 += (double)gx * (double)xh;
        }
        const T mean_g = (T)(block_sum(t1, shared) / (double)d);
        const T mean_gx = (T)(block_sum(t2, shared) / (double)d);
        for (long long j = threadIdx.x; j < d; j += THREADS) {
            const T xh = (x[base + j] - m) * s;
            dx[base + j] = s * (mul_rn(g[base + j], gamma[j]) - mean_g - xh * mean_gx);
        }
    }
}

// partials[2 b][j] = Σ g x̂, partials[2 b + 1][j] = Σ g over the rows of range b = blockIdx.x (column j from
// blockIdx.y), in double
extern "C" __global__ void ln_parameter_sums(const T* __restrict__ g, const T* __restrict__ x, const long long rows,
                                             const long long d, const long long rows_per_block,
                                             const T* __restrict__ mean, const T* __restrict__ inv_std,
                                             double* __restrict__ partials) {
    const long long j = (long long)blockIdx.y * THREADS + threadIdx.x;
    if (j >= d) return;
    const long long r0 = (long long)blockIdx.x * rows_per_block;
    const long long r1 = min(rows, r0 + rows_per_block);
    double sgx = 0.0, sg = 0.0;
    for (long long r = r0; r < r1; ++r) {
        const T gv = g[r * d + j];
        const T xh = (x[r * d + j] - mean[r]) * inv_std[r];
        sgx += (double)gv * (double)xh;
        sg += (double)gv;
    }
    partials[2LL * blockIdx.x * d + j] = sgx;
    partials[(2LL * blockIdx.x + 1) * d + j] = sg;
}

// out[k][j] = Σ over the row ranges in order of partials[2 b + k][j], rounded to T
extern "C" __global__ void fold_sums(const double* __restrict__ partials, const long long n_blocks,
                                     const long long width, T* __restrict__ out) {
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < 2 * width;
         i += (long long)gridDim.x * blockDim.x) {
        out[i] = (T)fold(partials, n_blocks, width, (int)(i / width), i %% width);
    }
}
"""

#: The kernels of the module, in source order.
KERNEL_NAMES = ("bn_column_sums", "bn_gradient_sums", "bn_mean", "bn_statistics", "bn_backward_coefficients",
                "bn_normalize", "bn_backward_input", "ln_forward", "ln_backward_input", "ln_parameter_sums",
                "fold_sums")


def module_source(dtype) -> str:
    """The complete CUDA source of the module for ``dtype`` (float32 or float64)."""
    c_type = _C_TYPES[np.dtype(dtype)]
    return f"// camadas normalization kernels, T = {c_type}\ntypedef {c_type} T;\n" + _SOURCE % {"threads": THREADS}


def nvrtc_options(arch: str) -> tuple:
    """Every NVRTC option of the module as CuPy compiles it for ``arch`` (``"compute_90"``)."""
    return CUPY_OPTIONS_BEFORE_ARCH + (f"-arch={arch}",) + CUPY_OPTIONS_AFTER_ARCH


def _cupy():
    import cupy  # imported only when a CuPy array reaches this module

    return cupy


@functools.lru_cache(maxsize=None)
def _module(dtype_name: str):
    """The ``cupy.RawModule`` for one dtype (compiled by CuPy on first use)."""
    return _cupy().RawModule(code=module_source(dtype_name))


def _launch(name, dtype, grid, args):
    _module(np.dtype(dtype).name).get_function(name)(grid, (THREADS,), args)


def _grid(n):
    return (max(1, min(MAX_BLOCKS, -(-n // THREADS))),)


def _row_blocks(rows):
    """``(n_blocks, rows_per_block)``: the fixed row ranges of the column sums (a function of ``rows``)."""
    rows_per_block = max(MIN_BLOCK_ROWS, -(-rows // MAX_ROW_BLOCKS))
    return max(1, -(-rows // rows_per_block)), rows_per_block


def _i(value):
    return np.int64(value)


def _column_sums(name, dtype, arrays, rows, channels, shift):
    cp = _cupy()
    n_blocks, rows_per_block = _row_blocks(rows)
    partials = cp.empty((n_blocks, 2, channels), np.float64)
    _launch(name, dtype, (n_blocks,), (*arrays, _i(rows), _i(channels), _i(rows_per_block), shift, partials))
    return partials, n_blocks


def _normalize(x2d, mean, inv_std, gamma, beta):
    y2d = _cupy().empty_like(x2d)
    _launch("bn_normalize", x2d.dtype, _grid(x2d.size),
            (x2d, _i(x2d.size), _i(x2d.shape[1]), mean, inv_std, gamma, beta, y2d))
    return y2d


def _contiguous(*arrays):
    cp = _cupy()
    return [cp.ascontiguousarray(a) for a in arrays]


def batch_norm_forward(x2d, gamma, beta, epsilon):
    """Training forward of ``x2d`` ``(N, C)``: ``(y, mean, var, inv_std)`` (see :mod:`kernels.normalization.cpu`)."""
    cp = _cupy()
    x2d, gamma, beta = _contiguous(x2d, gamma, beta)
    rows, channels = x2d.shape
    dtype = x2d.dtype
    partials, n_blocks = _column_sums("bn_column_sums", dtype, (x2d,), rows, channels, cp.zeros(channels, np.float64))
    mean64 = cp.empty(channels, np.float64)
    _launch("bn_mean", dtype, _grid(channels), (partials, _i(n_blocks), _i(channels), _i(rows), mean64))
    partials, n_blocks = _column_sums("bn_column_sums", dtype, (x2d,), rows, channels, mean64)
    stats = cp.empty((3, channels), dtype)
    _launch("bn_statistics", dtype, _grid(channels),
            (partials, _i(n_blocks), _i(channels), _i(rows), np.float64(epsilon), mean64, stats))
    y2d = _normalize(x2d, stats[0], stats[2], gamma, beta)
    return y2d, stats[0], stats[1], stats[2]


def batch_norm_forward_eval(x2d, gamma, beta, running_mean, running_var, epsilon):
    """Evaluation forward: ``(y, inv_std)``, ``inv_std = 1 / sqrt(running_var + ε)`` in the dtype of ``x2d``."""
    x2d, gamma, beta, running_mean, running_var = _contiguous(x2d, gamma, beta, running_mean, running_var)
    inv_std = 1.0 / _cupy().sqrt(running_var + x2d.dtype.type(epsilon))
    return _normalize(x2d, running_mean, inv_std, gamma, beta), inv_std


def _backward_coefficients(g2d, x2d, gamma, mean, inv_std):
    cp = _cupy()
    rows, channels = x2d.shape
    dtype = x2d.dtype
    partials, n_blocks = _column_sums("bn_gradient_sums", dtype, (g2d, x2d), rows, channels, mean.astype(np.float64))
    coefficients = cp.empty((5, channels), dtype)
    _launch("bn_backward_coefficients", dtype, _grid(channels),
            (partials, _i(n_blocks), _i(channels), _i(rows), gamma, inv_std, coefficients))
    return coefficients


def batch_norm_backward(g2d, x2d, gamma, mean, inv_std):
    """Training backward: ``(grad_input, grad_gamma, grad_beta)`` (the formula of :mod:`kernels.normalization.cpu`)."""
    g2d, x2d, gamma, mean, inv_std = _contiguous(g2d, x2d, gamma, mean, inv_std)
    coefficients = _backward_coefficients(g2d, x2d, gamma, mean, inv_std)
    dx2d = _cupy().empty_like(x2d)
    _launch("bn_backward_input", x2d.dtype, _grid(x2d.size),
            (g2d, x2d, _i(x2d.size), _i(x2d.shape[1]), mean, coefficients, dx2d))
    return dx2d, coefficients[3], coefficients[4]


def batch_norm_backward_eval(g2d, x2d, gamma, mean, inv_std):
    """Evaluation backward: ``(g γ inv_std, grad_gamma, grad_beta)``."""
    g2d, x2d, gamma, mean, inv_std = _contiguous(g2d, x2d, gamma, mean, inv_std)
    coefficients = _backward_coefficients(g2d, x2d, gamma, mean, inv_std)
    return g2d * (gamma * inv_std), coefficients[3], coefficients[4]


def layer_norm_forward(x2d, gamma, beta, epsilon):
    """Forward of ``x2d`` ``(N, D)``: ``(y, mean, inv_std)``; ``gamma``/``beta`` None mean ones/zeros."""
    cp = _cupy()
    (x2d,) = _contiguous(x2d)
    rows, d_total = x2d.shape
    dtype = x2d.dtype
    gamma = cp.ones(d_total, dtype) if gamma is None else cp.ascontiguousarray(gamma)
    beta = cp.zeros(d_total, dtype) if beta is None else cp.ascontiguousarray(beta)
    y2d = cp.empty_like(x2d)
    mean = cp.empty(rows, dtype)
    inv_std = cp.empty(rows, dtype)
    if rows:
        _launch("ln_forward", dtype, (min(MAX_BLOCKS, rows),),
                (x2d, _i(rows), _i(d_total), gamma, beta, np.float64(epsilon), y2d, mean, inv_std))
    return y2d, mean, inv_std


def layer_norm_backward(g2d, x2d, gamma, mean, inv_std):
    """Backward of :func:`layer_norm_forward`: ``(grad_input, grad_gamma, grad_beta)``."""
    cp = _cupy()
    g2d, x2d, mean, inv_std = _contiguous(g2d, x2d, mean, inv_std)
    rows, d_total = x2d.shape
    dtype = x2d.dtype
    gamma = cp.ones(d_total, dtype) if gamma is None else cp.ascontiguousarray(gamma)
    dx2d = cp.empty_like(x2d)
    sums = cp.zeros((2, d_total), dtype)
    if rows:
        _launch("ln_backward_input", dtype, (min(MAX_BLOCKS, rows),),
                (g2d, x2d, _i(rows), _i(d_total), gamma, mean, inv_std, dx2d))
        n_blocks, rows_per_block = _row_blocks(rows)
        partials = cp.empty((n_blocks, 2, d_total), np.float64)
        _launch("ln_parameter_sums", dtype, (n_blocks, -(-d_total // THREADS)),
                (g2d, x2d, _i(rows), _i(d_total), _i(rows_per_block), mean, inv_std, partials))
        _launch("fold_sums", dtype, _grid(2 * d_total), (partials, _i(n_blocks), _i(d_total), sums))
    return dx2d, sums[0], sums[1]
