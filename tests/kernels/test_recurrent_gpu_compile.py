"""The recurrent cells' CUDA kernels through NVRTC, without a GPU (issue 8's compile tier, for chapter 24).

Each :data:`kernels.recurrent.gpu.SOURCES` entry is the body of a CuPy
``ElementwiseKernel``. The harness binds the parameters as CuPy's generated
code does (a non-raw input ``x`` is the element ``_raw_x[i]``, a non-raw output
a reference to it, a raw array a pointer indexed as written (const for an input, as CuPy 14 binds it), an ``int64``
scalar a ``long long``), around the operation text, and NVRTC compiles it for
``compute_90`` and ``compute_80``, float and double, with the options CuPy
adds. The formulas and argument order are checked on the host against the CPU
kernels by ``test_recurrent_gpu_sources_on_host.py``; this file checks that
the text is valid CUDA C as NVRTC sees it.
"""

from __future__ import annotations

import re

import pytest

from kernels.activations import gpu_source
from kernels.recurrent import gpu
from tests.kernels.test_gpu_compile import NVRTC_ARCHES, _nvrtc, nvrtc_compile
from tests.kernels.test_gpu_compile import parse_params as parse

C_SCALARS = {"int64": "long long", "int32": "int", "float64": "double", "float32": "float"}


def harness(name: str, c_type: str) -> str:
    """A ``__global__`` kernel binding ``SOURCES[name]``'s parameters as CuPy does, around its operation."""
    in_params, out_params, operation = gpu.SOURCES[name]
    args, binds = ["long long n"], []
    for is_output, params in ((False, in_params), (True, out_params)):
        for raw, typ, var in parse(params):
            if raw:  # CuPy 14 binds a raw input array as const: writing to it does not compile
                args.append(f"{'' if is_output else 'const '}{'T' if typ == 'T' else C_SCALARS[typ]}* {var}")
            elif typ != "T":
                args.append(f"{C_SCALARS[typ]} {var}")
            elif is_output:
                args.append(f"T* _raw_{var}")
                binds.append(f"T &{var} = _raw_{var}[i];")
            else:
                args.append(f"const T* _raw_{var}")
                binds.append(f"const T {var} = _raw_{var}[i];")
    return (f"typedef {c_type} T;\n"
            f"extern \"C\" __global__ void camadas_{name}({', '.join(args)}) {{\n"
            "  const ptrdiff_t i = (ptrdiff_t)blockIdx.x * blockDim.x + threadIdx.x;\n  if (i >= n) return;\n"
            f"  {' '.join(binds)}\n  {operation}\n}}\n")


@pytest.mark.parametrize("arch", NVRTC_ARCHES)
@pytest.mark.parametrize("c_type", ["float", "double"])
@pytest.mark.parametrize("name", sorted(gpu.SOURCES))
def test_recurrent_kernel_compiles_with_nvrtc(name, c_type, arch):
    nvrtc = _nvrtc()
    options = gpu_source.CUPY_OPTIONS_BEFORE_ARCH + (f"-arch={arch}",) + gpu_source.CUPY_OPTIONS_AFTER_ARCH
    ptx = nvrtc_compile(nvrtc, harness(name, c_type), options)
    assert re.search(rf"\.entry\s+camadas_{name}\s*\(", ptx)


def test_the_harness_binds_every_parameter():
    text = harness("lstm_fwd", "float")
    assert "const T* _raw_h_prev" in text and "T &h = _raw_h[i];" in text and "long long H" in text
    assert "T* gates" in text and "const T* a" in text and "const T* gates" not in text
