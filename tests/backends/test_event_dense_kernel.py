"""The dense event kernel's int32 fast path (snn2hw.backends.event_kernels.dense_columns):
exact against a numpy int64 reference in both paths, and the bound that picks the path is
what keeps it exact (forcing int32 on sums beyond 2^31 breaks the result)."""

from __future__ import annotations

import numpy as np

from snn2hw.backends import event_kernels as K


def _case(seed: int, n_in: int = 300, n_out: int = 70, vmax: int = 1, lo: int = -256):
    rng = np.random.default_rng(seed)
    w = rng.integers(lo, 256, (n_out, n_in)).astype(np.int64)
    w[rng.random(w.shape) < 0.2] = 0  # zeros: the fan-in counts must skip them
    x = rng.integers(0, vmax + 1, (3, n_in)) * (rng.random((3, n_in)) < 0.3)
    wt, nnz_col = K.dense_prepare(w, 8)  # W'^T, int16
    zptr, zidx, _ = K.csr_rows(wt, False)
    return x.astype(np.int64), wt, nnz_col, zptr, zidx


def _run(x, wt, nnz_col, zptr, zidx, rowbound, weight_exp, xbin=False):
    acc = np.zeros((x.shape[0], wt.shape[1]), np.int64)
    cnt = np.zeros_like(acc)
    acc32 = np.zeros(wt.shape[1], np.int32)
    syn, n_ev = K.dense_columns(x, wt, nnz_col, zptr, zidx, rowbound, weight_exp, True, acc,
                                cnt, acc32, xbin)
    return acc, cnt, syn, n_ev


def _reference(x, wt, weight_exp):
    s = x @ wt.astype(np.int64)  # [B, N_out], exact int64
    a = s << weight_exp if weight_exp >= 0 else s >> -weight_exp
    return a, (x != 0).astype(np.int64) @ (wt != 0).astype(np.int64)


def test_int32_and_int64_paths_equal_the_int64_reference():
    for seed, vmax, e in [(0, 1, 0), (1, 1, -3), (2, 255, 2), (3, 7, -1)]:
        x, wt, nnz_col, zptr, zidx = _case(seed, vmax=vmax)
        bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
        ref_a, ref_c = _reference(x, wt, e)
        for rowbound in (bound, 1 << 40):  # the real bound (int32 here) / forced int64
            acc, cnt, syn, n_ev = _run(x, wt, nnz_col, zptr, zidx, rowbound, e)
            assert np.array_equal(acc, ref_a), (seed, rowbound)
            assert np.array_equal(cnt, ref_c), (seed, rowbound)
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
    bad, *_ = _run(x, wt, nnz_col, zptr, zidx, 0, 0)
    assert not np.array_equal(bad, ref_a)


def test_binary_input_flag_skips_the_scan_and_stays_exact_on_binary_input():
    x, wt, nnz_col, zptr, zidx = _case(5, vmax=1)
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, ref_c = _reference(x, wt, -2)
    acc, cnt, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, -2, xbin=True)
    assert np.array_equal(acc, ref_a) and np.array_equal(cnt, ref_c)


def test_binary_input_flag_on_graded_input_would_overflow_int32():
    x, wt, nnz_col, zptr, zidx = _case(4, n_in=3000, vmax=2**16 - 1, lo=0)
    x[:] = 2**16 - 1
    bound = int(np.abs(wt.astype(np.int64)).sum(axis=0).max())
    ref_a, _ = _reference(x, wt, 0)
    good, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0, xbin=False)
    assert np.array_equal(good, ref_a)
    bad, *_ = _run(x, wt, nnz_col, zptr, zidx, bound, 0, xbin=True)  # the fault
    assert not np.array_equal(bad, ref_a)
