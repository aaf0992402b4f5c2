"""flatten_parameters (issue 15): every parameter a view of one buffer per dtype and device, one kernel call
per step, the same numbers as separate arrays, and a model that keeps working when its arrays are replaced."""

from __future__ import annotations

import numpy as np
import pytest

import backend
import optimizers
from layers import (
    BatchNormalization,
    Dense,
    Embedding,
    Flatten,
    LayerNormalization,
    ReLU,
    Sequential,
)
from optimizers import (
    SGD,
    AdaGrad,
    Adam,
    AdamW,
    Momentum,
    Nadam,
    Nesterov,
    RMSProp,
    flatten_parameters,
)
from optimizers import fused as fused_module

MAKERS = [lambda: SGD(0.05), lambda: Momentum(0.05), lambda: Nesterov(0.05), lambda: AdaGrad(0.05),
          lambda: RMSProp(0.01), lambda: Adam(0.01), lambda: Nadam(0.01), lambda: AdamW(0.01, weight_decay=0.1)]
IDS = ["sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "nadam", "adamw"]


def mlp(seed=0):
    return Sequential([Dense(4, 8, seed=seed), ReLU(), Dense(8, 8, seed=seed + 1), BatchNormalization(8),
                       Dense(8, 3, seed=seed + 2)])


def random_grads(params, rng):
    return [rng.standard_normal(p.shape).astype(p.dtype) for p in params]


@pytest.fixture
def count_kernel_calls(monkeypatch):
    calls = []
    original = fused_module.update

    def counting(name, param, *args):
        calls.append((name, param.size))
        return original(name, param, *args)

    monkeypatch.setattr(fused_module, "update", counting)
    return calls


@pytest.mark.parametrize("make", MAKERS, ids=IDS)
def test_flat_step_is_one_kernel_call_with_identical_results(device, make, count_kernel_calls):
    separate, flat = mlp().to(device.name), mlp().to(device.name)
    buffers = flatten_parameters(flat)
    assert len(buffers.buffers) == 1 and buffers.buffers[0].size == sum(p.size for p in flat.params)
    for a, b in zip(separate.params, flat.params):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))
    assert flat.layers[0].W is flat.params[0] and flat.layers[0].W.base is buffers.buffers[0]
    opt_separate, opt_flat = make(), make()
    mask = [p.ndim >= 2 for p in flat.params]
    rng = np.random.default_rng(0)
    for _ in range(5):
        grads = [backend.to_device(g) for g in random_grads(flat.params, rng)]
        count_kernel_calls.clear()
        opt_flat.step(flat.params, grads, weight_mask=mask)
        assert len(count_kernel_calls) == (2 if isinstance(opt_flat, AdamW) else 1)   # AdamW: decayed + not
        opt_separate.step(separate.params, grads, weight_mask=mask)
        assert len(count_kernel_calls) == 1 + len(flat.params) + (1 if isinstance(opt_flat, AdamW) else 0)
    for a, b in zip(separate.params, flat.params):
        np.testing.assert_array_equal(backend.to_numpy(a), backend.to_numpy(b))    # same kernels, same numbers
    # the state of the flat model: views of one buffer per slot
    for slot in opt_flat._slots:
        bases = {id(optimizers.runs.root(opt_flat.state[i][slot])) for i in range(len(flat.params))}
        assert len(bases) == 1


def test_gradient_arrays_reused_in_place_are_read_at_every_step():
    separate, flat = mlp(), mlp()
    flatten_parameters(flat)
    grads = [np.zeros_like(p) for p in flat.params]           # the caller's arrays, refilled every step
    a, b = AdamW(0.01, weight_decay=0.1), AdamW(0.01, weight_decay=0.1)
    rng = np.random.default_rng(7)
    for _ in range(4):
        for g in grads:
            g[...] = rng.standard_normal(g.shape)
        a.step(flat.params, grads)
        b.step(separate.params, grads)
    for p, q in zip(flat.params, separate.params):
        np.testing.assert_array_equal(p, q)


def test_model_still_works_and_fit_is_bit_identical():
    rng = np.random.default_rng(1)
    X, y = rng.standard_normal((64, 4)).astype(np.float32), rng.integers(0, 3, 64)
    separate, flat = mlp(), mlp()
    flatten_parameters(flat)
    np.testing.assert_array_equal(separate.predict(X), flat.predict(X))
    h1 = separate.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=Adam(0.01), epochs=3, batch_size=16,
                      seed=0, verbose=0)
    h2 = flat.fit(X, y, loss="sparse_categorical_crossentropy", optimizer=Adam(0.01), epochs=3, batch_size=16,
                  seed=0, verbose=0)
    assert h1.history["loss"] == h2.history["loss"]
    for a, b in zip(separate.get_weights(), flat.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_replaced_parameters_keep_working_and_the_state_follows(tmp_path):
    model = mlp()
    flatten_parameters(model)
    opt = Adam(0.01)
    rng = np.random.default_rng(2)
    opt.step(model.params, random_grads(model.params, rng))
    m_before = [opt.state[i]["m"].copy() for i in range(len(model.params))]
    model.astype(np.float64)                       # every array replaced: separate float64 arrays now
    assert model.params[0].dtype == np.float64 and model.params[0].base is None
    opt.step(model.params, random_grads(model.params, rng))
    assert opt.state[0]["m"].dtype == np.float64 and opt.iterations == 2
    assert not np.array_equal(opt.state[0]["m"], m_before[0])
    flatten_parameters(model)                      # flat again: the state is laid out anew, values kept
    kept = [opt.state[i]["rms"].copy() for i in range(len(model.params))]
    opt.step(model.params, [np.zeros_like(p) for p in model.params])
    for i, k in enumerate(kept):                   # zero gradient: rms decays by sqrt(β2), m by β1
        np.testing.assert_allclose(opt.state[i]["rms"], k * np.sqrt(0.999), rtol=1e-12)
    path = model.save(tmp_path / "flat.npz")
    loaded = Sequential.load(path)
    for a, b in zip(model.get_weights(), loaded.get_weights()):
        np.testing.assert_array_equal(a, b)


def test_shared_parameter_and_mixed_dtypes():
    shared = Dense(3, 3, seed=0)
    model = Sequential([shared, ReLU(), shared])
    twin_layer = Dense(3, 3, seed=0)
    twin = Sequential([twin_layer, ReLU(), twin_layer])
    flat = flatten_parameters(model)
    assert flat.buffers[0].size == 12 and model.params[0] is model.params[2]     # stored once, still shared
    rng = np.random.default_rng(4)
    a, b = Momentum(0.1), Momentum(0.1)
    for _ in range(3):
        grads = random_grads(model.params, rng)
        a.step(model.params, grads)                # the same array twice: updated twice, as separate arrays are
        b.step(twin.params, grads)
    for p, q in zip(model.params, twin.params):
        np.testing.assert_array_equal(p, q)
    two = Sequential([Dense(2, 2, seed=0), Dense(2, 2, seed=1)])
    two.layers[1].astype(np.float64)
    flat = flatten_parameters(two)
    assert sorted(b.dtype.name for b in flat.buffers) == ["float32", "float64"]


def test_pack_grads_is_zero_copy(count_kernel_calls):
    model = mlp()
    flat = flatten_parameters(model)
    opt = Adam(0.01)
    grads = flat.pack_grads(random_grads(model.params, np.random.default_rng(5)))
    assert all(g.base is flat.grad_buffers[0] for g in grads)
    opt.step(model.params, grads)
    group = opt._plan.runs[0].group
    assert group.grad_buffer is None               # the optimizer copied nothing: it read flat.grad_buffers[0]
    assert len(count_kernel_calls) == 1
    with pytest.raises(ValueError, match=r"pack_grads: grads\[1\]: expected shape \(8,\), got \(3,\)"):
        flat.pack_grads([grads[0], np.zeros(3)] + grads[2:])


def test_adamw_decay_rule_in_the_flat_layout():
    model = Sequential([Embedding(10, 4, seed=0), Flatten(), Dense(8, 4, seed=1), LayerNormalization(4),
                       Dense(4, 2, seed=2)])
    names = model.param_names()
    assert optimizers.decay_mask(model) == [n.endswith("W") and not n.startswith("0.") for n in names]
    flatten_parameters(model)
    opt = AdamW(0.1, weight_decay=0.5, decay_mask=model)
    before = [p.copy() for p in model.params]
    opt.step(model.params, [np.zeros_like(p) for p in model.params])   # zero gradient: only the decay moves
    for name, p, q in zip(names, model.params, before):
        decays = name in ("2.W", "4.W")
        np.testing.assert_allclose(p, q * (1 - 0.1 * 0.5) if decays else q, rtol=1e-6, err_msg=name)


def test_flatten_errors_change_nothing():
    with pytest.raises(ValueError, match="flatten_parameters: model: Sequential has no parameters"):
        flatten_parameters(Sequential([ReLU()]))

    class Book:                                    # the book's style: params but no Layer base class
        def __init__(self):
            self.W = np.ones((2, 2), np.float32)
            self.params = [self.W]

        def forward(self, x):
            return x @ self.W

        def backward(self, g):
            return g @ self.W.T, [g]

    model = Sequential([Dense(2, 2, seed=0), Book()])
    w = model.params[0]
    with pytest.raises(TypeError, match=r"no map_arrays\(\), so their attributes cannot be rebound: 1 \(Book\)"):
        flatten_parameters(model)
    assert model.params[0] is w


@pytest.mark.gpu
def test_flat_model_moved_to_the_gpu_keeps_training_and_its_state_follows():
    if backend.unavailable_reason() is not None:
        pytest.skip(f"no GPU: {backend.unavailable_reason()}")
    model, twin = mlp(), mlp()
    flatten_parameters(model)
    opt, twin_opt = Adam(0.01), Adam(0.01)
    rng = np.random.default_rng(6)
    grads = random_grads(model.params, rng)
    opt.step(model.params, grads)
    twin_opt.step(twin.params, grads)
    model.to("gpu")                                # separate CuPy arrays now; the state moves on the next step
    grads = random_grads(model.params, rng)
    opt.step(model.params, [backend.to_device(g, "gpu") for g in grads])
    twin_opt.step(twin.params, grads)
    assert backend.is_cupy_array(opt.state[0]["m"])
    flatten_parameters(model)                      # flat on the GPU: one buffer, one kernel call
    grads = random_grads(model.params, rng)
    opt.step(model.params, [backend.to_device(g, "gpu") for g in grads])
    twin_opt.step(twin.params, grads)
    for a, b in zip(model.params, twin.params):
        np.testing.assert_allclose(backend.to_numpy(a), b, rtol=1e-5, atol=1e-6)
