"""The worked backpropagation example of slides 003, printed step by step.

A 2-2-1 network with the identity activation and no biases::

    x = (2, 3),  W = [[0.11, 0.12], [0.21, 0.08]],  w2 = [0.14, 0.15],  y = 1
    h = x W,  o = h w2,  E = 1/2 (o - y)^2,  learning rate 0.05

The slides get o = 0.191 and E = 0.327; after one gradient-descent step
o = 0.26 and "E = 0.273". The exact error after the step is about 0.277: the
slides' 0.273 is 1/2 (0.26 - 1)^2, computed from o rounded to two decimals.

The two Dense layers of the library do the forward and backward passes
(book section 6.2, eqs. 6.2 and 6.5-6.11) and the library's SGD does the
update (eq. 6.1); every number is checked against the slides' hand formulas.

Run::

    python examples/worked_backprop.py [--device cpu|gpu|auto]
"""

from __future__ import annotations

import numpy as np

import backend
from layers import Dense
from optimizers import SGD

from _common import make_parser, select_device

X = np.array([[2.0, 3.0]])
W1 = np.array([[0.11, 0.12], [0.21, 0.08]])
W2 = np.array([[0.14], [0.15]])
Y = 1.0
LEARNING_RATE = 0.05


def _fmt(a) -> str:
    """One-line rendering of a vector or matrix, 4 decimals."""
    text = np.array2string(np.asarray(a), precision=4, suppress_small=True, separator=" ")
    return " ".join(text.split())


def _dense(weights, device):
    layer = Dense(weights.shape[0], weights.shape[1], use_bias=False)
    layer.W[...] = backend.to_device(weights, device)  # in place: params keep pointing at W
    return layer


def forward(hidden, output, x):
    h = hidden.forward(x)
    o = output.forward(h)
    return h, o


def main(argv=None) -> dict:
    """Run the example; return the numbers it printed (floats, NumPy arrays)."""
    parser = make_parser(__doc__.splitlines()[0])
    args = parser.parse_args(argv)
    dev = select_device(args.device)
    previous_dtype = backend.set_default_dtype(np.float64)  # the slides' numbers, not float32's
    try:
        hidden, output = _dense(W1, dev), _dense(W2, dev)
        x = backend.to_device(X, dev)
        print("Worked backprop example (slides 003): x = (2, 3), y = 1, identity activation, "
              f"no bias, learning rate {LEARNING_RATE}")

        print("\nForward pass")
        h, o = forward(hidden, output, x)
        h_np, o0 = backend.to_numpy(h)[0], float(backend.to_numpy(o)[0, 0])
        e0 = 0.5 * (o0 - Y) ** 2
        print(f"  h = x W  = [2 3] {_fmt(W1)} = {_fmt(h_np)}        (slides: [0.85 0.48])")
        print(f"  o = h w2 = {h_np[0]:.2f}*0.14 + {h_np[1]:.2f}*0.15 = {o0:.3f}    (slides: 0.191)")
        print(f"  E = 1/2 (o - y)^2 = 1/2 ({o0:.3f} - 1)^2 = {e0:.3f}  (slides: 0.327)")

        print("\nBackward pass (chain rule, eqs. 6.5-6.11)")
        delta = o0 - Y
        grad_o = backend.to_device(np.array([[delta]]), dev)
        grad_h, (grad_w2,) = output.backward(grad_o)
        _, (grad_w1,) = hidden.backward(grad_h)
        grad_h_np = backend.to_numpy(grad_h)[0]
        grad_w2_np, grad_w1_np = backend.to_numpy(grad_w2), backend.to_numpy(grad_w1)
        print(f"  Δ = dE/do = o - y = {delta:.3f}                (slides: -0.809)")
        print(f"  dE/dw2 = Δ h = {_fmt(grad_w2_np.ravel())}")
        print(f"  dE/dh  = Δ w2ᵀ = {_fmt(grad_h_np)}")
        print(f"  dE/dW  = xᵀ (Δ w2ᵀ) = {_fmt(grad_w1_np)}")
        # The slides' hand formulas: dE/dw2 = Δ h, dE/dW = Δ x w2ᵀ.
        np.testing.assert_allclose(grad_w2_np.ravel(), delta * h_np, rtol=1e-12)
        np.testing.assert_allclose(grad_w1_np, delta * X.T @ W2.T, rtol=1e-12)

        SGD(learning_rate=LEARNING_RATE).step(hidden.params + output.params, [grad_w1, grad_w2])
        w1_new = backend.to_numpy(hidden.W)
        w2_new = backend.to_numpy(output.W).ravel()
        print(f"\nUpdate w <- w - {LEARNING_RATE} dE/dw (eq. 6.1, optimizers.SGD)")
        print(f"  w2 = {_fmt(w2_new)}              (slides, 2 decimals: [0.17 0.17])")
        print(f"  W  = {_fmt(w1_new)}  (slides: [[0.12 0.13] [0.23 0.10]])")

        _, o = forward(hidden, output, x)
        o1 = float(backend.to_numpy(o)[0, 0])
        e1 = 0.5 * (o1 - Y) ** 2
        e1_rounded = 0.5 * (round(o1, 2) - Y) ** 2
        print("\nAfter one step")
        print(f"  o = {o1:.4f} ≈ {o1:.2f}                    (slides: 0.26)")
        print(f"  E = {e1:.4f}                          (exact; the slides' 0.273 is "
              f"1/2 ({o1:.2f} - 1)^2 = {e1_rounded:.4f}, from o rounded to 0.26)")
        print(f"  the error fell by {e0 - e1:.4f} ({100 * (e0 - e1) / e0:.1f}%) in one step")
        return {
            "h": h_np, "o_before": o0, "error_before": e0, "delta": delta,
            "grad_w2": grad_w2_np.ravel(), "grad_w1": grad_w1_np,
            "w1_after": w1_new, "w2_after": w2_new,
            "o_after": o1, "error_after": e1, "error_after_rounded_o": e1_rounded,
        }
    finally:
        backend.set_default_dtype(previous_dtype)


if __name__ == "__main__":
    main()
