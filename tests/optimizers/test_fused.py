"""The fused optimizers (issue 15) against the 0.1 array formulas (optimizers.reference) and torch.optim, over
many steps, on every device; float16, non-contiguous and mixed-dtype inputs."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from optimizers import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nadam,
    Nesterov,
    RMSProp,
    reference,
)
from optimizers.fused import cpu

SHAPES = [(6, 5), (5,), (3, 2, 2)]
STEPS = 200

# name, optimizer, reference formula with its hyper-parameters
CASES = [
    ("sgd", lambda: SGD(0.05), "sgd", {"learning_rate": 0.05}),
    ("momentum", lambda: Momentum(0.05, momentum=0.8), "momentum", {"learning_rate": 0.05, "momentum": 0.8}),
    ("nesterov", lambda: Nesterov(0.05, momentum=0.8), "nesterov", {"learning_rate": 0.05, "momentum": 0.8}),
    ("adagrad", lambda: AdaGrad(0.05), "adagrad", {"learning_rate": 0.05}),
    ("rmsprop", lambda: RMSProp(0.01, rho=0.95), "rmsprop", {"learning_rate": 0.01, "rho": 0.95}),
    ("adam", lambda: Adam(0.01, beta_1=0.85), "adam", {"learning_rate": 0.01, "beta_1": 0.85}),
    ("nadam", lambda: Nadam(0.01), "nadam", {"learning_rate": 0.01}),
    ("adamw", lambda: AdamW(0.01, weight_decay=0.1), "adamw", {"learning_rate": 0.01, "weight_decay": 0.1}),
]


def random_problem(dtype, steps=STEPS, seed=0):
    rng = np.random.default_rng(seed)
    params = [rng.standard_normal(s).astype(dtype) for s in SHAPES]
    grads = [[rng.standard_normal(s).astype(dtype) for s in SHAPES] for _ in range(steps)]
    return params, grads


def run_reference(name, hyper, params, grads, decayed=None):
    params = [p.copy() for p in params]
    states = [{} for _ in params]
    for t, step_grads in enumerate(grads, start=1):
        for i, (p, g) in enumerate(zip(params, step_grads)):
            kwargs = dict(hyper)
            if name == "adamw":
                kwargs["decay"] = p.ndim >= 2 if decayed is None else decayed[i]
            reference.UPDATES[name](p, g, states[i], t, **kwargs)
    return params


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-10), (np.float32, 2e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("case, make, name, hyper", CASES, ids=[c[0] for c in CASES])
def test_fused_equals_the_0_1_formulas(device, case, make, name, hyper, dtype, rtol):
    params0, grads = random_problem(dtype)
    expected = run_reference(name, hyper, params0, grads)
    params = [backend.to_device(p) for p in params0]
    opt = make()
    for step_grads in grads:
        opt.step(params, [backend.to_device(g) for g in step_grads])
    for p, e in zip(params, expected):
        assert p.dtype == dtype and p.shape == e.shape
        np.testing.assert_allclose(backend.to_numpy(p), e, rtol=rtol, atol=rtol * 10)


def test_sgd_and_momentum_kernels_are_bit_identical_to_numpy():
    params0, grads = random_problem(np.float32, steps=20)
    for make, name, hyper in [(lambda: SGD(0.05), "sgd", {"learning_rate": 0.05}),
                              (lambda: Momentum(0.05, 0.8), "momentum", {"learning_rate": 0.05, "momentum": 0.8})]:
        expected = run_reference(name, hyper, params0, grads)
        params = [p.copy() for p in params0]
        opt = make()
        for step_grads in grads:
            opt.step(params, step_grads)
        for p, e in zip(params, expected):
            np.testing.assert_array_equal(p, e)


# -- against torch.optim --------------------------------------------------------------------------------------

def torch_run(factory, params0, grads, dtype):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the optimizers")
    tdtype = {np.float32: torch.float32, np.float64: torch.float64}[dtype]
    tparams = [torch.nn.Parameter(torch.tensor(p, dtype=tdtype)) for p in params0]
    opt = factory(torch, tparams)
    for step_grads in grads:
        for p, g in zip(tparams, step_grads):
            p.grad = torch.tensor(g, dtype=tdtype)
        opt.step()
    return [p.detach().numpy() for p in tparams]


TORCH = [
    ("sgd", lambda: SGD(0.05), lambda torch, ps: torch.optim.SGD(ps, lr=0.05)),
    ("momentum", lambda: Momentum(0.05, 0.8), lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8)),
    ("nesterov", lambda: Nesterov(0.05, 0.8),
     lambda torch, ps: torch.optim.SGD(ps, lr=0.05, momentum=0.8, nesterov=True)),
    ("adagrad", lambda: AdaGrad(0.05, epsilon=1e-10), lambda torch, ps: torch.optim.Adagrad(ps, lr=0.05)),
    ("rmsprop", lambda: RMSProp(0.01, rho=0.95, epsilon=1e-8),
     lambda torch, ps: torch.optim.RMSprop(ps, lr=0.01, alpha=0.95, eps=1e-8)),
    ("adam", lambda: Adam(0.01, epsilon=1e-8), lambda torch, ps: torch.optim.Adam(ps, lr=0.01)),
    ("adam_fused", lambda: Adam(0.01, epsilon=1e-8), lambda torch, ps: torch.optim.Adam(ps, lr=0.01, fused=True)),
    ("adamw", lambda: AdamW(0.01, weight_decay=0.1, epsilon=1e-8, decay_mask=[True] * len(SHAPES)),
     lambda torch, ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1)),
    ("adamw_fused", lambda: AdamW(0.01, weight_decay=0.1, epsilon=1e-8, decay_mask=[True] * len(SHAPES)),
     lambda torch, ps: torch.optim.AdamW(ps, lr=0.01, weight_decay=0.1, fused=True)),
]


@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-9), (np.float32, 2e-4)], ids=["float64", "float32"])
@pytest.mark.parametrize("case, make, factory", TORCH, ids=[c[0] for c in TORCH])
def test_fused_equals_torch_optim(device, case, make, factory, dtype, rtol):
    params0, grads = random_problem(dtype, steps=300, seed=1)
    expected = torch_run(factory, params0, grads, dtype)
    params = [backend.to_device(p.copy()) for p in params0]
    opt = make()
    for step_grads in grads:
        opt.step(params, [backend.to_device(g) for g in step_grads])
    for p, e in zip(params, expected):
        np.testing.assert_allclose(backend.to_numpy(p), e, rtol=rtol, atol=rtol * 10)


# -- dtypes and layouts -------------------------------------------------------------------------------------

@pytest.mark.parametrize("case, make, name, hyper", CASES, ids=[c[0] for c in CASES])
def test_float16_computed_in_float32(device, case, make, name, hyper):
    params0, grads = random_problem(np.float16, steps=10)
    expected = run_reference(name, hyper, [p.astype(np.float64) for p in params0],
                             [[g.astype(np.float64) for g in s] for s in grads])
    params = [backend.to_device(p) for p in params0]
    opt = make()
    for step_grads in grads:
        opt.step(params, [backend.to_device(g) for g in step_grads])
    for p, e in zip(params, expected):
        assert p.dtype == np.float16
        np.testing.assert_allclose(backend.to_numpy(p).astype(np.float64), e, rtol=1e-2, atol=1e-2)


@pytest.mark.parametrize("case, make, name, hyper", CASES, ids=[c[0] for c in CASES])
def test_non_contiguous_parameter_and_float64_gradient(case, make, name, hyper):
    rng = np.random.default_rng(3)
    base = rng.standard_normal((5, 4)).astype(np.float32)
    grads = [rng.standard_normal((4, 5)) for _ in range(5)]            # float64 gradients for a float32 parameter
    p = base.copy().T                                                   # a transposed (F-ordered) view
    expected = base.T.copy()
    opt, state = make(), {}
    for t, g in enumerate(grads, start=1):
        opt.step([p], [g])
        extra = {"decay": True} if name == "adamw" else {}
        reference.UPDATES[name](expected, g.astype(np.float32), state, t, **hyper, **extra)
    assert p.base is not None and p.dtype == np.float32                 # still the caller's view, updated in place
    np.testing.assert_allclose(p, expected, rtol=1e-5, atol=1e-6)


def test_hypot_never_overflows_and_propagates():
    assert cpu.hypot(np.float32(3e38), np.float32(3e38)) == pytest.approx(4.2426e38, rel=1e-4)
    assert cpu.hypot(np.float32(0), np.float32(0)) == 0
    assert np.isnan(cpu.hypot(np.float32(np.nan), np.float32(1)))
    assert np.isnan(cpu.hypot(np.float32(1), np.float32(np.nan)))
    assert np.isinf(cpu.hypot(np.float32(np.inf), np.float32(1)))
    assert cpu.hypot(np.float64(1e300), np.float64(1e300)) == pytest.approx(np.sqrt(2) * 1e300)


def test_large_arrays_take_the_threaded_path(monkeypatch):
    from optimizers import fused

    monkeypatch.setattr(fused, "PARALLEL_MIN_ELEMENTS", 1000)      # split a small array over the helper threads
    params0, grads = random_problem(np.float32, steps=3)
    expected = run_reference("adam", {"learning_rate": 0.01}, params0, grads)
    params = [p.copy() for p in params0]
    opt = Adam(0.01)
    for step_grads in grads:
        opt.step(params, step_grads)
    for p, e in zip(params, expected):
        np.testing.assert_allclose(p, e, rtol=1e-5)
