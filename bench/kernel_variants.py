"""The convolution variants of ``python -m bench kernels``: depthwise 3x3, dilated, transposed, a ResNet basic block.

Each builder returns a :class:`bench.kernels.Case` like the convolution's, so
the same measuring, table, JSON and targets apply: ``ours`` (the dispatched
kernels or, for the block, the library's layers), the book-style loops of the
families' ``reference`` modules on one image (extrapolated), and PyTorch on
the same device (channels_last, autograd).

* ``depthwise2d``: 3x3, stride 1, padding 1 (:mod:`kernels.depthwise2d`);
* ``conv2d_dilated``: 3x3, dilation 2, padding 2 (:mod:`kernels.conv2d`);
* ``conv_transpose2d``: 3x3, stride 2, padding 1, output_padding 1: a 2x
  upsampling (:mod:`kernels.conv_transpose2d`);
* ``resnet_block``: ``ReLU(BN(conv(ReLU(BN(conv(x))))) + x)``, 3x3 convolutions,
  batch normalization in training mode (:class:`layers.Residual`); its book
  version runs the two convolutions by the book's loops and the rest in NumPy.

FLOPs: ``2 B OH OW F (C / groups) kh kw`` per convolution forward, twice that backward.
"""

from __future__ import annotations

import math

import numpy as np

from kernels import conv2d, conv_transpose2d, depthwise2d
from kernels.conv2d import reference as conv_ref
from kernels.conv_transpose2d import reference as transpose_ref
from kernels.depthwise2d import reference as depthwise_ref

#: op -> default shapes (NHWC input, filters)
SHAPES = {
    "depthwise2d": (((32, 32, 32, 64), 64), ((64, 16, 16, 128), 128)),
    "conv2d_dilated": (((32, 28, 28, 32), 32),),
    "conv_transpose2d": (((32, 14, 14, 32), 16),),
    "resnet_block": (((32, 16, 16, 32), 32), ((32, 32, 32, 16), 16)),
}
QUICK_SHAPES = {
    "depthwise2d": (((4, 12, 12, 16), 16),),
    "conv2d_dilated": (((4, 12, 12, 8), 8),),
    "conv_transpose2d": (((4, 6, 6, 8), 8),),
    "resnet_block": (((4, 8, 8, 8), 8),),
}
OPS = tuple(SHAPES)


def _flops(batch, out_hw, filters, channels_per_filter, taps=9) -> float:
    return 2.0 * batch * out_hw[0] * out_hw[1] * filters * channels_per_filter * taps


def _arrays(shape, kernel_shape, out_shape, dtype, seed):
    rng = np.random.default_rng(seed)
    fan_in = int(np.prod(kernel_shape[1:]))
    return {"x": rng.standard_normal(shape).astype(dtype),
            "k": (rng.standard_normal(kernel_shape) * math.sqrt(2.0 / fan_in)).astype(dtype),
            "b": (rng.standard_normal((out_shape[3], 1)) * 0.1).astype(dtype),
            "g": rng.standard_normal(out_shape).astype(dtype)}


def _directions(forward, backward):
    return {"forward": forward, "backward": backward, "forward+backward": lambda: (forward(), backward())}


def _book(case, host, n, forward, backward):
    case.book_images = n
    xs, gs = host["x"][:n], host["g"][:n]
    case.book = {"forward": lambda: forward(xs), "backward": lambda: backward(xs, gs)}


def variant_case(op, shape, filters, dtype, device, seed, book_images, with_torch):
    """The :class:`bench.kernels.Case` of ``op`` at ``shape`` -> ``filters`` on ``device``."""
    from . import kernels as kb

    b, h, w, c = shape
    if op == "resnet_block":
        return _resnet_block_case(shape, dtype, device, seed, book_images, with_torch)
    if op == "depthwise2d":
        kernel_shape, out_shape, geometry = (filters, 1, 3, 3), (b, h, w, filters), (1, 1, 1)
        flops = _flops(b, (h, w), filters, 1)
    elif op == "conv2d_dilated":
        kernel_shape, out_shape, geometry = (filters, c, 3, 3), (b, h, w, filters), (1, 2, 2)
        flops = _flops(b, (h, w), filters, c)
    else:  # conv_transpose2d: kernels (C_in, C_out, kh, kw), 2x upsampling
        kernel_shape, out_shape, geometry = (c, filters, 3, 3), (b, 2 * h, 2 * w, filters), (2, 1, 1)
        flops = _flops(b, (h, w), filters, c)
    host = _arrays(shape, kernel_shape, out_shape, dtype, seed)
    a = kb._to_device(host, device)
    x, k, bias, g = a["x"], a["k"], a["b"], a["g"]
    stride, padding, dilation = geometry
    if op == "depthwise2d":
        forward = lambda: depthwise2d.depthwise2d_forward(x, k, bias, stride, padding, dilation)  # noqa: E731
        backward = lambda: (depthwise2d.depthwise2d_backward_input(g, k, x.shape, stride, padding, dilation),  # noqa: E731
                            depthwise2d.depthwise2d_backward_kernels(g, x, k.shape, stride, padding, dilation),
                            conv2d.conv2d_backward_bias(g))
    elif op == "conv2d_dilated":
        forward = lambda: conv2d.conv2d_forward(x, k, bias, stride, padding, dilation)  # noqa: E731
        backward = lambda: (conv2d.conv2d_backward_input(g, k, x.shape, stride, padding, dilation),  # noqa: E731
                            conv2d.conv2d_backward_kernels(g, x, k.shape, stride, padding, dilation),
                            conv2d.conv2d_backward_bias(g))
    else:
        forward = lambda: conv_transpose2d.conv_transpose2d_forward(x, k, bias, stride, padding, 1)  # noqa: E731
        backward = lambda: (conv_transpose2d.conv_transpose2d_backward_input(g, k, x.shape, stride, padding),  # noqa: E731
                            conv_transpose2d.conv_transpose2d_backward_kernels(g, x, k.shape, stride, padding),
                            conv2d.conv2d_backward_bias(g))
    case = kb.Case(op, tuple(shape), filters, device, np.dtype(dtype).name, ours=_directions(forward, backward),
                   work={"forward": flops, "backward": 2 * flops, "forward+backward": 3 * flops}, unit="flop")
    if book_images > 0 and device == "cpu":
        hk, hb = host["k"], host["b"]
        if op == "depthwise2d":
            _book(case, host, min(book_images, b), lambda xs: depthwise_ref.depthwise2d_forward(xs, hk, hb, 1, 1),
                  lambda xs, gs: (depthwise_ref.depthwise2d_backward_input(gs, hk, xs.shape, 1, 1),
                                  depthwise_ref.depthwise2d_backward_kernels(gs, xs, hk.shape, 1, 1),
                                  conv_ref.conv2d_backward_bias(gs)))
        elif op == "conv2d_dilated":
            _book(case, host, min(book_images, b), lambda xs: conv_ref.conv2d_forward(xs, hk, hb, 1, 2, 2),
                  lambda xs, gs: (conv_ref.conv2d_backward_input(gs, hk, xs.shape, 1, 2, 2),
                                  conv_ref.conv2d_backward_kernels(gs, xs, hk.shape, 1, 2, 2),
                                  conv_ref.conv2d_backward_bias(gs)))
        else:  # the transposed convolution's backward is a convolution (forward) and its kernel gradient
            zero = np.zeros((c, 1), dtype)
            _book(case, host, min(book_images, b),
                  lambda xs: transpose_ref.conv_transpose2d_forward(xs, hk, hb, 2, 1, 1),
                  lambda xs, gs: (conv_ref.conv2d_forward(gs, hk, zero, 2, 1),
                                  conv_ref.conv2d_backward_kernels(xs, gs, hk.shape, 2, 1),
                                  conv_ref.conv2d_backward_bias(gs)))
    if with_torch:
        _torch_variant(case, host, device, op)
    kb._split_cudnn(case)
    return case


def _torch_inputs(case, host, device):
    """``(torch, device, x, g)`` for PyTorch's side of ``case`` (NHWC as channels_last), or None with the note set."""
    from . import kernels as kb

    torch, dev, note = kb._torch_device(device)
    if torch is None:
        case.torch_note = note
        return None
    return torch, dev, kb._nhwc_to_torch(torch, host["x"], dev, True), kb._nhwc_to_torch(torch, host["g"], dev)


def _torch_variant(case, host, device, op):
    inputs = _torch_inputs(case, host, device)
    if inputs is None:
        return
    torch, dev, x, g = inputs
    functional = torch.nn.functional
    w = torch.from_numpy(host["k"]).to(dev).contiguous(memory_format=torch.channels_last).requires_grad_(True)
    b = torch.from_numpy(host["b"].reshape(-1)).to(dev).requires_grad_(True)
    if op == "depthwise2d":
        def forward():
            return functional.conv2d(x, w, b, padding=1, groups=x.shape[1])
    elif op == "conv2d_dilated":
        def forward():
            return functional.conv2d(x, w, b, padding=2, dilation=2)
    else:
        def forward():
            return functional.conv_transpose2d(x, w, b, stride=2, padding=1, output_padding=1)
    _torch_directions(case, torch, device, forward, (x, w, b), g)


def _torch_directions(case, torch, device, forward, inputs, g):
    y = forward()

    def backward():
        return torch.autograd.grad(y, inputs, g, retain_graph=True)

    def both():
        return torch.autograd.grad(forward(), inputs, g)

    case.torch = {"forward": forward, "backward": backward, "forward+backward": both}
    case.torch_sync = torch.cuda.synchronize if device == "gpu" else None


# --------------------------------------------------------------------------- the ResNet basic block
def _block(channels, seed):
    from layers import BatchNormalization, Convolution2D, ReLU, Residual, Sequential

    return Sequential([Residual(Sequential([Convolution2D(channels, channels, 3, padding=1, seed=seed),
                                            BatchNormalization(channels), ReLU(),
                                            Convolution2D(channels, channels, 3, padding=1, seed=seed + 1),
                                            BatchNormalization(channels)])), ReLU()])


def _batch_norm(x, eps=1e-5):
    mean = x.mean(axis=(0, 1, 2))
    var = x.var(axis=(0, 1, 2))
    return (x - mean) / np.sqrt(var + eps), mean, var


def _book_block(x, g, k1, k2, zero, eps=1e-5):
    """The block with the book's convolution loops and NumPy for BN (gamma 1, beta 0) and ReLU: fwd, bwd."""
    def bn_backward(dy, xhat, var):
        n = dy.shape[0] * dy.shape[1] * dy.shape[2]
        return (dy - dy.sum(axis=(0, 1, 2)) / n - xhat * (dy * xhat).sum(axis=(0, 1, 2)) / n) / np.sqrt(var + eps)

    a1 = conv_ref.conv2d_forward(x, k1, zero, 1, 1)
    h1, _, v1 = _batch_norm(a1, eps)
    r1 = np.maximum(h1, 0)
    a2 = conv_ref.conv2d_forward(r1, k2, zero, 1, 1)
    h2, _, v2 = _batch_norm(a2, eps)
    out = np.maximum(h2 + x, 0)
    if g is None:
        return out
    d = g * (out > 0)
    d2 = bn_backward(d, h2, v2)
    dk2 = conv_ref.conv2d_backward_kernels(d2, r1, k2.shape, 1, 1)
    d1 = bn_backward(conv_ref.conv2d_backward_input(d2, k2, r1.shape, 1, 1) * (h1 > 0), h1, v1)
    dk1 = conv_ref.conv2d_backward_kernels(d1, x, k1.shape, 1, 1)
    return conv_ref.conv2d_backward_input(d1, k1, x.shape, 1, 1) + d, dk1, dk2


def _resnet_block_case(shape, dtype, device, seed, book_images, with_torch):
    import backend

    from . import kernels as kb

    b, h, w, c = shape
    host = _arrays(shape, (c, c, 3, 3), shape, dtype, seed)
    block = _block(c, seed).astype(dtype).to(device)
    x, g = kb._to_device({"x": host["x"], "g": host["g"]}, device).values()
    flops = 2 * _flops(b, (h, w), c, c)

    def forward():
        return block.forward(x)

    forward()

    def backward():
        return block.backward(g)

    case = kb.Case("resnet_block", tuple(shape), c, device, np.dtype(dtype).name,
                   ours=_directions(forward, backward),
                   work={"forward": flops, "backward": 2 * flops, "forward+backward": 3 * flops}, unit="flop")
    if book_images > 0 and device == "cpu":
        k1, k2 = (backend.to_numpy(p).astype(dtype) for p in block.params if p.ndim == 4)
        zero = np.zeros((c, 1), dtype)
        n = min(book_images, b)
        # batch normalization couples the images: the loops run on n of them, as the other ops' do
        _book(case, host, n, lambda xs: _book_block(xs, None, k1, k2, zero),
              lambda xs, gs: _book_block(xs, gs, k1, k2, zero))
    if with_torch:
        _torch_block(case, host, block, device)
    kb._split_cudnn(case)
    return case


def _torch_block(case, host, block, device):
    import backend

    inputs = _torch_inputs(case, host, device)
    if inputs is None:
        return
    torch, dev, x, g = inputs
    functional = torch.nn.functional
    params = [torch.from_numpy(np.ascontiguousarray(backend.to_numpy(p))).to(dev) for p in block.params]
    k1, b1, gamma1, beta1, k2, b2, gamma2, beta2 = params
    k1, k2 = (k.contiguous(memory_format=torch.channels_last) for k in (k1, k2))
    weights = [t.requires_grad_(True) for t in (k1, b1, gamma1, beta1, k2, b2, gamma2, beta2)]

    def forward():
        y = functional.conv2d(x, k1, b1.reshape(-1), padding=1)
        y = functional.relu(functional.batch_norm(y, None, None, gamma1, beta1, training=True, eps=1e-5))
        y = functional.conv2d(y, k2, b2.reshape(-1), padding=1)
        y = functional.batch_norm(y, None, None, gamma2, beta2, training=True, eps=1e-5)
        return functional.relu(y + x)

    _torch_directions(case, torch, device, forward, (x, *weights), g)


def cases(quick, dtype, device, seed, book_images, with_torch, ops=OPS):
    """Every variant case of ``ops`` at the default (or ``quick``) shapes, one at a time (a generator)."""
    for op, shapes in (QUICK_SHAPES if quick else SHAPES).items():
        for shape, filters in shapes if op in ops else ():
            yield variant_case(op, shape, filters, dtype, device, seed, book_images, with_torch)
