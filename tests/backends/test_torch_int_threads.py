"""torch-int on the CPU splits a batch across Python threads (each op single-threaded);
the result must not depend on the split, and torch's thread setting is left as found."""

from __future__ import annotations

import pytest
import torch
from batch_split_cases import assert_same_run, inputs
from delay_multispike_cases import random_dense_graph
from periodic_reset_cases import with_reset

from snn2hw.backends.torch_int import TorchIntNetwork
from snn2hw.common.errors import GraphError


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_batch_split_across_threads_gives_the_single_thread_result(threads):
    g = with_reset(random_dense_graph(5, "subtract", ">="), H=(4, 1))
    net = TorchIntNetwork(g)
    x = inputs(batch=7)
    assert_same_run(net.run(x, 14, record_state=True, threads=1),
          net.run(x, 14, record_state=True, threads=threads))


def test_torch_thread_setting_is_restored_after_a_split_run_and_after_an_error(monkeypatch):
    g = random_dense_graph(5, "zero", ">")
    net = TorchIntNetwork(g)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        seen = []
        real = net._run
        monkeypatch.setattr(net, "_run", lambda *a: seen.append(torch.get_num_threads())
                            or real(*a))
        net.run(inputs(batch=4), 6)
        assert seen == [1, 1] and torch.get_num_threads() == 2  # ops single-threaded

        def fails(*a):
            raise RuntimeError("a part failed")

        monkeypatch.setattr(net, "_run", fails)
        with pytest.raises(RuntimeError, match="a part failed"):
            net.run(inputs(batch=4), 6)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_split_comparison_catches_parts_joined_in_the_wrong_order(monkeypatch):
    g = random_dense_graph(5, "zero", ">")
    net = TorchIntNetwork(g)
    x = inputs(batch=4)
    one = net.run(x, 12, record_state=True, threads=1)
    real = net._run

    def reversed_parts(xp, n_steps, record_state, t0):  # the fault: each part gets the
        return real(torch.flip(xp, dims=[1]), n_steps, record_state, t0)  # samples reversed

    monkeypatch.setattr(net, "_run", reversed_parts)
    with pytest.raises(AssertionError):
        assert_same_run(one, net.run(x, 12, record_state=True, threads=2))


def test_threads_below_one_are_refused():
    net = TorchIntNetwork(random_dense_graph(5, "zero", ">"))
    with pytest.raises(GraphError, match="threads must be >= 1"):
        net.run(inputs(batch=2), 4, threads=0)


def test_overlapping_runs_restore_torch_threads_only_when_the_last_one_ends():
    # Two runs in different threads overlap as A starts, B starts, A ends, B ends: a
    # per-run save/restore would let B save A's 1 and leave torch at 1 for good.
    from snn2hw.backends.torch_int import _single_threaded_ops

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        a, b = _single_threaded_ops(), _single_threaded_ops()
        a.__enter__()
        b.__enter__()
        assert torch.get_num_threads() == 1
        a.__exit__(None, None, None)
        assert torch.get_num_threads() == 1  # B still running
        b.__exit__(None, None, None)
        assert torch.get_num_threads() == 3
    finally:
        torch.set_num_threads(before)
