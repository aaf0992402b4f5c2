"""kernels.recurrent: the fused fast path against the book-style per-step reference, on every device.

The reference (kernels/recurrent/reference.py) is the spec; its own gradients
are checked against central differences in tests/layers/test_recurrent.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import backend
import kernels.recurrent as rk
from kernels.recurrent import cpu, gpu, reference, sequence

B, T, I, H = 3, 6, 4, 5


def _case(dtype, masked, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((B, T, I)).astype(dtype)
    mask = None
    if masked:  # a gap inside, padding at the end, an empty sequence
        mask = np.ones((B, T), dtype=dtype)
        mask[0, 2] = 0
        mask[1, 4:] = 0
        mask[2, :] = 0
    dy = rng.standard_normal((B, T, H)).astype(dtype)
    states = [rng.standard_normal((B, H)).astype(dtype) for _ in range(4)]
    return rng, x, mask, dy, states


def _params(rng, dtype, *shapes):
    return [(0.5 * rng.standard_normal(s)).astype(dtype) for s in shapes]


def _on(device, arrays):
    return [None if a is None else backend.to_device(a, device) for a in arrays]


def _close(fast, ref, dtype):
    tol = 1e-12 if dtype == np.float64 else 2e-5
    fast, ref = backend.to_numpy(fast), backend.to_numpy(ref)
    assert fast.dtype == ref.dtype == dtype and fast.shape == ref.shape
    scale = max(np.abs(ref).max(initial=0.0), 1.0)
    assert np.abs(fast - ref).max(initial=0.0) <= tol * scale


def _compare(fast_run, ref_run, dtype):
    (y, final, grads), (y_r, final_r, grads_r) = fast_run, ref_run
    _close(y, y_r, dtype)
    for a, b in zip(final, final_r):
        _close(a, b, dtype)
    dx, g, d0 = grads
    dx_r, g_r, d0_r = grads_r
    _close(dx, dx_r, dtype)
    assert sorted(g) == sorted(g_r)
    for key in g:
        _close(g[key], g_r[key], dtype)
    for a, b in zip(d0, d0_r):
        _close(a, b, dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("masked", [False, True], ids=["nomask", "mask"])
class TestFastAgainstReference:
    def test_simple_rnn(self, device, dtype, reverse, masked):
        for activation in rk.RNN_ACTIVATIONS:
            rng, x, mask, dy, (h0, dh, _, _) = _case(dtype, masked)
            W, U, b = _params(rng, dtype, (I, H), (H, H), (H,))
            runs = []
            for module in ("fast", "reference"):
                args = _on(device.name, [x, W, U, b, h0, mask]) if module == "fast" else [x, W, U, b, h0, mask]
                fwd = rk.rnn_forward if module == "fast" else reference.rnn_forward
                y, h, cache = fwd(*args, activation=activation, reverse=reverse)
                assert (cache.module is sequence) == (module == "fast")
                dx, grads, dh0 = rk.rnn_backward(cache, *_on(device.name if module == "fast" else "cpu", [dy, dh]))
                runs.append((y, (h,), (dx, grads, (dh0,))))
            _compare(*runs, dtype)

    def test_lstm(self, device, dtype, reverse, masked):
        for peephole in (False, True):
            rng, x, mask, dy, (h0, c0, dh, dc) = _case(dtype, masked)
            W, U, b, p = _params(rng, dtype, (I, 4 * H), (H, 4 * H), (4 * H,), (3, H))
            p = p if peephole else None
            runs = []
            for module in ("fast", "reference"):
                arrays = [x, W, U, b, h0, c0, p, mask]
                args = _on(device.name, arrays) if module == "fast" else arrays
                fwd = rk.lstm_forward if module == "fast" else reference.lstm_forward
                y, (h, c), cache = fwd(*args[:7], mask=args[7], reverse=reverse)
                where = device.name if module == "fast" else "cpu"
                dx, grads, (dh0, dc0) = rk.lstm_backward(cache, *_on(where, [dy, dh, dc]))
                runs.append((y, (h, c), (dx, grads, (dh0, dc0))))
            _compare(*runs, dtype)

    def test_gru(self, device, dtype, reverse, masked):
        for reset_after in (True, False):
            rng, x, mask, dy, (h0, dh, _, _) = _case(dtype, masked)
            W, U, b, b_h = _params(rng, dtype, (I, 3 * H), (H, 3 * H), (3 * H,), (3 * H,))
            b_h = b_h if reset_after else None
            runs = []
            for module in ("fast", "reference"):
                arrays = [x, W, U, b, b_h, h0, mask]
                args = _on(device.name, arrays) if module == "fast" else arrays
                fwd = rk.gru_forward if module == "fast" else reference.gru_forward
                y, h, cache = fwd(*args, reset_after=reset_after, reverse=reverse)
                dx, grads, dh0 = rk.gru_backward(cache, *_on(device.name if module == "fast" else "cpu", [dy, dh]))
                runs.append((y, (h,), (dx, grads, (dh0,))))
            _compare(*runs, dtype)


def test_padded_steps_keep_the_state_output_zero_and_get_no_gradient():
    rng, x, mask, dy, (h0, c0, dh, dc) = _case(np.float64, True)
    W, U, b = _params(rng, np.float64, (I, 4 * H), (H, 4 * H), (4 * H,))
    y, (h, c), cache = rk.lstm_forward(x, W, U, b, h0, c0, mask=mask)
    np.testing.assert_array_equal(y[mask == 0], 0.0)
    np.testing.assert_array_equal(h[2], h0[2])  # sequence 2 is all padding
    np.testing.assert_array_equal(c[2], c0[2])
    _, (h_short, _), _ = rk.lstm_forward(x[1:2, :4], W, U, b, h0[1:2], c0[1:2])
    np.testing.assert_allclose(h[1], h_short[0], rtol=1e-14)  # padding at the end changes nothing
    dx, _, (dh0, dc0) = rk.lstm_backward(cache, dy, dh, dc)
    np.testing.assert_array_equal(dx[mask == 0], 0.0)
    np.testing.assert_array_equal(dh0[2], dh[2])  # the state's gradient passes through untouched
    np.testing.assert_array_equal(dc0[2], dc[2])


def test_without_sequences_only_the_final_state_is_built():
    rng, x, _, _, (h0, dh, _, _) = _case(np.float32, False)
    W, U, b = _params(rng, np.float32, (I, H), (H, H), (H,))
    y, h, cache = rk.rnn_forward(x, W, U, b, h0, return_sequences=False)
    y_all, h_all, _ = rk.rnn_forward(x, W, U, b, h0)
    assert y is None and h.dtype == np.float32
    np.testing.assert_array_equal(h, y_all[:, -1])
    dx, grads, dh0 = rk.rnn_backward(cache, None, dh)
    dy = np.zeros((B, T, H), np.float32)
    dy[:, -1] = dh
    dx_all, grads_all, _ = rk.rnn_backward(rk.rnn_forward(x, W, U, b, h0)[2], dy, None)
    np.testing.assert_allclose(dx, dx_all, rtol=1e-6, atol=1e-7)


def test_dispatch_fast_path_and_fallbacks():
    x32 = np.zeros((2, 3, 4), np.float32)
    assert rk.implementation(x32, x32) is cpu
    assert rk.implementation(x32, x32.astype(np.float64)) is reference  # mixed dtypes
    assert rk.implementation(x32.astype(np.float16)) is reference
    assert rk.implementation(x32, None) is cpu  # absent optional arrays are ignored


def test_float16_falls_back_to_the_reference_and_keeps_its_dtype():
    rng, x, _, _, _ = _case(np.float16, False)
    W, U, b = _params(rng, np.float16, (I, 3 * H), (H, 3 * H), (3 * H,))
    y, h, cache = rk.gru_forward(x, W, U, b, None, reset_after=False)
    assert cache.module is reference and y.dtype == np.float16 and h.dtype == np.float16


def test_same_seed_same_bits():
    rng, x, mask, dy, (h0, c0, _, _) = _case(np.float32, True)
    W, U, b = _params(rng, np.float32, (I, 4 * H), (H, 4 * H), (4 * H,))
    runs = []
    for _ in range(2):
        y, _, cache = rk.lstm_forward(x, W, U, b, h0, c0, mask=mask)
        runs.append((y, rk.lstm_backward(cache, dy)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    for key in runs[0][1][1]:
        np.testing.assert_array_equal(runs[0][1][1][key], runs[1][1][1][key])


def test_gpu_sources_name_every_step_kernel():
    """Every CUDA kernel the GPU step functions launch has its text in gpu.SOURCES (read by the NVRTC check)."""
    names = {"rnn_tanh_fwd", "rnn_relu_fwd", "rnn_tanh_bwd", "rnn_relu_bwd", "lstm_fwd", "lstm_bwd", "gru_fwd",
             "gru_bwd", "gru1_gates_fwd", "gru1_state_fwd", "gru1_state_bwd", "gru1_gates_bwd"}
    assert set(gpu.SOURCES) == names
    for name, (in_params, out_params, operation) in gpu.SOURCES.items():
        declared = {p.split()[-1] for p in (in_params + ", " + out_params).split(",")}
        assert "i" not in declared, name  # CuPy reserves i
        assert operation.count("{") == operation.count("}"), name
    for name in ("rnn_fwd", "rnn_bwd", "lstm_fwd", "lstm_bwd", "gru_fwd", "gru_bwd", "gru1_gates_fwd",
                 "gru1_state_fwd", "gru1_state_bwd", "gru1_gates_bwd"):
        assert callable(getattr(cpu, name)) and callable(getattr(gpu, name)), name
