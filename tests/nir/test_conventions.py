"""Framework conventions on hand-made NIR graphs: the five findings of the interop review
(each a regression test), the convention options, the integer semantics a convention asks
for, and graphs that do not fit the convention they are read with."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir import NIRNet, discretize_neuron, get_convention, resolve_timing
from snn2hw.nir.discretize import integer_neuron
from snn2hw.quant.formats import LOIHI_FORMATS, NeuronCapabilities
from snn2hw.quant.ptq import neuron_semantics


def _graph(neuron: nir.NIRNode, n: int = 1, metadata=None) -> nir.NIRGraph:
    return nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([n])}),
               "w": nir.Linear(weight=np.eye(n)), "n": neuron,
               "output": nir.Output(output_type={"output": np.array([n])})},
        edges=[("input", "w"), ("w", "n"), ("n", "output")],
        metadata=metadata or {}, type_check=False)


def _run(graph, conv, currents, dt=None):
    dt_, c, _ = resolve_timing(graph, dt, conv)
    x = torch.tensor(currents, dtype=torch.float64).reshape(-1, 1, 1)
    with torch.no_grad():
        return NIRNet(graph, dt_, c, dtype=torch.float64)(x)[:, 0, 0].tolist()


# ---------------------------------------------------------------- finding 1: IF uses R*dt
def test_if_gain_is_r_times_dt():
    dt = 1e-4
    node = nir.IF(r=np.array([1 / dt]), v_threshold=np.ones(1), v_reset=np.zeros(1))
    dn = discretize_neuron("n", node, dt, get_convention("spikingjelly"))
    assert dn.in_gain.tolist() == pytest.approx([1.0])  # before: r = 10000 per step
    # SpikingJelly's IF: v += x; fires at v >= 1
    assert _run(_graph(node), "spikingjelly", [0.5, 0.5, 0.2, 0.9]) == [0, 1, 0, 1]


def test_norse_and_snn2hw_if_r_is_the_per_step_gain():
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1), v_reset=np.zeros(1))
    for name in ("norse", "snn2hw"):
        assert discretize_neuron("n", node, 1e-3, get_convention(name)).in_gain[0] == 1.0


# ---------------------------------------------------------------- finding 2: rockpool gain
def test_rockpool_cubalif_gain_is_exp_minus_dt_over_tau_syn():
    dt, ts, tm = 1e-3, 0.01, 0.02
    node = nir.CubaLIF(tau_syn=np.array([ts]), tau_mem=np.array([tm]),
                       r=np.array([tm * np.exp(-dt / tm) / dt]), v_leak=np.zeros(1),
                       v_threshold=np.ones(1))
    dn = discretize_neuron("n", node, dt, get_convention("rockpool"))
    assert dn.in_gain[0] == pytest.approx(np.exp(-dt / ts))  # 0.905; before 0.088
    assert dn.alpha[0] == pytest.approx(np.exp(-dt / ts))
    assert dn.beta[0] == pytest.approx(np.exp(-dt / tm))
    dt_found, _, notes = resolve_timing(_graph(node), None, "rockpool")
    assert dt_found == pytest.approx(dt, rel=1e-9) and any("recovered from r" in n for n in notes)


def test_rockpool_fires_several_spikes_and_subtracts():
    dt, tm = 1e-3, 0.02
    node = nir.LIF(tau=np.array([tm]), r=np.array([tm * np.exp(-dt / tm) / dt]),
                   v_leak=np.zeros(1), v_threshold=np.ones(1))
    beta = np.exp(-dt / tm)
    # v = 2.5 -> 2 spikes, v = 0.5; then 0.5 beta + 0.5 < 1; then + 1 -> 1 spike (>=)
    out = _run(_graph(node), "rockpool", [2.5, 0.5, 1.0 - 0.5 * beta - 0.5 * beta * beta + 1e-9])
    assert out == [2.0, 0.0, 1.0]


# ---------------------------------------------------------------- finding 3: Norse LIFBox tau
def test_norse_lifbox_tau_is_read_as_norse_means_it():
    dt, tau_mem = 1e-3, 1e-2
    node = nir.LIF(tau=np.array([dt * tau_mem]), r=np.ones(1), v_leak=np.zeros(1),
                   v_threshold=np.ones(1))  # what norse 1.1.0's to_nir writes
    dn = discretize_neuron("n", node, dt, get_convention("norse"))
    assert dn.beta[0] == pytest.approx(1 - dt / tau_mem)  # before: refused, dt/tau = 100
    with pytest.raises(GraphError, match="dt/tau = 100 > 1"):
        discretize_neuron("n", node, dt, get_convention("norse:tau=seconds"))


def test_norse_cubalif_input_enters_the_current_unscaled():
    dt = 1e-3
    node = nir.CubaLIF(tau_syn=np.array([dt * 5e-3]), tau_mem=np.array([dt * 1e-2]),
                       r=np.ones(1), v_leak=np.zeros(1), v_threshold=np.ones(1))
    dn = discretize_neuron("n", node, dt, get_convention("norse"))
    assert dn.in_gain[0] == pytest.approx(dt / 1e-2)  # a_m r w_in, no a_s


# ---------------------------------------------------------------- finding 4: snnTorch delay
def _snntorch_cuba(n=1):
    dt, beta, alpha = 1e-4, 0.5, 0.5
    ts, tm = dt / (1 - alpha), dt / (1 - beta)
    return nir.CubaLIF(tau_syn=np.full(n, ts), tau_mem=np.full(n, tm), r=np.full(n, tm / dt),
                       v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n),
                       w_in=np.full(n, ts / dt))


def test_snntorch_synaptic_zero_reset_delay_discards_the_next_update():
    g = _graph(_snntorch_cuba())
    x = [1.2, 1.0, 0.0, 0.0]
    # syn: 1.2, 1.6, 0.8, 0.4; mem (no delay): 1.2 -> spike, 0 + 1.6 -> spike, 0.8, 0.8
    assert _run(g, "snntorch:reset=zero,reset_delay=false", x) == [1, 1, 0, 0]
    # delay: step 2's whole update is discarded (mem 0), step 3: 0.8, step 4: 0.8
    assert _run(g, "snntorch:reset=zero,reset_delay=true", x) == [1, 0, 0, 0]


def test_snntorch_subtract_delay_subtracts_one_step_late_undecayed():
    g = _graph(_snntorch_cuba())
    x = [1.2, 0.0, 0.0, 0.0]
    # syn 1.2, .6, .3, .15; delay: mem 1.2 (spk), .6+.6-1=.2, .1+.3=.4, ...
    assert _run(g, "snntorch", x) == [1, 0, 0, 0]
    # at once: 1.2 -> .2, .1+.6 = .7, ...: same spikes here, different membranes
    dt, conv, _ = resolve_timing(g, None, "snntorch")
    net = NIRNet(g, dt, conv, dtype=torch.float64)
    assert net.discrete_neurons()["n"].reset_delay
    assert integer_neuron(net.discrete_neurons()["n"]).inexact.startswith("snnTorch reset_delay")


def test_snntorch_leaky_zero_with_delay_is_exactly_a_hard_reset():
    dt, beta = 1e-4, 0.5
    tau = dt / (1 - beta)
    node = nir.LIF(tau=np.array([tau]), r=np.array([tau / dt]), v_leak=np.zeros(1),
                   v_threshold=np.ones(1), v_reset=np.zeros(1))
    g = _graph(node)
    x = [1.5, 0.8, 0.9, 0.3]
    assert _run(g, "snntorch:reset=zero", x) == _run(g, "snntorch:reset=zero,reset_delay=false",
                                                     x) == [1, 0, 1, 0]
    dn = NIRNet(g, dt, get_convention("snntorch:reset=zero")).discrete_neurons()["n"]
    assert integer_neuron(dn).inexact == ""


# ---------------------------------------------------------------- finding 5: Sinabs >=, subtract
def test_sinabs_fires_on_ge_and_subtracts():
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    g = _graph(node)
    assert _run(g, "sinabs:spikes=1", [1.0, 0.0]) == [1, 0]  # before: '>' gave [0, ...]
    assert _run(g, "sinabs:spikes=1", [2.5, 0.0, 0.0]) == [1, 1, 0]  # 2.5 -> 1.5 -> 0.5
    assert _run(g, "sinabs", [2.5, 0.0, 0.6]) == [2, 0, 1]  # MultiSpike: floor(2.5); 0.5+0.6


def test_sinabs_on_loihi_is_refused_unless_accepted():
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    dn = discretize_neuron("n", node, 1.0, get_convention("sinabs:spikes=1"))
    rec = {"n": torch.ones(3, 1, 1)}
    loihi = NeuronCapabilities.of(LOIHI_FORMATS)
    with pytest.raises(QuantizationError, match=r"node 'n'.*subtracts the threshold.*"
                                                r"--approximate reset"):
        neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, loihi)
    f, _, notes = neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, loihi, ("reset", "threshold"))
    assert (f.reset, f.threshold_compare) == ("zero", ">")
    assert sum(n.startswith("APPROXIMATION") for n in notes) == 2
    prog = NeuronCapabilities(("zero", "subtract"), (">", ">="), 32)
    f, spikes, notes = neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, prog)
    assert (f.reset, f.threshold_compare, spikes, notes) == ("subtract", ">=", {}, [])


def test_multi_spike_needs_graded_spikes_or_acceptance():
    node = nir.IF(r=np.ones(1), v_threshold=np.ones(1))
    dn = discretize_neuron("n", node, 1.0, get_convention("sinabs"))
    rec = {"n": torch.tensor([0.0, 3.0]).reshape(2, 1, 1)}
    prog = NeuronCapabilities(("zero", "subtract"), (">", ">="), 32)
    _, spikes, notes = neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, prog)
    assert spikes == {"n": 32767} and "3 seen" in notes[0]
    binary = NeuronCapabilities(("zero", "subtract"), (">", ">="), 0)
    with pytest.raises(QuantizationError, match=r"node 'n'.*several spikes.*up to 3"):
        neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, binary)
    _, spikes, _ = neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, binary, ("spikes",))
    assert spikes == {}
    with pytest.raises(QuantizationError, match="unknown approximation"):
        neuron_semantics({"n": dn}, rec, LOIHI_FORMATS, binary, ("everything",))


# ---------------------------------------------------------------- options and misfits
def test_convention_options_parse_and_bad_ones_are_refused():
    c = get_convention("snntorch:reset=zero,reset_delay=false")
    assert (c.reset, c.reset_delay, c.label) == ("hard", False,
                                                 "snntorch:reset=zero,reset_delay=false")
    assert get_convention("sinabs:spikes=1").max_spikes == 1
    assert get_convention("rockpool:spikes=multi").max_spikes is None
    for bad, msg in (("snntorch:reset=maybe", "reset='maybe'"),
                     ("sinabs:colour=red", "known key"),
                     ("sinabs:reset_delay=true", "only in snnTorch"),
                     ("sinabs:spikes=0", "spikes='0'"),
                     ("sinabs:tau=dt_times", "norse only")):
        with pytest.raises(GraphError, match=msg):
            get_convention(bad)


def test_sinabs_convention_on_a_snntorch_export_is_reported():
    dt, tau = 1e-4, 1e-3
    snntorch_lif = nir.LIF(tau=np.array([tau]), r=np.array([tau / dt]), v_leak=np.zeros(1),
                           v_threshold=np.ones(1), v_reset=np.zeros(1))
    g = _graph(snntorch_lif)
    resolve_timing(g, None, "snntorch")  # fits
    with pytest.raises(GraphError, match=r"node 'n' \(LIF\): Sinabs always writes r = 1.*"
                                         r"does not look like a 'sinabs' export"):
        resolve_timing(g, None, "sinabs")
    with pytest.raises(GraphError, match="r != tau\\*exp"):  # Rockpool's r encodes its dt
        resolve_timing(g, 1e-4, "rockpool")
    resolve_timing(g, 1e-4, "nir")  # NIR's equations alone: no fingerprint


def test_snntorch_convention_on_a_sinabs_export_is_reported():
    g = _graph(nir.LIF(tau=np.array([8.0]), r=np.ones(1), v_leak=np.zeros(1),
                       v_threshold=np.ones(1)))
    resolve_timing(g, None, "sinabs")
    with pytest.raises(GraphError, match="snnTorch always writes r = tau/dt"):
        resolve_timing(g, None, "snntorch")
    with pytest.raises(GraphError, match="SpikingJelly writes IF r = 1/dt"):
        resolve_timing(_graph(nir.IF(r=np.ones(1), v_threshold=np.ones(1))), None,
                       "spikingjelly")


def test_metadata_producer_contradicting_the_convention_is_reported():
    g = _graph(nir.IF(r=np.ones(1), v_threshold=np.ones(1)), metadata={"producer": "sinabs"})
    resolve_timing(g, None, "sinabs")
    with pytest.raises(GraphError, match="'producer' = 'sinabs', but convention 'norse'"):
        resolve_timing(g, None, "norse")


def test_targets_declare_what_their_neurons_can_do(tmp_path):
    from snn2hw.chip.targets import load_target
    from snn2hw.common.errors import TargetError

    loihi, loihi2 = load_target("loihi"), load_target("loihi2")
    assert loihi.neuron_capabilities() == NeuronCapabilities(("zero",), (">",), 0)
    assert loihi2.neuron_capabilities().resets == ("zero", "subtract")
    assert loihi2.to_dict()["formats"]["threshold_compares"] == [">", ">="]
    text = loihi2.path.read_text(encoding="utf-8")
    for bad, msg in (('resets = ["zero", "sideways"]', "must be a list of"),
                     ('resets = ["subtract"]', r"does not contain formats\.reset = 'zero'")):
        p = tmp_path / "t.toml"
        p.write_text(text.replace('resets = ["zero", "subtract"]', bad), encoding="utf-8")
        with pytest.raises(TargetError, match=msg):
            load_target(p)
