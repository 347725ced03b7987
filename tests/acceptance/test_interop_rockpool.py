"""Rockpool 3.1.0 (LIFTorch, LIFNeuronTorch; exponential decay, v >= threshold, several
spikes per step, subtractive reset; dt recovered from r): the float path reproduces
Rockpool's output spikes exactly. Before, the LIFTorch input gain came out ~10x too small
(0.088 instead of exp(-dt/tau_syn) = 0.905) and the network was silent."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from interop_check import N_HID, N_IN, N_OUT, T, assert_float_exact, frames, tuned, write

pytest.importorskip("rockpool")
from rockpool.nn.combinators import Sequential  # noqa: E402
from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch  # noqa: E402
from rockpool.nn.modules.torch.nir import to_nir  # noqa: E402

DT = 1e-3


def _builder(kind: str, x: torch.Tensor):
    def cell(n: int):
        if kind == "LIFTorch":
            return LIFTorch(n, tau_mem=0.02, tau_syn=0.01, dt=DT)
        return LIFNeuronTorch(n, tau_mem=0.02, dt=DT)

    def build(gain: float):
        torch.manual_seed(1)
        net = Sequential(LinearTorch((N_IN, N_HID)), cell(N_HID), LinearTorch((N_HID, N_OUT)),
                         cell(N_OUT))
        with torch.no_grad():
            for p in (net[0].weight, net[2].weight):
                p.mul_(gain)
        net.reset_state()
        with torch.no_grad():
            out, _, _ = net(x.transpose(0, 1))
        return lambda: to_nir(net, torch.randn(1, T, N_IN)), out.transpose(0, 1)
    return build


@pytest.mark.parametrize("kind", ["LIFTorch", "LIFNeuronTorch"])
def test_float_path_reproduces_rockpool_exactly(tmp_path, kind):
    x = frames(12, p=0.2)
    graph, ref, _ = tuned(_builder(kind, x))
    path = write(graph, tmp_path / "net.nir")
    assert_float_exact(path, "rockpool", x, ref)


def test_rockpool_liftorch_gain_and_dt_from_its_export(tmp_path):
    from snn2hw.nir import NIRNet, read_nir, resolve_timing

    x = frames(13, p=0.2)
    graph, _, _ = tuned(_builder("LIFTorch", x))
    g = read_nir(write(graph, tmp_path / "net.nir"))
    dt, conv, notes = resolve_timing(g, None, "rockpool")
    assert dt == pytest.approx(DT, rel=1e-6) and any("recovered from r" in n for n in notes)
    dn = NIRNet(g, dt, conv).discrete_neurons()
    node = next(k for k in dn if k.startswith("1"))
    np.testing.assert_allclose(dn[node].in_gain, np.exp(-DT / 0.01), rtol=1e-6)  # 0.905
