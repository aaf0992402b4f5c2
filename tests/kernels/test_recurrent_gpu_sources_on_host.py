"""The CUDA text of the recurrent GPU kernels, run on the host: formulas, indexing and argument order.

Without a GPU, :data:`kernels.recurrent.gpu.SOURCES` is compiled as plain C++
(``g++``) in a harness that binds each parameter as CuPy's ElementwiseKernel
does (a non-raw array ``x`` is the element ``_raw_x[i]``, broadcast rows are
``_raw_m[i / H]``, a raw array is a pointer, ``T`` the dtype), and
:func:`kernels.recurrent.gpu.kernel` is replaced by a caller of those C++
functions. The GPU step functions (their argument order included) then run
the time loops of :mod:`kernels.recurrent.sequence` on NumPy arrays, and must
agree with the Numba CPU kernels. What this cannot check (CuPy's own binding
and launching, device math libraries) is left to the GPU tests.
"""

from __future__ import annotations

import ctypes
import shutil
import subprocess

import numpy as np
import pytest

import kernels.recurrent as rk
from kernels.recurrent import cpu, gpu, sequence

pytestmark = pytest.mark.skipif(shutil.which("g++") is None, reason="g++ is not installed (the host harness needs it)")

CTYPES = {"float": ctypes.c_float, "double": ctypes.c_double}
TYPES = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}


def _parse(spec):
    out = []
    for param in spec.split(","):
        words = param.split()
        out.append(("raw" in words, words[-2], words[-1]))
    return out


def _function(name, ctype, in_params, out_params, operation):
    params, binds = [], []
    for const, spec in ((True, in_params), (False, out_params)):
        for raw, typ, var in _parse(spec):
            if typ != "T":
                params.append(f"long long {var}")
            elif raw:
                params.append(f"{'const ' if const else ''}T* {var}")
            else:
                params += [f"{'const ' if const else ''}T* _raw_{var}", f"long long _div_{var}"]
                binds.append(f"{'const ' if const else ''}T &{var} = _raw_{var}[i / _div_{var}];")
    return (f"namespace {name}_{ctype}_ns {{\ntypedef {ctype} T;\n"
            f'extern "C" void {name}_{ctype}({", ".join(params)}, long long _n) {{\n'
            f"  for (ptrdiff_t i = 0; i < _n; ++i) {{ {' '.join(binds)} {operation} }}\n}}\n}}\n")


@pytest.fixture(scope="module")
def host_library(tmp_path_factory):
    directory = tmp_path_factory.mktemp("recurrent_host")
    source = directory / "kernels.cpp"
    body = "#include <cmath>\n#include <cstddef>\nusing std::exp; using std::tanh;\n"
    body += "".join(_function(name, ctype, *spec) for name, spec in gpu.SOURCES.items() for ctype in CTYPES)
    source.write_text(body)
    library = directory / "kernels.so"
    proc = subprocess.run(["g++", "-O1", "-shared", "-fPIC", "-o", str(library), str(source)], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return ctypes.CDLL(str(library))


def _host_kernel(library, name):
    in_params, out_params, _ = gpu.SOURCES[name]
    params = _parse(in_params) + _parse(out_params)

    def launch(*args):
        assert len(args) == len(params), (name, len(args), len(params))
        arrays = [a for (raw, typ, _), a in zip(params, args) if typ == "T" and not raw]
        n = max(a.size for a in arrays)
        ctype = TYPES[arrays[0].dtype]
        c_args = []
        for (raw, typ, var), a in zip(params, args):
            if typ != "T":
                c_args.append(ctypes.c_longlong(int(a)))
                continue
            assert isinstance(a, np.ndarray) and a.flags.c_contiguous and TYPES[a.dtype] == ctype, (name, var)
            c_args.append(a.ctypes.data_as(ctypes.POINTER(CTYPES[ctype])))
            if not raw:
                assert n % a.size == 0, (name, var)
                c_args.append(ctypes.c_longlong(n // a.size))
        getattr(library, f"{name}_{ctype}")(*c_args, ctypes.c_longlong(n))

    return launch


@pytest.fixture
def gpu_on_host(host_library, monkeypatch):
    monkeypatch.setattr(gpu, "kernel", lambda name: _host_kernel(host_library, name))
    return gpu


def _both(run):
    return run(cpu), run(gpu)


def _assert_same(a, b, dtype):
    tol = 1e-12 if dtype == np.float64 else 2e-5
    if isinstance(a, dict):
        assert sorted(a) == sorted(b)
        for key in a:
            _assert_same(a[key], b[key], dtype)
    elif isinstance(a, (tuple, list)):
        for u, v in zip(a, b):
            _assert_same(u, v, dtype)
    elif a is not None:
        np.testing.assert_allclose(b, a, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
def test_gpu_step_kernels_agree_with_the_cpu_kernels(gpu_on_host, dtype, reverse):
    rng = np.random.default_rng(3)
    B, T, I, H = 3, 5, 4, 6
    x = rng.standard_normal((B, T, I)).astype(dtype)
    mask = np.ones((B, T), dtype)
    mask[0, 1] = mask[2, 3:] = 0
    dy = rng.standard_normal((B, T, H)).astype(dtype)
    h0, c0, dh, dc = (rng.standard_normal((B, H)).astype(dtype) for _ in range(4))

    def p(*shape):
        return (0.5 * rng.standard_normal(shape)).astype(dtype)

    for activation in rk.RNN_ACTIVATIONS:
        W, U, b = p(I, H), p(H, H), p(H)

        def run(kernels, W=W, U=U, b=b, activation=activation):
            y, h, cache = sequence.rnn_forward(kernels, x, W, U, b, h0, mask, activation, reverse)
            return y, h, sequence.rnn_backward(cache, dy, dh)

        _assert_same(*_both(run), dtype)
    W, U, b, peep = p(I, 4 * H), p(H, 4 * H), p(4 * H), p(3, H)

    def run_lstm(kernels):
        y, state, cache = sequence.lstm_forward(kernels, x, W, U, b, h0, c0, peep, mask, reverse)
        return y, state, sequence.lstm_backward(cache, dy, dh, dc)

    _assert_same(*_both(run_lstm), dtype)
    W, U, b, b_h = p(I, 3 * H), p(H, 3 * H), p(3 * H), p(3 * H)
    for reset_after in (True, False):
        def run_gru(kernels, reset_after=reset_after):
            y, h, cache = sequence.gru_forward(kernels, x, W, U, b, b_h if reset_after else None, h0, mask,
                                               reset_after, reverse)
            return y, h, sequence.gru_backward(cache, dy, dh)

        _assert_same(*_both(run_gru), dtype)
