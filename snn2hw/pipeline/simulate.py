"""Run a quantized graph on one integer backend over samples; ``snn2hw simulate``.

Backends come from :mod:`snn2hw.backends.registry` (``torch-int``, ``event``, ``lava``,
``onnx``). All take the same integer input frames and return a
:class:`snn2hw.backends.base.SimResult` (spikes per LIF layer ``[N, B, ...]``).
:func:`run_backend` dispatches by name, feeds the samples in batches where the backend
allows it and joins the batches with :meth:`SimResult.concat`.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from snn2hw.backends import registry
from snn2hw.backends.base import SimResult
from snn2hw.common.errors import ResourceError, Snn2hwError
from snn2hw.common.readout import classify
from snn2hw.pipeline.samples import (
    Samples,
    SampleSpec,
    float_frames,
    load_samples,
    resolve_sample_files,
)
from snn2hw.quant.inputs import InputFormat, check_integer_frames
from snn2hw.quant.qgraph import QGraph

# Former name of SimResult, kept for callers that import it from here (chip.energy,
# reporting.report, tests/chip): same class, same constructor.
BackendRun = SimResult


def run_backend(
    name: str,
    graph: QGraph,
    ints: np.ndarray,
    *,
    num_steps: int | None = None,
    device: str = "cpu",
    record_state: bool = False,
    batch_size: int = 64,
) -> SimResult:
    """Run ``graph`` on backend ``name`` over integer frames ``[F, B, ...]``: in batches of
    ``batch_size`` where the backend splits batches, else all at once. ``device`` only
    reaches backends that use one (torch-int); ``wall_s`` covers preparation and every
    batch. Unknown names and unsupported node kinds are refused before any work. Inside a
    sharded session (``--workers``, torchrun) the samples are split across the ranks
    (:mod:`snn2hw.pipeline.sharding`) and the same result comes back."""
    from snn2hw.pipeline.sharding import active_pool  # sharding runs shards with run_local

    pool = active_pool()
    if pool is None:
        return run_local(name, graph, ints, num_steps=num_steps, device=device,
                         record_state=record_state, batch_size=batch_size)
    check_memory(graph, ints, num_steps, record_state)  # rank 0 holds every shard's result
    return pool.run(name, graph, ints, num_steps=num_steps, device=device,
                    record_state=record_state, batch_size=batch_size)


def run_local(
    name: str,
    graph: QGraph,
    ints: np.ndarray,
    *,
    num_steps: int | None = None,
    device: str = "cpu",
    record_state: bool = False,
    batch_size: int = 64,
) -> SimResult:
    """:func:`run_backend` in this process only (what each rank runs on its shard)."""
    backend = registry.get(name)
    check_memory(graph, ints, num_steps, record_state)
    t0 = time.perf_counter()
    prepared = backend.prepare(graph, device if backend.uses_device else "cpu")
    step = batch_size if backend.splits_batches else max(1, ints.shape[1])
    starts = range(0, ints.shape[1], step) or range(1)  # no samples: the backend says so
    parts = [prepared.run(ints[:, i : i + step], num_steps, record_state) for i in starts]
    return SimResult.concat(parts, wall_s=time.perf_counter() - t0)


def memory_budget() -> int:
    """Bytes a run may use for its records: ``SNN2HW_MEMORY_BUDGET`` (bytes) or half of the
    memory the system has available now (``/proc/meminfo``; 8 GiB where unknown)."""
    env = os.environ.get("SNN2HW_MEMORY_BUDGET")
    if env:
        return int(env)
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024 // 2
    except OSError:
        pass
    return 8 * 2**30


def check_memory(graph: QGraph, ints: np.ndarray, num_steps: int | None,
                 record_state: bool) -> None:
    """Refuse, before allocating, a run whose per-step records of every LIF neuron and
    sample (spikes; u and v with ``record_state``) would exceed :func:`memory_budget`."""
    steps = int(num_steps if num_steps is not None else graph.num_steps + graph.depth())
    # uint8 spikes (int32 counts above 255 for multi-spike nodes), int64 u and v
    per_neuron = sum(int(np.prod(n.shape)) * ((1 if n.max_spikes <= 255 else 4)
                                              + (16 if record_state else 0))
                     for n in graph.lif_nodes)
    neurons = sum(int(np.prod(n.shape)) for n in graph.lif_nodes)
    need = int(steps * int(ints.shape[1]) * per_neuron)
    budget = memory_budget()
    if need > budget:
        fit = max(1, int(budget // max(1, steps * per_neuron)))
        raise ResourceError(
            f"this run would record {need / 2**30:.1f} GiB ({steps} steps x "
            f"{ints.shape[1]} samples x {neurons} neurons{' with u and v' if record_state else ''})"
            f", over the {budget / 2**30:.1f} GiB budget; use --samples {fit} or fewer "
            "(or set SNN2HW_MEMORY_BUDGET)"
        )


def predictions(graph: QGraph, spikes: dict[str, np.ndarray]) -> np.ndarray:
    """Argmax of the output layer's spike counts over all steps (ties: lowest index)."""
    return classify(spikes[graph.source_of_output(graph.output_nodes[0].name)])


def graph_samples(graph: QGraph, n: int | None, split: str = "test") -> Samples:
    """The inputs recorded in ``graph.metadata`` by export, regenerated deterministically."""
    meta = graph.metadata
    if "samples" not in meta or "input_format" not in meta:
        raise Snn2hwError("this quantized graph records no input samples; pass --inputs FRAMES.npy")
    spec = resolve_sample_files(SampleSpec.from_dict(meta["samples"]), graph.folder)
    return load_samples(spec, InputFormat.from_dict(meta["input_format"]), split, n)


def layer_summary(graph: QGraph, run: SimResult) -> dict[str, dict[str, float]]:
    """Per LIF layer: spikes per sample, rate, and (event backend) SynOps per sample."""
    out: dict[str, dict[str, float]] = {}
    for lif in graph.lif_nodes:
        s = run.spikes[lif.name]
        n_samples = s.shape[1]
        row = {
            # events, not payloads: a multi-spike neuron's count is one event
            "spikes_per_sample": float(np.count_nonzero(s)) / n_samples,
            "rate": float(np.count_nonzero(s)) / max(s.size, 1),
        }
        if run.counters is not None:
            c = run.counters
            row["synops_per_sample"] = float(c.synops[lif.name].sum()) / n_samples
            row["synops_dense_per_sample"] = float(c.synops_dense[lif.name].sum()) / n_samples
        out[lif.name] = row
    return out


@dataclass
class Simulation:
    """What ``snn2hw simulate`` reports: accuracy, wall time and activity per LIF layer."""

    backend: str
    samples: int
    accuracy: float | None
    wall_s: float
    layers: dict[str, dict[str, float]]

    def to_dict(self) -> dict[str, object]:
        return {
            "backend": self.backend,
            "samples": self.samples,
            "accuracy": self.accuracy,
            "wall_s": self.wall_s,
            "layers": self.layers,
        }

    def describe(self) -> str:
        """One line for the run, one per layer (SynOps where the backend counts them)."""
        lines = [f"{self.backend}: accuracy {self.accuracy} on {self.samples} samples, "
                 f"{self.wall_s:.2f} s"]
        for name, row in self.layers.items():
            extra = (
                f", {row['synops_per_sample']:.0f} SynOps/sample"
                if "synops_per_sample" in row else ""
            )
            lines.append(
                f"  {name}: {row['spikes_per_sample']:.1f} spikes/sample "
                f"(rate {row['rate']:.4f}){extra}"
            )
        return "\n".join(lines)


def simulate_artifact(
    qgraph: str | Path,
    backend: str,
    samples: int,
    *,
    device: str = "auto",
    inputs_file: str | None = None,
    clip_inputs: bool = False,
) -> Simulation:
    """``snn2hw simulate``: run the graph in ``qgraph`` on ``backend`` over the first
    ``samples`` of its recorded inputs, or of integer frames from ``inputs_file``: those are
    refused when a value is out of the input's range (unless ``clip_inputs``), and all their
    frames run, plus the hop depth of the graph so the last frame reaches the output."""
    from snn2hw.training.runtime import resolve_device

    g = QGraph.load(qgraph)
    num_steps = None
    if inputs_file:
        smp = integer_samples(g, inputs_file, samples, clip=clip_inputs)
        num_steps = int(smp.ints.shape[0]) + g.depth()
    else:
        smp = graph_samples(g, samples)
    dev = str(resolve_device(device))
    run = run_backend(backend, g, smp.ints, num_steps=num_steps, device=dev)
    acc = None
    if smp.labels is not None:
        acc = float((predictions(g, run.spikes) == smp.labels).mean())
    return Simulation(backend, int(smp.ints.shape[1]), acc, run.wall_s, layer_summary(g, run))


def integer_samples(graph: QGraph, inputs_file: str | Path, n: int | None,
                    *, clip: bool = False) -> Samples:
    """Integer frames ``[T, B, *input_shape]`` from a ``.npy`` file, checked against the
    graph's input (shape, integers in range)."""
    fmt = InputFormat(graph.input_node.message_bits, 1.0)
    frames, labels = float_frames(SampleSpec(inputs_file=str(inputs_file)), "test", n)
    raw = frames.numpy()  # float32 holds every in-range integer exactly
    want = tuple(graph.input_node.shape)
    if tuple(raw.shape[2:]) != want:
        raise Snn2hwError(f"{inputs_file}: frames are [T, B, {', '.join(map(str, raw.shape[2:]))}]"
                          f" but the graph's input is {list(want)}; pass [T, B, *{list(want)}]")
    ints = check_integer_frames(raw, fmt.message_bits, clip=clip, what=str(inputs_file))
    return Samples(torch.from_numpy(ints.astype(np.float32)), ints, labels, fmt)
