"""Training with the chip's timing ([model].hop_delays): each layer integrates the layer
before it one step later, skip branches arrive at their hop depth, the NIR export carries
the hops as Delay nodes, and such a model needs no synaptic delay on a chip."""

from __future__ import annotations

import nir
import numpy as np
import pytest
import torch

from snn2hw.chip.targets import load_target
from snn2hw.common.errors import ConfigError
from snn2hw.nir import NIRNet, resolve_timing, to_nir
from snn2hw.nn.model import SpikingNet
from snn2hw.quant.ptq import quantize
from snn2hw.training.config import model_arch, validate_config

RESNET = {
    "input_shape": [1, 6, 6],
    "neuron": {"kind": "lif", "beta": 0.9, "threshold": 0.5},
    "layers": [
        {"type": "conv", "out": 4, "kernel": 3, "padding": 1},
        {"type": "neuron"},
        {"type": "residual", "layers": [
            {"type": "conv", "out": 4, "kernel": 3, "padding": 1},
            {"type": "neuron"},
            {"type": "conv", "out": 4, "kernel": 3, "padding": 1},
        ]},
        {"type": "neuron"},
        {"type": "flatten"},
        {"type": "linear", "out": 3},
        {"type": "neuron"},
    ],
}


def model(hop: bool, seed: int = 0) -> SpikingNet:
    torch.manual_seed(seed)
    return SpikingNet({**RESNET, **({"hop_delays": True} if hop else {})}).eval()


def inputs(steps: int = 6, batch: int = 4) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(steps, batch, 1, 6, 6, generator=g) < 0.5).float() * 2


def test_each_layer_sees_the_layer_before_one_step_later():
    net = SpikingNet({"input_shape": [2], "neuron": {"kind": "if", "threshold": 0.5},
                      "layers": [{"type": "linear", "out": 2, "bias": False}, {"type": "neuron"},
                                 {"type": "linear", "out": 2, "bias": False}, {"type": "neuron"}],
                      "hop_delays": True})
    with torch.no_grad():
        for lin in (net.layers[0], net.layers[2]):
            lin.weight.copy_(torch.eye(2))
    x = torch.zeros(3, 1, 2)
    x[0, 0, 0] = 1.0  # one input spike at step 0
    out, rec = net(x, record=True)
    assert out.shape[0] == 3 + net.hop_depth == 5
    assert rec["1"][:, 0, 0].tolist() == [0, 1, 0, 0, 0]  # layer 1: one hop
    assert out[:, 0, 0].tolist() == [0, 0, 1, 0, 0]  # layer 2: two hops
    net.set_hop_delays(False)  # the plain float model: same step everywhere
    assert net(x)[:, 0, 0].tolist() == [1, 0, 0]


def test_hop_model_exports_delay_nodes_and_the_nir_graph_runs_the_same_timing():
    m = model(True)
    assert m.hop_depth == 4  # lif1, the block's lif, the merge lif, the output lif
    g = to_nir(m)
    delays = [n for n, v in g.nodes.items() if isinstance(v, nir.Delay)]
    assert len(delays) == 5  # one per path into a neuron (the merge has two)
    dt, conv, _ = resolve_timing(g, None, None)
    net = NIRNet(g, dt, conv).eval()
    x = inputs()
    with torch.no_grad():
        ref = m(x)
        got = net(torch.cat([x, torch.zeros(m.hop_depth, *x.shape[1:])]))
    torch.testing.assert_close(got, ref)
    assert ref.sum() > 0
    assert not any(isinstance(v, nir.Delay) for v in to_nir(model(False)).nodes.values())


@pytest.mark.parametrize("target", ["loihi", "loihi2"])
def test_hop_model_needs_no_synaptic_delay_on_the_chip(target):
    m = model(True)
    g = to_nir(m)
    dt, conv, _ = resolve_timing(g, None, None)
    net = NIRNet(g, dt, conv).eval()
    with torch.no_grad():
        _, rec = net(inputs(), record=True)
    q = quantize(g, net.discrete_neurons(), dict(rec), dt=dt, target=target, num_steps=6,
                 input_shape=(1, 6, 6), formats=load_target(target).number_formats).graph
    assert not q.has_delays()
    al = q.metadata["alignment"]
    assert set(al["shifts"].values()) == {0} and al["merge_nodes"] == []
    # the same weights trained without hop delays: loihi2 inserts, loihi reports the merge
    g0 = to_nir(model(False))
    net0 = NIRNet(g0, dt, conv).eval()
    with torch.no_grad():
        _, rec0 = net0(inputs(), record=True)
    q0 = quantize(g0, net0.discrete_neurons(), dict(rec0), dt=dt, target=target, num_steps=6,
                  input_shape=(1, 6, 6), formats=load_target(target).number_formats).graph
    assert q0.metadata["alignment"]["merge_nodes"] == ["lif3"]
    assert q0.has_delays() == (target == "loihi2")


def test_config_key_hop_delays_reaches_the_architecture_and_is_type_checked():
    cfg = validate_config({"model": {"layers": RESNET["layers"], "hop_delays": True}})
    arch = model_arch(cfg, (1, 6, 6))
    assert arch["hop_delays"] is True and SpikingNet(arch).hop_delays
    assert "hop_delays" not in model_arch(validate_config({"model": {"layers": []}}), (1,))
    with pytest.raises(ConfigError, match=r"\[model\]\.hop_delays must be bool"):
        validate_config({"model": {"layers": [], "hop_delays": "yes"}})
    with pytest.raises(ConfigError, match="hop_delays"):
        SpikingNet({**RESNET, "hop_delays": 1})


def test_finetune_with_hop_delays_writes_a_hop_model(tmp_path):
    from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
    from snn2hw.training.qat import finetune

    cfg = validate_config({"data": {"dataset": "digits", "batch_size": 256},
                           "model": {"layers": [{"type": "flatten"},
                                                {"type": "linear", "out": 10},
                                                {"type": "neuron"}]},
                           "train": {"num_steps": 3}})
    m = SpikingNet(model_arch(cfg, (1, 8, 8)))
    src = tmp_path / "src.pt"
    save_checkpoint(src, Checkpoint(arch=m.arch, state_dict=m.state_dict(), config=cfg,
                                    metrics={"num_steps": 3}))
    res = finetune(src, "loihi", tmp_path / "hop.pt", epochs=1, progress=False,
                   int_eval_samples=20, hop_delays=True)
    out = load_checkpoint(res.checkpoint)
    assert out.arch.get("hop_delays") is True
    assert "hop_delays" not in load_checkpoint(src).arch  # the source is untouched
    assert np.isfinite(res.float_accuracy)
