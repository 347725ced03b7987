"""Lava backend: input streamed in chunks and one compiled network reused across calls.

The run plan (``LavaNetwork.plan``) fixes what the input side holds: the Injector's channel
carries ``chunk`` frames, whatever the number of samples. Results of a chunked run, of a
run in one chunk per sample and of a second call on the same compiled network must all
equal torch_int spike for spike; a broken sample-boundary clear is caught by the same
comparison (fault injection).
"""

from __future__ import annotations

import numpy as np
import pytest
from qgraph_builders import dense, lif, make_graph

from snn2hw.backends import lava as lava_backend
from snn2hw.backends import torch_int
from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import InputNode

pytestmark = pytest.mark.lava

N_IN, N_HID, N_OUT, STEPS = 6, 10, 4, 9


def _graph():
    """in -> d1 -> l1 (bias-driven: active up to every sample's last step) -> d2 -> l2."""
    rng = np.random.default_rng(3)
    return make_graph(
        [
            InputNode("in", (N_IN,)),
            dense("d1", rng.integers(-20, 60, (N_HID, N_IN))),
            lif("l1", N_HID, du=3000, dv=500, vth=40, bias_mant=3, bias_exp=2),
            dense("d2", rng.integers(-30, 70, (N_OUT, N_HID))),
            lif("l2", N_OUT, du=2000, dv=800, vth=60),
        ],
        [("in", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")],
        num_steps=STEPS - 2,  # default Lava steps: num_steps + depth() = STEPS
    )


def _inputs(seed, batch):
    rng = np.random.default_rng(seed)
    return (rng.random((STEPS, batch, N_IN)) < 0.4).astype(np.uint8)


def _assert_equal(res, ref):
    for name, want in ref.spikes.items():
        np.testing.assert_array_equal(res.spikes[name], want, err_msg=f"spikes of '{name}'")
        assert 0 < want.sum() < want.size, f"'{name}' is silent or saturated"


def test_plan_bounds_the_input_buffer_by_the_chunk_not_the_samples():
    net = lava_backend.LavaNetwork(_graph())
    try:
        plan = net.plan(STEPS, chunk=4)
        assert (plan.chunk, plan.runs_per_sample, plan.input_frames) == (4, 3, 4)
        assert plan.input_bytes == 4 * 4 * N_IN and plan.output_frames == 4
        assert net.plan(STEPS) == net.plan(STEPS, chunk=10_000)  # capped at one sample
        for batch in (1, 7):  # the started network holds `chunk` frames for any batch
            net.run(_inputs(batch, batch), chunk=4)
            src = net._live["source"]
            assert src.in_port.external_pipe_buffer_size == plan.input_frames
            assert all(ex.out_port.external_pipe_buffer_size == plan.output_frames
                       for ex in net._live["extractors"].values()), "Extractor ring"
        with pytest.raises(GraphError, match="chunk must be >= 1"):
            net.plan(STEPS, chunk=0)
    finally:
        net.close()


def test_chunked_and_reused_runs_equal_torch_int_and_one_chunk_runs():
    g = _graph()
    x1, x2 = _inputs(1, 5), _inputs(2, 4)
    ref1, ref2 = torch_int.run(g, x1), torch_int.run(g, x2)
    net = lava_backend.LavaNetwork(g)
    try:
        whole = net.run(x1)  # one chunk per sample
        _assert_equal(whole, ref1)
        assert net.builds == 1
        chunked = net.run(x1, chunk=2)  # a new plan: one new build, chunks split samples
        _assert_equal(chunked, ref1)
        again = net.run(x2, chunk=2)  # same plan: the compiled network is reused
        _assert_equal(again, ref2)
        assert net.builds == 2 and again.build_s < chunked.build_s
        assert again.buffer_resets > 0  # l1 fires at the last step: carry was cleared
    finally:
        net.close()
    assert net._live is None


def test_a_missed_boundary_clear_breaks_the_reused_network(monkeypatch):
    """Fault injection: without zeroing the connection buffers after a call, the next
    call's first sample receives the last step of the previous one."""
    g = _graph()
    x = _inputs(4, 1)  # one sample: only the boundary between the two calls is at stake
    ref = torch_int.run(g, x)
    monkeypatch.setattr(lava_backend.LavaNetwork, "_clear_carry", lambda *a, **k: 0)
    net = lava_backend.LavaNetwork(g)
    try:
        first = net.run(x)
        second = net.run(x)
    finally:
        net.close()
    _assert_equal(first, ref)
    assert any(not np.array_equal(second.spikes[k], v) for k, v in ref.spikes.items())
