"""The Triton backend of the fused LIF (:mod:`snn2hw.nn.fused_triton`) gives the spikes of the
numba backend and of the step-by-step autograd reference bit for bit, and their gradients
(input, alpha, beta, vth, bias) to float rounding.

Without a GPU the kernels run in Triton's interpreter, which must be switched on
(``TRITON_INTERPRET=1``) before Triton is first imported: those checks run this file as a
script in a subprocess that saves every result, and the tests compare them here. With CUDA
the same comparisons run on the GPU against numba on CPU.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from snn2hw.common.errors import ConfigError, MissingDependencyError
from snn2hw.nn import fused
from snn2hw.nn.functional import lif_multistep_reference
from snn2hw.nn.fused import lif_multistep
from snn2hw.nn.surrogate import SURROGATES, Surrogate

ROOT = Path(__file__).resolve().parents[2]
needs_triton = pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                                  reason="triton is not installed (scripts/setup_env.sh installs "
                                         "it; CUDA torch wheels bring it)")
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")

F32, F64 = torch.float32, torch.float64
# name: (shape [T, B, *neurons], dtype, reset, detach_reset, neuron parameters learnt).
# M = B·N is never a multiple of the kernels' 128-column block; "wide" spans two programs.
CASES: dict[str, tuple[tuple[int, ...], torch.dtype, str, bool, bool]] = {
    f"{reset}-{'detach' if det else 'attached'}-{str(dt)[6:]}": ((20, 3, 7), dt, reset, det, True)
    for reset in ("hard", "subtract") for det in (True, False) for dt in (F32, F64)
}
CASES |= {
    "input-only-hard-f32": ((20, 3, 7), F32, "hard", True, False),
    "input-only-subtract-f64": ((20, 3, 7), F64, "subtract", True, False),
    "wide-attached-hard-f32": ((6, 5, 37), F32, "hard", False, True),
    "conv-shaped-subtract-f64": ((9, 2, 3, 4, 5), F64, "subtract", False, True),
    "one-step-hard-f32": ((1, 3, 7), F32, "hard", False, True),
}
FAULTS = ("fwd-reset-flipped", "bwd-detach-flipped")


def _inputs(shape: tuple[int, ...], dtype: torch.dtype, seed: int):
    """Currents firing roughly 10-30 %, neuron parameters and a loss weight, seeded."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(shape, generator=g, dtype=F64) * 0.6 + 0.25).to(dtype)
    weight = torch.rand(shape, generator=g, dtype=F64).to(dtype)
    params = {"alpha": torch.tensor(0.3, dtype=dtype), "beta": torch.tensor(0.85, dtype=dtype),
              "vth": torch.tensor(1.0, dtype=dtype),
              "bias": (torch.randn(shape[2:], generator=g, dtype=F64) * 0.1).to(dtype)}
    return x, params, weight


def _run(fn, name: str, device: str, **kw) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Spikes and the gradients of ``(spikes * weight).sum()``, back on CPU."""
    shape, dtype, reset, detach, learn = CASES[name]
    x, params, weight = _inputs(shape, dtype, seed=len(name))
    x = x.to(device).requires_grad_()
    leaves = {k: v.to(device).requires_grad_(learn) for k, v in params.items()}
    spikes = fn(x, reset=reset, detach_reset=detach, **leaves, **kw)
    (spikes * weight.to(device)).sum().backward()
    grads = {"x": x.grad, **({k: v.grad for k, v in leaves.items()} if learn else {})}
    return spikes.detach().cpu(), {k: v.cpu() for k, v in grads.items()}


def _triton_results(device: str) -> dict[str, tuple]:
    return {name: _run(lif_multistep, name, device, backend="triton") for name in CASES}


def _assert_same(got: tuple, want: tuple, what: str) -> None:
    """Spikes equal; each gradient within 1e-5 (float32) / 1e-10 (float64) of the largest."""
    s_got, g_got = got
    s_want, g_want = want
    assert torch.equal(s_got, s_want), f"{what}: {int((s_got != s_want).sum())} spikes differ"
    assert g_got.keys() == g_want.keys(), f"{what}: gradients {sorted(g_got)} != {sorted(g_want)}"
    for k, ref in g_want.items():
        tol = 1e-5 if ref.dtype == F32 else 1e-10
        torch.testing.assert_close(g_got[k], ref, rtol=tol, atol=tol * float(ref.abs().max()),
                                   msg=lambda m, k=k: f"{what}: d/d{k}: {m}")


def _check_all(got: dict[str, tuple]) -> None:
    for name in CASES:
        _assert_same(got[name], _run(lif_multistep, name, "cpu", backend="numba"),
                     f"{name} vs numba")
        _assert_same(got[name], _run(lif_multistep_reference, name, "cpu"),
                     f"{name} vs reference")


class _FlipLaunch:
    """A kernel whose launches get one boolean constexpr inverted (fault injection)."""

    def __init__(self, kernel, flag: str) -> None:
        self.kernel, self.flag = kernel, flag

    def __getitem__(self, grid):
        launch = self.kernel[grid]
        return lambda *a, **kw: launch(*a, **{**kw, self.flag: not kw[self.flag]})


def _interpreted_main(out: str) -> None:
    """Subprocess entry (TRITON_INTERPRET=1): every case, correct and with each fault."""
    from snn2hw.nn import fused_triton

    results = {"ok": _triton_results("cpu")}
    for fault, attr, flag in zip(FAULTS, ("_lif_fwd_kernel", "_lif_bwd_kernel"),
                                 ("HARD", "DETACH"), strict=True):
        real = getattr(fused_triton, attr)
        setattr(fused_triton, attr, _FlipLaunch(real, flag))
        try:
            results[fault] = _triton_results("cpu")
        finally:
            setattr(fused_triton, attr, real)
    try:
        lif_multistep(torch.zeros(2, 1, 3, dtype=torch.float16), alpha=0.5, beta=0.5, vth=1.0,
                      backend="triton")
        results["float16"] = "accepted"
    except ConfigError as e:
        results["float16"] = str(e)
    torch.save(results, out)


@pytest.fixture(scope="module")
def interpreted(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("triton") / "results.pt"
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, __file__, str(out)], env=env, capture_output=True,
                       text=True, timeout=300)
    if r.returncode and "only 0-dimensional arrays can be converted" in r.stderr:
        # Triton < 3.9's interpreter turns loop bounds into ints with int(1-element array),
        # which NumPy >= 2.5 refuses (seen: Triton 3.6, NumPy 2.5 on a CUDA image).
        import numpy
        import triton

        pytest.skip(f"Triton {triton.__version__}'s interpreter cannot run with NumPy "
                    f"{numpy.__version__} (a loop bound taken with int() of an array)")
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(out)


@needs_triton
@pytest.mark.parametrize("name", list(CASES))
def test_interpreted_triton_kernels_equal_numba_and_reference(interpreted, name):
    _assert_same(interpreted["ok"][name], _run(lif_multistep, name, "cpu", backend="numba"),
                 f"{name} vs numba")
    _assert_same(interpreted["ok"][name], _run(lif_multistep_reference, name, "cpu"),
                 f"{name} vs reference")


@needs_triton
@pytest.mark.parametrize("fault", FAULTS)
def test_comparison_catches_a_kernel_launched_with_the_wrong_reset(interpreted, fault):
    """Fault injection: a flipped reset kind (forward) or detach flag (backward) fails the
    comparison in every case with more than one step (one step has no reset to get wrong)."""
    for name, (shape, *_) in CASES.items():
        if shape[0] == 1:
            continue
        with pytest.raises(AssertionError):
            _assert_same(interpreted[fault][name],
                         _run(lif_multistep, name, "cpu", backend="numba"), name)


@needs_triton
def test_triton_backend_refuses_half_precision_in_one_line(interpreted):
    msg = interpreted["float16"]
    assert "float32 and float64 only" in msg and "\n" not in msg


def test_auto_backend_is_triton_on_cuda_only_when_triton_is_installed(monkeypatch):
    assert fused.default_backend("cpu") == "numba"
    monkeypatch.setattr(fused.importlib.util, "find_spec", lambda name: object())
    assert fused.default_backend("cuda") == "triton"
    assert fused.default_backend("cuda:1") == "triton"
    assert fused.default_backend("cuda", torch.float64) == "triton"
    # half precision (autocast) is not a Triton kernel dtype: the compiled loop runs it
    assert fused.default_backend("cuda", torch.float16) == "compiled"
    assert fused.default_backend("cuda", torch.bfloat16) == "compiled"
    monkeypatch.setattr(fused.importlib.util, "find_spec", lambda name: None)
    assert fused.default_backend("cuda") == "torch"


def test_missing_triton_is_a_one_line_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "snn2hw.nn.fused_triton", None)  # import fails
    x = torch.zeros(2, 1, 3)
    with pytest.raises(MissingDependencyError, match="needs Triton"):
        lif_multistep(x, alpha=0.5, beta=0.5, vth=1.0, backend="triton")


def test_unknown_backend_is_refused():
    with pytest.raises(ConfigError, match="unknown LIF backend 'trition'"):
        lif_multistep(torch.zeros(2, 1, 3), alpha=0.5, beta=0.5, vth=1.0, backend="trition")


@needs_cuda
@needs_triton
def test_cuda_triton_kernels_equal_numba_on_cpu():
    _check_all(_triton_results("cuda"))


@needs_cuda
@needs_triton
@pytest.mark.parametrize("surrogate", sorted(SURROGATES))
def test_cuda_triton_gradients_equal_numba_for_every_surrogate(surrogate):
    """On CUDA the surrogate derivative is evaluated by torch.compile (same definition)."""
    out = {}
    for device, backend in (("cuda", "triton"), ("cpu", "numba")):
        out[backend] = _run(lif_multistep, "hard-attached-float32", device, backend=backend,
                            surrogate=Surrogate(surrogate))
    _assert_same(out["triton"], out["numba"], f"{surrogate}: cuda triton vs numba")


@needs_cuda
@needs_triton
def test_cuda_triton_equals_numba_on_a_training_sized_layer():
    """T = 100, B = 16, N = 512 (512 programs): spikes identical, gradients to rounding."""
    g = torch.Generator().manual_seed(1)
    x = torch.randn(100, 16, 512, generator=g) * 0.6 + 0.25
    w = torch.rand(100, 16, 512, generator=g)
    out = {}
    for device, backend in (("cuda", "triton"), ("cpu", "numba")):
        xi = x.to(device).requires_grad_()
        vth = torch.tensor(1.0, device=device, requires_grad=True)
        s = lif_multistep(xi, alpha=0.3, beta=0.85, vth=vth, backend=backend)
        (s * w.to(device)).sum().backward()
        out[backend] = (s.detach().cpu(), {"x": xi.grad.cpu(), "vth": vth.grad.cpu()})
    assert fused.default_backend("cuda") == "triton"
    _assert_same(out["triton"], out["numba"], "cuda triton vs numba")


if __name__ == "__main__":
    _interpreted_main(sys.argv[1])
