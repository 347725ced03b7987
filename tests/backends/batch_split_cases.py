"""Shared by the batch-split tests of the event simulator and torch-int (imported as a
plain module: pytest puts this folder on sys.path): inputs for
``delay_multispike_cases.random_dense_graph`` and the comparison of two runs."""

from __future__ import annotations

import numpy as np


def inputs(batch: int, seed: int = 3) -> np.ndarray:
    """``[10, batch, 6]`` graded frames (values 0-3), about half of them zero."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 4, size=(10, batch, 6))
    x[rng.random(x.shape) < 0.5] = 0
    return x


def assert_same_run(a, b) -> None:
    """Spikes equal, u and v too when the runs recorded them (``record_state``), activity
    counters too when the runs have them."""
    assert (a.u is None) == (b.u is None)
    for k in a.spikes:
        np.testing.assert_array_equal(a.spikes[k], b.spikes[k], err_msg=f"spikes {k}")
        if a.u is not None:
            np.testing.assert_array_equal(a.u[k], b.u[k], err_msg=f"u {k}")
            np.testing.assert_array_equal(a.v[k], b.v[k], err_msg=f"v {k}")
    ca, cb = a.counters, b.counters
    if ca is None and cb is None:
        return
    for field in ("synops", "synops_dense", "neuron_updates", "spike_counts"):
        for k, arr in getattr(ca, field).items():
            np.testing.assert_array_equal(arr, getattr(cb, field)[k], err_msg=f"{field} {k}")
    assert ca.peak_fanin == cb.peak_fanin
