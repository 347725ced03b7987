"""SpikingNet -> NIR -> NIRNet round trips, spike for spike on every neuron layer."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

from snn2hw.common.errors import GraphError
from snn2hw.nir import NIRNet, read_nir, resolve_timing, to_nir, write_nir
from snn2hw.nir.importer import node_metadata
from snn2hw.nn.model import SpikingNet
from snn2hw.nn.neurons import CubaLIF

LIF_MLP = {
    "input_shape": [20],
    "neuron": {"kind": "lif", "beta": 0.9, "threshold": 1.0},
    "layers": [
        {"type": "linear", "out": 32},
        {"type": "neuron"},
        {"type": "dropout", "p": 0.3},
        {"type": "linear", "out": 10, "bias": False},
        {"type": "neuron", "kind": "if"},
    ],
}
SRM_MLP = {
    "input_shape": [20],
    "neuron": {"kind": "srm", "tau_syn": 2.0, "tau_mem": 8.0, "threshold": 1.0},
    "layers": [
        {"type": "linear", "out": 32},
        {"type": "norm"},
        {"type": "neuron"},
        {"type": "linear", "out": 16},
        {"type": "norm"},
        {"type": "neuron", "kind": "cuba", "alpha": 0.5, "beta": 0.8, "reset": "subtract"},
        {"type": "linear", "out": 10},
        {"type": "neuron"},
    ],
}
CONV_RES = {
    "input_shape": [2, 16, 16],
    "neuron": {"kind": "lif", "beta": 0.8, "threshold": 0.5},
    "layers": [
        {"type": "conv", "out": 8, "kernel": 3, "padding": 1},
        {"type": "neuron"},
        {"type": "sumpool", "kernel": 2},
        {"type": "residual",
         "layers": [{"type": "conv", "out": 8, "kernel": 3, "padding": 1},
                    {"type": "norm"},
                    {"type": "neuron", "kind": "cuba", "alpha": 0.3},
                    {"type": "conv", "out": 8, "kernel": 3, "padding": 1}],
         "shortcut": []},
        {"type": "neuron"},
        {"type": "avgpool", "kernel": 2},
        {"type": "flatten"},
        {"type": "linear", "out": 10},
        {"type": "neuron"},
    ],
}


def _model(arch: dict, seed: int = 0) -> SpikingNet:
    torch.manual_seed(seed)
    m = SpikingNet(arch)
    with torch.no_grad():  # non-trivial inference statistics for the folded norms
        for mod in m.modules():
            if hasattr(mod, "bn"):
                mod.bn.running_mean.uniform_(-0.2, 0.2)
                mod.bn.running_var.uniform_(0.5, 2.0)
                mod.bn.weight.uniform_(0.5, 1.5)
                mod.bn.bias.uniform_(-0.2, 0.2)
    return m.eval()


def _neuron_spikes(model: SpikingNet, x: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Output and the spikes of every neuron module (also inside residual blocks)."""
    rec: dict[str, torch.Tensor] = {}
    hooks = [
        mod.register_forward_hook(lambda _m, _i, out, name=name: rec.__setitem__(name, out))
        for name, mod in model.named_modules()
        if isinstance(mod, CubaLIF)
    ]
    try:
        with torch.no_grad():
            y = model(x)
    finally:
        for h in hooks:
            h.remove()
    return y, rec


@pytest.mark.parametrize(
    "arch, shape",
    [(LIF_MLP, (20,)), (SRM_MLP, (20,)), (CONV_RES, (2, 16, 16))],
    ids=["lif_mlp", "srm_cuba_norm_mlp", "conv_pool_residual"],
)
def test_round_trip_is_spike_for_spike_on_every_neuron_layer(tmp_path, arch, shape):
    model = _model(arch)
    torch.manual_seed(1)
    x = (torch.rand(30, 4, *shape) < 0.3).float() * 2.0
    path = tmp_path / "net.nir"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the subtractive-reset warning (tested below)
        write_nir(model, path, dt=1e-3)
    graph = read_nir(path)
    dt, conv, _ = resolve_timing(graph)
    net = NIRNet(graph, dt, conv).eval()
    y_ref, spikes_ref = _neuron_spikes(model, x)
    with torch.no_grad():
        y, rec = net(x, record=True)
    assert y.dtype == torch.float32
    assert torch.equal(y, y_ref) and y.sum() > 0
    by_layer = {
        node_metadata(n).get("snn2hw_layer"): name
        for name, n in graph.nodes.items()
        if name in net.discrete_neurons()
    }
    assert set(by_layer) == set(spikes_ref)  # every neuron layer has its node
    for layer, s_ref in spikes_ref.items():
        s = rec[by_layer[layer]]
        assert s.sum() > 0, f"{layer} never spikes: the test would prove nothing"
        assert int((s != s_ref).sum()) == 0, f"{layer} ({by_layer[layer]}) differs"


def test_graph_metadata_gives_dt_and_convention_without_user_input(tmp_path):
    path = tmp_path / "lif.nir"
    write_nir(_model(LIF_MLP), path, dt=5e-4)
    graph = read_nir(path)
    dt, conv, notes = resolve_timing(graph)
    assert dt == 5e-4 and conv.name == "snn2hw"
    assert any("dt = 0.0005 s from the graph metadata" in n for n in notes)
    md = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in graph.metadata.items()}
    assert md["producer"] == "snn2hw" and md["convention"] == "snn2hw"
    assert "snn2hw_version" in md


def test_node_names_types_and_parameters():
    with pytest.warns(UserWarning, match="subtractive reset"):
        g = to_nir(_model(SRM_MLP), dt=1e-3)
    assert list(g.nodes) == ["input", "fc1", "srm1", "fc2", "cuba1", "fc3", "srm2", "output"]
    assert isinstance(g.nodes["fc1"], nir.Affine)  # norm folded into it
    srm = g.nodes["srm1"]
    assert isinstance(srm, nir.CubaLIF) and srm.metadata["snn2hw_kind"] == "srm"
    assert "equivalent CubaLIF" in srm.metadata["note"]
    assert srm.tau_mem.shape == (32,)
    # per-step gain 1: r * (dt/tau_mem) * w_in * (dt/tau_syn) == 1
    gain = srm.r * (1e-3 / srm.tau_mem) * srm.w_in * (1e-3 / srm.tau_syn)
    np.testing.assert_allclose(gain, 1.0, rtol=1e-12)
    np.testing.assert_allclose(1 - 1e-3 / srm.tau_mem, np.float32(np.exp(-1 / 8.0)), rtol=1e-12)
    lif = to_nir(_model(LIF_MLP)).nodes
    assert isinstance(lif["fc2"], nir.Linear) and isinstance(lif["if1"], nir.IF)
    assert isinstance(lif["lif1"], nir.LIF)
    np.testing.assert_allclose(lif["lif1"].tau, 1e-3 / (1 - np.float32(0.9)))
    assert lif["lif1"].metadata["snn2hw_layer"] == "layers.1"
    conv = to_nir(_model(CONV_RES)).nodes
    assert isinstance(conv["flatten1"], nir.Flatten) and conv["flatten1"].start_dim == 0
    assert conv["conv1"].weight.shape == (8, 2, 3, 3)


def test_residual_branches_are_parallel_edges_into_the_next_node():
    g = to_nir(_model(CONV_RES))
    assert list(g.nodes) == [
        "input", "conv1", "lif1", "sumpool1", "conv2", "cuba1", "conv3", "lif2", "avgpool1",
        "flatten1", "fc1", "lif3", "output",
    ]
    into = sorted(a for a, b in g.edges if b == "lif2")
    assert into == ["conv3", "sumpool1"]  # block end and identity shortcut


def test_subtractive_reset_warns_and_is_recorded_in_metadata():
    with pytest.warns(UserWarning, match="subtractive reset"):
        g = to_nir(_model(SRM_MLP))
    assert g.nodes["cuba1"].metadata["reset"] == "subtract"
    assert "reset" not in g.nodes["srm1"].metadata


def test_norm_that_cannot_be_folded_is_refused():
    arch = {"input_shape": [4], "layers": [{"type": "norm"}, {"type": "linear", "out": 3},
                                           {"type": "neuron"}]}
    with pytest.raises(GraphError, match=r"layers\.0: a norm layer must directly follow"):
        to_nir(SpikingNet(arch))


def test_write_is_atomic_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "out.nir"
    write_nir(_model(LIF_MLP), path)
    before = path.read_bytes()

    def boom(*_a, **_k):
        raise OSError("disk full")

    monkeypatch.setattr(nir, "write", boom)
    with pytest.raises(OSError):
        write_nir(_model(LIF_MLP), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nir"]


def test_invalid_dt_is_refused():
    with pytest.raises(GraphError, match="dt"):
        to_nir(_model(LIF_MLP), dt=0.0)
