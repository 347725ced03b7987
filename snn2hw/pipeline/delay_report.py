"""The export's "Synaptic delays" section: which delays align the merge points, and on a
target without delays what leaving them out costs.

Quantization (:func:`snn2hw.quant.align_delays.align_graph`) already inserted the delays
on a target that has them, or recorded the misalignment on one that has none. Here the
cost of that misalignment is **measured**: the deployed graph and its aligned twin (the same
integers with the delays inserted, :func:`~snn2hw.quant.align_delays.aligned_twin`) run in
torch integer mode on the same test samples, and the accuracy difference is the cost.
That needs a torch-int that executes delays (its backend ``features``); where it does not,
the section says so instead of giving a number.
"""

from __future__ import annotations

from typing import Any

import torch

from snn2hw.quant.align_delays import Alignment, PathTiming, aligned_twin, plan_alignment
from snn2hw.quant.qgraph import QGraph

COST_SAMPLES = 2000  # test samples for the misalignment cost (digits: the whole split)


def _alignment(graph: QGraph) -> Alignment:
    """The alignment recorded at quantization (re-planned from the graph if absent)."""
    rec = graph.metadata.get("alignment")
    if not isinstance(rec, dict):
        return plan_alignment(graph)
    paths = [PathTiming(p["lif"], p["source"], p["op"], int(p["float_delay"]), int(p["extra"]),
                        bool(p["recurrent"])) for p in rec["paths"]]
    return Alignment({k: int(v) for k, v in rec["shifts"].items()}, paths,
                     int(rec["max_synaptic_delay"]), bool(rec["applied"]))


def misalignment_cost(graph: QGraph, ints: Any, labels: Any) -> dict[str, Any]:
    """Integer accuracy of ``graph`` as deployed and of its aligned twin on the same
    samples (torch-int), and their difference; ``measured: False`` with the reason when
    torch-int does not execute delays."""
    from snn2hw.backends.base import UnsupportedNodeError
    from snn2hw.pipeline.simulate import predictions, run_backend

    al = _alignment(graph)
    twin = aligned_twin(graph, al)
    n = int(ints.shape[1])
    try:
        aligned = run_backend("torch-int", twin, ints)
    except UnsupportedNodeError as exc:
        return {"measured": False, "samples": n, "reason": str(exc)}
    deployed = run_backend("torch-int", graph, ints)
    acc_dep = float((predictions(graph, deployed.spikes) == labels).mean())
    acc_al = float((predictions(twin, aligned.spikes) == labels).mean())
    return {"measured": True, "samples": n, "deployed_accuracy": acc_dep,
            "aligned_accuracy": acc_al, "cost": acc_al - acc_dep}


def delay_section(graph: QGraph, spec: Any, fmt: Any) -> dict[str, Any]:
    """What export.json records about synaptic delays (and export.md prints)."""
    al = _alignment(graph)
    out: dict[str, Any] = {
        "target_max_delay": al.max_synaptic_delay,
        "applied": al.applied,
        "lines": al.describe(),
        "merge_nodes": al.merge_nodes,
        "shifts": al.shifts,
    }
    if al.applied or not al.misaligned or all(p.chip_delay < 0 for p in al.misaligned):
        return out
    from snn2hw.pipeline.samples import load_samples

    test = load_samples(spec, fmt, "test", COST_SAMPLES)
    if test.labels is None:
        out["cost"] = {"measured": False, "reason": "the samples have no labels"}
    else:
        out["cost"] = misalignment_cost(graph, test.ints, test.labels)
    return out


def delay_markdown(sec: dict[str, Any]) -> list[str]:
    """The export.md lines of :func:`delay_section`'s result."""
    lines = ["## Synaptic delays", ""]
    if not sec["lines"]:
        return [*lines, "- none needed: every merge point receives its inputs aligned", ""]
    if sec["applied"]:
        lines.append(f"Inserted so every merge point sums its inputs as the float model does "
                     f"(target limit {sec['target_max_delay']} steps):")
    else:
        lines.append("The target has no synaptic delays; these merge points receive their "
                     "inputs misaligned relative to the float model:")
    lines += [f"- {line}" for line in sec["lines"]]
    cost = sec.get("cost")
    if cost is not None:
        if cost.get("measured"):
            lines.append(
                f"- measured cost (torch-int, {cost['samples']} test samples): accuracy "
                f"{cost['deployed_accuracy']:.4f} as deployed vs {cost['aligned_accuracy']:.4f} "
                f"with the delays inserted ({100 * cost['cost']:+.2f} pp from alignment)")
        else:
            lines.append(f"- cost not measured: {cost['reason']}")
        lines.append("- to deploy without this cost on a chip without delays, train with the "
                     "chip's timing: `[model] hop_delays = true`, or "
                     "`snn2hw finetune CKPT --target ... --hop-delays`")
    return [*lines, ""]


def pad_for_delays(frames: torch.Tensor, steps: int) -> torch.Tensor:
    """``frames`` ``[T, B, ...]`` followed by ``steps`` zero frames: a float run of a graph
    with Delay nodes needs them to flush its last frame to the output."""
    if steps <= 0:
        return frames
    return torch.cat([frames, frames.new_zeros((steps, *frames.shape[1:]))])
