"""The deployment check names the likely cause of a deviation from what the graph and the
integer run show: ties at the threshold, u wrapping around its bits, a reset or threshold
rule of the source neuron that the target does not share, and deviation inherited from an
upstream layer. Each graph below is built so that torch-int really shows the effect; the
float spikes are those of the integer run (hop-aligned) with the float behaviour the
effect destroys put back in, so the check compares two runs that differ only there."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
from fault_injection import fixed_graph, fixed_inputs

from snn2hw.backends.torch_int import run
from snn2hw.pipeline.alignment import hop_depths
from snn2hw.pipeline.deviation import DeviationLimits, check_deployment
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph

STRICT = DeviationLimits(max_spike_change=0.0, max_accuracy_drop_pp=100.0)


def _aligned_float(graph: QGraph, ints: np.ndarray) -> tuple[dict, object]:
    res = run(graph, ints, record_state=True)
    t = ints.shape[0]
    d = hop_depths(graph)
    return {k: v[d[k] : d[k] + t].copy() for k, v in res.spikes.items()}, res


def test_membranes_ending_on_the_threshold_are_named_as_ties():
    g, x = fixed_graph(), fixed_inputs()  # h's neuron 0 ends step 3 of sample 1 on vth << 6
    fl, res = _aligned_float(g, x)
    th = g.nodes["h"].vth << g.formats.activation_shift
    ties = (res.v["h"] == th) & (res.spikes["h"] == 0)
    assert ties.sum() >= 1
    d = hop_depths(g)["h"]
    fl["h"][ties[d : d + x.shape[0]]] = 1  # a '>=' source fires on those ties
    fl["o"][0, 0, 0] += 1  # and the output differs, so the check fails
    chk = check_deployment(g, fl, x, limits=STRICT)
    assert not chk.passed
    h = chk.layer("h")
    assert any("end exactly on the threshold" in c for c in h.causes), h.causes
    assert "threshold" in chk.failures[-1]


def test_clean_graph_with_the_same_float_spikes_passes():
    g, x = fixed_graph(), fixed_inputs()
    fl, _ = _aligned_float(g, x)
    chk = check_deployment(g, fl, x, limits=STRICT)
    assert chk.passed and all(lay.counts.overlap in (1.0, None) for lay in chk.layers)


def _wrapping_graph() -> QGraph:
    """Heavy weights, no current decay, a threshold out of reach: u wraps every other step."""
    z = np.zeros(2, np.int64)
    nodes = [InputNode("x", (4,), message_bits=0), DenseNode("d", np.full((2, 4), 255), 7, 8),
             LIFNode("o", (2,), du=0, dv=4095, vth=131071, bias_mant=z, bias_exp=z.copy()),
             OutputNode("out", (2,))]
    return QGraph({n.name: n for n in nodes}, [("x", "d"), ("d", "o"), ("o", "out")],
                  1e-3, "loihi", 6).validate()


def test_u_wrapping_around_its_bits_is_named_as_quantization_range():
    g = _wrapping_graph()
    x = np.ones((6, 2, 4), np.int64)
    fl = {"o": np.ones((6, 2, 2), np.uint8)}  # a float neuron driven this hard fires
    chk = check_deployment(g, fl, x)
    assert not chk.passed
    causes = chk.layer("o").causes
    assert any("u wraps around its 24 bits" in c for c in causes), causes


def test_reset_and_threshold_rules_of_the_source_are_named():
    g = _wrapping_graph()
    x = np.ones((6, 2, 4), np.int64)
    fl = {"o": np.ones((6, 2, 2), np.uint8)}
    src = SimpleNamespace(reset="subtract", threshold_op=">=")
    causes = check_deployment(g, fl, x, neurons={"o": src}).layer("o").causes
    assert causes[0] == ("reset: the source resets by subtract, the target to 0 "
                         "(approximated)")
    assert causes[1] == "threshold: the source fires on v >= threshold, the target on v > threshold"
    same = SimpleNamespace(reset="hard", threshold_op=">")
    causes = check_deployment(g, fl, x, neurons={"o": same}).layer("o").causes
    assert not any(c.startswith(("reset", "threshold:")) for c in causes), causes


def test_an_accuracy_drop_fails_only_when_it_is_not_chance():
    # torch-int is silent on this graph, so it decides class 0 for every sample; the float
    # path decides each sample's label. Samples labelled 1 are lost, none gained.
    g = _wrapping_graph()
    n = 32
    x = np.ones((6, n, 4), np.int64)
    counts_only = DeviationLimits(max_spike_change=1e9, max_accuracy_drop_pp=1.0)
    for lost, fails in ((2, False), (6, True)):
        labels = np.array([1] * lost + [0] * (n - lost))
        fl = {"o": np.zeros((6, n, 2), np.uint8)}
        fl["o"][0, np.arange(n), labels] = 1
        chk = check_deployment(g, fl, x, labels, limits=counts_only)
        assert (chk.lost, chk.gained) == (lost, 0)
        assert chk.accuracy_drop_pp == 100.0 * lost / n > 1.0
        assert chk.accuracy_p == 0.5**lost  # one-sided exact McNemar with no gains
        assert chk.passed is not fails, chk.failures
    assert "accuracy drops 18.75 pp" in chk.failures[0] and "p = 0.0156" in chk.failures[0]


def test_weights_collapsed_by_quantization_are_named_as_the_cause():
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "backends"))
    from qgraph_builders import dense, lif, make_graph

    from snn2hw.pipeline.deviation import _collapsed_weights
    from snn2hw.quant.qgraph import InputNode

    def graph(w):
        g = make_graph([InputNode("in", (50,)), dense("d", w), lif("l", 4)],
                       [("in", "d"), ("d", "l")])
        g.metadata["chip_limits"] = {"chip_accumulator_bits": 21}
        return g

    squeezed = np.zeros((4, 50), np.int64)
    squeezed[0, :3] = 2  # 98.5 % zero, largest 2: what a worst-case sum bound leaves
    cause = _collapsed_weights(graph(squeezed), "l")
    assert cause and "collapsed" in cause and "loihi2" in cause and "largest |w| = 2" in cause
    healthy = np.random.default_rng(0).integers(-60, 60, (4, 50)) * 2
    assert _collapsed_weights(graph(healthy), "l") is None
