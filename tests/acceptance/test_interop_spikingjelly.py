"""SpikingJelly 2.0 (IFNode, LIFNode with and without decay_input, CUBALIFNode,
ParametricLIFNode as ``export_to_nir`` writes them): the float path reproduces SpikingJelly's
output spikes exactly (IF's gain is NIR's r*dt: before, 516 spikes where SpikingJelly has
68); ``>=`` deploys exactly where the target compares with ``>=`` (loihi2) and is refused
on loihi unless accepted."""

from __future__ import annotations

import pytest
import torch
from interop_check import (
    N_HID,
    N_IN,
    N_OUT,
    assert_float_exact,
    frames,
    integer_backends_agree,
    tuned,
    write,
)

pytest.importorskip("spikingjelly")
pytest.importorskip("nirtorch")
from spikingjelly.activation_based import functional, layer, neuron  # noqa: E402
from spikingjelly.activation_based.nir_exchange import export_to_nir  # noqa: E402

KINDS = ("IF", "LIF", "LIF_no_decay_input", "CUBA_LIF", "ParametricLIF")


def _node(kind: str):
    if kind == "IF":
        return neuron.IFNode(v_threshold=1.0)
    if kind == "LIF":
        return neuron.LIFNode(tau=2.0, v_threshold=0.5)
    if kind == "LIF_no_decay_input":
        return neuron.LIFNode(tau=4.0, decay_input=False)
    if kind == "CUBA_LIF":
        return neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75, v_threshold=0.5)
    return neuron.ParametricLIFNode(init_tau=2.0, v_threshold=0.5)


def _builder(kind: str, x: torch.Tensor):
    def build(gain: float):
        torch.manual_seed(1)
        net = torch.nn.Sequential(layer.Linear(N_IN, N_HID), _node(kind),
                                  layer.Linear(N_HID, N_OUT), _node(kind))
        with torch.no_grad():
            for p in (*net[0].parameters(), *net[2].parameters()):
                p.mul_(gain)
        functional.reset_net(net)
        with torch.no_grad():
            ref = torch.stack([net(xt) for xt in x])
        return lambda: export_to_nir(net, torch.randn(1, N_IN)), ref
    return build


@pytest.mark.parametrize("kind", KINDS)
def test_float_path_reproduces_spikingjelly_exactly(tmp_path, kind):
    x = frames(7)
    graph, ref, _ = tuned(_builder(kind, x))
    path = write(graph, tmp_path / "net.nir")
    assert_float_exact(path, "spikingjelly", x, ref)


def test_if_compare_ge_deploys_on_loihi2_and_is_refused_on_loihi(tmp_path):
    from snn2hw.common.errors import QuantizationError
    from snn2hw.quant.qgraph import QGraph

    x = frames(8)
    graph, _, _ = tuned(_builder("IF", x))
    path = write(graph, tmp_path / "net.nir")
    res, _ = integer_backends_agree(tmp_path, path, "spikingjelly", x, "loihi2")
    assert QGraph.load(res.qgraph_path).formats.threshold_compare == ">="
    with pytest.raises(QuantizationError, match=r"node '_1'.*v >= threshold.*--approximate "
                                                r"threshold"):
        integer_backends_agree(tmp_path, path, "spikingjelly", x, "loihi")
    integer_backends_agree(tmp_path, path, "spikingjelly", x, "loihi",
                           approximate=("threshold",))


def test_cli_refuses_ge_on_loihi_and_accepts_it_with_approximate(tmp_path):
    """``snn2hw export --approximate threshold``: without it a one-line refusal (exit 1)
    naming the node; with it the export succeeds and its notes say APPROXIMATION."""
    import json

    import numpy as np
    from click.testing import CliRunner

    from snn2hw.cli import main

    x = frames(14)
    graph, _, _ = tuned(_builder("LIF", x))
    path = write(graph, tmp_path / "net.nir")
    np.save(tmp_path / "x.npy", x.numpy())
    args = ["export", str(path), "--convention", "spikingjelly", "--target", "loihi",
            "--inputs", str(tmp_path / "x.npy"), "--calib-samples", "4", "--no-report"]
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "a")])
    assert r.exit_code == 1 and "node '_1'" in r.output and "--approximate threshold" in r.output
    r = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "b"), "--approximate",
                                  "threshold", "--json"])
    assert r.exit_code == 0, r.output
    notes = json.loads(r.output)["assumptions"]
    assert any(n.startswith("APPROXIMATION (threshold)") for n in notes)
