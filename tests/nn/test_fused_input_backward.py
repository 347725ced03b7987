"""The fused LIF's input-only backward (a detached reset, no neuron parameter learnt: the
common training case) gives the input gradient of the general backward bit for bit, and of
the step-by-step reference to rounding."""

from __future__ import annotations

import pytest
import torch

from snn2hw.nn import fused
from snn2hw.nn.functional import lif_multistep_reference
from snn2hw.nn.fused import lif_multistep


def _grad_x(fn, x, w, vth, **kw) -> torch.Tensor:
    xi = x.clone().requires_grad_()
    (fn(xi, alpha=0.3, beta=0.85, vth=vth, **kw) * w).sum().backward()
    return xi.grad


def _case(dtype):
    g = torch.Generator().manual_seed(4)
    x = (torch.randn(20, 3, 70, generator=g, dtype=torch.float64) * 0.6 + 0.25).to(dtype)
    w = torch.rand(20, 3, 70, generator=g, dtype=torch.float64).to(dtype)
    return x, w


@pytest.mark.parametrize("reset", ["hard", "subtract"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_input_only_backward_equals_general_backward_bit_for_bit(reset, dtype, monkeypatch):
    x, w = _case(dtype)
    calls = []
    real = fused._bwd_input_kernel
    monkeypatch.setattr(fused, "_bwd_input_kernel",
                        lambda *a: (calls.append(1), real(*a))[1])
    fast = _grad_x(lif_multistep, x, w, torch.tensor(1.0, dtype=dtype), reset=reset)
    assert calls, "the input-only kernel did not run"
    # a learnable threshold takes the general kernel
    general = _grad_x(lif_multistep, x, w, torch.tensor(1.0, dtype=dtype, requires_grad=True),
                      reset=reset)
    assert len(calls) == 1
    assert torch.equal(fast, general)
    ref = _grad_x(lif_multistep_reference, x, w, 1.0, reset=reset)
    tol = 1e-5 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(fast, ref, rtol=tol, atol=tol * float(ref.abs().max()))


def test_attached_reset_never_takes_the_input_only_backward(monkeypatch):
    x, w = _case(torch.float64)
    monkeypatch.setattr(fused, "_bwd_input_kernel",
                        lambda *a: pytest.fail("input-only kernel used with an attached reset"))
    got = _grad_x(lif_multistep, x, w, 1.0, reset="hard", detach_reset=False)
    ref = _grad_x(lif_multistep_reference, x, w, 1.0, reset="hard", detach_reset=False)
    torch.testing.assert_close(got, ref, rtol=1e-10, atol=1e-10 * float(ref.abs().max()))


def test_comparison_catches_an_input_kernel_that_ignores_the_reset(monkeypatch):
    """Fault injection: a kernel that treats a hard reset as subtractive is caught."""
    x, w = _case(torch.float64)
    real = fused._bwd_input_kernel
    monkeypatch.setattr(fused, "_bwd_input_kernel",
                        lambda gs, sg, s, a, b, hard, gx: real(gs, sg, s, a, b, False, gx))
    fast = _grad_x(lif_multistep, x, w, 1.0, reset="hard")
    general = _grad_x(lif_multistep, x, w, torch.tensor(1.0, dtype=torch.float64,
                                                        requires_grad=True), reset="hard")
    assert not torch.equal(fast, general)
