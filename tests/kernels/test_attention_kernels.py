"""The fused attention softmax (kernels.attention) against its NumPy spec, on every device that answers."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from kernels import attention
from kernels.attention import cpu, reference


def _scores(rng, shape, dtype):
    return (3 * rng.standard_normal(shape)).astype(dtype)


def _masks(rng, queries, keys):
    allowed = rng.random((queries, keys)) > 0.3
    allowed[1] = False  # a fully masked row
    per_sample = rng.random((2, 1, queries, keys)) > 0.5
    padding = np.ones((2, 1, 1, keys), dtype=bool)
    padding[1, ..., -2:] = False
    return {
        "none": None,
        "bool (Tq, Tk)": allowed,
        "additive (Tq, Tk)": np.where(allowed, 0.0, -np.inf),
        "finite additive (Tk,)": rng.standard_normal(keys),
        "per sample (B, 1, Tq, Tk)": per_sample,
        "padding (B, 1, 1, Tk)": padding,
        "per head (B, H, Tq, Tk)": rng.random((2, 3, queries, keys)) > 0.4,
    }


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("causal", [False, True])
def test_forward_and_backward_match_the_reference(device, dtype, causal):
    rng = np.random.default_rng(0)
    shape = (2, 3, 5, 7)
    rtol = 2e-6 if dtype == np.float32 else 1e-13
    s = _scores(rng, shape, dtype)
    g = rng.standard_normal(shape).astype(dtype)
    for name, mask in _masks(rng, 5, 7).items():
        mask4 = attention.prepare_mask(mask, shape, np.dtype(dtype))
        expected = reference.softmax_forward(s, 0.7, mask4, causal)
        p = attention.softmax_forward(backend.to_device(s), 0.7,
                                      None if mask is None else backend.to_device(mask), causal)
        assert p.dtype == dtype and p.shape == shape, name
        np.testing.assert_allclose(backend.to_numpy(p), expected, rtol=rtol, atol=rtol * 1e-2, err_msg=name)
        d = attention.softmax_backward(backend.to_device(g), p, 0.7, causal)
        assert d.dtype == dtype and d.shape == shape
        np.testing.assert_allclose(backend.to_numpy(d), reference.softmax_backward(g, expected, 0.7),
                                   rtol=10 * rtol, atol=10 * rtol, err_msg=name)


def test_the_cpu_path_is_the_numba_kernel():
    s = np.zeros((1, 2, 3), np.float32)
    assert attention.implementation(s) is cpu
    assert attention.implementation(s.astype(np.float16)) is reference
    assert attention.implementation(np.zeros((1, 3, 2), np.float32).swapaxes(1, 2)) is reference


def test_fully_masked_rows_are_zero_with_zero_gradient_and_no_nan(device):
    s = backend.to_device(np.random.default_rng(1).standard_normal((1, 2, 3, 4)).astype(np.float32))
    mask = backend.to_device(np.zeros((3, 4), dtype=bool))
    p = attention.softmax_forward(s, 0.5, mask)
    assert not bool(np.isnan(backend.to_numpy(p)).any())
    np.testing.assert_array_equal(backend.to_numpy(p), 0.0)
    g = attention.softmax_backward(backend.to_device(np.ones((1, 2, 3, 4), np.float32)), p, 0.5)
    np.testing.assert_array_equal(backend.to_numpy(g), 0.0)


def test_large_scores_do_not_overflow(device):
    s = backend.to_device(np.array([[[1000.0, -1000.0, 999.0]]], dtype=np.float32))
    p = backend.to_numpy(attention.softmax_forward(s, 1.0))
    np.testing.assert_allclose(p, [[[1 / (1 + np.exp(-1.0)), 0.0, np.exp(-1.0) / (1 + np.exp(-1.0))]]], rtol=1e-6)


def test_bool_and_additive_masks_agree_and_rows_sum_to_one():
    rng = np.random.default_rng(2)
    s = _scores(rng, (4, 6, 6), np.float32)
    allowed = rng.random((6, 6)) > 0.5
    allowed[:, 0] = True
    a = attention.softmax_forward(s, 0.3, allowed)
    b = attention.softmax_forward(s, 0.3, np.where(allowed, 0.0, -np.inf).astype(np.float32))
    np.testing.assert_array_equal(a, b)
    np.testing.assert_allclose(a.sum(axis=-1), 1.0, rtol=1e-6)
    assert not a[:, ~allowed].any()


def test_causal_rows_see_only_the_past():
    s = _scores(np.random.default_rng(3), (2, 5, 5), np.float64)
    p = attention.softmax_forward(s, 1.0, causal=True)
    assert not np.triu(np.ones((5, 5), bool), 1)[None].__and__(p != 0).any()
    np.testing.assert_allclose(p[:, 0, 0], 1.0)


def test_out_may_be_the_input():
    s = _scores(np.random.default_rng(4), (2, 3, 4, 4), np.float32)
    expected = attention.softmax_forward(s, 0.5)
    same = attention.softmax_forward(s, 0.5, out=s)
    assert same is s
    np.testing.assert_array_equal(same, expected)


@pytest.mark.parametrize("mask, error, match", [
    (np.zeros((3, 4), np.int64), TypeError, r"mask: expected a bool .* got dtype int64"),
    ([[True]], TypeError, r"mask: expected a bool or float array, got list"),
    (np.zeros((3, 5), bool), ValueError,
     r"mask: expected a shape that broadcasts .* last axis Tk=4.*got shape \(3, 5\)"),
    (np.zeros((2, 4), bool), ValueError, r"mask: expected a shape that broadcasts to the scores \(2, 2, 3, 4\)"),
    (np.zeros((1, 2, 2, 3, 4), bool), ValueError, r"got shape \(1, 2, 2, 3, 4\)"),
])
def test_bad_masks_are_named(mask, error, match):
    with pytest.raises(error, match=match):
        attention.softmax_forward(np.zeros((2, 2, 3, 4), np.float32), mask=mask, where="MultiHeadAttention")


def test_bad_scores_are_named():
    with pytest.raises(ValueError, match=r"scores: expected \(B, Tq, Tk\) or \(B, H, Tq, Tk\), got shape \(3, 4\)"):
        attention.softmax_forward(np.zeros((3, 4), np.float32))
    with pytest.raises(TypeError, match="scores: expected a floating-point array"):
        attention.softmax_forward(np.zeros((1, 3, 4), np.int32))
    with pytest.raises(ValueError, match=r"grad_output: expected shape \(1, 3, 4\)"):
        attention.softmax_backward(np.zeros((1, 4, 3), np.float32), np.zeros((1, 3, 4), np.float32))

