"""Acceptance: NIR graphs exported by snnTorch (Leaky + Synaptic, reset to zero, no reset
delay) and by Norse (LIFBoxCell, exactly as norse 1.1.0 writes it) import, quantize for
loihi, lower to Lava and match the event simulator (and torch-int) exactly."""

from __future__ import annotations

import warnings

import nir
import numpy as np
import pytest
import torch

from snn2hw.pipeline.compare import compare
from snn2hw.pipeline.export import export
from snn2hw.pipeline.samples import SampleSpec

pytestmark = pytest.mark.lava


def _deploy(tmp_path, graph: nir.NIRGraph, convention: str, frames: np.ndarray):
    for node in graph.nodes.values():  # nir.write cannot store 0-d parameter arrays
        for key, val in list(vars(node).items()):
            if isinstance(val, np.ndarray) and val.ndim == 0:
                setattr(node, key, val.reshape(1))
    path = tmp_path / f"{convention.partition(':')[0]}.nir"
    nir.write(str(path), graph)
    np.save(tmp_path / "x.npy", frames.astype(np.float32))
    res = export(path, "loihi", tmp_path / "out", convention=convention,
                 spec=SampleSpec(inputs_file=str(tmp_path / "x.npy")),
                 calib_samples=frames.shape[1])
    print(f"{convention}: {res.check.summary()}\n{res.check.table()}")
    assert res.check.passed, res.check.error()  # the deployment check, default limits
    return compare(res.qgraph_path, ["float", "torch-int", "event", "lava"], frames.shape[1])


def test_snntorch_leaky_synaptic_graph_runs_identically_on_lava_and_event(tmp_path):
    snn = pytest.importorskip("snntorch")
    pytest.importorskip("nirtorch")
    from snntorch.export_nir import export_to_nir

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 16),
        snn.Leaky(beta=torch.full((16,), 0.9), threshold=torch.ones(16), reset_mechanism="zero",
                  init_hidden=True),
        torch.nn.Linear(16, 4),
        snn.Synaptic(alpha=torch.full((4,), 0.8), beta=torch.full((4,), 0.9),
                     threshold=torch.ones(4), reset_mechanism="zero", init_hidden=True,
                     reset_delay=False),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = export_to_nir(net, torch.randn(1, 6), ignore_dims=[0])
    frames = (np.random.default_rng(1).random((40, 8, 6)) < 0.3).astype(np.float32)
    cmp = _deploy(tmp_path, graph, "snntorch:reset=zero,reset_delay=false", frames)
    assert cmp.integer_equal, cmp.divergences[0].describe()
    assert sum(int(s.sum()) for s in cmp.runs["lava"].spikes.values()) > 0


def test_norse_lifbox_graph_runs_identically_on_lava_and_event(tmp_path):
    nt = pytest.importorskip("norse.torch")
    pytest.importorskip("nirtorch")
    torch.manual_seed(2)
    dt = 1e-3
    model = nt.SequentialState(
        torch.nn.Linear(6, 16),
        nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.tensor(200.0),
                                          v_th=torch.tensor(0.3)), dt=dt),
        torch.nn.Linear(16, 4),
        nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0),
                                          v_th=torch.tensor(0.2)), dt=dt),
    )
    with torch.no_grad():
        model[2].weight.abs_().mul_(2.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = nt.to_nir(model, torch.randn(1, 6), dt=dt)
    # Exported as norse 1.1.0 writes it (tau = dt*tau_mem): the norse convention reads it.
    sizes = {"1": 16, "3": 4}
    for name, node in graph.nodes.items():
        if isinstance(node, nir.LIF):  # per neuron: nir cannot read back mixed 0-d/1-d fields
            for key in ("tau", "r", "v_leak", "v_threshold", "v_reset"):
                setattr(node, key, np.full(sizes[name], float(np.asarray(getattr(node, key)))))
    frames = (np.random.default_rng(3).random((40, 8, 6)) < 0.4).astype(np.float32)
    cmp = _deploy(tmp_path, graph, "norse", frames)
    assert cmp.integer_equal, cmp.divergences[0].describe()
    assert sum(int(s.sum()) for s in cmp.runs["lava"].spikes.values()) > 0
