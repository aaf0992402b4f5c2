"""Learning-rate schedules (issue 11) step by step against torch.optim.lr_scheduler, and inside the optimizers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimizers import (
    SGD,
    Adam,
    CosineDecay,
    ExponentialDecay,
    InverseSquareRootDecay,
    Momentum,
    StepDecay,
    WarmupCosineDecay,
)

torch = pytest.importorskip("torch", reason="PyTorch's lr_scheduler is the reference for the schedules")
lr_scheduler = torch.optim.lr_scheduler


def torch_rates(base_lr, make_scheduler, steps):
    """get_last_lr() before each of ``steps`` optimizer steps (scheduler.step() after each)."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=base_lr)
    scheduler = make_scheduler(opt)
    rates = []
    for _ in range(steps):
        rates.append(scheduler.get_last_lr()[0])
        opt.step()
        scheduler.step()
    return rates


CASES = [
    ("step", StepDecay(0.1, step_size=7, gamma=0.5), 0.1, lambda o: lr_scheduler.StepLR(o, step_size=7, gamma=0.5),
     40),
    ("exponential", ExponentialDecay(0.1, gamma=0.97), 0.1, lambda o: lr_scheduler.ExponentialLR(o, gamma=0.97), 60),
    ("cosine", CosineDecay(0.1, decay_steps=30, min_learning_rate=0.002), 0.1,
     lambda o: lr_scheduler.CosineAnnealingLR(o, T_max=30, eta_min=0.002), 31),
    ("warmup_cosine", WarmupCosineDecay(0.1, warmup_steps=5, total_steps=25, min_learning_rate=0.001,
                                        initial_learning_rate=0.01), 0.1,
     lambda o: lr_scheduler.SequentialLR(o, [lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
                                             lr_scheduler.CosineAnnealingLR(o, T_max=20, eta_min=0.001)],
                                         milestones=[5]), 26),
    # Vaswani et al. (2017), eq. 3, written out: lrate = d^-0.5 min(n^-0.5, n W^-1.5), n = step + 1.
    ("inverse_sqrt", InverseSquareRootDecay.transformer(d_model=512, warmup_steps=40), 1.0,
     lambda o: lr_scheduler.LambdaLR(o, lambda s: 512 ** -0.5 * min((s + 1) ** -0.5, (s + 1) * 40 ** -1.5)), 200),
]


@pytest.mark.parametrize("name, schedule, base, make, steps", CASES, ids=[c[0] for c in CASES])
def test_schedule_equals_torch_step_by_step(name, schedule, base, make, steps):
    expected = torch_rates(base, make, steps)
    np.testing.assert_allclose([schedule(t) for t in range(steps)], expected, rtol=1e-12)


def test_schedules_stay_at_their_floor():
    assert CosineDecay(0.1, 10, 0.01)(1000) == pytest.approx(0.01)
    assert WarmupCosineDecay(0.1, 2, 10)(50) == 0.0
    assert WarmupCosineDecay(0.1, 0, 10)(0) == pytest.approx(0.1)            # no warm-up: the peak at once
    s = InverseSquareRootDecay(1e-3, warmup_steps=100)
    assert s(99) == pytest.approx(1e-3) and s(399) == pytest.approx(5e-4)   # peak at n = W, then 1/sqrt(n)


def test_optimizer_follows_the_schedule_like_torch():
    rng = np.random.default_rng(0)
    p0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(40)]
    p = p0.copy()
    opt = Adam(WarmupCosineDecay(0.05, warmup_steps=5, total_steps=30, initial_learning_rate=0.005), epsilon=1e-8)
    rates = []
    for g in grads:
        opt.step([p], [g])
        rates.append(opt.last_learning_rate)
    tp = torch.nn.Parameter(torch.tensor(p0))
    topt = torch.optim.Adam([tp], lr=0.05)
    sched = lr_scheduler.SequentialLR(topt, [lr_scheduler.LinearLR(topt, start_factor=0.1, total_iters=5),
                                             lr_scheduler.CosineAnnealingLR(topt, T_max=25)], milestones=[5])
    for g in grads[:31]:                      # torch's cosine turns back up after T_max: compare up to there
        tp.grad = torch.tensor(g)
        topt.step()
        sched.step()
    q = p0.copy()
    ours = Adam(WarmupCosineDecay(0.05, warmup_steps=5, total_steps=30, initial_learning_rate=0.005), epsilon=1e-8)
    for g in grads[:31]:
        ours.step([q], [g])
    np.testing.assert_allclose(q, tp.detach().numpy(), rtol=1e-10)
    assert rates[0] == pytest.approx(0.005) and rates[5] == pytest.approx(0.05) and rates[-1] == 0.0
    assert opt.learning_rate == 0.0 and opt.iterations == 40


def test_learning_rate_attribute_and_callable_schedules():
    opt = SGD(0.5)
    assert opt.learning_rate == 0.5 and opt.schedule is None and opt.last_learning_rate is None
    opt.learning_rate = 0.25                  # what ReduceLROnPlateau does
    p = np.ones(2)
    opt.step([p], [np.ones(2)])
    np.testing.assert_allclose(p, 0.75)
    assert opt.last_learning_rate == 0.25
    opt = Momentum(lambda step: 0.1 / (step + 1), momentum=0.0)
    p = np.zeros(1)
    for _ in range(3):
        opt.step([p], [np.ones(1)])
    np.testing.assert_allclose(p, -(0.1 + 0.05 + 0.1 / 3))
    assert opt.learning_rate == pytest.approx(0.025)           # the rate of the next step
    assert "learning_rate=StepDecay(initial_learning_rate=0.1, step_size=3, gamma=0.1)" in repr(
        Adam(StepDecay(0.1, 3)))
    with pytest.raises(ValueError, match="learning_rate: expected a number > 0, got -1"):
        opt.learning_rate = -1


@pytest.mark.parametrize("make, match", [
    (lambda: StepDecay(0.1, 0), "step_size: expected an integer >= 1, got 0"),
    (lambda: ExponentialDecay(0.1, -0.5), "gamma: expected a number > 0"),
    (lambda: CosineDecay(0.1, 10, min_learning_rate=0.5),
     r"min_learning_rate: expected a number <= initial_learning_rate \(0.1\), got 0.5"),
    (lambda: WarmupCosineDecay(0.1, 10, 10), "total_steps: expected an integer >= 11, got 10"),
    (lambda: WarmupCosineDecay(0.1, 1, 10, initial_learning_rate=1.0), "initial_learning_rate: expected a number <="),
    (lambda: InverseSquareRootDecay(float("inf"), 10), "peak_learning_rate: expected a finite number > 0"),
    (lambda: InverseSquareRootDecay.transformer(0), "d_model: expected an integer >= 1"),
    (lambda: CosineDecay(0.1, 10)(-1), "schedule: step: expected an integer >= 0, got -1"),
    (lambda: CosineDecay(0.1, 10)(1.5), "schedule: step: expected an integer >= 0, got 1.5"),
])
def test_bad_arguments(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_inverse_sqrt_is_the_papers_formula():
    s = InverseSquareRootDecay.transformer(512, 4000)
    for n in (1, 100, 4000, 10_000):
        assert s(n - 1) == pytest.approx(512 ** -0.5 * min(n ** -0.5, n * 4000 ** -1.5), rel=1e-12)
    assert math.isclose(max(s(t) for t in range(8000)), (512 * 4000) ** -0.5)
