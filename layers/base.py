"""The Layer protocol of the book (section 6.2 and every code block of chapters 7, 8 and 22).

A layer is anything with::

    forward(input_data)  -> output
    backward(grad_output) -> (grad_input, param_grads)

``param_grads`` is a list aligned with ``layer.params`` (``None`` when the
layer has no parameters). The book's code blocks subclass this class as
printed (``from layers.base import Layer``; ``super().__init__()`` with no
arguments), and they work unchanged inside :class:`layers.Sequential`.
"""

from __future__ import annotations

import numpy as np

import backend


class Layer:
    """Base class of every layer.

    Attributes
    ----------
    params : list of arrays
        Trainable arrays on the layer's device (``[]`` when none). Optimizers
        update them in place, so the layer's own attributes stay valid.
    training : bool
        True while training (Dropout, RReLU, NoisyReLU and BatchNormalization
        behave differently in evaluation).
    buffers : dict of str -> array
        Non-trainable state that must be saved and moved with the layer
        (BatchNormalization's running statistics).
    """

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        # Remember the constructor arguments so Sequential.save can rebuild the
        # layer without every subclass writing a get_config().
        obj._init_args = (args, kwargs)
        return obj

    def __init__(self):
        self.params = []
        self.training = True
        self.buffers = {}

    # -- the protocol -------------------------------------------------------
    def forward(self, input_data):
        """Compute the layer's output; cache only what ``backward`` needs."""
        raise NotImplementedError(f"{type(self).__name__}.forward is not implemented")

    def backward(self, grad_output):
        """Return ``(grad_input, param_grads)`` given dE/d(output)."""
        raise NotImplementedError(f"{type(self).__name__}.backward is not implemented")

    def __call__(self, input_data):
        return self.forward(input_data)

    # -- modes --------------------------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode (``mode=False`` is :meth:`eval`); returns self."""
        self.training = bool(mode)
        return self

    def eval(self):
        """Set evaluation mode; returns self."""
        return self.train(False)

    # -- parameters ---------------------------------------------------------
    def count_params(self) -> int:
        """Number of trainable scalars."""
        return int(sum(int(np.prod(p.shape)) for p in getattr(self, "params", [])))

    def output_shape(self, input_shape):
        """Shape of the output for an input of ``input_shape`` (batch axis included).

        The default runs a forward pass on zeros in evaluation mode; layers with
        cheap shape arithmetic override it.
        """
        was_training = getattr(self, "training", True)
        self.training = False
        try:
            probe = np.zeros(input_shape, dtype=backend.get_default_dtype())
            if self.params and backend.is_cupy_array(self.params[0]):
                probe = backend.to_device(probe, backend.device_of(self.params[0]))
            return tuple(self.forward(probe).shape)
        finally:
            self.training = was_training

    def _replace_arrays(self, convert) -> None:
        """Apply ``convert`` to every param and buffer, rebinding attributes that alias them."""
        params = getattr(self, "params", [])
        buffers = getattr(self, "buffers", {})
        replaced = {}
        for i, p in enumerate(params):
            new = convert(p)
            replaced[id(p)] = new
            params[i] = new
        for key, b in list(buffers.items()):
            new = convert(b)
            replaced[id(b)] = new
            buffers[key] = new
        if replaced:
            for name, value in list(vars(self).items()):
                if id(value) in replaced and name not in ("params", "buffers"):
                    setattr(self, name, replaced[id(value)])

    def to(self, device):
        """Move params and buffers to ``device`` ("cpu", "gpu", "gpu:N", "auto"); returns self."""
        dev = backend.resolve_device(device)
        self._replace_arrays(lambda a: backend.to_device(a, dev))
        return self

    def astype(self, dtype):
        """Cast params and buffers to ``dtype`` (e.g. ``np.float64`` for gradient checks); returns self."""
        dtype = np.dtype(dtype)
        self._replace_arrays(lambda a: a.astype(dtype, copy=False))
        return self

    def get_config(self) -> dict:
        """Constructor arguments, used by ``Sequential.save``."""
        args, kwargs = getattr(self, "_init_args", ((), {}))
        return {"args": list(args), "kwargs": dict(kwargs)}

    def __repr__(self) -> str:
        args, kwargs = getattr(self, "_init_args", ((), {}))
        parts = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
        return f"{type(self).__name__}({', '.join(parts)})"
