"""Fault injection for the comparator tests (imported as a plain module: pytest puts this
folder on sys.path).

A :class:`FaultyBackend` wraps a real registered backend and perturbs what that one backend
executes; the library code is untouched. It is installed by replacing
``snn2hw.backends.registry.get`` (the one lookup every pipeline stage, ``compare``
included, goes through) with :func:`registry_with_fault`, so ``snn2hw compare`` runs the
real code path end to end and only the named backend is faulty.

The five faults (each a real change to what the backend computes, so every downstream
layer sees it too):

- ``weight``: one stored weight of ``d1`` raised by one LSB of the *effective* weight
  (``2**k``, ``k = 8 - num_weight_bits + mixed``, docs/qgraph.md "Dense weight
  preparation"), checked to move the effective weight by exactly one LSB;
- ``threshold``: ``vth`` of layer ``h`` lowered by one;
- ``decay``: ``du`` of layer ``h`` lowered by one;
- ``input``: one input value flipped (0 <-> 1) in one frame of one sample. The sample is
  found by its *content*, not its batch position, so it stays faulty when ``compare``
  re-runs the diverging sample alone (batch of one) to record u and v;
- ``delay``: one extra step of delay on layer ``h``'s input path. A hop's delay is a
  property of the path (source -> ops -> LIF), so an identity dense op would add none;
  instead the path ``x -> d1 -> h`` becomes ``x -> relay_w -> relay -> d1 -> h`` where
  ``relay`` is a LIF that re-emits its binary input one step later exactly (identity
  weight, ``du = dv = 4095`` so it keeps no state, ``vth = 0`` so one input spike, ``u = v
  = 64``, crosses ``0 << 6``). ``h`` then integrates frame k at step k+2 instead of k+1,
  and ``o`` (and the recurrence) see ``h``'s shifted spikes: the delay propagates, which a
  post-processing shift of ``h``'s recorded spikes would not do.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import numpy as np

from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph
from snn2hw.quant.weights import effective_dense_weight

FAULTS = ("weight", "threshold", "decay", "input", "delay")

# The sample and the input spike the ``input`` fault flips: (sample, frame, input neuron).
INPUT_FLIP = (1, 1, 1)


def fixed_graph() -> QGraph:
    """Input (4 binary) -> d1 -> h (3 LIF, recurrent through ``rec``) -> d2 -> o (2 LIF).

    Built so that every fault surely changes a spike: ``d1`` is excitatory and its
    ``weight_exp = 6`` makes one input spike worth ``u += 4096 * w``; ``h`` decays u and v
    by exactly 3/4 (``du = 1023``, ``dv = 1024``), so for the first steps u and v stay
    multiples of 64. Sample 1 drives neuron 0 of ``h`` with input 0 (weight 3) at frames
    0-2: u = 12288, 21504, 28416 and v = 12288, 30720, 51456 at steps 1-3, and ``vth = 804``
    puts v(step 3) exactly on the threshold (51456 = 804 << 6, no spike: the comparison is
    strict). Any fault that raises v there by one or more (a heavier weight, a lower
    threshold, a slower decay: u_prev >= 4096 so du - 1 adds >= 1 to u, one more input
    spike) makes it spike; every input is excitatory, so no change can lower v first
    without an earlier spike differing.
    """
    def lif(name: str, n: int, du: int, dv: int, vth: int) -> LIFNode:
        z = np.zeros(n, np.int64)
        return LIFNode(name, (n,), du=du, dv=dv, vth=vth, bias_mant=z, bias_exp=z.copy())

    nodes = [
        InputNode("x", (4,), message_bits=0),
        DenseNode("d1", np.array([[3, 2, 0, 1], [1, 3, 2, 0], [0, 1, 3, 2]]), 6, 8),
        lif("h", 3, du=1023, dv=1024, vth=804),
        DenseNode("rec", np.array([[0, -2, 2], [2, 0, -2], [-2, 2, 0]]), 6, 8),
        DenseNode("d2", np.array([[2, 1, 0], [0, 1, 2]]), 6, 8),
        lif("o", 2, du=1023, dv=1024, vth=100),
        OutputNode("out", (2,)),
    ]
    edges = [("x", "d1"), ("d1", "h"), ("h", "rec"), ("rec", "h"), ("h", "d2"),
             ("d2", "o"), ("o", "out")]
    return QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 6).validate()


def fixed_inputs() -> np.ndarray:
    """Binary frames ``[6 frames, 3 samples, 4 inputs]``, three distinct samples."""
    s0 = [[0, 0, 1, 1], [0, 0, 0, 1], [0, 0, 1, 0], [1, 0, 0, 1], [0, 1, 1, 0], [0, 0, 0, 0]]
    s1 = [[1, 0, 0, 0], [1, 0, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0], [1, 1, 0, 0], [0, 0, 0, 1]]
    s2 = [[0, 1, 1, 1], [1, 1, 1, 1], [0, 0, 0, 0], [0, 1, 0, 0], [1, 0, 1, 0], [0, 0, 0, 1]]
    return np.array([s0, s1, s2], np.int64).transpose(1, 0, 2).copy()


def effective_lsb(node: DenseNode) -> int:
    """One LSB of the effective weight ``W'`` of a dense node."""
    w = np.asarray(node.weight)
    mixed = int(w.min() < 0 < w.max())
    return 2 ** (8 - node.num_weight_bits + mixed)


def faulty_graph(graph: QGraph, fault: str) -> QGraph:
    """A faulted copy of ``graph`` (``input`` leaves the graph alone)."""
    g = copy.deepcopy(graph)
    if fault == "weight":
        d1 = g.nodes["d1"]
        before = effective_dense_weight(d1.weight, d1.num_weight_bits)
        d1.weight = d1.weight.copy()
        d1.weight[0, 0] += effective_lsb(d1)
        delta = effective_dense_weight(d1.weight, d1.num_weight_bits) - before
        assert delta.sum() == effective_lsb(d1) and np.count_nonzero(delta) == 1
    elif fault == "threshold":
        g.nodes["h"].vth -= 1
    elif fault == "decay":
        g.nodes["h"].du -= 1
    elif fault == "delay":
        n_in = g.nodes["x"].shape[0]
        z = np.zeros(n_in, np.int64)
        g.nodes["relay_w"] = DenseNode("relay_w", np.eye(n_in, dtype=np.int64), 0, 8)
        g.nodes["relay"] = LIFNode("relay", (n_in,), du=4095, dv=4095, vth=0,
                                   bias_mant=z, bias_exp=z.copy())
        order = ["x", "relay_w", "relay"] + [k for k in g.nodes if k not in
                                              ("x", "relay_w", "relay")]
        g.nodes = {k: g.nodes[k] for k in order}
        g.edges = [("x", "relay_w"), ("relay_w", "relay"), ("relay", "d1"),
                   *(e for e in g.edges if e != ("x", "d1"))]
    elif fault != "input":
        raise ValueError(f"unknown fault {fault!r}")
    return g.validate()


def faulty_inputs(ints: np.ndarray, clean: np.ndarray) -> np.ndarray:
    """``ints`` with the ``input`` fault applied to every column that holds the targeted
    sample of ``clean`` (found by content)."""
    sample, frame, neuron = INPUT_FLIP
    target = clean[:, sample]
    out = np.array(ints, copy=True)
    for b in range(out.shape[1]):
        if np.array_equal(out[: target.shape[0], b], target):
            out[frame, b, neuron] = 1 - out[frame, b, neuron]
    return out


@dataclass
class _FaultyRun:
    inner: Any
    fault: str
    clean_inputs: np.ndarray

    def run(self, ints, num_steps=None, record_state=False):
        if self.fault == "input":
            ints = faulty_inputs(np.asarray(ints), self.clean_inputs)
        return self.inner.run(ints, num_steps, record_state)


class FaultyBackend:
    """The registered backend ``inner`` with one fault: same name and capabilities, so the
    comparator cannot tell it from the real one except by what it computes."""

    def __init__(self, inner: Any, fault: str, clean_inputs: np.ndarray) -> None:
        self.inner = inner
        self.fault = fault
        self.clean_inputs = clean_inputs
        for attr in ("name", "node_kinds", "records_state", "uses_device", "counts_activity",
                     "splits_batches"):
            setattr(self, attr, getattr(inner, attr))

    def prepare(self, graph: QGraph, device: str = "cpu") -> _FaultyRun:
        return _FaultyRun(self.inner.prepare(faulty_graph(graph, self.fault), device),
                          self.fault, self.clean_inputs)

    def run(self, graph, ints, num_steps=None, record_state=False, device="cpu"):
        return self.prepare(graph, device).run(ints, num_steps, record_state)


def registry_with_fault(real_get, name: str, fault: str, clean_inputs: np.ndarray):
    """A replacement for ``registry.get``: backend ``name`` faulty, every other one real."""
    def get(backend: str):
        real = real_get(backend)
        return FaultyBackend(real, fault, clean_inputs) if backend == name else real

    return get


def expected_first_divergence(graph: QGraph, ints: np.ndarray, fault: str) -> dict[str, Any]:
    """The first divergence between the clean graph and its faulted twin, worked out here
    independently of ``snn2hw.pipeline.compare`` from two event-simulator runs with state
    (earliest step, then sample, then layer order, then neuron)."""
    from snn2hw.backends import event

    n = graph.num_steps + graph.depth()
    bad_ints = faulty_inputs(ints, ints) if fault == "input" else ints
    a = event.run(graph, ints, num_steps=n, record_state=True)
    b = event.run(faulty_graph(graph, fault), bad_ints, num_steps=n, record_state=True)
    hits = []
    for order, lif in enumerate(graph.lif_nodes):
        for step, sample, neuron in np.argwhere(a.spikes[lif.name] != b.spikes[lif.name]):
            hits.append((int(step), int(sample), order, int(neuron), lif.name))
    assert hits, f"fault {fault!r} changes no spike: the test would prove nothing"
    step, sample, _, neuron, layer = min(hits)

    def at(r, key):
        return int(getattr(r, key)[layer][step, sample, neuron])

    return {
        "sample": sample, "step": step, "layer": layer, "neuron": neuron,
        "spike": (int(a.spikes[layer][step, sample, neuron]),
                  int(b.spikes[layer][step, sample, neuron])),
        "u": (at(a, "u"), at(b, "u")), "v": (at(a, "v"), at(b, "v")),
        "changed_spikes": sum(int((a.spikes[k.name] != b.spikes[k.name]).sum())
                              for k in graph.lif_nodes),
    }
