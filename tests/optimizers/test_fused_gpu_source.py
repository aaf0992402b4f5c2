"""The CuPy kernels of the optimizers without a GPU: their CUDA text through NVRTC, their launch arguments
against their declared parameters.

CuPy wraps an ``ElementwiseKernel``'s operation in a loop that binds each
parameter (``typedef`` of T and C, ``const T g = _raw_g[i]`` for an input,
``T &p = _raw_p[i]`` for an output, a raw array indexed as given); the
harness below does the same with plain pointers, for float, double and half
(CuPy's ``float16`` class emulated over ``__half``), and NVRTC compiles it
for compute capabilities 9.0 and 8.0. The kernels' results are checked on a
GPU machine by the ``device`` tests of test_fused.py.
"""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from optimizers.fused import gpu
from tests.kernels.test_gpu_compile import _nvrtc, nvrtc_compile  # the kernels' NVRTC tier helpers
from tests.kernels.test_gpu_compile import parse_params as parse

FLOAT16 = """
#include <cuda_fp16.h>
struct float16 {
    __half x;
    __device__ float16(float f) : x(__float2half(f)) {}
    __device__ operator float() const { return __half2float(x); }
};
"""

C_TYPES = {"float32": "float", "float64": "double", "float16": "float16", "int32": "int"}


def harness(name: str, t: str, c: str) -> str:
    """A kernel binding the parameters as CuPy's generated code does, around ``SOURCES[name]``'s operation."""
    in_params, out_params, operation = gpu.SOURCES[name]
    args, binds = ["long long n"], []
    for raw, typ, var in parse(in_params):
        if raw:  # CuPy 14 binds a raw input array as const: writing to it does not compile
            args.append(f"const {C_TYPES.get(typ, typ)}* {var}")
        elif typ == "C":
            args.append(f"C {var}")
        else:
            args.append(f"const T* _raw_{var}")
            binds.append(f"const T {var} = _raw_{var}[i];")
    for raw, typ, var in parse(out_params):
        if raw:
            args.append(f"{C_TYPES.get(typ, typ)}* {var}")
        else:
            args.append(f"T* _raw_{var}")
            binds.append(f"T &{var} = _raw_{var}[i];")
    return (f"{FLOAT16 if t == 'float16' else ''}\ntypedef {t} T;\ntypedef {c} C;\n"
            f"extern \"C\" __global__ void camadas_{name}_step({', '.join(args)}) {{\n"
            "  long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;\n  if (i >= n) return;\n"
            f"  {' '.join(binds)}\n  {operation}\n}}\n")


def _cuda_include():
    """A directory holding cuda_fp16.h (the CUDA runtime wheel or a toolkit), or None."""
    candidates = [os.environ.get("CUDA_PATH", ""), "/usr/local/cuda"]
    try:
        import nvidia.cuda_runtime
        candidates[:0] = list(nvidia.cuda_runtime.__path__)             # a namespace package
    except ImportError:
        pass
    for base in candidates:
        if base and os.path.exists(os.path.join(base, "include", "cuda_fp16.h")):
            return os.path.join(base, "include")
    return None


@pytest.mark.parametrize("arch", ["compute_90", "compute_80"])
@pytest.mark.parametrize("dtype", ["float32", "float64", "float16"])
@pytest.mark.parametrize("name", sorted(gpu.SOURCES))
def test_kernel_source_compiles_with_nvrtc(name, dtype, arch):
    nvrtc = _nvrtc()
    options = [f"--gpu-architecture={arch}", "--std=c++17"]
    if dtype == "float16":
        include = _cuda_include()
        if include is None:
            pytest.skip("cuda_fp16.h not found (pip install nvidia-cuda-runtime-cu12)")
        options.append(f"--include-path={include}")
    compute = gpu.COMPUTE_DTYPES[np.dtype(dtype)].name
    ptx = nvrtc_compile(nvrtc, harness(name, C_TYPES[dtype], C_TYPES[compute]), options)
    assert re.search(rf"\.entry\s+camadas_{name}_step\s*\(", ptx)


def test_every_kernel_has_a_source_and_a_cpu_twin():
    from optimizers.fused import STATE_COUNTS

    assert set(gpu.SOURCES) == set(STATE_COUNTS)
    for name, (_, out_params, _) in gpu.SOURCES.items():
        assert len(parse(out_params)) == 2 + STATE_COUNTS[name]                 # the parameter, its states, the flag
        assert parse(out_params)[-1] == (True, "int32", "flag")


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_launch_arguments_match_the_declared_parameters(monkeypatch, dtype):
    """Run Optimizer.step's GPU dispatch on NumPy arrays with a fake ElementwiseKernel that checks every
    argument against the kernel's declaration."""
    from optimizers import SGD, AdaGrad, Adam, AdamW, Momentum, Nadam, Nesterov, RMSProp

    launched = []

    def fake_kernel(name, compute):
        assert compute == gpu.COMPUTE_DTYPES[np.dtype(dtype)], (name, compute)
        in_params, out_params, _, preamble = gpu.declaration(name, compute)
        declared = parse(in_params) + parse(out_params)
        assert preamble == f"typedef {C_TYPES[compute.name]} C;"

        def call(*args):
            assert len(args) == len(declared), (name, len(args), len(declared))
            for value, (raw, typ, var) in zip(args, declared):
                if typ == "T":
                    assert isinstance(value, np.ndarray) and value.dtype == dtype, (name, var)
                elif not raw:  # a coefficient, declared with the compute dtype's name (CuPy binds no C from it)
                    assert typ == compute.name, (name, var, typ)
                    assert isinstance(value, np.generic) and value.dtype == compute, (name, var, type(value))
                else:
                    assert raw and value.dtype == np.dtype(typ) and value.size == 1, (name, var)
            launched.append(name)

        return call

    monkeypatch.setattr(gpu, "kernel", fake_kernel)
    p = np.ones((2, 3), dtype)
    for opt in (SGD(), Momentum(), Nesterov(), AdaGrad(), RMSProp(), Adam(), Nadam(), AdamW()):
        state = [np.zeros_like(p) for _ in range(len(opt._slots))]
        gpu.update(opt._kernel, p, np.ones((2, 3), np.float64), state,
                   gpu.scalars(opt._coefficients(0.1, 1, True), dtype), np.zeros(1, np.int32))
    assert launched == ["sgd", "momentum", "momentum", "rms", "rms", "adam", "adam", "adam"]
