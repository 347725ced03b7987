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
bytes, edges, formats, metadata; one memory pass, about 1 ms for 2 M weights) and
prepares again when anything changed, including arrays written in place. Buffers (which
depend on the batch) are made per run on shallow copies of the prepared operators.

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
              spk: np.ndarray, f: NumberFormats) -> tuple[int, int, int]:
    """One step of LIF ``L`` from its summed activation ``a`` and fan-in counts ``c``:
    spikes into ``spk``; returns ``(spikes, active updates, max fan-in)``."""
    m = int(L.node.max_spikes)
    if m == 1:
        return L.kernels.step(a, c, u, v, L.bias, spk, L.consts)
    return lif_k.lif_step_general(a, c, u, v, L.bias, L.consts, m, spk,
                                  f.u_overflow == "saturate", f.v_overflow == "saturate",
                                  f.threshold_compare == ">=", f.reset == "subtract",
                                  lif_k.lif_decays(L.consts))


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
        lo, hi = int(arr.min()), int(arr.max())
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
    batch into that many contiguous parts simulated at once (the kernels release the GIL);
    results do not depend on it.
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
        spikes={L.node.name: np.zeros((n_steps, batch, L.size), dtype=_payload_dtype(L.node))
                for L in plan.lifs},
        u_rec=per_lif(n_steps) if record_state else None,
        v_rec=per_lif(n_steps) if record_state else None,
    )
    spans = contiguous_ranges(batch, max(1, min(n_threads, batch)))
    if len(spans) <= 1:
        tallies = [_simulate(plan, graph, arr, n_steps, out, 0, batch)]
    else:
        tallies = map_parts(lambda span: _simulate(plan, graph, arr[:, span[0]:span[1]],
                                                   n_steps, out, *span), spans)
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


def _payload_dtype(node: LIFNode) -> type:
    m = int(node.max_spikes)
    return np.uint8 if m <= 0xFF else np.uint16 if m <= 0xFFFF else np.uint32


def _simulate(plan: Plan, graph: QGraph, arr: np.ndarray, n_steps: int, out: _Outputs,
              b0: int, b1: int) -> tuple[dict[str, np.ndarray], ...]:
    """The time loop for samples ``b0:b1`` of the run (``arr`` holds only those); writes
    their spikes and states into ``out`` and returns the activity tallies of this part
    ``(synops, synops_dense, updates, counts, peak)`` per LIF."""
    n_frames, batch = int(arr.shape[0]), b1 - b0
    # The prepared weights are shared; the per-run buffers live on shallow copies, so
    # concurrent runs of one graph never share state.
    ops = {k: copy.copy(op) for k, op in plan.ops.items()}
    for op in ops.values():
        op.alloc(batch)
    lifs = plan.lifs
    names = [L.node.name for L in lifs]

    def per_lif() -> dict[str, np.ndarray]:
        return {L.node.name: np.zeros((batch, L.size), dtype=L.state_dtype) for L in lifs}

    u, v = per_lif(), per_lif()
    # the summed activation (and fan-ins) of a LIF with several paths into it
    a_sum, c_sum = ({L.node.name: np.zeros((batch, L.size), dtype=np.int64)
                     for L in lifs if len(L.terms) > 1} for _ in range(2))
    spikes = {k: a[:, b0:b1] for k, a in out.spikes.items()}
    # Source outputs of the previous step (what this step's synapses read), flat [B, size]
    # in the sources' own narrow dtypes (the kernels widen each value to int64): the input
    # frame itself, a LIF's row of the spike record (uint8 for single spikes).
    if arr.dtype == np.bool_ or (arr.dtype.kind == "u" and arr.dtype.itemsize == 8):
        arr = arr.astype(np.uint8 if arr.dtype == np.bool_ else np.int64)
    in_zero = np.zeros((batch, plan.sources[plan.input.name]), dtype=arr.dtype)
    zeros = {k: np.zeros((batch, a.shape[2]), dtype=a.dtype) for k, a in spikes.items()}
    prev: dict[str, np.ndarray] = dict(zeros)
    u_rec = {k: a[:, b0:b1] for k, a in out.u_rec.items()} if out.u_rec is not None else None
    v_rec = {k: a[:, b0:b1] for k, a in out.v_rec.items()} if out.v_rec is not None else None

    # every operator once per step, each after what feeds it (the plan's order is
    # topological): (key, operator, feeding operator or None for a source, source key,
    # fan-in counts wanted)
    fused = set(plan.fused.values())  # run by their LIF
    steps = [(key, op, ops.get(plan.op_input[key]), plan.op_input[key], key in plan.need_cnt)
             for key, op in ops.items() if key not in fused]
    done: dict[str, tuple[int, int]] = {}
    # per LIF, what its step reads; its tallies per step (synops, structural synops, active
    # updates, spikes, max fan-in) go to a list, one array at the end (cheaper per step)
    tallies: dict[str, list[tuple[int, int, int, int, int]]] = {n: [] for n in names}
    lif_steps = []
    for L in lifs:
        name = L.node.name
        conv = plan.fused.get(name)
        src = plan.op_input[conv] if conv is not None else None
        lif_steps.append((L, name, u[name], v[name], spikes[name], int(L.node.reset_interval) > 0,
                        conv, ops[conv] if conv is not None else None, src,
                        ops.get(src) if src is not None else None,
                        ops[L.terms[0]] if len(L.terms) == 1 else None, tallies[name]))

    for n in range(n_steps):
        # out[input][n-1] = x[n-1]; zeros at n == 0 and once the frames run out
        x_in = in_zero
        if 1 <= n <= n_frames:
            x_in = np.ascontiguousarray(arr[n - 1].reshape(batch, in_zero.shape[1]))
        prev[plan.input.name] = x_in
        if n >= 1:  # all LIFs update from step n-1 outputs (their spike record)
            for name in names:
                prev[name] = spikes[name][n - 1]
        for key, op, src_op, src, need in steps:
            done[key] = op.apply(src_op.out if src_op is not None else prev[src], need, n)
        for (L, name, uL, vL, rec, resets, conv, conv_op, src, src_op, term,
             tally) in lif_steps:
            if resets:  # before this step's input is integrated
                _reset_state(L.node, n, uL, vL)
            if conv_op is not None:
                s, s_all, n_spk, n_act, pk = conv_op.apply_lif(
                    src_op.out if src_op is not None else prev[src], L, uL, vL, rec[n])
                done[conv] = (s, s_all)
            elif term is not None:
                n_spk, n_act, pk = _lif_step(L, term.out, term.cnt, uL, vL, rec[n],
                                             graph.formats)
            else:  # several paths into one LIF: their activations (and fan-ins) add up
                a, c = a_sum[name], c_sum[name]
                np.copyto(a, ops[L.terms[0]].out)
                np.copyto(c, ops[L.terms[0]].cnt)
                for t in L.terms[1:]:
                    a += ops[t].out
                    c += ops[t].cnt
                n_spk, n_act, pk = _lif_step(L, a, c, uL, vL, rec[n], graph.formats)
            syn = syn_all = 0
            for key in L.path_ops:
                s, s_all = done[key]
                syn += s
                syn_all += s_all
            tally.append((syn, syn_all, n_act, n_spk, pk))
            if u_rec is not None and v_rec is not None:
                u_rec[name][n] = uL
                v_rec[name][n] = vL

    per_step = {k: np.array(t, dtype=np.int64).reshape(n_steps, 5) for k, t in tallies.items()}
    synops, synops_dense, updates, counts = (
        {k: np.ascontiguousarray(t[:, i]) for k, t in per_step.items()} for i in range(4))
    peak = {k: int(t[:, 4].max(initial=0)) for k, t in per_step.items()}

    # drop the views of the spike record and the operators' buffers now, not whenever
    # the cyclic GC would find them (hundreds of MB per large call)
    prev.clear()
    ops.clear()
    steps.clear()
    lif_steps.clear()
    return synops, synops_dense, updates, counts, peak


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
