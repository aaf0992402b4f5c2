"""Shape arithmetic of convolution and pooling (book sections 22.2 and 22.3), shared by kernels and layers.

Output size (the book's formula, integer division), with the dilated kernel
``kh' = dh (kh - 1) + 1`` (dilation 1 is the book's case)::

    OH = (H + 2 ph - kh') // sh + 1,   OW = (W + 2 pw - kw') // sw + 1

``padding`` is an int, a pair, ``"valid"`` (no padding) or ``"same"``: as in
TensorFlow and PyTorch, ``OH = ceil(H / sh)`` with ``max((OH - 1) sh + kh' - H, 0)``
zeros in total, half before and the rest (one more when the total is odd:
even kernels or strides) after. Kernels take symmetric padding; the odd zero
is added to the input by :func:`split_padding`'s caller. Pooling has no
padding and ``stride=None`` means ``stride = pool_size``.
"""

from __future__ import annotations

from backend.checks import check_pair

#: The padding modes accepted beside integers.
PADDING_MODES = ("same", "valid")


def as_pair(value, name: str = "value", minimum: int = 0) -> tuple[int, int]:
    """Return ``value`` as an ``(h, w)`` pair of ints >= ``minimum`` (``n`` -> ``(n, n)``)."""
    return check_pair(value, name, minimum)


def check_padding(value, name: str = "padding", where: str = ""):
    """``"same"``, or ``(ph, pw)`` for ``"valid"`` (``(0, 0)``), an int or a pair of ints >= 0.

    Raises
    ------
    ValueError, TypeError
        Any other value; the message names ``name``, the accepted values and the one received.
    """
    if isinstance(value, str):
        if value == "same":
            return "same"
        if value == "valid":
            return (0, 0)
        prefix = f"{where}: {name}" if where else name
        raise ValueError(f"{prefix}: expected 'same', 'valid', an int >= 0 or a pair (h, w) of them, got {value!r}")
    return check_pair(value, name, 0, where)


def padding_amounts(padding, input_hw, kernel_hw, stride=1, dilation=1):
    """Zeros before and after each axis: ``((top, bottom), (left, right))``.

    ``padding`` as :func:`check_padding` accepts it; ``"same"`` follows
    TensorFlow (``OH = ceil(H / sh)``, the odd zero after).
    """
    padding = check_padding(padding)
    if padding != "same":
        return (padding[0], padding[0]), (padding[1], padding[1])
    stride, dilation = as_pair(stride, "stride", 1), as_pair(dilation, "dilation", 1)
    amounts = []
    for n, k, s, d in zip(input_hw, kernel_hw, stride, dilation):
        out = -(-int(n) // s)
        total = max((out - 1) * s + d * (k - 1) + 1 - int(n), 0)
        amounts.append((total // 2, total - total // 2))
    return tuple(amounts)


def split_padding(padding, input_hw, kernel_hw, stride=1, dilation=1):
    """``((ph, pw), (eh, ew))``: the symmetric padding the kernels take, and the extra zeros after.

    ``eh`` rows at the bottom and ``ew`` columns at the right (0 or 1, for
    ``"same"`` with an odd total) are added to the input by the caller.
    """
    (top, bottom), (left, right) = padding_amounts(padding, input_hw, kernel_hw, stride, dilation)
    return (top, left), (bottom - top, right - left)


def conv2d_output_size(input_hw, kernel_hw, stride=1, padding=0, dilation=1) -> tuple[int, int]:
    """``(OH, OW)`` of a convolution (or a pooling with ``padding=0``); may be < 1 (unchecked)."""
    (h, w), (kh, kw) = input_hw, kernel_hw
    sh, sw = as_pair(stride, "stride", 1)
    dh, dw = as_pair(dilation, "dilation", 1)
    (pt, pb), (pl, pr) = padding_amounts(padding, (h, w), (kh, kw), (sh, sw), (dh, dw))
    return (h + pt + pb - dh * (kh - 1) - 1) // sh + 1, (w + pl + pr - dw * (kw - 1) - 1) // sw + 1


def conv2d_geometry(input_hw, kernel_hw, stride, padding, dilation=1):
    """Checked convolution geometry: ``((sh, sw), (ph, pw), OH, OW)`` for a symmetric ``padding``.

    Raises ValueError naming ``kernel_size`` when the (dilated) kernel is
    larger than the padded input (``OH`` or ``OW`` < 1).
    """
    stride, padding = as_pair(stride, "stride", 1), as_pair(padding, "padding", 0)
    dilation = as_pair(dilation, "dilation", 1)
    out_h, out_w = conv2d_output_size(input_hw, kernel_hw, stride, padding, dilation)
    if out_h < 1 or out_w < 1:
        raise ValueError(
            f"conv2d: kernel_size {tuple(kernel_hw)}{dilated_note(kernel_hw, dilation)} is larger than the "
            f"padded input {(input_hw[0] + 2 * padding[0], input_hw[1] + 2 * padding[1])}"
        )
    return stride, padding, out_h, out_w


def dilated_note(kernel_hw, dilation) -> str:
    """``" with dilation (2, 2) (spans (5, 5))"``, or ``""`` for dilation 1: for error messages."""
    dilation = as_pair(dilation, "dilation", 1)
    if dilation == (1, 1):
        return ""
    span = tuple(d * (k - 1) + 1 for k, d in zip(kernel_hw, dilation))
    return f" with dilation {dilation} (spans {span})"


def pool_geometry(input_hw, pool_size, stride):
    """Return ``(pool, stride, (OH, OW))`` as pairs; ValueError when the pool exceeds the input."""
    pool = as_pair(pool_size, "pool_size", 1)
    stride = pool if stride is None else as_pair(stride, "stride", 1)
    out_h, out_w = conv2d_output_size(input_hw, pool, stride, 0)
    if out_h < 1 or out_w < 1:
        raise ValueError(f"pooling: pool_size {pool} is larger than the input {tuple(input_hw)}")
    return pool, stride, (out_h, out_w)
