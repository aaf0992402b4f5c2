"""CuPy kernels for the activations: one elementwise CUDA kernel per activation and direction.

The CUDA C source lives in :mod:`kernels.activations.gpu_source` (one
``cupy.RawModule`` per dtype and compile group), the text that the compile
test also hands to NVRTC, so what CI compiles is what the GPU runs. Modules
are compiled on first use and memoized (CuPy also keeps the binary in its
on-disk cache), so importing this module needs neither CuPy nor a GPU.
``T`` is the array dtype (float32 or float64): arithmetic stays in that
precision, as in the CPU kernels, except GELU's ``erfc``, evaluated in double
and rounded once. The random slopes of RReLU and the noise of NoisyReLU are
drawn on the device by the caller. Inputs of any strides are accepted (copied
to contiguous arrays first); PReLU's slope gradient is a float64 elementwise
product summed by CuPy's deterministic reduction.
"""

from __future__ import annotations

import functools

import numpy as np

from . import gpu_source
from .catalog import BACKWARD_NEEDS, SELU_ALPHA, SELU_SCALE, check_prelu_slopes
from .catalog import GELU_TANH_C, GELU_TANH_K, INV_SQRT_2PI, SQRT2  # noqa: F401 (importable here, as in camadas 0.1)

SUPPORTED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
#: Threads per block of every activation kernel (grid-stride loops).
THREADS_PER_BLOCK = 256
#: Largest grid of a launch (the kernels loop beyond it).
MAX_BLOCKS = (1 << 31) - 1

_OUTPUT_DTYPES = {"double": np.dtype(np.float64), "int64": np.dtype(np.int64)}


def _cupy():
    import cupy  # imported only when a CuPy array reaches this module

    return cupy


@functools.lru_cache(maxsize=None)
def _module(dtype_name: str, group: str):
    """The ``cupy.RawModule`` of one compile group for one dtype (compiled by CuPy on first use)."""
    return _cupy().RawModule(code=gpu_source.module_source(dtype_name, group),
                             options=gpu_source.module_options(group))


class ElementwiseLauncher:
    """Kernel ``name`` of :mod:`kernels.activations.gpu_source`, called as CuPy's ElementwiseKernel was.

    ``launcher(*params)`` allocates the output (the shape of the first array
    parameter; dtype ``T``, or double for a ``double`` output) and returns it;
    ``launcher(*params, out)`` writes into ``out``. Array parameters must share
    one float32/float64 dtype and one shape; ``scalar`` parameters are
    converted to ``T`` (or int64), ``raw`` ones passed as arrays.
    """

    def __init__(self, name: str):
        self.name = name
        params = gpu_source.parameters(name)
        self.inputs = [p for p in params if p.kind != "output"]
        (self.output,) = [p for p in params if p.kind == "output"]

    def arguments(self, args, xp=None):
        """``(values, out, like)``: the kernel's arguments in launch order (``n`` last), checked and converted.

        ``xp`` is the array module (CuPy by default; the tests pass NumPy to
        check the marshalling without a GPU).
        """
        xp = _cupy() if xp is None else xp
        if len(args) not in (len(self.inputs), len(self.inputs) + 1):
            raise TypeError(f"{self.name}: expected {len(self.inputs)} arguments "
                            f"({', '.join(p.name for p in self.inputs)}) and optionally out, got {len(args)}")
        arrays = [(p, a) for p, a in zip(self.inputs, args) if p.kind == "array"]
        like = arrays[0][1]
        dtype = np.dtype(like.dtype)
        if dtype not in SUPPORTED_DTYPES:
            raise TypeError(f"{self.name}: {arrays[0][0].name}: expected float32 or float64, got {dtype}")
        for p, a in arrays:
            if np.dtype(a.dtype) != dtype or tuple(a.shape) != tuple(like.shape):
                raise ValueError(f"{self.name}: {p.name}: expected dtype {dtype} and shape {tuple(like.shape)}, "
                                 f"got {a.dtype} and {tuple(a.shape)}")
        values = []
        for p, a in zip(self.inputs, args):
            if p.kind == "raw" and np.dtype(a.dtype) != dtype:
                raise ValueError(f"{self.name}: {p.name}: expected dtype {dtype}, got {a.dtype}")
            if p.kind in ("array", "raw"):
                values.append(xp.ascontiguousarray(a))
            elif isinstance(a, xp.ndarray):
                raise TypeError(f"{self.name}: {p.name}: expected a host scalar, got an array")
            else:
                values.append(dtype.type(a) if p.type == "T" else _OUTPUT_DTYPES[p.type].type(a))
        out_dtype = dtype if self.output.type == "T" else _OUTPUT_DTYPES[self.output.type]
        given = args[len(self.inputs)] if len(args) > len(self.inputs) else None
        if given is not None and (tuple(given.shape) != tuple(like.shape) or np.dtype(given.dtype) != out_dtype):
            raise ValueError(f"{self.name}: out: expected shape {tuple(like.shape)} and dtype {out_dtype}, "
                             f"got {tuple(given.shape)} and {given.dtype}")
        out = given if given is not None and given.flags.c_contiguous else xp.empty(like.shape, dtype=out_dtype)
        values.append(out)
        values.append(np.int64(like.size))
        return values, out, like

    def __call__(self, *args):
        values, out, like = self.arguments(args)
        n = like.size
        if n:
            blocks = min(MAX_BLOCKS, -(-n // THREADS_PER_BLOCK))
            function = _module(np.dtype(like.dtype).name, gpu_source.group_of(self.name)).get_function(self.name)
            function((blocks,), (THREADS_PER_BLOCK,), tuple(values))
        given = args[len(self.inputs)] if len(args) > len(self.inputs) else None
        if given is not None and given is not out:  # a non-contiguous out: written through a temporary
            given[...] = out
            return given
        return out


@functools.lru_cache(maxsize=None)
def kernel(name: str):
    """The memoized launcher of kernel ``name`` (e.g. ``"sigmoid_fwd"``), see :class:`ElementwiseLauncher`."""
    if name not in gpu_source.KERNELS:
        raise ValueError(f"unknown GPU activation kernel {name!r}; expected one of {', '.join(gpu_source.KERNELS)}")
    return ElementwiseLauncher(name)


def supports(*arrays) -> bool:
    """True when all arrays are CuPy float32/float64 arrays of one dtype and one shape (any strides)."""
    try:
        cp = _cupy()
    except ImportError:
        return False
    first = arrays[0]
    for a in arrays:
        if not isinstance(a, cp.ndarray) or a.dtype not in SUPPORTED_DTYPES:
            return False
        if a.dtype != first.dtype or a.shape != first.shape:
            return False
    return True


def prelu_alpha(alpha, x):
    """PReLU slopes as a contiguous 1-D CuPy array of x's dtype, shape (1,) or (C,)."""
    cp = _cupy()
    a = cp.ascontiguousarray(cp.asarray(alpha, dtype=x.dtype).reshape(-1))
    check_prelu_slopes(a.size, x.shape)
    return a


_UNARY_FORWARD = ("sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh", "relu", "silu", "softplus", "mish")
_BINARY_BACKWARD = {
    "sigmoid": "sigmoid_bwd", "tanh": "tanh_bwd", "softsign": "softsign_bwd",
    "hard_sigmoid": "hard_sigmoid_bwd", "hard_tanh": "hard_tanh_bwd", "relu": "positive_mask_bwd",
    "noisy_relu": "positive_mask_bwd", "silu": "silu_bwd", "softplus": "softplus_bwd", "mish": "mish_bwd",
}


def _mean_slope(params):
    return (float(params["lower"]) + float(params["upper"])) / 2.0


def _launch(kernel_name, args, out):
    k = kernel(kernel_name)
    return k(*args) if out is None else k(*args, out)


def forward(name, x, out=None, **params):
    """y = f(x) on the GPU into ``out`` (allocated when None); ``params`` resolved by
    :func:`kernels.activations.catalog.resolve_params`."""
    dt = x.dtype.type
    if name in _UNARY_FORWARD:
        return _launch(f"{name}_fwd", (x,), out)
    if name == "gelu":
        return _launch("gelu_tanh_fwd" if params["approximate"] == "tanh" else "gelu_fwd", (x,), out)
    if name == "leaky_relu":
        return _launch("leaky_fwd", (x, dt(params["alpha"])), out)
    if name == "prelu":
        alpha = prelu_alpha(params["alpha"], x)  # on the device: no synchronisation to read it
        return _launch("prelu_channels_fwd", (x, alpha, np.int64(alpha.size)), out)
    if name == "rrelu":
        if params["slopes"] is None:
            return _launch("leaky_fwd", (x, dt(_mean_slope(params))), out)
        return _launch("rrelu_fwd", (x, params["slopes"]), out)
    if name == "elu":
        return _launch("scaled_elu_fwd", (x, dt(1.0), dt(params["alpha"])), out)
    if name == "selu":
        return _launch("scaled_elu_fwd", (x, dt(SELU_SCALE), dt(SELU_ALPHA)), out)
    if name == "noisy_relu":
        if params["noise"] is None:
            return _launch("relu_fwd", (x,), out)
        return _launch("noisy_relu_fwd", (x, params["noise"]), out)
    raise AssertionError(name)


def backward(name, grad_output, x, y, out=None, **params):
    """dE/dx on the GPU into ``out`` (allocated when None); reads x or y as
    :data:`catalog.BACKWARD_NEEDS` says."""
    t = y if BACKWARD_NEEDS[name] == "output" else x
    g = grad_output
    dt = t.dtype.type
    if name in _BINARY_BACKWARD:
        return _launch(_BINARY_BACKWARD[name], (g, t), out)
    if name == "gelu":
        return _launch("gelu_tanh_bwd" if params["approximate"] == "tanh" else "gelu_bwd", (g, t), out)
    if name == "leaky_relu":
        return _launch("leaky_bwd", (g, t, dt(params["alpha"])), out)
    if name == "prelu":
        return prelu_backward(g, x, params["alpha"], out=out)[0]
    if name == "rrelu":
        if params["slopes"] is None:
            return _launch("leaky_bwd", (g, t, dt(_mean_slope(params))), out)
        return _launch("rrelu_bwd", (g, t, params["slopes"]), out)
    if name == "elu":
        return _launch("scaled_elu_bwd", (g, t, dt(1.0), dt(params["alpha"])), out)
    if name == "selu":
        return _launch("scaled_elu_bwd", (g, t, dt(SELU_SCALE), dt(SELU_SCALE * SELU_ALPHA)), out)
    raise AssertionError(name)


def prelu_backward(grad_output, x, alpha, out=None):
    """(grad_input, grad_alpha) of PReLU on the GPU; grad_alpha has alpha's shape and x's dtype.

    ``grad_alpha = sum(where(x > 0, 0, x g))`` over every axis but the last
    (all axes for one slope), each term formed and summed in float64.
    """
    a = prelu_alpha(alpha, x)
    shape = tuple(alpha.shape) if hasattr(alpha, "shape") else (1,)
    c = a.size
    grad_input = _launch("prelu_channels_bwd", (grad_output, x, a, np.int64(c)), out)
    terms = kernel("prelu_alpha_terms")(grad_output, x)
    grad_alpha = terms.sum() if c == 1 else terms.reshape(-1, c).sum(axis=0)
    return grad_input, grad_alpha.astype(x.dtype).reshape(shape)
