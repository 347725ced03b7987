"""snnTorch 1.0.0 (Leaky, RLeaky, Synaptic, RSynaptic; reset zero/subtract; reset_delay
True/False): exported with snntorch.export_nir, the float path reproduces snnTorch's
output spikes exactly; the quantized graph runs identically on torch-int and the event
simulator. (RSynaptic with reset_delay=False cannot run in snnTorch 1.0.0 itself: its
forward reads undefined names.)"""

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

snn = pytest.importorskip("snntorch")
pytest.importorskip("nirtorch")
from snntorch.export_nir import export_to_nir  # noqa: E402

KINDS = ("Leaky", "RLeaky", "Synaptic", "RSynaptic")


def _neuron(kind: str, n: int, reset: str, delay: bool):
    kw = dict(threshold=torch.ones(n), reset_mechanism=reset, init_hidden=True,
              reset_delay=delay)
    beta, alpha = torch.full((n,), 0.9), torch.full((n,), 0.8)
    if kind == "Leaky":
        return snn.Leaky(beta=beta, **kw)
    if kind == "RLeaky":
        return snn.RLeaky(beta=beta, linear_features=n, **kw)
    if kind == "Synaptic":
        return snn.Synaptic(alpha=alpha, beta=beta, **kw)
    return snn.RSynaptic(alpha=alpha, beta=beta, linear_features=n, **kw)


def _builder(kind: str, reset: str, delay: bool, x: torch.Tensor):
    def build(gain: float):
        torch.manual_seed(0)
        l1, l2 = torch.nn.Linear(N_IN, N_HID), torch.nn.Linear(N_HID, N_OUT)
        with torch.no_grad():
            for p in (*l1.parameters(), *l2.parameters()):
                p.mul_(gain)
        net = torch.nn.Sequential(l1, _neuron(kind, N_HID, reset, delay), l2,
                                  _neuron(kind, N_OUT, reset, delay))
        with torch.no_grad():  # the recurrent Linear of RLeaky / RSynaptic too
            for m in (net[1], net[3]):
                for p in getattr(m, "recurrent", torch.nn.Module()).parameters():
                    p.mul_(gain)
        with torch.no_grad():
            ref = torch.stack([net(xt) for xt in x])
        return lambda: export_to_nir(net, torch.randn(1, N_IN), ignore_dims=[0]), ref
    return build


def _convention(reset: str, delay: bool) -> str:
    if (reset, delay) == ("subtract", True):
        return "snntorch"  # snnTorch's defaults
    return f"snntorch:reset={reset},reset_delay={str(delay).lower()}"


@pytest.mark.parametrize("delay", [True, False])
@pytest.mark.parametrize("reset", ["zero", "subtract"])
@pytest.mark.parametrize("kind", KINDS)
def test_float_path_reproduces_snntorch_exactly(tmp_path, kind, reset, delay):
    if kind == "RSynaptic" and not delay:
        pytest.skip("snnTorch 1.0.0 RSynaptic(reset_delay=False) fails in its own forward")
    x = frames(1)
    graph, ref, _ = tuned(_builder(kind, reset, delay, x))
    path = write(graph, tmp_path / "net.nir")
    assert_float_exact(path, _convention(reset, delay), x, ref)


@pytest.mark.lava
def test_leaky_reset_zero_deploys_exactly_on_loihi_lava(tmp_path):
    """Leaky(zero), with or without reset_delay, is exactly Loihi's neuron: no approximation
    is needed, and torch-int = event = Lava."""
    x = frames(2)
    graph, _, _ = tuned(_builder("Leaky", "zero", True, x))
    path = write(graph, tmp_path / "net.nir")
    res, cmp = integer_backends_agree(tmp_path, path, _convention("zero", True), x, "loihi",
                                      backends=("torch-int", "event", "lava"))
    assert not any("APPROXIMATION" in n for n in res.report["assumptions"])


def test_default_leaky_needs_accepted_approximation_then_backends_agree(tmp_path):
    """snnTorch's default (subtract, reset_delay=True) has no integer neuron: refused with
    the node and reason, deployed after --approximate reset (noted), backends agree."""
    from snn2hw.common.errors import QuantizationError

    x = frames(3)
    graph, _, _ = tuned(_builder("Leaky", "subtract", True, x))
    path = write(graph, tmp_path / "net.nir")
    with pytest.raises(QuantizationError, match=r"node '1'.*reset_delay=True.*--approximate"):
        integer_backends_agree(tmp_path, path, "snntorch", x, "loihi2")
    res, _ = integer_backends_agree(tmp_path, path, "snntorch", x, "loihi2",
                                    approximate=("reset",))
    assert any("APPROXIMATION (reset)" in n for n in res.report["assumptions"])


def test_synaptic_subtract_without_delay_deploys_on_loihi2(tmp_path):
    x = frames(4)
    graph, _, _ = tuned(_builder("Synaptic", "subtract", False, x))
    path = write(graph, tmp_path / "net.nir")
    res, _ = integer_backends_agree(tmp_path, path, _convention("subtract", False), x)
    from snn2hw.quant.qgraph import QGraph

    assert QGraph.load(res.qgraph_path).formats.reset == "subtract"
