"""The CUDA kernels of batch and layer normalization, run on the host: indexing, reductions, argument order.

Without a GPU, :func:`kernels.normalization.gpu.module_source` is compiled as
C++20 (``g++``) under a small shim: ``threadIdx``/``blockIdx`` are
thread-local, a thread block is ``THREADS`` host threads, ``__syncthreads`` a
``std::barrier``, ``__shared__`` memory a static shared by the block's
threads (blocks run one after another). :mod:`kernels.normalization.gpu` then
runs on NumPy arrays (its ``_cupy`` is NumPy, its one launch point
``_launch`` calls the host functions, checking each argument against the
kernel's C parameter), and must agree with the reference and with the CPU
kernels. CuPy's own compile and launch, and device math, are left to the GPU tests.
"""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess

import numpy as np
import pytest

from kernels.normalization import cpu, gpu, reference

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed (the host harness needs it)")

SHIM = r"""
#include <algorithm>
#include <barrier>
#include <cmath>
#include <thread>
#include <vector>
using std::min; using std::max; using std::sqrt; using std::fmax;
struct dim3_ { unsigned x = 0, y = 0, z = 0; };
thread_local dim3_ threadIdx, blockIdx;
static dim3_ blockDim, gridDim;
static std::barrier<>* block_barrier = nullptr;
inline void __syncthreads() { block_barrier->arrive_and_wait(); }
#define __global__
#define __device__
#define __forceinline__ inline
#define __restrict__
#define __shared__ static
template <class F> void run_grid(unsigned gx, unsigned gy, unsigned threads, F body) {
    gridDim = {gx, gy, 1}; blockDim = {threads, 1, 1};
    for (unsigned by = 0; by < gy; ++by)
        for (unsigned bx = 0; bx < gx; ++bx) {
            std::barrier<> barrier(threads);
            block_barrier = &barrier;
            std::vector<std::thread> pool;
            for (unsigned t = 0; t < threads; ++t)
                pool.emplace_back([&, t] { threadIdx = {t, 0, 0}; blockIdx = {bx, by, 0}; body(); });
            for (auto& th : pool) th.join();
        }
}
"""

_SIGNATURE = re.compile(r'extern "C" __global__ void (\w+)\(([^)]*)\)', re.S)
_PARAM = re.compile(r"^(const\s+)?(T|double|long long)(\*)?\s+(?:__restrict__\s+)?(\w+)$")
_C_TYPES = {"float": ctypes.c_float, "double": ctypes.c_double}


def signatures(source):
    """``{kernel: [(c_type, is_pointer, name), ...]}`` as the source declares them."""
    out = {}
    for name, params in _SIGNATURE.findall(source):
        parsed = []
        for param in params.split(","):
            match = _PARAM.match(" ".join(param.split()))
            assert match, (name, param)
            parsed.append((match.group(2), bool(match.group(3)), match.group(4)))
        out[name] = parsed
    return out


def _wrappers(source):
    parts = []
    for name, params in signatures(source).items():
        declared = ", ".join(f"{'T' if t == 'T' else t}{'*' if p else ''} {n}" for t, p, n in params)
        names = ", ".join(n for _, _, n in params)
        parts.append(f'extern "C" void run_{name}(unsigned gx, unsigned gy, {declared}) '
                     f"{{ run_grid(gx, gy, THREADS, [&] {{ {name}({names}); }}); }}\n")
    return "".join(parts)


@pytest.fixture(scope="module")
def host_libraries(tmp_path_factory):
    directory = tmp_path_factory.mktemp("normalization_host")
    libraries = {}
    for dtype in ("float32", "float64"):
        source = gpu.module_source(dtype)
        path = directory / f"{dtype}.cpp"
        path.write_text(SHIM + source + _wrappers(source))
        library = directory / f"{dtype}.so"
        proc = subprocess.run(["g++", "-std=c++20", "-O1", "-shared", "-fPIC", "-pthread", "-o", str(library),
                               str(path)], capture_output=True, text=True, timeout=180)
        assert proc.returncode == 0, proc.stderr[-3000:]
        libraries[np.dtype(dtype)] = (ctypes.CDLL(str(library)), signatures(source))
    return libraries


@pytest.fixture
def host_gpu(monkeypatch, host_libraries):
    """:mod:`kernels.normalization.gpu` on NumPy arrays, its kernels run by the host library."""
    launched = []

    def launch(name, dtype, grid, args):
        library, sigs = host_libraries[np.dtype(dtype)]
        params = sigs[name]
        assert len(args) == len(params), f"{name}: {len(args)} arguments for {len(params)} parameters"
        t_type = "float" if np.dtype(dtype) == np.float32 else "double"
        values = []
        for value, (c_type, is_pointer, pname) in zip(args, params):
            assert isinstance(value, np.ndarray) == is_pointer, (name, pname, type(value))
            if is_pointer:
                expected = np.dtype(np.float64) if c_type == "double" else np.dtype(dtype)
                assert value.dtype == expected and value.flags.c_contiguous, (name, pname, value.dtype)
                values.append(ctypes.c_void_p(value.ctypes.data))
            elif c_type == "long long":
                assert isinstance(value, np.int64), (name, pname, type(value))
                values.append(ctypes.c_longlong(int(value)))
            else:
                assert c_type == "double" and isinstance(value, np.float64), (name, pname, type(value))
                values.append(ctypes.c_double(float(value)))
        grid = tuple(grid) + (1,) * (2 - len(grid))
        getattr(library, f"run_{name}")(ctypes.c_uint(grid[0]), ctypes.c_uint(grid[1]), *values)
        launched.append(name)
        assert t_type  # (the library of the dtype was used)

    monkeypatch.setattr(gpu, "_cupy", lambda: np)
    monkeypatch.setattr(gpu, "_launch", launch)
    return launched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(130, 5), (16, 260)], ids=["narrow", "wide"])  # channels <= and > THREADS
def test_batch_norm_kernels_on_host(host_gpu, dtype, shape):
    rng = np.random.default_rng(0)
    rows, channels = shape
    x = (rng.standard_normal(shape) * 2 + 3).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gamma = rng.uniform(0.5, 2, channels).astype(dtype)
    beta = rng.standard_normal(channels).astype(dtype)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    y, mean, var, inv_std = gpu.batch_norm_forward(x, gamma, beta, 1e-5)
    expected = reference.batch_norm_forward(x.astype(np.float64), gamma, beta, 1e-5)
    for got, want in zip((y, mean, var, inv_std), expected):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    for got, want in zip((y, mean, var, inv_std), cpu.batch_norm_forward(x, gamma, beta, 1e-5)):
        np.testing.assert_allclose(got, want, **tol)
    grads = gpu.batch_norm_backward(g, x, gamma, mean, inv_std)
    for got, want in zip(grads, cpu.batch_norm_backward(g, x, gamma, mean, inv_std)):
        np.testing.assert_allclose(got, want, **tol)
    y_eval, inv_eval = gpu.batch_norm_forward_eval(x, gamma, beta, mean, var, 1e-5)
    np.testing.assert_allclose(y_eval, cpu.batch_norm_forward_eval(x, gamma, beta, mean, var, 1e-5)[0], **tol)
    for got, want in zip(gpu.batch_norm_backward_eval(g, x, gamma, mean, inv_eval),
                         cpu.batch_norm_backward_eval(g, x, gamma, mean, inv_eval)):
        np.testing.assert_allclose(got, want, **tol)
    assert {"bn_column_sums", "bn_statistics", "bn_normalize", "bn_backward_input"} <= set(host_gpu)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(7, 5), (9, 300)], ids=["narrow", "wide"])
def test_layer_norm_kernels_on_host(host_gpu, dtype, shape):
    rng = np.random.default_rng(1)
    d = shape[1]
    x = (rng.standard_normal(shape) * 2 - 1).astype(dtype)
    g = rng.standard_normal(shape).astype(dtype)
    gamma = rng.uniform(0.5, 2, d).astype(dtype)
    beta = rng.standard_normal(d).astype(dtype)
    tol = dict(rtol=2e-5, atol=2e-5) if dtype == np.float32 else dict(rtol=1e-12, atol=1e-12)
    y, mean, inv_std = gpu.layer_norm_forward(x, gamma, beta, 1e-5)
    for got, want in zip((y, mean, inv_std), reference.layer_norm_forward(x.astype(np.float64), gamma, beta, 1e-5)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    for got, want in zip(gpu.layer_norm_backward(g, x, gamma, mean, inv_std),
                         cpu.layer_norm_backward(g, x, gamma, mean, inv_std)):
        assert got.dtype == dtype
        np.testing.assert_allclose(got, want, **tol)
    # no scale, no shift
    y0, m0, s0 = gpu.layer_norm_forward(x, None, None, 1e-5)
    np.testing.assert_allclose(y0, cpu.layer_norm_forward(x, None, None, 1e-5)[0], **tol)
    np.testing.assert_allclose(gpu.layer_norm_backward(g, x, None, m0, s0)[0],
                               cpu.layer_norm_backward(g, x, None, m0, s0)[0], **tol)
    assert {"ln_forward", "ln_backward_input", "ln_parameter_sums", "fold_sums"} <= set(host_gpu)
