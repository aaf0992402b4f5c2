"""The attention softmax's CUDA kernels without a GPU (issue 8's compile tier, for chapter 26's kernel).

:data:`kernels.attention.gpu.CUDA_SOURCE` goes through NVRTC for ``compute_90``
and ``compute_80`` with the options of the RawModule plus those CuPy adds, and
must define both entry points per dtype. Then the launch code runs on NumPy
arrays with a fake RawModule that checks every argument against the C
parameter list parsed from the source (count, pointer or scalar, C type), so
an argument added on one side only fails here, not on the first GPU.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from kernels.activations import gpu_source
from kernels.attention import gpu as att_gpu
from tests.kernels.test_gpu_compile import NVRTC_ARCHES, _nvrtc, nvrtc_compile

#: C scalar type -> the NumPy scalar type the launch must pass (T is the element type).
C_SCALARS = {"long long": np.int64, "int": np.int32}


def c_parameters(entry: str) -> list[tuple[str, bool]]:
    """``[(C type, is_pointer), ...]`` of the macro-generated kernel whose name starts with ``entry``."""
    match = re.search(re.escape(entry) + r"_##NAME\((.*?)\)\s*\{", att_gpu.CUDA_SOURCE, re.S)
    assert match, entry
    params = []
    for raw in match.group(1).replace("\\", " ").split(","):
        words = raw.replace("const ", "").split()
        ctype = " ".join(words[:-1])
        params.append((ctype.rstrip("*").strip(), ctype.endswith("*") or words[-1].startswith("*")))
    return params


def check_arguments(name: str, args, dtype) -> None:
    """Raise AssertionError where ``args`` does not match kernel ``name``'s C parameters for ``dtype``."""
    entry = name.rsplit("_", 1)[0]
    params = c_parameters(entry)
    assert len(args) == len(params), f"{name}: {len(args)} arguments for {len(params)} parameters"
    for k, ((ctype, pointer), arg) in enumerate(zip(params, args)):
        if pointer:
            assert isinstance(arg, np.ndarray) and arg.dtype == dtype and arg.flags.c_contiguous, (name, k, ctype)
        elif ctype == "T":
            assert isinstance(arg, np.generic) and arg.dtype == dtype, (name, k, ctype, type(arg))
        else:
            assert type(arg) is C_SCALARS[ctype], (name, k, ctype, type(arg))


@pytest.mark.parametrize("arch", NVRTC_ARCHES)
def test_attention_softmax_module_compiles_with_nvrtc(arch):
    nvrtc = _nvrtc()
    # The RawModule's own --std=c++11; CuPy adds its --std only where the options name none.
    cupy_before = tuple(o for o in gpu_source.CUPY_OPTIONS_BEFORE_ARCH if "-std=c++" not in o)
    options = ("--std=c++11",) + cupy_before + (f"-arch={arch}",) + gpu_source.CUPY_OPTIONS_AFTER_ARCH
    ptx = nvrtc_compile(nvrtc, att_gpu.CUDA_SOURCE, options)
    entries = set(re.findall(r"\.entry\s+(\w+)\s*\(", ptx))
    expected = {name for pair in att_gpu.KERNEL_NAMES.values() for name in pair}
    assert entries == expected, sorted(entries ^ expected)


@pytest.fixture
def fake_module(monkeypatch):
    """Launches of :mod:`kernels.attention.gpu` on NumPy arrays: arguments checked, names recorded."""
    launched = []

    class FakeModule:
        def get_function(self, name):
            def function(grid, block, args):
                dtype = np.dtype(name.rsplit("_", 1)[1])
                check_arguments(name, args, dtype)
                assert block == (att_gpu.THREADS,) and len(grid) == 1 and grid[0] >= 1
                launched.append(name)

            return function

    monkeypatch.setattr(att_gpu, "_module", lambda: FakeModule())
    return launched


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_launches_match_the_c_parameters(fake_module, dtype):
    scores = np.zeros((2, 3, 4, 5), dtype)
    out = np.empty_like(scores)
    att_gpu.softmax_forward(scores, 0.5, None, False, out)
    att_gpu.softmax_forward(scores, 0.5, np.zeros((2, 1, 4, 5), dtype), True, out)
    att_gpu.softmax_backward(scores, scores, 0.5, True, out)
    name = np.dtype(dtype).name
    assert fake_module == [f"attention_softmax_fwd_{name}"] * 2 + [f"attention_softmax_bwd_{name}"]


def test_the_argument_check_catches_a_mismatch():
    with pytest.raises(AssertionError, match="arguments for"):
        check_arguments("attention_softmax_bwd_float32", (np.zeros(2, np.float32),), np.dtype(np.float32))
    params = c_parameters("attention_softmax_bwd")
    assert params[:4] == [("T", True), ("T", True), ("T", True), ("T", False)] and params[4] == ("long long", False)
