"""GPU kernels (kernels.conv2d.gpu, kernels.pool2d.gpu) under Numba's CUDA simulator, on tiny shapes,
and their array-operation fallback (used where numba-cuda cannot compile) on NumPy arrays.

``NUMBA_ENABLE_CUDASIM=1`` must be set before ``numba.cuda`` is first
imported, so the checks run in a fresh Python process. The GPU functions are
written against ``backend.get_array_module``: under the simulator they take
NumPy arrays, run the numba-cuda kernels thread by thread, and use NumPy's
matmul where a GPU would use cuBLAS. Numba's own built-in simulator is used
(no ``numba-cuda`` package is needed for it).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]

SIMULATED_CHECKS = textwrap.dedent(
    """
    import numpy as np
    from numba import config
    assert config.ENABLE_CUDASIM, "the CUDA simulator is not active"
    from kernels import reference as ref
    from kernels.conv2d import gpu as conv2d_gpu
    from kernels.pool2d import gpu as pool2d_gpu

    def rel(a, b):
        a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
        assert a.shape == b.shape, (a.shape, b.shape)
        return np.max(np.abs(a - b), initial=0.0) / max(np.max(np.abs(b), initial=0.0), 1e-300)

    rng = np.random.default_rng(0)
    conv_cases = [
        ((2, 5, 4, 2), (3, 2, 3, 2), (1, 2), (1, 0)),   # stride and asymmetric padding
        ((1, 1, 1, 2), (2, 2, 3, 3), 1, 1),             # 1x1 input with padding: kernel = padded input
        ((1, 6, 5, 1), (2, 1, 2, 1), (3, 3), 0),        # stride larger than the kernel
        ((3, 4, 4, 1), (1, 1, 3, 3), 1, 2),             # padding larger than needed
    ]
    for i, (x_shape, k_shape, stride, padding) in enumerate(conv_cases):
        if i == 3:
            conv2d_gpu.CHUNK_BYTES = 1  # one image per chunk
        x = rng.standard_normal(x_shape)
        k = rng.standard_normal(k_shape)
        b = rng.standard_normal((k_shape[0], 1))
        out = conv2d_gpu.conv2d_forward_gpu(x, k, b, stride, padding)
        assert rel(out, ref.conv2d_forward(x, k, b, stride, padding)) < 1e-12, ("forward", i)
        g = rng.standard_normal(out.shape)
        assert rel(conv2d_gpu.conv2d_backward_input_gpu(g, k, x.shape, stride, padding),
                   ref.conv2d_backward_input(g, k, x.shape, stride, padding)) < 1e-12, ("input", i)
        assert rel(conv2d_gpu.conv2d_backward_kernels_gpu(g, x, k.shape, stride, padding),
                   ref.conv2d_backward_kernels(g, x, k.shape, stride, padding)) < 1e-12, ("kernels", i)
        assert rel(conv2d_gpu.conv2d_backward_bias_gpu(g), ref.conv2d_backward_bias(g)) < 1e-12, ("bias", i)

    x32 = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    k32 = rng.standard_normal((2, 2, 3, 3)).astype(np.float32)
    out32 = conv2d_gpu.conv2d_forward_gpu(x32, k32, np.zeros((2, 1), np.float32), 1, 1)
    assert out32.dtype == np.float32
    assert rel(out32, ref.conv2d_forward(x32.astype(np.float64), k32.astype(np.float64), np.zeros((2, 1)), 1, 1)) < 1e-5

    pool_cases = [((2, 4, 5, 2), (2, 2), None), ((1, 5, 6, 2), (3, 2), (1, 2)),
                  ((1, 7, 5, 1), (2, 2), (3, 3)), ((1, 3, 3, 1), (3, 3), None)]
    for i, (shape, pool, stride) in enumerate(pool_cases):
        x = rng.standard_normal(shape)
        if i == 1:
            x = np.round(x)  # ties
        out, argmax = pool2d_gpu.max_pool2d_forward_gpu(x, pool, stride)
        ref_out, ref_argmax = ref.max_pool2d_forward(x, pool, stride)
        assert argmax.dtype == np.int32 and (argmax == ref_argmax).all() and (out == ref_out).all(), ("max", i)
        g = rng.standard_normal(out.shape)
        assert rel(pool2d_gpu.max_pool2d_backward_gpu(g, argmax, shape, pool, stride),
                   ref.max_pool2d_backward(g, ref_argmax, shape, pool, stride)) < 1e-12, ("max bwd", i)
        assert rel(pool2d_gpu.avg_pool2d_forward_gpu(x, pool, stride), ref.avg_pool2d_forward(x, pool, stride)) < 1e-12
        assert rel(pool2d_gpu.avg_pool2d_backward_gpu(g, shape, pool, stride),
                   ref.avg_pool2d_backward(g, shape, pool, stride)) < 1e-12, ("avg bwd", i)
        gap = pool2d_gpu.global_avg_pool2d_forward_gpu(x)
        assert rel(gap, ref.global_avg_pool2d_forward(x)) < 1e-12
        assert rel(pool2d_gpu.global_avg_pool2d_backward_gpu(gap, shape),
                   ref.global_avg_pool2d_backward(gap, shape)) < 1e-12

    # dilation and groups (conv2d), depthwise (its own kernels), on tiny shapes
    from kernels.depthwise2d import gpu as depthwise_gpu, reference as dw_ref
    x = rng.standard_normal((2, 6, 5, 4))
    k = rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal((6, 1))
    out = conv2d_gpu.conv2d_forward_gpu(x, k, b, (1, 2), (2, 1), (2, 1), 2)
    assert rel(out, ref.conv2d_forward(x, k, b, (1, 2), (2, 1), (2, 1), 2)) < 1e-12, "dilated grouped forward"
    g = rng.standard_normal(out.shape)
    assert rel(conv2d_gpu.conv2d_backward_input_gpu(g, k, x.shape, (1, 2), (2, 1), (2, 1), 2),
               ref.conv2d_backward_input(g, k, x.shape, (1, 2), (2, 1), (2, 1), 2)) < 1e-12, "dilated input"
    assert rel(conv2d_gpu.conv2d_backward_kernels_gpu(g, x, k.shape, (1, 2), (2, 1), (2, 1), 2),
               ref.conv2d_backward_kernels(g, x, k.shape, (1, 2), (2, 1), (2, 1), 2)) < 1e-12, "dilated kernels"
    for mult, stride, padding, dilation in ((1, 1, 1, 1), (2, (2, 1), (1, 2), (2, 1))):
        kd = rng.standard_normal((4 * mult, 1, 3, 2))
        bd = rng.standard_normal((4 * mult, 1))
        out = depthwise_gpu.depthwise2d_forward_gpu(x, kd, bd, stride, padding, dilation)
        assert rel(out, dw_ref.depthwise2d_forward(x, kd, bd, stride, padding, dilation)) < 1e-12, ("dw", mult)
        g = rng.standard_normal(out.shape)
        assert rel(depthwise_gpu.depthwise2d_backward_input_gpu(g, kd, x.shape, stride, padding, dilation),
                   dw_ref.depthwise2d_backward_input(g, kd, x.shape, stride, padding, dilation)) < 1e-12, mult
        assert rel(depthwise_gpu.depthwise2d_backward_kernels_gpu(g, x, kd.shape, stride, padding, dilation),
                   dw_ref.depthwise2d_backward_kernels(g, x, kd.shape, stride, padding, dilation)) < 1e-12, mult

    nan_out, nan_arg = pool2d_gpu.max_pool2d_forward_gpu(np.array([1.0, np.nan, 5.0, np.nan]).reshape(1, 2, 2, 1))
    assert np.isnan(nan_out[0, 0, 0, 0]) and nan_arg[0, 0, 0, 0] == 1
    # the numba-cuda kernels ran (no silent switch to the array-op fallback)
    assert conv2d_gpu.numba_cuda_error() is None, conv2d_gpu.numba_cuda_error()
    print("SIMULATED GPU KERNELS OK")
    """
)


def _run(code: str, **extra_env) -> subprocess.CompletedProcess:
    env = dict(os.environ, **extra_env)
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.cudasim
def test_gpu_kernels_match_reference_under_cuda_simulator():
    result = _run(SIMULATED_CHECKS, NUMBA_ENABLE_CUDASIM="1")
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert "SIMULATED GPU KERNELS OK" in result.stdout


def test_importing_gpu_modules_needs_no_cuda():
    code = (
        "import sys, kernels.conv2d.gpu, kernels.pool2d.gpu, kernels.depthwise2d.gpu, kernels.cuda_launch\n"
        "assert 'numba.cuda' not in sys.modules, 'numba.cuda imported eagerly'\n"
        "assert 'cupy' not in sys.modules, 'cupy imported eagerly'\n"
        "print('IMPORT OK')\n"
    )
    result = _run(code)
    assert result.returncode == 0, result.stderr
    assert "IMPORT OK" in result.stdout


def _relative_error(fast, ref):
    fast, ref = np.asarray(fast, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    assert fast.shape == ref.shape
    return float(np.max(np.abs(fast - ref), initial=0.0) / max(np.max(np.abs(ref), initial=0.0), 1e-300))


def test_array_operation_fallback_matches_reference(monkeypatch):
    from kernels import cuda_launch, reference
    from kernels.conv2d import gpu as conv2d_gpu
    from kernels.pool2d import gpu as pool2d_gpu

    monkeypatch.setattr(cuda_launch, "PREFER_NUMBA_CUDA", False)
    rng = np.random.default_rng(1)
    for x_shape, k_shape, stride, padding in [((2, 5, 4, 2), (3, 2, 3, 2), (1, 2), (1, 0)),
                                              ((1, 1, 1, 2), (2, 2, 3, 3), 1, 1),
                                              ((3, 9, 7, 2), (2, 2, 2, 3), (3, 2), (2, 1))]:
        x, k = rng.standard_normal(x_shape), rng.standard_normal(k_shape)
        b = rng.standard_normal((k_shape[0], 1))
        out = conv2d_gpu.conv2d_forward_gpu(x, k, b, stride, padding)
        assert _relative_error(out, reference.conv2d_forward(x, k, b, stride, padding)) < 1e-12
        g = rng.standard_normal(out.shape)
        assert _relative_error(conv2d_gpu.conv2d_backward_input_gpu(g, k, x.shape, stride, padding),
                               reference.conv2d_backward_input(g, k, x.shape, stride, padding)) < 1e-12
        assert _relative_error(conv2d_gpu.conv2d_backward_kernels_gpu(g, x, k.shape, stride, padding),
                               reference.conv2d_backward_kernels(g, x, k.shape, stride, padding)) < 1e-12
    for dilation, groups in (((2, 1), 1), ((1, 2), 2)):  # dilated and grouped
        x, k = rng.standard_normal((2, 7, 6, 4)), rng.standard_normal((4, 4 // groups, 2, 3))
        b = rng.standard_normal((4, 1))
        out = conv2d_gpu.conv2d_forward_gpu(x, k, b, 1, 1, dilation, groups)
        assert _relative_error(out, reference.conv2d_forward(x, k, b, 1, 1, dilation, groups)) < 1e-12
        g = rng.standard_normal(out.shape)
        assert _relative_error(conv2d_gpu.conv2d_backward_input_gpu(g, k, x.shape, 1, 1, dilation, groups),
                               reference.conv2d_backward_input(g, k, x.shape, 1, 1, dilation, groups)) < 1e-12
        assert _relative_error(conv2d_gpu.conv2d_backward_kernels_gpu(g, x, k.shape, 1, 1, dilation, groups),
                               reference.conv2d_backward_kernels(g, x, k.shape, 1, 1, dilation, groups)) < 1e-12
    for shape, pool, stride in [((2, 7, 8, 3), (2, 2), None), ((1, 7, 8, 2), (3, 2), (1, 2)),
                                ((2, 7, 8, 1), (2, 3), (3, 1))]:
        x = np.round(rng.standard_normal(shape))  # ties: the first maximum wins
        out, argmax = pool2d_gpu.max_pool2d_forward_gpu(x, pool, stride)
        ref_out, ref_argmax = reference.max_pool2d_forward(x, pool, stride)
        assert argmax.dtype == np.int32
        np.testing.assert_array_equal(argmax, ref_argmax)
        np.testing.assert_array_equal(out, ref_out)
        g = rng.standard_normal(out.shape)
        assert _relative_error(pool2d_gpu.max_pool2d_backward_gpu(g, argmax, shape, pool, stride),
                               reference.max_pool2d_backward(g, ref_argmax, shape, pool, stride)) < 1e-12
        assert _relative_error(pool2d_gpu.avg_pool2d_forward_gpu(x, pool, stride),
                               reference.avg_pool2d_forward(x, pool, stride)) < 1e-12
        assert _relative_error(pool2d_gpu.avg_pool2d_backward_gpu(g, shape, pool, stride),
                               reference.avg_pool2d_backward(g, shape, pool, stride)) < 1e-12
