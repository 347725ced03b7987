"""A review of the event simulator's steps in chunks (event.py "Steps in chunks"): random
graphs of every operator kind and path shape, run at random chunk sizes, chunk byte
budgets, thread counts and input dtypes, must give exactly the results of one step per
kernel call (spikes, ``u``/``v`` where recorded, every activity counter), of torch-int
(spikes, ``u``, ``v``) and of test_event's numpy reference (spikes and counters, where it
applies); and a chunked run must not hold much more memory than one step per call.

Random graphs (:func:`random_graph`): an input (1-D or (C, H, W), binary or graded, in
one of several integer dtypes, big-endian included), then one to four LIFs, each fed by a
path from the input or an earlier LIF (skip connections): conv (stride, padding, groups,
dilation; fused with its LIF where it alone feeds it), sum pooling, pool -> conv,
conv -> pool, conv -> flatten into a 1-D LIF, flatten -> dense, dense (column and CSR
layouts by density), identity or flatten-only paths, or an operator that already feeds
another LIF; plus up to two more paths into the same LIF (dense, identity, a
same-geometry conv). Multi-spike LIFs (payloads up to 300: uint16 records) in the
"multi" family; recurrence, uniform and per-synapse delays and periodic resets mixed
with chunkable parts in the "stepwise" family.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from delay_multispike_cases import FMT
from test_event import graph, lif, ref_run

from snn2hw.backends import event, event_plan, torch_int
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

COUNTERS = ("synops", "synops_dense", "neuron_updates", "spike_counts", "peak_fanin")


# ------------------------------------------------------------- memory of a chunked run

def _fused_conv_net(c_out: int = 8, side: int = 16) -> QGraph:
    """in -> conv -> LIF (fused) -> flatten -> dense -> LIF: the only unfused operator is
    a small dense, so the chunk is as long as CHUNK_MAX allows."""
    rng = np.random.default_rng(8)
    conv = ConvNode("c", rng.integers(-100, 100, (c_out, 2, 3, 3)), (2, side, side),
                    padding=(1, 1))
    shape = conv.out_shape
    n = int(np.prod(shape))
    return graph([InputNode("in", (2, side, side)), conv, lif("l1", shape, vth=100),
                  FlattenNode("f", shape), DenseNode("d", rng.integers(-100, 100, (4, n))),
                  lif("l2", (4,), vth=50)],
                 [("in", "c"), ("c", "l1"), ("l1", "f"), ("f", "d"), ("d", "l2")],
                 num_steps=40)


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_a_chunked_run_holds_no_chunk_of_rows_for_a_fused_conv(monkeypatch):
    """A fused conv's output rows are its kernel's scratch, read back within the same
    sample's LIF step: a chunked run needs one step's rows of them, like one step per call
    (Plan.chunk_steps does not count them). Holding a whole chunk of them cost 2 x 32 x B
    int64 rows per fused conv (430 MiB instead of 63 MiB, and 20 % slower, for a 32-channel
    34 x 34 CNN at batch 16)."""
    g = _fused_conv_net()
    plan = event.PLANS.get(g)
    assert plan.fused == {"l1": "c"} and plan.chunk_steps(4, 42) == 32
    x = (np.random.default_rng(1).random((40, 4, 2, 16, 16)) < 0.2).astype(np.uint8)
    event.run(g, x[:2], threads=1)  # compiled, plan cached
    monkeypatch.setattr(event_plan, "CHUNK_MAX", 1)
    one = event.run(g, x, threads=1)
    step_peak = _traced_peak(lambda: event.run(g, x, threads=1))
    monkeypatch.setattr(event_plan, "CHUNK_MAX", 32)
    chunked = event.run(g, x, threads=1)
    chunk_peak = _traced_peak(lambda: event.run(g, x, threads=1))
    for name in ("l1", "l2"):
        np.testing.assert_array_equal(chunked.spikes[name], one.spikes[name])
    assert int(one.spike_counts["l1"].sum()) > 0
    # one fused conv's chunk of int64 rows (sums and counts) would be 2 x 32 x 4 x 2048 x 8
    # bytes = 4 MiB; what chunking may add is the unfused operators' rows (CHUNK_BYTES
    # each) and the chunk's input rows
    assert chunk_peak - step_peak < event_plan.CHUNK_BYTES, (chunk_peak, step_peak)
    event.PLANS.clear()
