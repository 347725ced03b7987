"""Event-driven reference simulator of a quantized graph (numpy + numba, no torch).

An independent implementation of the execution semantics in docs/qgraph.md, used to check
the torch integer backend spike for spike. Spikes (and non-zero graded payloads) are
processed as events: each one touches only its fan-out (one column of a dense matrix, the
output positions of a conv or pooling window it reaches); every neuron then takes the LIF
step. All arithmetic is exact: int64, or int16/int32 where a bound proves the values fit.

Timing (docs/qgraph.md "Topology and timing", "Synaptic delays"): at step n every LIF
integrates ``a = sum over its synapse paths P of apply_ops(P, out[source(P)][n-1-d])``
(0 before step 0), where ``d`` is the path's total delay; all LIFs update simultaneously
from earlier outputs. Each weighted operator with a delay keeps a circular buffer of the
input pending for each of its next ``delay + 1`` arrival steps (per neuron and sample):
an event is scattered into the slot of its arrival step when it occurs, and at every step
the slot of that step is read and cleared. A ``dense`` with per-synapse delays buffers the
unshifted products and floor-shifts each arrival step's sum once (one accumulator per
neuron); a uniform delay buffers the finished operator output (the same values, since the
operator is time-invariant).

Steps in chunks: every LIF at step n reads only what its sources sent at step n - 1 - d, so
a graph without recurrence (no cycle through its LIFs), without operator delays and
without periodic resets runs several steps per kernel call (``Plan.schedule``): each
operator and each LIF in turn over a chunk of steps, in an order that puts everything
after what it reads, LIFs included (the next layer reads the chunk's rows of a LIF's spike
record written just before). The kernels work on rows (``[steps * B, size]``, the B
samples of one step after another, :mod:`snn2hw.backends.event_kernels` "Rows"), a LIF's
state carried from one step's rows to the next inside its kernel, per-step tallies added
into ``[steps, k]`` arrays. The per-call cost (Python and numba's argument dispatch, about
28 µs per step for a five-layer CNN) is then paid once per chunk; chunks are sized so the
rows an operator writes for the next kernel stay within half an L2 cache
(``Plan.chunk_steps``). Any other graph (and a run that records ``u``/``v``) goes one step
per call, in the order operators, then LIFs. Results do not depend on the chunk size.

Periodic state reset (docs/qgraph.md "Periodic state reset"): a LIF with
``reset_interval > 0`` has its ``u`` and ``v`` zeroed at the start of every step ``n``
(0-based; every sample of the batch starts at step 0) with ``n % reset_interval ==
reset_offset``, before that step's input is integrated.

Multi-spike LIF nodes (``max_spikes > 1``) emit their count as a graded payload, which
the synaptic kernels multiply like any graded input. ``spikes`` in the result holds that
payload (uint8 while ``max_spikes <= 255``, wider beyond).

Activity counters (for the energy model): a synaptic event is one (event, synapse) pair
processed by a weighted operator (dense, conv, sumpool; a pooling window membership is a
weight-1 synapse). An event is a neuron (or input) with a non-zero output in a step,
whatever its payload (docs/qgraph.md "Multi-spike output"); ``spike_counts`` counts
events. Synaptic events are counted at the step they are processed (when the spike
occurs, also for delayed synapses: that is when the synapse is read); ``peak_fanin``
counts the events arriving at a neuron in one step (after their delay). A path made
only of flattens (or of nothing) is an identity connection: each non-zero value is one
weight-1 event. Events of every weighted operator on a path are attributed to the LIF the
path ends in (so ``lif -> sumpool -> conv -> lif`` counts the pooling events and the conv
events).

Layouts: values are flat per sample. A conv or sumpool output is stored channels-last
(``(H, W, C)`` flat: each event's output channels are contiguous, and no strided
conversion runs per step), and so is the state (``a``, ``u``, ``v``, bias) of a 3-D LIF whose
terms are all such outputs of its shape; every other value is in C order. A LIF's spike
record is kept in its state's layout (no reordering per step), so a source is read in its
own layout: a conv or pool reads either layout, a dense reading a channels-last value has
its weight columns permuted once when prepared, and an identity path between a source and
a LIF of different layouts gathers. Results come back in (C, H, W) order: the spike
records of channels-last LIFs as transposed views of their storage (not C-contiguous; no
copy), the ``u``/``v`` traces as copies. The layouts are the simulator's business: results
are those of the contract.

Fusion: a conv whose output only one single-spike LIF reads, in the same (channels-last)
layout and without delay, runs with that LIF as one kernel (``Plan.fused``;
``event_kernels_lif.lif_kernels``' ``conv_step``): per sample, the events are scattered, then
the LIF's loop reads the sums while they are in cache, the conv's epilogue inside it. The
LIF kernels are compiled per overflow mode of u and v and per decay case (a node without
decay, ``du = 2^db - 1`` and ``dv = 0``, skips the decay products), each on first use. A
fused LIF whose step provably stays inside 32 bits (``event_kernels_lif.lif_narrow``: no
decay products, bounds on u, v, bias and threshold) keeps its state and bias in int32 and
runs its step in int32, twice the vector lanes; the results are the same.

Prepared plans are cached (:data:`PLANS`): the checks (structure, formats, chip limits)
and the weight preparation of a graph run once per graph object and content; every run
compares a fingerprint of the graph (every node field, arrays by a checksum of their
bytes, edges, formats, the chip limits in the metadata; one memory pass, about 1 ms for
2 M weights) and prepares again when anything changed, including arrays written in place.
Buffers (which depend on the batch) are made per run on shallow copies of the prepared
operators; the spike records are not zeroed first (every LIF kernel writes every entry).

Module layout: this module holds :func:`run`, the time loop and the registry entry
:data:`BACKEND`; the prepared operators live in :mod:`snn2hw.backends.event_ops`, the plan
of a graph (paths, layouts, fusion) and the plan cache in :mod:`snn2hw.backends.event_plan`,
the numba kernels in :mod:`snn2hw.backends.event_kernels` and its family. Results are
:class:`snn2hw.backends.base.SimResult` with ``counters`` set. May import: numpy, numba,
``snn2hw.common``, ``snn2hw.quant``, ``snn2hw.backends.base`` and its own modules; never
torch, another backend (torch_int, lava, onnx), pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from snn2hw.backends import event_kernels_lif as lif_k
from snn2hw.backends.base import (
    ActivityCounters,
    PreparingBackend,
    SimResult,
    check_node_kinds,
)
from snn2hw.backends.event_ops import dense_effective_weight
from snn2hw.backends.event_plan import (
    PLANS,
    Lif,
    Plan,
    PlanCache,
    check_formats,
    graph_fingerprint,
)
from snn2hw.common.errors import GraphError
from snn2hw.common.frames import integer_frames
from snn2hw.common.threads import contiguous_ranges, current_threads, map_parts
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    QGraph,
    SumPoolNode,
)

__all__ = [
    "BACKEND",
    "NODE_KINDS",
    "PLANS",
    "EventBackend",
    "PlanCache",
    "dense_effective_weight",
    "graph_fingerprint",
    "run",
    "warmup",
]

# Every qgraph node kind this backend executes (docs/qgraph.md).
NODE_KINDS = frozenset({"input", "dense", "conv", "sumpool", "flatten", "lif", "output"})

def _lif_step(L: Lif, a: np.ndarray, c: np.ndarray, u: np.ndarray, v: np.ndarray,
              spk: np.ndarray, f: NumberFormats, tal: np.ndarray) -> None:
    """Steps of LIF ``L`` from the rows of its summed activation ``a`` and fan-in counts
    ``c``: spikes into the rows ``spk``, each step's ``(spikes, active updates, max
    fan-in)`` into ``tal``."""
    m = int(L.node.max_spikes)
    if m == 1:
        L.kernels.step(a, c, u, v, L.bias, spk, L.consts, tal)
        return
    lif_k.lif_step_general(a, c, u, v, L.bias, L.consts, m, spk,
                           f.u_overflow == "saturate", f.v_overflow == "saturate",
                           f.threshold_compare == ">=", f.reset == "subtract",
                           lif_k.lif_decays(L.consts), tal)


def _reset_state(node: LIFNode, n: int, u: np.ndarray, v: np.ndarray) -> None:
    """The periodic state reset of ``node`` (docs/qgraph.md "Periodic state reset"): zero
    its ``u`` and ``v`` at the start of step ``n`` (0-based within the sample) when
    ``reset_interval > 0`` and ``n % reset_interval == reset_offset``."""
    interval = int(node.reset_interval)
    if interval > 0 and n % interval == int(node.reset_offset):
        u.fill(0)
        v.fill(0)


def _check_inputs(graph: QGraph, inputs: Any) -> np.ndarray:
    """Validate ``[F, B, *input_shape]`` integer frames against the input node."""
    node: InputNode = graph.input_node
    arr = integer_frames(inputs)
    shape = tuple(int(s) for s in node.shape)
    if arr.ndim != 2 + len(shape) or tuple(arr.shape[2:]) != shape:
        raise GraphError(
            f"inputs for '{node.name}' have shape {list(arr.shape)}, expected "
            f"[F, B, {', '.join(map(str, shape))}] (time-major frames, batch second)"
        )
    if arr.size:
        lo = 0 if arr.dtype.kind in "ub" else int(arr.min())  # one pass fewer when unsigned
        hi = int(arr.max())
        if lo < 0:
            raise GraphError(f"inputs for '{node.name}' contain a negative value ({lo})")
        if node.message_bits == 0 and hi > 1:
            raise GraphError(
                f"input '{node.name}' is binary (message_bits=0) but the inputs contain {hi}; "
                "only 0/1 are allowed"
            )
        if node.message_bits > 0 and hi >= 2**node.message_bits:
            raise GraphError(
                f"input '{node.name}' carries {node.message_bits}-bit payloads but the inputs "
                f"contain {hi} >= 2**{node.message_bits}"
            )
    return arr


def run(
    graph: QGraph,
    inputs: np.ndarray,
    num_steps: int | None = None,
    record_state: bool = False,
    threads: int | None = None,
) -> SimResult:
    """Run ``graph`` on integer input frames ``[F, B, *input_shape]`` for ``num_steps``
    steps (default ``graph.num_steps + graph.depth()``), exactly as docs/qgraph.md defines.

    Returns spikes of every LIF ``[N, B, *shape]`` (uint8), optionally the ``u``/``v``
    traces after each step (int64), and the activity counters (``SimResult.counters``,
    :class:`snn2hw.backends.base.ActivityCounters`) in a :class:`SimResult`.
    ``threads`` (default: the process's thread count, which ``snn2hw --threads`` and
    ``OMP_NUM_THREADS`` set; :func:`snn2hw.common.threads.current_threads`) splits the
    batch into that many contiguous parts simulated at once (the kernels release the GIL),
    a large part in sub-batches (:data:`PART_BATCH`); results do not depend on it.
    Raises :class:`GraphError` on a malformed graph or bad inputs.
    """
    t0 = time.perf_counter()
    plan = PLANS.get(graph)  # validates and prepares only when the graph is new or changed
    arr = _check_inputs(graph, inputs)
    if num_steps is None:
        num_steps = graph.num_steps + graph.depth()
    if isinstance(num_steps, bool) or not isinstance(num_steps, (int, np.integer)):
        raise GraphError(f"num_steps must be an integer, got {num_steps!r}")
    n_steps = int(num_steps)
    if n_steps < 0:
        raise GraphError(f"num_steps={n_steps} must be >= 0")
    batch = int(arr.shape[1])
    n_threads = current_threads() if threads is None else int(threads)
    if n_threads < 1:
        raise GraphError(f"threads must be >= 1, got {n_threads}")
    names = [L.node.name for L in plan.lifs]

    def per_lif(steps: int, dtype: type = np.int64) -> dict[str, np.ndarray]:
        return {L.node.name: np.zeros((steps, batch, L.size), dtype=dtype) for L in plan.lifs}

    out = _Outputs(
        spikes={L.node.name: _spike_record((n_steps, batch, L.size), _payload_dtype(L.node))
                for L in plan.lifs},
        u_rec=per_lif(n_steps) if record_state else None,
        v_rec=per_lif(n_steps) if record_state else None,
    )
    spans = contiguous_ranges(batch, max(1, min(n_threads, batch)))
    if len(spans) <= 1:
        tallies = [_simulate(plan, graph, arr, n_steps, out, 0, batch)]
    else:
        def part(span: tuple[int, int]) -> list[tuple[dict[str, np.ndarray], ...]]:
            s0, s1 = span
            n = s1 - s0
            subs = contiguous_ranges(n, 1 if n <= 2 * PART_BATCH else -(-n // PART_BATCH))
            return [_simulate(plan, graph, arr[:, s0 + a:s0 + b], n_steps, out, s0 + a,
                              s0 + b) for a, b in subs]
        tallies = [t for ts in map_parts(part, spans) for t in ts]
    synops, synops_dense, updates, counts = (
        {n: sum(t[k][n] for t in tallies) if tallies else np.zeros(n_steps, dtype=np.int64)
         for n in names} for k in range(4)
    )
    peak = {n: max((t[4][n] for t in tallies), default=0) for n in names}

    def shaped(d: dict[str, np.ndarray], copy: bool) -> dict[str, np.ndarray]:
        """Per LIF ``[steps, B, *shape]`` from ``d`` in the LIFs' state layouts: a
        channels-last one as a (C, H, W) view of its storage, or a C-order ``copy``."""
        res = {}
        for L in plan.lifs:
            name, shape = L.node.name, tuple(L.node.shape)
            if plan.hwc[name]:
                c, h, w = shape
                view = d[name].reshape(n_steps, batch, h, w, c).transpose(0, 1, 4, 2, 3)
                res[name] = np.ascontiguousarray(view) if copy else view
            else:
                res[name] = d[name].reshape(n_steps, batch, *shape)
        return res

    counters = ActivityCounters(
        synops=synops,
        synops_dense=synops_dense,
        neuron_updates=updates,
        spike_counts=counts,
        macs_dense={L.node.name: int(L.macs) for L in plan.lifs},
        peak_fanin=peak,
    )
    return SimResult(
        BACKEND.name,
        shaped(out.spikes, copy=False),
        shaped(out.u_rec, copy=True) if out.u_rec is not None else None,
        shaped(out.v_rec, copy=True) if out.v_rec is not None else None,
        time.perf_counter() - t0,
        counters=counters,
    )


@dataclass
class _Outputs:
    """Result arrays ``[steps, B, size]`` per LIF, shared by the batch parts of one run
    (each part writes only its own samples)."""

    spikes: dict[str, np.ndarray]
    u_rec: dict[str, np.ndarray] | None
    v_rec: dict[str, np.ndarray] | None


# When a batch is split across threads, a part of more than 2 * PART_BATCH samples runs in
# sub-batches of at most PART_BATCH, one after another. Two parts of 50 CNN samples
# competed for the shared caches (the N-MNIST-sized evaluation, 2 threads: 3.0-3.1
# ms/sample whole, 2.9-3.0 in sub-batches of 25, 2.4-2.7 in sub-batches of 16); the MLP's
# parts of 32 ran slower split in two (each sub-batch copies its spike records), and one
# thread alone showed no such difference.
PART_BATCH = 16


def _spike_record(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A spike record, uninitialized: every LIF kernel writes each neuron's value of every
    step (zeroing a CNN's records first cost about 3 % of its run)."""
    return np.empty(shape, dtype=dtype)


def _payload_dtype(node: LIFNode) -> type:
    m = int(node.max_spikes)
    return np.uint8 if m <= 0xFF else np.uint16 if m <= 0xFFFF else np.uint32


def _simulate(plan: Plan, graph: QGraph, arr: np.ndarray, n_steps: int, out: _Outputs,
              b0: int, b1: int) -> tuple[dict[str, np.ndarray], ...]:
    """The time loop for samples ``b0:b1`` of the run (``arr`` holds only those); writes
    their spikes and states into ``out`` and returns the activity tallies of this part
    ``(synops, synops_dense, updates, counts, peak)`` per LIF."""
    n_frames, batch = int(arr.shape[0]), b1 - b0
    record = out.u_rec is not None and out.v_rec is not None
    schedule, stepwise = plan.schedule()
    chunk = 1 if record or stepwise else plan.chunk_steps(batch, n_steps)
    # The prepared weights are shared; the per-run buffers live on shallow copies, so
    # concurrent runs of one graph never share state.
    ops = {k: copy.copy(op) for k, op in plan.ops.items()}
    fused = set(plan.fused.values())
    for k, op in ops.items():
        # a fused conv's rows are its kernel's scratch, one step's worth reused from step
        # to step (chunk_steps does not count them)
        op.alloc(batch if k in fused else chunk * batch)
    lifs = {L.node.name: L for L in plan.lifs}
    u = {n: np.zeros((batch, L.size), dtype=L.state_dtype) for n, L in lifs.items()}
    v = {n: np.zeros((batch, L.size), dtype=L.state_dtype) for n, L in lifs.items()}
    # the summed activation (and fan-ins) of a LIF with several paths into it
    a_sum, c_sum = ({n: np.zeros((chunk * batch, L.size), dtype=np.int64)
                     for n, L in lifs.items() if len(L.terms) > 1} for _ in range(2))
    # Spike records [steps, B, size]: a chunk's rows of a record are one contiguous block
    # (what the kernels write and the next layer reads), so a part of a split batch keeps
    # its own records and copies them into the run's at the end; one step's rows of the
    # part are contiguous in the run's records (written in place when going step by step).
    own = chunk > 1 and any(a.shape[1] != batch for a in out.spikes.values())
    records = {k: _spike_record((n_steps, batch, a.shape[2]), a.dtype) if own
               else a[:, b0:b1] for k, a in out.spikes.items()}
    # The values each source sends at step m (read at step m + 1): the input frames (in
    # their own narrow dtype; the kernels widen each value) and the LIFs' spike records.
    if arr.dtype == np.bool_ or (arr.dtype.kind == "u" and arr.dtype.itemsize == 8):
        arr = arr.astype(np.uint8 if arr.dtype == np.bool_ else np.int64)
    sent = dict(records)
    sent[plan.input.name] = arr.reshape(n_frames, batch, plan.sources[plan.input.name])
    # per-step tallies: each operator's (synops, structural synops), each LIF's (spikes,
    # active updates, max fan-in)
    op_syn = {k: np.zeros((n_steps, 2), dtype=np.int64) for k in ops}
    lif_tal = {n: np.zeros((n_steps, 3), dtype=np.int64) for n in lifs}
    f = graph.formats
    zeros = {k: np.zeros(a.shape[1:], dtype=a.dtype) for k, a in sent.items()}

    def reader(src: str) -> Any:
        """What steps n0..n1-1 read from ``src``: an operator's rows of the chunk, or the
        source's values of steps n0-1..n1-2 (zeros before step 0 and past its end)."""
        op = ops.get(src)
        if op is not None:
            return lambda n0, n1, rows: op.out if rows == len(op.out) else op.out[:rows]
        values, zero = sent[src], zeros[src]
        return lambda n0, n1, rows: _rows(values, n0 - 1, n1 - 1, zero)

    # each scheduled item with what it reads and writes, bound once
    items: list[tuple[Any, ...]] = []
    for kind, key in schedule:
        if kind == "op":
            items.append((False, key, ops[key], reader(plan.op_input[key]),
                          key in plan.need_cnt, op_syn[key]))
            continue
        L = lifs[key]
        conv = plan.fused.get(key)
        items.append((True, key, L, u[key], v[key], records[key], lif_tal[key],
                      int(L.node.reset_interval) > 0,
                      ops[conv] if conv is not None else None,
                      reader(plan.op_input[conv]) if conv is not None else None,
                      op_syn[conv] if conv is not None else None,
                      [ops[t] for t in L.terms], a_sum.get(key), c_sum.get(key)))

    # step 0 alone (it reads only zeros), then chunks: a chunk starting at step 0 would
    # read a copy of a chunk of every source's values with zeros for step -1
    starts = [0, *range(1, n_steps, chunk)] if chunk > 1 else range(n_steps)
    for n0 in starts:
        n1 = 1 if n0 == 0 else min(n0 + chunk, n_steps)
        rows = (n1 - n0) * batch
        for item in items:
            if not item[0]:
                _, key, op, read, need, syn = item
                op.apply(read(n0, n1, rows), need, syn[n0:n1], n0)
                continue
            (_, key, L, uL, vL, rec, tal, resets, conv_op, conv_read, conv_syn, terms,
             a, c) = item
            # the chunk's rows of the record: a view the kernels write
            spk = rec[n0] if n1 - n0 == 1 else rec[n0:n1].reshape(rows, L.size)
            if resets:  # step by step: before the step's input is integrated
                _reset_state(L.node, n0, uL, vL)
            if conv_op is not None:
                conv_op.apply_lif(conv_read(n0, n1, rows), L, uL, vL, spk, conv_syn[n0:n1],
                                  tal[n0:n1])
            elif len(terms) == 1:
                t = terms[0]
                full = rows == len(t.out)
                _lif_step(L, t.out if full else t.out[:rows], t.cnt if full else t.cnt[:rows],
                          uL, vL, spk, f, tal[n0:n1])
            else:  # several paths into one LIF: their activations (and fan-ins) add up
                a, c = a[:rows], c[:rows]
                np.copyto(a, terms[0].out[:rows])
                np.copyto(c, terms[0].cnt[:rows])
                for t in terms[1:]:
                    a += t.out[:rows]
                    c += t.cnt[:rows]
                _lif_step(L, a, c, uL, vL, spk, f, tal[n0:n1])
            if record:  # one step per call
                out.u_rec[key][n0, b0:b1] = uL
                out.v_rec[key][n0, b0:b1] = vL

    if own:
        for k, rec in records.items():
            out.spikes[k][:, b0:b1] = rec
    synops, synops_dense, updates, counts, peak = {}, {}, {}, {}, {}
    for name, L in lifs.items():
        paths = sum((op_syn[k] for k in L.path_ops), np.zeros((n_steps, 2), dtype=np.int64))
        synops[name] = np.ascontiguousarray(paths[:, 0])
        synops_dense[name] = np.ascontiguousarray(paths[:, 1])
        counts[name] = np.ascontiguousarray(lif_tal[name][:, 0])
        updates[name] = np.ascontiguousarray(lif_tal[name][:, 1])
        peak[name] = int(lif_tal[name][:, 2].max(initial=0))
    # drop the operators' buffers now, not whenever the cyclic GC would find them
    ops.clear()
    return synops, synops_dense, updates, counts, peak


def _rows(values: np.ndarray, m0: int, m1: int, zero: np.ndarray) -> np.ndarray:
    """Rows ``[(m1 - m0) * B, size]`` of ``values`` ``[M, B, size]`` for steps ``m0..m1-1``,
    zeros for steps outside ``0..M-1`` (a view where the steps lie inside and are
    contiguous; ``zero``, ``[B, size]`` zeros, for a single step outside)."""
    n_m, nb, size = values.shape
    if m1 - m0 == 1:
        return values[m0] if 0 <= m0 < n_m else zero
    lo, hi = max(m0, 0), min(m1, n_m)
    if lo == m0 and hi == m1:
        return values[m0:m1].reshape((m1 - m0) * nb, size)
    x = np.zeros((m1 - m0, nb, size), dtype=values.dtype)
    if lo < hi:
        x[lo - m0:hi - m0] = values[lo:hi]
    return x.reshape((m1 - m0) * nb, size)


class _Prepared:
    """A graph ready to run: its plan is in :data:`PLANS` (re-prepared there only if the
    graph changes); buffers are made per call (they depend on the batch)."""

    def __init__(self, graph: QGraph) -> None:
        self.graph = graph

    def run(
        self, ints: Any, num_steps: int | None = None, record_state: bool = False
    ) -> SimResult:
        return run(self.graph, ints, num_steps, record_state)


class EventBackend(PreparingBackend):
    """The event-driven simulator behind :class:`snn2hw.backends.base.Backend` (registry
    name ``event``); the only backend that counts activity (``SimResult.counters``)."""

    name = "event"
    node_kinds = NODE_KINDS
    features = frozenset({"delay", "multi_spike", "periodic_reset"})
    records_state = True
    uses_device = False
    counts_activity = True
    splits_batches = True

    def prepare(self, graph: QGraph, device: str = "cpu") -> _Prepared:
        check_node_kinds(graph, self.name, self.node_kinds, self.features)
        check_formats(graph)
        PLANS.get(graph)
        return _Prepared(graph)



BACKEND = EventBackend()


def warmup() -> None:
    """Compile every numba kernel on a tiny graph (benchmarks call it before timing)."""
    from snn2hw.quant.qgraph import OutputNode

    def lif(name: str, shape: tuple[int, ...]) -> LIFNode:
        z = np.zeros(shape, dtype=np.int64)
        return LIFNode(name, shape, du=4095, dv=0, vth=0, bias_mant=z, bias_exp=z.copy())

    nodes: dict[str, Any] = {
        "in": InputNode("in", (1, 4, 4), message_bits=2),
        "conv": ConvNode("conv", np.ones((2, 1, 3, 3), np.int64), (1, 4, 4), padding=(1, 1)),
        "l1": lif("l1", (2, 4, 4)),
        "pool": SumPoolNode("pool", (2, 4, 4), (2, 2), (2, 2)),
        "flat": FlattenNode("flat", (2, 2, 2)),
        "fc": DenseNode("fc", np.full((3, 8), 2, np.int64), weight_exp=-1),
        "fc2": DenseNode("fc2", np.eye(3, 8, dtype=np.int64) * 4),
        "l2": lif("l2", (3,)),
        "l3": lif("l3", (3,)),
        # a conv not fused with its LIF (event_kernels_conv.conv_scatter): into a 1-D LIF
        "conv2": ConvNode("conv2", np.ones((1, 2, 3, 3), np.int64), (2, 4, 4), padding=(1, 1)),
        "l4": lif("l4", (16,)),
        "out": OutputNode("out", (3,)),
    }
    edges = [("in", "conv"), ("conv", "l1"), ("l1", "pool"), ("pool", "flat"), ("flat", "fc"),
             ("fc", "l2"), ("flat", "fc2"), ("fc2", "l2"), ("l2", "l3"), ("l3", "out"),
             ("l1", "conv2"), ("conv2", "l4")]
    g = QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)
    x = np.ones((2, 2, 1, 4, 4), dtype=np.int64)
    x[:, 1] = 3
    run(g, x, record_state=True)
    run(g, x.astype(np.uint8))  # the usual frame dtype: kernels specialize on it
    # the delay ring kernels and a multi-spike LIF (formats allowing both)
    fmt = replace(LOIHI_FORMATS, max_synaptic_delay=3, max_message_bits=8)
    z = np.zeros(2, dtype=np.int64)
    nodes2: dict[str, Any] = {
        "in": InputNode("in", (2,)),
        "fc": DenseNode("fc", np.full((2, 2), 64, np.int64), delay=np.array([[0, 1], [2, 3]])),
        "l": LIFNode("l", (2,), du=4095, dv=0, vth=1, bias_mant=z, bias_exp=z.copy(),
                     max_spikes=3),
        "out": OutputNode("out", (2,)),
    }
    g2 = QGraph(nodes2, [("in", "fc"), ("fc", "l"), ("l", "out")], dt=1e-3, target="loihi2",
                num_steps=2, formats=fmt)
    run(g2, np.ones((2, 1, 2), dtype=np.int64), record_state=True)
