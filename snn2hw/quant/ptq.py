"""Post-training quantization: a float NIR graph (plus calibration data) -> a QGraph.

For every spiking node ``L`` (docs/nir.md "Lowering to integers"), with per-step parameters from
:func:`snn2hw.nir.discretize.discretize_neuron`:

* its incoming synapse paths ``source -> ops -> L`` become QGraph paths; the one weighted
  op of a path (Affine/Linear/Conv2d; consecutive Affines are fused) gets the
  *threshold-normalized* float weights ``Mn[i, :] = scale · in_gain_i · W[i, :] / θ'_i``,
  where ``θ'_i = v_threshold_i - v_reset_i`` (the reset is shifted to 0) and ``scale`` the
  path's constant factors (AvgPool 1/k², Scale, the input's integer unit);
* one integer threshold ``vth`` per layer is chosen as large as the constraints allow
  (most resolution for threshold, bias and decays): ``vth <= 2^threshold_bits - 1``; no u
  overflow on the calibration data with a 2x margin
  (``vth · max|u_norm| <= 2^(u_bits - 2 - activation_shift)``); the bias fits its
  mantissa << ``bias_exp_max``; every path's weights fit the weight range with
  ``weight_exp <= weight_exp_max``;
* per path, ``weight_exp`` is the smallest exponent that fits ``vth · Mn · 2^-e`` into the
  weight range (even values for mixed-sign matrices where the target loses their LSB), and
  ``W_int = round(vth · Mn · 2^-e)``;
* ``du = round(S(1 - alpha)) - 1``, ``dv = round(S(1 - beta))`` with ``S = 2^decay_bits``
  (one per layer);
* ``bias = round(2^activation_shift · vth · (v_bias - (1 - beta) v_reset + g·b_syn) / θ')``
  split into mantissa and exponent, where ``b_syn`` are Affine/Conv biases (exact for
  alpha = 0, steady-state for CUBA layers — reported as an approximation).

All of those ranges come from the target's :class:`~snn2hw.quant.formats.NumberFormats`
(``formats=``; Loihi's by default: 17-bit threshold, 13-bit bias mantissa << 7, 8-bit
weights with ``weight_exp <= 7``, 12-bit decays, 24-bit u with activations << 6), and the
graph records them (``QGraph.formats``).

Everything that cannot be represented raises :class:`QuantizationError` naming the node.

:func:`quantize` is a short sequence of steps, each a function below: analyse the graph
(:mod:`snn2hw.quant.nir_paths`) -> per layer: decays (:func:`_layer_decays`), normalized
weights, biases and calibration currents (:func:`normalize_layer`), threshold from the
bounds (:func:`_choose_threshold`), integer bias (:func:`_quantize_bias`) and weights
(:func:`_quantize_path_weights`), QGraph nodes (:func:`_emit_paths`) -> assemble and
validate the QGraph (:func:`_assemble_graph`). The number formats themselves are in
:mod:`snn2hw.quant.formats`.

Dependencies: nir, numpy, torch, :mod:`snn2hw.common`, :mod:`snn2hw.nir.discretize` and
``snn2hw.quant``; never backends, pipeline, chip, training or the CLI (QAT and export
call :func:`quantize`, not the other way round).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import nir
import numpy as np
import torch

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir.discretize import DiscreteNeuron, integer_neuron
from snn2hw.quant.align_delays import align_graph
from snn2hw.quant.bounds import ChipLimits, layer_bounds, limits_to_metadata, shrink_factor
from snn2hw.quant.formats import (
    APPROXIMATIONS,
    LOIHI_FORMATS,
    NeuronCapabilities,
    NumberFormats,
    choose_weight_exp,
    decay_in_range,
    du_from_alpha,
    dv_from_beta,
    round_weights,
    split_bias,
    weight_limit,
)
from snn2hw.quant.nir_paths import PathPlan, Structure, port_shape
from snn2hw.quant.nodes import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    Node,
    OutputNode,
    SumPoolNode,
)
from snn2hw.quant.normalize import (
    Calibration,
    NormalizedLayer,
    max_u_norm,
    normalize_layer,
    threshold_span,
)
from snn2hw.quant.qgraph import QGraph

__all__ = ["WRAP_SAFE", "LayerReport", "PathPlan", "QuantResult", "quantize"]

# Loihi's |vth · u_norm| bound: half of the 2^17 at which u (24 bits, input << 6) can wrap
# in one step; other targets: NumberFormats.u_wrap_safe
WRAP_SAFE = LOIHI_FORMATS.u_wrap_safe


@dataclass
class LayerReport:
    name: str
    nir_type: str
    shape: tuple[int, ...]
    vth: int
    du: int
    dv: int
    weight_exps: list[int]
    max_weight: int
    zero_weight_fraction: float
    u_norm_max: float
    limited_by: str
    notes: list[str] = field(default_factory=list)
    # per path: NIR name of its weighted node, weight_exp, the float factor applied to the
    # NIR weights before rounding (so fake-quant can reproduce the grid: W_int / factor)
    paths: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class QuantResult:
    graph: QGraph
    layers: list[LayerReport]
    notes: list[str]
    input_scale: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "layers": [lr.to_dict() for lr in self.layers],
            "notes": self.notes,
            "input_scale": self.input_scale,
        }


# ----- the steps ---------------------------------------------------------------------------


def quantize(
    graph: nir.NIRGraph,
    neurons: dict[str, DiscreteNeuron],
    records: dict[str, torch.Tensor],
    *,
    dt: float,
    target: str,
    num_steps: int,
    input_scale: float = 1.0,
    input_message_bits: int = 0,
    metadata: dict[str, Any] | None = None,
    input_shape: tuple[int, ...] | None = None,
    formats: NumberFormats | None = None,
    chip_limits: ChipLimits | None = None,
    capabilities: NeuronCapabilities | None = None,
    approximate: Iterable[str] = (),
) -> QuantResult:
    """Quantize a float NIR graph for a Loihi-style target.

    ``capabilities``: what the target's neurons can be set to (reset, comparison,
    graded spikes). If None (library use), the formats' own rules are kept and every
    difference from the source is accepted and noted as an approximation. The source
    convention's reset, comparison and spikes per step
    (:func:`snn2hw.nir.discretize.integer_neuron`) go into the graph
    (``formats.reset``, ``formats.threshold_compare``, ``LIFNode.max_spikes``)
    where the target allows them; otherwise quantization refuses, naming the node,
    unless ``approximate`` holds the name ("reset", "threshold", "spikes",
    :data:`~snn2hw.quant.formats.APPROXIMATIONS`), and then notes the approximation.

    ``formats``: the target's number formats (``Target.number_formats``); Loihi's if None.

    ``neurons``: per-step parameters of every neuron node (NIRNet.discrete_neurons()).
    ``records``: float outputs ``[T, B, ...]`` of the input node and of every spiking
    neuron on calibration data (NIRNet's ``record=True``); input values are in float units
    and are divided by ``input_scale`` (the float value of one integer input unit: 1 for
    spikes, ``x_max / (2^bits - 1)`` for graded input).

    ``chip_limits`` (the target's ``chip_*`` formats, :mod:`snn2hw.quant.bounds`): every
    layer's worst-case synaptic sum, ``u`` and ``u + bias`` must stay where Lava's model
    and the chip agree. Weight exponents are then kept ``>= 0`` (edge rule 4) and a
    layer whose proven bound crosses a limit is re-quantized with its threshold (hence
    weights and bias) scaled down until it fits; the limits go into the graph's
    metadata so the backends re-check them."""
    struct = Structure(graph, dt)
    in_node = _input_node(graph, struct, input_shape, input_message_bits)
    calib = Calibration(records, struct.input, float(input_scale))
    fmts = LOIHI_FORMATS if formats is None else formats
    if capabilities is None:  # the formats' own rules, differences noted (library callers)
        capabilities, approximate = NeuronCapabilities.of(fmts), APPROXIMATIONS
    fmts, max_spikes, sem_notes = neuron_semantics(
        neurons, records, fmts, capabilities, approximate)
    meta = dict(metadata or {})
    if chip_limits is not None:
        meta["chip_limits"] = limits_to_metadata(chip_limits)
    caps: dict[str, int] = {}
    min_exp = 0 if chip_limits is not None and chip_limits.per_synapse_weight_shift else None
    for _ in range(16):
        layers = [
            _quantize_layer(struct, name, neurons[name], calib, fmts, caps.get(name), min_exp,
                            max_spikes.get(name, 1))
            for name in struct.order
            if name != struct.input
        ]
        qg = _assemble_graph(
            graph,
            struct,
            in_node,
            layers,
            dt=dt,
            target=target,
            num_steps=num_steps,
            metadata=meta,
            formats=fmts,
        )
        if chip_limits is None:
            break
        bad = [b for b in layer_bounds(qg, chip_limits) if not b.ok]
        if not bad:
            break
        for b in bad:
            vth = int(qg.nodes[b.name].vth)
            caps[b.name] = int(math.floor(vth * min(shrink_factor(b), 0.999)))
            if caps[b.name] < 1:
                raise QuantizationError(
                    f"node '{b.name}': no threshold keeps it inside the chip's limits: "
                    + "; ".join(b.violations())
                )
    else:
        raise QuantizationError(f"could not fit layers {[b.name for b in bad]} into the "
                                "chip's limits")
    notes = sem_notes + [note for layer in layers for note in layer.notes]
    return QuantResult(qg, [layer.report for layer in layers], notes, float(input_scale))


def _input_node(
    graph: nir.NIRGraph,
    struct: Structure,
    input_shape: tuple[int, ...] | None,
    message_bits: int,
) -> InputNode:
    """The QGraph input: the importer's inferred shape if given (it drops nirtorch's
    leading batch dimension), else the NIR Input node's own."""
    nir_in = graph.nodes[struct.input]
    in_shape = input_shape or port_shape(nir_in.output_type) or port_shape(nir_in.input_type)
    if in_shape is None:
        raise GraphError(f"input node '{struct.input}' has no shape")
    return InputNode("input", in_shape, int(message_bits))


@dataclass
class _Layer:
    """Everything one neuron layer contributes to the QGraph and the report."""

    lif: LIFNode
    synapses: list[tuple[str, Node]]  # (NIR source name, synaptic node), in emission order
    edges: list[tuple[str, str]]  # NIR source names; the input is renamed on assembly
    report: LayerReport
    notes: list[str]  # approximations for QuantResult.notes


def _quantize_layer(
    struct: Structure,
    neuron: str,
    dn: DiscreteNeuron,
    calib: Calibration,
    f: NumberFormats,
    vth_cap: int | None = None,
    min_exp: int | None = None,
    max_spikes: int = 1,
) -> _Layer:
    """One neuron layer: decays, normalized paths, threshold, bias, weights, nodes."""
    shape = tuple(dn.shape)
    theta = threshold_span(neuron, dn)
    du, dv = _layer_decays(neuron, dn, f)
    alpha = float(dn.alpha.flat[0])
    norm = normalize_layer(struct, neuron, dn, theta, calib)
    u_max = max_u_norm(norm.current, alpha)
    v_bias_norm = norm.v_bias / np.broadcast_to(theta, shape)
    vth, limited_by = _choose_threshold(neuron, v_bias_norm, u_max, norm, f, vth_cap)
    mant, exp = _quantize_bias(v_bias_norm, vth, f)
    lif = LIFNode(neuron, shape, du=du, dv=dv, vth=vth, bias_mant=mant, bias_exp=exp,
                  max_spikes=max_spikes)
    synapses, edges, stats = _emit_paths(neuron, norm, vth, calib, f, min_exp)
    lnotes = list(norm.notes)
    if norm.v_bias.any() and np.any(mant == 0) and np.any(norm.v_bias != 0):
        lnotes.append("some non-zero biases round to 0")
    report = LayerReport(
        name=neuron,
        nir_type=dn.nir_type,
        shape=shape,
        vth=vth,
        du=du,
        dv=dv,
        weight_exps=stats.exps,
        max_weight=stats.max_weight,
        zero_weight_fraction=stats.zeros / max(stats.total, 1),
        u_norm_max=u_max,
        limited_by=limited_by,
        notes=lnotes,
        paths=stats.paths,
    )
    return _Layer(lif, synapses, edges, report, [])


def _layer_decays(neuron: str, dn: DiscreteNeuron, f: NumberFormats) -> tuple[int, int]:
    """The layer's one ``(du, dv)`` pair: all neurons must round to the same registers,
    and those must fit the target's decay registers (Loihi: 12 bits)."""
    du_vals = {du_from_alpha(float(a), f) for a in np.unique(dn.alpha)}
    dv_vals = {dv_from_beta(float(b), f) for b in np.unique(dn.beta)}
    if len(du_vals) > 1 or len(dv_vals) > 1:
        raise QuantizationError(
            f"node '{neuron}': time constants differ across neurons (du {sorted(du_vals)[:3]}, "
            f"dv {sorted(dv_vals)[:3]}); Loihi has one du and one dv per population — "
            "split the layer or share time constants"
        )
    du, dv = du_vals.pop(), dv_vals.pop()
    why = decay_in_range(du, dv, f)
    if why:
        raise QuantizationError(f"node '{neuron}': {why}")
    return du, dv


def _threshold_bounds(
    v_bias_norm: np.ndarray, u_max: float, norm: NormalizedLayer, f: NumberFormats
) -> dict[str, float]:
    """Upper bounds on the integer threshold, by what imposes them: the threshold bits,
    no u overflow on the calibration data (2x margin), bias range, and the weight range
    with the largest weight exponent on every path."""
    bounds = {f"{f.threshold_bits}-bit threshold": float(f.vth_max)}
    if u_max > 0:
        bounds[f"u {f.u_overflow} margin on calibration data"] = f.u_wrap_safe / u_max
    bmax = float(np.abs(v_bias_norm).max())
    if bmax > 0:
        bounds["bias range"] = f.bias_int_max / (f.act_scale * bmax)
    wbits, emax = f.weight_mantissa_bits, f.weight_exp_max
    for plan, mn in zip(norm.plans, norm.weights, strict=True):
        m = float(np.abs(mn).max())
        if m > 0:
            bounds[f"{wbits}-bit weights with weight_exp <= {emax} ({plan.names[-1]})"] = (
                weight_limit(mn, f) * 2.0**emax / m
            )
    return bounds


def _choose_threshold(
    neuron: str,
    v_bias_norm: np.ndarray,
    u_max: float,
    norm: NormalizedLayer,
    f: NumberFormats,
    vth_cap: int | None = None,
) -> tuple[int, str]:
    """The largest integer threshold all bounds allow, and the bound that limits it."""
    bounds = _threshold_bounds(v_bias_norm, u_max, norm, f)
    if vth_cap is not None:
        bounds["chip limits: worst-case synaptic sum, u, u + bias (docs/loihi-edges.md)"] = (
            float(vth_cap)
        )
    limited_by = min(bounds, key=bounds.get)
    vth_int = int(math.floor(bounds[limited_by]))
    if vth_int < 1:
        raise QuantizationError(
            f"node '{neuron}': no integer threshold satisfies the target ({limited_by}); "
            "weights are too large relative to the threshold"
        )
    return vth_int, limited_by


def _quantize_bias(v_bias_norm: np.ndarray, vth_int: int, f: NumberFormats
                   ) -> tuple[np.ndarray, np.ndarray]:
    """``bias = round(2^activation_shift · vth · v_bias / θ')`` (Loihi: 64) as per-neuron
    ``(mantissa, exponent)``."""
    b_int = np.round(f.act_scale * vth_int * v_bias_norm)
    return split_bias(b_int, f)


def _quantize_path_weights(
    mn: np.ndarray, vth_int: int, f: NumberFormats, min_exp: int | None = None
) -> tuple[int, np.ndarray]:
    """``(weight_exp, W_int)``: the smallest exponent (at least ``min_exp``) that fits
    ``vth · Mn · 2^-e`` into the target's weight range, and the rounded weights on that grid."""
    m = float(np.abs(mn).max())
    e = choose_weight_exp(vth_int, m, weight_limit(mn, f), f)
    if min_exp is not None:
        e = max(e, min_exp)
    return e, round_weights(vth_int * mn * 2.0 ** (-e), f)


@dataclass
class _WeightStats:
    """Per-layer weight statistics for the :class:`LayerReport`."""

    exps: list[int] = field(default_factory=list)
    max_weight: int = 0
    zeros: int = 0
    total: int = 0
    paths: list[dict[str, Any]] = field(default_factory=list)


def _emit_paths(
    neuron: str,
    norm: NormalizedLayer,
    vth_int: int,
    calib: Calibration,
    f: NumberFormats,
    min_exp: int | None = None,
) -> tuple[list[tuple[str, Node]], list[tuple[str, str]], _WeightStats]:
    """Quantize every path's weights into its QGraph nodes: ``(synapses, edges, stats)``
    with synapses as ``(NIR source, node)`` in emission order."""
    synapses: list[tuple[str, Node]] = []
    edges: list[tuple[str, str]] = []
    stats = _WeightStats()
    for k, (plan, mn) in enumerate(zip(norm.plans, norm.weights, strict=True)):
        e, w_int = _quantize_path_weights(mn, vth_int, f, min_exp)
        stats.exps.append(e)
        stats.paths.append(
            {
                "weighted": plan.weighted["name"],
                "weight_exp": e,
                "source": plan.source,
                "row_factor": (
                    vth_int
                    * 2.0 ** (-e)
                    * norm.row_gain
                    / norm.row_theta
                    * calib.weight_factor(plan.source)
                ).tolist(),
            }
        )
        stats.max_weight = max(stats.max_weight, int(np.abs(w_int).max()) if w_int.size else 0)
        stats.zeros += int((w_int == 0).sum())
        stats.total += w_int.size
        prev = plan.source
        for node in _path_nodes(neuron, k, plan, w_int, e, f.weight_mantissa_bits):
            synapses.append((plan.source, node))
            edges.append((prev, node.name))
            prev = node.name
        edges.append((prev, neuron))
    return synapses, edges, stats


def _path_nodes(
    neuron: str, k: int, plan: PathPlan, w_int: np.ndarray, weight_exp: int, weight_bits: int
) -> list[Node]:
    """The QGraph synaptic nodes of path ``k`` into ``neuron``, in order: its structural
    ops, then its weighted op (named ``<neuron>.p<k>.<NIR name>``)."""
    chain: list[Node] = []
    for op in plan.ops:
        nm = f"{neuron}.p{k}.{op['name']}"
        if op["kind"] == "flatten":
            chain.append(FlattenNode(nm, tuple(op["input_shape"])))
        else:
            chain.append(
                SumPoolNode(
                    nm, tuple(op["input_shape"]), op["kernel_size"], op["stride"], op["padding"]
                )
            )
    wname = f"{neuron}.p{k}.{plan.weighted['name']}"
    if plan.weighted["kind"] == "dense":
        chain.append(DenseNode(wname, w_int.reshape(w_int.shape[0], -1), weight_exp=weight_exp,
                               num_weight_bits=weight_bits, delay=plan.delay))
    else:
        chain.append(
            ConvNode(
                wname,
                w_int,
                tuple(plan.weighted["input_shape"]),
                weight_exp=weight_exp,
                stride=plan.weighted["stride"],
                padding=plan.weighted["padding"],
                dilation=plan.weighted["dilation"],
                groups=plan.weighted["groups"],
                delay=int(plan.delay),
            )
        )
    return chain


_RESET_NAMES = {"zero": "resets to 0", "subtract": "subtracts the threshold"}


def neuron_semantics(
    neurons: dict[str, DiscreteNeuron],
    records: dict[str, torch.Tensor],
    f: NumberFormats,
    caps: NeuronCapabilities,
    approximate: Iterable[str] = (),
) -> tuple[NumberFormats, dict[str, int], list[str]]:
    """The target formats with the source's reset and comparison, each spiking node's
    ``max_spikes``, and notes on every accepted approximation (see :func:`quantize`).

    Reset and comparison are graph-wide rules of the formats, so all spiking nodes must
    ask for the same one. A multi-spike node gets ``max_spikes`` = its convention's cap,
    lowered to what the target's graded spikes hold (``2^bits - 1``, at most 2^15 - 1 to
    keep ``W @ n`` inside the synaptic sum); the note says when calibration reached it."""
    accept = set(approximate)
    unknown = accept - set(APPROXIMATIONS)
    if unknown:
        raise QuantizationError(f"unknown approximation(s) {sorted(unknown)}; "
                                f"known: {', '.join(APPROXIMATIONS)}")
    spiking = {k: dn for k, dn in neurons.items() if dn.spiking}
    notes: list[str] = []
    want = {k: integer_neuron(dn) for k, dn in spiking.items()}

    def pick(kind: str, attr: str, allowed: tuple[str, ...], default: str, label) -> str:
        asked = {getattr(w, attr) for w in want.values()}
        if not asked:
            return default
        first = next(k for k, w in want.items() if getattr(w, attr) == sorted(asked)[0])
        if len(asked) == 1 and next(iter(asked)) in allowed:
            return next(iter(asked))
        node = next((k for k, w in want.items() if getattr(w, attr) not in allowed), first)
        val = getattr(want[node], attr)
        why = (f"the neurons ask for different rules ({', '.join(sorted(asked))})"
               if len(asked) > 1 else f"the target's neuron {label(default)} only")
        if kind not in accept:
            raise QuantizationError(
                f"node '{node}': the source {label(val)}, but {why}; pass --approximate "
                f"{kind} to deploy with the target's rule and measure the cost"
            )
        notes.append(f"APPROXIMATION ({kind}): node '{node}' and others: the source "
                     f"{label(val)}; deployed with the target's rule ({label(default)}) "
                     "as accepted with --approximate")
        return default

    reset = pick("reset", "reset", caps.resets, f.reset, lambda r: _RESET_NAMES[r])
    compare = pick("threshold", "compare", caps.threshold_compares, f.threshold_compare,
                   lambda c: f"spikes when v {c} threshold")
    for k, w in want.items():
        if w.inexact:
            if "reset" not in accept:
                raise QuantizationError(f"node '{k}': {w.inexact}; pass --approximate reset "
                                        "to deploy it and measure the cost")
            notes.append(f"APPROXIMATION (reset): node '{k}': {w.inexact}")
    max_spikes: dict[str, int] = {}
    bits = min(int(caps.max_message_bits), 15)
    for k, w in want.items():
        if w.max_spikes == 1:
            continue
        seen = int(torch.as_tensor(records[k]).max().item()) if k in records else 0
        if bits < 2:
            if "spikes" not in accept:
                raise QuantizationError(
                    f"node '{k}': the source emits several spikes per step (up to {seen} on "
                    "the calibration data), but the target's neurons send one spike per step "
                    "(no graded spikes); pass --approximate spikes to deploy binary spikes")
            notes.append(f"APPROXIMATION (spikes): node '{k}' emits one spike per step; the "
                         f"source emits up to {seen} on the calibration data")
            continue
        cap = (1 << bits) - 1
        n = cap if w.max_spikes is None else min(int(w.max_spikes), cap)
        max_spikes[k] = n
        if w.max_spikes is None or n < w.max_spikes:
            notes.append(f"node '{k}': at most {n} spikes per step on the target "
                         f"({bits}-bit graded spikes; {seen} seen on the calibration data)")
    return replace(f, reset=reset, threshold_compare=compare), max_spikes, notes


def _assemble_graph(
    graph: nir.NIRGraph,
    struct: Structure,
    in_node: InputNode,
    layers: list[_Layer],
    *,
    dt: float,
    target: str,
    num_steps: int,
    metadata: dict[str, Any] | None,
    formats: NumberFormats,
) -> QGraph:
    """The validated QGraph: nodes in an order where every synapse node follows its
    source, the NIR input renamed ``input``, and one output node per NIR Output."""
    lifs = {layer.lif.name: layer.lif for layer in layers}
    pending: dict[str, list[Node]] = {}
    for layer in layers:
        for src, node in layer.synapses:
            pending.setdefault(src, []).append(node)
    ordered: dict[str, Any] = {"input": in_node}
    for src in struct.order:
        if src != struct.input:
            ordered[src] = lifs[src]
        for node in pending.get(src, []):
            ordered[node.name] = node
    name_map = {struct.input: "input", **{n: n for n in lifs}}
    edges = [
        (name_map.get(s, s), name_map.get(d, d)) for layer in layers for s, d in layer.edges
    ]
    outputs = [n for n, v in graph.nodes.items() if isinstance(v, nir.Output)]
    if not outputs:
        raise GraphError("the NIR graph has no Output node")
    for out in outputs:
        preds = struct.preds[out]
        if len(preds) != 1 or preds[0] not in lifs:
            raise QuantizationError(
                f"output '{out}' must be fed directly by a spiking neuron layer (got {preds})"
            )
        oname = f"output.{out}" if out in ordered else out
        ordered[oname] = OutputNode(oname, lifs[preds[0]].shape)
        edges.append((preds[0], oname))
    qg = QGraph(
        ordered,
        edges,
        dt=float(dt),
        target=target,
        num_steps=int(num_steps),
        metadata=dict(metadata or {}),
        formats=formats,
    )
    # the ops carry the float model's delays (nir.Delay); make them the chip's, aligning
    # merge points on targets with delays (snn2hw.quant.align_delays)
    qg.metadata["alignment"] = align_graph(qg).to_dict()
    qg.validate()
    return qg
