"""The backend contract: the :class:`Backend` protocol and :class:`SimResult`, the one
result type every integer backend returns (docs/qgraph.md "Outputs a backend returns").

Holds: :class:`SimResult` (spikes per LIF layer ``[N, B, ...]``, optional ``u``/``v``
traces, wall time, and typed backend extras), :class:`ActivityCounters` (the event
simulator's per-layer activity), the :class:`Backend` and :class:`PreparedRun` protocols,
:class:`UnsupportedNodeError` and :func:`check_node_kinds`, :class:`UnsupportedFormatsError`
and :func:`check_int64_formats` (what every int64 backend needs of the graph's formats).

May import: numpy and ``snn2hw.common``, ``snn2hw.quant`` (types only). It holds no
arithmetic of any backend; the backend modules import it, never each other, and never
pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, runtime_checkable

import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.common.readout import decide
from snn2hw.quant.bounds import check_graph
from snn2hw.quant.qgraph import QGraph, max_delay

__all__ = [
    "PreparingBackend",
    "ActivityCounters",
    "Backend",
    "PreparedRun",
    "SimResult",
    "UnsupportedFormatsError",
    "UnsupportedNodeError",
    "check_int64_formats",
    "FEATURES",
    "check_node_kinds",
    "graph_features",
]

Traces = dict[str, np.ndarray]


# ----- activity counters ------------------------------------------------------------------
@dataclass
class ActivityCounters:
    """Activity of one run per receiving LIF layer, summed over the batch (the event
    simulator's definitions, see :mod:`snn2hw.backends.event`): per step ``[N]`` int64
    ``synops`` (events through non-zero weights), ``synops_dense`` (through every
    structural synapse), ``neuron_updates`` (active neurons), ``spike_counts``; per layer
    ``macs_dense`` (MACs of a dense implementation per step) and ``peak_fanin``."""

    KEYS: ClassVar[tuple[str, ...]] = (
        "synops", "synops_dense", "neuron_updates", "spike_counts", "macs_dense", "peak_fanin"
    )

    synops: dict[str, np.ndarray]
    synops_dense: dict[str, np.ndarray]
    neuron_updates: dict[str, np.ndarray]
    spike_counts: dict[str, np.ndarray]
    macs_dense: dict[str, int]
    peak_fanin: dict[str, int]

    @classmethod
    def merge(cls, parts: Sequence[ActivityCounters]) -> ActivityCounters:
        """Counters of consecutive batches of the same run: per-step counts add up,
        ``macs_dense`` is a property of the graph (kept), ``peak_fanin`` is the maximum."""
        first = parts[0]

        def total(key: str) -> dict[str, np.ndarray]:
            return {k: sum(getattr(p, key)[k] for p in parts) for k in getattr(first, key)}

        return cls(
            synops=total("synops"),
            synops_dense=total("synops_dense"),
            neuron_updates=total("neuron_updates"),
            spike_counts=total("spike_counts"),
            macs_dense=dict(first.macs_dense),
            peak_fanin={k: max(p.peak_fanin[k] for p in parts) for k in first.peak_fanin},
        )

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """``{counter name: {layer: value}}`` (the shape of the old ``stats`` dict)."""
        return {key: getattr(self, key) for key in self.KEYS}

    @classmethod
    def from_dict(cls, stats: dict[str, dict[str, Any]]) -> ActivityCounters:
        """Inverse of :meth:`as_dict`; every key of :attr:`KEYS` is required."""
        missing = [k for k in cls.KEYS if k not in stats]
        if missing:
            raise ValueError(f"activity counters miss {missing}")
        return cls(**{k: stats[k] for k in cls.KEYS})


# ----- the result ---------------------------------------------------------------------------
@dataclass(init=False, eq=False)
class SimResult:
    """What every backend's run returns.

    ``backend``: registry name of the backend that produced it; ``spikes``: every LIF node
    -> uint8 ``[N, B, *shape]``; ``u``, ``v``: int64 traces of the same shape after each
    step's reset (only with ``record_state`` on a backend that records state, else None);
    ``wall_s``: seconds for the run; ``device``: where it ran; ``counters``: activity
    counters (event backend only, else None).

    Lava extras (None elsewhere): ``build_s``, the part of ``wall_s`` spent building,
    compiling and starting the Lava runtime; ``lava_steps``, Lava time steps run
    (``B * N``); ``buffer_resets``, connection buffers zeroed between samples.

    Compatibility for callers written against the former ``BackendRun`` and
    ``EventResult``: positional ``(backend, spikes, u, v, wall_s)``; the keyword
    ``stats=`` (a ``{counter: {layer: value}}`` dict, turned into ``counters``); the
    read-only ``stats`` property (``counters.as_dict()``, ``{}`` without counters); and
    read-only properties ``synops``, ``synops_dense``, ``neuron_updates``, ``spike_counts``,
    ``macs_dense``, ``peak_fanin`` (``AttributeError`` when there are no counters).
    """

    backend: str
    spikes: Traces
    u: Traces | None
    v: Traces | None
    wall_s: float
    device: str
    counters: ActivityCounters | None
    build_s: float | None
    lava_steps: int | None
    buffer_resets: int | None

    def __init__(
        self,
        backend: str,
        spikes: Traces,
        u: Traces | None = None,
        v: Traces | None = None,
        wall_s: float = 0.0,
        *,
        device: str = "cpu",
        counters: ActivityCounters | None = None,
        build_s: float | None = None,
        lava_steps: int | None = None,
        buffer_resets: int | None = None,
        stats: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        if stats and counters is not None:
            raise ValueError("pass counters or stats, not both")
        self.backend = backend
        self.spikes = spikes
        self.u = u
        self.v = v
        self.wall_s = float(wall_s)
        self.device = device
        self.counters = ActivityCounters.from_dict(stats) if stats else counters
        self.build_s = build_s
        self.lava_steps = lava_steps
        self.buffer_resets = buffer_resets

    # ----- output decision -------------------------------------------------------------
    def predictions(self, graph: QGraph) -> np.ndarray:
        """Class per sample ``[B]``: argmax of the output LIF's spike counts summed over all
        steps (ties: lowest index, :mod:`snn2hw.common.readout`). Uses the graph's first
        output node."""
        outs = graph.output_nodes
        if not outs:
            raise GraphError("quantized graph has no output node")
        src = graph.source_of_output(outs[0].name)
        if src not in self.spikes:
            raise GraphError(
                f"output node '{outs[0].name}' reads '{src}', which is not a LIF node of this run"
            )
        s = self.spikes[src]
        return decide(s.reshape(s.shape[0], s.shape[1], -1).sum(axis=0, dtype=np.int64))

    # ----- batches -----------------------------------------------------------------------
    @classmethod
    def concat(cls, parts: Sequence[SimResult], wall_s: float | None = None) -> SimResult:
        """One result from the results of consecutive batches of the same run: traces are
        concatenated along the batch axis, counters merged (:meth:`ActivityCounters.merge`),
        Lava counts added. ``wall_s`` defaults to the sum of the parts'."""
        if not parts:
            raise ValueError("no results to concatenate")
        first = parts[0]

        def cat(traces: list[Traces | None]) -> Traces | None:
            if any(t is None for t in traces):
                return None
            return {k: np.concatenate([t[k] for t in traces], axis=1) for k in traces[0]}

        def add(values: Iterable[Any]) -> Any:
            vals = list(values)
            return None if any(v is None for v in vals) else sum(vals)

        counters = [p.counters for p in parts]
        return cls(
            first.backend,
            cat([p.spikes for p in parts]),
            cat([p.u for p in parts]),
            cat([p.v for p in parts]),
            sum(p.wall_s for p in parts) if wall_s is None else wall_s,
            device=first.device,
            counters=(
                None
                if any(c is None for c in counters)
                else ActivityCounters.merge([c for c in counters if c is not None])
            ),
            build_s=add(p.build_s for p in parts),
            lava_steps=add(p.lava_steps for p in parts),
            buffer_resets=add(p.buffer_resets for p in parts),
        )

    # ----- compatibility aliases (read-only) ---------------------------------------------------
    @property
    def stats(self) -> dict[str, dict[str, Any]]:
        """The counters as ``{counter: {layer: value}}``; ``{}`` without counters."""
        return self.counters.as_dict() if self.counters is not None else {}

    def _counter(self, key: str) -> dict[str, Any]:
        if self.counters is None:
            raise AttributeError(
                f"the {self.backend or 'backend'} run has no activity counter '{key}' "
                "(only the event backend counts activity)"
            )
        return getattr(self.counters, key)

    @property
    def synops(self) -> dict[str, np.ndarray]:
        return self._counter("synops")

    @property
    def synops_dense(self) -> dict[str, np.ndarray]:
        return self._counter("synops_dense")

    @property
    def neuron_updates(self) -> dict[str, np.ndarray]:
        return self._counter("neuron_updates")

    @property
    def spike_counts(self) -> dict[str, np.ndarray]:
        return self._counter("spike_counts")

    @property
    def macs_dense(self) -> dict[str, int]:
        return self._counter("macs_dense")

    @property
    def peak_fanin(self) -> dict[str, int]:
        return self._counter("peak_fanin")


# ----- the protocol ---------------------------------------------------------------------------
class UnsupportedNodeError(GraphError):
    """A graph holds a node kind the chosen backend does not execute."""


FEATURES = ("delay", "multi_spike", "periodic_reset")
"""Optional parts of docs/qgraph.md a backend declares it executes: synaptic delays,
multi-spike (graded) LIF output and periodic state reset."""


def graph_features(graph: QGraph) -> dict[str, str]:
    """The optional features ``graph`` uses, each with the first node that uses it."""
    used: dict[str, str] = {}
    for name, node in graph.nodes.items():
        if max_delay(node) > 0:
            used.setdefault("delay", name)
        if int(getattr(node, "max_spikes", 1)) > 1:
            used.setdefault("multi_spike", name)
        if int(getattr(node, "reset_interval", 0)) > 0:
            used.setdefault("periodic_reset", name)
    return used


def check_node_kinds(graph: QGraph, backend: str, kinds: Iterable[str],
                     features: Iterable[str] = ()) -> None:
    """Refuse, before any work, a graph with a node whose kind ``backend`` does not execute,
    or that uses an optional feature (:data:`FEATURES`) the backend does not declare:
    :class:`UnsupportedNodeError` naming the node, its kind or feature and the backend."""
    have = frozenset(features)
    for feature, name in graph_features(graph).items():
        if feature not in have:
            what = {"delay": "synaptic delays", "multi_spike": "multi-spike output",
                    "periodic_reset": "periodic state reset"}[feature]
            raise UnsupportedNodeError(
                f"node '{name}' uses {what}, which backend '{backend}' does not execute; "
                "use a backend that does (snn2hw backends) or a graph without them"
            )
    allowed = frozenset(kinds)
    for name, node in graph.nodes.items():
        kind = str(getattr(node, "kind", type(node).__name__))
        if kind not in allowed:
            raise UnsupportedNodeError(
                f"node '{name}' has kind '{kind}', which backend '{backend}' does not "
                f"execute (it executes: {', '.join(sorted(allowed))})"
            )
    # a graph quantized for a chip with limits (its metadata) must provably stay inside
    # them: ChipLimitError naming the layer and the limit (docs/loihi-edges.md)
    check_graph(graph)


class UnsupportedFormatsError(GraphError):
    """A graph was made for number formats the chosen backend does not implement."""


def check_int64_formats(graph: QGraph, backend: str) -> None:
    """Refuse formats an int64 implementation of docs/qgraph.md cannot execute exactly:
    the decay products ``u · (2^decay_bits - du - 1)`` and ``v · (2^decay_bits - dv)`` must
    stay inside int64, so ``u_bits + decay_bits`` and ``v_bits + decay_bits`` are at most 62
    (Loihi: 24 + 12). :class:`UnsupportedFormatsError` names the field and its value."""
    f = graph.formats
    key = f.int64_decay_overflow()
    if key is not None:
        raise UnsupportedFormatsError(
            f"backend '{backend}' cannot run target '{graph.target}': {key} "
            f"{getattr(f, key)} with decay_bits {f.decay_bits} overflows its 64-bit decay "
            f"products ({key} + decay_bits must be <= 62)"
        )


@runtime_checkable
class PreparedRun(Protocol):
    """A graph prepared once by a backend; stream batches of integer frames through it."""

    def run(
        self, ints: Any, num_steps: int | None = None, record_state: bool = False
    ) -> SimResult: ...


@runtime_checkable
class Backend(Protocol):
    """An integer backend: an independent execution of docs/qgraph.md.

    ``name``: registry name; ``node_kinds``: the qgraph node kinds it executes (a graph
    with any other kind is refused up front); ``features``: the optional parts of
    docs/qgraph.md it executes (:data:`FEATURES`; a graph using another is refused);
    ``records_state``: can return ``u``/``v``
    (a backend without it ignores ``record_state`` and returns ``u = v = None``);
    ``uses_device``: honours ``device`` (the others always run on the CPU);
    ``counts_activity``: fills :attr:`SimResult.counters`; ``splits_batches``: a caller
    may feed the samples in batches and :meth:`SimResult.concat` the results (False: the
    backend wants every sample in one call, e.g. Lava streams them through one network).
    """

    name: str
    node_kinds: frozenset[str]
    features: frozenset[str]
    records_state: bool
    uses_device: bool
    counts_activity: bool
    splits_batches: bool

    def prepare(self, graph: QGraph, device: str = "cpu") -> PreparedRun:
        """Check the node kinds, validate and prepare ``graph`` once."""
        ...

    def run(
        self,
        graph: QGraph,
        ints: Any,
        num_steps: int | None = None,
        record_state: bool = False,
        device: str = "cpu",
    ) -> SimResult:
        """Run ``graph`` on integer frames ``[F, B, *input_shape]`` for ``num_steps`` steps
        (default ``graph.num_steps + graph.depth()``)."""
        ...


class PreparingBackend:
    """Shared glue of the backend classes: ``run`` is ``prepare`` then one run. Only the
    plumbing is shared; each backend's arithmetic stays its own (docs/qgraph.md)."""

    features: frozenset[str] = frozenset()

    def prepare(self, graph: QGraph, device: str = "cpu") -> PreparedRun:
        raise NotImplementedError

    def run(
        self,
        graph: QGraph,
        ints: Any,
        num_steps: int | None = None,
        record_state: bool = False,
        device: str = "cpu",
    ) -> SimResult:
        """Prepare ``graph`` and run it once on ``ints`` (see :class:`Backend`)."""
        return self.prepare(graph, device).run(ints, num_steps, record_state)
