"""Training diagnostics: gradient norms per layer (book section 7.8) and dead units (section 8.3).

* Gradient norms: ``sqrt(Σ g²)`` over the gradients of each layer that holds
  parameters, nested layers included (:func:`parameter_layers` finds them by
  identity of their arrays); ``fit(..., track_gradients=True)`` logs their
  epoch means as ``"grad_norms"``.
* Dead ReLU units: a unit is *dead* for an epoch when it output 0 for every
  sample of every batch; its gradient is then 0 and it stops learning
  (:class:`DeadReluMonitor`, logged as ``"dead_relu_fraction"``).
  :func:`dead_unit_fractions` measures the same for any activation from its
  derivative on a data set.
"""

from __future__ import annotations

import numpy as np

import backend

from ..base import param_owners, set_mode, sublayers, walk


def is_relu(layer) -> bool:
    """True for ``ReLU`` layers (the library's, the book's user class, or subclasses of either)."""
    return any(cls.__name__ == "ReLU" for cls in type(layer).__mro__)


class DeadReluMonitor:
    """Which units of each watched ReLU layer gave a non-zero output at least once this epoch (section 8.3).

    Parameters
    ----------
    relu_indices : iterable of int
        Keys of the layers to watch (``observe`` ignores other keys).

    Notes
    -----
    ``observe(index, output)`` takes a layer's output of shape (batch, ..., units)
    (the last axis is the unit axis; 1-D outputs count as one unit);
    ``fractions()`` returns, per watched layer, 1 - (units that fired) / units
    (NaN for a layer never observed) and starts a new epoch.
    """

    def __init__(self, relu_indices):
        self.indices = list(relu_indices)
        self.alive = {}

    def observe(self, index, output) -> None:
        """Record which units of layer ``index`` fired (output != 0) in this batch; shape (batch, ..., units)."""
        if index not in self.indices:
            return
        units = output.shape[-1] if output.ndim > 1 else 1
        fired = (output != 0).reshape(-1, units).any(axis=0)
        seen = self.alive.get(index)
        self.alive[index] = fired if seen is None else (seen | fired)

    def fractions(self) -> list:
        """Per watched layer, 1 - (units that fired this epoch) / units (NaN if never observed); starts a new epoch."""
        out = []
        for i in self.indices:
            alive = self.alive.get(i)
            if alive is None:
                out.append(float("nan"))
                continue
            xp = backend.get_array_module(alive)
            out.append(1.0 - int(xp.count_nonzero(alive)) / alive.size)
        self.alive = {}
        return out


def parameter_layers(model):
    """The layers of ``model`` that hold parameters, and which of them holds each parameter.

    Returns
    -------
    labels : list of str
        ``"<path>:<class name>"`` per layer with parameters, in parameter order
        (``"0:Dense"``, ``"4.1:Dense"`` for a nested one).
    layer_of_param : list of int
        For each entry of ``model.params``, the index in ``labels`` of its layer.
    """
    labels, index_of, layer_of_param = [], {}, []
    for path, layer in param_owners(model):
        key = (path, id(layer))
        if key not in index_of:
            index_of[key] = len(labels)
            labels.append(f"{path}:{type(layer).__name__}")
        layer_of_param.append(index_of[key])
    return labels, layer_of_param


def gradient_norms_by_layer(grads, layer_of_param, n_layers) -> list:
    """``sqrt(Σ g²)`` per layer from the flat gradient list, as device scalars (float64, no host sync).

    Parameters
    ----------
    grads : list of arrays (None entries skipped)
        Aligned with the model's params.
    layer_of_param : list of int
        From :func:`parameter_layers`.
    n_layers : int
        Length of the result.
    """
    totals = [None] * n_layers
    for g, j in zip(grads, layer_of_param):
        if g is None:
            continue
        xp = backend.get_array_module(g)
        flat = g.reshape(-1).astype(np.float64, copy=False)
        s = xp.dot(flat, flat)
        totals[j] = s if totals[j] is None else totals[j] + s
    return [np.float64(0.0) if t is None else backend.get_array_module(t).sqrt(t) for t in totals]


def layer_gradient_norms(model, X, y, loss) -> tuple:
    """Gradient norm of every layer with parameters for ``loss`` over ``(X, y)`` (one forward/backward).

    ``X`` and ``y`` are on the model's device; the model's modes are left as they are.

    Returns
    -------
    (labels, norms) : list of str, list of float
    """
    loss.forward(model.forward(X), y)
    _, grads = model.backward(loss.backward())
    labels, layer_of_param = parameter_layers(model)
    return labels, [float(v) for v in gradient_norms_by_layer(grads, layer_of_param, len(labels))]


def dead_unit_fractions(model, X, select=None) -> tuple:
    """Per activation layer: the fraction of its units whose derivative is 0 on every sample of ``X``.

    The derivative is the layer's own ``backward`` of ones right after its
    forward, in evaluation mode (modes restored afterwards); for ReLU it is 0
    exactly where the unit output 0 (section 8.3), for a saturating sigmoid
    where it underflowed (section 7.8).

    Parameters
    ----------
    model : Layer
    X : array on the model's device
    select : callable(layer) -> bool, optional
        Which leaf layers to measure; default: leaves without parameters that
        keep the shape of their input (the activations).

    Returns
    -------
    (labels, fractions) : list of str, list of float
    """
    modes = [(layer, getattr(layer, "training", True)) for _, layer in walk(model)]
    leaves = [(path, layer) for path, layer in walk(model) if not sublayers(layer)]
    results = {}

    def default_select(layer):
        return not (getattr(layer, "params", None) or [])

    chosen = [(path, layer) for path, layer in leaves if (select or default_select)(layer)]
    originals = []
    for key, (_path, layer) in enumerate(chosen):
        original = layer.forward

        def observed(input_data, _layer=layer, _original=original, _key=key):
            output = _original(input_data)
            if tuple(output.shape) == tuple(input_data.shape):
                xp = backend.get_array_module(output)
                derivative, _ = _layer.backward(xp.ones_like(output))
                units = output.shape[-1] if output.ndim > 1 else 1
                alive = (derivative != 0).reshape(-1, units).any(axis=0)
                results[_key] = 1.0 - int(xp.count_nonzero(alive)) / alive.size
            return output

        originals.append((layer, "forward" in vars(layer), original))
        layer.forward = observed
    set_mode(model, False)
    try:
        model.forward(X)
    finally:
        for layer, had_own, original in originals:
            if had_own:
                layer.forward = original
            else:
                del layer.forward
        for layer, mode in modes:
            layer.training = mode
    labels = [f"{path}:{type(layer).__name__}" for key, (path, layer) in enumerate(chosen) if key in results]
    return labels, [results[key] for key in range(len(chosen)) if key in results]
