"""Issue 13 §1 and §3 (optimizer part): one huge gradient does not freeze an adaptive optimizer, a state
that does become inf/NaN is reported, and a step that raises changes nothing."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import backend
import optimizers
from optimizers import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nadam,
    Nesterov,
    NonFiniteWarning,
    RMSProp,
    reference,
)

HUGE = {np.float32: 1e20, np.float16: 300.0}   # g * g overflows: 1e40 > 3.4e38, 9e4 > 65504


def run_scenario(opt, dtype, device=None):
    """p = ones(3); one step with a huge gradient, then five with gradient 1 (the issue's scenario)."""
    p = backend.to_device(np.ones(3, dtype))
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # no RuntimeWarning, no NonFiniteWarning
        opt.step([p], [backend.to_device(np.full(3, HUGE[dtype], dtype))])
        for _ in range(5):
            opt.step([p], [backend.to_device(np.ones(3, dtype))])
    assert p.dtype == dtype
    return backend.to_numpy(p)


def torch_scenario(torch_cls, torch_dtype, huge, **kwargs):
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the optimizers")
    p = torch.nn.Parameter(torch.ones(3, dtype=torch_dtype))
    opt = torch_cls([p], **kwargs)
    for g in [huge] + [1.0] * 5:
        p.grad = torch.full((3,), g, dtype=torch_dtype)
        opt.step()
    return p.detach().numpy()


TORCH_TWINS = [
    ("adam", lambda: Adam(0.01, epsilon=1e-8), "Adam", {"lr": 0.01}),
    ("adagrad", lambda: AdaGrad(0.01, epsilon=1e-10), "Adagrad", {"lr": 0.01}),
    ("rmsprop", lambda: RMSProp(0.01, rho=0.9, epsilon=1e-8), "RMSprop", {"lr": 0.01, "alpha": 0.9}),
]


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize("name, make, torch_name, kwargs", TORCH_TWINS, ids=[t[0] for t in TORCH_TWINS])
def test_one_huge_gradient_does_not_freeze(device, name, make, torch_name, kwargs, dtype):
    # The careful reference: PyTorch in float64, where g² of the huge gradient is representable.
    # (PyTorch in float32 freezes Adagrad and RMSprop(alpha=0.9) at 1.0 here, and camadas 0.1 all of them.)
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the optimizers")
    expected = torch_scenario(getattr(torch.optim, torch_name), torch.float64, HUGE[dtype], **kwargs)
    got = run_scenario(make(), dtype)
    assert np.all(got < 0.995)                    # it moved
    if dtype == np.float32:
        np.testing.assert_allclose(got, expected, rtol=2e-6)
    else:                                         # float16 parameters: a few of their ulps (9.8e-4 near 1)
        np.testing.assert_allclose(got, expected, atol=2.5e-3)


def test_adam_scenario_equals_pytorch_float32_exactly_as_in_the_issue():
    torch = pytest.importorskip("torch", reason="PyTorch is the reference for the optimizers")
    expected = torch_scenario(torch.optim.Adam, torch.float32, 1e20, lr=0.01, eps=1e-8)
    got = run_scenario(Adam(0.01, epsilon=1e-8), np.float32)
    np.testing.assert_allclose(got, 0.9672, atol=1e-4)           # the issue's 0.967
    np.testing.assert_allclose(got, expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_nadam_huge_gradient_matches_its_formula_in_float64(device, dtype):
    # PyTorch's NAdam uses Dozat's momentum schedule (a different bias correction), so the reference is
    # our Nadam's own formula (optimizers.reference.nadam) evaluated in float64, where nothing overflows.
    p64, state = np.ones(3), {}
    for t, g in enumerate([HUGE[dtype]] + [1.0] * 5, start=1):
        reference.nadam(p64, np.full(3, g), state, t, learning_rate=0.01)
    got = run_scenario(Nadam(0.01), dtype)
    assert np.all(got < 0.99)
    np.testing.assert_allclose(got, p64, rtol=2e-6 if dtype == np.float32 else 3e-3)


def test_camadas_0_1_formulas_froze_the_parameter():
    # What the issue saw: the reference (camadas 0.1) formula squares g and keeps s = inf forever.
    p, state = np.ones(3, np.float32), {}
    with np.errstate(over="ignore"):
        reference.adam(p, np.full(3, 1e20, np.float32), state, 1, learning_rate=0.01)
        for t in range(2, 7):
            reference.adam(p, np.ones(3, np.float32), state, t, learning_rate=0.01)
    assert np.isinf(state["s"]).all() and np.all(p == 1.0)


# -- non-finite state is reported, never trained on silently ------------------------------------------

@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1), lambda: Nesterov(0.1),
                                  lambda: AdaGrad(0.1), lambda: RMSProp(0.1), lambda: Adam(0.1),
                                  lambda: Nadam(0.1), lambda: AdamW(0.1)],
                         ids=["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam", "adamw"])
def test_nonfinite_gradient_warns_naming_parameter_and_step(device, make):
    params = [backend.to_device(np.ones((2, 2), np.float32)), backend.to_device(np.ones(3, np.float32))]
    opt = make()
    ok = [backend.to_device(np.ones((2, 2), np.float32)), backend.to_device(np.ones(3, np.float32))]
    opt.step(params, ok)
    bad = [ok[0], backend.to_device(np.array([1.0, np.inf, 1.0], np.float32))]
    with pytest.warns(NonFiniteWarning, match=r"step 2: inf or NaN in params\[1\] \(shape \(3,\), float32\)"):
        opt.step(params, bad)
    with warnings.catch_warnings():
        warnings.simplefilter("error")            # reported once per parameter, not at every step
        opt.step(params, ok)


def test_nonfinite_names_the_state_that_overflowed_and_can_raise():
    # float16: computed in float32, overflowing when rounded back (velocity -9e4 < -65504).
    p = np.ones(3, np.float16)
    opt = Momentum(1.0, momentum=0.5, on_nonfinite="raise")
    opt.step([p], [np.full(3, 60000.0, np.float16)])             # v = -6e4 and p = 1 - 6e4 fit
    with pytest.raises(FloatingPointError, match=r"step 2: .*params\[0\].*the parameter, state 'velocity'"):
        opt.step([p], [np.full(3, 60000.0, np.float16)])
    opt = Momentum(1.0, momentum=0.5, on_nonfinite="ignore")
    p = np.ones(3, np.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        opt.step([p], [np.full(3, np.inf, np.float16)])
    with pytest.raises(ValueError, match="on_nonfinite: expected one of 'warn', 'raise', 'ignore'"):
        Adam(on_nonfinite="never")


def test_nonfinite_in_a_flat_buffer_names_the_parameter():
    from layers import Dense, Sequential

    model = Sequential([Dense(2, 3, seed=0), Dense(3, 1, seed=1)])
    optimizers.flatten_parameters(model)
    grads = [np.ones_like(p) for p in model.params]
    grads[3] = np.full_like(grads[3], np.nan)
    with pytest.warns(NonFiniteWarning, match=r"in params\[3\] \(shape \(1,\), float32\): the parameter, "
                                              r"state 'm', state 'rms'\."):
        Adam().step(model.params, grads)


# -- issue 13 §3: nothing half-changed after an error -------------------------------------------------

def snapshot(opt, params):
    state = {i: {k: (v.copy() if hasattr(v, "copy") else v) for k, v in s.items()} for i, s in opt.state.items()}
    return [p.copy() for p in params], state, opt.iterations


def assert_unchanged(opt, params, before):
    old_params, old_state, old_iterations = before
    assert opt.iterations == old_iterations
    for p, q in zip(params, old_params):
        np.testing.assert_array_equal(p, q)
    assert set(opt.state) == set(old_state)
    for i in old_state:
        assert set(opt.state[i]) == set(old_state[i])
        for k, v in old_state[i].items():
            np.testing.assert_array_equal(opt.state[i][k], v)


@pytest.mark.parametrize("flat", [False, True], ids=["arrays", "flat"])
@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1), lambda: Adam(0.1),
                                  lambda: AdamW(0.1), lambda: RMSProp(0.1)],
                         ids=["sgd", "momentum", "adam", "adamw", "rmsprop"])
def test_failed_step_changes_nothing(make, flat):
    from layers import Dense, Sequential

    model = Sequential([Dense(2, 3, seed=0), Dense(3, 2, seed=1), Dense(2, 1, seed=2)])
    if flat:
        optimizers.flatten_parameters(model)
    params = model.params
    opt = make()
    opt.step(params, [np.ones_like(p) for p in params])
    before = snapshot(opt, params)
    # The middle entry has another shape than its state: caught before the first parameter moves.
    swapped = params[:2] + [np.zeros((5, 5), np.float32)] + params[3:]
    with pytest.raises(ValueError, match=r"params\[2\]: the optimizer's state was created for shape \(3, 2\)"):
        opt.step(swapped, [np.ones_like(p) for p in swapped])
    assert_unchanged(opt, params, before)
    # A gradient of the wrong shape in the middle, a non-float parameter at the end.
    grads = [np.ones_like(p) for p in params]
    grads[3] = np.ones(7, np.float32)
    with pytest.raises(ValueError, match=r"grads\[3\]"):
        opt.step(params, grads)
    with pytest.raises(TypeError, match=r"params\[5\]"):
        opt.step(params[:5] + [np.ones(1, np.int64)], [np.ones_like(p) for p in params])
    with pytest.raises(ValueError, match="weight_mask"):
        opt.step(params, [np.ones_like(p) for p in params], weight_mask=[True])
    assert_unchanged(opt, params, before)


def test_failed_schedule_changes_nothing():
    p = np.ones(2)
    opt = Adam(learning_rate=lambda step: 0.1 if step < 1 else float("nan"))
    opt.step([p], [np.ones(2)])
    before = snapshot(opt, [p])
    with pytest.raises(ValueError, match="learning_rate: the schedule .* gave nan at step 1"):
        opt.step([p], [np.ones(2)])
    assert_unchanged(opt, [p], before)


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam(0.1)], ids=["sgd", "adam"])
def test_bare_array_is_refused(make):
    x = np.ones(3)
    with pytest.raises(TypeError, match=r"params: expected a list of arrays .* got ndarray of shape \(3,\); "
                                        r"wrap a single array in a list: step\(\[x\], \[g\]\)"):
        make().step(x, [np.ones(3)])
    with pytest.raises(TypeError, match="grads: expected a list of arrays"):
        make().step([x], np.ones(3))
    with pytest.raises(TypeError, match=r"grads\[0\]: expected an array or None, got float"):
        make().step([x], [1.0])
    np.testing.assert_array_equal(x, 1.0)
