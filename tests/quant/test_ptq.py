"""Post-training quantization of small hand-built NIR graphs (docs/nir.md): decays,
thresholds, weight grids, biases, refusals, and agreement of the integer graph with the
float NIR executor."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snn2hw.backends import torch_int
from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir.discretize import CONVENTIONS, get_convention
from snn2hw.nir.executor import NIRNet
from snn2hw.quant.formats import round_weights
from snn2hw.quant.ptq import quantize
from snn2hw.quant.qgraph import VTH_MAX, DenseNode, LIFNode, QGraph

N_IN, N_H, N_O = 8, 6, 4


def lif_cuba_graph(
    dt: float,
    *,
    w1: np.ndarray | None = None,
    b1: np.ndarray | None = None,
    w2: np.ndarray | None = None,
    tau: np.ndarray | float | None = None,
    r: float = 2.0,
    v_leak: float = 0.1,
    v_threshold: float | np.ndarray = 1.5,
    v_reset: float = 0.25,
    tau_syn: float | None = None,
    tau_mem: float | None = None,
    r2: float = 3.0,
    w_in: float = 0.5,
    readout: str = "cuba",
    seed: int = 0,
) -> nir.NIRGraph:
    """Input(8) -> Affine -> LIF(6) -> Affine -> CubaLIF(4) (or LI) -> Output."""
    rng = np.random.default_rng(seed)
    w1 = rng.normal(0.1, 0.6, (N_H, N_IN)) if w1 is None else w1
    b1 = rng.normal(0.0, 0.05, N_H) if b1 is None else b1
    w2 = rng.normal(0.0, 0.8, (N_O, N_H)) if w2 is None else w2
    tau = 20 * dt if tau is None else tau
    tau_syn = 5 * dt if tau_syn is None else tau_syn
    tau_mem = 10 * dt if tau_mem is None else tau_mem
    ones_h, ones_o = np.ones(N_H), np.ones(N_O)
    if readout == "cuba":
        last = nir.CubaLIF(
            tau_syn=tau_syn * ones_o,
            tau_mem=tau_mem * ones_o,
            r=r2 * ones_o,
            v_leak=0.0 * ones_o,
            v_threshold=1.0 * ones_o,
            v_reset=0.0 * ones_o,
            w_in=w_in * ones_o,
        )
    else:
        last = nir.LI(tau=tau_mem * ones_o, r=r2 * ones_o, v_leak=0.0 * ones_o)
    nodes = {
        "in": nir.Input(np.array([N_IN])),
        "fc1": nir.Affine(w1, b1),
        "lif1": nir.LIF(
            tau=np.broadcast_to(tau, (N_H,)).astype(float),
            r=r * ones_h,
            v_leak=v_leak * ones_h,
            v_threshold=np.broadcast_to(v_threshold, (N_H,)).astype(float),
            v_reset=v_reset * ones_h,
        ),
        "fc2": nir.Affine(w2, np.zeros(N_O)),
        "last": last,
        "out": nir.Output(np.array([N_O])),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "last"), ("last", "out")]
    return nir.NIRGraph(nodes, edges)


def calibrate(graph: nir.NIRGraph, dt: float, convention: str, steps: int = 30, batch: int = 8):
    net = NIRNet(graph, dt, _CONV[convention], dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(steps, batch, N_IN, generator=gen, dtype=torch.float64) < 0.3).double()
    with torch.no_grad():
        _, rec = net(x, record=True)
    return net, rec


def run_ptq(graph: nir.NIRGraph, dt: float, convention: str = "snn2hw", steps: int = 30):
    net, rec = calibrate(graph, dt, convention, steps)
    return quantize(
        graph, net.discrete_neurons(), rec, dt=dt, target="loihi", num_steps=steps
    )


CASES = [("snn2hw", 1e-3), ("snntorch", 1e-4)]
# snnTorch read with reset to zero and no reset delay (its defaults subtract, one step late)
_CONV = {"snn2hw": CONVENTIONS["snn2hw"],
         "snntorch": get_convention("snntorch:reset=zero,reset_delay=false")}


@pytest.fixture(params=CASES, ids=[c for c, _ in CASES])
def quantized(request):
    convention, dt = request.param
    graph = lif_cuba_graph(dt)
    return graph, dt, run_ptq(graph, dt, convention)


# ----- decays, thresholds, weights, biases -------------------------------------------------


def test_lif_decays(quantized) -> None:
    _, dt, res = quantized
    lif = res.graph.nodes["lif1"]
    assert isinstance(lif, LIFNode)
    assert lif.dv == round(4096 * dt / (20 * dt)) == 205
    assert lif.du == 4095  # no synaptic memory
    report = next(lr for lr in res.layers if lr.name == "lif1")
    assert (report.du, report.dv, report.vth) == (lif.du, lif.dv, lif.vth)


def test_cuba_lif_decays(quantized) -> None:
    _, dt, res = quantized
    cuba = res.graph.nodes["last"]
    assert isinstance(cuba, LIFNode)
    assert cuba.du == round(4096 * dt / (5 * dt)) - 1 == 818
    assert cuba.dv == round(4096 * dt / (10 * dt)) == 410


def test_thresholds_are_legal_17_bit_integers(quantized) -> None:
    _, _, res = quantized
    for lr in res.layers:
        assert isinstance(lr.vth, int) and 1 <= lr.vth <= VTH_MAX
        assert res.graph.nodes[lr.name].vth == lr.vth
        if lr.limited_by == "17-bit threshold":
            assert lr.vth == VTH_MAX


def test_integer_weights_follow_the_threshold_normalized_grid(quantized) -> None:
    graph, dt, res = quantized
    gains = {
        "lif1": (dt / (20 * dt)) * 2.0,  # a * r
        "last": (dt / (10 * dt)) * 3.0 * (dt / (5 * dt)) * 0.5,  # a_m * r * a_s * w_in
    }
    thetas = {"lif1": 1.5 - 0.25, "last": 1.0}
    nir_weight = {"fc1": graph.nodes["fc1"].weight, "fc2": graph.nodes["fc2"].weight}
    for lr in res.layers:
        assert len(lr.paths) == 1
        path = lr.paths[0]
        e = path["weight_exp"]
        assert lr.weight_exps == [e] and -7 <= e <= 7
        row_factor = np.asarray(path["row_factor"])
        want_factor = lr.vth * gains[lr.name] / thetas[lr.name] * 2.0**-e
        np.testing.assert_allclose(row_factor, want_factor, rtol=1e-12)
        dense = res.graph.nodes[f"{lr.name}.p0.{path['weighted']}"]
        assert isinstance(dense, DenseNode) and dense.weight_exp == e
        w = nir_weight[path["weighted"]]
        np.testing.assert_array_equal(dense.weight, round_weights(w * row_factor[:, None]))
        # mixed-sign matrices: even, within [-254, 254]; 8 bits are used
        assert np.all(dense.weight % 2 == 0) and np.abs(dense.weight).max() <= 254
        assert np.abs(dense.weight).max() >= 64
        assert lr.max_weight == np.abs(dense.weight).max()


def test_bias_carries_leak_reset_offset_and_affine_bias(quantized) -> None:
    graph, dt, res = quantized
    lif = res.graph.nodes["lif1"]
    a, theta = dt / (20 * dt), 1.5 - 0.25
    g = a * 2.0
    v_bias = a * (0.1 - 0.25) + g * graph.nodes["fc1"].bias  # leak - reset offset + b_syn
    want = np.round(64 * lif.vth * v_bias / theta)
    got = lif.bias_mant << lif.bias_exp
    assert np.all(np.abs(got - want) <= np.where(lif.bias_exp > 0, 1 << lif.bias_exp, 0))
    # the CubaLIF has no leak, reset offset or synaptic bias
    cuba = res.graph.nodes["last"]
    np.testing.assert_array_equal(cuba.bias_mant, 0)


def test_quantized_graph_is_valid_and_saves(quantized, tmp_path) -> None:
    _, dt, res = quantized
    g = res.graph.validate()
    assert g.dt == dt and g.num_steps == 30 and g.depth() == 2
    assert [n.kind for n in g.nodes.values()] == ["input", "dense", "lif", "dense", "lif", "output"]
    g.save(tmp_path / "q.qgraph")
    back = QGraph.load(tmp_path / "q.qgraph")
    np.testing.assert_array_equal(back.nodes["lif1"].bias_mant, g.nodes["lif1"].bias_mant)


def test_large_weights_shift_with_a_positive_weight_exp() -> None:
    dt = 1e-3
    graph = lif_cuba_graph(dt, w1=np.random.default_rng(5).normal(0, 1, (N_H, N_IN)) * 1e3)
    res = run_ptq(graph, dt)
    lr = next(lr for lr in res.layers if lr.name == "lif1")
    assert lr.vth <= VTH_MAX
    w = res.graph.nodes[f"lif1.p0.{lr.paths[0]['weighted']}"].weight
    assert np.abs(w).max() <= 254


# ----- refusals ----------------------------------------------------------------------------


def test_per_neuron_time_constants_that_differ_are_refused() -> None:
    dt = 1e-3
    tau = np.array([0.02, 0.02, 0.02, 0.03, 0.02, 0.02])
    graph = lif_cuba_graph(dt, tau=tau)
    with pytest.raises(QuantizationError, match=r"'lif1'.*time constants differ"):
        run_ptq(graph, dt)


def test_per_neuron_time_constants_that_round_to_one_register_are_accepted() -> None:
    dt = 1e-3
    tau = np.array([0.02, 0.02, 0.0200001, 0.02, 0.02, 0.02])  # same dv = 205
    res = run_ptq(lif_cuba_graph(dt, tau=tau), dt)
    assert res.graph.nodes["lif1"].dv == 205


@pytest.mark.parametrize("v_threshold", [0.25, 0.1, np.array([1.5, 1.5, 0.2, 1.5, 1.5, 1.5])])
def test_threshold_not_above_reset_is_refused(v_threshold) -> None:
    dt = 1e-3
    graph = lif_cuba_graph(dt, v_threshold=v_threshold, v_reset=0.25)
    with pytest.raises(QuantizationError, match=r"'lif1'.*v_threshold must exceed v_reset"):
        run_ptq(graph, dt)


def test_non_spiking_li_readout_is_refused_by_name() -> None:
    dt = 1e-3
    graph = lif_cuba_graph(dt, readout="li")
    with pytest.raises(QuantizationError, match=r"'last' \(LI\).*non-spiking"):
        run_ptq(graph, dt)


def test_nan_weight_is_refused_when_the_graph_is_loaded() -> None:
    dt = 1e-3
    w1 = np.random.default_rng(0).normal(0, 1, (N_H, N_IN))
    w1[2, 3] = np.nan
    with pytest.raises(GraphError, match=r"'fc1'.*NaN"):
        NIRNet(lif_cuba_graph(dt, w1=w1), dt, CONVENTIONS["snn2hw"])


def test_nan_weight_is_refused_by_quantize_itself() -> None:
    # calibration from the clean graph, then quantize a graph whose weights went NaN
    dt = 1e-3
    net, rec = calibrate(lif_cuba_graph(dt), dt, "snn2hw")
    w2 = np.random.default_rng(0).normal(0, 1, (N_O, N_H))
    w2[0, 0] = np.inf
    with pytest.raises(GraphError, match=r"fc2.*NaN or Inf"):
        quantize(lif_cuba_graph(dt, w2=w2), net.discrete_neurons(), rec, dt=dt,
                 target="loihi", num_steps=30)


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_nan_affine_bias_is_refused_by_quantize_itself() -> None:
    dt = 1e-3
    net, rec = calibrate(lif_cuba_graph(dt), dt, "snn2hw")
    b1 = np.zeros(N_H)
    b1[1] = np.nan
    with pytest.raises((GraphError, QuantizationError), match="fc1"):
        quantize(lif_cuba_graph(dt, b1=b1), net.discrete_neurons(), rec, dt=dt,
                 target="loihi", num_steps=30)


def test_missing_calibration_record_is_a_graph_error() -> None:
    dt = 1e-3
    graph = lif_cuba_graph(dt)
    net, rec = calibrate(graph, dt, "snn2hw")
    del rec["lif1"]
    with pytest.raises(GraphError, match="'lif1'"):
        quantize(graph, net.discrete_neurons(), rec, dt=dt, target="loihi", num_steps=30)


# ----- end to end --------------------------------------------------------------------------


def snntorch_style_graph(w1: np.ndarray, w2: np.ndarray, dt: float) -> nir.NIRGraph:
    """snnTorch Leaky(beta=0.9) -> Synaptic(alpha=0.8, beta=0.9) as snnTorch exports them
    (per-step input gain 1)."""
    n_h, n_in = w1.shape
    n_o = w2.shape[0]
    tau, tau_syn = dt / 0.1, dt / 0.2
    h, o = np.ones(n_h), np.ones(n_o)
    nodes = {
        "in": nir.Input(np.array([n_in])),
        "fc1": nir.Affine(w1, np.zeros(n_h)),
        "lif1": nir.LIF(tau=tau * h, r=tau / dt * h, v_leak=0 * h, v_threshold=h, v_reset=0 * h),
        "fc2": nir.Affine(w2, np.zeros(n_o)),
        "lif2": nir.CubaLIF(
            tau_syn=tau_syn * o, tau_mem=tau * o, r=tau / dt * o, v_leak=0 * o,
            v_threshold=o, v_reset=0 * o, w_in=tau_syn / dt * o,
        ),
        "out": nir.Output(np.array([n_o])),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"), ("lif2", "out")]
    return nir.NIRGraph(nodes, edges)


def test_integer_graph_classifies_like_the_float_network() -> None:
    rng = np.random.default_rng(1)
    n_in, n_h, n_o, steps, batch, dt = 20, 40, 5, 50, 64, 1e-4
    w1 = rng.normal(0.02, 0.25, (n_h, n_in))
    w2 = rng.normal(0.0, 0.15, (n_o, n_h))
    graph = snntorch_style_graph(w1, w2, dt)
    net = NIRNet(graph, dt, _CONV["snntorch"], dtype=torch.float64)
    rates = rng.uniform(0.0, 0.5, (batch, n_in))
    x = (rng.random((steps, batch, n_in)) < rates).astype(np.uint8)
    with torch.no_grad():
        out, rec = net(torch.from_numpy(x).double(), record=True)
    # well-conditioned: both layers spike, neither saturates
    for name in ("lif1", "lif2"):
        assert 0.05 <= float(rec[name].mean()) <= 0.3, (name, float(rec[name].mean()))
    res = quantize(graph, net.discrete_neurons(), rec, dt=dt, target="loihi", num_steps=steps)
    lif1 = res.graph.nodes["lif1"]
    assert (lif1.du, lif1.dv) == (4095, 410)
    assert (res.graph.nodes["lif2"].du, res.graph.nodes["lif2"].dv) == (818, 410)
    run = torch_int.run(res.graph, x)
    assert run.spikes["lif2"].shape == (steps + 2, batch, n_o)  # num_steps + depth
    for name in ("lif1", "lif2"):
        float_rate = float(rec[name].mean())
        int_rate = float(run.spikes[name].sum()) / (steps * batch * rec[name].shape[-1])
        assert abs(int_rate - float_rate) <= 0.25 * float_rate, (name, int_rate, float_rate)
    pred_float = out.sum(0).argmax(1).numpy()
    pred_int = run.predictions(res.graph)
    agreement = float((pred_float == pred_int).mean())
    assert agreement >= 0.8, agreement
