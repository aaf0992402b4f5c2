"""Checks shared by the convolution layers: the input's layout and channels, the kernel's fit, the gradient's shape.

Every message names the layer, the argument, the expected and the received
value (the library's style, :mod:`backend.checks`).
"""

from __future__ import annotations

import backend
from backend.checks import check_input, check_positive_int
from kernels import conv2d
from kernels.geometry import dilated_note


def check_images(layer: str, input_data, channels: int, params, ndim: int = 4, layout: str = "NHWC"):
    """``input_data`` is a float array of ``ndim`` dimensions whose last axis holds ``channels``."""
    check_input(input_data, ndim=ndim, layer=layer)
    if input_data.shape[-1] != channels:
        axes = "(batch, height, width, {c})" if ndim == 4 else "(batch, time, {c})"
        raise ValueError(
            f"{layer}: input_data: expected {channels} channels in {layout} layout {axes.format(c=channels)}, "
            f"got shape {tuple(input_data.shape)}"
        )
    backend.get_array_module(input_data, *params)  # mixed-device TypeError


def check_kernel_fits(layer: str, input_hw, kernel_size, padding, dilation):
    """The (dilated) kernel fits the padded input; ``padding`` is a pair (``"same"`` always fits)."""
    if isinstance(padding, str):
        return
    spans = [d * (k - 1) + 1 for k, d in zip(kernel_size, dilation)]
    padded = tuple(n + 2 * p for n, p in zip(input_hw, padding))
    if any(s > n for s, n in zip(spans, padded)):
        raise ValueError(
            f"{layer}: kernel_size {tuple(kernel_size)}{dilated_note(kernel_size, dilation)} is larger than the "
            f"padded input {padded} (input {tuple(input_hw)}, padding {tuple(padding)}); use a smaller kernel or "
            "dilation, more padding, or padding='same'"
        )


def check_grad_output(layer: str, grad_output, expected, cached) -> None:
    """``backward`` after ``forward`` (``cached`` is not None), with a gradient of the forward output's shape."""
    if cached is None:
        raise RuntimeError(f"{layer}.backward called before forward")
    if tuple(grad_output.shape) != tuple(expected):
        raise ValueError(f"{layer}: grad_output: expected shape {tuple(expected)} (the forward output), "
                         f"got {tuple(grad_output.shape)}")


def check_groups(layer: str, groups, input_channels: int, num_filters: int) -> int:
    """``groups`` as an int dividing both channel counts; the message names ``groups`` and both counts."""
    groups = check_positive_int(groups, "groups", where=layer)
    if input_channels % groups or num_filters % groups:
        raise ValueError(f"{layer}: groups: expected a divisor of input_channels ({input_channels}) and "
                         f"num_filters ({num_filters}), got {groups}")
    return groups


def convolution_backward(layer, name: str, grad_output, input_gradient, kernel_gradient):
    """The backward every convolution layer shares: ``(dx, [dK, dbias])`` in the parameters' dtypes.

    ``input_gradient(g, kernels, x)`` and ``kernel_gradient(g, x)`` are the
    family's kernels; ``g`` is cast to the input's dtype first, the kernels too;
    the bias gradient (when the layer has ``biases``) is ``Σ_{b, ...} g[..., f]``.
    """
    x = layer.input
    check_grad_output(name, grad_output, layer.output_shape(x.shape) if x is not None else (), x)
    g = grad_output.astype(x.dtype, copy=False)
    grad_input = input_gradient(g, layer.kernels.astype(x.dtype, copy=False), x)
    grads = [kernel_gradient(g, x)]
    if getattr(layer, "biases", None) is not None:
        grads.append(conv2d.conv2d_backward_bias(g))
    return grad_input, [grad.astype(p.dtype, copy=False) for grad, p in zip(grads, layer.params)]
