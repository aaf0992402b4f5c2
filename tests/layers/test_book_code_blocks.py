"""The book's activation code blocks, pasted as user code, agree with our layers (forward and backward).

Sigmoid (section 7.4.1), Tanh (7.5.1), HardTanh (7.7.1), ReLU (8.2.1) and
LeakyReLU (8.4.1.1), copied from ``000_8814347de1640870.txt`` as printed, live
in ``book_code_blocks.py`` beside this file. HardSigmoid (7.7.1) is checked
too; Softsign (7.6.1) is checked in its printed form, which fails with a NameError (``softsign_grad`` is never
defined), and with that one name fixed.

Inputs avoid the kinks (x = 0 for ReLU/LeakyReLU, x = +-1 for HardTanh,
x = +-3 for HardSigmoid), where the book's code and our layers may take
different one-sided derivatives (ours are documented in layers.activations).
"""

from __future__ import annotations

import numpy as np
import pytest

import layers
from tests.layers.book_code_blocks import HardSigmoid, HardTanh, LeakyReLU, ReLU, Sigmoid, Softsign, Tanh


# ----------------------------------------------------------------------------- the comparison
PAIRS = [
    ("Sigmoid", Sigmoid, layers.Sigmoid),
    ("Tanh", Tanh, layers.Tanh),
    ("HardSigmoid", HardSigmoid, layers.HardSigmoid),
    ("HardTanh", HardTanh, layers.HardTanh),
    ("ReLU", ReLU, layers.ReLU),
    ("LeakyReLU", LeakyReLU, layers.LeakyReLU),
    ("LeakyReLU(0.2)", lambda: LeakyReLU(alpha=0.2), lambda: layers.LeakyReLU(alpha=0.2)),
]


def _inputs(dtype):
    rng = np.random.default_rng(7)
    x = rng.uniform(-6, 6, (64, 33))
    kinks = np.array([0.0, -1.0, 1.0, -3.0, 3.0])
    near = np.abs(x[..., None] - kinks).min(axis=-1) < 1e-3
    return np.where(near, x + 0.01, x).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("label,book_cls,ours_cls", PAIRS, ids=[p[0] for p in PAIRS])
def test_book_block_equals_our_layer(label, book_cls, ours_cls, dtype):
    x = _inputs(dtype)
    g = np.random.default_rng(8).standard_normal(x.shape).astype(dtype)
    book, ours = book_cls(), ours_cls()
    assert isinstance(book, layers.Layer) and book.params == [] and book.training

    y_book, y_ours = book.forward(x), ours.forward(x)
    assert y_ours.dtype == dtype and y_ours.shape == x.shape
    rtol = 1e-12 if dtype == np.float64 else 4e-7
    np.testing.assert_allclose(y_ours, y_book, rtol=rtol, atol=0)

    (gi_book, pg_book), (gi_ours, pg_ours) = book.backward(g), ours.backward(g)
    assert pg_book is None and pg_ours is None
    assert gi_ours.dtype == dtype  # the book's int/float64 masks may promote float32; ours do not
    np.testing.assert_allclose(gi_ours, gi_book, rtol=rtol, atol=rtol * np.abs(g).max())


def test_book_softsign_block_has_the_typo_and_the_math_is_ours():
    x = _inputs(np.float64)
    g = np.ones_like(x)
    book = Softsign()
    np.testing.assert_allclose(layers.Softsign().forward(x), book.forward(x), rtol=1e-15)
    with pytest.raises(NameError, match="softsign_grad"):
        book.backward(g)
    ours = layers.Softsign()
    ours.forward(x)
    fixed_grad = 1 / (1 + np.abs(x)) ** 2  # the printed block's `grad`, eq. 7.7
    np.testing.assert_allclose(ours.backward(g)[0], g * fixed_grad, rtol=1e-15)
