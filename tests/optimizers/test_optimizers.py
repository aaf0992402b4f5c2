"""Optimizers (optimizers/): hand-computed steps, state, minimize(), Newton, the book's GradientDescent,
clipping and weight penalties, bad input."""

from __future__ import annotations

import math

import numpy as np
import pytest

import backend
from optimizers import (
    SGD,
    AdaGrad,
    Adam,
    GradientDescent,
    Momentum,
    Nadam,
    Nesterov,
    Newton,
    Optimizer,
    RMSProp,
    get_optimizer,
    minimize,
)
from optimizers import regularization

# Three steps of gradients for two parameters, W (2, 3) and b (3,).
RNG = np.random.default_rng(0)
P0 = [RNG.standard_normal((2, 3)), RNG.standard_normal(3)]
GRADS = [[RNG.standard_normal((2, 3)), RNG.standard_normal(3)] for _ in range(3)]


# -- hand formulas (NumPy, float64), written out independently of the package ------------------

def ref_sgd(p, gs, lr=0.1):
    for g in gs:
        p = p - lr * g
    return p


def ref_momentum(p, gs, lr=0.1, mu=0.9):
    v = np.zeros_like(p)
    for g in gs:
        v = mu * v - lr * g          # eq. 6.14
        p = p + v
    return p


def ref_polyak(p, gs, lr=0.1, beta=0.9):
    previous = p
    for g in gs:                     # eq. 6.13: x_{n+1} = x_n - ε g + β (x_n - x_{n-1})
        p, previous = p - lr * g + beta * (p - previous), p
    return p


def ref_nesterov(p, gs, lr=0.1, mu=0.9):
    v = np.zeros_like(p)
    for g in gs:
        v = mu * v - lr * g
        p = p + mu * v - lr * g
    return p


def ref_adagrad(p, gs, lr=0.1, eps=1e-7):
    s = np.zeros_like(p)
    for g in gs:
        s = s + g * g
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_rmsprop(p, gs, lr=0.1, rho=0.9, eps=1e-7):
    s = np.zeros_like(p)
    for g in gs:
        s = rho * s + (1 - rho) * g * g
        p = p - lr * g / (np.sqrt(s) + eps)
    return p


def ref_adam(p, gs, lr=0.1, b1=0.9, b2=0.999, eps=1e-7, nesterov=False):
    m = np.zeros_like(p)
    s = np.zeros_like(p)
    for t, g in enumerate(gs, start=1):
        m = b1 * m + (1 - b1) * g
        s = b2 * s + (1 - b2) * g * g
        m_hat, s_hat = m / (1 - b1 ** t), s / (1 - b2 ** t)
        direction = b1 * m_hat + (1 - b1) * g / (1 - b1 ** t) if nesterov else m_hat
        p = p - lr * direction / (np.sqrt(s_hat) + eps)
    return p


HAND = [
    ("sgd", lambda: SGD(0.1), ref_sgd),
    ("momentum", lambda: Momentum(0.1, momentum=0.9), ref_momentum),
    ("momentum_is_polyak", lambda: Momentum(0.1, momentum=0.9), ref_polyak),
    ("nesterov", lambda: Nesterov(0.1, momentum=0.9), ref_nesterov),
    ("adagrad", lambda: AdaGrad(0.1), ref_adagrad),
    ("rmsprop", lambda: RMSProp(0.1, rho=0.9), ref_rmsprop),
    ("adam", lambda: Adam(0.1), ref_adam),
    ("nadam", lambda: Nadam(0.1), lambda p, gs: ref_adam(p, gs, nesterov=True)),
]


@pytest.mark.parametrize("steps", [1, 3])
@pytest.mark.parametrize("make, reference", [h[1:] for h in HAND], ids=[h[0] for h in HAND])
def test_steps_match_hand_formula_in_place(device, make, reference, steps):
    params = [backend.to_device(p.copy()) for p in P0]
    objects = list(params)
    opt = make()
    for g in GRADS[:steps]:
        opt.step(params, [backend.to_device(x) for x in g])
    assert opt.iterations == steps
    for i, p in enumerate(params):
        assert p is objects[i]                      # updated in place: same object
        assert backend.get_array_module(p) is backend.get_device().xp
        expected = reference(P0[i], [g[i] for g in GRADS[:steps]])
        np.testing.assert_allclose(backend.to_numpy(p), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("make", [h[1] for h in HAND], ids=[h[0] for h in HAND])
def test_float32_params_stay_float32(device, make):
    params = [backend.to_device(p.astype(np.float32)) for p in P0]
    opt = make()
    for g in GRADS:
        opt.step(params, [backend.to_device(x.astype(np.float32)) for x in g])
    for p, p0 in zip(params, P0):
        assert p.dtype == np.float32 and p.shape == p0.shape
        assert np.all(np.isfinite(backend.to_numpy(p)))


def test_adam_bias_correction_first_steps(device):
    # t = 1: m̂ = g and ŝ = g², so every coordinate moves by lr * g / (|g| + ε) ≈ lr * sign(g).
    g = np.array([0.5, -2.0, 1e-3])
    x = backend.to_device(np.zeros(3))
    opt = Adam(learning_rate=0.01, epsilon=1e-12)
    opt.step([x], [backend.to_device(g)])
    np.testing.assert_allclose(backend.to_numpy(x), -0.01 * g / (np.abs(g) + 1e-12), rtol=1e-12)
    np.testing.assert_allclose(backend.to_numpy(x), -0.01 * np.sign(g), rtol=1e-8)
    # t = 2 with a new gradient h: m̂ = (0.9·0.1 g + 0.1 h) / (1 - 0.81), ŝ likewise with squares.
    h = np.array([1.0, 1.0, -1.0])
    opt.step([x], [backend.to_device(h)])
    m_hat = (0.9 * 0.1 * g + 0.1 * h) / (1 - 0.9 ** 2)
    s_hat = (0.999 * 0.001 * g ** 2 + 0.001 * h ** 2) / (1 - 0.999 ** 2)
    expected = -0.01 * g / (np.abs(g) + 1e-12) - 0.01 * m_hat / (np.sqrt(s_hat) + 1e-12)
    np.testing.assert_allclose(backend.to_numpy(x), expected, rtol=1e-9)
    assert opt.state[0]["m"].shape == (3,) and opt.iterations == 2


def test_state_is_keyed_by_position_and_reset(device):
    a, b = backend.to_device(np.ones(2)), backend.to_device(np.ones(3))
    opt = Momentum(0.1)
    opt.step([a, b], [backend.to_device(np.ones(2)), None])   # None: b is frozen
    np.testing.assert_allclose(backend.to_numpy(b), 1.0)
    assert set(opt.state) == {0}
    with pytest.raises(ValueError, match=r"params\[0\].*created for shape \(2,\).*\(3,\).*reset"):
        opt.step([b], [backend.to_device(np.ones(3))])
    opt.reset()
    assert opt.state == {} and opt.iterations == 0
    opt.step([b], [backend.to_device(np.ones(3))])
    np.testing.assert_allclose(backend.to_numpy(b), 0.9)


# -- minimize() and Newton ------------------------------------------------------------------------

A = np.array([[3.0, 1.0], [1.0, 2.0]])
BVEC = np.array([1.0, -1.0])
X_STAR = np.linalg.solve(A, BVEC)


def quadratic(x):
    return 0.5 * x @ A @ x - BVEC @ x


def quadratic_grad(x):
    return A @ x - BVEC


CONVERGE = [
    ("sgd", lambda: SGD(0.2), 200),
    ("momentum", lambda: Momentum(0.05, momentum=0.8), 400),
    ("nesterov", lambda: Nesterov(0.05, momentum=0.8), 400),
    ("adagrad", lambda: AdaGrad(0.5), 2000),
    ("rmsprop", lambda: RMSProp(0.001), 3000),
    ("adam", lambda: Adam(0.05), 2000),
    ("nadam", lambda: Nadam(0.05), 2000),
    ("newton", lambda: Newton(lambda x: A), 5),
]


@pytest.mark.parametrize("make, epochs", [c[1:] for c in CONVERGE], ids=[c[0] for c in CONVERGE])
def test_minimize_converges_on_convex_quadratic(make, epochs):
    x0 = np.array([2.0, -3.0])
    x, path = minimize(quadratic, quadratic_grad, x0, make(), epochs=epochs, tolerance=1e-6)
    np.testing.assert_allclose(x, X_STAR, atol=1e-3)
    assert np.array_equal(x0, [2.0, -3.0])                # x0 not modified
    assert path.ndim == 2 and path.shape[1] == 2 and 2 <= path.shape[0] <= epochs + 1
    np.testing.assert_array_equal(path[0], x0)
    np.testing.assert_array_equal(path[-1], x)
    assert quadratic(x) < quadratic(x0)


def test_minimize_runs_all_epochs_without_tolerance_and_on_device(device):
    x0 = backend.to_device(np.array([2.0, -3.0]))
    A_dev, b_dev = backend.to_device(A), backend.to_device(BVEC)
    x, path = minimize(lambda x: None, lambda x: A_dev @ x - b_dev, x0, "sgd", epochs=7, tolerance=0.0)
    assert path.shape == (8, 2)
    assert backend.get_array_module(path) is backend.get_device().xp
    np.testing.assert_allclose(backend.to_numpy(path[1]), [2.0, -3.0] - 0.01 * (A @ [2.0, -3.0] - BVEC))


def test_newton_reaches_quadratic_minimum_in_one_step(device):
    A_dev, b_dev = backend.to_device(A), backend.to_device(BVEC)
    x, path = minimize(quadratic, lambda x: A_dev @ x - b_dev, backend.to_device(np.array([10.0, -7.0])),
                       Newton(), hessian=lambda x: A_dev)
    np.testing.assert_allclose(backend.to_numpy(x), X_STAR, atol=1e-12)
    assert path.shape == (2, 2)                   # x0 and one step; the gradient is then 0


def test_newton_scalar_and_errors():
    # f(x) = (x - 3)² + 1: f' = 2 (x - 3), f'' = 2.
    x, path = minimize(lambda x: (x - 3) ** 2 + 1, lambda x: 2 * (x - 3), 0.0, Newton(lambda x: 2.0))
    assert float(x) == pytest.approx(3.0) and path.shape == (2, 1)
    with pytest.raises(ValueError, match="Newton needs a Hessian"):
        minimize(quadratic, quadratic_grad, [1.0, 1.0], Newton())
    with pytest.raises(ValueError, match="singular"):
        minimize(quadratic, quadratic_grad, [1.0, 1.0], Newton(lambda x: np.zeros((2, 2))))
    with pytest.raises(ValueError, match=r"expected shape \(2, 2\), got shape \(3,\)"):
        minimize(quadratic, quadratic_grad, [1.0, 1.0], Newton(lambda x: np.ones(3)))
    with pytest.raises(ValueError, match="exactly one parameter"):
        Newton(lambda x: A).step([np.ones(2), np.ones(2)], [np.ones(2), np.ones(2)])


# -- the book's GradientDescent (section 6.1.3) -----------------------------------------------------

def test_book_gradient_descent_on_1d_polynomial():
    # f(x) = x⁴ - 3x³ + 2, f'(x) = 4x³ - 9x² : local minimum at x = 9/4.
    gd = GradientDescent(lambda x: x ** 4 - 3 * x ** 3 + 2, lambda x: 4 * x ** 3 - 9 * x ** 2, 4.0,
                         learning_rate=0.01, epochs=1000)
    x, path = gd.update_step()
    assert x == pytest.approx(2.25, abs=1e-6)
    assert isinstance(path, list) and path[0] == 4.0 and len(path) < 1000
    assert x == path[-1] and abs(4 * x ** 3 - 9 * x ** 2) < 1e-6    # stopped on the tolerance


def test_book_gradient_descent_exact_iterates_and_epochs():
    # f(x) = x², ε = 0.1: x <- 0.8 x. As in the book, the point is appended before each update.
    x, path = GradientDescent(lambda x: x * x, lambda x: 2 * x, 3.0, learning_rate=0.1, epochs=3).update_step()
    assert path == pytest.approx([3.0, 2.4, 1.92]) and x == pytest.approx(1.536)
    # Already at the minimum: stops at once on the tolerance.
    x, path = GradientDescent(lambda x: x * x, lambda x: 2 * x, 0.0).update_step()
    assert x == 0.0 and path == [0.0]


def test_book_gradient_descent_on_2d_vector():
    # f(x) = ‖x - c‖², ∇f = 2 (x - c): the book's abs(grad) < tol would be ambiguous here.
    c = np.array([1.0, -2.0])
    gd = GradientDescent(lambda x: np.sum((x - c) ** 2), lambda x: 2 * (x - c), [0.0, 0.0],
                         learning_rate=0.1, epochs=500)
    x, path = gd.update_step()
    np.testing.assert_allclose(x, c, atol=1e-6)
    assert np.linalg.norm(2 * (path[-1] - c)) < 1e-6 and len(path) < 500
    np.testing.assert_array_equal(path[0], [0.0, 0.0])
    assert path[1] is not path[0]                 # every point is its own array


# -- clipping and weight penalties -----------------------------------------------------------------

def test_clipvalue(device):
    p = backend.to_device(np.zeros(3))
    g = backend.to_device(np.array([5.0, -0.5, -7.0]))
    SGD(1.0, clipvalue=1.0).step([p], [g])
    np.testing.assert_allclose(backend.to_numpy(p), [-1.0, 0.5, 1.0])
    np.testing.assert_allclose(backend.to_numpy(g), [5.0, -0.5, -7.0])   # caller's gradient untouched


def test_clipnorm_uses_the_global_norm(device):
    params = [backend.to_device(np.zeros(2)), backend.to_device(np.zeros(1))]
    grads = [backend.to_device(np.array([3.0, 0.0])), backend.to_device(np.array([4.0]))]   # ‖g‖ = 5
    SGD(1.0, clipnorm=1.0).step(params, grads)
    np.testing.assert_allclose(backend.to_numpy(params[0]), [-0.6, 0.0])
    np.testing.assert_allclose(backend.to_numpy(params[1]), [-0.8])
    params = [backend.to_device(np.zeros(2)), backend.to_device(np.zeros(1))]
    SGD(1.0, clipnorm=10.0).step(params, grads)                                             # below: unchanged
    np.testing.assert_allclose(backend.to_numpy(params[1]), [-4.0])


def test_clipnorm_float32_huge_gradient_no_overflow(device):
    p = backend.to_device(np.zeros(2, dtype=np.float32))
    SGD(1.0, clipnorm=1.0).step([p], [backend.to_device(np.array([3e30, 4e30], dtype=np.float32))])
    np.testing.assert_allclose(backend.to_numpy(p), [-0.6, -0.8], rtol=1e-6)
    assert p.dtype == np.float32


def test_l1_l2_penalties(device):
    w = backend.to_device(np.array([2.0, -1.0, 0.0]))
    zero = backend.to_device(np.zeros(3))
    SGD(0.1, l2=0.5).step([w], [zero])                  # g = 2 l2 w = w: w <- 0.9 w
    np.testing.assert_allclose(backend.to_numpy(w), [1.8, -0.9, 0.0])
    SGD(0.1, l1=1.0).step([w], [zero])                  # g = l1 sign(w)
    np.testing.assert_allclose(backend.to_numpy(w), [1.7, -0.8, 0.0])
    assert regularization.penalty_value([w], l1=1.0, l2=0.5) == pytest.approx(2.5 + 0.5 * (1.7 ** 2 + 0.8 ** 2))


def test_process_gradients_order_penalty_then_clip():
    p = [np.array([10.0])]
    g = [np.array([0.0])]
    out = regularization.process_gradients(p, g, l2=1.0, clipvalue=1.0)   # penalty 20, clipped to 1
    np.testing.assert_allclose(out[0], [1.0])
    assert g[0][0] == 0.0
    assert float(regularization.global_norm([np.array([3.0]), None, np.array([4.0])])) == 5.0


# -- bad input and lookup ----------------------------------------------------------------------------

def test_step_validation():
    opt = SGD(0.1)
    with pytest.raises(ValueError, match="2 params and 1 grads"):
        opt.step([np.zeros(2), np.zeros(2)], [np.zeros(2)])
    with pytest.raises(ValueError, match=r"grads\[0\].*\(2, 3\).*\(3, 2\)"):
        opt.step([np.zeros((2, 3))], [np.zeros((3, 2))])
    with pytest.raises(TypeError, match=r"params\[0\].*int64"):
        opt.step([np.zeros(2, dtype=np.int64)], [np.zeros(2)])


@pytest.mark.parametrize("kwargs, error, match", [
    ({"learning_rate": 0}, ValueError, "learning_rate: expected a number > 0, got 0"),
    ({"learning_rate": "fast"}, TypeError, "learning_rate"),
    ({"l2": -1}, ValueError, "l2: expected a number >= 0"),
    ({"clipnorm": 0}, ValueError, "clipnorm"),
    ({"clipvalue": -1.0}, ValueError, "clipvalue"),
])
def test_constructor_validation(kwargs, error, match):
    with pytest.raises(error, match=match):
        SGD(**kwargs)


def test_decay_validation():
    with pytest.raises(ValueError, match=r"momentum: expected a number in \[0, 1\), got 1.0"):
        Momentum(momentum=1.0)
    with pytest.raises(ValueError, match="beta_2"):
        Adam(beta_2=1.5)
    with pytest.raises(ValueError, match="rho"):
        RMSProp(rho=-0.1)


@pytest.mark.parametrize("name, cls", [("sgd", SGD), ("momentum", Momentum), ("nesterov", Nesterov),
                                       ("adagrad", AdaGrad), ("rmsprop", RMSProp), ("adam", Adam),
                                       ("nadam", Nadam), ("newton", Newton)])
def test_get_optimizer(name, cls):
    opt = get_optimizer(name.upper(), learning_rate=0.5)
    assert type(opt) is cls and isinstance(opt, Optimizer) and opt.learning_rate == 0.5


def test_get_optimizer_objects_and_unknown():
    opt = Adam(clipnorm=1.0)
    assert get_optimizer(opt) is opt
    assert isinstance(get_optimizer(SGD), SGD)
    assert "clipnorm=1.0" in repr(opt) and opt.get_config()["beta_1"] == 0.9
    with pytest.raises(ValueError, match="unknown optimizer 'adamax'.*adamw"):   # AdamW exists since issue 11
        get_optimizer("adamax")
    with pytest.raises(TypeError):
        get_optimizer(opt, learning_rate=1.0)
    assert math.isclose(get_optimizer("momentum").momentum, 0.9)
