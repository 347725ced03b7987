"""Norse 1.1.0 (LIFBoxCell, LIFCell, IAFCell as its ``to_nir`` writes them, tau = dt*tau_mem
included): the float path reproduces Norse's output spikes exactly, and the quantized graph
runs identically on torch-int, the event simulator and (loihi) Lava."""

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

nt = pytest.importorskip("norse.torch")
pytest.importorskip("nirtorch")


def _cell(kind: str):
    if kind == "LIFBox":
        return nt.LIFBoxCell(nt.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0),
                                                 v_th=torch.tensor(0.5)))
    if kind == "LIF":
        return nt.LIFCell(nt.LIFParameters(tau_syn_inv=torch.tensor(200.0),
                                           tau_mem_inv=torch.tensor(100.0),
                                           v_th=torch.tensor(0.5)))
    return nt.IAFCell(nt.IAFParameters(v_th=torch.tensor(2.0)))


def _builder(kind: str, x: torch.Tensor):
    def build(gain: float):
        torch.manual_seed(1)
        model = nt.SequentialState(torch.nn.Linear(N_IN, N_HID), _cell(kind),
                                   torch.nn.Linear(N_HID, N_OUT), _cell(kind))
        with torch.no_grad():
            for p in (*model[0].parameters(), *model[2].parameters()):
                p.mul_(gain)
        state, outs = None, []
        with torch.no_grad():
            for xt in x:
                o, state = model(xt, state)
                outs.append(o)
        return lambda: nt.to_nir(model, torch.randn(1, N_IN), dt=1e-3), torch.stack(outs)
    return build


@pytest.mark.parametrize("kind", ["LIFBox", "LIF", "IAF"])
def test_float_path_reproduces_norse_exactly(tmp_path, kind):
    x = frames(5)
    graph, ref, _ = tuned(_builder(kind, x))
    path = write(graph, tmp_path / "net.nir")
    assert_float_exact(path, "norse", x, ref)


@pytest.mark.lava
def test_norse_lifbox_deploys_on_loihi_identically_on_three_backends(tmp_path):
    """Before: every LIFBox export was refused ("dt/tau = 100 > 1")."""
    x = frames(6)
    graph, _, _ = tuned(_builder("LIFBox", x))
    path = write(graph, tmp_path / "net.nir")
    res, _ = integer_backends_agree(tmp_path, path, "norse", x, "loihi",
                                    backends=("torch-int", "event", "lava"))
    assert not any("APPROXIMATION" in n for n in res.report["assumptions"])
