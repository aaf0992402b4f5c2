"""Bit-identical results on 1, 2 and 4 threads, call after call (issue 13, item 4).

Every reduction of the CPU kernels runs in a fixed order: the convolution's
kernel gradient is summed per fixed block of output rows and the blocks'
partial sums are added in block order; blocked kernels get chunks aligned to
their blocks; PReLU's slope gradient and the normalization statistics and
gradients are summed per fixed block. So repeated calls, and calls with any
number of Numba threads (``numba.set_num_threads``, which sizes
:func:`kernels.threads.run_rows`), give the same bits.

The checks run in a fresh process started with ``NUMBA_NUM_THREADS=4`` (the
most ``set_num_threads`` accepts is fixed when Numba loads), with the
thresholds below which a kernel stays on one thread lowered to 0; the arrays
are large enough (a few ms of work per call) that the helper threads do take
chunks, which is what made the sums vary before.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

CHECKS = textwrap.dedent(
    """
    import hashlib, json
    import numba
    import numpy as np
    from kernels import activations, conv2d, depthwise2d, normalization, pool2d, threads

    # every threaded path on small arrays: no size thresholds
    threads.PARALLEL_MIN_ELEMENTS = 0
    conv2d.cpu.NUMBA_GEMM_MIN_MACS = 0
    conv2d.cpu.USE_DIRECT = False  # the GEMM paths here; the direct kernels are called by name below
    pool2d.cpu.PARALLEL_MIN_ELEMENTS = 0
    depthwise2d.cpu.PARALLEL_MIN_ELEMENTS = 0
    activations.cpu.PARALLEL_MIN_SIZE = activations.cpu.PARALLEL_MIN_SIZE_COMPUTE = 1
    normalization.cpu.PARALLEL_MIN_ELEMENTS = 0
    direct = conv2d.direct

    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 45, 43, 16)).astype(np.float32)     # odd widths: GEMM tails
    k24 = rng.standard_normal((24, 16, 3, 3)).astype(np.float32)      # F % 16 != 0: dot-product GEMM
    k32 = rng.standard_normal((32, 16, 3, 3)).astype(np.float32)      # F % 16 == 0: outer-product GEMM
    b24 = rng.standard_normal((24, 1)).astype(np.float32)
    g24 = rng.standard_normal((16, 45, 43, 24)).astype(np.float32)
    g32 = rng.standard_normal((16, 45, 43, 32)).astype(np.float32)
    g24s = rng.standard_normal((16, 23, 22, 24)).astype(np.float32)   # stride 2, padding 1
    xd = rng.standard_normal((8, 29, 31, 16))                          # float64
    kd = rng.standard_normal((8, 16, 3, 3))
    gd = rng.standard_normal((8, 29, 31, 8))
    xp = rng.standard_normal((16, 64, 64, 16)).astype(np.float32)
    gp = rng.standard_normal((16, 32, 32, 16)).astype(np.float32)
    go = rng.standard_normal((16, 62, 62, 16)).astype(np.float32)    # 3x3 windows, stride 1 (overlap)
    a = rng.standard_normal(1 << 20) * 3
    ga = rng.standard_normal(1 << 20)
    a2 = rng.standard_normal((150_000, 7)) * 3
    ga2 = rng.standard_normal((150_000, 7))
    alpha7 = np.linspace(0.1, 0.3, 7)
    kdw = rng.standard_normal((32, 1, 3, 3)).astype(np.float32)     # depthwise, depth multiplier 2
    gdw = rng.standard_normal((16, 45, 43, 32)).astype(np.float32)
    k1dw = rng.standard_normal((16, 1, 3, 3)).astype(np.float32)    # depthwise, multiplier 1: register tiles
    b1dw = rng.standard_normal((16, 1)).astype(np.float32)
    bn_gamma, bn_beta = np.linspace(0.5, 2, 16, dtype=np.float32), np.linspace(-1, 1, 16, dtype=np.float32)
    _, bn_mean, _, bn_inv = normalization.batch_norm_forward(x, bn_gamma, bn_beta, 1e-5)
    xl = rng.standard_normal((4096, 96)).astype(np.float32)
    gl = rng.standard_normal((4096, 96)).astype(np.float32)
    ln_gamma = np.linspace(0.5, 2, 96, dtype=np.float32)
    _, ln_mean, ln_inv = normalization.layer_norm_forward(xl, ln_gamma, None, 1e-5)
    _, am = pool2d.max_pool2d_forward(xp)
    _, amo = pool2d.max_pool2d_forward(xp, 3, 1)

    ops = {
        "conv2d forward F=24": lambda: conv2d.conv2d_forward(x, k24, b24, 1, 1),
        "conv2d backward input F=24 stride 1": lambda: conv2d.conv2d_backward_input(g24, k24, x.shape, 1, 1),
        "conv2d backward input F=24 stride 2": lambda: conv2d.conv2d_backward_input(g24s, k24, x.shape, 2, 1),
        "conv2d backward kernels F=24": lambda: conv2d.conv2d_backward_kernels(g24, x, k24.shape, 1, 1),
        "conv2d backward kernels F=32": lambda: conv2d.conv2d_backward_kernels(g32, x, k32.shape, 1, 1),
        "conv2d backward kernels float64": lambda: conv2d.conv2d_backward_kernels(gd, xd, kd.shape, 1, 1),
        "conv2d backward bias": lambda: conv2d.conv2d_backward_bias(g24),
        "conv2d backward kernels dilated": lambda: conv2d.conv2d_backward_kernels(g32, x, k32.shape, 1, 2, 2),
        "conv2d backward input dilated": lambda: conv2d.conv2d_backward_input(g32, k32, x.shape, 1, 2, 2),
        "depthwise2d forward": lambda: depthwise2d.depthwise2d_forward(x, kdw, None, 1, 1),
        "depthwise2d backward input": lambda: depthwise2d.depthwise2d_backward_input(gdw, kdw, x.shape, 1, 1),
        "depthwise2d backward kernels": lambda: depthwise2d.depthwise2d_backward_kernels(gdw, x, kdw.shape, 1, 1),
        "depthwise2d forward, multiplier 1": lambda: depthwise2d.depthwise2d_forward(x, k1dw, b1dw, 1, 1),
        "depthwise2d backward input, multiplier 1":
            lambda: depthwise2d.depthwise2d_backward_input(g32[..., :16], k1dw, x.shape, 1, 1),
        "depthwise2d backward kernels, multiplier 1":
            lambda: depthwise2d.depthwise2d_backward_kernels(g32[..., :16], x, k1dw.shape, 1, 1),
        "conv2d direct forward F=24": lambda: direct.forward(x, k24, b24, 1, 1),
        "conv2d direct forward F=32": lambda: direct.forward(x, k32, b24[:1].repeat(32, 0), 1, 1),
        "conv2d direct backward input F=32": lambda: direct.backward_input(g32, k32, x.shape, 1, 1),
        "conv2d direct backward kernels F=32": lambda: direct.backward_kernels(g32, x, k32.shape, 1, 1),
        "conv2d direct backward input stride 2": lambda: direct.backward_input(g24s, k24, x.shape, 1, 1, (2, 2)),
        "batch_norm forward": lambda: normalization.batch_norm_forward(x, bn_gamma, bn_beta, 1e-5),
        "batch_norm backward": lambda: normalization.batch_norm_backward(g32[..., :16], x, bn_gamma, bn_mean, bn_inv),
        "layer_norm forward": lambda: normalization.layer_norm_forward(xl, ln_gamma, None, 1e-5),
        "layer_norm backward": lambda: normalization.layer_norm_backward(gl, xl, ln_gamma, ln_mean, ln_inv),
        "max_pool2d forward": lambda: pool2d.max_pool2d_forward(xp)[0],
        "max_pool2d backward": lambda: pool2d.max_pool2d_backward(gp, am, xp.shape),
        "max_pool2d backward overlapping": lambda: pool2d.max_pool2d_backward(go, amo, xp.shape, 3, 1),
        "avg_pool2d forward 3x3/1": lambda: pool2d.avg_pool2d_forward(xp, 3, 1),
        "avg_pool2d backward overlapping": lambda: pool2d.avg_pool2d_backward(go, xp.shape, 3, 1),
        "global_avg_pool2d forward": lambda: pool2d.global_avg_pool2d_forward(xp),
        "gelu forward": lambda: activations.forward("gelu", a),
        "sigmoid backward": lambda: activations.backward("sigmoid", ga, None, activations.forward("sigmoid", a)),
        "prelu slope gradient, one slope": lambda: activations.prelu_backward(ga, a, np.array([0.2]))[1],
        "prelu slope gradient, per channel": lambda: activations.prelu_backward(ga2, a2, alpha7)[1],
    }

    def digest(result):
        arrays = result if isinstance(result, tuple) else (result,)
        return hashlib.sha256(b"".join(np.ascontiguousarray(a).tobytes() for a in arrays)).hexdigest()

    results = {}
    for n_threads in (1, 2, 4):
        numba.set_num_threads(n_threads)
        for name, op in ops.items():
            results.setdefault(name, {})[n_threads] = sorted({digest(op()) for _ in range(3)})
    print("RESULTS " + json.dumps(results))
    """
)


@pytest.fixture(scope="module")
def digests():
    env = dict(os.environ, NUMBA_NUM_THREADS="4")
    result = subprocess.run([sys.executable, "-c", CHECKS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    line = next(ln for ln in result.stdout.splitlines() if ln.startswith("RESULTS "))
    return json.loads(line[len("RESULTS "):])


def test_every_op_was_checked_on_1_2_and_4_threads(digests):
    assert len(digests) == 34
    assert all(set(per_threads) == {"1", "2", "4"} for per_threads in digests.values())


@pytest.mark.parametrize("op", [
    "conv2d forward F=24", "conv2d backward input F=24 stride 1", "conv2d backward input F=24 stride 2",
    "conv2d backward kernels F=24", "conv2d backward kernels F=32", "conv2d backward kernels float64",
    "conv2d backward bias", "conv2d backward kernels dilated", "conv2d backward input dilated",
    "depthwise2d forward", "depthwise2d backward input", "depthwise2d backward kernels",
    "depthwise2d forward, multiplier 1", "depthwise2d backward input, multiplier 1",
    "depthwise2d backward kernels, multiplier 1",
    "conv2d direct forward F=24", "conv2d direct forward F=32", "conv2d direct backward input F=32",
    "conv2d direct backward kernels F=32", "conv2d direct backward input stride 2", "max_pool2d forward",
    "max_pool2d backward",
    "max_pool2d backward overlapping",
    "avg_pool2d forward 3x3/1", "avg_pool2d backward overlapping", "global_avg_pool2d forward", "gelu forward",
    "sigmoid backward", "prelu slope gradient, one slope", "prelu slope gradient, per channel",
    "batch_norm forward", "batch_norm backward", "layer_norm forward", "layer_norm backward",
])
def test_same_bits_on_every_call_and_thread_count(digests, op):
    per_threads = digests[op]
    for n_threads, seen in per_threads.items():
        assert len(seen) == 1, f"{op}: {len(seen)} different results in 3 calls on {n_threads} thread(s)"
    assert len({seen[0] for seen in per_threads.values()}) == 1, f"{op}: results differ between 1, 2 and 4 threads"


CNN_FITS = textwrap.dedent(
    """
    import hashlib
    import numba
    import numpy as np
    from kernels import activations, conv2d, normalization, pool2d, threads
    from layers import BatchNormalization, Convolution2D, Dense, Flatten, MaxPooling2D, Sequential, get_activation
    from layers.losses import SparseCategoricalCrossEntropy
    from optimizers import Adam

    threads.PARALLEL_MIN_ELEMENTS = 0
    conv2d.cpu.NUMBA_GEMM_MIN_MACS = 0
    pool2d.cpu.PARALLEL_MIN_ELEMENTS = 0
    activations.cpu.PARALLEL_MIN_SIZE = activations.cpu.PARALLEL_MIN_SIZE_COMPUTE = 1
    normalization.cpu.PARALLEL_MIN_ELEMENTS = 0

    rng = np.random.default_rng(0)
    X = rng.random((192, 12, 12, 1)).astype(np.float32)
    y = rng.integers(0, 10, 192)

    def fit_digest():
        model = Sequential([
            Convolution2D(1, 24, 3, padding=1, seed=0), get_activation("relu"), MaxPooling2D(2),
            Convolution2D(24, 32, 3, padding=1, seed=1), BatchNormalization(32), get_activation("relu"),
            MaxPooling2D(2),
            Flatten(), Dense(288, 10, seed=2),
        ])
        model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), optimizer=Adam(1e-3), epochs=2,
                  batch_size=64, shuffle=True, seed=0, verbose=0)
        weights = b"".join(np.ascontiguousarray(p).tobytes() for layer in model.layers for p in layer.params)
        return hashlib.sha256(weights).hexdigest()

    digests = []
    for n_threads in (1, 4, 4, 2):
        numba.set_num_threads(n_threads)
        digests.append(fit_digest())
    print("FITS " + " ".join(digests))
    """
)


def test_cnn_fit_gives_bit_identical_weights_on_any_thread_count():
    """Two fits with one seed give the same weights on 1, 2 and 4 threads (examples/digits_cnn.py's CNN, smaller,
    with a batch normalization)."""
    env = dict(os.environ, NUMBA_NUM_THREADS="4")
    result = subprocess.run([sys.executable, "-c", CNN_FITS], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    digests = next(ln for ln in result.stdout.splitlines() if ln.startswith("FITS ")).split()[1:]
    assert len(digests) == 4
    assert len(set(digests)) == 1, f"weights differ between fits: {digests}"
