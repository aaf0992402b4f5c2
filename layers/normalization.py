"""Batch and layer normalization (book section 25.3: 25.3.1 "Normalização de Camadas",
25.3.2 "Normalização de Batch").

Both layers standardise their input over some axes and apply a learned affine
map per feature::

    x̂ = (x - μ) / sqrt(σ² + ε),     y = γ x̂ + β

with μ and σ² (biased variance, divided by N) taken over the normalised axes.
Their backward pass shares one formula: for N normalised elements,

    dE/dβ = Σ dE/dy,    dE/dγ = Σ dE/dy ⊙ x̂,    g = dE/dy ⊙ γ
    dE/dx = (1 / sqrt(σ² + ε)) (g - mean(g) - x̂ ⊙ mean(g ⊙ x̂))

where the means run over the same axes as μ and σ². The layers call the fused
kernels of :mod:`kernels.normalization` (statistics accumulated in float64,
reductions in a fixed order); :mod:`kernels.normalization.reference` keeps
these formulas in NumPy.
"""

from __future__ import annotations

import numbers

import numpy as np

import backend
from backend.checks import check_bool, check_input, check_positive, check_positive_int, check_rate
from kernels import normalization as kernels

from .base import Layer
from .initializers import filled


def _check_epsilon(epsilon) -> float:
    return check_positive(epsilon, "epsilon")


def _sums_over_ranks(communicator, parts, axes, extra=None):
    """Per feature, ``Σ part`` over ``axes`` and over every rank, for each of ``parts``; float64 on the device.

    One all-reduce of ``len(parts)`` rows (plus ``extra``, a trailing scalar, when given).
    """
    xp = backend.get_array_module(parts[0])
    features = parts[0].size // max(1, int(np.prod([parts[0].shape[a] for a in axes])))
    packed = xp.empty(len(parts) * features + (extra is not None), np.float64)
    for k, part in enumerate(parts):
        packed[k * features:(k + 1) * features] = part.sum(axis=axes, dtype=np.float64).reshape(-1)
    if extra is not None:
        packed[-1] = extra
    communicator.allreduce_sum([packed])
    return packed


def _standardize_synced(x, axes, epsilon, communicator):
    """:func:`_standardize` with μ and σ² over ``axes`` of every rank's ``x``; also returns the global count.

    Two all-reduces (Σx with the count, then Σ(x - μ)²): the two-pass variance,
    stable where E[x²] - μ² cancels.
    """
    features = x.size // int(np.prod([x.shape[a] for a in axes]))
    shape = tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))
    packed = _sums_over_ranks(communicator, [x], axes, extra=x.size // features)
    count = packed[-1:]                                 # stays on the device: no host synchronisation
    mean = (packed[:-1] / count).astype(x.dtype).reshape(shape)
    centered = x - mean
    var = (_sums_over_ranks(communicator, [centered * centered], axes) / count).astype(x.dtype).reshape(shape)
    inv_std = 1.0 / backend.get_array_module(x).sqrt(var + x.dtype.type(epsilon))
    return centered * inv_std, inv_std, mean, var, count


def _standardize_backward_synced(grad_xhat, x_hat, inv_std, axes, communicator, count):
    """:func:`_standardize_backward` with the means of g and g x̂ over every rank (one all-reduce)."""
    packed = _sums_over_ranks(communicator, [grad_xhat, grad_xhat * x_hat], axes) / count
    features = packed.size // 2
    mean_g = packed[:features].astype(grad_xhat.dtype).reshape(inv_std.shape)
    mean_gx = packed[features:].astype(grad_xhat.dtype).reshape(inv_std.shape)
    return inv_std * (grad_xhat - mean_g - x_hat * mean_gx)


class BatchNormalization(Layer):
    """Batch normalization (Ioffe and Szegedy, 2015; book section 25.3.2).

    Each feature is standardised with the statistics of the current batch in
    training, and with running statistics in evaluation, then scaled and
    shifted by learned ``gamma`` and ``beta``::

        training:   μ_B, σ²_B over every axis except ``axis`` (batch, and H, W for NHWC)
                    y = γ (x - μ_B) / sqrt(σ²_B + ε) + β
                    running_mean = momentum * running_mean + (1 - momentum) * μ_B
                    running_var  = momentum * running_var  + (1 - momentum) * σ²_B
        evaluation: y = γ (x - running_mean) / sqrt(running_var + ε) + β

    The momentum convention is Keras's (``momentum`` is the weight of the old
    running value; PyTorch's ``momentum`` is ``1 - ours``). ``σ²_B`` is the
    biased batch variance (divided by N), in training and in the running
    update, as in Keras.

    In data-parallel training each rank normalizes with the statistics of
    its own slice of the batch by default (and ``fit`` averages the running
    statistics over the ranks every epoch). With ``sync=True`` (ChainerMN's
    MultiNodeBatchNormalization, PyTorch's SyncBatchNorm) μ_B and σ²_B, and
    the two means of the backward pass, are taken over the slices of every
    rank of the current communicator (three small all-reduces per step), so
    the layer computes exactly what it computes in one process on the whole
    batch; without a communicator it is the plain layer.

    Parameters
    ----------
    num_features : int
        Size of the feature axis (F for ``(B, F)``, C for NHWC ``(B, H, W, C)``).
    momentum : float in [0, 1)
        Weight of the old running statistics (default 0.9).
    epsilon : float > 0
        Added to the variance (default 1e-5, as PyTorch and the LayerNormalization
        here; Keras uses 1e-3).
    axis : int
        The feature axis (default -1: the last, for ``(B, F)`` and NHWC).
    sync : bool
        Batch statistics over every rank of the current communicator
        (:func:`backend.distributed.current_communicator`) in training; default False.

    Shapes
    ------
    input (batch, ..., num_features, ...) -> output of the same shape and dtype.
    ``params = [gamma (num_features,), beta (num_features,)]`` (ones and zeros);
    ``buffers = {"running_mean": zeros (num_features,), "running_var": ones (num_features,)}``,
    saved and moved with the layer.

    Backward
    --------
    Training mode differentiates through the batch statistics (formula in the
    module docstring, means over the non-feature axes). Evaluation mode is the
    fixed affine map ``dE/dx = dE/dy γ / sqrt(running_var + ε)``.
    ``dE/dγ = Σ dE/dy x̂`` and ``dE/dβ = Σ dE/dy`` in both modes.
    """

    def __init__(self, num_features, momentum=0.9, epsilon=1e-5, axis=-1, sync=False):
        super().__init__()
        self.num_features = check_positive_int(num_features, "num_features")
        self.momentum = check_rate(momentum, "momentum")
        self.epsilon = _check_epsilon(epsilon)
        if isinstance(axis, bool) or not isinstance(axis, numbers.Integral):
            raise TypeError(f"axis: expected an int, got {type(axis).__name__} {axis!r}")
        self.axis = int(axis)
        self.sync = check_bool(sync, "sync", "BatchNormalization")
        self.gamma = filled((self.num_features,), 1.0)
        self.beta = filled((self.num_features,), 0.0)
        self.params = [self.gamma, self.beta]
        self.buffers = {
            "running_mean": filled((self.num_features,), 0.0),
            "running_var": filled((self.num_features,), 1.0),
        }
        self._cache = None

    @property
    def running_mean(self):
        """Running mean per feature, ``buffers["running_mean"]``."""
        return self.buffers["running_mean"]

    @running_mean.setter
    def running_mean(self, value):
        self.buffers["running_mean"] = value

    @property
    def running_var(self):
        """Running (biased) variance per feature, ``buffers["running_var"]``."""
        return self.buffers["running_var"]

    @running_var.setter
    def running_var(self, value):
        self.buffers["running_var"] = value

    def _feature_axis(self, x) -> int:
        if not -x.ndim <= self.axis < x.ndim:
            raise ValueError(
                f"BatchNormalization: axis: expected an axis of the {x.ndim}-D input_data "
                f"(shape {tuple(x.shape)}), got {self.axis}"
            )
        axis = self.axis % x.ndim
        if axis == 0:
            raise ValueError("BatchNormalization: axis: expected a feature axis other than the batch axis 0, got 0")
        if x.shape[axis] != self.num_features:
            raise ValueError(
                f"BatchNormalization: input_data: expected {self.num_features} features on axis {self.axis}, "
                f"got shape {tuple(x.shape)}"
            )
        return axis

    def forward(self, input_data):
        x = check_input(input_data, layer="BatchNormalization")
        if x.ndim < 2:
            raise ValueError(
                f"BatchNormalization: input_data: expected an array of at least 2 dimensions (batch, ..., features), "
                f"got shape {tuple(x.shape)}"
            )
        axis = self._feature_axis(x)
        backend.get_array_module(x, self.gamma)  # mixed-device TypeError
        if self.training:
            communicator = self._communicator()
            count = x.size // self.num_features
            if count < (1 if communicator is not None else 2):
                raise ValueError(
                    f"BatchNormalization: input_data: expected more than 1 value per feature in training "
                    f"(batch statistics), got shape {tuple(x.shape)}; use a larger batch or eval()"
                )
            if communicator is not None:
                return self._forward_synced(x, axis, communicator)
            out, mean, var, inv_std = kernels.batch_norm_forward(x, self.gamma, self.beta, self.epsilon, axis)
            m = self.momentum
            # In place: the buffers keep their identity (and dtype) for savers and optimizers.
            running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
            running_mean *= m
            running_mean += (1.0 - m) * mean.astype(running_mean.dtype, copy=False)
            running_var *= m
            running_var += (1.0 - m) * var.astype(running_var.dtype, copy=False)
        else:
            mean = self.buffers["running_mean"].astype(x.dtype, copy=False)
            out, inv_std = kernels.batch_norm_forward_eval(x, self.gamma, self.beta, mean,
                                                           self.buffers["running_var"], self.epsilon, axis)
        self._cache = ("batch" if self.training else "running", x, mean, inv_std, axis)
        return out

    def _forward_synced(self, x, axis, communicator):
        """Training forward with μ_B and σ²_B over every rank (:func:`_standardize_synced`)."""
        axes = tuple(a for a in range(x.ndim) if a != axis)
        bshape = tuple(self.num_features if a == axis else 1 for a in range(x.ndim))
        gamma = self.gamma.astype(x.dtype, copy=False).reshape(bshape)
        beta = self.beta.astype(x.dtype, copy=False).reshape(bshape)
        x_hat, inv_std, mean, var, total = _standardize_synced(x, axes, self.epsilon, communicator)
        m = self.momentum
        running_mean, running_var = self.buffers["running_mean"], self.buffers["running_var"]
        running_mean *= m
        running_mean += (1.0 - m) * mean.reshape(-1).astype(running_mean.dtype, copy=False)
        running_var *= m
        running_var += (1.0 - m) * var.reshape(-1).astype(running_var.dtype, copy=False)
        self._cache = ("synced", x_hat, inv_std, gamma, axes, (communicator, total))
        return gamma * x_hat + beta

    def _communicator(self):
        """The communicator to synchronise over: with ``sync``, the current one when it has several ranks."""
        if not self.sync:
            return None
        from backend.distributed import current_communicator

        communicator = current_communicator()
        return communicator if communicator is not None and communicator.size > 1 else None

    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError("BatchNormalization.backward called before forward")
        mode, x = self._cache[:2]  # x: the forward's input (x̂ when synced)
        if tuple(grad_output.shape) != tuple(x.shape):
            raise ValueError(
                f"BatchNormalization: grad_output: expected shape {tuple(x.shape)} (the last forward's "
                f"output), got {tuple(grad_output.shape)}"
            )
        if mode == "synced":
            _, x_hat, inv_std, gamma, axes, synced = self._cache
            grad_gamma = (grad_output * x_hat).sum(axis=axes)
            grad_beta = grad_output.sum(axis=axes)
            grad_input = _standardize_backward_synced(grad_output * gamma, x_hat, inv_std, axes, *synced)
        else:
            _, x, mean, inv_std, axis = self._cache
            grad_input, grad_gamma, grad_beta = kernels.batch_norm_backward(grad_output, x, self.gamma, mean,
                                                                            inv_std, axis, mode == "batch")
        return grad_input, [grad_gamma.astype(self.gamma.dtype, copy=False),
                            grad_beta.astype(self.beta.dtype, copy=False)]

    def output_shape(self, input_shape):
        return tuple(input_shape)


class LayerNormalization(Layer):
    """Layer normalization (Ba, Kiros and Hinton, 2016; book section 25.3.1).

    Each sample is standardised over its last ``len(normalized_shape)`` axes
    (its features), with no batch statistics, so training and evaluation
    behave the same and any batch size works::

        μ, σ² over the normalised axes of one sample
        y = γ (x - μ) / sqrt(σ² + ε) + β

    Parameters
    ----------
    normalized_shape : int or tuple of int
        Shape of the trailing axes to normalise: ``num_features`` (the last
        axis, the usual case) or e.g. ``(H, W, C)``.
    epsilon : float > 0
        Added to the variance (default 1e-5).
    center, scale : bool
        Learn ``beta`` / ``gamma`` (default True). Only the learned ones are in ``params``.

    Shapes
    ------
    input (batch, ..., *normalized_shape) -> output of the same shape and dtype;
    ``params = [gamma normalized_shape, beta normalized_shape]`` (ones and zeros).

    Backward: the module docstring's formula with means over the normalised
    axes; ``dE/dγ`` and ``dE/dβ`` sum over the leading (batch) axes.
    """

    def __init__(self, normalized_shape, epsilon=1e-5, center=True, scale=True):
        super().__init__()
        if isinstance(normalized_shape, (tuple, list)):
            if len(normalized_shape) == 0:
                raise ValueError("normalized_shape: expected an int or a non-empty tuple of ints, got ()")
            shape = tuple(check_positive_int(s, f"normalized_shape[{i}]") for i, s in enumerate(normalized_shape))
        else:
            shape = (check_positive_int(normalized_shape, "normalized_shape"),)
        self.normalized_shape = shape
        self.epsilon = _check_epsilon(epsilon)
        self.center = check_bool(center, "center", "LayerNormalization")
        self.scale = check_bool(scale, "scale", "LayerNormalization")
        self.gamma = filled(shape, 1.0) if self.scale else None
        self.beta = filled(shape, 0.0) if self.center else None
        self.params = [p for p in (self.gamma, self.beta) if p is not None]
        self._cache = None

    def forward(self, input_data):
        x = check_input(input_data, layer="LayerNormalization")
        k = len(self.normalized_shape)
        if x.ndim < k + 1 or tuple(x.shape[-k:]) != self.normalized_shape:
            expected = ", ".join(str(s) for s in self.normalized_shape)
            raise ValueError(
                f"LayerNormalization: input_data: expected shape (batch, ..., {expected}), got {tuple(x.shape)}"
            )
        backend.get_array_module(x, *self.params)  # mixed-device TypeError
        out, mean, inv_std = kernels.layer_norm_forward(x, self.gamma, self.beta, self.epsilon, k)
        self._cache = (x, mean, inv_std)
        return out

    def backward(self, grad_output):
        if self._cache is None:
            raise RuntimeError("LayerNormalization.backward called before forward")
        x, mean, inv_std = self._cache
        if tuple(grad_output.shape) != tuple(x.shape):
            raise ValueError(
                f"LayerNormalization: grad_output: expected shape {tuple(x.shape)} (the last forward's "
                f"output), got {tuple(grad_output.shape)}"
            )
        grad_input, grad_gamma, grad_beta = kernels.layer_norm_backward(grad_output, x, self.gamma, mean, inv_std,
                                                                        len(self.normalized_shape))
        grads = []
        if self.scale:
            grads.append(grad_gamma.astype(self.gamma.dtype, copy=False))
        if self.center:
            grads.append(grad_beta.astype(self.beta.dtype, copy=False))
        return grad_input, (grads if self.params else None)

    def output_shape(self, input_shape):
        return tuple(input_shape)
