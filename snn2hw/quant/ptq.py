"""Post-training quantization: a float NIR graph (plus calibration data) -> a QGraph.

For every spiking neuron node ``L`` (SPEC.md §5), with per-step parameters from
:func:`snn2hw.nir.discretize.discretize_neuron`:

* its incoming synapse paths ``source -> ops -> L`` become QGraph paths; the one weighted
  op of a path (Affine/Linear/Conv2d; consecutive Affines are fused) gets the
  *threshold-normalized* float weights ``Mn[i, :] = scale · in_gain_i · W[i, :] / θ'_i``,
  where ``θ'_i = v_threshold_i - v_reset_i`` (the reset is shifted to 0) and ``scale`` the
  path's constant factors (AvgPool 1/k², Scale, the input's integer unit);
* one integer threshold ``vth`` per layer is chosen as large as the constraints allow
  (most resolution for threshold, bias and decays): ``vth <= 131071``; no u wrap on the
  calibration data with a 2x margin (``vth · max|u_norm| <= 2^16``); the bias fits
  13-bit mantissa << 7; every path's weights fit 8 bits with ``weight_exp <= 7``;
* per path, ``weight_exp`` is the smallest exponent that fits ``vth · Mn · 2^-e`` into 8
  bits (even values for mixed-sign matrices), and ``W_int = round(vth · Mn · 2^-e)``;
* ``du = round(4096(1 - alpha)) - 1``, ``dv = round(4096(1 - beta))`` (one per layer);
* ``bias = round(64 · vth · (v_bias - (1 - beta) v_reset + g·b_syn) / θ')`` split into
  mantissa and exponent, where ``b_syn`` are Affine/Conv biases (exact for alpha = 0,
  steady-state for CUBA layers — reported as an approximation).

Everything that cannot be represented raises :class:`QuantizationError` naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir.discretize import DiscreteNeuron, is_neuron
from snn2hw.quant.formats import (
    BIAS_INT_MAX,
    choose_weight_exp,
    decay_in_range,
    du_from_alpha,
    dv_from_beta,
    round_weights,
    split_bias,
    weight_limit,
)
from snn2hw.quant.qgraph import (
    VTH_MAX,
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

WRAP_SAFE = 2**16  # |vth · u_norm| bound: half of the 2^17 at which u can wrap in one step
_SYNAPSE_TYPES = (
    nir.Affine,
    nir.Linear,
    nir.Conv2d,
    nir.SumPool2d,
    nir.AvgPool2d,
    nir.Flatten,
    nir.Scale,
)


@dataclass
class PathPlan:
    """One synapse path into a neuron, in float, before rounding."""

    source: str
    ops: list[dict[str, Any]]  # structural ops (sumpool/flatten) applied before the weighted op
    weighted: dict[str, Any]  # {"kind": "dense"|"conv", "weight": float array, conv geometry}
    bias: np.ndarray | None  # synaptic bias per output neuron (float, before gain)
    scale: float
    names: list[str]  # NIR node names along the path (for messages)


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


def _shape(t: Any) -> tuple[int, ...]:
    return tuple(int(v) for v in np.atleast_1d(np.asarray(t)).tolist())


def _port_shape(types: dict[str, Any] | None) -> tuple[int, ...] | None:
    if not types:
        return None
    val = next(iter(types.values()))
    return _shape(val) if val is not None else None


def _pair(v: Any) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


class _Structure:
    """The NIR graph seen as spike sources, neurons and the synapse paths between them."""

    def __init__(self, graph: nir.NIRGraph) -> None:
        self.graph = graph
        self.nodes = graph.nodes
        self.preds: dict[str, list[str]] = {n: [] for n in self.nodes}
        self.succs: dict[str, list[str]] = {n: [] for n in self.nodes}
        for s, d in graph.edges:
            self.preds[d].append(s)
            self.succs[s].append(d)
        inputs = [n for n, v in self.nodes.items() if isinstance(v, nir.Input)]
        if len(inputs) != 1:
            raise GraphError(f"need exactly one Input node to deploy, found {len(inputs)}")
        self.input = inputs[0]
        self.neurons = [n for n, v in self.nodes.items() if is_neuron(v)]
        for n in self.neurons:
            v = self.nodes[n]
            if not isinstance(v, (nir.LIF, nir.CubaLIF, nir.IF)):
                raise QuantizationError(
                    f"node '{n}' ({type(v).__name__}) is a non-spiking readout; Loihi LIF layers "
                    "must spike. Replace it by a LIF/CubaLIF/IF layer or drop it before export"
                )
        for n, v in self.nodes.items():
            if not isinstance(v, (nir.Input, nir.Output, *_SYNAPSE_TYPES)) and not is_neuron(v):
                raise QuantizationError(
                    f"node '{n}' ({type(v).__name__}) cannot be lowered to Loihi; supported: "
                    "Input, Output, Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d, Flatten, "
                    "LIF, CubaLIF, IF"
                )
        self.order = self._topo_order()

    def _topo_order(self) -> list[str]:
        """Sources (input, neurons) in an order where feed-forward sources come first."""
        seen: dict[str, int] = {}
        order: list[str] = []

        def visit(n: str) -> None:
            state = seen.get(n, 0)
            if state:
                return  # visited, or on the stack (a recurrent edge)
            seen[n] = 1
            for p in self.preds[n]:
                visit(p)
            seen[n] = 2
            order.append(n)

        for n in self.nodes:
            visit(n)
        return [n for n in order if n == self.input or n in self.neurons]

    def paths(self, neuron: str) -> list[list[str]]:
        out: list[list[str]] = []

        def walk(n: str, tail: list[str]) -> None:
            if n == self.input or n in self.neurons:
                out.append([n, *tail])
                return
            if isinstance(self.nodes[n], nir.Output):
                raise GraphError(f"node '{n}' (Output) feeds another node")
            if not self.preds[n]:
                raise GraphError(f"node '{n}' ({type(self.nodes[n]).__name__}) has no input edge")
            if len(self.preds[n]) > 1:
                raise QuantizationError(
                    f"node '{n}' sums several inputs before a neuron; only neurons may sum inputs"
                )
            if n in tail:
                raise GraphError(f"loop through '{n}' that contains no neuron")
            walk(self.preds[n][0], [n, *tail])

        for p in self.preds[neuron]:
            walk(p, [])
        return out


def _plan_path(struct: _Structure, path: list[str], target_shape: tuple[int, ...]) -> PathPlan:
    source, ops_names = path[0], path[1:]
    structural: list[dict[str, Any]] = []
    weighted: dict[str, Any] | None = None
    bias: np.ndarray | None = None
    scale = 1.0
    for name in ops_names:
        node = struct.nodes[name]
        if isinstance(node, (nir.Affine, nir.Linear)):
            w = np.asarray(node.weight, dtype=np.float64)
            b = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else None
            if weighted is None:
                weighted = {"kind": "dense", "weight": w * scale, "name": name}
                bias = None if b is None else b
                scale = 1.0
            elif weighted["kind"] == "dense":  # fuse consecutive linear maps
                weighted["weight"] = w @ weighted["weight"] * scale
                bias = (w @ bias if bias is not None else 0.0) + (b if b is not None else 0.0)
                bias = None if np.isscalar(bias) else bias
                scale = 1.0
            else:
                raise QuantizationError(
                    f"path {' -> '.join(path)}: a linear map after a convolution with no neuron "
                    "in between is not supported"
                )
        elif isinstance(node, nir.Conv2d):
            if weighted is not None:
                raise QuantizationError(f"path {' -> '.join(path)}: two weighted ops in one hop")
            in_shape = _port_shape(node.input_type)
            if in_shape is None or len(in_shape) != 3:
                raise GraphError(f"node '{name}' (Conv2d) has no (C, H, W) input shape")
            pad = node.padding
            if isinstance(pad, str):
                raise QuantizationError(
                    f"node '{name}' (Conv2d): string padding '{pad}' unsupported"
                )
            weighted = {
                "kind": "conv",
                "weight": np.asarray(node.weight, np.float64) * scale,
                "input_shape": in_shape,
                "stride": _pair(node.stride),
                "padding": _pair(pad),
                "dilation": _pair(node.dilation),
                "groups": int(node.groups),
                "name": name,
            }
            b = np.asarray(node.bias, dtype=np.float64)
            bias = b if b.size else None
            scale = 1.0
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            if weighted is not None:
                raise QuantizationError(f"path {' -> '.join(path)}: pooling after a weighted op")
            k = _pair(node.kernel_size)
            in_shape = _port_shape(node.input_type)
            if in_shape is None or len(in_shape) != 3:
                in_shape = _node_out_shape(struct, path, name, before=True)
            structural.append(
                {
                    "kind": "sumpool",
                    "name": name,
                    "input_shape": in_shape,
                    "kernel_size": k,
                    "stride": _pair(node.stride),
                    "padding": _pair(node.padding),
                }
            )
            if isinstance(node, nir.AvgPool2d):
                scale /= k[0] * k[1]
        elif isinstance(node, nir.Flatten):
            in_shape = _port_shape(node.input_type) or _node_out_shape(struct, path, name, True)
            if weighted is None:
                structural.append({"kind": "flatten", "name": name, "input_shape": in_shape})
        elif isinstance(node, nir.Scale):
            s = np.asarray(node.scale, dtype=np.float64)
            if not np.allclose(s, s.flat[0]):
                raise QuantizationError(f"node '{name}' (Scale): only uniform scales are supported")
            if weighted is None:
                scale *= float(s.flat[0])
            else:
                weighted["weight"] = weighted["weight"] * float(s.flat[0])
                bias = None if bias is None else bias * float(s.flat[0])
        else:
            raise QuantizationError(f"node '{name}' ({type(node).__name__}) inside a synapse path")
    if weighted is None:  # direct connection: an identity map carries the values
        n = int(np.prod(target_shape))
        if len(target_shape) == 3:
            c = target_shape[0]
            weighted = {
                "kind": "conv",
                "weight": np.ones((c, 1, 1, 1)) * scale,
                "input_shape": target_shape,
                "stride": (1, 1),
                "padding": (0, 0),
                "dilation": (1, 1),
                "groups": c,
                "name": f"{path[-1]}.identity",
            }
        else:
            weighted = {
                "kind": "dense",
                "weight": np.eye(n) * scale,
                "name": f"{path[-1]}.identity",
            }
    elif scale != 1.0:
        weighted["weight"] = weighted["weight"] * scale
    return PathPlan(source, structural, weighted, bias, 1.0, path)


def _node_out_shape(
    struct: _Structure, path: list[str], name: str, before: bool
) -> tuple[int, ...]:
    idx = path.index(name)
    prev = struct.nodes[path[idx - 1]]
    shp = _port_shape(getattr(prev, "output_type", None))
    if shp is None:
        raise GraphError(f"node '{name}': cannot infer its input shape")
    return shp


def _out_neuron_count_shape(weighted: dict[str, Any], in_shape: tuple[int, ...]) -> tuple[int, ...]:
    if weighted["kind"] == "dense":
        return (int(weighted["weight"].shape[0]),)
    c, h, w = weighted["input_shape"]
    kh, kw = weighted["weight"].shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = weighted["stride"], weighted["padding"], weighted["dilation"]
    return (
        int(weighted["weight"].shape[0]),
        (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1,
        (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1,
    )


def _per_channel(arr: np.ndarray, shape: tuple[int, ...], what: str, node: str) -> np.ndarray:
    """Per-output-row values: per neuron for flat layers, per channel for (C, H, W)."""
    a = np.broadcast_to(arr, shape)
    if len(shape) == 1:
        return np.asarray(a, dtype=np.float64)
    flat = a.reshape(shape[0], -1)
    if not np.allclose(flat, flat[:, :1], rtol=1e-9, atol=0):
        raise QuantizationError(
            f"node '{node}': {what} varies within a channel; conv layers need it per channel"
        )
    return flat[:, 0].astype(np.float64)


def _apply_structural(x: torch.Tensor, ops: list[dict[str, Any]]) -> torch.Tensor:
    t, b = x.shape[:2]
    for op in ops:
        if op["kind"] == "flatten":
            x = x.reshape(t, b, -1)
        else:
            kh, kw = op["kernel_size"]
            z = x.reshape(t * b, *op["input_shape"])
            z = F.pad(z, (op["padding"][1],) * 2 + (op["padding"][0],) * 2)
            z = F.avg_pool2d(z, (kh, kw), op["stride"], divisor_override=1)
            x = z.reshape(t, b, *z.shape[1:])
    return x


def _apply_weighted(x: torch.Tensor, weighted: dict[str, Any], w: np.ndarray) -> torch.Tensor:
    t, b = x.shape[:2]
    wt = torch.as_tensor(w, dtype=torch.float64)
    if weighted["kind"] == "dense":
        return x.reshape(t, b, -1).to(torch.float64) @ wt.T
    z = x.reshape(t * b, *weighted["input_shape"]).to(torch.float64)
    y = F.conv2d(
        z,
        wt,
        None,
        weighted["stride"],
        weighted["padding"],
        weighted["dilation"],
        weighted["groups"],
    )
    return y.reshape(t, b, *y.shape[1:])


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
) -> QuantResult:
    """Quantize a float NIR graph for a Loihi-style target.

    ``neurons``: per-step parameters of every neuron node (NIRNet.discrete_neurons()).
    ``records``: float outputs ``[T, B, ...]`` of the input node and of every spiking
    neuron on calibration data (NIRNet's ``record=True``); input values are in float units
    and are divided by ``input_scale`` (the float value of one integer input unit: 1 for
    spikes, ``x_max / (2^bits - 1)`` for graded input)."""
    struct = _Structure(graph)
    notes: list[str] = []
    nodes: dict[str, Any] = {}
    edges: list[tuple[str, str]] = []
    # The importer's inferred input shape (it drops nirtorch's leading batch dimension).
    in_shape = input_shape or _port_shape(graph.nodes[struct.input].output_type) or _port_shape(
        graph.nodes[struct.input].input_type
    )
    if in_shape is None:
        raise GraphError(f"input node '{struct.input}' has no shape")
    nodes["input"] = InputNode("input", in_shape, int(input_message_bits))
    name_map = {struct.input: "input"}
    pending: dict[str, list[tuple[str, list[str], PathPlan, np.ndarray]]] = {}
    layer_reports: list[LayerReport] = []
    lifs: dict[str, LIFNode] = {}

    def source_values(src: str) -> torch.Tensor:
        if src not in records:
            raise GraphError(f"calibration records lack node '{src}'")
        x = records[src].detach().to(torch.float64)
        return x / input_scale if src == struct.input else x

    for neuron in [n for n in struct.order if n != struct.input]:
        dn = neurons[neuron]
        shape = tuple(dn.shape)
        theta = dn.vth - dn.v_reset
        if np.any(theta <= 0):
            raise QuantizationError(
                f"node '{neuron}': v_threshold must exceed v_reset (got min "
                f"{float(theta.min()):.4g}); Loihi resets to 0 below a positive threshold"
            )
        du_vals = {du_from_alpha(float(a)) for a in np.unique(dn.alpha)}
        dv_vals = {dv_from_beta(float(b)) for b in np.unique(dn.beta)}
        if len(du_vals) > 1 or len(dv_vals) > 1:
            raise QuantizationError(
                f"node '{neuron}': time constants differ across neurons (du {sorted(du_vals)[:3]}, "
                f"dv {sorted(dv_vals)[:3]}); Loihi has one du and one dv per population — "
                "split the layer or share time constants"
            )
        du, dv = du_vals.pop(), dv_vals.pop()
        why = decay_in_range(du, dv)
        if why:
            raise QuantizationError(f"node '{neuron}': {why}")
        alpha = float(dn.alpha.flat[0])
        beta = float(dn.beta.flat[0])
        lnotes: list[str] = []
        paths = struct.paths(neuron)
        if not paths:
            raise GraphError(f"neuron '{neuron}' has no input")
        plans = [_plan_path(struct, p, shape) for p in paths]
        g_row = _per_channel(dn.in_gain, shape, "input gain", neuron)
        th_row = _per_channel(theta, shape, "threshold", neuron)
        v_bias = np.broadcast_to(dn.v_bias - (1.0 - beta) * dn.v_reset, shape).astype(np.float64)
        norm_ws = []
        current = None
        for plan in plans:
            w = plan.weighted["weight"]
            if plan.source == struct.input:
                w = w * input_scale  # weights act on integer input units
            out_shape = _out_neuron_count_shape(plan.weighted, shape)
            if int(np.prod(out_shape)) != int(np.prod(shape)):
                raise GraphError(
                    f"path {' -> '.join(plan.names)} produces {list(out_shape)} values but "
                    f"'{neuron}' has shape {list(shape)}"
                )
            rowscale = (g_row / th_row).reshape(-1, *([1] * (w.ndim - 1)))
            mn = w * rowscale
            if not np.all(np.isfinite(mn)):
                raise GraphError(f"path {' -> '.join(plan.names)}: NaN or Inf weights")
            norm_ws.append(mn)
            if plan.bias is not None:
                b = plan.bias
                if not np.all(np.isfinite(b)):
                    raise GraphError(f"node '{plan.names[-1]}': NaN or Inf in its bias")
                b_full = np.broadcast_to(
                    b.reshape(-1, *([1] * (len(shape) - 1))) if len(shape) > 1 else b, shape
                )
                g_full = np.broadcast_to(dn.in_gain, shape)
                if alpha == 0.0:
                    v_bias = v_bias + g_full * b_full
                else:
                    v_bias = v_bias + g_full * b_full / max(1.0 - alpha, 1e-9)
                    if np.any(b_full != 0):
                        lnotes.append(
                            f"synaptic bias of '{plan.names[-1]}' into a CUBA layer mapped to its "
                            "steady-state membrane bias (transient differs)"
                        )
            x = _apply_structural(source_values(plan.source), plan.ops)
            c = _apply_weighted(x, plan.weighted, mn).reshape(x.shape[0], x.shape[1], *shape)
            current = c if current is None else current + c
        # normalized synaptic current u_norm (u = alpha u + current), for the wrap bound
        u = torch.zeros_like(current[0])
        u_max = 0.0
        for t in range(current.shape[0]):
            u = alpha * u + current[t]
            u_max = max(u_max, float(u.abs().max()))
        v_bias_norm = v_bias / np.broadcast_to(theta, shape)
        bounds = {"17-bit threshold": float(VTH_MAX)}
        if u_max > 0:
            bounds["u wrap margin on calibration data"] = WRAP_SAFE / u_max
        bmax = float(np.abs(v_bias_norm).max())
        if bmax > 0:
            bounds["bias range"] = BIAS_INT_MAX / (64.0 * bmax)
        for plan, mn in zip(plans, norm_ws, strict=True):
            m = float(np.abs(mn).max())
            if m > 0:
                bounds[f"8-bit weights with weight_exp <= 7 ({plan.names[-1]})"] = (
                    weight_limit(mn) * 2**7 / m
                )
        limited_by = min(bounds, key=bounds.get)
        vth_int = int(math.floor(bounds[limited_by]))
        if vth_int < 1:
            raise QuantizationError(
                f"node '{neuron}': no integer threshold satisfies the target ({limited_by}); "
                "weights are too large relative to the threshold"
            )
        lif_name = neuron
        b_int = np.round(64.0 * vth_int * v_bias_norm)
        mant, exp = split_bias(b_int)
        lif = LIFNode(lif_name, shape, du=du, dv=dv, vth=vth_int, bias_mant=mant, bias_exp=exp)
        lifs[neuron] = lif
        exps, max_w, zeros, total = [], 0, 0, 0
        path_info: list[dict[str, Any]] = []
        for k, (plan, mn) in enumerate(zip(plans, norm_ws, strict=True)):
            m = float(np.abs(mn).max())
            e = choose_weight_exp(vth_int, m, weight_limit(mn))
            w_int = round_weights(vth_int * mn * 2.0 ** (-e))
            exps.append(e)
            path_info.append(
                {
                    "weighted": plan.weighted["name"],
                    "weight_exp": e,
                    "source": plan.source,
                    "row_factor": (
                        vth_int
                        * 2.0 ** (-e)
                        * g_row
                        / th_row
                        * (input_scale if plan.source == struct.input else 1.0)
                    ).tolist(),
                }
            )
            max_w = max(max_w, int(np.abs(w_int).max()) if w_int.size else 0)
            zeros += int((w_int == 0).sum())
            total += w_int.size
            chain: list[str] = []
            for op in plan.ops:
                nm = f"{neuron}.p{k}.{op['name']}"
                if op["kind"] == "flatten":
                    nodes_op = FlattenNode(nm, tuple(op["input_shape"]))
                else:
                    nodes_op = SumPoolNode(
                        nm, tuple(op["input_shape"]), op["kernel_size"], op["stride"], op["padding"]
                    )
                chain.append(nm)
                pending.setdefault(plan.source, []).append((nm, [], plan, nodes_op))
            wname = f"{neuron}.p{k}.{plan.weighted['name']}"
            if plan.weighted["kind"] == "dense":
                wnode = DenseNode(wname, w_int.reshape(w_int.shape[0], -1), weight_exp=e)
            else:
                wnode = ConvNode(
                    wname,
                    w_int,
                    tuple(plan.weighted["input_shape"]),
                    weight_exp=e,
                    stride=plan.weighted["stride"],
                    padding=plan.weighted["padding"],
                    dilation=plan.weighted["dilation"],
                    groups=plan.weighted["groups"],
                )
            chain.append(wname)
            pending.setdefault(plan.source, []).append((wname, [], plan, wnode))
            prev = plan.source
            for nm in chain:
                edges.append((prev, nm))
                prev = nm
            edges.append((prev, neuron))
        if v_bias.any() and np.any(mant == 0) and np.any(v_bias != 0):
            lnotes.append("some non-zero biases round to 0")
        layer_reports.append(
            LayerReport(
                name=neuron,
                nir_type=dn.nir_type,
                shape=shape,
                vth=vth_int,
                du=du,
                dv=dv,
                weight_exps=exps,
                max_weight=max_w,
                zero_weight_fraction=zeros / max(total, 1),
                u_norm_max=u_max,
                limited_by=limited_by,
                notes=lnotes,
                paths=path_info,
            )
        )
        if dn.reset != "hard":
            notes.append(
                f"'{neuron}': trained with {dn.reset} reset; Loihi resets to 0 (approximation)"
            )
        if dn.threshold_op != ">":
            notes.append(
                f"'{neuron}': spikes on '{dn.threshold_op}' in the source framework; "
                "Loihi uses '>' (approximation at exact threshold crossings)"
            )
    # Emit nodes in an order where every synapse node follows its source.
    ordered: dict[str, Any] = {"input": nodes["input"]}
    name_map.update({n: n for n in lifs})
    for src in struct.order:
        if src != struct.input:
            ordered[src] = lifs[src]
        for nm, _, _, node in pending.get(src, []):
            ordered[nm] = node
    edges = [(name_map.get(s, s), name_map.get(d, d)) for s, d in edges]
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
    )
    qg.validate()
    return QuantResult(qg, layer_reports, notes, float(input_scale))
