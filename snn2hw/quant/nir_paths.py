"""A float NIR graph seen as spike sources, neurons and the synapse paths between them.

The first step of post-training quantization (:mod:`snn2hw.quant.ptq`):

* :class:`Structure` checks that every node can be lowered (Input, Output, synaptic ops,
  LIF/CubaLIF/IF neurons), finds the one input and orders the sources;
* :func:`plan_path` folds one path ``source -> ops -> neuron`` into structural ops
  (sum pooling, flatten), one weighted op (dense or conv; consecutive Affines fused,
  Scale and AvgPool factors folded in; an identity map for direct connections) and its
  synaptic bias — all still float;
* :func:`apply_structural` / :func:`apply_weighted` run a planned path in float64 on
  calibration records.

Dependencies: nir, numpy, torch, :mod:`snn2hw.common`, :mod:`snn2hw.nir.discretize` and
:mod:`snn2hw.quant.nodes`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import nir
import numpy as np
import torch
import torch.nn.functional as F

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.nir.discretize import is_neuron
from snn2hw.quant.nodes import as_shape, conv_out_size

SYNAPSE_TYPES = (
    nir.Affine,
    nir.Linear,
    nir.Conv2d,
    nir.SumPool2d,
    nir.AvgPool2d,
    nir.Flatten,
    nir.Scale,
    nir.Delay,
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
    # float-time delay of the path in steps (nir.Delay nodes): an int, or per synapse
    # (N_out, N_in) for a dense op; becomes the weighted op's delay (quant.align_delays)
    delay: int | np.ndarray = 0


def port_shape(types: dict[str, Any] | None) -> tuple[int, ...] | None:
    """The shape of a NIR node's first port (``input_type``/``output_type``), if known."""
    if not types:
        return None
    val = next(iter(types.values()))
    return as_shape(val) if val is not None else None


def _pair(v: Any) -> tuple[int, int]:
    a = np.atleast_1d(np.asarray(v)).astype(int).tolist()
    return (a[0], a[0]) if len(a) == 1 else (a[0], a[1])


class Structure:
    """The NIR graph seen as spike sources, neurons and the synapse paths between them."""

    def __init__(self, graph: nir.NIRGraph, dt: float | None = None) -> None:
        self.graph = graph
        self.dt = dt  # needed to read Delay nodes in steps
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
        self._check_lowerable()
        self.order = self._topo_order()

    def _check_lowerable(self) -> None:
        """Every neuron spikes and every other node is a supported synaptic op."""
        for n in self.neurons:
            v = self.nodes[n]
            if not isinstance(v, (nir.LIF, nir.CubaLIF, nir.IF)):
                raise QuantizationError(
                    f"node '{n}' ({type(v).__name__}) is a non-spiking readout; Loihi LIF layers "
                    "must spike. Replace it by a LIF/CubaLIF/IF layer or drop it before export"
                )
        for n, v in self.nodes.items():
            if not isinstance(v, (nir.Input, nir.Output, *SYNAPSE_TYPES)) and not is_neuron(v):
                raise QuantizationError(
                    f"node '{n}' ({type(v).__name__}) cannot be lowered to Loihi; supported: "
                    "Input, Output, Affine, Linear, Scale, Conv2d, SumPool2d, AvgPool2d, Flatten, "
                    "Delay, LIF, CubaLIF, IF"
                )

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
        """Every path ``[source, op_1, ..., op_k]`` (NIR names) that feeds ``neuron``."""
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


# ----- planning one path -------------------------------------------------------------------


@dataclass
class _PathFolder:
    """Folds the ops of one path, in order, into structural ops + one weighted op."""

    struct: Structure
    path: list[str]
    structural: list[dict[str, Any]] = field(default_factory=list)
    weighted: dict[str, Any] | None = None
    bias: np.ndarray | None = None
    scale: float = 1.0
    # Delay nodes met so far: (steps array, shape it applies to, before the weighted op?,
    # a sum pool lies between it and the weighted op?)
    delays: list[tuple[str, np.ndarray, bool, bool]] = field(default_factory=list)

    def delay(self, name: str, node: nir.Delay) -> None:
        from snn2hw.nir.delays import delay_steps

        if self.struct.dt is None:
            raise GraphError(f"node '{name}' (Delay): dt is needed to read delays in steps")
        self.delays.append((name, delay_steps(name, node, self.struct.dt),
                            self.weighted is None, False))

    def _pooled(self) -> None:
        """A sum pool mixes elements: earlier per-element delays must be uniform."""
        self.delays = [(n, d, pre, True) for n, d, pre, _ in self.delays]

    def linear(self, name: str, node: nir.Affine | nir.Linear) -> None:
        w = np.asarray(node.weight, dtype=np.float64)
        b = np.asarray(node.bias, dtype=np.float64) if isinstance(node, nir.Affine) else None
        if self.weighted is None:
            self.weighted = {"kind": "dense", "weight": w * self.scale, "name": name}
            self.bias = None if b is None else b
        elif self.weighted["kind"] == "dense":  # fuse consecutive linear maps
            self.weighted["weight"] = w @ self.weighted["weight"] * self.scale
            bias = (w @ self.bias if self.bias is not None else 0.0) + (b if b is not None else 0.0)
            self.bias = None if np.isscalar(bias) else bias
        else:
            raise QuantizationError(
                f"path {' -> '.join(self.path)}: a linear map after a convolution with no neuron "
                "in between is not supported"
            )
        self.scale = 1.0

    def conv(self, name: str, node: nir.Conv2d) -> None:
        if self.weighted is not None:
            raise QuantizationError(f"path {' -> '.join(self.path)}: two weighted ops in one hop")
        in_shape = port_shape(node.input_type)
        if in_shape is None or len(in_shape) != 3:
            raise GraphError(f"node '{name}' (Conv2d) has no (C, H, W) input shape")
        pad = node.padding
        if isinstance(pad, str):
            raise QuantizationError(f"node '{name}' (Conv2d): string padding '{pad}' unsupported")
        self.weighted = {
            "kind": "conv",
            "weight": np.asarray(node.weight, np.float64) * self.scale,
            "input_shape": in_shape,
            "stride": _pair(node.stride),
            "padding": _pair(pad),
            "dilation": _pair(node.dilation),
            "groups": int(node.groups),
            "name": name,
        }
        b = np.asarray(node.bias, dtype=np.float64)
        self.bias = b if b.size else None
        self.scale = 1.0

    def pool(self, name: str, node: nir.SumPool2d | nir.AvgPool2d) -> None:
        if self.weighted is not None:
            raise QuantizationError(f"path {' -> '.join(self.path)}: pooling after a weighted op")
        self._pooled()
        k = _pair(node.kernel_size)
        in_shape = port_shape(node.input_type)
        if in_shape is None or len(in_shape) != 3:
            in_shape = self._shape_before(name)
        self.structural.append(
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
            self.scale /= k[0] * k[1]

    def flatten(self, name: str, node: nir.Flatten) -> None:
        in_shape = port_shape(node.input_type) or self._shape_before(name)
        if self.weighted is None:
            self.structural.append({"kind": "flatten", "name": name, "input_shape": in_shape})

    def scale_by(self, name: str, node: nir.Scale) -> None:
        s = np.asarray(node.scale, dtype=np.float64)
        if not np.allclose(s, s.flat[0]):
            raise QuantizationError(f"node '{name}' (Scale): only uniform scales are supported")
        if self.weighted is None:
            self.scale *= float(s.flat[0])
        else:
            self.weighted["weight"] = self.weighted["weight"] * float(s.flat[0])
            self.bias = None if self.bias is None else self.bias * float(s.flat[0])

    def finish(self, target_shape: tuple[int, ...]) -> PathPlan:
        """The plan; a direct connection gets an identity map that carries the values."""
        if self.weighted is None:
            self.weighted = _identity_map(target_shape, self.scale, f"{self.path[-1]}.identity")
        elif self.scale != 1.0:
            self.weighted["weight"] = self.weighted["weight"] * self.scale
        return PathPlan(self.path[0], self.structural, self.weighted, self.bias, 1.0, self.path,
                        self._synaptic_delay())

    def _synaptic_delay(self) -> int | np.ndarray:
        """The path's Delay nodes as one delay of its weighted op: an int when every delay
        is uniform, else (dense only) per synapse ``D[i, j] = post_i + pre_j``."""
        w = self.weighted
        assert w is not None
        uniform = sum(int(d.max()) for _, d, _, _ in self.delays
                      if d.size and np.all(d == d.flat[0]))
        mixed = [(n, d, pre, pooled) for n, d, pre, pooled in self.delays
                 if d.size and not np.all(d == d.flat[0])]
        if not mixed:
            return uniform
        for n, _, _, pooled in mixed:
            if w["kind"] != "dense" or pooled:
                where = "a convolution" if w["kind"] != "dense" else "a pooling window"
                raise QuantizationError(
                    f"node '{n}' (Delay): per-element delays before {where} cannot become "
                    "synaptic delays (a conv carries one delay); use one delay for the node")
        n_out, n_in = w["weight"].shape[0], int(np.prod(w["weight"].shape[1:]))
        total = np.full((n_out, n_in), uniform, dtype=np.int64)
        for n, d, pre, _ in mixed:
            flat = d.reshape(-1)
            if pre and flat.size == n_in:
                total += flat[None, :]
            elif not pre and flat.size == n_out:
                total += flat[:, None]
            else:
                raise QuantizationError(f"node '{n}' (Delay): {flat.size} delays do not match "
                                        f"the {n_in} inputs / {n_out} outputs of its dense op")
        return total

    def _shape_before(self, name: str) -> tuple[int, ...]:
        """Output shape of the node before ``name`` on the path (when ``name`` lacks one)."""
        idx = self.path.index(name)
        prev = self.struct.nodes[self.path[idx - 1]]
        shp = port_shape(getattr(prev, "output_type", None))
        if shp is None:
            raise GraphError(f"node '{name}': cannot infer its input shape")
        return shp


def _identity_map(target_shape: tuple[int, ...], scale: float, name: str) -> dict[str, Any]:
    """A weighted op that passes ``scale`` times its input through: depthwise 1x1 conv for
    (C, H, W) targets, an identity matrix otherwise."""
    if len(target_shape) == 3:
        c = target_shape[0]
        return {
            "kind": "conv",
            "weight": np.ones((c, 1, 1, 1)) * scale,
            "input_shape": target_shape,
            "stride": (1, 1),
            "padding": (0, 0),
            "dilation": (1, 1),
            "groups": c,
            "name": name,
        }
    n = int(np.prod(target_shape))
    return {"kind": "dense", "weight": np.eye(n) * scale, "name": name}


def plan_path(struct: Structure, path: list[str], target_shape: tuple[int, ...]) -> PathPlan:
    """Fold the NIR ops of ``path`` (``[source, op_1, ..., op_k]``) into a :class:`PathPlan`."""
    folder = _PathFolder(struct, path)
    for name in path[1:]:
        node = struct.nodes[name]
        if isinstance(node, (nir.Affine, nir.Linear)):
            folder.linear(name, node)
        elif isinstance(node, nir.Conv2d):
            folder.conv(name, node)
        elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            folder.pool(name, node)
        elif isinstance(node, nir.Flatten):
            folder.flatten(name, node)
        elif isinstance(node, nir.Scale):
            folder.scale_by(name, node)
        elif isinstance(node, nir.Delay):
            folder.delay(name, node)
        else:
            raise QuantizationError(f"node '{name}' ({type(node).__name__}) inside a synapse path")
    return folder.finish(target_shape)


def weighted_out_shape(weighted: dict[str, Any]) -> tuple[int, ...]:
    """Shape of what a planned weighted op emits (same formula as the QGraph nodes)."""
    if weighted["kind"] == "dense":
        return (int(weighted["weight"].shape[0]),)
    _, h, w = weighted["input_shape"]
    kh, kw = weighted["weight"].shape[2:]
    (sh, sw), (ph, pw), (dh, dw) = weighted["stride"], weighted["padding"], weighted["dilation"]
    return (
        int(weighted["weight"].shape[0]),
        conv_out_size(h, kh, sh, ph, dh),
        conv_out_size(w, kw, sw, pw, dw),
    )


# ----- running a planned path in float -----------------------------------------------------


def apply_structural(x: torch.Tensor, ops: list[dict[str, Any]]) -> torch.Tensor:
    """Apply a plan's structural ops to ``x`` ``[T, B, ...]`` (exact window sums, flatten)."""
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


def apply_weighted(x: torch.Tensor, weighted: dict[str, Any], w: np.ndarray) -> torch.Tensor:
    """Apply a plan's weighted op with weights ``w`` to ``x`` ``[T, B, ...]`` in float64."""
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
