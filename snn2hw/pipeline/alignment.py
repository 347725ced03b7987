"""Float path against integer runs, and one run against another: how spikes are lined up
and how much they agree (``snn2hw compare`` and export's deployment check,
:mod:`snn2hw.pipeline.deviation`).

**Hop depth** (the float-vs-integer alignment). The float path (the NIR graph in torch)
has no delay on its edges: a layer's spikes at step ``t`` depend on the input up to step
``t``. On the chip every synaptic hop takes one step (docs/qgraph.md "Topology and
timing"), so a layer ``d`` hops from the input reacts to input frame ``t`` at step ``t + d``.
Its integer spikes at steps ``d .. d + T - 1`` are compared with the float spikes at steps
``0 .. T - 1``, where ``d`` is the number of LIF layers on the longest feed-forward path
from the input to the layer, itself included (recurrent edges ignored). Where export
inserted synaptic delays to align merge points (docs/qgraph.md "Synaptic delays"), the
shifts it recorded replace the hop depth; any other delay is a real difference.

**Spike overlap** ``matched / union``: with ``a`` and ``b`` the spikes (or spike counts of
multi-spike layers) of two runs at each (sample, step, neuron), ``matched = sum(min(a, b))``
and ``union = sum(max(a, b))``. It is 1 when both fire the same spikes, 0 when one side is
silent and the other is not, and undefined (``None``, shown "n/a") when both are silent:
silence is never counted as agreement.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from snn2hw.quant.align_delays import layer_shifts
from snn2hw.quant.qgraph import QGraph


def hop_depths(graph: QGraph) -> dict[str, int]:
    """Per LIF node: how many steps the chip runs behind the float path. The hop depth of
    the module docstring, or, for a graph whose export aligned merge points with synaptic
    delays, the shifts that alignment recorded (one definition:
    :func:`snn2hw.quant.align_delays.layer_shifts`)."""
    lifs = {n.name for n in graph.lif_nodes}
    return {k: v for k, v in layer_shifts(graph).items() if k in lifs}


def align(graph: QGraph, float_spikes: dict[str, np.ndarray],
          int_spikes: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per LIF layer in both runs: ``(float, integer)`` spikes over the same steps, the
    integer ones shifted back by the layer's depth (int64 arrays ``[T', B, ...]``; a
    negative shift, a float layer running behind the chip, drops the float's first steps)."""
    depths = hop_depths(graph)
    out = {}
    for lif in graph.lif_nodes:
        if lif.name not in float_spikes or lif.name not in int_spikes:
            continue
        d = depths.get(lif.name, 0)
        f = np.asarray(float_spikes[lif.name])[max(-d, 0):]
        i = np.asarray(int_spikes[lif.name])[max(d, 0) : max(d, 0) + f.shape[0]]
        n = min(f.shape[0], i.shape[0])
        out[lif.name] = (f[:n].astype(np.int64), i[:n].astype(np.int64))
    return out


@dataclass(frozen=True)
class SpikeOverlap:
    """Spikes of a reference run and of another run, and how many coincide."""

    reference_spikes: int
    spikes: int
    matched: int

    @property
    def union(self) -> int:
        return self.reference_spikes + self.spikes - self.matched

    @property
    def overlap(self) -> float | None:
        """``matched / union``; None when both runs are silent (no spike to agree on)."""
        return self.matched / self.union if self.union else None

    def cell(self) -> str:
        """The overlap as a table cell: 4 decimals, or ``n/a`` when both are silent."""
        return "n/a" if self.overlap is None else f"{self.overlap:.4f}"

    def to_dict(self) -> dict[str, Any]:
        return {"reference_spikes": self.reference_spikes, "spikes": self.spikes,
                "matched": self.matched, "union": self.union, "overlap": self.overlap}


def spike_overlap(reference: np.ndarray, other: np.ndarray) -> SpikeOverlap:
    """:class:`SpikeOverlap` of two spike (or spike count) arrays of the same shape."""
    a = np.asarray(reference, dtype=np.int64)
    b = np.asarray(other, dtype=np.int64)
    return SpikeOverlap(int(a.sum()), int(b.sum()), int(np.minimum(a, b).sum()))


def silence_warnings(graph: QGraph, spikes: dict[str, dict[str, np.ndarray]]) -> list[str]:
    """One warning per LIF layer that is silent on every sample in some backend
    (``spikes``: backend -> layer -> spikes), the output layer's first."""
    out_layers = [graph.source_of_output(o.name) for o in graph.output_nodes]
    order = out_layers + [n.name for n in graph.lif_nodes if n.name not in out_layers]
    warnings = []
    for layer in order:
        silent = [b for b, sp in spikes.items() if layer in sp and not np.asarray(sp[layer]).any()]
        if not silent:
            continue
        where = (f"in every run ({', '.join(silent)})" if len(silent) == len(spikes)
                 else f"in {', '.join(silent)}")
        if layer in out_layers:
            warnings.append(f"the output layer '{layer}' is silent on every sample {where}: "
                            "no decision comes from spikes (accuracy is the tie-break's)")
        else:
            warnings.append(f"layer '{layer}' is silent on every sample {where}")
    return warnings
