"""The dense event kernel's narrow sums (snn2hw.backends.event_kernels_dense.dense_columns): int16
and int32 paths exact against a numpy int64 reference, and the bounds that pick a path are
what keep it exact (forcing int32 on sums beyond 2^31, or int16 beyond 2^15, breaks the
result)."""

from __future__ import annotations

import numpy as np
import pytest

from snn2hw.backends import event_kernels as K
from snn2hw.backends import event_kernels_dense as dense_k
from snn2hw.backends import event_ops


def _case(seed: int, n_in: int = 300, n_out: int = 70, vmax: int = 1, lo: int = -256):
    rng = np.random.default_rng(seed)
    w = rng.integers(lo, 256, (n_out, n_in)).astype(np.int64)
    w[rng.random(w.shape) < 0.2] = 0  # zeros: the fan-in counts must skip them
    x = rng.integers(0, vmax + 1, (3, n_in)) * (rng.random((3, n_in)) < 0.3)
    wt, nnz_col = dense_k.dense_prepare(w, 8)  # W'^T, int16
    zptr, zidx, _ = dense_k.csr_rows(wt, False)
    return x.astype(np.int64), wt, nnz_col, zptr, zidx


def _wmax(wt):
    return int(np.abs(wt.astype(np.int64)).max())


def _run(x, wt, nnz_col, zptr, zidx, rowbound, weight_exp, xbin=False, wmax=None,
         count_rows=False):
    acc = np.zeros((x.shape[0], wt.shape[1]), np.int64)
    cnt = np.zeros_like(acc)
    acc32 = np.zeros(wt.shape[1], np.int32)
    acc16 = np.zeros(wt.shape[1], np.int16)
    # fan-in counts as sums of W' != 0 (count_rows), or one decrement per zero weight hit
    cnt16 = np.zeros(wt.shape[1] if count_rows else 0, np.int16)
    # wmax: the real max|W'| unless a test passes a (false) one
    wmax = _wmax(wt) if wmax is None else wmax
    syn = np.zeros((1, 2), np.int64)  # every row one step
    dense_k.dense_columns(x, wt, nnz_col, zptr, zidx, rowbound, wmax, weight_exp, True, acc,
                          cnt, acc32, acc16, cnt16, xbin, syn)
    return acc, cnt, int(syn[0, 0]), int(syn[0, 1]) // wt.shape[1]  # synops, events


def _reference(x, wt, weight_exp):
    s = x @ wt.astype(np.int64)  # [B, N_out], exact int64
    a = s << weight_exp if weight_exp >= 0 else s >> -weight_exp
    return a, (x != 0).astype(np.int64) @ (wt != 0).astype(np.int64)


def test_int32_and_int64_paths_equal_the_int64_reference():
    for seed, vmax, e in [(0, 1, 0), (1, 1, -3), (2, 255, 2), (3, 7, -1)]:
        x, wt, nnz_col, zptr, zidx = _case(seed, vmax=vmax)
        bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
        ref_a, ref_c = _reference(x, wt, e)
        # the real bounds; int16 ruled out (int32 or int64 by the row bound); forced int64
        for rowbound, wmax in ((bound, None), (bound, 1 << 20), (1 << 40, 1 << 40)):
            for rows in (False, True):
                acc, cnt, syn, n_ev = _run(x, wt, nnz_col, zptr, zidx, rowbound, e,
                                           wmax=wmax, count_rows=rows)
                assert np.array_equal(acc, ref_a), (seed, rowbound, wmax, rows)
                assert np.array_equal(cnt, ref_c), (seed, rowbound, wmax, rows)
                assert syn == int(ref_c.sum()) and n_ev == int((x != 0).sum())


def test_the_bound_switches_to_int64_before_int32_sums_overflow():
    x, wt, nnz_col, zptr, zidx = _case(4, n_in=3000, vmax=2**16 - 1, lo=0)  # no cancelling
    x[:] = 2**16 - 1  # every input a large payload: sums far beyond 2^31
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, _ = _reference(x, wt, 0)
    assert np.abs(ref_a).max() >= 2**31
    acc, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0)
    assert np.array_equal(acc, ref_a)
    # fault injection: a bound that lies (0) keeps int32 and the sums wrap
    bad, *_ = _run(x, wt, nnz_col, zptr, zidx, 0, 0, wmax=1 << 40)
    assert not np.array_equal(bad, ref_a)


def test_binary_input_flag_skips_the_scan_and_stays_exact_on_binary_input():
    x, wt, nnz_col, zptr, zidx = _case(5, vmax=1)
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, ref_c = _reference(x, wt, -2)
    for rows in (False, True):  # both ways of counting the fan-in
        acc, cnt, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, -2, xbin=True,
                            count_rows=rows)
        assert np.array_equal(acc, ref_a) and np.array_equal(cnt, ref_c), rows


def test_binary_input_flag_on_graded_input_would_overflow_int32():
    x, wt, nnz_col, zptr, zidx = _case(4, n_in=3000, vmax=2**16 - 1, lo=0)
    x[:] = 2**16 - 1
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, _ = _reference(x, wt, 0)
    good, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0, xbin=False)
    assert np.array_equal(good, ref_a)
    bad, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0, xbin=True)  # the fault
    assert not np.array_equal(bad, ref_a)


def test_int16_path_is_exact_on_sparse_events_and_its_bound_guards_it():
    # few events per sample: sum|x| * max|W'| < 2^15, so the sums run in int16
    x, wt, nnz_col, zptr, zidx = _case(6, n_in=400, vmax=3)
    x[:, 20:] = 0  # graded events on the first 20 inputs only: at most 20 * 3 * 256
    assert int(np.abs(x).sum(axis=1).max()) * _wmax(wt) < 2**15
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, ref_c = _reference(x, wt, -1)
    acc, cnt, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, -1)
    assert np.array_equal(acc, ref_a) and np.array_equal(cnt, ref_c)
    # binary events: added four rows at a time (plus the remainder one by one)
    xb = (x != 0).astype(np.uint8)
    assert all(int(n) % 4 != 0 for n in (xb != 0).sum(axis=1))  # a remainder in each
    ref_a, ref_c = _reference(xb.astype(np.int64), wt, -1)
    for rows in (False, True):  # both ways of counting the fan-in
        acc, cnt, *_ = _run(xb, wt, nnz_col, zptr, zidx, bound, -1, xbin=True,
                            count_rows=rows)
        assert np.array_equal(acc, ref_a) and np.array_equal(cnt, ref_c), rows


def test_int16_bound_switches_to_wider_sums_before_int16_overflows():
    x, wt, nnz_col, zptr, zidx = _case(7, n_in=400, vmax=1, lo=0)  # no cancelling
    x[:] = 1  # 400 events of weights up to 255: sums far beyond 2^15
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, _ = _reference(x, wt, 0)
    assert np.abs(ref_a).max() >= 2**15
    acc, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0, xbin=True)
    assert np.array_equal(acc, ref_a)
    # fault injection: a max|W'| that lies (0) picks int16 and the sums wrap
    bad, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0, xbin=True, wmax=0)
    assert not np.array_equal(bad, ref_a)


@pytest.mark.parametrize("dtype, n", [(np.uint8, 64), (np.uint8, 61), (np.int64, 64),
                                      (np.uint16, 40), (np.uint8, 2312), (np.int64, 1029),
                                      (np.int32, 200), (np.int8, 4096)])
def test_nonzero_positions_lists_every_event_in_order(dtype, n):
    # blocks of 64 (a vector compare, then one position per set bit) and the tail
    rng = np.random.default_rng(n)
    x = ((rng.random(n) < 0.1) * rng.integers(1, 100, n)).astype(dtype)
    if n >= 64:
        x[:64] = 0
        x[63] = 1  # the last entry of a block, then a whole block of events
    if n >= 192:
        x[64:128] = 1
        x[128] = -1 if np.dtype(dtype).kind == "i" else 255  # the sign bit alone
    x[-1] = 3  # an event in the tail
    idx = np.empty(n, np.int32)
    k = K.nonzero_positions(x, idx)
    np.testing.assert_array_equal(idx[:k], np.flatnonzero(x))


def test_nonzero_positions_of_a_strided_row():
    # a column of a 2-D array: not unit stride, so no block reads past each entry
    x = np.zeros((130, 3), np.uint8)
    x[[0, 64, 100, 129], 1] = 1
    x[:, 0] = 1
    x[:, 2] = 1
    idx = np.empty(130, np.int32)
    k = K.nonzero_positions(x[:, 1], idx)
    np.testing.assert_array_equal(idx[:k], [0, 64, 100, 129])


def test_int8_rows_keep_the_scale_of_the_prepared_weights():
    # Loihi 8-bit mixed-sign weights are multiples of 2: the event simulator stores
    # W' >> 1 as int8 rows and shifts the sums by weight_exp + 1 (exactly the W' @ x sums)
    from snn2hw.backends import event
    from snn2hw.quant.formats import LOIHI_FORMATS
    from snn2hw.quant.qgraph import DenseNode

    rng = np.random.default_rng(8)
    w = rng.integers(-256, 256, (40, 90))
    node = DenseNode("fc", w, weight_exp=-3)
    op = event_ops.DenseOp(node, LOIHI_FORMATS)
    assert op.wt.dtype == np.int8 and op.row_exp == 1
    op.alloc(4)
    x = (rng.random((4, 90)) < 0.3).astype(np.uint8)
    op.apply(x, True, np.zeros((1, 2), np.int64), 0)
    w_eff = event.dense_effective_weight(w, 8)
    ref = (x.astype(np.int64) @ w_eff.T) >> 3
    np.testing.assert_array_equal(op.out, ref)
    op.row_exp = 0  # fault: the int8 rows without their scale
    op.apply(x, True, np.zeros((1, 2), np.int64), 1)
    assert not np.array_equal(op.out, ref)
