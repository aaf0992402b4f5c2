"""Data augmentation layers (book section 25.6): the transforms against per-image NumPy definitions, their
adjoints by central differences, seeds, dtypes, and their life inside ``fit`` (training only)."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from layers import (Dense, Flatten, GaussianNoise, RandomFlip, RandomRotation, RandomTranslation, Sequential)
from layers.losses import SparseCategoricalCrossEntropy
from layers.testing import check_gradients

AUGMENTATIONS = [lambda: RandomFlip("horizontal_and_vertical", seed=0), lambda: RandomTranslation((2, 1), seed=0),
                 lambda: RandomRotation(25, seed=0), lambda: GaussianNoise(0.3, seed=0)]
NAMES = ["flip", "translation", "rotation", "noise"]


@pytest.mark.parametrize("build", AUGMENTATIONS, ids=NAMES)
def test_evaluation_mode_is_the_identity_at_no_cost(build):
    layer = build().eval()
    x = np.random.default_rng(0).standard_normal((3, 5, 6, 2)).astype(np.float32)
    assert layer.forward(x) is x
    g = np.ones_like(x)
    assert layer.backward(g)[0] is g


@pytest.mark.parametrize("build", AUGMENTATIONS, ids=NAMES)
def test_backward_is_the_adjoint(device, float64, build):
    x = backend.to_device(np.random.default_rng(1).standard_normal((3, 5, 6, 2)))
    report = check_gradients(build(), x, reset=lambda layer: layer.reset_rng(0))
    assert report.ok(1e-7), str(report)


@pytest.mark.parametrize("build", AUGMENTATIONS, ids=NAMES)
def test_seeded_float32_and_changes_from_batch_to_batch(build):
    x = np.random.default_rng(2).standard_normal((8, 6, 6, 3)).astype(np.float32)
    a, b = build(), build()
    first = a.forward(x)
    assert first.dtype == np.float32 and first.shape == x.shape
    np.testing.assert_array_equal(first, b.forward(x))          # same seed, same transform
    assert not np.array_equal(a.forward(x), first)               # the next batch draws again


def test_flip_mirrors_chosen_images():
    x = np.random.default_rng(3).standard_normal((16, 4, 5, 2))
    layer = RandomFlip("horizontal", seed=1)
    y = layer.forward(x)
    flipped = [b for b in range(16) if not np.array_equal(y[b], x[b])]
    assert 0 < len(flipped) < 16
    for b in range(16):
        assert np.array_equal(y[b], x[b, :, ::-1]) if b in flipped else np.array_equal(y[b], x[b])


def _shift(image, dy, dx):
    """``image`` moved down by ``dy`` and right by ``dx`` pixels, zeros where nothing comes in."""
    out = np.zeros_like(image)
    height, width = image.shape[:2]
    for h in range(height):
        for w in range(width):
            if 0 <= h - dy < height and 0 <= w - dx < width:
                out[h, w] = image[h - dy, w - dx]
    return out


def test_translation_is_a_shift_with_zero_fill():
    x = np.random.default_rng(4).standard_normal((12, 6, 7, 1)) + 10.0  # no zeros inside
    y = RandomTranslation(2, seed=2).forward(x)
    for b in range(12):
        shifts = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                  if np.array_equal(y[b], _shift(x[b], dy, dx))]
        assert len(shifts) == 1, b


def _rotate_by_loops(image, degrees):
    """Bilinear rotation about the centre, zeros outside: one pixel at a time."""
    height, width, _ = image.shape
    theta = np.radians(degrees)
    cy, cx = (height - 1) / 2, (width - 1) / 2
    out = np.zeros_like(image)
    for h in range(height):
        for w in range(width):
            sy = cy + np.cos(theta) * (h - cy) - np.sin(theta) * (w - cx)
            sx = cx + np.sin(theta) * (h - cy) + np.cos(theta) * (w - cx)
            y0, x0 = int(np.floor(sy)), int(np.floor(sx))
            for yy, xx in ((y0, x0), (y0, x0 + 1), (y0 + 1, x0), (y0 + 1, x0 + 1)):
                if 0 <= yy < height and 0 <= xx < width:
                    out[h, w] += (1 - abs(sy - yy)) * (1 - abs(sx - xx)) * image[yy, xx]
    return out


def test_rotation_matches_per_pixel_bilinear_loops():
    x = np.random.default_rng(5).standard_normal((4, 9, 8, 2))
    layer = RandomRotation(30, seed=3)
    y = layer.forward(x)
    assert len(set(np.round(layer.angles, 6))) == 4 and np.abs(layer.angles).max() <= 30
    for b in range(4):
        np.testing.assert_allclose(y[b], _rotate_by_loops(x[b], layer.angles[b]), atol=1e-12)


def test_rotation_by_zero_degrees_and_a_zero_shift_are_the_identity():
    x = np.random.default_rng(6).standard_normal((2, 5, 5, 1))
    assert RandomRotation(0.0).forward(x) is x
    assert RandomTranslation(0).forward(x) is x
    assert GaussianNoise(0.0).forward(x) is x


def test_noise_has_the_asked_spread():
    x = np.zeros((64, 8, 8, 4), np.float32)
    y = GaussianNoise(0.5, seed=0).forward(x)
    assert abs(float(y.std()) - 0.5) < 0.02 and abs(float(y.mean())) < 0.02


def test_fit_augments_in_training_only():
    seen = []

    class Spy(RandomTranslation):
        def forward(self, input_data):
            out = super().forward(input_data)
            seen.append((self.training, out is input_data))
            return out

    rng = np.random.default_rng(7)
    X = rng.standard_normal((32, 6, 6, 1)).astype(np.float32)
    y = rng.integers(0, 2, 32)
    model = Sequential([Spy(1, seed=0), Flatten(), Dense(36, 2, seed=0)])
    model.fit(X, y, loss=SparseCategoricalCrossEntropy(from_logits=True), optimizer="adam", epochs=2, batch_size=16,
              seed=0, verbose=0)
    training = [identity for mode, identity in seen if mode]
    assert len(training) == 4 and not any(training)     # 2 epochs x 2 batches, each transformed
    assert all(identity for mode, identity in seen if not mode)
    seen.clear()
    model.predict(X)
    assert seen and all(not mode and identity for mode, identity in seen)


def test_bad_arguments_and_inputs():
    with pytest.raises(ValueError, match=r"RandomFlip: mode: expected one of 'horizontal', 'vertical'"):
        RandomFlip("diagonal")
    with pytest.raises(ValueError, match=r"max_degrees: expected a number >= 0, got -1"):
        RandomRotation(-1)
    with pytest.raises(ValueError, match=r"RandomTranslation: input_data: expected a 4-D array"):
        RandomTranslation(1).forward(np.ones((2, 3), np.float32))
    with pytest.raises(RuntimeError, match=r"RandomFlip.backward called before forward"):
        RandomFlip().backward(np.ones((1, 2, 2, 1)))
