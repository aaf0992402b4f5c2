"""The shared machinery of the elementwise activation layers (book chapters 7-9).

Every elementwise activation is a :class:`~layers.base.Layer` whose forward
and backward call the dispatched kernels of :mod:`kernels.activations`
(fused Numba kernels for NumPy float32/float64 arrays, CuPy kernels on the
GPU, the book's NumPy code for anything else). Non-contiguous NumPy inputs
(transposes, strided slices) are copied to C order first, so they take the
same fused kernels, with the same results and no spurious overflow warnings
at extreme values. The layer caches only the tensor its derivative reads
(``kernels.activations.BACKWARD_NEEDS``): the output for
Sigmoid, Tanh, ReLU, ELU and SELU (the book's "reuse the function's value",
section 7.4), the input for the others. Inside :func:`layers.base.checks_done`
the argument checks are skipped and NumPy arrays go straight to
:mod:`kernels.activations.cpu` (the kernels the dispatcher would choose for
arrays that passed the checks: the same results).
"""

from __future__ import annotations

import numpy as np

import backend
from backend.checks import check_input, check_real, check_seed  # noqa: F401 (check_real, check_seed re-exported)
from kernels import activations as kernels
from kernels.activations import cpu as cpu_kernels

from ..base import Layer, checks_skipped


def contiguous(a):
    """``a`` in C order: NumPy views (transposes, strided slices) are copied, CuPy arrays (any strides) kept.

    The CPU kernels take C-contiguous arrays only; anything else would fall
    back to the book's expressions, whose temporaries overflow (with a
    RuntimeWarning) at extreme values where the kernels do not.
    """
    if isinstance(a, np.ndarray) and not a.flags.c_contiguous:
        return np.ascontiguousarray(a)
    return a


class ElementwiseActivation(Layer):
    """Base class: ``y = f(x)`` element by element, through ``kernels.activations``.

    Subclasses set :attr:`kernel` (a name of ``kernels.activations.ACTIVATIONS``)
    and may override :meth:`kernel_params` (the keyword arguments of this pass).

    Shapes
    ------
    input (any shape) -> output of the same shape and dtype; ``grad_input`` has
    the shape and dtype of the input (a ``grad_output`` of another float dtype
    is cast to it).

    Attributes
    ----------
    input, output : array or None
        The cached tensor the derivative reads (the other one stays None).
    """

    kernel = ""
    #: Whether the derivative reads the output (``kernels.activations.BACKWARD_NEEDS``); set per subclass.
    needs_output = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if cls.kernel:
            cls.needs_output = kernels.BACKWARD_NEEDS[cls.kernel] == "output"

    def __init__(self):
        super().__init__()
        self.input = None
        self.output = None
        self._params = None

    def kernel_params(self, x) -> dict:
        """Keyword arguments for ``kernels.activations.forward/backward`` in this pass."""
        return {}

    def forward(self, input_data):
        trusted = checks_skipped()
        x = contiguous(input_data if trusted else check_input(input_data, layer=type(self).__name__))
        params = self.kernel_params(x)
        if trusted and type(x) is np.ndarray:  # checked float32/float64 in C order: the CPU kernels' own arrays
            y = cpu_kernels.forward(self.kernel, x, **self._resolved(params))
        else:
            y = kernels.forward(self.kernel, x, **params)
        if self.needs_output:
            self.input, self.output = None, y
        else:
            self.input, self.output = x, None
        self._params = params
        return y

    def _resolved(self, params):
        """``params`` over the kernel's defaults (what the dispatcher's ``resolve_params`` gives)."""
        defaults = kernels.DEFAULTS[self.kernel]
        return {**defaults, **params} if params else defaults

    def _cached(self):
        cached = self.output if self.needs_output else self.input
        if cached is None:
            raise RuntimeError(f"{type(self).__name__}.backward called before forward")
        return cached

    def _grad_output(self, grad_output, cached):
        if checks_skipped():
            g = grad_output if grad_output.dtype == cached.dtype else grad_output.astype(cached.dtype)
            return contiguous(g)
        name = type(self).__name__
        g = check_input(grad_output, name="grad_output", layer=name)
        if tuple(g.shape) != tuple(cached.shape):
            raise ValueError(
                f"{name}: grad_output: expected shape {tuple(cached.shape)} (the last forward's output), "
                f"got {tuple(g.shape)}"
            )
        backend.get_array_module(g, cached)  # mixed-device TypeError
        return contiguous(g.astype(cached.dtype, copy=False))

    def backward(self, grad_output):
        cached = self._cached()
        g = self._grad_output(grad_output, cached)
        if type(g) is np.ndarray and checks_skipped():
            return cpu_kernels.backward(self.kernel, g, self.input, self.output, **self._resolved(self._params)), None
        return kernels.backward(self.kernel, g, self.input, self.output, **self._params), None

    def output_shape(self, input_shape):
        return tuple(input_shape)


class RandomActivation(ElementwiseActivation):
    """An elementwise activation that draws random numbers in training (RReLU, NoisyReLU).

    The generator is created on the input's device at the first training
    forward pass, from ``seed``; :meth:`reset_rng` restarts it (use it in
    ``check_gradients(layer, x, reset=lambda l: l.reset_rng(0))`` so every
    evaluation sees the same random numbers). Evaluation mode draws nothing.
    """

    def __init__(self, seed=None):
        super().__init__()
        self.seed = check_seed(seed, type(self).__name__)
        self._rng = None
        self._rng_module = None  # "numpy" or "cupy": the device the generator draws on

    def reset_rng(self, seed=None):
        """Restart the generator from ``seed`` (default: the constructor's seed); returns self."""
        if seed is not None:
            self.seed = check_seed(seed, type(self).__name__)
        self._rng = None
        self._rng_module = None
        return self

    def generator(self, x):
        """The generator for ``x``'s device (a new one when x lives elsewhere than the last one)."""
        xp = backend.get_array_module(x)
        if self._rng is None or self._rng_module != xp.__name__:
            self._rng = backend.generator_for(xp, self.seed)
            self._rng_module = xp.__name__
        return self._rng
