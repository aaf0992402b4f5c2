"""optimizers.DataParallel in one process (a loopback communicator): the step, the buffers, the checks."""

from __future__ import annotations

import numpy as np
import pytest

import backend
from backend.arrays import data_address, memory_owner
from layers import Dense, ReLU, Sequential
from optimizers import SGD, Adam, DataParallel, Momentum, flatten_parameters
from tests.distributed.loopback import LoopbackCommunicator


def model(seed=0):
    with backend.use_device("cpu"), backend.use_dtype(np.float64):
        return Sequential([Dense(4, 6, seed=seed), ReLU(), Dense(6, 2, seed=seed + 1)])


def gradients(net, seed=0):
    x = np.random.default_rng(seed).standard_normal((5, 4))
    net.forward(x)
    return net.backward(np.ones((5, 2)))[1]


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Momentum(0.1), lambda: Adam(1e-2)])
def test_step_is_the_wrapped_step_when_every_rank_has_the_same_gradients(make):
    plain, parallel = model(), model()
    opt = DataParallel(make(), LoopbackCommunicator(size=4))   # 4 g / 4 is g exactly
    opt.broadcast_parameters(parallel.params)
    reference = make()
    for step in range(3):
        grads = gradients(plain, step)
        kept = [g.copy() for g in grads]
        reference.step(plain.params, grads)
        opt.step(parallel.params, gradients(parallel, step))
        assert all(np.array_equal(g, k) for g, k in zip(grads, kept))
    assert all(np.array_equal(a, b) for a, b in zip(plain.params, parallel.params))
    assert opt.iterations == 3 and opt.state is opt.optimizer.state


def test_one_allreduce_per_step_and_the_broadcast_once():
    net = model()
    comm = LoopbackCommunicator(size=2)
    opt = DataParallel(SGD(0.1), comm)
    opt.step(net.params, gradients(net))
    opt.step(net.params, gradients(net))
    assert [kind for kind, _ in comm.calls] == ["broadcast", "allreduce", "allreduce", "allreduce"]
    assert not opt.needs_broadcast


def test_flat_gradients_are_averaged_where_they_are():
    net = model()
    flat = flatten_parameters(net)
    comm = LoopbackCommunicator(size=2)
    opt = DataParallel(Adam(1e-3), comm)
    opt.broadcast_parameters(net.params)
    grads = flat.pack_grads(gradients(net))
    averaged = opt.reduce(net.params, grads)
    assert all(a is g for a, g in zip(averaged, grads))
    (_, buffer), = [call for call in comm.calls if call[0] == "allreduce"]
    assert np.shares_memory(buffer, flat.grad_buffers[0]) and buffer.size == flat.grad_buffers[0].size


def test_gradients_of_flat_parameters_are_packed_in_the_parameters_layout():
    net = model()
    flat = flatten_parameters(net)
    opt = DataParallel(Adam(1e-3), LoopbackCommunicator(size=2))
    views = opt.reduce(net.params, gradients(net))
    owner = memory_owner(views[0])
    assert all(memory_owner(v) is owner for v in views)
    base, grad_base = data_address(flat.buffers[0]), data_address(owner)
    assert [data_address(v) - grad_base for v in views] == [data_address(p) - base for p in net.params]


def test_frozen_parameters_keep_none():
    net = model()
    grads = gradients(net)
    grads[1] = None
    averaged = DataParallel(SGD(0.1), LoopbackCommunicator(size=2)).reduce(net.params, grads)
    assert averaged[1] is None and all(a is not None for i, a in enumerate(averaged) if i != 1)


def test_learning_rate_and_reset_reach_the_wrapped_optimizer():
    opt = DataParallel("sgd", LoopbackCommunicator())
    opt.learning_rate = 0.5
    assert opt.optimizer.learning_rate == 0.5 and opt.schedule is None
    opt.needs_broadcast = False
    assert opt.reset() is opt and opt.needs_broadcast
    assert "SGD" in repr(opt) and opt.get_config()["learning_rate"] == 0.5


@pytest.mark.parametrize("args, text", [
    ((DataParallel(SGD(), LoopbackCommunicator()), LoopbackCommunicator()), "wrap the optimizer once"),
    ((object(), LoopbackCommunicator()), "expected an optimizer with step"),
    ((SGD(), "mpi"), "expected a backend.distributed.Communicator"),
])
def test_constructor_checks(args, text):
    with pytest.raises(TypeError, match=text):
        DataParallel(*args)


def test_bad_step_arguments_fail_before_any_communication():
    net = model()
    comm = LoopbackCommunicator(size=2)
    opt = DataParallel(SGD(0.1), comm)
    with pytest.raises(ValueError, match="expected one gradient per parameter"):
        opt.step(net.params, gradients(net)[:-1])
    with pytest.raises(ValueError, match="weight_mask"):
        opt.step(net.params, gradients(net), weight_mask=[True])
    assert comm.calls == []
