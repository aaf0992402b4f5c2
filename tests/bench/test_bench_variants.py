"""The convolution variants of ``python -m bench kernels`` (bench/kernel_variants.py): every case runs, its
book version computes what ours does, and the targets judge them as convolutions."""

from __future__ import annotations

import numpy as np
import pytest

from bench import kernel_variants as kv
from bench import kernels as kb


@pytest.mark.parametrize("op", kv.OPS)
def test_every_variant_case_runs_each_direction(op):
    (shape, filters), = kv.QUICK_SHAPES[op]
    case = kv.variant_case(op, shape, filters, np.float32, "cpu", 0, book_images=1, with_torch=False)
    assert case.unit == "flop" and case.work["backward"] == 2 * case.work["forward"] > 0
    for direction in kb.DIRECTIONS:
        case.ours[direction]()
    assert case.book_images == 1
    for direction in ("forward", "backward"):
        case.book[direction]()


@pytest.mark.parametrize("op", ["depthwise2d", "conv2d_dilated", "conv_transpose2d"])
def test_book_and_ours_agree(op):
    (shape, filters), = kv.QUICK_SHAPES[op]
    case = kv.variant_case(op, shape, filters, np.float64, "cpu", 0, book_images=shape[0], with_torch=False)
    np.testing.assert_allclose(case.ours["forward"](), case.book["forward"](), rtol=1e-10, atol=1e-10)
    for ours, book in zip(case.ours["backward"](), case.book["backward"]()):
        np.testing.assert_allclose(ours, book, rtol=1e-10, atol=1e-10)


def test_book_block_matches_the_layers():
    (shape, _), = kv.QUICK_SHAPES["resnet_block"]
    case = kv.variant_case("resnet_block", shape, shape[3], np.float64, "cpu", 0, book_images=shape[0],
                           with_torch=False)
    np.testing.assert_allclose(case.ours["forward"](), case.book["forward"](), rtol=1e-8, atol=1e-8)
    dx, grads = case.ours["backward"]()
    book_dx, dk1, dk2 = case.book["backward"]()
    np.testing.assert_allclose(dx, book_dx, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(grads[0], dk1, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(grads[4], dk2, rtol=1e-8, atol=1e-8)


def test_variants_are_judged_against_the_convolution_target():
    row = {"op": "depthwise2d", "shape": [32, 32, 32, 64], "filters": 64, "device": "cpu", "dtype": "float32",
           "direction": "forward+backward", "ours": {"median_s": 0.014},
           "torch": {"median_s": 0.010, "ours_over_torch": 1.4}, "book": {"speedup": 900.0}}
    targets, _ = kb.check_results([row], ["cpu"])
    assert {t["target"]: t["met"] for t in targets["cpu"]} == {"<= 1.5x PyTorch": True, ">= 100x book": True}


def test_kernels_runs_only_the_chosen_ops_on_the_chosen_threads(capsys):
    from bench import cli

    assert cli.main(["kernels", "--device", "cpu", "--quick", "--no-torch", "--book-images", "0",
                     "--ops", "conv_transpose2d", "--threads", "1", "--quiet"]) == 0
    table = [line.split()[0] for line in capsys.readouterr().out.splitlines() if "4x6x6x8" in line]
    assert table == ["conv_transpose2d"] * 3
