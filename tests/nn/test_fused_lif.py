"""The fused multi-step LIF (:func:`snn2hw.nn.fused.lif_multistep`) equals the step-by-step
autograd reference (:func:`snn2hw.nn.functional.lif_multistep_reference`): same spikes, same
gradients w.r.t. the input current and every neuron parameter."""

from __future__ import annotations

import itertools

import pytest
import torch

from snn2hw.nn.functional import lif_multistep_reference
from snn2hw.nn.fused import lif_multistep
from snn2hw.nn.surrogate import SURROGATES, Surrogate


def _inputs(shape: tuple[int, ...], dtype: torch.dtype, seed: int = 0, alpha: float = 0.3,
            beta: float = 0.85, vth: float = 1.0):
    """Random currents (firing roughly 10-30 %) and leaf parameters, with a fixed seed."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=torch.float64) * 0.6 + 0.25).to(dtype)
    bias = (torch.randn(shape[2:], generator=g, dtype=torch.float64) * 0.1).to(dtype)
    weight = torch.rand(shape, generator=g, dtype=torch.float64).to(dtype)
    params = {
        "alpha": torch.tensor(alpha, dtype=dtype),
        "beta": torch.tensor(beta, dtype=dtype),
        "vth": torch.tensor(vth, dtype=dtype),
        "bias": bias,
    }
    return x, params, weight


def _run(fn, x, params, weight, **kw):
    """Spikes and gradients of ``(spikes * weight).sum()`` w.r.t. x and every parameter."""
    x = x.clone().requires_grad_()
    leaves = {k: v.clone().requires_grad_() for k, v in params.items()}
    spikes = fn(x, **leaves, **kw)
    (spikes * weight).sum().backward()
    grads = {"x": x.grad, **{k: leaf.grad for k, leaf in leaves.items()}}
    return spikes.detach(), grads


def _assert_grads_close(got: dict, want: dict, rtol: float | None = None) -> None:
    for name, ref in want.items():
        assert got[name] is not None, f"no gradient for {name}"
        tol = rtol if rtol is not None else (1e-5 if ref.dtype == torch.float32 else 1e-10)
        # atol scaled to the gradient's magnitude: sums over T*B*N terms in another order.
        atol = tol * float(ref.abs().max()) + 1e-12
        torch.testing.assert_close(got[name], ref, rtol=tol, atol=atol,
                                   msg=lambda m, n=name: f"d/d{n}: {m}")


CASES = list(itertools.product(
    ("hard", "subtract"), (True, False), ("numba", "torch"), (torch.float32, torch.float64)
))


@pytest.mark.parametrize(("reset", "detach", "backend", "dtype"), CASES,
                         ids=[f"{r}-{'detach' if d else 'attached'}-{b}-{str(t)[6:]}"
                              for r, d, b, t in CASES])
def test_fused_spikes_and_gradients_equal_reference(reset, detach, backend, dtype):
    x, params, weight = _inputs((30, 3, 11), dtype)
    kw = dict(reset=reset, detach_reset=detach)
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight, **kw)
    s_fused, g_fused = _run(lif_multistep, x, params, weight, backend=backend, **kw)
    assert 0.02 < float(s_ref.mean()) < 0.6, "inputs should make the neurons fire"
    assert s_fused.dtype == dtype and s_fused.shape == x.shape
    assert torch.equal(s_fused, s_ref)
    _assert_grads_close(g_fused, g_ref)


@pytest.mark.parametrize("backend", ["numba", "torch"])
@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_fused_equals_reference_on_conv_shaped_neurons(backend, reset):
    x, params, weight = _inputs((12, 2, 3, 4, 5), torch.float32, seed=1)
    bias = params.pop("bias")  # constant per-neuron bias [C, H, W]; learnable: next test
    kw = dict(reset=reset, detach_reset=False, bias=bias)
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight, **kw)
    s_fused, g_fused = _run(lif_multistep, x, params, weight, backend=backend, **kw)
    assert s_fused.shape == (12, 2, 3, 4, 5)
    assert torch.equal(s_fused, s_ref)
    _assert_grads_close(g_fused, g_ref)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_fused_bias_gradient_on_conv_shaped_neurons_equals_reference(backend):
    x, params, weight = _inputs((12, 2, 3, 4, 5), torch.float32, seed=1)
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight)
    s_fused, g_fused = _run(lif_multistep, x, params, weight, backend=backend)
    assert g_fused["bias"].shape == (3, 4, 5)
    _assert_grads_close(g_fused, g_ref)


@pytest.mark.parametrize("name", sorted(SURROGATES))
def test_fused_uses_the_same_surrogate_derivative_as_reference(name):
    x, params, weight = _inputs((15, 2, 9), torch.float64, seed=2)
    kw = dict(surrogate=Surrogate(name), reset="subtract", detach_reset=False)
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight, **kw)
    s_fused, g_fused = _run(lif_multistep, x, params, weight, **kw)
    assert torch.equal(s_fused, s_ref)
    _assert_grads_close(g_fused, g_ref)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_fused_equals_reference_over_many_steps(backend):
    # Long sequence: errors in the reverse-time recurrence would accumulate.
    x, params, weight = _inputs((300, 2, 16), torch.float64, seed=3, alpha=0.6, beta=0.95)
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight)
    s_fused, g_fused = _run(lif_multistep, x, params, weight, backend=backend)
    assert torch.equal(s_fused, s_ref)
    _assert_grads_close(g_fused, g_ref)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_fused_single_time_step_equals_reference(backend):
    x, params, weight = _inputs((1, 4, 6), torch.float64, seed=4)
    x = x + 1.0  # some neurons above threshold at t = 0
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight)
    s_fused, g_fused = _run(lif_multistep, x, params, weight, backend=backend)
    assert torch.equal(s_fused, s_ref)
    for name in ("x", "beta", "vth", "bias"):  # alpha has no effect at T = 1: both give 0
        torch.testing.assert_close(g_fused[name], g_ref[name], rtol=1e-5, atol=1e-12)
    assert float(g_fused["alpha"]) == 0.0


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_fused_with_float_parameters_and_no_bias_equals_reference(backend):
    x, _, weight = _inputs((25, 3, 8), torch.float32, seed=5)
    xr = x.clone().requires_grad_()
    (lif_multistep_reference(xr, alpha=0.2, beta=0.9, vth=0.8) * weight).sum().backward()
    xf = x.clone().requires_grad_()
    s = lif_multistep(xf, alpha=0.2, beta=0.9, vth=0.8, backend=backend)
    (s * weight).sum().backward()
    assert torch.equal(s.detach(), lif_multistep_reference(x, alpha=0.2, beta=0.9, vth=0.8))
    torch.testing.assert_close(xf.grad, xr.grad, rtol=1e-5, atol=1e-6)


def test_numba_and_torch_backends_agree_on_float32():
    x, params, weight = _inputs((40, 4, 32), torch.float32, seed=6)
    s_n, g_n = _run(lif_multistep, x, params, weight, backend="numba", detach_reset=False)
    s_t, g_t = _run(lif_multistep, x, params, weight, backend="torch", detach_reset=False)
    assert torch.equal(s_n, s_t)
    _assert_grads_close(g_n, g_t)


def test_reference_unbind_loop_gives_the_gradient_of_an_indexed_loop():
    # The reference iterates with x.unbind(0) (linear-time backward); its gradients must be
    # those of the naive x[t] loop written out here independently.
    from snn2hw.nn.functional import LIFState, lif_step

    x, params, weight = _inputs((20, 3, 5), torch.float64, seed=7)
    s_ref, g_ref = _run(lif_multistep_reference, x, params, weight, detach_reset=False)

    def indexed_loop(x, alpha, beta, vth, bias):
        state = LIFState(torch.zeros_like(x[0]), torch.zeros_like(x[0]))
        out = []
        for t in range(x.shape[0]):
            s, state = lif_step(x[t], state, alpha=alpha, beta=beta, vth=vth, bias=bias,
                                detach_reset=False)
            out.append(s)
        return torch.stack(out)

    s_idx, g_idx = _run(indexed_loop, x, params, weight)
    assert torch.equal(s_idx, s_ref)
    _assert_grads_close(g_ref, g_idx, rtol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "torch"])
def test_subthreshold_input_gradient_matches_closed_form(backend):
    # Without spikes and with alpha = 0 the neuron is linear, h[t] = sum_k beta^k x[t-k], so
    # dL/dx[t] = sum_{t' >= t} beta^(t'-t) * w[t'] * g(h[t'] - vth): an independent check.
    T, beta, vth = 50, 0.8, 100.0
    x, _, weight = _inputs((T, 2, 4), torch.float64, seed=8)
    sur = Surrogate("fast_sigmoid", 0.01)
    xf = x.clone().requires_grad_()
    s = lif_multistep(xf, alpha=0.0, beta=beta, vth=vth, surrogate=sur, backend=backend)
    (s * weight).sum().backward()
    assert not s.any()
    h = torch.zeros_like(x)
    acc = torch.zeros_like(x[0])
    for t in range(T):
        acc = beta * acc + x[t]
        h[t] = acc
    gh = weight / (1.0 + sur.a * (h - vth).abs()) ** 2
    want = torch.zeros_like(x)
    carry = torch.zeros_like(x[0])
    for t in reversed(range(T)):
        carry = gh[t] + beta * carry
        want[t] = carry
    torch.testing.assert_close(xf.grad, want, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("reset", ["hard", "subtract"])
def test_compiled_step_backend_equals_reference(reset):
    """The GPU path (torch.compile-fused steps) checked on CPU, where inductor also runs."""
    torch.manual_seed(5)
    x = (torch.randn(30, 3, 7) * 0.8 + 0.4).requires_grad_()
    kw = dict(alpha=torch.tensor(0.6, requires_grad=True), beta=torch.tensor(0.9),
              vth=torch.tensor(1.0, requires_grad=True), reset=reset)
    s1 = lif_multistep(x, backend="compiled", **kw)
    w = torch.randn_like(s1)
    g1 = torch.autograd.grad((s1 * w).sum(), [x, kw["alpha"], kw["vth"]])
    s2 = lif_multistep_reference(x, **kw)
    g2 = torch.autograd.grad((s2 * w).sum(), [x, kw["alpha"], kw["vth"]])
    assert torch.equal(s1, s2)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)
