"""The sparse-input Linear (snn2hw.nn.sparse) computes the dense layer's math: outputs and
all gradients agree with F.linear to float rounding, on sparse spikes and on dense inputs,
and SeqLinear picks it only where the input is sparse."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn2hw.nn import sparse
from snn2hw.nn.layers import SeqLinear
from snn2hw.nn.model import SpikingNet
from snn2hw.nn.sparse import SparseInput, sparse_linear


def _inputs(kind: str, dtype: torch.dtype, shape=(6, 5, 40), seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "spikes":  # binary, ~8 % active
        return (torch.rand(shape, generator=g) < 0.08).to(dtype)
    if kind == "sparse_analog":  # graded values at ~10 % of the entries
        return torch.randn(shape, generator=g).to(dtype) * (torch.rand(shape, generator=g) < 0.1)
    return torch.randn(shape, generator=g).to(dtype)  # dense


def _both(x: torch.Tensor, out: int, bias: bool, seed: int = 1):
    """Output and gradients (x, W, b) of the sparse and the dense product, same loss."""
    g = torch.Generator().manual_seed(seed)
    w = torch.randn(out, x.shape[-1], generator=g, dtype=x.dtype)
    b = torch.randn(out, generator=g, dtype=x.dtype) if bias else None
    gy = torch.randn(*x.shape[:-1], out, generator=g, dtype=x.dtype)
    res = []
    for fn in (sparse_linear, F.linear):
        xi = x.clone().requires_grad_()
        wi = w.clone().requires_grad_()
        bi = b.clone().requires_grad_() if bias else None
        y = fn(xi, wi, bi)
        y.backward(gy)
        res.append((y.detach(), xi.grad, wi.grad, bi.grad if bias else None))
    return res


def _max_rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-30))


TOL = {torch.float32: 1e-5, torch.float64: 1e-12}


@pytest.mark.parametrize("kind", ["spikes", "sparse_analog", "dense"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("bias", [True, False])
def test_sparse_linear_matches_dense_outputs_and_gradients(kind, dtype, bias):
    x = _inputs(kind, dtype)
    (ys, gxs, gws, gbs), (yd, gxd, gwd, gbd) = _both(x, out=48, bias=bias)
    tol = TOL[dtype]
    assert ys.shape == yd.shape and gws.shape == gwd.shape and gxs.shape == gxd.shape
    for a, b in ((ys, yd), (gxs, gxd), (gws, gwd)):
        assert _max_rel_err(a, b) < tol
    if bias:
        assert _max_rel_err(gbs, gbd) < tol
    else:
        assert gbs is None and gbd is None


def test_sparse_linear_handles_all_zero_rows_and_an_all_zero_input():
    x = _inputs("spikes", torch.float32)
    x[:, 2] = 0.0  # a silent sample: rows without any nonzero
    (ys, _, gws, _), (yd, _, gwd, _) = _both(x, out=40, bias=True)
    assert _max_rel_err(ys, yd) < 1e-5 and _max_rel_err(gws, gwd) < 1e-5
    zero = torch.zeros(3, 2, 16)
    (ys, gxs, gws, _), (yd, gxd, gwd, _) = _both(zero, out=40, bias=True)
    assert torch.equal(gws, torch.zeros_like(gws)) and torch.equal(ys, yd)
    assert _max_rel_err(gxs, gxd) < 1e-5


def test_compressed_input_lists_every_nonzero_once_by_row_and_by_column():
    x = _inputs("sparse_analog", torch.float64, shape=(7, 30))
    sp = SparseInput(x)
    nz = x.nonzero()
    assert sp.nnz == len(nz)
    # CSR: row-major order of the nonzeros
    assert np.array_equal(sp.cols, nz[:, 1].numpy())
    assert np.array_equal(sp.rvals, x[nz[:, 0], nz[:, 1]].numpy())
    # CSC: column-major order
    nzt = x.t().nonzero()
    assert np.array_equal(sp.rows, nzt[:, 1].numpy())
    assert np.array_equal(sp.cvals, x[nzt[:, 1], nzt[:, 0]].numpy())
    assert np.array_equal(np.diff(sp.col_ptr), (x != 0).sum(0).numpy())


def test_if_sparse_compresses_only_at_or_below_the_density_limit():
    x = torch.zeros(10, 10)
    x.view(-1)[:20] = 1.0  # density 0.2
    assert SparseInput.if_sparse(x, max_density=0.2) is not None
    assert SparseInput.if_sparse(x, max_density=0.19) is None


def test_seqlinear_takes_the_sparse_path_only_for_sparse_input_and_agrees_with_dense():
    torch.manual_seed(0)
    lin = SeqLinear(64, 48)
    for kind, expect_sparse in (("spikes", True), ("dense", False)):
        x = _inputs(kind, torch.float32, shape=(4, 3, 64))
        y = lin(x.clone().requires_grad_())
        assert ("SparseInputLinear" in type(y.grad_fn).__name__) is expect_sparse
        lin.sparse_inputs = False
        y_dense = lin(x)
        lin.sparse_inputs = True
        assert "SparseInputLinear" not in type(y_dense.grad_fn).__name__
        assert _max_rel_err(y.detach(), y_dense.detach()) < 1e-5


def test_seqlinear_keeps_narrow_layers_dense():
    lin = SeqLinear(64, sparse.SPARSE_MIN_OUT - 1)
    y = lin(_inputs("spikes", torch.float32, shape=(4, 3, 64)).requires_grad_())
    assert "SparseInputLinear" not in type(y.grad_fn).__name__


def _train_step_grads(sparse_inputs: bool) -> tuple[float, dict[str, torch.Tensor]]:
    torch.manual_seed(0)
    arch = {"input_shape": [50],
            "neuron": {"kind": "lif", "beta": 0.9, "threshold": 0.5},
            "layers": [{"type": "linear", "out": 64}, {"type": "neuron"},
                       {"type": "linear", "out": 40}, {"type": "neuron"}]}
    net = SpikingNet(arch)
    for m in net.modules():
        if isinstance(m, SeqLinear):
            m.sparse_inputs = sparse_inputs
    x = _inputs("spikes", torch.float32, shape=(10, 4, 50), seed=3) * 4.0
    out = net(x)
    loss = F.cross_entropy(out.sum(0), torch.tensor([0, 1, 2, 3]))
    loss.backward()
    return float(loss), {n: p.grad.clone() for n, p in net.named_parameters()
                         if p.grad is not None}


def test_spiking_net_gradients_match_with_and_without_sparse_inputs():
    loss_s, g_s = _train_step_grads(True)
    loss_d, g_d = _train_step_grads(False)
    assert loss_s == pytest.approx(loss_d, rel=1e-6)
    assert g_s.keys() == g_d.keys() and len(g_s) >= 4
    for name in g_s:
        assert _max_rel_err(g_s[name], g_d[name]) < 1e-4, name
    assert any(float(g.abs().sum()) > 0 for g in g_s.values())


def test_comparison_catches_a_kernel_that_drops_a_nonzero(monkeypatch):
    """Fault injection: a weight-gradient kernel that skips each column's last nonzero is
    caught by the same comparison the tests above pass."""
    real = sparse._weight_grad_cols

    def dropping(col_ptr, rows, vals, gy, gw):
        lens = np.diff(col_ptr)
        keep = np.ones(len(rows), dtype=bool)
        keep[(col_ptr[1:] - 1)[lens > 0]] = False
        starts = np.concatenate([[0], np.cumsum(np.maximum(lens - 1, 0))])
        real(starts.astype(np.int64), rows[keep], vals[keep], gy, gw)

    monkeypatch.setattr(sparse, "_weight_grad_cols", dropping)
    (_, _, gws, _), (_, _, gwd, _) = _both(_inputs("spikes", torch.float32), 48, True)
    assert _max_rel_err(gws, gwd) > TOL[torch.float32]


def test_sparse_linear_rejects_mismatched_inputs_with_one_line():
    w = torch.randn(40, 16)
    with pytest.raises(ValueError, match="expects 16"):
        sparse_linear(torch.zeros(2, 3, 15), w)
    with pytest.raises(ValueError, match="float64"):
        sparse_linear(torch.zeros(2, 3, 16, dtype=torch.float64), w)
    with pytest.raises(ValueError, match="compressed input has shape"):
        sparse_linear(torch.zeros(2, 3, 16), w, compressed=SparseInput(torch.zeros(3, 2, 16)))
