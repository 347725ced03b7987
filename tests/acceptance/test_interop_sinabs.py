"""Sinabs 3.1.3 (IAF, LIF; MultiSpike and SingleSpike; v >= threshold; subtractive reset):
the float path reproduces Sinabs' output spikes (counts) exactly; on loihi2 the quantized
graph keeps subtract and >= (graded spikes for MultiSpike); on loihi (reset to zero, '>',
binary) the deployment is refused with the node and reason unless accepted."""

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

pytest.importorskip("sinabs")
import sinabs.layers as sl  # noqa: E402
from sinabs.activation import MultiSpike, SingleSpike  # noqa: E402
from sinabs.nir import to_nir  # noqa: E402


def _builder(kind: str, spikes: str, x: torch.Tensor):
    fn = MultiSpike if spikes == "multi" else SingleSpike

    def cell():
        return sl.IAF(spike_fn=fn) if kind == "IAF" else sl.LIF(tau_mem=torch.tensor(8.0),
                                                                  spike_fn=fn)

    def build(gain: float):
        torch.manual_seed(1)
        net = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID), cell(),
                                  torch.nn.Linear(N_HID, N_OUT), cell())
        with torch.no_grad():
            for p in (*net[0].parameters(), *net[2].parameters()):
                p.mul_(gain)
        xb = x.transpose(0, 1)  # Sinabs: [batch, time, ...]
        with torch.no_grad():  # also creates the states the exporter reads shapes from
            ref = net(xb).transpose(0, 1)
        return lambda: to_nir(net, xb), ref
    return build


def _convention(spikes: str) -> str:
    return "sinabs:spikes=multi" if spikes == "multi" else "sinabs:spikes=1"


@pytest.mark.parametrize("spikes", ["multi", "single"])
@pytest.mark.parametrize("kind", ["IAF", "LIF"])
def test_float_path_reproduces_sinabs_exactly(tmp_path, kind, spikes):
    x = frames(9)
    graph, ref, _ = tuned(_builder(kind, spikes, x))
    path = write(graph, tmp_path / "net.nir")
    assert_float_exact(path, _convention(spikes), x, ref)


def test_single_spike_lif_keeps_subtract_and_ge_on_loihi2(tmp_path):
    from snn2hw.quant.qgraph import QGraph

    x = frames(10)
    graph, _, _ = tuned(_builder("LIF", "single", x))
    path = write(graph, tmp_path / "net.nir")
    res, _ = integer_backends_agree(tmp_path, path, "sinabs:spikes=1", x, "loihi2")
    f = QGraph.load(res.qgraph_path).formats
    assert (f.reset, f.threshold_compare) == ("subtract", ">=")


def test_multi_spike_iaf_on_loihi2_and_refused_on_loihi(tmp_path):
    from snn2hw.backends.base import FEATURES
    from snn2hw.backends.registry import get as get_backend
    from snn2hw.common.errors import QuantizationError

    x = frames(11)
    graph, _, _ = tuned(_builder("IAF", "multi", x))
    path = write(graph, tmp_path / "net.nir")
    with pytest.raises(QuantizationError, match=r"node '1'.*subtracts the threshold.*"
                                                r"--approximate reset"):
        integer_backends_agree(tmp_path, path, "sinabs", x, "loihi")
    res, _ = integer_backends_agree(tmp_path, path, "sinabs", x, "loihi",
                                    approximate=("reset", "threshold", "spikes"))
    assert sum("APPROXIMATION" in n for n in res.report["assumptions"]) >= 3
    assert "multi_spike" in FEATURES
    assert all("multi_spike" in get_backend(b).features for b in ("torch-int", "event"))
    integer_backends_agree(tmp_path, path, "sinabs", x, "loihi2")


@pytest.mark.parametrize("spikes", ["single", "multi"])
def test_membranes_landing_on_the_threshold_fire_as_in_sinabs(tmp_path, spikes):
    """Weights on a 1/4 grid and IAF neurons: membranes hit the threshold exactly, where
    '>' and '>=' part ways (before, with '>': 105 of 1,600 output entries differed)."""
    fn = MultiSpike if spikes == "multi" else SingleSpike
    torch.manual_seed(1)
    net = torch.nn.Sequential(torch.nn.Linear(N_IN, N_HID, bias=False), sl.IAF(spike_fn=fn),
                              torch.nn.Linear(N_HID, N_OUT, bias=False), sl.IAF(spike_fn=fn))
    with torch.no_grad():
        for m in (net[0], net[2]):
            m.weight.copy_(torch.round(m.weight * 6) / 4)
    x = frames(9)
    xb = x.transpose(0, 1)
    with torch.no_grad():
        net(xb)
    graph = to_nir(net, xb)
    for m in net:
        if hasattr(m, "reset_states"):
            m.reset_states()
    with torch.no_grad():
        ref = net(xb).transpose(0, 1)
    assert 0.02 <= float((ref > 0).float().mean()) <= 0.20
    path = write(graph, tmp_path / "net.nir")
    assert_float_exact(path, _convention(spikes), x, ref)
    from interop_check import float_path

    strict = float_path(path, _convention(spikes) + ",threshold=>", x)
    assert int((strict != ref).sum()) > 0  # the comparison matters on this network
