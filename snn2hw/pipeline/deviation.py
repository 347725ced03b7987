"""What deployment changes: the float path against the integer graph, per layer
(``snn2hw export``'s deployment check; docs/deployment-check.md).

The alignment (hop depth) and the spike overlap it measures with are defined once, in
:mod:`snn2hw.pipeline.alignment` (``snn2hw compare`` uses them too).

The deployment check (:func:`check_deployment`) runs torch-int on the calibration inputs
next to the float path's recorded spikes and reports per layer the spikes on both sides,
the step-exact overlap, the overlap of spike counts per (sample, neuron) and the change in
the layer's total spike count, and (with labels) both accuracies. It fails when an output
layer's spike count changes by more than ``max_spike_change``, or when the accuracy drops by
more than ``max_accuracy_drop_pp`` and the drop is not chance (McNemar's exact test on the
decisions that changed, one-sided p < ``ACCURACY_P``), and names the layers over the
limit with the likely cause, derived from the graph (reset and threshold rule of the
source neuron against the target's) and from the integer run (membranes ending exactly on
the threshold, clipped inhibition, u wrapping, spikes inherited from an upstream layer, or
a threshold/weight scale that does not match).
docs/deployment-check.md explains the figures and the thresholds.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.common.readout import accuracy, classify
from snn2hw.common.tables import markdown_table
from snn2hw.pipeline.alignment import (
    SpikeOverlap,
    align,
    hop_depths,
    silence_warnings,
    spike_overlap,
)
from snn2hw.quant.qgraph import LIFNode, QGraph

DEFAULT_MAX_SPIKE_CHANGE = 0.10  # fraction of an output layer's float spikes
DEFAULT_MAX_ACCURACY_DROP_PP = 1.0  # percentage points, float minus integer
ACCURACY_P = 0.05  # an accuracy drop must be this unlikely under chance to fail the check
REDISTRIBUTED = 0.8  # an upstream count overlap below this is named: its spikes moved
TIE_SHARE = 0.01  # ties at threshold worth naming: this share of the layer's float spikes

# The source neuron's reset (nir.discretize.DiscreteNeuron.reset) as the target's rule
# (NumberFormats.reset): "hard" resets to v_reset, which the integer graph holds at 0.
_RESET_AS_TARGET = {"hard": "zero", "subtract": "subtract"}


# ----- alignment and overlap -----------------------------------------------------------------

# ----- the deployment check -------------------------------------------------------------------

@dataclass(frozen=True)
class DeviationLimits:
    """When a deployment fails the check (``snn2hw export --max-spike-change`` and
    ``--max-accuracy-drop``)."""

    max_spike_change: float = DEFAULT_MAX_SPIKE_CHANGE
    max_accuracy_drop_pp: float = DEFAULT_MAX_ACCURACY_DROP_PP

    def to_dict(self) -> dict[str, float]:
        return {"max_spike_change": self.max_spike_change,
                "max_accuracy_drop_pp": self.max_accuracy_drop_pp}


@dataclass
class LayerDeviation:
    """One LIF layer: float path against torch-int on the same inputs (hop-aligned)."""

    layer: str
    hop_depth: int
    output: bool
    neurons_steps: int  # (sample, step, neuron) values compared
    timing: SpikeOverlap  # per (sample, step, neuron); reference = float path
    counts: SpikeOverlap  # per (sample, neuron): spike counts over all steps
    causes: list[str] = field(default_factory=list)

    @property
    def change(self) -> float | None:
        """Relative change of the layer's total spike count, integer against float
        (None when the float path is silent: then any integer spike is a change)."""
        f = self.timing.reference_spikes
        return (self.timing.spikes - f) / f if f else (None if self.timing.spikes else 0.0)

    def exceeds(self, limit: float) -> bool:
        c = self.change
        return c is None or abs(c) > limit

    def change_cell(self) -> str:
        c = self.change
        return "silent in float" if c is None else f"{c:+.1%}"

    def to_dict(self) -> dict[str, Any]:
        return {"layer": self.layer, "hop_depth": self.hop_depth, "output": self.output,
                "float_spikes": self.timing.reference_spikes,
                "integer_spikes": self.timing.spikes,
                "float_rate": self.timing.reference_spikes / max(self.neurons_steps, 1),
                "integer_rate": self.timing.spikes / max(self.neurons_steps, 1),
                "spike_change": self.change,
                "timing_overlap": self.timing.overlap, "count_overlap": self.counts.overlap,
                "causes": self.causes}


@dataclass
class DeploymentCheck:
    """Float path against torch-int on the calibration inputs, and the verdict."""

    samples: int
    layers: list[LayerDeviation]
    limits: DeviationLimits
    float_accuracy: float | None = None
    integer_accuracy: float | None = None
    decisions_changed: int = 0
    close_calls: int = 0  # changed decisions where the float path's top two counts were <= 1 apart
    lost: int = 0  # samples the float path classifies right and torch-int wrong
    gained: int = 0  # the reverse
    failures: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # layers silent on every sample
    accepted: bool = False  # the user accepted a failed check (--accept-deviation)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def accuracy_drop_pp(self) -> float | None:
        if self.float_accuracy is None or self.integer_accuracy is None:
            return None
        return 100.0 * (self.float_accuracy - self.integer_accuracy)

    @property
    def accuracy_p(self) -> float | None:
        """McNemar's exact one-sided p-value of the drop: the chance of losing at least
        ``lost`` of the ``lost + gained`` changed labelled decisions if each change were a
        fair coin (1.0 without changes; None without labels)."""
        if self.float_accuracy is None:
            return None
        n = self.lost + self.gained
        return sum(math.comb(n, k) for k in range(self.lost, n + 1)) / 2**n

    def layer(self, name: str) -> LayerDeviation:
        return next(lay for lay in self.layers if lay.layer == name)

    def rates(self) -> dict[str, dict[str, float]]:
        """Per layer: float and integer spikes per neuron per step."""
        return {lay.layer: {k: lay.to_dict()[k] for k in ("float_rate", "integer_rate")}
                for lay in self.layers}

    def verdict(self) -> str:
        if self.passed:
            return "passed"
        return "FAILED (accepted with --accept-deviation)" if self.accepted else "FAILED"

    def table(self) -> str:
        """Markdown: one row per LIF layer."""
        header = ["layer", "hop depth", "float spikes", "integer spikes", "spike change",
                  "count overlap", "timing overlap", "likely cause"]
        rows = [[f"{lay.layer}{' (output)' if lay.output else ''}", str(lay.hop_depth),
                 str(lay.timing.reference_spikes), str(lay.timing.spikes), lay.change_cell(),
                 lay.counts.cell(), lay.timing.cell(), "; ".join(lay.causes) or "-"]
                for lay in self.layers]
        return markdown_table(header, rows)

    def summary(self) -> str:
        """One line: accuracies and the verdict."""
        acc = ("no labels" if self.float_accuracy is None else
               f"accuracy float {self.float_accuracy:.4f}, integer {self.integer_accuracy:.4f}"
               f" ({self.accuracy_drop_pp:+.2f} pp drop; {self.lost} samples lost, "
               f"{self.gained} gained, p = {self.accuracy_p:.3g})")
        return (f"deployment check on {self.samples} calibration samples: {acc}; "
                f"{self.decisions_changed} decision(s) changed; {self.verdict()}")

    def error(self) -> str:
        """The one-line reason ``snn2hw export`` exits 2 with."""
        return ("deployment changes the network beyond the limits: " + "; ".join(self.failures)
                + ". See 'Deployment check' in export.md; pass --accept-deviation to accept "
                "this cost, or raise --max-spike-change / --max-accuracy-drop")

    def markdown(self) -> list[str]:
        """The export.md section."""
        lim = self.limits
        lines = [
            "## Deployment check (float path vs torch-int)", "",
            f"- {self.summary()}",
            f"- limits: an output layer's spike count may change by at most "
            f"{lim.max_spike_change:.1%}, accuracy may drop by at most "
            f"{lim.max_accuracy_drop_pp:g} pp unless the drop could be chance (McNemar, "
            f"p >= {ACCURACY_P:g}; docs/deployment-check.md)",
        ]
        lines += [f"- **warning**: {w}" for w in self.warnings]
        lines += [f"- {f}" for f in self.failures]
        lines += ["", self.table(), "",
                  "Integer spikes are shifted back by the layer's hop depth. Spike change: "
                  "integer minus float total spikes, relative to float. Count overlap: "
                  "matched / union of spike counts per (sample, neuron); timing overlap: the "
                  "same per (sample, step, neuron); n/a: silent in both.", ""]
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"samples": self.samples, "passed": self.passed, "accepted": self.accepted,
                "verdict": self.verdict(), "limits": self.limits.to_dict(),
                "float_accuracy": self.float_accuracy,
                "integer_accuracy": self.integer_accuracy,
                "accuracy_drop_pp": self.accuracy_drop_pp,
                "samples_lost": self.lost, "samples_gained": self.gained,
                "accuracy_p": self.accuracy_p,
                "decisions_changed": self.decisions_changed, "close_calls": self.close_calls,
                "failures": self.failures, "warnings": self.warnings,
                "layers": [lay.to_dict() for lay in self.layers]}


def check_deployment(
    graph: QGraph,
    float_spikes: dict[str, Any],
    ints: np.ndarray,
    labels: np.ndarray | None = None,
    *,
    limits: DeviationLimits | None = None,
    neurons: dict[str, Any] | None = None,
    accepted: bool = False,
) -> DeploymentCheck:
    """Run ``graph`` in torch integer mode on ``ints`` (``[T, B, ...]``) and measure it
    against ``float_spikes`` (the float path's recorded spikes per LIF layer on the same
    inputs, ``[T, B, ...]``). ``neurons``: the float path's discrete neurons by layer name
    (``NIRNet.discrete_neurons()``), which lets the causes name a reset or threshold rule
    the target does not share. When the check fails, torch-int runs once more with state
    recording to find ties at the threshold and saturated membranes."""
    from snn2hw.pipeline.simulate import run_backend

    limits = limits or DeviationLimits()
    fs = {k: np.asarray(v.numpy() if hasattr(v, "numpy") else v) for k, v in float_spikes.items()}
    run = run_backend("torch-int", graph, ints)
    aligned = align(graph, fs, run.spikes)
    outputs = {graph.source_of_output(o.name) for o in graph.output_nodes}
    depths = hop_depths(graph)
    layers = [
        LayerDeviation(name, depths[name], name in outputs, int(f.size),
                       spike_overlap(f, i), spike_overlap(f.sum(0), i.sum(0)))
        for name, (f, i) in aligned.items()
    ]
    check = DeploymentCheck(int(np.asarray(ints).shape[1]), layers, limits, accepted=accepted,
                            warnings=silence_warnings(graph, {"float path": fs,
                                                              "torch-int": run.spikes}))
    src = graph.source_of_output(graph.output_nodes[0].name)
    if src in fs:
        fdec, idec = np.asarray(classify(fs[src])), np.asarray(classify(run.spikes[src]))
        moved = fdec != idec
        check.decisions_changed = int(moved.sum())
        counts = np.sort(fs[src].sum(0).reshape(fs[src].shape[1], -1), axis=1)
        margin = counts[:, -1] - (counts[:, -2] if counts.shape[1] > 1 else 0)
        check.close_calls = int((moved & (margin <= 1)).sum())
        if labels is not None:
            check.float_accuracy = accuracy(fdec, labels)
            check.integer_accuracy = accuracy(idec, labels)
            check.lost = int(((fdec == labels) & (idec != labels)).sum())
            check.gained = int(((fdec != labels) & (idec == labels)).sum())
    _judge(check)
    if not check.passed:
        _find_causes(check, graph, ints, neurons or {})
    return check


def _judge(check: DeploymentCheck) -> None:
    lim = check.limits
    for lay in check.layers:
        if lay.output and lay.exceeds(lim.max_spike_change):
            what = ("the float path is silent, torch-int fires "
                    f"{lay.timing.spikes} spikes" if lay.change is None else
                    f"spikes change by {lay.change:+.1%} ({lay.timing.reference_spikes} float, "
                    f"{lay.timing.spikes} integer; limit {lim.max_spike_change:.1%})")
            check.failures.append(f"output layer '{lay.layer}': {what}")
    drop = check.accuracy_drop_pp
    p = check.accuracy_p
    if drop is not None and drop > lim.max_accuracy_drop_pp and p is not None and p < ACCURACY_P:
        check.failures.append(
            f"accuracy drops {drop:.2f} pp (float {check.float_accuracy:.4f}, integer "
            f"{check.integer_accuracy:.4f}: {check.lost} samples lost, {check.gained} gained, "
            f"p = {p:.3g}; limit {lim.max_accuracy_drop_pp:g} pp)")


def _find_causes(check: DeploymentCheck, graph: QGraph, ints: np.ndarray,
                 neurons: dict[str, Any]) -> None:
    """Fill ``causes`` of every layer over the limit (or, when only the accuracy fails, of
    the layer whose spike counts agree least), and name them in the failures."""
    from snn2hw.common.errors import ResourceError
    from snn2hw.pipeline.simulate import run_backend

    lim = check.limits.max_spike_change
    suspects = [lay for lay in check.layers if lay.exceeds(lim)]
    if not suspects:  # only the accuracy fails: the decisions moved, the counts did not
        outs = [lay for lay in check.layers if lay.output] or check.layers
        lay = min(outs, key=lambda lay: lay.counts.overlap or 0.0)
        lay.causes = [f"decisions moved ({check.decisions_changed} of {check.samples} "
                      f"samples, {check.close_calls} of them where the float path's two "
                      "largest output counts were at most one spike apart) although the "
                      f"layer's spike count changes by {lay.change_cell()}: spikes move "
                      f"between neurons (count overlap {lay.counts.cell()}) or near ties flip "
                      "(quantization precision)"]
        check.failures.append(f"'{lay.layer}': {lay.causes[0]}")
        return
    try:
        state = run_backend("torch-int", graph, ints, record_state=True)
    except ResourceError:
        state = None  # too large to record u and v: the causes from the graph remain
    over = {lay.layer for lay in check.layers if lay.exceeds(lim)}
    by_name = {lay.layer: lay for lay in check.layers}
    for lay in suspects:
        lay.causes = _causes(lay, graph, neurons.get(lay.layer), state, over, by_name)
    first, rest = suspects[0], suspects[1:]
    text = (f"deviation starts at '{first.layer}' ({first.change_cell()} spikes), likely "
            f"cause: {'; '.join(first.causes)}")
    if rest:
        text += "; then " + ", ".join(f"'{lay.layer}' ({lay.change_cell()})" for lay in rest)
    check.failures.append(text)


COLLAPSED_ZERO_SHARE = 0.9  # weights left zero by quantization that make a layer "collapsed"
COLLAPSED_MAX_WEIGHT = 4


def _collapsed_weights(graph: QGraph, layer: str) -> str | None:
    """A cause when quantization left the layer's incoming weights almost all zero: the
    weight scale was squeezed (on Loihi 1 typically by the chip's worst-case synaptic-sum
    limit with a large fan-in of graded input, docs/loihi-edges.md)."""
    ws = [np.asarray(graph.nodes[op].weight) for path in graph.synapse_paths(layer)
          for op in path[1:] if hasattr(graph.nodes[op], "weight")]
    if not ws:
        return None
    flat = np.concatenate([w.ravel() for w in ws])
    zero = float((flat == 0).mean())
    top = int(np.abs(flat).max()) if flat.size else 0
    if zero < COLLAPSED_ZERO_SHARE or top > COLLAPSED_MAX_WEIGHT:
        return None
    limited = "chip_limits" in graph.metadata
    why = (" by the chip's worst-case input-sum limits (docs/loihi-edges.md): the fan-in "
           "times the largest input it may receive must fit the accumulator"
           if limited else "")
    fix = (" feed binary (spiking) input instead of graded values, reduce the fan-in, or "
           "use a target without these limits (e.g. loihi2)" if limited else
           " check the calibration range")
    return (f"quantization range: the incoming weights collapsed{why} ({zero:.1%} are 0, "
            f"largest |w| = {top});{fix}")


def _causes(lay: LayerDeviation, graph: QGraph, dn: Any, state: Any, over: set[str],
            layers: dict[str, LayerDeviation]) -> list[str]:
    node: LIFNode = graph.nodes[lay.layer]
    f = graph.formats
    out: list[str] = []
    if dn is not None and _RESET_AS_TARGET.get(dn.reset, dn.reset) != f.reset:
        out.append(f"reset: the source resets by {dn.reset}, the target "
                   f"{'to 0' if f.reset == 'zero' else 'by subtraction'} (approximated)")
    if dn is not None and dn.threshold_op != f.threshold_compare:
        out.append(f"threshold: the source fires on v {dn.threshold_op} threshold, the target "
                   f"on v {f.threshold_compare} threshold")
    if state is not None and state.v is not None:
        v = np.asarray(state.v[lay.layer])
        th = node.vth << f.activation_shift
        s = np.asarray(state.spikes[lay.layer])
        ties = int(((v == th) & (s == 0)).sum()) if f.threshold_compare == ">" else 0
        if ties and ties >= TIE_SHARE * max(lay.timing.reference_spikes, 1):
            out.append(f"threshold: {ties} neuron-steps end exactly on the threshold and do "
                       "not fire (ties at threshold, strict '>')")
        # A membrane clipped at the negative bound recovers sooner than the float one, so it
        # explains extra spikes; clipping at the positive bound fires (and resets) anyway.
        vmax = (1 << (f.v_bits - 1)) - 1
        sat = int((v <= -vmax).sum())
        if sat and (lay.change is None or lay.change > 0):
            out.append(f"quantization range: inhibition clipped, v saturates at -{vmax} in "
                       f"{sat} neuron-steps")
        if state.u is not None and f.u_overflow == "wrap":
            # one step's input never moves u by half its range (the chip limits); a wrap does
            u = np.asarray(state.u[lay.layer])
            wraps = int((np.abs(np.diff(u, axis=0)) >= (1 << (f.u_bits - 1))).sum())
            if wraps:
                out.append(f"quantization range: u wraps around its {f.u_bits} bits in "
                           f"{wraps} neuron-steps")
    collapsed = _collapsed_weights(graph, lay.layer)
    if collapsed and (lay.change is None or lay.change < 0):
        out.append(collapsed)
    sources = {p[0] for p in graph.synapse_paths(lay.layer)} - {lay.layer}
    ups = sorted(sources & set(over))
    if ups:
        out.append("inherited from upstream " + ", ".join(f"'{u}'" for u in ups))
    if not out:
        c = lay.change
        how = ("fires although the float path is silent" if c is None else
               f"fires {abs(c):.0%} {'fewer' if c < 0 else 'more'} spikes than the float path")
        moved = [layers[u] for u in sorted(sources) if u in layers
                 and (layers[u].counts.overlap or 1.0) < REDISTRIBUTED]
        inputs = ("with upstream spike totals within the limit" if not moved else
                  "with upstream totals within the limit but spread over other neurons ("
                  + ", ".join(f"'{u.layer}' count overlap {u.counts.cell()}" for u in moved)
                  + ")")
        out.append(f"threshold / weight scale: {inputs}, the layer {how}; its integer "
                   f"threshold (vth={node.vth}), weights or decays do not carry the float "
                   "model's scale (quantization range)")
    return out
