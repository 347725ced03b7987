"""The event simulator splits a batch across threads (``event.run(threads=N)``); the
result must not depend on how the batch was split."""

from __future__ import annotations

import numpy as np
import pytest
from batch_split_cases import assert_same_run, inputs
from delay_multispike_cases import random_dense_graph
from periodic_reset_cases import with_reset

from snn2hw.backends import event


@pytest.mark.parametrize("threads", [2, 3, 7])
def test_batch_split_across_threads_gives_the_single_thread_result(threads):
    g = with_reset(random_dense_graph(5, "subtract", ">="), H=(4, 1))
    x = inputs(batch=7)
    one = event.run(g, x, 14, record_state=True, threads=1)
    many = event.run(g, x, 14, record_state=True, threads=threads)
    assert_same_run(one, many)
    # each sample alone gives its slice of the batched result (no cross-sample leakage)
    solo = event.run(g, x[:, 4:5], 14, record_state=True, threads=1)
    for k in solo.spikes:
        np.testing.assert_array_equal(solo.spikes[k][:, 0], many.spikes[k][:, 4])


def test_threads_comparison_catches_a_part_written_to_the_wrong_samples(monkeypatch):
    g = random_dense_graph(5, "zero", ">")
    x = inputs(batch=4)
    one = event.run(g, x, 12, record_state=True, threads=1)
    real = event._simulate

    def shifted(plan, graph, arr, n_steps, out, b0, b1):  # the fault: parts land one off
        return real(plan, graph, arr, n_steps, out, (b0 + 1) % 4, (b0 + 1) % 4 + (b1 - b0))

    monkeypatch.setattr(event, "_simulate", shifted)
    with pytest.raises(AssertionError):
        assert_same_run(one, event.run(g, x, 12, record_state=True, threads=4))


@pytest.mark.parametrize("record", [False, True], ids=["chunks", "step by step"])
def test_a_part_larger_than_part_batch_runs_in_sub_batches_with_the_same_result(
        monkeypatch, record):
    """A thread's part of more than ``2 * event.PART_BATCH`` samples runs in sub-batches of
    at most ``PART_BATCH`` (two parts of 50 CNN samples competed for the caches); a fused
    conv + LIF, pooling and dense net in chunks and step by step gives the single-thread
    run, every sample simulated once from its own input."""
    from test_event import random_conv_pool_net

    g, x = random_conv_pool_net(0)
    rng = np.random.default_rng(8)  # 11 distinct samples (binary input): parts of 6 and 5
    x = (rng.random((x.shape[0], 11, *x.shape[2:])) < 0.3).astype(np.uint8)
    n = g.num_steps + g.depth()
    one = event.run(g, x, n, record_state=record, threads=1)
    monkeypatch.setattr(event, "PART_BATCH", 2)  # sub-batches of 2, 2, 2 and 2, 2, 1
    calls = []
    real = event._simulate

    def counted(plan, graph, arr, n_steps, out, b0, b1):
        calls.append((b0, b1))
        return real(plan, graph, arr, n_steps, out, b0, b1)

    monkeypatch.setattr(event, "_simulate", counted)
    many = event.run(g, x, n, record_state=record, threads=2)
    assert sorted(calls) == [(0, 2), (2, 4), (4, 6), (6, 8), (8, 10), (10, 11)]
    assert_same_run(one, many)


def test_threads_below_one_are_refused():
    g = random_dense_graph(5, "zero", ">")
    with pytest.raises(event.GraphError, match="threads must be >= 1"):
        event.run(g, inputs(batch=2), 4, threads=0)


def test_default_thread_count_is_the_process_setting_also_from_another_thread(monkeypatch):
    # numba's own count is per thread (a new thread sees NUMBA_NUM_THREADS, not what
    # --threads set); the process-wide setting is what configure_threads chose
    import threading

    import torch

    from snn2hw.common.threads import configure_threads

    g = random_dense_graph(5, "zero", ">")
    parts = []
    real = event._simulate
    monkeypatch.setattr(event, "_simulate",
                        lambda *a: parts.append(a[-2:]) or real(*a))
    before = torch.get_num_threads()
    try:
        configure_threads(1)
        event.run(g, inputs(batch=4), 6)
        assert parts == [(0, 4)]
        parts.clear()
        configure_threads(2)
        worker = threading.Thread(target=lambda: event.run(g, inputs(batch=4), 6))
        worker.start()
        worker.join()
        assert sorted(parts) == [(0, 2), (2, 4)]
    finally:
        configure_threads(before)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int32, np.int64, np.uint64])
def test_frames_of_any_integer_dtype_give_the_same_run(dtype):
    # synapses read the frames in their own dtype (no int64 copy): values must widen exactly
    g = random_dense_graph(7, "subtract", ">=")
    x = inputs(batch=3)
    ref = event.run(g, x.astype(np.int64), 12, record_state=True, threads=1)
    assert_same_run(ref, event.run(g, x.astype(dtype), 12, record_state=True, threads=1))


def test_binary_bool_frames_equal_their_uint8_values():
    g = random_dense_graph(7, "zero", ">")
    g.nodes["x"].message_bits = 0
    x = inputs(batch=3) > 0
    assert_same_run(event.run(g, x.astype(np.uint8), 12, record_state=True, threads=1),
          event.run(g, x, 12, record_state=True, threads=1))


@pytest.mark.parametrize("threads", [1, 2])
def test_a_run_frees_its_spike_record_without_waiting_for_the_cyclic_gc(threads):
    # A long evaluation calls run() in chunks; a reference cycle holding views of the
    # spike record kept every chunk's record alive until a GC pass (5 GB for 10,000
    # N-MNIST-sized samples instead of 1 GB).
    import gc
    import weakref

    g = random_dense_graph(5, "zero", ">")
    gc.collect()
    gc.disable()
    try:
        r = event.run(g, inputs(batch=4), 12, threads=threads)
        root = r.spikes["H"]
        while root.base is not None:
            root = root.base
        alive = weakref.ref(root)
        del r, root
        assert alive() is None
    finally:
        gc.enable()


def test_an_empty_batch_runs_to_empty_results():
    g = random_dense_graph(5, "zero", ">")
    r = event.run(g, inputs(batch=0), 6, record_state=True)
    assert all(a.shape[:2] == (6, 0) for a in r.spikes.values())
    assert all(int(c.sum()) == 0 for c in r.counters.synops.values())
