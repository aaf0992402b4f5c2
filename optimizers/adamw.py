"""AdamW: Adam with decoupled weight decay (Loshchilov & Hutter, 2019), for Transformers (book chapter 26)."""

from __future__ import annotations

import operator

from .adam import Adam
from .base import check_nonnegative


class AdamW(Adam):
    """Adam whose weight decay shrinks the weights directly instead of entering the gradient.

    θ <- θ (1 - ε λ)                        (only the parameters that decay, see below)
    θ <- θ - ε m̂ ⊘ (sqrt(ŝ) + δ)            (Adam's step, :class:`~optimizers.adam.Adam`)

    Loshchilov & Hutter (2019) show that L2 inside Adam's gradient (``l2=``) is
    scaled down by sqrt(ŝ) where gradients are large, while the decoupled decay
    shrinks every weight by the same factor. λ is multiplied by the learning
    rate ε (and so follows a schedule), as in PyTorch's ``torch.optim.AdamW``;
    the decay comes first, as there. One fused pass per parameter (Adam's kernel
    with ``keep`` = 1 - ε λ).

    Which parameters decay (the rule)
    ---------------------------------
    Weights decay; biases, normalization scales and shifts, and embedding
    tables do not (decaying them pulls a layer's offsets and scales to 0
    without regularizing anything). In order:

    * ``decay_mask`` given: a list of bools aligned with the step's params, or
      a model, whose rule is :func:`decay_mask` (:func:`layers.base.weight_mask`);
    * else the ``weight_mask`` passed to :meth:`step`: ``fit`` passes the
      model's :func:`layers.base.weight_mask` (the library's one rule: no
      parameter of ndim < 2, none named in ``layers.base.BIAS_NAMES``: b,
      bias, biases, beta, gamma, no embedding table);
    * else every parameter of ndim >= 2.

    Parameters
    ----------
    learning_rate : float > 0 or schedule
        ε (default 0.001).
    weight_decay : float >= 0
        λ (default 0.01, PyTorch's).
    beta_1, beta_2, epsilon :
        As for :class:`~optimizers.adam.Adam` (δ default 1e-7; PyTorch's is 1e-8).
    decay_mask : list of bool, model or None
        See the rule above.
    l1, l2, clipnorm, clipvalue, on_nonfinite :
        See :class:`~optimizers.base.Optimizer`.

    State: as Adam's.
    """

    def __init__(self, learning_rate=0.001, weight_decay: float = 0.01, beta_1: float = 0.9,
                 beta_2: float = 0.999, epsilon: float = 1e-7, decay_mask=None, **options):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, **options)
        self.weight_decay = check_nonnegative(weight_decay, "weight_decay")
        if not (decay_mask is None or isinstance(decay_mask, (list, tuple)) or hasattr(decay_mask, "params")):
            raise TypeError(f"AdamW: decay_mask: expected a list of bools, a model or None, "
                            f"got {type(decay_mask).__name__}")
        self.decay_mask = list(decay_mask) if isinstance(decay_mask, tuple) else decay_mask
        self._model_flags: tuple[list, list] | None = None

    def _decay_rate(self) -> float:
        return self.weight_decay

    def _decay_flags(self, params, weight_mask) -> list:
        rule = self.decay_mask
        if rule is None:
            return list(weight_mask) if weight_mask is not None else [p.ndim >= 2 for p in params]
        if isinstance(rule, list):
            if len(rule) != len(params):
                raise ValueError(f"AdamW.step: decay_mask: expected one flag per parameter ({len(params)}), "
                                 f"got {len(rule)}")
            return [bool(flag) for flag in rule]
        cached = self._model_flags
        if cached is None or len(cached[0]) != len(params) or not all(map(operator.is_, cached[0], params)):
            flags = {id(p): flag for p, flag in zip(rule.params, decay_mask(rule))}
            cached = self._model_flags = (list(params), [flags.get(id(p), p.ndim >= 2) for p in params])
        return cached[1]


def is_embedding(layer) -> bool:
    """True for a layer whose parameters are embedding tables (its class sets ``embedding_table = True``)."""
    return bool(getattr(layer, "embedding_table", False))


def decay_mask(model) -> list:
    """For each of ``model.params``: does AdamW's decoupled decay apply to it?

    :func:`layers.base.weight_mask` (the one rule: weights of ndim >= 2 that
    are not a bias, a normalization scale/shift or an embedding table).
    """
    from layers.base import weight_mask

    return weight_mask(model)
