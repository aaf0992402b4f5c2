"""cuDNN for the GPU convolution and average pooling, NHWC, through its C library (book sections 22.2, 22.3).

CuPy 14 removed its cuDNN bindings (``cupy.cudnn``, ``cupyx.cudnn``,
``cupy.cuda.cudnn``) and CuPy 13 builds them only for CUDA 12, so this module
calls the cuDNN library itself with :mod:`ctypes`: the descriptor API that
cuDNN 8 and 9 both export (``cudnnConvolutionForward`` and friends), on CuPy
arrays and CuPy's current stream. Nothing is loaded at import; the library is
looked for on the first call (:func:`available` says whether it was found,
and why not).

What it does, and what stays ours: NHWC tensors (``CUDNN_TENSOR_NHWC``),
filters re-laid as ``(F, kh, kw, C)``; float32 with FMA math only (no TF32,
so results match float32 arithmetic) and float64; deterministic algorithms
only. Max pooling stays on our kernels: the layer keeps the argmax (first
maximum, NaN wins), which cuDNN does not return. :func:`call` is the one
entry point of the GPU modules: it returns None whenever cuDNN is switched off
(:data:`USE_CUDNN`, :func:`use_cudnn`), missing, or refuses the case, and the
caller then runs our numba-cuda + cuBLAS path. The library is found in this
order: already loaded in the process (by PyTorch, say), the ``nvidia-cudnn-*``
wheel, then the loader's search path (``libcudnn.so.9``, ``.so.8``).
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import importlib.util
import logging
import threading
from pathlib import Path

import numpy as np

#: Send the convolution and average pooling of CuPy arrays to cuDNN when it loads.
USE_CUDNN = True

# cuDNN enums (cudnn_graph.h, cudnn_ops.h, cudnn_cnn.h of cuDNN 9; the same values in cuDNN 8)
SUCCESS = 0
DATA_FLOAT, DATA_DOUBLE = 0, 1
TENSOR_NHWC = 1
CROSS_CORRELATION = 1
DEFAULT_MATH, TENSOR_OP_MATH, TENSOR_OP_MATH_ALLOW_CONVERSION, FMA_MATH = 0, 1, 2, 3
DETERMINISTIC = 1
POOLING_AVERAGE_COUNT_INCLUDE_PADDING = 1
PROPAGATE_NAN = 1
#: Candidates asked of the algorithm heuristics (cuDNN 9 knows at most 8 per direction).
REQUESTED_ALGORITHMS = 16

_DATA_TYPES = {np.dtype(np.float32): DATA_FLOAT, np.dtype(np.float64): DATA_DOUBLE}
_SCALARS = {np.dtype(np.float32): ctypes.c_float, np.dtype(np.float64): ctypes.c_double}

_logger = logging.getLogger(__name__)


class CudnnError(RuntimeError):
    """A cuDNN call failed (the message names the function and the status)."""


class CudnnNotSupported(CudnnError):
    """cuDNN has no (deterministic, FMA) algorithm for this case: our kernels run it instead."""


class _AlgoPerf(ctypes.Structure):
    """``cudnnConvolution{Fwd,BwdData,BwdFilter}AlgoPerf_t`` (one layout for the three)."""

    _fields_ = [("algo", ctypes.c_int), ("status", ctypes.c_int), ("time", ctypes.c_float),
                ("memory", ctypes.c_size_t), ("determinism", ctypes.c_int), ("mathType", ctypes.c_int),
                ("reserved", ctypes.c_int * 3)]


_P, _I, _S = ctypes.c_void_p, ctypes.c_int, ctypes.c_size_t
#: name -> argument types (every function returns a cudnnStatus_t, an int)
_SIGNATURES = {
    "cudnnCreate": [ctypes.POINTER(_P)],
    "cudnnSetStream": [_P, _P],
    "cudnnCreateTensorDescriptor": [ctypes.POINTER(_P)],
    "cudnnSetTensor4dDescriptor": [_P, _I, _I, _I, _I, _I, _I],
    "cudnnDestroyTensorDescriptor": [_P],
    "cudnnCreateFilterDescriptor": [ctypes.POINTER(_P)],
    "cudnnSetFilter4dDescriptor": [_P, _I, _I, _I, _I, _I, _I],
    "cudnnDestroyFilterDescriptor": [_P],
    "cudnnCreateConvolutionDescriptor": [ctypes.POINTER(_P)],
    "cudnnSetConvolution2dDescriptor": [_P, _I, _I, _I, _I, _I, _I, _I, _I],
    "cudnnSetConvolutionMathType": [_P, _I],
    "cudnnSetConvolutionGroupCount": [_P, _I],
    "cudnnDestroyConvolutionDescriptor": [_P],
    "cudnnGetConvolution2dForwardOutputDim": [_P, _P, _P] + [ctypes.POINTER(_I)] * 4,
    "cudnnGetConvolutionForwardAlgorithm_v7": [_P, _P, _P, _P, _P, _I, ctypes.POINTER(_I), ctypes.POINTER(_AlgoPerf)],
    "cudnnGetConvolutionForwardWorkspaceSize": [_P, _P, _P, _P, _P, _I, ctypes.POINTER(_S)],
    "cudnnConvolutionForward": [_P, _P, _P, _P, _P, _P, _P, _I, _P, _S, _P, _P, _P],
    "cudnnGetConvolutionBackwardDataAlgorithm_v7": [_P, _P, _P, _P, _P, _I, ctypes.POINTER(_I),
                                                    ctypes.POINTER(_AlgoPerf)],
    "cudnnGetConvolutionBackwardDataWorkspaceSize": [_P, _P, _P, _P, _P, _I, ctypes.POINTER(_S)],
    "cudnnConvolutionBackwardData": [_P, _P, _P, _P, _P, _P, _P, _I, _P, _S, _P, _P, _P],
    "cudnnGetConvolutionBackwardFilterAlgorithm_v7": [_P, _P, _P, _P, _P, _I, ctypes.POINTER(_I),
                                                      ctypes.POINTER(_AlgoPerf)],
    "cudnnGetConvolutionBackwardFilterWorkspaceSize": [_P, _P, _P, _P, _P, _I, ctypes.POINTER(_S)],
    "cudnnConvolutionBackwardFilter": [_P, _P, _P, _P, _P, _P, _P, _I, _P, _S, _P, _P, _P],
    "cudnnCreatePoolingDescriptor": [ctypes.POINTER(_P)],
    "cudnnSetPooling2dDescriptor": [_P, _I, _I, _I, _I, _I, _I, _I, _I],
    "cudnnDestroyPoolingDescriptor": [_P],
    "cudnnPoolingForward": [_P, _P, _P, _P, _P, _P, _P, _P],
    "cudnnPoolingBackward": [_P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P, _P],
}


# --------------------------------------------------------------------------- finding the library
def _candidates() -> list:
    """Paths or names of libcudnn to try, most specific first."""
    names = ["libcudnn.so.9", "libcudnn.so.8"]
    found = []
    for package in ("nvidia.cudnn",):  # the nvidia-cudnn-cu12 / -cu13 wheels (PyTorch's dependency)
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        for folder in (spec.submodule_search_locations or []) if spec else []:
            found.extend(str(Path(folder) / "lib" / name) for name in names if (Path(folder) / "lib" / name).exists())
    torch_spec = importlib.util.find_spec("torch")
    if torch_spec is not None and torch_spec.origin:
        lib = Path(torch_spec.origin).parent / "lib"
        found.extend(str(lib / name) for name in names if (lib / name).exists())
    system = ctypes.util.find_library("cudnn")
    return names + found + ([system] if system else [])


_loaded: dict = {}


def _library():
    """The loaded cuDNN library with its functions typed; raises CudnnError saying why it cannot load.

    Tried once per process: the library, or the reason it is missing, is kept.
    """
    if not _loaded:
        try:
            _loaded["library"] = _load()
        except CudnnError as exc:
            _loaded["error"] = exc
    if "error" in _loaded:
        raise _loaded["error"]
    return _loaded["library"]


def _load():
    errors = []
    for candidate in _candidates():
        try:
            lib = ctypes.CDLL(candidate)
        except OSError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        try:
            for name, argtypes in _SIGNATURES.items():
                function = getattr(lib, name)
                function.argtypes = argtypes
                function.restype = ctypes.c_int
            lib.cudnnGetVersion.restype = ctypes.c_size_t
            lib.cudnnGetVersion.argtypes = []
            lib.cudnnGetErrorString.restype = ctypes.c_char_p
            lib.cudnnGetErrorString.argtypes = [ctypes.c_int]
        except AttributeError as exc:
            errors.append(f"{candidate}: {exc}")
            continue
        return lib
    raise CudnnError("libcudnn could not be loaded (install nvidia-cudnn-cu12 or -cu13, or PyTorch with CUDA): "
                     + "; ".join(errors[-3:]))


def available() -> tuple:
    """``(True, None)`` when cuDNN loads, else ``(False, reason)``; loads it on the first call."""
    try:
        _library()
    except CudnnError as exc:
        return False, str(exc)
    return True, None


def version():
    """cuDNN's version number (e.g. 90100 for 9.1.0), or None when it does not load."""
    try:
        return int(_library().cudnnGetVersion())
    except CudnnError:
        return None


def _not_supported(status: int) -> bool:
    """CUDNN_STATUS_NOT_SUPPORTED: 9 in cuDNN 8; the 3000-3999 category in cuDNN 9 (shape, layout, type...)."""
    return status == 9 or 3000 <= status < 4000


def _check(status: int, function: str) -> None:
    if status == SUCCESS:
        return
    text = _library().cudnnGetErrorString(status).decode(errors="replace")
    error = CudnnNotSupported if _not_supported(status) else CudnnError
    raise error(f"{function}: {text} (status {status})")


def _call(function: str, *args) -> None:
    _check(getattr(_library(), function)(*args), function)


# --------------------------------------------------------------------------- handles and descriptors
_local = threading.local()


def _handle(cp):
    """This thread's cuDNN handle for the current device, bound to CuPy's current stream."""
    handles = _local.__dict__.setdefault("handles", {})
    device = cp.cuda.Device().id
    handle = handles.get(device)
    if handle is None:
        handle = _P()
        _call("cudnnCreate", ctypes.byref(handle))
        handles[device] = handle
    _call("cudnnSetStream", handle, _P(cp.cuda.get_current_stream().ptr))
    return handle


@contextlib.contextmanager
def _descriptor(kind: str, setter: str, *values):
    """A cuDNN descriptor of ``kind`` (``Tensor``, ``Filter``, ``Convolution``, ``Pooling``), set, then destroyed."""
    descriptor = _P()
    _call(f"cudnnCreate{kind}Descriptor", ctypes.byref(descriptor))
    try:
        _call(setter, descriptor, *values)
        yield descriptor
    finally:
        getattr(_library(), f"cudnnDestroy{kind}Descriptor")(descriptor)


def _tensor(shape_nhwc, dtype):
    b, h, w, c = (int(s) for s in shape_nhwc)
    return _descriptor("Tensor", "cudnnSetTensor4dDescriptor", TENSOR_NHWC, _DATA_TYPES[dtype], b, c, h, w)


def _filter(shape_fchw, dtype):
    f, c, kh, kw = (int(s) for s in shape_fchw)
    return _descriptor("Filter", "cudnnSetFilter4dDescriptor", _DATA_TYPES[dtype], TENSOR_NHWC, f, c, kh, kw)


@contextlib.contextmanager
def _convolution(padding, stride, dtype, dilation=(1, 1), groups=1):
    with _descriptor("Convolution", "cudnnSetConvolution2dDescriptor", padding[0], padding[1], stride[0],
                     stride[1], dilation[0], dilation[1], CROSS_CORRELATION, _DATA_TYPES[dtype]) as descriptor:
        if dtype == np.dtype(np.float32):
            _call("cudnnSetConvolutionMathType", descriptor, FMA_MATH)  # no TF32: float32 arithmetic
        if groups > 1:
            _call("cudnnSetConvolutionGroupCount", descriptor, int(groups))
        yield descriptor


def _pointer(array):
    return _P(array.data.ptr)


def _scalars(dtype):
    scalar = _SCALARS[dtype]
    return ctypes.byref(scalar(1.0)), ctypes.byref(scalar(0.0))


#: (direction, case) -> the algorithm chosen for it (cuDNN's heuristics are asked once per case).
_algorithms: dict = {}


def _algorithm(direction: str, case, handle, descriptors) -> int:
    """The first deterministic, non-tensor-op algorithm cuDNN's heuristics propose for ``direction``.

    ``direction`` is ``ConvolutionForward``, ``ConvolutionBackwardData`` or
    ``ConvolutionBackwardFilter``; ``descriptors`` are the four the heuristics
    take in cuDNN's order. Raises CudnnNotSupported when none fits.
    """
    if (direction, case) not in _algorithms:
        perf = (_AlgoPerf * REQUESTED_ALGORITHMS)()
        returned = ctypes.c_int(0)
        _call(f"cudnnGet{direction}Algorithm_v7", handle, *descriptors, REQUESTED_ALGORITHMS,
              ctypes.byref(returned), perf)
        _algorithms[(direction, case)] = next(
            (int(r.algo) for r in perf[:returned.value]
             if r.status == SUCCESS and r.determinism == DETERMINISTIC and r.mathType in (FMA_MATH, DEFAULT_MATH)),
            None)
    algo = _algorithms[(direction, case)]
    if algo is None:
        raise CudnnNotSupported(f"cudnnGet{direction}Algorithm_v7: no deterministic algorithm without "
                                f"tensor-op math for {case}")
    return algo


def _run_convolution(cp, direction, case, descriptors, operands, dtype):
    """Choose the algorithm, allocate its workspace and run ``cudnn<direction>``.

    ``operands``: ``((a_desc, a), (b_desc, b), conv_desc, (out_desc, out))`` in the
    order of cuDNN's function (alpha, a, b, conv, algo, workspace, beta, out).
    """
    handle = _handle(cp)
    algo = _algorithm(direction, case, handle, descriptors)
    size = ctypes.c_size_t(0)
    _call(f"cudnnGet{direction}WorkspaceSize", handle, *descriptors, algo, ctypes.byref(size))
    workspace = cp.empty(int(size.value), dtype=cp.uint8)
    alpha, beta = _scalars(dtype)
    (a_desc, a), (b_desc, b), conv, (out_desc, out) = operands
    _call(f"cudnn{direction}", handle, alpha, a_desc, _pointer(a), b_desc, _pointer(b), conv, algo,
          _pointer(workspace) if size.value else None, size.value, beta, out_desc, _pointer(out))


# --------------------------------------------------------------------------- the operations
def conv2d_forward(x, kernels, biases, stride, padding, dilation=(1, 1), groups=1):
    """``cudnnConvolutionForward`` + bias: :func:`kernels.conv2d.conv2d_forward` on CuPy arrays (NHWC)."""
    import cupy as cp

    dtype = np.dtype(x.dtype)
    f, c, kh, kw = kernels.shape
    b, h, w, _ = x.shape
    out_h = (h + 2 * padding[0] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    out_w = (w + 2 * padding[1] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    w_nhwc = cp.ascontiguousarray(kernels.transpose(0, 2, 3, 1))
    out = cp.empty((b, out_h, out_w, f), dtype=dtype)
    key = (x.shape, kernels.shape, stride, padding, dilation, groups, dtype.name)
    with _tensor(x.shape, dtype) as xd, _filter(kernels.shape, dtype) as wd, \
            _convolution(padding, stride, dtype, dilation, groups) as cd, _tensor(out.shape, dtype) as yd:
        _check_output_dims(cd, xd, wd, out.shape)
        _run_convolution(cp, "ConvolutionForward", key, (xd, wd, cd, yd), ((xd, x), (wd, w_nhwc), cd, (yd, out)),
                         dtype)
    out += biases.reshape(f)
    return out


def conv2d_backward_input(grad_output, kernels, input_shape, stride, padding, dilation=(1, 1), groups=1):
    """``cudnnConvolutionBackwardData``: :func:`kernels.conv2d.conv2d_backward_input` on CuPy arrays."""
    import cupy as cp

    dtype = np.dtype(grad_output.dtype)
    w_nhwc = cp.ascontiguousarray(kernels.transpose(0, 2, 3, 1))
    grad_input = cp.empty(tuple(int(s) for s in input_shape), dtype=dtype)
    key = (grad_output.shape, kernels.shape, tuple(input_shape), stride, padding, dilation, groups, dtype.name)
    with _filter(kernels.shape, dtype) as wd, _tensor(grad_output.shape, dtype) as dyd, \
            _convolution(padding, stride, dtype, dilation, groups) as cd, _tensor(grad_input.shape, dtype) as dxd:
        _check_output_dims(cd, dxd, wd, grad_output.shape)
        _run_convolution(cp, "ConvolutionBackwardData", key, (wd, dyd, cd, dxd),
                         ((wd, w_nhwc), (dyd, grad_output), cd, (dxd, grad_input)), dtype)
    return grad_input


def conv2d_backward_kernels(grad_output, x, kernel_shape, stride, padding, dilation=(1, 1), groups=1):
    """``cudnnConvolutionBackwardFilter``: :func:`kernels.conv2d.conv2d_backward_kernels` on CuPy arrays."""
    import cupy as cp

    dtype = np.dtype(x.dtype)
    f, c, kh, kw = (int(s) for s in kernel_shape)
    grad_nhwc = cp.empty((f, kh, kw, c), dtype=dtype)
    key = (grad_output.shape, x.shape, (f, c, kh, kw), stride, padding, dilation, groups, dtype.name)
    with _tensor(x.shape, dtype) as xd, _tensor(grad_output.shape, dtype) as dyd, \
            _convolution(padding, stride, dtype, dilation, groups) as cd, _filter((f, c, kh, kw), dtype) as dwd:
        _check_output_dims(cd, xd, dwd, grad_output.shape)
        _run_convolution(cp, "ConvolutionBackwardFilter", key, (xd, dyd, cd, dwd),
                         ((xd, x), (dyd, grad_output), cd, (dwd, grad_nhwc)), dtype)
    return cp.ascontiguousarray(grad_nhwc.transpose(0, 3, 1, 2))


def _check_output_dims(conv, x_desc, w_desc, expected_nhwc):
    """cuDNN's output size must be ours (NHWC), else the case is not handed to it."""
    dims = [ctypes.c_int(0) for _ in range(4)]
    _call("cudnnGetConvolution2dForwardOutputDim", conv, x_desc, w_desc, *(ctypes.byref(d) for d in dims))
    n, c, h, w = (d.value for d in dims)
    if (n, h, w, c) != tuple(int(s) for s in expected_nhwc):
        raise CudnnNotSupported(f"cuDNN output {(n, h, w, c)} differs from {tuple(expected_nhwc)}")


def _pooling(pool, stride):
    return _descriptor("Pooling", "cudnnSetPooling2dDescriptor", POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
                       PROPAGATE_NAN, pool[0], pool[1], 0, 0, stride[0], stride[1])


def avg_pool2d_forward(x, pool, stride, out_hw):
    """``cudnnPoolingForward`` (average, no padding): :func:`kernels.pool2d.avg_pool2d_forward` on CuPy arrays."""
    import cupy as cp

    dtype = np.dtype(x.dtype)
    out = cp.empty((x.shape[0], *out_hw, x.shape[3]), dtype=dtype)
    alpha, beta = _scalars(dtype)
    with _pooling(pool, stride) as pd, _tensor(x.shape, dtype) as xd, _tensor(out.shape, dtype) as yd:
        _call("cudnnPoolingForward", _handle(cp), pd, alpha, xd, _pointer(x), beta, yd, _pointer(out))
    return out


def avg_pool2d_backward(grad_output, input_shape, pool, stride):
    """``cudnnPoolingBackward`` (average): :func:`kernels.pool2d.avg_pool2d_backward` on CuPy arrays.

    Average pooling's gradient does not read the forward's input and output;
    cuDNN's signature still takes them, so buffers of their shapes are passed.
    """
    import cupy as cp

    dtype = np.dtype(grad_output.dtype)
    grad_input = cp.empty(tuple(int(s) for s in input_shape), dtype=dtype)
    x_unused = cp.empty_like(grad_input)
    y_unused = cp.empty_like(grad_output)
    alpha, beta = _scalars(dtype)
    with _pooling(pool, stride) as pd, _tensor(grad_output.shape, dtype) as yd, \
            _tensor(grad_input.shape, dtype) as xd:
        _call("cudnnPoolingBackward", _handle(cp), pd, alpha, yd, _pointer(y_unused), yd, _pointer(grad_output),
              xd, _pointer(x_unused), beta, xd, _pointer(grad_input))
    return grad_input


_OPERATIONS: dict = {
    "conv2d_forward": conv2d_forward,
    "conv2d_backward_input": conv2d_backward_input,
    "conv2d_backward_kernels": conv2d_backward_kernels,
    "avg_pool2d_forward": avg_pool2d_forward,
    "avg_pool2d_backward": avg_pool2d_backward,
}


# --------------------------------------------------------------------------- the entry point
_state: dict = {"disabled": None}
_declined: set = set()
#: op -> {"cudnn": calls served, "ours": calls cuDNN declined}; read by the device check.
counts = {op: {"cudnn": 0, "ours": 0} for op in _OPERATIONS}


def disabled_reason():
    """Why cuDNN was switched off in this process after an unexpected error, or None."""
    return _state["disabled"]


@contextlib.contextmanager
def use_cudnn(flag: bool):
    """Within the block, send the GPU convolution and average pooling to cuDNN (True) or to ours (False)."""
    global USE_CUDNN
    previous, USE_CUDNN = USE_CUDNN, bool(flag)
    try:
        yield
    finally:
        USE_CUDNN = previous


def call(op: str, *args, dtype=None):
    """Run ``op`` (a key of :data:`counts`) with cuDNN, or return None for the caller to run ours.

    ``args`` are those of the op; its arrays must be CuPy arrays of one dtype,
    float32 or float64 (callers cast float16 to float32 first). The result is
    cast to ``dtype`` when given. None is returned, and nothing raised, for
    NumPy arrays (the CPU, the CUDA simulator), when cuDNN is off or missing,
    when it has no algorithm for the case (remembered, so the case goes
    straight to ours next time), or after an unexpected cuDNN error, which is
    logged once and switches cuDNN off for the process (:func:`disabled_reason`).
    """
    arrays = [a for a in args if hasattr(a, "__cuda_array_interface__")]
    if not arrays or not USE_CUDNN or _state["disabled"] is not None:
        return None
    case = (op, tuple(tuple(a.shape) for a in arrays), tuple(str(a.dtype) for a in arrays),
            tuple(repr(v) for v in args if not hasattr(v, "__cuda_array_interface__")))
    supported = (np.dtype(arrays[0].dtype) in _DATA_TYPES and all(a.dtype == arrays[0].dtype for a in arrays)
                 and case not in _declined)
    if not supported or not available()[0]:
        counts[op]["ours"] += 1
        return None
    try:
        result = _OPERATIONS[op](*args)
    except CudnnNotSupported:
        _declined.add(case)
        counts[op]["ours"] += 1
        return None
    except Exception as exc:  # a cuDNN/CUDA mismatch, an internal error: keep working on our kernels
        _state["disabled"] = f"{op}: {type(exc).__name__}: {exc}"
        _logger.warning("cuDNN switched off for this process (%s); our GPU kernels run instead", _state["disabled"])
        counts[op]["ours"] += 1
        return None
    counts[op]["cudnn"] += 1
    return result if dtype is None else result.astype(dtype, copy=False)
