"""cuDNN behind the GPU convolution and average pooling (kernels.cudnn), on every machine it can be checked.

* Everywhere: importing loads nothing; NumPy arrays, a switched-off cuDNN or a
  missing library give None (the caller runs our kernels); the ctypes layout of
  the algorithm-result struct; cuDNN 8 and 9 "not supported" status codes.
* Where libcudnn loads (no GPU needed): the descriptors are built through the
  real library and cuDNN's output size equals ours for NHWC tensors and
  ``(F, kh, kw, C)`` filters, so argument order and layouts are right.
* On a GPU (``-m gpu``): cuDNN against our numba-cuda path and the CPU, and
  the proof that cuDNN served the calls.
"""

from __future__ import annotations

import ctypes
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import backend
from kernels import cudnn

ROOT = Path(__file__).resolve().parents[2]


def test_importing_loads_no_library():
    code = ("import sys, ctypes\nimport kernels.cudnn as c\n"
            "assert not c._loaded, c._loaded\nassert 'cupy' not in sys.modules\nprint('OK')\n")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "OK" in result.stdout, result.stderr


def test_numpy_arrays_and_switched_off_cudnn_go_to_our_kernels():
    x = np.zeros((1, 4, 4, 2), np.float32)
    k = np.zeros((3, 2, 3, 3), np.float32)
    b = np.zeros((3, 1), np.float32)
    assert cudnn.call("conv2d_forward", x, k, b, (1, 1), (1, 1)) is None  # no CUDA array
    with cudnn.use_cudnn(False):
        assert not cudnn.USE_CUDNN
        assert cudnn.call("avg_pool2d_forward", x, (2, 2), (2, 2), (2, 2)) is None
    assert cudnn.USE_CUDNN


def test_availability_is_a_flag_and_a_reason():
    ok, reason = cudnn.available()
    assert (ok and reason is None) or (not ok and "libcudnn could not be loaded" in reason)
    assert cudnn.available() == (ok, reason)  # decided once


def test_struct_layout_and_status_codes():
    assert ctypes.sizeof(cudnn._AlgoPerf) == 48  # int, int, float, size_t, int, int, int[3] on LP64
    assert cudnn._AlgoPerf.memory.offset == 16 and cudnn._AlgoPerf.determinism.offset == 24
    assert cudnn._not_supported(9) and cudnn._not_supported(3000) and cudnn._not_supported(3004)
    assert not cudnn._not_supported(0) and not cudnn._not_supported(2000) and not cudnn._not_supported(4000)


def _library_or_skip():
    ok, reason = cudnn.available()
    if not ok:
        pytest.skip(f"cuDNN is not loadable here: {reason}")


@pytest.mark.parametrize("x_shape, k_shape, stride, padding", [
    ((2, 9, 11, 3), (4, 3, 5, 2), (2, 3), (2, 0)),
    ((1, 7, 7, 8), (16, 8, 3, 3), (1, 1), (1, 1)),
])
def test_descriptors_through_the_real_library_give_our_output_size(x_shape, k_shape, stride, padding):
    _library_or_skip()
    from kernels.geometry import conv2d_output_size

    out_h, out_w = conv2d_output_size(x_shape[1:3], k_shape[2:], stride, padding)
    expected = (x_shape[0], out_h, out_w, k_shape[0])
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        with cudnn._tensor(x_shape, dtype) as xd, cudnn._filter(k_shape, dtype) as wd, \
                cudnn._convolution(padding, stride, dtype) as cd:
            cudnn._check_output_dims(cd, xd, wd, expected)
            with pytest.raises(cudnn.CudnnNotSupported, match="differs from"):
                cudnn._check_output_dims(cd, xd, wd, (expected[0], out_h + 1, out_w, expected[3]))
    with cudnn._descriptor("Pooling", "cudnnSetPooling2dDescriptor", cudnn.POOLING_AVERAGE_COUNT_INCLUDE_PADDING,
                           cudnn.PROPAGATE_NAN, 3, 2, 0, 0, 1, 2):
        pass


# --------------------------------------------------------------------------- on a GPU
def _relative_error(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300))


@pytest.mark.gpu
@pytest.mark.parametrize("dtype, rtol", [(np.float32, 1e-4), (np.float64, 1e-10)])
def test_cudnn_matches_our_gpu_kernels_and_the_cpu(dtype, rtol):
    if not backend.has_gpu():
        pytest.skip(f"no GPU: {backend.unavailable_reason()}")
    _library_or_skip()
    from kernels import conv2d, pool2d

    rng = np.random.default_rng(5)
    before = {op: dict(c) for op, c in cudnn.counts.items()}
    for x_shape, k_shape, stride, padding in [((4, 17, 13, 5), (6, 5, 3, 3), (1, 1), (1, 1)),
                                              ((2, 9, 11, 3), (4, 3, 5, 2), (2, 3), (2, 0))]:
        x = rng.standard_normal(x_shape).astype(dtype)
        k = rng.standard_normal(k_shape).astype(dtype)
        b = rng.standard_normal((k_shape[0], 1)).astype(dtype)
        gx, gk, gb = (backend.to_device(a, "gpu") for a in (x, k, b))
        out = conv2d.conv2d_forward(x, k, b, stride, padding)
        g = rng.standard_normal(out.shape).astype(dtype)
        gg = backend.to_device(g, "gpu")
        cpu = [out, conv2d.conv2d_backward_input(g, k, x.shape, stride, padding),
               conv2d.conv2d_backward_kernels(g, x, k.shape, stride, padding),
               pool2d.avg_pool2d_forward(x, (2, 2), (1, 2)), pool2d.avg_pool2d_backward(
                   pool2d.avg_pool2d_forward(x, (2, 2), (1, 2)), x.shape, (2, 2), (1, 2))]
        for flag in (True, False):
            with cudnn.use_cudnn(flag):
                pooled = pool2d.avg_pool2d_forward(gx, (2, 2), (1, 2))
                gpu = [conv2d.conv2d_forward(gx, gk, gb, stride, padding),
                       conv2d.conv2d_backward_input(gg, gk, x.shape, stride, padding),
                       conv2d.conv2d_backward_kernels(gg, gx, k.shape, stride, padding),
                       pooled, pool2d.avg_pool2d_backward(pooled, x.shape, (2, 2), (1, 2))]
            for on_gpu, on_cpu in zip(gpu, cpu):
                assert on_gpu.dtype == dtype
                assert _relative_error(backend.to_numpy(on_gpu), on_cpu) < rtol, (flag, x_shape)
    served = {op: cudnn.counts[op]["cudnn"] - before[op]["cudnn"] for op in cudnn.counts}
    assert cudnn.disabled_reason() is None, cudnn.disabled_reason()
    if dtype == np.float32:  # float64 NHWC may be declined by cuDNN, then ours ran (checked above)
        assert all(n > 0 for n in served.values()), served
