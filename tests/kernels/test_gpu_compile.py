"""GPU compile tier: every GPU kernel of kernels/ compiled for real, on a machine without a GPU (issue 8).

* numba-cuda kernels (:mod:`kernels.conv2d.gpu`, :mod:`kernels.pool2d.gpu`, :mod:`kernels.depthwise2d.gpu`):
  the GPU functions are run on small NumPy arrays with the launch replaced by a
  recorder (which then does the step with the kernel's array-operation twin),
  so the signatures compiled are exactly those the launch code passes
  (float32, float64, and float16 computed in float32); each kernel is then
  compiled to PTX by NVVM (``numba.cuda.compile_ptx``) for compute capability
  9.0 (Hopper) and 8.0 (Ampere). This types every kernel and device function,
  which the CUDA simulator tier does not.
* CuPy kernels (:mod:`kernels.activations.gpu`): the complete source of every
  RawModule (:mod:`kernels.activations.gpu_source`, the text CuPy compiles),
  float32 and float64, every compile group, through NVRTC
  (``cuda.bindings.nvrtc``) for ``compute_90`` and ``compute_80`` with the
  options CuPy adds; then, without a GPU, the arguments :mod:`kernels.activations.gpu`
  passes to each kernel are checked against the kernel's C signature. The
  normalization module (:func:`kernels.normalization.gpu.module_source`) goes
  through NVRTC the same way (its launches are checked, and its kernels run, on
  the host by ``test_normalization_gpu_on_host.py``).

The tools come with the ``gpu-compile`` extra (``numba-cuda[cu12]``,
``cuda-python``). Where one is missing the tests skip and say why; a compile
error fails.
"""

from __future__ import annotations

import re
import types

import numpy as np
import pytest

from kernels import cuda_launch
from kernels.activations import gpu as act_gpu
from kernels.activations import gpu_source
from kernels.normalization import gpu as norm_gpu

INSTALL_HINT = "pip install -e '.[gpu-compile]'"
COMPUTE_CAPABILITIES = ((9, 0), (8, 0))
NVRTC_ARCHES = ("compute_90", "compute_80")

#: Every numba-cuda kernel of kernels/: (family, name in the family's ``cuda_kernels()``).
NUMBA_CUDA_KERNELS = (
    ("conv2d", "im2col"), ("conv2d", "col2im"),
    ("pool2d", "max_forward"), ("pool2d", "max_backward"), ("pool2d", "avg_forward"), ("pool2d", "avg_backward"),
    ("depthwise2d", "forward"), ("depthwise2d", "backward_input"),
)


# --------------------------------------------------------------------------- numba-cuda -> PTX
def _numba_cuda():
    """``numba.cuda`` with NVVM, or skip saying what is missing."""
    try:
        import numba_cuda  # noqa: F401 (the package that brings NVVM bindings)
    except ImportError as exc:
        pytest.skip(f"numba-cuda is not installed ({exc}); {INSTALL_HINT}")
    from numba import cuda
    from numba.cuda.cudadrv.error import NvvmSupportError

    def probe(a):
        a[0] = 1.0

    try:
        cuda.compile_ptx(probe, "void(float32[::1])", cc=(9, 0))
    except NvvmSupportError as exc:
        pytest.skip(f"NVVM (libnvvm) is not available: {exc}; {INSTALL_HINT}")
    return cuda


@pytest.fixture(scope="module")
def recorded_launches():
    """``{(family, kernel): (dispatcher, {signature, ...})}`` from running the GPU functions on NumPy arrays."""
    cuda = _numba_cuda()
    from numba import typeof

    from kernels.conv2d import gpu as conv_gpu
    from kernels.depthwise2d import gpu as depthwise_gpu
    from kernels.pool2d import gpu as pool_gpu

    modules = {"conv2d": conv_gpu, "pool2d": pool_gpu, "depthwise2d": depthwise_gpu}
    by_function = {getattr(m.cuda_kernels(), name): (family, name)
                   for family, m in modules.items() for name in vars(m.cuda_kernels())}
    record = {}

    def recorder(kernel, n_items, *args):
        """Record the argument types, then do the step with the kernel's array-operation twin."""
        family, name = by_function[kernel]
        record.setdefault((family, name), (kernel, set()))[1].add(tuple(typeof(a) for a in args))
        getattr(modules[family], f"{name}_arrays")(*args)

    patch = pytest.MonkeyPatch()
    patch.setattr(cuda_launch, "launch", recorder)
    patch.setattr(cuda_launch, "PREFER_NUMBA_CUDA", True)
    patch.setattr(cuda_launch, "_numba_cuda_error", None)
    try:
        rng = np.random.default_rng(0)
        for dtype in (np.float32, np.float64, np.float16):
            x = rng.standard_normal((2, 6, 5, 3)).astype(dtype)
            k = rng.standard_normal((4, 3, 3, 2)).astype(dtype)
            b = np.zeros((4, 1), dtype)
            for stride, padding, dilation in ((1, 0, 1), ((2, 1), (1, 1), (2, 1))):
                out = conv_gpu.conv2d_forward_gpu(x, k, b, stride, padding, dilation)
                g = np.ones_like(out)
                conv_gpu.conv2d_backward_input_gpu(g, k, x.shape, stride, padding, dilation)
                conv_gpu.conv2d_backward_kernels_gpu(g, x, k.shape, stride, padding, dilation)
            if dtype != np.float16:  # float16 is refused by the layers; depthwise computes in the input's dtype
                kd = rng.standard_normal((6, 1, 3, 2)).astype(dtype)
                out = depthwise_gpu.depthwise2d_forward_gpu(x, kd, np.zeros((6, 1), dtype), (2, 1), 1, (1, 2))
                depthwise_gpu.depthwise2d_backward_input_gpu(np.ones_like(out), kd, x.shape, (2, 1), 1, (1, 2))
            for pool, stride in (((2, 2), None), ((3, 2), (1, 2))):
                out, argmax = pool_gpu.max_pool2d_forward_gpu(x, pool, stride)
                pool_gpu.max_pool2d_backward_gpu(np.ones_like(out), argmax, x.shape, pool, stride)
                out = pool_gpu.avg_pool2d_forward_gpu(x, pool, stride)
                pool_gpu.avg_pool2d_backward_gpu(np.ones_like(out), x.shape, pool, stride)
    finally:
        patch.undo()
    assert cuda_launch.numba_cuda_error() is None
    return cuda, record


def test_every_numba_cuda_kernel_is_launched_and_listed(recorded_launches):
    from kernels.conv2d import gpu as conv_gpu
    from kernels.depthwise2d import gpu as depthwise_gpu
    from kernels.pool2d import gpu as pool_gpu

    _, record = recorded_launches
    defined = {("conv2d", n) for n in vars(conv_gpu.cuda_kernels())} | {
        ("pool2d", n) for n in vars(pool_gpu.cuda_kernels())} | {
        ("depthwise2d", n) for n in vars(depthwise_gpu.cuda_kernels())}
    assert defined == set(NUMBA_CUDA_KERNELS), "a kernel was added or removed: update NUMBA_CUDA_KERNELS"
    assert set(record) == defined, f"kernels never launched by the cases: {sorted(defined - set(record))}"
    # float32 and float64 (float16 computes in float32): two signatures per kernel
    assert all(len(signatures) == 2 for _, signatures in record.values()), {
        k: sorted(map(str, s)) for k, (_, s) in record.items()}


def fake_device(monkeypatch, cc):
    """Kernels calling ``@cuda.jit(device=True)`` helpers ask the current device for its compute capability."""
    from numba.cuda import dispatcher

    monkeypatch.setattr(dispatcher, "get_current_device", lambda: types.SimpleNamespace(compute_capability=cc))


@pytest.mark.parametrize("cc", COMPUTE_CAPABILITIES, ids=lambda cc: f"sm{cc[0]}{cc[1]}")
@pytest.mark.parametrize("family, name", NUMBA_CUDA_KERNELS, ids=lambda v: v)
def test_numba_cuda_kernel_compiles_to_ptx(recorded_launches, monkeypatch, family, name, cc):
    cuda, record = recorded_launches
    fake_device(monkeypatch, cc)
    kernel, signatures = record[(family, name)]
    for signature in sorted(signatures, key=str):
        ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=cc)
        assert f".target sm_{cc[0]}{cc[1]}" in ptx and ".entry" in ptx, (name, signature)


# --------------------------------------------------------------------------- CUDA C -> NVRTC
def _nvrtc():
    """``cuda.bindings.nvrtc`` with a loadable libnvrtc, or skip saying what is missing."""
    try:
        from cuda.bindings import nvrtc
    except ImportError as exc:
        pytest.skip(f"cuda-python (cuda.bindings.nvrtc) is not installed ({exc}); {INSTALL_HINT}")
    try:
        err, *_ = nvrtc.nvrtcVersion()
    except Exception as exc:  # libnvrtc missing: the bindings raise when they load it
        pytest.skip(f"libnvrtc cannot be loaded ({type(exc).__name__}: {exc}); {INSTALL_HINT}")
    if err != nvrtc.nvrtcResult.NVRTC_SUCCESS:
        pytest.skip(f"libnvrtc does not answer ({err}); {INSTALL_HINT}")
    return nvrtc


def parse_params(params: str) -> list[tuple[bool, str, str]]:
    """``[(raw, type, name), ...]`` of a CuPy ``ElementwiseKernel`` parameter list (``"T x, raw int32 flag"``)."""
    out = []
    for item in params.split(","):
        words = item.split()
        out.append((words[0] == "raw", words[-2], words[-1]))
    return out


def nvrtc_compile(nvrtc, source: str, options) -> str:
    """PTX of ``source`` compiled by NVRTC with ``options``; AssertionError with the log on failure."""
    err, program = nvrtc.nvrtcCreateProgram(source.encode(), b"camadas_activations.cu", 0, [], [])
    assert err == nvrtc.nvrtcResult.NVRTC_SUCCESS, err
    try:
        encoded = [o.encode() for o in options]
        (status,) = nvrtc.nvrtcCompileProgram(program, len(encoded), encoded)
        _, log_size = nvrtc.nvrtcGetProgramLogSize(program)
        log = b" " * log_size
        nvrtc.nvrtcGetProgramLog(program, log)
        assert status == nvrtc.nvrtcResult.NVRTC_SUCCESS, (
            f"NVRTC failed ({status}) with {options}:\n{log.decode(errors='replace')}")
        _, ptx_size = nvrtc.nvrtcGetPTXSize(program)
        ptx = b" " * ptx_size
        nvrtc.nvrtcGetPTX(program, ptx)
        return ptx.decode(errors="replace")
    finally:
        nvrtc.nvrtcDestroyProgram(program)


@pytest.mark.parametrize("arch", NVRTC_ARCHES)
@pytest.mark.parametrize("group", sorted(gpu_source.GROUP_OPTIONS))
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_activation_module_compiles_with_nvrtc(dtype, group, arch):
    nvrtc = _nvrtc()
    ptx = nvrtc_compile(nvrtc, gpu_source.module_source(dtype, group), gpu_source.nvrtc_options(group, arch))
    entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx))
    assert entries == set(gpu_source.kernel_names(group)), sorted(entries ^ set(gpu_source.kernel_names(group)))


@pytest.mark.parametrize("arch", NVRTC_ARCHES)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_normalization_module_compiles_with_nvrtc(dtype, arch):
    nvrtc = _nvrtc()
    ptx = nvrtc_compile(nvrtc, norm_gpu.module_source(dtype), norm_gpu.nvrtc_options(arch))
    entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx))
    assert entries == set(norm_gpu.KERNEL_NAMES), sorted(entries ^ set(norm_gpu.KERNEL_NAMES))
    assert norm_gpu.nvrtc_options(arch) == gpu_source.nvrtc_options("default", arch)  # the options CuPy adds


def test_every_activation_is_in_a_compiled_module():
    """Each forward/backward kernel the dispatcher can launch is one of the sources compiled above."""
    names = set(gpu_source.kernel_names())
    assert {f"{n}_fwd" for n in ("sigmoid", "tanh", "softsign", "hard_sigmoid", "hard_tanh", "relu", "leaky",
                                 "prelu_channels", "rrelu", "scaled_elu", "noisy_relu", "gelu", "gelu_tanh",
                                 "silu", "softplus", "mish")} <= names
    assert len(names) == 32
    assert set(gpu_source.GROUP_OPTIONS) == {"default", "no_fma"}


# --------------------------------------------------------------------------- launch arguments vs C signatures
_C_PARAM = re.compile(r"^(const\s+)?(float|double|long long|T)(\*)?(?:\s+__restrict__)?\s+(\w+)$")


def c_signature(name: str, dtype) -> list:
    """``[(c_type, is_pointer), ...]`` of kernel ``name`` as its source declares it, ``T`` resolved."""
    source = gpu_source.kernel_source(name)
    params = source[source.index("(") + 1:source.index(")")].split(",")
    t = gpu_source.DTYPES[np.dtype(dtype)]
    out = []
    for param in params:
        match = _C_PARAM.match(param.strip())
        assert match, (name, param)
        c_type = t if match.group(2) == "T" else match.group(2)
        out.append((c_type, bool(match.group(3))))
    return out


_C_OF_DTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double", np.dtype(np.int64): "long long"}


def check_arguments(name, values, dtype):
    """The values a launch passes match the kernel's C parameters in number, kind and type."""
    signature = c_signature(name, dtype)
    assert len(values) == len(signature), f"{name}: {len(values)} arguments for {len(signature)} parameters"
    for i, (value, (c_type, is_pointer)) in enumerate(zip(values, signature)):
        assert isinstance(value, np.ndarray) == is_pointer, (name, i, type(value))
        assert _C_OF_DTYPE[np.dtype(value.dtype)] == c_type, (name, i, value.dtype, c_type)
        if is_pointer:
            assert value.flags.c_contiguous, (name, i)


@pytest.fixture
def numpy_as_cupy(monkeypatch):
    """Run :mod:`kernels.activations.gpu` on NumPy arrays; each launch checks its arguments and writes zeros."""
    launched = []

    class FakeModule:
        def __init__(self, dtype_name):
            self.dtype = np.dtype(dtype_name)

        def get_function(self, name):
            def function(grid, block, args):
                check_arguments(name, args, self.dtype)
                launched.append(name)
                args[-2][...] = 0  # the output

            return function

    monkeypatch.setattr(act_gpu, "_cupy", lambda: np)
    monkeypatch.setattr(act_gpu, "_module", lambda dtype_name, group: FakeModule(dtype_name))
    return launched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gpu_dispatch_passes_arguments_matching_the_c_signatures(numpy_as_cupy, dtype):
    from kernels import activations as act

    rng = np.random.default_rng(0)
    x = rng.standard_normal((4, 3)).astype(dtype)
    g = rng.standard_normal((4, 3)).astype(dtype)
    for name in act.ACTIVATIONS:
        kwargs = act.training_kwargs(name, x)
        y = act_gpu.forward(name, x, **act.resolve_params(name, kwargs))
        assert y.shape == x.shape and y.dtype == x.dtype
        out = np.empty((4, 3, 2), dtype)[..., 0]  # a non-contiguous out goes through a temporary
        dx = act_gpu.backward(name, g, x, y, out=out, **act.resolve_params(name, kwargs))
        assert dx is out
    grad_input, grad_alpha = act_gpu.prelu_backward(g, x, np.array([0.1, 0.2, 0.3], dtype))
    assert grad_input.shape == x.shape and grad_alpha.shape == (3,) and grad_alpha.dtype == x.dtype
    assert set(numpy_as_cupy) >= {"sigmoid_fwd", "prelu_channels_bwd", "prelu_alpha_terms", "gelu_bwd"}


def test_launcher_refuses_mismatched_arguments(numpy_as_cupy):
    launcher = act_gpu.kernel("leaky_fwd")
    x = np.zeros((2, 3), np.float32)
    with pytest.raises(TypeError, match="leaky_fwd: expected 2 arguments"):
        launcher(x)
    with pytest.raises(TypeError, match="alpha: expected a host scalar"):
        launcher(x, np.zeros(1, np.float32))
    with pytest.raises(ValueError, match="slope: expected dtype float32 and shape"):
        act_gpu.kernel("rrelu_fwd")(x, np.zeros((3, 2), np.float32))
    with pytest.raises(ValueError, match="unknown GPU activation kernel"):
        act_gpu.kernel("nope")
