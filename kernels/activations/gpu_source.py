"""The CUDA C source of the GPU activation kernels: one place that CuPy and the compile test both read.

Each kernel is an elementwise loop described by :data:`KERNELS` (parameters
in ElementwiseKernel style, the operation on one element); :func:`module_source`
writes the complete source of one ``cupy.RawModule`` (every kernel of a
compile group for one dtype), and :func:`nvrtc_options` the complete NVRTC
option list that CuPy compiles it with. :mod:`kernels.activations.gpu` hands
exactly this text to CuPy; ``tests/kernels/test_gpu_compile.py`` hands exactly
this text and these options to NVRTC for ``compute_90`` and ``compute_80``.

Parameters: ``T name`` is an array read elementwise (``name`` is its value at
``i``), ``scalar T name`` a value passed by value, ``raw T name`` a pointer
the operation indexes itself; outputs are arrays written elementwise. ``T``
is the module's dtype (``float`` or ``double``), ``int64`` is ``long long``.
No CUDA header is included: the math functions are NVRTC built-ins.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from .catalog import GELU_TANH_C, GELU_TANH_K, INV_SQRT_2PI, SQRT2

#: C types of the parameter types.
C_TYPES = {"T": "T", "double": "double", "int64": "long long"}
#: dtype of a module -> the C type bound to ``T``.
DTYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
#: Compile groups: kernels compiled without fused multiply-add (NVRTC contracts ``a * b + c`` by default).
#: The tanh-form GELU's exponent ``-2u`` has condition number ``|2u|``, so ``u`` is rounded as the
#: NumPy reference rounds it (see ``_OPTS_NO_FMA`` in :mod:`kernels.activations.cpu`).
GROUP_OPTIONS = {"default": (), "no_fma": ("--fmad=false",)}
#: Options CuPy 14 adds after a ``RawModule``'s own, in this order, around ``-arch`` (``assemble_cupy_compiler_options``
#: in ``cupy/_core/core.pyx``; ``_compile_with_cache_cuda`` and ``_compile_using_nvrtc_no_warning`` in
#: ``cupy/cuda/compiler.py``); include directories are left out (the source includes nothing).
CUPY_OPTIONS_BEFORE_ARCH = ("--std=c++17", "-ftz=true")
CUPY_OPTIONS_AFTER_ARCH = ("--device-as-default-execution-space",)

_ERFC = f"(T)erfc((double)(-x / (T){SQRT2!r}))"


@dataclasses.dataclass(frozen=True)
class Kernel:
    """One elementwise kernel: parameters (ElementwiseKernel style), outputs, the operation, its group."""

    params: str
    outputs: str
    operation: str
    group: str = "default"


#: name -> Kernel. The operations are those of the CPU kernels (:mod:`kernels.activations.cpu`).
KERNELS = {
    # ---- sigmoidal (chapter 7)
    "sigmoid_fwd": Kernel("T x", "T y", "y = (T)1 / ((T)1 + exp(-x));"),
    "sigmoid_bwd": Kernel("T g, T y", "T dx", "dx = g * (y * ((T)1 - y));"),
    "tanh_fwd": Kernel("T x", "T y", "y = tanh(x);"),
    "tanh_bwd": Kernel("T g, T y", "T dx", "dx = g * ((T)1 - y * y);"),
    "softsign_fwd": Kernel("T x", "T y", "y = x / ((T)1 + fabs(x));"),
    "softsign_bwd": Kernel("T g, T x", "T dx", "T a = (T)1 + fabs(x); dx = g * ((T)1 / (a * a));"),
    "hard_sigmoid_fwd": Kernel("T x", "T y",
                               "T w = x / (T)6 + (T)0.5; w = w < (T)0 ? (T)0 : w; y = w > (T)1 ? (T)1 : w;"),
    "hard_sigmoid_bwd": Kernel("T g, T x", "T dx", "dx = (x < (T)-3 || x > (T)3) ? (T)0 : g * (T)(1.0 / 6.0);"),
    "hard_tanh_fwd": Kernel("T x", "T y", "T v = x < (T)-1 ? (T)-1 : x; y = v > (T)1 ? (T)1 : v;"),
    "hard_tanh_bwd": Kernel("T g, T x", "T dx", "dx = (x < (T)-1 || x > (T)1) ? (T)0 : g;"),
    # ---- rectifiers (chapter 8)
    "relu_fwd": Kernel("T x", "T y", "y = x <= (T)0 ? (T)0 : x;"),
    "positive_mask_bwd": Kernel("T g, T t", "T dx", "dx = t > (T)0 ? g : (T)0;"),
    "leaky_fwd": Kernel("T x, scalar T alpha", "T y", "y = x > (T)0 ? x : alpha * x;"),
    "leaky_bwd": Kernel("T g, T x, scalar T alpha", "T dx", "dx = x > (T)0 ? g : alpha * g;"),
    "prelu_channels_fwd": Kernel("T x, raw T alpha, scalar int64 channels", "T y",
                                 "y = x > (T)0 ? x : alpha[channels == 1 ? 0 : i % channels] * x;"),
    "prelu_channels_bwd": Kernel("T g, T x, raw T alpha, scalar int64 channels", "T dx",
                                 "dx = x > (T)0 ? g : alpha[channels == 1 ? 0 : i % channels] * g;"),
    "prelu_alpha_terms": Kernel("T g, T x", "double t", "t = x > (T)0 ? 0.0 : (double)x * (double)g;"),
    "rrelu_fwd": Kernel("T x, T slope", "T y", "y = x > (T)0 ? x : slope * x;"),
    "rrelu_bwd": Kernel("T g, T x, T slope", "T dx", "dx = x > (T)0 ? g : slope * g;"),
    "scaled_elu_fwd": Kernel("T x, scalar T scale, scalar T alpha", "T y",
                             "T neg = alpha * expm1(x); y = scale * (x > (T)0 ? x : neg);"),
    "scaled_elu_bwd": Kernel("T g, T y, scalar T scale, scalar T scale_alpha", "T dx",
                             "dx = y > (T)0 ? g * scale : g * (y + scale_alpha);"),
    "noisy_relu_fwd": Kernel("T x, T noise", "T y", "y = x > (T)0 ? x + noise : (T)0;"),
    # ---- modern (chapter 9)
    # The product in double, rounded once: erfc of large arguments is subnormal in float32 (x < -13), which
    # CuPy's -ftz=true flushed to 0 although y itself is a normal float (the device run: -0 for -3.3e-38).
    "gelu_fwd": Kernel("T x", "T y", f"y = (T)(0.5 * (double)x * erfc((double)(-x / (T){SQRT2!r})));"),
    "gelu_bwd": Kernel("T g, T x", "T dx",
                       f"dx = g * ((T)0.5 * {_ERFC} + x * exp((T)-0.5 * x * x) * (T){INV_SQRT_2PI!r});"),
    "gelu_tanh_fwd": Kernel(
        "T x", "T y",
        f"T u = (T){GELU_TANH_K!r} * (x + (T){GELU_TANH_C!r} * x * x * x); y = x / ((T)1 + exp((T)-2 * u));",
        group="no_fma"),
    "gelu_tanh_bwd": Kernel(
        "T g, T x", "T dx",
        f"T u = (T){GELU_TANH_K!r} * (x + (T){GELU_TANH_C!r} * x * x * x);"
        " T s = (T)1 / ((T)1 + exp((T)-2 * u));"
        f" T inner = (T)1 + (T){3.0 * GELU_TANH_C!r} * x * x;"
        f" dx = g * (s + x * s * ((T)1 - s) * (T){2.0 * GELU_TANH_K!r} * inner);",
        group="no_fma"),
    "silu_fwd": Kernel("T x", "T y", "y = x / ((T)1 + exp(-x));"),
    "silu_bwd": Kernel("T g, T x", "T dx", "T s = (T)1 / ((T)1 + exp(-x)); dx = g * (s * ((T)1 + x * ((T)1 - s)));"),
    "softplus_fwd": Kernel("T x", "T y", "y = (x <= (T)0 ? (T)0 : x) + log1p(exp(-fabs(x)));"),
    "softplus_bwd": Kernel("T g, T x", "T dx", "dx = g * ((T)1 / ((T)1 + exp(-x)));"),
    "mish_fwd": Kernel("T x", "T y",
                       "T e = exp(x < (T)20 ? x : (T)20); T n = e * (e + (T)2); y = x * (n / (n + (T)2));"),
    "mish_bwd": Kernel(
        "T g, T x", "T dx",
        "T e = exp(x < (T)20 ? x : (T)20); T n = e * (e + (T)2); T t = n / (n + (T)2);"
        " T s = (T)1 / ((T)1 + exp(-x)); dx = g * (t + x * s * ((T)1 - t * t));"),
}

_PARAM = re.compile(r"^(?:(scalar|raw)\s+)?(T|double|int64)\s+([A-Za-z_]\w*)$")


@dataclasses.dataclass(frozen=True)
class Param:
    """One kernel argument: ``kind`` is ``"array"`` (elementwise), ``"scalar"``, ``"raw"`` or ``"output"``."""

    kind: str
    type: str
    name: str


def parameters(name: str) -> list:
    """The arguments of kernel ``name`` in launch order: its parameters, then its outputs (then ``n``)."""
    kernel = KERNELS[name]
    out = []
    for text, is_output in ((kernel.params, False), (kernel.outputs, True)):
        for item in (part.strip() for part in text.split(",")):
            match = _PARAM.match(item)
            if match is None:
                raise ValueError(f"kernel {name}: cannot read parameter {item!r}")
            qualifier, type_name, param = match.groups()
            if is_output and qualifier:
                raise ValueError(f"kernel {name}: output {item!r} must be a plain array")
            out.append(Param("output" if is_output else (qualifier or "array"), type_name, param))
    return out


def kernel_source(name: str) -> str:
    """The ``extern "C" __global__`` function of kernel ``name``: a grid-stride loop over ``n`` elements."""
    params = parameters(name)
    signature, loads, declarations, stores = [], [], [], []
    for p in params:
        c_type = C_TYPES[p.type]
        if p.kind == "scalar":
            signature.append(f"const {c_type} {p.name}")
        elif p.kind == "raw":
            signature.append(f"const {c_type}* __restrict__ {p.name}")
        elif p.kind == "array":
            signature.append(f"const {c_type}* __restrict__ {p.name}_")
            loads.append(f"const {c_type} {p.name} = {p.name}_[i];")
        else:
            signature.append(f"{c_type}* __restrict__ {p.name}_")
            declarations.append(f"{c_type} {p.name};")
            stores.append(f"{p.name}_[i] = {p.name};")
    signature.append("const long long n")
    body = " ".join(loads + declarations + [KERNELS[name].operation] + stores)
    return (
        f'extern "C" __global__ void {name}({", ".join(signature)}) {{\n'
        "    const long long step = (long long)gridDim.x * blockDim.x;\n"
        "    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < n; i += step) {\n"
        f"        {body}\n"
        "    }\n"
        "}\n"
    )


def group_of(name: str) -> str:
    """The compile group (a key of :data:`GROUP_OPTIONS`) of kernel ``name``."""
    return KERNELS[name].group


def kernel_names(group: str | None = None) -> list:
    """Every kernel name, or those of one compile group, in :data:`KERNELS` order."""
    return [n for n, k in KERNELS.items() if group is None or k.group == group]


def module_source(dtype, group: str) -> str:
    """The complete CUDA source of the ``RawModule`` of ``group`` for ``dtype`` (float32 or float64)."""
    c_type = DTYPES[np.dtype(dtype)]
    parts = [f"// camadas activation kernels, T = {c_type}, compile group {group!r}\n", f"typedef {c_type} T;\n"]
    parts.extend("\n" + kernel_source(name) for name in kernel_names(group))
    return "".join(parts)


def module_options(group: str) -> tuple:
    """The options :mod:`kernels.activations.gpu` passes to ``cupy.RawModule`` for ``group``."""
    return GROUP_OPTIONS[group]


def nvrtc_options(group: str, arch: str) -> tuple:
    """Every NVRTC option of the module of ``group`` as CuPy compiles it for ``arch`` (``"compute_90"``)."""
    return module_options(group) + CUPY_OPTIONS_BEFORE_ARCH + (f"-arch={arch}",) + CUPY_OPTIONS_AFTER_ARCH
