"""What the activation benchmark times: for each activation, the fast path, the book's code and PyTorch.

For one activation and one input array this module builds zero-argument
callables (so the timers of :mod:`bench.common` can call them) and says how
many bytes each direction moves:

* ``fast``: :func:`kernels.activations.forward` / :func:`~kernels.activations.backward`,
  the dispatched fused kernels (Numba on the CPU, CuPy on the GPU);
* ``book``: :mod:`kernels.activations.reference`, the book's NumPy
  expressions (chapters 7-9), the baseline of "speedup over the book's code";
* ``torch``: the same function in PyTorch, when it imports (never a
  dependency). Forward under ``torch.no_grad()``; backward is
  ``torch.autograd.grad`` of a recorded forward, i.e. exactly the backward
  kernel a PyTorch user runs (plus autograd's small per-call overhead).

Random inputs of RReLU (slopes) and NoisyReLU (noise) are drawn once, outside
the timing, and passed explicitly to every implementation, so all three
compute the same numbers from the same arrays; reading them is counted in the
traffic. PReLU's slope is learnable, so its backward is the one-pass
``prelu_backward`` (grad_input and grad_alpha) in all three implementations.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

import kernels.activations as kact
from kernels.activations import reference

from .common import torch_or_none

__all__ = [
    "ActivationCase",
    "canonical",
    "family_of",
    "make_case",
    "make_inputs",
    "traffic_arrays",
]


def canonical(name: str) -> str:
    """Lookup key of an activation name: lower case, no ``_``/``-``/spaces (``"Leaky_ReLU"`` -> ``"leakyrelu"``)."""
    return "".join(ch for ch in str(name).lower() if ch.isalnum())


def family_of(name: str) -> str:
    """The family (``"sigmoidal"``, ``"rectifier"``, ``"modern"``) of an activation."""
    key = canonical(name)
    for family, names in kact.FAMILIES.items():
        if key in {canonical(n) for n in names}:
            return family
    return "other"


# Extra per-element random arrays: kwarg name in the kernels' API, and the
# directions that read it. NoisyReLU's backward needs only x (eq. 8.14: the
# noise is a constant of the step), RReLU's needs its slopes.
_EXTRA_ARRAYS = {
    "rrelu": "slopes",
    "noisyrelu": "noise",
}
_EXTRA_READS = {
    "rrelu": ("forward", "backward"),
    "noisyrelu": ("forward",),
}


def backward_reads(name: str) -> tuple:
    """Cached arrays (``"x"`` and/or ``"y"``) the backward of ``name`` reads besides ``grad_output``.

    From :data:`kernels.activations.catalog.BACKWARD_NEEDS` (``"input"`` -> x,
    ``"output"`` -> y): the layers cache only that one.
    """
    key = canonical(name)
    table = getattr(kact, "BACKWARD_NEEDS", None)
    if table is None:
        from kernels.activations import catalog  # noqa: PLC0415

        table = catalog.BACKWARD_NEEDS
    for k, v in table.items():
        if canonical(k) == key:
            values = (v,) if isinstance(v, str) else tuple(v)
            return tuple({"input": "x", "output": "y"}.get(item, item) for item in values)
    raise ValueError(f"no BACKWARD_NEEDS entry for activation {name!r}")


def traffic_arrays(name: str) -> dict:
    """Arrays of the input's size read and written by each direction, counted honestly.

    Forward reads ``x`` (and the random slopes/noise of RReLU/NoisyReLU) and
    writes ``y``. Backward reads ``grad_output``, the one cache it needs
    (:func:`backward_reads`) and RReLU's slopes, and writes ``grad_input``.
    Small parameter arrays (PReLU's alpha) are not counted.

    Returns
    -------
    dict
        ``{"forward": k_f, "backward": k_b}``: multiply by ``n * itemsize``
        to get the bytes moved.
    """
    extra = _EXTRA_READS.get(canonical(name), ())
    return {
        "forward": 2 + ("forward" in extra),
        "backward": 2 + len(backward_reads(name)) + ("backward" in extra),
    }


def _extra_kwarg_name(name: str) -> str | None:
    """Keyword under which the random array of RReLU/NoisyReLU is passed (``slopes``/``noise``)."""
    return _EXTRA_ARRAYS.get(canonical(name))


@dataclass
class Inputs:
    """The arrays of one benchmark point (same arrays for every implementation)."""

    x: object
    grad: object
    shape: tuple
    dtype: np.dtype
    device: str
    extras: dict = field(default_factory=dict)  # canonical activation name -> its random array


def make_inputs(n: int, dtype, device: str = "cpu", seed: int = 0) -> Inputs:
    """Input ``x ~ 3 N(0, 1)`` and ``grad_output ~ N(0, 1)`` of ``n`` elements.

    Shape ``(n // 1024, 1024)`` (a batch of 1024 features) when ``n`` is a
    multiple of 1024, else ``(1, n)``. With a spread of 3, half of the inputs
    are negative, about 74 % lie outside HardTanh's [-1, 1] and 32 % outside
    HardSigmoid's [-3, 3], so branchy code cannot ride a constant branch.
    Drawn on the CPU with a fixed seed and moved to the device, so both devices
    see the same numbers. RReLU's slopes are uniform in [1/8, 1/3) and
    NoisyReLU's noise is N(0, 0.1^2), as :mod:`kernels.activations` draws them.
    """
    dtype = np.dtype(dtype)
    shape = (n // 1024, 1024) if n % 1024 == 0 and n >= 1024 else (1, n)
    generator = np.random.default_rng(seed)
    x = (3.0 * generator.standard_normal(shape)).astype(dtype)
    grad = generator.standard_normal(shape).astype(dtype)
    slopes = generator.uniform(1 / 8, 1 / 3, shape).astype(dtype)
    noise = (0.1 * generator.standard_normal(shape)).astype(dtype)
    extras = {"rrelu": slopes, "noisyrelu": noise}
    if device == "gpu":
        from .common import cupy_or_none  # noqa: PLC0415

        cp = cupy_or_none()
        x, grad = cp.asarray(x), cp.asarray(grad)
        extras = {k: cp.asarray(v) for k, v in extras.items()}
        cp.cuda.get_current_stream().synchronize()
    return Inputs(x=x, grad=grad, shape=shape, dtype=dtype, device=device, extras=extras)


@dataclass
class ActivationCase:
    """Zero-argument callables for one activation on one :class:`Inputs`.

    Attributes
    ----------
    name, family : str
    kwargs : dict
        Extra keyword arguments (the random array of RReLU/NoisyReLU).
    forward, backward : callable
        The fast path; ``backward`` uses the output of a forward call made at
        construction (``self.y``).
    book_forward, book_backward : callable or None
        The book's NumPy code; ``None`` where it does not run on the device.
    torch_forward, torch_backward : callable or None
        PyTorch; ``None`` when not importable or not requested.
    torch_note : str or None
        Why PyTorch is missing, or how its function differs.
    """

    name: str
    family: str
    inputs: Inputs
    kwargs: dict
    y: object = None
    book_note: str | None = None
    torch_note: str | None = None
    book_forward: object = None
    book_backward: object = None
    torch_forward: object = None
    torch_backward: object = None
    torch_sync: object = None
    torch_outputs: tuple | None = None

    def forward(self):
        """Fast forward on the inputs (returns ``y``)."""
        return kact.forward(self.name, self.inputs.x, **self.kwargs)

    def backward(self):
        """Fast backward from the cached forward output.

        PReLU runs :func:`kernels.activations.prelu_backward`, which returns
        ``(grad_input, grad_alpha)`` from one pass: what the layer needs.
        """
        if canonical(self.name) == "prelu":
            return kact.prelu_backward(self.inputs.grad, self.inputs.x, self.kwargs["alpha"])
        return kact.backward(self.name, self.inputs.grad, self.inputs.x, self.y, **self.kwargs)


def _first(result):
    """The grad_input of a backward that may return ``(grad_input, param_grads)``."""
    return result[0] if isinstance(result, tuple) else result


def make_case(name: str, inputs: Inputs, compare=("numpy",)) -> ActivationCase:
    """Build the callables of activation ``name`` on ``inputs``.

    The fast forward is *not* called here (the caller times its first call as
    the compile time); call :meth:`ActivationCase.forward` and store the
    result in ``case.y`` before timing the backward.
    """
    key = canonical(name)
    kwargs = {}
    kwarg = _extra_kwarg_name(name)
    if kwarg is not None:
        kwargs[kwarg] = inputs.extras[key]
    if key == "prelu":  # one learnable slope, as a (1,) array of x's dtype on x's device (the layer's param)
        xp = np if isinstance(inputs.x, np.ndarray) else _cupy()
        kwargs["alpha"] = xp.full((1,), PRELU_ALPHA, dtype=inputs.dtype)
    case = ActivationCase(name=name, family=family_of(name), inputs=inputs, kwargs=kwargs)
    if "numpy" in compare:
        case.book_forward = lambda: reference.forward(name, inputs.x, **kwargs)
        if key == "prelu":
            case.book_backward = lambda: reference.prelu_backward(inputs.grad, inputs.x, kwargs["alpha"])
        else:
            case.book_backward = lambda: reference.backward(name, inputs.grad, inputs.x, case.y, **kwargs)
    if "torch" in compare:
        _attach_torch(case)
    return case


# --------------------------------------------------------------------------- #
# PyTorch equivalents (the same function, same parameters as camadas' defaults)
# --------------------------------------------------------------------------- #
#: PReLU's alpha in every implementation (camadas' initial value).
PRELU_ALPHA = 0.25


def _torch_functions(torch, dtype, device):
    """``canonical name -> f(x, extra)`` in PyTorch; extra is the random array or None.

    Parameters equal camadas' defaults: LeakyReLU slope 0.01, PReLU alpha 0.25
    (one shared alpha), ELU alpha 1, GELU exact (erf), Softplus beta 1.
    PyTorch has no RReLU with given slopes nor NoisyReLU with given noise: the
    same formulas (eqs. 8.7 and 8.13) are written with ``torch.where``.
    """
    F = torch.nn.functional
    prelu_weight = torch.full((1,), PRELU_ALPHA, dtype=dtype, device=device)
    return {
        "sigmoid": lambda x, e: torch.sigmoid(x),
        "tanh": lambda x, e: torch.tanh(x),
        "softsign": lambda x, e: F.softsign(x),
        "hardsigmoid": lambda x, e: F.hardsigmoid(x),  # relu6(x + 3) / 6 = clip(x/6 + 1/2, 0, 1)
        "hardtanh": lambda x, e: F.hardtanh(x),
        "relu": lambda x, e: torch.relu(x),
        "leakyrelu": lambda x, e: F.leaky_relu(x, 0.01),
        "prelu": lambda x, e: F.prelu(x, prelu_weight),
        "rrelu": lambda x, e: torch.where(x > 0, x, x * e),
        "elu": lambda x, e: F.elu(x, 1.0),
        "selu": lambda x, e: F.selu(x),
        "noisyrelu": lambda x, e: torch.where(x > 0, x + e, torch.zeros((), dtype=x.dtype, device=x.device)),
        "gelu": lambda x, e: F.gelu(x),  # exact erf form
        "silu": lambda x, e: F.silu(x),
        "softplus": lambda x, e: F.softplus(x),
        "mish": lambda x, e: F.mish(x),
    }


def _cupy():
    from .common import cupy_or_none  # noqa: PLC0415

    return cupy_or_none()


def _to_torch(torch, array):
    if isinstance(array, np.ndarray):
        return torch.from_numpy(array)
    return torch.from_dlpack(array)  # CuPy array, zero copy


def _attach_torch(case: ActivationCase) -> None:
    torch = torch_or_none()
    if torch is None:
        from .common import torch_unavailable_reason  # noqa: PLC0415

        case.torch_note = torch_unavailable_reason()
        return
    if case.inputs.device == "gpu" and not torch.cuda.is_available():
        case.torch_note = "PyTorch has no CUDA device"
        return
    x = _to_torch(torch, case.inputs.x)
    function = _torch_functions(torch, x.dtype, x.device).get(canonical(case.name))
    if function is None:
        case.torch_note = f"no PyTorch equivalent of {case.name}"
        return
    grad = _to_torch(torch, case.inputs.grad)
    extra_array = case.inputs.extras.get(canonical(case.name))
    extra = _to_torch(torch, extra_array) if extra_array is not None else None
    x_leaf = x.detach().clone().requires_grad_(True)
    leaves = [x_leaf]
    if canonical(case.name) == "prelu":
        # The slope is learnable: autograd computes grad_input and grad_alpha, as camadas' prelu_backward does.
        weight = torch.full((1,), PRELU_ALPHA, dtype=x.dtype, device=x.device, requires_grad=True)
        leaves.append(weight)

        def function(t, e, _w=weight):
            return torch.nn.functional.prelu(t, _w)

    with torch.enable_grad():
        y_graph = function(x_leaf, extra)

    def torch_forward():
        with torch.no_grad():
            return function(x, extra)

    def torch_backward():
        return torch.autograd.grad(y_graph, leaves, grad, retain_graph=True)[0]

    case.torch_forward = torch_forward
    case.torch_backward = torch_backward
    case.torch_sync = torch.cuda.synchronize if case.inputs.device == "gpu" else None
