"""Learning-rate schedules: the rate as a function of the step, for every optimizer.

Pass one as the optimizer's learning rate (``Adam(CosineDecay(1e-3, 10_000))``);
the optimizer evaluates ``schedule(step)`` before each update, ``step`` being
the number of updates already made (0 for the first), so a run resumed with the
same ``iterations`` gets the same rates. Steps are optimizer steps (batches),
not epochs: for a decay every epoch, pass ``steps_per_epoch * epochs``.

The formulas are PyTorch's ``torch.optim.lr_scheduler`` closed forms (StepLR,
ExponentialLR, CosineAnnealingLR, LinearLR then cosine) and the original
Transformer's inverse square root (Vaswani et al., 2017, eq. 3); each is tested
step by step against PyTorch's values.
"""

from __future__ import annotations

import math
import numbers

from backend.checks import check_nonnegative, check_positive, check_positive_int


def check_step(step) -> int:
    """Return ``step`` as int after checking it is an integer >= 0."""
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 0:
        raise ValueError(f"schedule: step: expected an integer >= 0, got {step!r}")
    return int(step)


class LearningRateSchedule:
    """Base class: ``schedule(step) -> learning rate`` (a float >= 0) for ``step`` = 0, 1, 2, ...

    Subclasses implement :meth:`rate`; ``__call__`` checks the step.
    """

    def __call__(self, step) -> float:
        return self.rate(check_step(step))

    def rate(self, step: int) -> float:
        """The learning rate at ``step`` (an int >= 0, already checked); the formula is in the class docstring."""
        raise NotImplementedError(f"{type(self).__name__}.rate is not implemented")

    def get_config(self) -> dict:
        """Constructor arguments."""
        return {k: v for k, v in vars(self).items() if not k.startswith("_")}

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.get_config().items())})"


class StepDecay(LearningRateSchedule):
    """Multiply the rate by ``gamma`` every ``step_size`` steps (PyTorch's StepLR).

    lr(t) = lr0 · γ^floor(t / step_size)

    Parameters
    ----------
    initial_learning_rate : float > 0
        lr0.
    step_size : int >= 1
    gamma : float > 0
        Default 0.1.
    """

    def __init__(self, initial_learning_rate: float, step_size: int, gamma: float = 0.1):
        self.initial_learning_rate = check_positive(initial_learning_rate, "initial_learning_rate")
        self.step_size = check_positive_int(step_size, "step_size")
        self.gamma = check_positive(gamma, "gamma")

    def rate(self, step):
        """lr(t) = lr0 · γ^floor(t / step_size)."""
        return self.initial_learning_rate * self.gamma ** (step // self.step_size)


class ExponentialDecay(LearningRateSchedule):
    """Multiply the rate by ``gamma`` every step (PyTorch's ExponentialLR).

    lr(t) = lr0 · γ^t

    Parameters
    ----------
    initial_learning_rate : float > 0
    gamma : float > 0
        E.g. 0.999.
    """

    def __init__(self, initial_learning_rate: float, gamma: float):
        self.initial_learning_rate = check_positive(initial_learning_rate, "initial_learning_rate")
        self.gamma = check_positive(gamma, "gamma")

    def rate(self, step):
        """lr(t) = lr0 · γ^t."""
        return self.initial_learning_rate * self.gamma ** step


def _cosine(peak: float, floor: float, progress: float) -> float:
    """floor + (peak - floor) (1 + cos(π progress)) / 2, progress clamped to [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    return floor + (peak - floor) * (1.0 + math.cos(math.pi * progress)) / 2.0


def _check_floor(min_learning_rate, peak, peak_name) -> float:
    floor = check_nonnegative(min_learning_rate, "min_learning_rate")
    if floor > peak:
        raise ValueError(f"min_learning_rate: expected a number <= {peak_name} ({peak}), got {floor}")
    return floor


class CosineDecay(LearningRateSchedule):
    """Half a cosine from lr0 down to ``min_learning_rate`` over ``decay_steps``, then constant
    (Loshchilov & Hutter, 2017, without restarts; PyTorch's CosineAnnealingLR up to T_max).

    lr(t) = lr_min + (lr0 - lr_min) (1 + cos(π min(t, T) / T)) / 2

    Parameters
    ----------
    initial_learning_rate : float > 0
        lr0.
    decay_steps : int >= 1
        T.
    min_learning_rate : float in [0, lr0]
        Default 0.
    """

    def __init__(self, initial_learning_rate: float, decay_steps: int, min_learning_rate: float = 0.0):
        self.initial_learning_rate = check_positive(initial_learning_rate, "initial_learning_rate")
        self.decay_steps = check_positive_int(decay_steps, "decay_steps")
        self.min_learning_rate = _check_floor(min_learning_rate, self.initial_learning_rate, "initial_learning_rate")

    def rate(self, step):
        """lr(t) = lr_min + (lr0 - lr_min) (1 + cos(π min(t, T) / T)) / 2."""
        return _cosine(self.initial_learning_rate, self.min_learning_rate, step / self.decay_steps)


class WarmupCosineDecay(LearningRateSchedule):
    """Linear warm-up to the peak rate, then a cosine decay to ``min_learning_rate`` (Transformers, ViT).

    lr(t) = lr_init + (lr_peak - lr_init) t / W                        for t < W
    lr(t) = lr_min + (lr_peak - lr_min) (1 + cos(π (t - W) / (T - W))) / 2   for W <= t <= T, lr_min after

    (PyTorch: ``SequentialLR([LinearLR(start_factor=lr_init / lr_peak, total_iters=W),
    CosineAnnealingLR(T_max=T - W, eta_min=lr_min)], milestones=[W])``.)

    Parameters
    ----------
    peak_learning_rate : float > 0
    warmup_steps : int >= 0
        W (0: no warm-up).
    total_steps : int > warmup_steps
        T, where the cosine reaches ``min_learning_rate``.
    min_learning_rate : float in [0, peak]
        Default 0.
    initial_learning_rate : float in [0, peak]
        The rate of step 0 (default 0).
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int, total_steps: int,
                 min_learning_rate: float = 0.0, initial_learning_rate: float = 0.0):
        self.peak_learning_rate = check_positive(peak_learning_rate, "peak_learning_rate")
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps", minimum=0)
        self.total_steps = check_positive_int(total_steps, "total_steps", minimum=self.warmup_steps + 1)
        self.min_learning_rate = _check_floor(min_learning_rate, self.peak_learning_rate, "peak_learning_rate")
        initial = check_nonnegative(initial_learning_rate, "initial_learning_rate")
        if initial > self.peak_learning_rate:
            raise ValueError(f"initial_learning_rate: expected a number <= peak_learning_rate "
                             f"({self.peak_learning_rate}), got {initial}")
        self.initial_learning_rate = initial

    def rate(self, step):
        """lr(t) = linear warm-up for t < W, then the cosine to lr_min."""
        warmup = self.warmup_steps
        if step < warmup:
            return self.initial_learning_rate + (self.peak_learning_rate - self.initial_learning_rate) * step / warmup
        return _cosine(self.peak_learning_rate, self.min_learning_rate, (step - warmup) / (self.total_steps - warmup))


class InverseSquareRootDecay(LearningRateSchedule):
    """Linear warm-up, then decay with the inverse square root of the step (the original Transformer's).

    lr(t) = lr_peak · min(n / W, sqrt(W / n)),   n = t + 1

    which peaks at n = W. Vaswani et al. (2017, eq. 3),
    lrate = d_model^-0.5 · min(n^-0.5, n · W^-1.5), is the case
    lr_peak = (d_model W)^-0.5: :meth:`transformer`.

    Parameters
    ----------
    peak_learning_rate : float > 0
    warmup_steps : int >= 1
        W (4000 in the paper).
    """

    def __init__(self, peak_learning_rate: float, warmup_steps: int):
        self.peak_learning_rate = check_positive(peak_learning_rate, "peak_learning_rate")
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps")

    @classmethod
    def transformer(cls, d_model: int, warmup_steps: int = 4000) -> InverseSquareRootDecay:
        """Vaswani et al.'s schedule for a model of width ``d_model`` (peak (d_model W)^-0.5)."""
        d_model = check_positive_int(d_model, "d_model")
        warmup_steps = check_positive_int(warmup_steps, "warmup_steps")
        return cls((d_model * warmup_steps) ** -0.5, warmup_steps)

    def rate(self, step):
        """lr(t) = lr_peak · min(n / W, sqrt(W / n)), n = t + 1."""
        n = step + 1
        return self.peak_learning_rate * min(n / self.warmup_steps, math.sqrt(self.warmup_steps / n))


__all__ = ["CosineDecay", "ExponentialDecay", "InverseSquareRootDecay", "LearningRateSchedule", "StepDecay",
           "WarmupCosineDecay"]
