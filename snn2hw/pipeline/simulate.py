"""Run a quantized graph on one integer backend over samples; ``snn2hw simulate``.

Backends: ``torch-int`` (snn2hw.backends.torch_int), ``event`` (snn2hw.backends.event),
``lava`` (snn2hw.backends.lava, needs lava-nc). All take the same integer input frames
and return spikes per LIF layer ``[N, B, ...]``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.common.errors import Snn2hwError
from snn2hw.pipeline.samples import Samples, SampleSpec, load_samples
from snn2hw.quant.inputs import InputFormat
from snn2hw.quant.qgraph import QGraph

BACKENDS = ("torch-int", "event", "lava", "onnx")


@dataclass
class _Spikes:
    spikes: dict[str, np.ndarray]


@dataclass
class BackendRun:
    backend: str
    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray] | None = None
    v: dict[str, np.ndarray] | None = None
    wall_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)  # activity counters (event backend)


def run_backend(
    name: str,
    graph: QGraph,
    ints: np.ndarray,
    *,
    num_steps: int | None = None,
    device: str = "cpu",
    record_state: bool = False,
    batch_size: int = 64,
) -> BackendRun:
    """Run ``graph`` on backend ``name`` over integer frames ``[F, B, ...]`` in batches."""
    if name not in BACKENDS:
        raise Snn2hwError(f"unknown backend '{name}'; known: {', '.join(BACKENDS)}")
    t0 = time.perf_counter()
    parts: list[Any] = []
    if name == "torch-int":
        from snn2hw.backends.torch_int import TorchIntNetwork

        net = TorchIntNetwork(graph, device=device)
        for i in range(0, ints.shape[1], batch_size):
            parts.append(net.run(ints[:, i : i + batch_size], num_steps, record_state))
    elif name == "event":
        from snn2hw.backends import event

        for i in range(0, ints.shape[1], batch_size):
            parts.append(event.run(graph, ints[:, i : i + batch_size], num_steps, record_state))
    elif name == "onnx":
        import tempfile
        from pathlib import Path

        from snn2hw.backends.onnx_runtime import OnnxIntRunner
        from snn2hw.exporters.onnx_int import export_qgraph_onnx

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "step.onnx"
            export_qgraph_onnx(graph, path)
            runner = OnnxIntRunner(path)
            parts.append(_Spikes(runner.run(ints, num_steps)))
    else:
        from snn2hw.backends import lava as lava_backend

        parts.append(lava_backend.run(graph, ints, num_steps=num_steps, record_state=record_state))
    wall = time.perf_counter() - t0

    def cat(attr: str) -> dict[str, np.ndarray] | None:
        first = getattr(parts[0], attr, None)
        if first is None:
            return None
        return {k: np.concatenate([getattr(p, attr)[k] for p in parts], axis=1) for k in first}

    stats: dict[str, Any] = {}
    if name == "event":
        for key in ("synops", "synops_dense", "neuron_updates", "spike_counts"):
            stats[key] = {k: sum(getattr(p, key)[k] for p in parts) for k in getattr(parts[0], key)}
        stats["macs_dense"] = dict(parts[0].macs_dense)
        stats["peak_fanin"] = {k: max(p.peak_fanin[k] for p in parts) for k in parts[0].peak_fanin}
    return BackendRun(name, cat("spikes"), cat("u"), cat("v"), wall, stats)


def predictions(graph: QGraph, spikes: dict[str, np.ndarray]) -> np.ndarray:
    """Argmax of the output layer's spike counts over all steps (ties: lowest index)."""
    src = graph.source_of_output(graph.output_nodes[0].name)
    counts = spikes[src].sum(axis=0).reshape(spikes[src].shape[1], -1)
    return counts.argmax(axis=1)


def graph_samples(graph: QGraph, n: int | None, split: str = "test") -> Samples:
    """The inputs recorded in ``graph.metadata`` by export, regenerated deterministically."""
    meta = graph.metadata
    if "samples" not in meta or "input_format" not in meta:
        raise Snn2hwError("this quantized graph records no input samples; pass --inputs FRAMES.npy")
    spec = SampleSpec.from_dict(meta["samples"])
    return load_samples(spec, InputFormat.from_dict(meta["input_format"]), split, n)


def layer_summary(graph: QGraph, run: BackendRun) -> dict[str, dict[str, float]]:
    """Per LIF layer: spikes per sample, rate, and (event backend) SynOps per sample."""
    out: dict[str, dict[str, float]] = {}
    for lif in graph.lif_nodes:
        s = run.spikes[lif.name]
        n_samples = s.shape[1]
        row = {
            "spikes_per_sample": float(s.sum()) / n_samples,
            "rate": float(s.mean()),
        }
        if run.stats:
            row["synops_per_sample"] = float(run.stats["synops"][lif.name].sum()) / n_samples
            row["synops_dense_per_sample"] = (
                float(run.stats["synops_dense"][lif.name].sum()) / n_samples
            )
        out[lif.name] = row
    return out
