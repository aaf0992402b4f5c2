"""Shape arithmetic of convolution and pooling (book sections 22.2 and 22.3), shared by kernels and layers.

Output size (the book's formula, integer division)::

    OH = (H + 2 ph - kh) // sh + 1,   OW = (W + 2 pw - kw) // sw + 1

Pooling has no padding and ``stride=None`` means ``stride = pool_size``.
"""

from __future__ import annotations

from backend.checks import check_pair


def as_pair(value, name: str = "value", minimum: int = 0) -> tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints >= ``minimum`` (``n`` -> ``(n, n)``)."""
    return check_pair(value, name, minimum)


def conv2d_output_size(input_hw, kernel_hw, stride=1, padding=0) -> tuple[int, int]:
    """``(OH, OW)`` of a convolution (or a pooling with ``padding=0``); may be < 1 (unchecked)."""
    (h, w), (kh, kw) = input_hw, kernel_hw
    sh, sw = as_pair(stride, "stride", 1)
    ph, pw = as_pair(padding, "padding", 0)
    return (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1


def conv2d_geometry(input_hw, kernel_hw, stride, padding):
    """Checked convolution geometry: ``((sh, sw), (ph, pw), OH, OW)``.

    Raises ValueError when the kernel is larger than the padded input (``OH`` or ``OW`` < 1).
    """
    stride, padding = as_pair(stride, "stride", 1), as_pair(padding, "padding", 0)
    out_h, out_w = conv2d_output_size(input_hw, kernel_hw, stride, padding)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"conv2d: kernel {tuple(kernel_hw)} is larger than the padded input "
            f"{(input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1])}"
        )
    return stride, padding, out_h, out_w


def pool_geometry(input_hw, pool_size, stride):
    """Return ``(pool, stride, (OH, OW))`` as pairs; ValueError when the pool exceeds the input."""
    pool = as_pair(pool_size, "pool_size", 1)
    stride = pool if stride is None else as_pair(stride, "stride", 1)
    out_h, out_w = conv2d_output_size(input_hw, pool, stride, 0)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"pooling: pool_size {pool} is larger than the input {tuple(input_hw)}")
    return pool, stride, (out_h, out_w)
