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
same-geometry conv). Multi-spike LIFs (payloads up to 200) in the
"multi" family; recurrence (self loops and feedback into an earlier LIF), uniform and
per-synapse delays and periodic resets mixed with chunkable parts in the "stepwise"
family. 280 graphs, three chunked runs each; plus 50 random fused conv -> LIF graphs
(random formats) in every conv sum mode and both state widths.
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from delay_multispike_cases import FMT
from test_event import graph, lif, ref_run

from snn2hw.backends import event, event_ops, event_plan, torch_int
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


def _wide_record_net() -> QGraph:
    """in -> conv -> LIF (fused; 16 x 24 x 24 neurons) -> conv -> LIF (fused) -> flatten ->
    dense -> LIF: the second conv reads a wide spike record, a chunk of it at each call."""
    rng = np.random.default_rng(9)
    c1 = ConvNode("c1", rng.integers(-100, 100, (16, 2, 3, 3)), (2, 24, 24), padding=(1, 1))
    c2 = ConvNode("c2", rng.integers(-30, 30, (2, 16, 3, 3)), c1.out_shape, stride=(2, 2))
    n2 = int(np.prod(c2.out_shape))
    return graph([InputNode("in", (2, 24, 24)), c1, lif("l1", c1.out_shape, vth=100), c2,
                  lif("l2", c2.out_shape, vth=100), FlattenNode("f", c2.out_shape),
                  DenseNode("d", rng.integers(-100, 100, (4, n2))), lif("l3", (4,), vth=50)],
                 [("in", "c1"), ("c1", "l1"), ("l1", "c2"), ("c2", "l2"), ("l2", "f"),
                  ("f", "d"), ("d", "l3")], num_steps=40)


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("net", ["fused conv", "wide record"])
def test_a_chunked_run_holds_no_chunk_of_rows_for_a_fused_conv(net, monkeypatch):
    """A fused conv's output rows are its kernel's scratch, read back within the same
    sample's LIF step: a chunked run needs one step's rows of them, like one step per call
    (Plan.chunk_steps does not count them). Holding a whole chunk of them cost 2 x 32 x B
    int64 rows per fused conv (430 MiB instead of 63 MiB, and 20 % slower, for a 32-channel
    34 x 34 CNN at batch 16). And the first chunk, which reads zeros before step 0, must
    not copy a chunk of a wide spike record ("wide record": a chunk of l1's 9216 neurons
    at batch 4 is 1.2 MB; 73 MiB for the CNN above at batch 64)."""
    g = _fused_conv_net() if net == "fused conv" else _wide_record_net()
    plan = event.PLANS.get(g)
    assert plan.fused and plan.chunk_steps(4, 42) == 32
    side = g.input_node.shape[1]
    x = (np.random.default_rng(1).random((40, 4, 2, side, side)) < 0.2).astype(np.uint8)
    event.run(g, x[:2], threads=1)  # compiled, plan cached
    monkeypatch.setattr(event_plan, "CHUNK_MAX", 1)
    one = event.run(g, x, threads=1)
    step_peak = _traced_peak(lambda: event.run(g, x, threads=1))
    monkeypatch.setattr(event_plan, "CHUNK_MAX", 32)
    chunked = event.run(g, x, threads=1)
    chunk_peak = _traced_peak(lambda: event.run(g, x, threads=1))
    for L in g.lif_nodes:
        np.testing.assert_array_equal(chunked.spikes[L.name], one.spikes[L.name])
    assert int(one.spike_counts["l1"].sum()) > 0
    # one fused conv's chunk of int64 rows (sums and counts) would be 2 x 32 x 4 x 2048 x 8
    # bytes = 4 MiB; what chunking may add is the unfused operators' rows (CHUNK_BYTES
    # each) and the chunk's input rows
    assert chunk_peak - step_peak < event_plan.CHUNK_BYTES, (chunk_peak, step_peak)
    event.PLANS.clear()


# ------------------------------------------------------------------- random graphs

def _rand_lif(rng: np.random.Generator, name: str, shape: tuple[int, ...],
              max_spikes: int = 1, reset_interval: int = 0) -> LIFNode:
    shape = tuple(int(s) for s in shape)
    off = int(rng.integers(0, reset_interval)) if reset_interval else 0
    du, dv = int(rng.choice([-1, 0, 300, 4095])), int(rng.choice([0, 200, 4095]))
    if rng.random() < 0.4:  # no decay products: int32 state where fused
        du, dv = 4095, 0
    return LIFNode(name, shape, du=du, dv=dv,
                   vth=int(rng.integers(1 if max_spikes > 1 else 0, 40)),
                   bias_mant=rng.integers(-20, 20, shape), bias_exp=rng.integers(0, 3, shape),
                   max_spikes=max_spikes, reset_interval=reset_interval, reset_offset=off)


class _Builder:
    """Nodes (in topological order) and edges of one random graph; ``stepwise``: delays
    may be drawn."""

    def __init__(self, rng: np.random.Generator, stepwise: bool) -> None:
        self.rng, self.stepwise = rng, stepwise
        self.nodes: list = []
        self.edges: list[tuple[str, str]] = []
        self.k = 0

    def add(self, node, src: str) -> str:
        self.nodes.append(node)
        self.edges.append((src, node.name))
        return node.name

    def name(self, prefix: str) -> str:
        self.k += 1
        return f"{prefix}{self.k}"

    def delay(self, mixed_shape: tuple[int, ...] | None = None):
        if not self.stepwise or self.rng.random() > 0.25:
            return 0
        if mixed_shape is not None and self.rng.random() < 0.5:  # per synapse
            return self.rng.integers(0, 4, mixed_shape)
        return int(self.rng.integers(1, 4))

    def dense(self, src: str, n_in: int, n_out: int) -> str:
        rng = self.rng
        sign = int(rng.integers(0, 3))  # mixed, excitatory, inhibitory
        w = (rng.integers(-200, 200, (n_out, n_in)) if sign == 0 else
             rng.integers(0, 255, (n_out, n_in)) * (1 if sign == 1 else -1))
        # densities on both sides of event_ops.COLUMN_DENSITY: CSR and column layouts
        w = w * (rng.random(w.shape) < float(rng.choice([0.1, 0.4, 0.9])))
        return self.add(DenseNode(self.name("d"), w, weight_exp=int(rng.integers(-2, 2)),
                                  num_weight_bits=int(rng.integers(4, 9)),
                                  delay=self.delay((n_out, n_in))), src)

    def flatten(self, src: str, shape: tuple[int, ...]) -> str:
        return self.add(FlattenNode(self.name("f"), tuple(shape)), src)

    def conv(self, src: str, shape: tuple[int, ...], c_out: int | None = None
             ) -> tuple[str, tuple[int, ...]]:
        """A random conv, or (``c_out`` given) one keeping H and W (odd kernel, stride
        1, padding k // 2)."""
        rng = self.rng
        c = shape[0]
        k = int(rng.integers(1, 4))
        groups, stride, dil = 1, (1, 1), (1, 1)
        if c_out is not None:
            k |= 1
            pad = (k // 2, k // 2)
        else:
            stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            pad = (int(rng.integers(0, k)), int(rng.integers(0, k)))
            if k > 1 and rng.random() < 0.3:
                dil = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            if any((k - 1) * dil[i] + 1 > shape[1 + i] + 2 * pad[i] for i in range(2)):
                k, pad, dil = 1, (0, 0), (1, 1)
            c_out = int(rng.integers(1, 5))
            if rng.random() < 0.3:  # grouped (depthwise with a multiplier)
                groups = c
                c_out = c * int(rng.integers(1, 3))
        wshape = (c_out, c // groups, k, k)
        w = rng.integers(-120, 120, wshape) * (rng.random(wshape) < 0.8)
        node = ConvNode(self.name("c"), w, tuple(shape), stride=stride, padding=pad,
                        dilation=dil, groups=groups, weight_exp=int(rng.integers(-2, 2)),
                        delay=self.delay())
        return self.add(node, src), tuple(int(s) for s in node.out_shape)

    def pool(self, src: str, shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
        rng = self.rng
        k = tuple(min(int(rng.integers(1, 3)), shape[1 + i]) for i in range(2))
        stride = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        pad = tuple(int(rng.integers(0, k[i] // 2 + 1)) for i in range(2))
        node = SumPoolNode(self.name("p"), tuple(shape), k, stride, pad)
        return self.add(node, src), tuple(int(s) for s in node.out_shape)


def random_graph(rng: np.random.Generator, family: str) -> tuple[QGraph, dict[str, bool]]:
    """A random graph of the ``family`` ("feedforward", "multi": multi-spike LIFs too,
    "stepwise": recurrence, delays and periodic resets too) and what it holds."""
    stepwise = family == "stepwise"
    multi_ok = family != "feedforward"
    b = _Builder(rng, stepwise)
    in_shape = ((int(rng.integers(1, 4)), int(rng.integers(2, 7)), int(rng.integers(2, 7)))
                if rng.random() < 0.7 else (int(rng.integers(1, 30)),))
    # 16-bit payloads drive a conv's sums into int64 (conv_scatter's third sum mode)
    mb = int(rng.choice([0, 0, 0, 2, 8, 16]))
    b.nodes.append(InputNode("in", in_shape, message_bits=mb))
    sources: list[tuple[str, tuple[int, ...]]] = [("in", in_shape)]
    shared: list[tuple[str, tuple[int, ...]]] = []  # operators a later LIF may read too
    info = {"multi": False, "resets": False, "shared": False, "recurrent": False,
            "feedback": False}
    for li in range(int(rng.integers(1, 5))):
        src, shape = (sources[-1] if rng.random() < 0.6
                      else sources[int(rng.integers(0, len(sources)))])
        kinds = (["conv", "conv", "conv", "pool", "pool conv", "conv pool", "flatten dense",
                  "identity", "conv flatten"] if len(shape) == 3
                 else ["dense", "dense", "identity"])
        if shared and rng.random() < 0.15:
            kinds = ["shared"]
        kind = kinds[int(rng.integers(0, len(kinds)))]
        if kind == "conv":
            t, out = b.conv(src, shape)
        elif kind == "pool":
            t, out = b.pool(src, shape)
        elif kind == "pool conv":
            t, out = b.conv(*b.pool(src, shape))
        elif kind == "conv pool":
            t, out = b.pool(*b.conv(src, shape))
        elif kind == "conv flatten":
            c, s2 = b.conv(src, shape)
            t, out = b.flatten(c, s2), (int(np.prod(s2)),)
        elif kind in ("flatten dense", "dense"):
            n_out = int(rng.integers(1, 25))
            f = b.flatten(src, shape) if kind == "flatten dense" else src
            t, out = b.dense(f, int(np.prod(shape)), n_out), (n_out,)
        elif kind == "identity":
            t, out = src, shape
            if len(shape) == 3 and rng.random() < 0.5:  # flatten only, into a 1-D LIF
                t, out = b.flatten(src, shape), (int(np.prod(shape)),)
        else:
            t, out = shared[int(rng.integers(0, len(shared)))]
            info["shared"] = True
        if t not in [s for s, _ in sources]:
            shared.append((t, out))
        max_spikes = 1
        if multi_ok and rng.random() < 0.3:
            # payloads within uint8 records: wider ones compile every kernel again (a
            # minute on a cold numba cache; test_event_delays_multispike covers them)
            max_spikes = int(rng.choice([2, 3, 7, 200]))
            info["multi"] = True
        interval = 0
        if stepwise and rng.random() < 0.15:
            interval = int(rng.integers(1, 4))
            info["resets"] = True
        name = f"l{li}"
        node = _rand_lif(rng, name, out, max_spikes, interval)
        terms = [t]
        size = int(np.prod(out))
        for _ in range(int(rng.choice([0, 0, 0, 1, 2]))):  # more paths into the LIF
            s2, sh2 = sources[int(rng.integers(0, len(sources)))]
            r = rng.random()
            if r < 0.3 and int(np.prod(sh2)) == size and (
                    len(sh2) == 1 or len(out) == 1 or sh2 == out):
                terms.append(s2)  # identity
            elif r < 0.5 and len(sh2) == 3 and len(out) == 3 and sh2[1:] == out[1:]:
                terms.append(b.conv(s2, sh2, c_out=out[0])[0])
            else:
                f = b.flatten(s2, sh2) if len(sh2) == 3 else s2
                terms.append(b.dense(f, int(np.prod(sh2)), size))
        b.nodes.append(node)
        b.edges += [(t, name) for t in terms]
        if stepwise and rng.random() < 0.15:  # a recurrent dense
            b.edges.append((b.dense(name, size, size), name))
            info["recurrent"] = True
        elif stepwise and src not in ("in", t) and kind != "shared" and rng.random() < 0.2:
            n_src = int(np.prod(shape))  # feedback into the source LIF, an edge backwards
            b.edges.append((b.dense(name, size, n_src), src))
            info["feedback"] = True
        sources.append((name, out))
    last = b.nodes[-1] if isinstance(b.nodes[-1], LIFNode) else next(
        n for n in reversed(b.nodes) if isinstance(n, LIFNode))
    nodes = {n.name: n for n in b.nodes}
    nodes["out"] = OutputNode("out", last.shape)
    g = QGraph(nodes, [*b.edges, (last.name, "out")], 1e-3, "loihi2",
               int(rng.integers(1, 8)), formats=FMT).validate()
    info["delays"] = any(np.any(np.asarray(getattr(n, "delay", 0)) != 0)
                         for n in g.nodes.values())
    # flatten-only paths: the reference counts no events on them (the simulator does)
    info["flatten only"] = any(
        len(p) > 1 and all(isinstance(g.nodes[k], FlattenNode) for k in p[1:])
        for L in g.lif_nodes for p in g.synapse_paths(L.name))
    return g, info


# kernels specialize on the input dtype: these map onto the uint8 and int64 kernels every
# session compiles anyway (bool -> uint8, uint64 and big-endian -> int64): each other
# dtype compiles every kernel again (a minute on a cold numba cache)
BINARY_DTYPES = (np.bool_, np.uint8, np.int64, np.uint64, ">i8")
GRADED_DTYPES = (np.uint8, np.int64, ">i8")
WIDE_DTYPES = (np.int64, ">i8")


def random_frames(rng: np.random.Generator, g: QGraph, frames: int, batch: int
                  ) -> np.ndarray:
    node = g.input_node
    mb = int(node.message_bits)
    shape = (frames, batch, *node.shape)
    hi = 1 if mb == 0 else (1 << mb) - 1
    vals = np.where(rng.random(shape) < 0.3, hi, rng.integers(1, hi + 1, shape))  # + extreme
    x = vals * (rng.random(shape) < float(rng.choice([0.1, 0.4, 0.9])))
    dtypes = BINARY_DTYPES if mb == 0 else GRADED_DTYPES if mb <= 8 else WIDE_DTYPES
    return x.astype(dtypes[int(rng.integers(0, len(dtypes)))])


def _assert_same(a, b, g: QGraph, what: str, state: bool) -> None:
    for L in g.lif_nodes:
        n = L.name
        assert a.spikes[n].shape == b.spikes[n].shape, (what, n)
        assert a.spikes[n].dtype == b.spikes[n].dtype, (what, n)
        np.testing.assert_array_equal(a.spikes[n], b.spikes[n], f"{what} spikes {n}")
        for c in COUNTERS:
            ga, gb = np.asarray(getattr(a, c)[n]), np.asarray(getattr(b, c)[n])
            assert ga.dtype == gb.dtype and ga.shape == gb.shape, (what, n, c)
            np.testing.assert_array_equal(ga, gb, f"{what} {n} {c}")
        if state:
            np.testing.assert_array_equal(a.u[n], b.u[n], f"{what} u {n}")
            np.testing.assert_array_equal(a.v[n], b.v[n], f"{what} v {n}")


def check_random_case(seed: int, family: str, seen: dict[str, int]) -> None:
    """One random graph and input: one step per call (recording u/v) against torch-int
    and, where it applies, the numpy reference; then three runs at random chunk limits,
    chunk byte budgets, thread counts, with or without recording, against it."""
    rng = np.random.default_rng(seed)
    g, info = random_graph(rng, family)
    batch = int(rng.choice([1, 1, 2, 3, 5]))
    x = random_frames(rng, g, int(rng.integers(1, 9)), batch)
    n_steps = int(rng.choice([0, 1, 2, int(rng.integers(1, 20)), int(rng.integers(20, 70)),
                              g.num_steps + g.depth() + 3, g.num_steps + g.depth() + 3]))
    saved = event_plan.CHUNK_MAX, event_plan.CHUNK_BYTES
    try:
        event_plan.CHUNK_MAX = 1
        base = event.run(g, x, num_steps=n_steps, record_state=True, threads=1)
        for L in g.lif_nodes:
            assert base.spikes[L.name].shape == (n_steps, batch, *L.shape)
            assert base.spikes[L.name].dtype == (np.uint8 if L.max_spikes <= 255
                                                 else np.uint16)
            assert base.u[L.name].dtype == np.int64 and base.synops[L.name].shape == (n_steps,)
        if n_steps >= 1:  # torch-int runs one step at least
            ti = torch_int.run(g, x.astype(np.int64), num_steps=n_steps, record_state=True)
            for L in g.lif_nodes:
                for field in ("spikes", "u", "v"):
                    np.testing.assert_array_equal(getattr(base, field)[L.name],
                                                  getattr(ti, field)[L.name],
                                                  f"seed {seed}: torch-int {field} {L.name}")
        if not (info["delays"] or info["multi"] or info["resets"]):
            ref = ref_run(g, x.astype(np.int64), n_steps)
            for L in g.lif_nodes:
                n = L.name
                np.testing.assert_array_equal(base.spikes[n], ref["s"][n], f"{seed} ref {n}")
                np.testing.assert_array_equal(base.neuron_updates[n], ref["upd"][n], n)
                if not info["flatten only"]:
                    np.testing.assert_array_equal(base.synops[n], ref["syn"][n], n)
                    np.testing.assert_array_equal(base.synops_dense[n], ref["syn_dense"][n], n)
                    assert base.peak_fanin[n] == ref["peak"][n], (seed, n)
            seen["reference"] += 1
        plan = event.PLANS.get(g)
        stepwise = plan.schedule()[1]
        for _ in range(3):
            event_plan.CHUNK_MAX = int(rng.choice([2, 3, 4, 5, 7, 32]))
            event_plan.CHUNK_BYTES = int(rng.choice([1, 4096, saved[1], saved[1], 1 << 40]))
            threads = int(rng.integers(1, 4))
            record = bool(rng.random() < 0.2)
            chunk = 1 if stepwise or record else plan.chunk_steps(
                -(-batch // min(threads, batch)), n_steps)
            r = event.run(g, x, num_steps=n_steps, record_state=record, threads=threads)
            _assert_same(r, base, g, f"seed {seed}: CHUNK_MAX {event_plan.CHUNK_MAX}, "
                         f"CHUNK_BYTES {event_plan.CHUNK_BYTES}, threads {threads}, "
                         f"record {record}", record)
            seen["chunked"] += chunk > 1
            seen["uneven chunks"] += chunk > 1 and n_steps % chunk != 0
            seen["threads > batch"] += threads > batch
    finally:
        event_plan.CHUNK_MAX, event_plan.CHUNK_BYTES = saved
    seen["stepwise"] += stepwise
    seen["fused"] += bool(plan.fused)
    seen["int32 state"] += any(L.state_dtype == np.int32 for L in plan.lifs)
    seen["several paths"] += any(len(L.terms) > 1 for L in plan.lifs)
    seen["shared operator"] += info["shared"]
    seen["flatten only"] += info["flatten only"]
    seen["multi-spike"] += info["multi"]
    seen["graded input"] += int(g.input_node.message_bits) > 0
    seen["16-bit input into a fused conv"] += int(g.input_node.message_bits) == 16 and any(
        plan.op_input[c] == "in" for c in plan.fused.values())
    seen["csr"] += any(isinstance(op, event_ops.DenseOp) and not op.columns
                       for op in plan.ops.values())
    seen["columns"] += any(isinstance(op, event_ops.DenseOp) and op.columns
                           for op in plan.ops.values())
    seen["spiking"] += sum(int(base.spike_counts[L.name].sum()) > 0 for L in g.lif_nodes)
    seen["lifs"] += len(g.lif_nodes)
    for key in ("delays", "resets", "recurrent", "feedback"):
        seen[key] += info[key]
    event.PLANS.clear()


def _family(seeds: range, family: str) -> dict[str, int]:
    seen: dict[str, int] = dict.fromkeys(
        ("reference", "chunked", "uneven chunks", "threads > batch", "stepwise", "fused",
         "int32 state", "several paths", "shared operator", "flatten only", "multi-spike",
         "graded input", "csr", "columns", "spiking", "delays", "resets",
         "recurrent", "feedback", "lifs", "16-bit input into a fused conv"), 0)
    for seed in seeds:
        check_random_case(seed, family, seen)
    return seen


def test_random_feedforward_graphs_give_the_same_results_at_every_chunk_size():
    seen = _family(range(0, 120), "feedforward")
    # the family reaches what chunking must get right, many times over
    for key in ("chunked", "uneven chunks", "threads > batch", "fused", "int32 state",
                "several paths", "shared operator", "graded input", "csr", "columns"):
        assert seen[key] >= 10, (key, seen)
    assert seen["reference"] == 120 and seen["stepwise"] == 0, seen
    assert seen["flatten only"] >= 2 and seen["16-bit input into a fused conv"] >= 1, seen
    assert seen["spiking"] >= 0.4 * seen["lifs"], seen


def test_random_graphs_with_multi_spike_lifs_give_the_same_results_at_every_chunk_size():
    seen = _family(range(1000, 1080), "multi")
    for key in ("chunked", "uneven chunks", "multi-spike", "fused"):
        assert seen[key] >= 10, (key, seen)
    assert seen["spiking"] >= 0.4 * seen["lifs"], seen


def test_random_graphs_that_go_step_by_step_give_the_same_results_as_torch_int():
    """Recurrence, delays (uniform and per synapse) and periodic resets beside parts that
    could run in chunks: the whole graph goes step by step, whatever CHUNK_MAX says."""
    seen = _family(range(2000, 2080), "stepwise")
    for key in ("stepwise", "chunked", "delays", "resets", "recurrent", "multi-spike"):
        assert seen[key] >= 10, (key, seen)
    assert seen["feedback"] >= 4, seen
    assert seen["spiking"] >= 0.4 * seen["lifs"], seen


# ---- the random families are not vacuous: faults that only show in chunks are caught -----

def _tally_in_the_next_step(real):
    def step(L, a, c, u, v, spk, f, tal):
        real(L, a, c, u, v, spk, f, tal)
        if tal.shape[0] > 1:  # the first step's active updates counted in the second
            tal[1, 1] += tal[0, 1]
            tal[0, 1] = 0
    return step


def _state_not_carried(real):
    def step(L, a, c, u, v, spk, f, tal):
        if a.shape[0] > u.shape[0]:  # a chunk: u and v of its end are dropped
            real(L, a, c, u.copy(), v.copy(), spk, f, tal)
        else:
            real(L, a, c, u, v, spk, f, tal)
    return step


def _read_one_step_late(real):
    def rows(values, m0, m1, zero):
        return real(values, m0 + 1, m1 + 1, zero) if m1 - m0 > 1 else real(values, m0, m1,
                                                                            zero)
    return rows


@pytest.mark.parametrize("fault", ["tally in the next step", "state not carried",
                                   "source read one step late"])
def test_the_random_family_catches_a_fault_that_shows_only_in_chunks(fault, monkeypatch):
    if fault == "source read one step late":
        monkeypatch.setattr(event, "_rows", _read_one_step_late(event._rows))
    else:
        wrap = _tally_in_the_next_step if fault == "tally in the next step" else \
            _state_not_carried
        monkeypatch.setattr(event, "_lif_step", wrap(event._lif_step))
    with pytest.raises(AssertionError):
        _family(range(0, 40), "multi")
    event.PLANS.clear()


# ---- a fused conv + LIF in chunks, in every sum mode and both state widths ----------------

def test_random_fused_conv_lif_in_chunks_equals_one_step_per_call_in_every_sum_mode(
        monkeypatch):
    """test_event_random_fused's random conv -> LIF graphs (random formats, graded inputs up
    to 24 bits, int32 and int64 state) run in chunks of 2, 3 and up to 32 steps, threads
    1-3: spikes and every counter equal one step per call, and the spikes torch-int's. The
    fused kernel's int64 sums (no packing) use its scratch rows, one step's worth."""
    from test_event_random_fused import random_conv_lif, random_formats, sum_mode

    rng = np.random.default_rng(87)  # a seed whose 50 cases reach all six (width, mode)
    seen: dict[str, int] = {}
    for case in range(50):
        g, x = random_conv_lif(rng, random_formats(rng, narrowish=case % 3 != 0),
                               decays=rng.random() < 0.15)
        n_steps = x.shape[0] + int(rng.integers(1, 5))
        plan = event.PLANS.get(g)
        assert plan.fused == {"l": "c"} and not plan.schedule()[1]
        monkeypatch.setattr(event_plan, "CHUNK_MAX", 1)
        base = event.run(g, x, n_steps, threads=1)
        ref = torch_int.run(g, x, n_steps)
        np.testing.assert_array_equal(base.spikes["l"], ref.spikes["l"], f"case {case}")
        for chunk in (2, 3, 32):
            monkeypatch.setattr(event_plan, "CHUNK_MAX", chunk)
            r = event.run(g, x, n_steps, threads=int(rng.integers(1, 4)))
            _assert_same(r, base, g, f"case {case}, chunk {chunk}", state=False)
        width = "int32" if plan.lifs[0].state_dtype == np.int32 else "int64"
        for m in {sum_mode(g, fr) for fr in x.reshape(-1, *x.shape[2:])}:
            seen[f"{width} state, {m}"] = seen.get(f"{width} state, {m}", 0) + 1
        seen["spiking"] = seen.get("spiking", 0) + int(base.spikes["l"].any())
        event.PLANS.clear()
    for width in ("int32", "int64"):
        for m in ("int32 packed", "int64 packed", "int64"):
            assert seen.get(f"{width} state, {m}", 0) >= 2, sorted(seen.items())
    assert seen["spiking"] >= 10, seen


def test_a_split_batch_going_step_by_step_keeps_no_second_copy_of_the_spike_records():
    """A part of a split batch needs its own (contiguous) spike records only for chunks of
    several steps; a graph that goes step by step (here a recurrent one) writes the run's
    records in place, as before chunks: threads add no copy of them."""
    g = _wide_record_net()
    n = int(np.prod(g.nodes["l1"].shape))
    nodes = dict(g.nodes)
    nodes["r"] = DenseNode("r", np.eye(n, dtype=np.int64) * 2)
    nodes["out"] = nodes.pop("out")
    g = QGraph(nodes, [*g.edges, ("l1", "r"), ("r", "l1")], 1e-3, "loihi", 40).validate()
    assert event.PLANS.get(g).schedule()[1]  # step by step
    x = (np.random.default_rng(2).random((40, 4, 2, 24, 24)) < 0.2).astype(np.uint8)
    event.run(g, x[:2], threads=2)
    one = event.run(g, x, threads=1)
    peaks = {t: _traced_peak(lambda t=t: event.run(g, x, threads=t)) for t in (1, 2)}
    split = event.run(g, x, threads=2)
    for L in g.lif_nodes:
        np.testing.assert_array_equal(split.spikes[L.name], one.spikes[L.name])
    records = sum(a.nbytes for a in one.spikes.values())  # 1.5 MB
    assert peaks[2] - peaks[1] < records // 4, (peaks, records)
    event.PLANS.clear()
