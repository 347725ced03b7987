"""Real NIR files from the NIR paper and other frameworks' exports on the float path.

Reference data: ../shared/external/nir-paper (see its README). Indices are 0-based time
steps; the CSV rows of 01_lif are steps (columns: input, v, spike; no header line).
"""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

from snn2hw.common.errors import GraphError
from snn2hw.nir import NIRNet, load_nir, read_nir, resolve_timing


def _csv(external, name: str) -> np.ndarray:
    return np.loadtxt(external / "nir-paper" / "01_lif" / name, delimiter=",")


def test_norse_lif_spikes_exactly_where_the_exact_solution_does(external):
    exact = _csv(external, "lif_exact.csv")
    norse = _csv(external, "lif_norse.csv")
    assert exact.shape == (1000, 3)  # input, v, spike per step
    graph = read_nir(external / "nir-paper" / "01_lif" / "lif_norse.nir")
    # Written by an older Norse with tau in seconds (norse 1.1.0 writes dt*tau).
    dt, conv, _ = resolve_timing(graph, dt=1e-4, convention="norse:tau=seconds")
    net = NIRNet(graph, dt, conv)
    with torch.no_grad():
        y = net(torch.tensor(exact[:, 0], dtype=torch.float32)[:, None, None])
    steps = np.flatnonzero(y[:, 0, 0].numpy()).tolist()
    assert steps == [460, 510, 710, 760]
    # The CSVs count steps the same way: the spike column is 1 on those rows.
    assert np.flatnonzero(exact[:, 2]).tolist() == steps
    assert np.flatnonzero(norse[:, 2]).tolist() == steps


def test_braille_rnn_reproduces_snntorch_activity_exactly(external):
    d = external / "nir-paper" / "03_rnn"
    # Trained with reset_mechanism='zero', reset_delay=False (the file name's "noDelay").
    net = load_nir(d / "braille_noDelay_bias_zero.nir",
                   convention="snntorch:reset=zero,reset_delay=false")
    assert net.dt == 1e-4 and net.back_edges == [("lif1.w_rec", "lif1.lif")]
    assert isinstance(net.graph.nodes["lif2"], nir.CubaLIF)  # the output layer spikes
    x = torch.tensor(np.load(d / "braille_test0_input_T256x12.npy"))[:, None]  # [256, 1, 12]
    ref = np.load(d / "snntorch_activity_noDelay_bias_zero.npy")  # [256, 38] hidden spikes
    for dtype in (torch.float32, torch.float64):
        with torch.no_grad():
            y, rec = net.to(dtype)(x, record=True)
        hidden = rec["lif1.lif"][:, 0].numpy()
        assert int(hidden.sum()) == 119
        assert int((hidden != ref).sum()) == 0
        counts = y[:, 0].sum(0)
        assert int(counts.argmax()) == 1  # test sample 0 has label 1
    # If the recurrent edge started from zero instead of its rest value (the w_rec bias),
    # 23 entries would differ: that variant is exactly Norse's published activity.


def test_sinabs_cnn_runs_on_nmnist_shaped_input(external):
    from snn2hw.data.synthetic import make_synthetic_events

    net = load_nir(external / "nir-paper" / "02_cnn" / "cnn_sinabs.nir", convention="sinabs")
    assert net.convention.reset == "subtract" and net.input_shape == (2, 34, 34)
    events, _ = make_synthetic_events(2, shape=(2, 34, 34), n_frames=20, rate=0.1, seed=0)
    x = torch.tensor(events).transpose(0, 1)  # [T=20, B=2, 2, 34, 34]
    with torch.no_grad():
        y, rec = net(x, record=True)
    assert y.shape == (20, 2, 10)
    counts = torch.cat([rec[k].reshape(-1) for k in net.discrete_neurons()])
    assert bool((counts == counts.floor()).all()) and counts.max() > 1  # MultiSpike counts
    spiking = [k for k in net.discrete_neurons() if rec[k].sum() > 0]
    assert len(spiking) >= 3, spiking
    single = load_nir(external / "nir-paper" / "02_cnn" / "cnn_sinabs.nir",
                      convention="sinabs:spikes=1")  # SingleSpike
    with torch.no_grad():
        assert set(torch.unique(single(x)).tolist()) <= {0.0, 1.0}


# ----------------------------------------------------------------------------- snnTorch


def _snntorch_net(reset_delay: bool, reset: str = "zero"):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(6, 16), torch.nn.Linear(16, 4)
    # Tensor-valued parameters: scalar ones make snnTorch's exported LIF shapeless and
    # nir's type inference (which export_to_nir runs) fails.
    leaky = snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16),
                      reset_mechanism=reset, init_hidden=True, reset_delay=reset_delay)
    syn = snn.Synaptic(alpha=torch.full((4,), 0.8), beta=torch.full((4,), 0.9),
                       threshold=torch.ones(4), reset_mechanism=reset, init_hidden=True,
                       reset_delay=reset_delay)
    return lin1, leaky, lin2, syn


def _snntorch_run(lin1, leaky, lin2, syn, x):
    leaky.reset_hidden()
    syn.reset_hidden()
    hid, out = [], []
    with torch.no_grad():
        for xt in x:
            h = leaky(lin1(xt))
            hid.append(h)
            out.append(syn(lin2(h)))
    return torch.stack(hid), torch.stack(out)


def _import_snntorch(tmp_path, layers, convention: str) -> NIRNet:
    from snntorch.export_nir import export_to_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch's deprecation warnings
        graph = export_to_nir(torch.nn.Sequential(*layers), torch.randn(1, 6), ignore_dims=[0])
    path = tmp_path / "snntorch.nir"
    nir.write(path, graph)
    return load_nir(path, convention=convention)


@pytest.fixture
def drive():
    torch.manual_seed(1)
    return torch.rand(100, 8, 6) * 1.5


@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("reset_delay", [False, True])
def test_snntorch_export_matches_snntorch_forward(tmp_path, drive, reset, reset_delay):
    """Every reset_mechanism x reset_delay of Leaky and Synaptic: the convention's options
    (defaults: snnTorch's own, subtract + delay) reproduce snnTorch exactly. Before the
    convention knew reset_delay, Synaptic(zero, delay) differed on 103-239 of 1,500 entries."""
    layers = _snntorch_net(reset_delay=reset_delay, reset=reset)
    conv = ("snntorch" if (reset, reset_delay) == ("subtract", True)
            else f"snntorch:reset={reset},reset_delay={str(reset_delay).lower()}")
    net = _import_snntorch(tmp_path, layers, conv)
    hid_ref, out_ref = _snntorch_run(*layers, drive)
    with torch.no_grad():
        y, rec = net(drive, record=True)
    assert hid_ref.sum() > 100 and out_ref.sum() > 50
    assert int((rec["1"] != hid_ref).sum()) == 0
    assert int((y != out_ref).sum()) == 0
    if reset_delay:  # reading with the wrong reset timing is measurably wrong
        wrong = _import_snntorch(tmp_path, layers, f"snntorch:reset={reset},reset_delay=false")
        with torch.no_grad():
            assert int((wrong(drive) != out_ref).sum()) > 0


# ----------------------------------------------------------------------------- Norse


def _norse_run(model, x):
    with torch.no_grad():
        state, outs = None, []
        for xt in x:
            o, state = model(xt, state)
            outs.append(o)
    return torch.stack(outs)


def test_norse_lifbox_export_matches_norse_forward(drive):
    """Norse 1.1.0's ``to_nir`` writes ``tau = dt / tau_mem_inv`` (dt times the time
    constant). The norse convention reads it as Norse means it; before, the graph was
    refused ("dt/tau = 200 > 1") and following the hint gave 5-9x too many spikes."""
    nt = pytest.importorskip("norse.torch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(2)
    dt = 1e-3
    p1 = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0), v_th=torch.tensor(0.3))
    p2 = nt.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.2))
    model = nt.SequentialState(
        torch.nn.Linear(6, 16), nt.LIFBoxCell(p1, dt=dt),
        torch.nn.Linear(16, 4), nt.LIFBoxCell(p2, dt=dt),
    )
    with torch.no_grad():
        model[2].weight.abs_().mul_(2.0)  # enough drive for the output layer to spike
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = nt.to_nir(model, torch.randn(1, 6), dt=dt)
    np.testing.assert_allclose(float(graph.nodes["1"].tau), dt / 200.0)  # Norse's dt*tau
    dt_, conv, _ = resolve_timing(graph, convention="norse")
    net = NIRNet(graph, dt_, conv)
    assert any("leading batch dimension" in n for n in net.notes)
    x = drive * 4.0
    ref = _norse_run(model, x)
    with torch.no_grad():
        y, rec = net(x, record=True)
    assert rec["1"].sum() > 100 and ref.sum() > 50
    assert int((y != ref).sum()) == 0
    with pytest.raises(GraphError, match=r"node '1': dt/tau = 200 > 1"):  # read as seconds
        NIRNet(graph, dt_, resolve_timing(graph, convention="norse:tau=seconds")[1])


def test_norse_lifcell_export_matches_norse_forward(drive):
    """Norse's ``LIFCell`` jumps its current by the input and decays it after use; its
    ``to_nir`` writes ``w_in = 1`` and dt*tau. The norse convention reads both as meant."""
    nt = pytest.importorskip("norse.torch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(3)
    dt = 1e-3
    p = nt.LIFParameters(tau_syn_inv=torch.tensor(200.0), tau_mem_inv=torch.tensor(100.0),
                         v_th=torch.tensor(0.3))
    model = nt.SequentialState(torch.nn.Linear(6, 8), nt.LIFCell(p, dt=dt))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = nt.to_nir(model, torch.randn(1, 6), dt=dt)
    node = graph.nodes["1"]
    assert isinstance(node, nir.CubaLIF) and float(node.w_in) == 1.0
    dt_, conv, _ = resolve_timing(graph, convention="norse")
    net = NIRNet(graph, dt_, conv)
    x = drive * 2.0
    ref = _norse_run(model, x)
    with torch.no_grad():
        y = net(x)
    assert ref.sum() > 100
    assert int((y != ref).sum()) == 0
