"""Random flips, translations (pad and crop) and small rotations of NHWC batches (book section 25.6).

Every transform is one gather over the whole batch (per-image parameters
broadcast into index arrays), and its backward is the adjoint: the same
flip; the scatter of the crop back into the padded image; for the rotation,
the bilinear weights' scatter-add (NumPy's ``add.at``, a fixed order on the
CPU; ``cupyx.scatter_add``, atomic, on the GPU).
"""

from __future__ import annotations

import math

from backend.checks import check_choice, check_nonnegative, check_pair

from .base import RandomAugmentation


class RandomFlip(RandomAugmentation):
    """Mirrors each image with probability 1/2 (left-right, up-down or both, drawn independently).

    Parameters
    ----------
    mode : {"horizontal", "vertical", "horizontal_and_vertical"}
        Which flips (default ``"horizontal"``: ``y[b, h, w] = x[b, h, W - 1 - w]`` for the chosen images).
    seed : int, optional

    Shapes: ``(B, H, W, C)`` -> the same. Backward: the same flips of ``g`` (a flip is its own adjoint).
    """

    MODES = ("horizontal", "vertical", "horizontal_and_vertical")

    def __init__(self, mode="horizontal", seed=None):
        super().__init__(seed)
        self.mode = check_choice(mode, "mode", self.MODES, "RandomFlip")
        self._masks = None

    def _flip(self, a, xp):
        for axis, mask in self._masks:
            a = xp.where(mask[:, None, None, None], xp.flip(a, axis=axis), a)
        return a

    def _transform(self, x, xp, rng):
        axes = {"horizontal": (2,), "vertical": (1,), "horizontal_and_vertical": (1, 2)}[self.mode]
        self._masks = [(axis, rng.random(x.shape[0]) < 0.5) for axis in axes]
        return self._flip(x, xp)

    def _adjoint(self, grad_output, xp):
        return self._flip(grad_output, xp)


class RandomTranslation(RandomAugmentation):
    """Shifts each image by a random whole number of pixels, filling with zeros (pad-and-crop).

    Each image is padded with ``max_shift`` zeros on every side and a random
    window of the original size is cut out of it: a shift ``(dy, dx)``, each
    uniform in ``[-max_shift, max_shift]``.

    Parameters
    ----------
    max_shift : int or (int, int)
        Largest shift in pixels, ``(mh, mw)`` (default 2).
    seed : int, optional

    Shapes: ``(B, H, W, C)`` -> the same. Formulas::

        y[b, h, w, c]  = x[b, h - dy_b, w - dx_b, c]   (0 outside)
        dx[b, h, w, c] = g[b, h + dy_b, w + dx_b, c]   (0 outside)
    """

    def __init__(self, max_shift=2, seed=None):
        super().__init__(seed)
        self.max_shift = check_pair(max_shift, "max_shift", 0, "RandomTranslation")
        self._index = None

    def _is_identity(self):
        return self.max_shift == (0, 0)

    def _transform(self, x, xp, rng):
        batch, height, width, _ = x.shape
        mh, mw = self.max_shift
        dy = rng.integers(-mh, mh + 1, size=batch)
        dx = rng.integers(-mw, mw + 1, size=batch)
        rows = (mh - dy)[:, None, None] + xp.arange(height)[None, :, None]
        cols = (mw - dx)[:, None, None] + xp.arange(width)[None, None, :]
        self._index = (xp.arange(batch)[:, None, None], rows, cols)
        padded = xp.pad(x, ((0, 0), (mh, mh), (mw, mw), (0, 0)))
        return padded[self._index]

    def _adjoint(self, grad_output, xp):
        batch, height, width, channels = grad_output.shape
        mh, mw = self.max_shift
        padded = xp.zeros((batch, height + 2 * mh, width + 2 * mw, channels), dtype=grad_output.dtype)
        padded[self._index] = grad_output  # a crop: every target appears once, so assignment is the adjoint
        return xp.ascontiguousarray(padded[:, mh:mh + height, mw:mw + width, :])


class RandomRotation(RandomAugmentation):
    """Rotates each image about its centre by a random angle in ``[-max_degrees, max_degrees]`` (bilinear, zero fill).

    Parameters
    ----------
    max_degrees : float >= 0
        Largest angle in degrees (default 10: small rotations, as for handwritten digits).
    seed : int, optional

    Attributes
    ----------
    angles : array, shape (B,)
        The angles (degrees) of the last training batch.

    Shapes: ``(B, H, W, C)`` -> the same. Formulas (``c = ((H - 1)/2, (W - 1)/2)``, angle θ_b)::

        (sy, sx) = c + R(θ_b) ((h, w) - c),   y[b, h, w] = Σ_{4 neighbours n of (sy, sx)} w_n x[b, n]   (0 outside)
        dx[b, n] += w_n g[b, h, w]            (the adjoint: each output sends its gradient to its 4 sources)
    """

    def __init__(self, max_degrees=10.0, seed=None):
        super().__init__(seed)
        self.max_degrees = check_nonnegative(max_degrees, "max_degrees", "RandomRotation")
        self._taps = None
        self.angles = None

    def _is_identity(self):
        return self.max_degrees == 0.0

    def _transform(self, x, xp, rng):
        batch, height, width, channels = x.shape
        dtype = x.dtype
        limit = math.radians(self.max_degrees)
        theta = ((rng.random(batch) * 2 - 1) * limit).astype(dtype)
        self.angles = theta * dtype.type(180 / math.pi)
        cos, sin = xp.cos(theta)[:, None, None], xp.sin(theta)[:, None, None]
        cy, cx = dtype.type((height - 1) / 2), dtype.type((width - 1) / 2)
        ys = xp.arange(height, dtype=dtype)[None, :, None] - cy
        xs = xp.arange(width, dtype=dtype)[None, None, :] - cx
        sy = cos * ys - sin * xs + cy
        sx = sin * ys + cos * xs + cx
        y0, x0 = xp.floor(sy), xp.floor(sx)
        wy, wx = sy - y0, sx - x0
        y0, x0 = y0.astype(xp.int64), x0.astype(xp.int64)
        base = xp.arange(batch, dtype=xp.int64)[:, None, None] * (height * width)
        flat = x.reshape(batch * height * width, channels)
        out = xp.zeros_like(x)
        self._taps = []
        for oy, ox, weight in ((0, 0, (1 - wy) * (1 - wx)), (0, 1, (1 - wy) * wx), (1, 0, wy * (1 - wx)),
                               (1, 1, wy * wx)):
            yy, xx = y0 + oy, x0 + ox
            inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
            index = (base + xp.clip(yy, 0, height - 1) * width + xp.clip(xx, 0, width - 1)).reshape(-1)
            weight = (weight * inside).astype(dtype)[..., None]
            out += flat[index].reshape(x.shape) * weight
            self._taps.append((index, weight))
        return out

    def _adjoint(self, grad_output, xp):
        channels = grad_output.shape[3]
        grad_flat = xp.zeros((grad_output.size // channels, channels), dtype=grad_output.dtype)
        for index, weight in self._taps:
            contribution = (grad_output * weight).reshape(-1, channels)
            if xp.__name__ == "numpy":
                xp.add.at(grad_flat, index, contribution)
            else:  # CuPy
                import cupyx

                cupyx.scatter_add(grad_flat, index, contribution)
        return grad_flat.reshape(grad_output.shape)
