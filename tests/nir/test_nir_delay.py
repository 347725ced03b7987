"""nir.Delay end to end: steps from seconds (refusing what is not a whole step), the float
path's delay line, import as synaptic delays (per synapse on dense ops), exact deployment
of a hand-built graph with delays, and refusal on a target without delays."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from snn2hw.chip.targets import load_target
from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir import read_nir
from snn2hw.nir.delays import delay_steps, flush_steps
from snn2hw.nir.discretize import CONVENTIONS
from snn2hw.nir.executor import NIRNet
from snn2hw.pipeline.delay_report import pad_for_delays
from snn2hw.quant.align_delays import layer_shifts
from snn2hw.quant.ptq import quantize

DT = 1e-3
_REF = Path(__file__).resolve().parents[1] / "quant" / "delay_reference.py"
_spec = importlib.util.spec_from_file_location("delay_reference", _REF)
delay_reference = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(delay_reference)


def if_node(n: int) -> nir.IF:
    return nir.IF(r=np.ones(n), v_threshold=0.5 * np.ones(n), v_reset=np.zeros(n))


def delayed_graph(pre_skip=(1, 0, 0, 3), post1=(0, 1, 2), d2: float = 2) -> nir.NIRGraph:
    """A graph as another framework would write it: per-output delays after fc1, a uniform
    delay before if2, per-input delays on a skip from the input; 0/1 weights and IF
    neurons (threshold 0.5) so every neuron is an exact relay and integers match float."""
    w1 = np.array([[1, 0, 0, 1], [0, 1, 0, 0], [0, 0, 1, 1]], float)
    nodes = {
        "in": nir.Input(np.array([4])),
        "fc1": nir.Linear(w1),
        "d1": nir.Delay(np.array(post1, float) * DT),
        "if1": if_node(3),
        "fc2": nir.Linear(np.array([[1, 0, 1], [0, 1, 0]], float)),
        "d2": nir.Delay(np.full(2, d2 * DT)),
        "d3": nir.Delay(np.array(pre_skip, float) * DT),
        "fc3": nir.Linear(np.array([[0, 0, 1, 0], [1, 0, 0, 1]], float)),
        "if2": if_node(2),
        "out": nir.Output(np.array([2])),
    }
    edges = [("in", "fc1"), ("fc1", "d1"), ("d1", "if1"), ("if1", "fc2"), ("fc2", "d2"),
             ("d2", "if2"), ("in", "d3"), ("d3", "fc3"), ("fc3", "if2"), ("if2", "out")]
    return nir.NIRGraph(nodes, edges)


def float_run(graph: nir.NIRGraph, x: torch.Tensor):
    net = NIRNet(graph, DT, CONVENTIONS["snn2hw"]).double()
    with torch.no_grad():
        _, rec = net(pad_for_delays(x.double(), flush_steps(graph, DT)), record=True)
    return net, rec


def test_delay_steps_are_whole_steps_or_refused_naming_the_node():
    assert delay_steps("d", nir.Delay(np.array([0.0, 2e-3, 5e-3])), DT).tolist() == [0, 2, 5]
    with pytest.raises(GraphError, match=r"node 'd7' \(Delay\).*1\.5 steps"):
        delay_steps("d7", nir.Delay(np.array([1.5e-3])), DT)
    with pytest.raises(GraphError, match="node 'd7'.*negative"):
        delay_steps("d7", nir.Delay(np.array([-1e-3])), DT)
    with pytest.raises(GraphError, match="node 'd1'.*not a whole number"):
        NIRNet(delayed_graph(post1=(0, 1.5, 2)), DT, CONVENTIONS["snn2hw"])


def test_float_path_delays_each_element():
    g = nir.NIRGraph({"in": nir.Input(np.array([3])), "d": nir.Delay(np.array([0, 1, 3]) * DT),
                      "out": nir.Output(np.array([3]))}, [("in", "d"), ("d", "out")])
    x = torch.arange(1.0, 6.0).view(5, 1, 1).expand(5, 2, 3)
    y = NIRNet(g, DT, CONVENTIONS["snn2hw"])(x)
    np.testing.assert_array_equal(y[:, 0].numpy().T, [[1, 2, 3, 4, 5], [0, 1, 2, 3, 4],
                                                       [0, 0, 0, 1, 2]])
    assert flush_steps(g, DT) == 3


def test_nir_delays_become_per_synapse_delays_and_deploy_exactly(tmp_path):
    graph = delayed_graph()
    nir.write(tmp_path / "g.nir", graph)
    graph = read_nir(tmp_path / "g.nir")  # through a file, as from another framework
    x = torch.rand(10, 16, 4, generator=torch.Generator().manual_seed(0)) < 0.3
    net, rec = float_run(graph, x)
    q = quantize(graph, net.discrete_neurons(), dict(rec), dt=DT, target="loihi2",
                 num_steps=10, formats=load_target("loihi2").number_formats).graph
    # if1: per-output delays (0, 1, 2) on every synapse of its row
    np.testing.assert_array_equal(q.nodes["if1.p0.fc1"].delay, np.repeat([[0], [1], [2]], 4, 1))
    # skip into if2: per-input delays (1, 0, 0, 3) on every synapse of its column
    np.testing.assert_array_equal(q.nodes["if2.p1.fc3"].delay, np.tile([1, 0, 0, 3], (2, 1)))
    # the path through if1 (1 hop more, 2 steps of NIR delay) keeps 1 of them
    assert q.nodes["if2.p0.fc2"].delay == 1
    shifts = layer_shifts(q)
    assert shifts == {"input": 0, "if1": 1, "if2": 1}
    ints = x.numpy().astype(np.int64)
    steps = ints.shape[0] + q.depth()
    chip = delay_reference.run_reference(q, ints, steps)
    for lif in ("if1", "if2"):
        fl = rec[lif].numpy().astype(np.int64)
        s = shifts[lif]
        n = min(steps - s, fl.shape[0])
        np.testing.assert_array_equal(chip[lif][s:s + n], fl[:n], err_msg=lif)
        assert fl.any()


def test_nir_delay_on_a_target_without_delays_is_refused_naming_layer_delay_and_limit():
    graph = delayed_graph()
    x = torch.rand(10, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.3
    net, rec = float_run(graph, x)
    with pytest.raises(QuantizationError,
                       match=r"layer 'if1'.*delay of 2 steps.*Delay nodes.*no synaptic delays"):
        quantize(graph, net.discrete_neurons(), dict(rec), dt=DT, target="loihi",
                 num_steps=10, formats=load_target("loihi").number_formats)


def test_nir_delay_above_the_limit_is_refused_naming_layer_delay_and_limit():
    graph = delayed_graph(d2=70)
    x = torch.rand(10, 4, 4, generator=torch.Generator().manual_seed(0)) < 0.3
    net, rec = float_run(graph, x)
    with pytest.raises(QuantizationError, match=r"layer 'if2'.*delay of 69 steps.*limit is 63"):
        quantize(graph, net.discrete_neurons(), dict(rec), dt=DT, target="loihi2",
                 num_steps=10, formats=load_target("loihi2").number_formats)
