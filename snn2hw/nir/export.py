"""Export a :class:`~snn2hw.nn.model.SpikingNet` to NIR.

Layer by layer (node names count per kind, ``fc1``, ``lif1``, ``conv1``, ...; every node's
metadata ``snn2hw_layer`` holds the module path in the model, e.g. ``layers.3`` or
``layers.5.block.0``, so that reports can refer back):

* linear -> ``Affine`` (``Linear`` without bias); conv -> ``Conv2d``; avgpool/sumpool ->
  ``AvgPool2d``/``SumPool2d``; flatten -> ``Flatten(start_dim=0)`` over the node shape.
* dropout -> removed (identity at inference); norm (:class:`TemporalNorm`) -> folded into
  the preceding linear/conv: rows scaled, shift added to the bias.
* residual -> both branches' last nodes feed the next node (NIR sums parallel edges).
* neuron -> ``LIF`` (alpha = 0), ``IF`` (alpha = 0, beta = 1) or ``CubaLIF``, with the
  per-step input gain 1: ``tau = dt/(1-beta)``, ``r = tau/dt``; CubaLIF adds
  ``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``. SRM layers are the CubaLIF they equal
  (metadata ``snn2hw_kind = "srm"``). A model trained with hop delays
  (``arch["hop_delays"]``) gets a ``Delay`` of ``dt`` on every path into a neuron
  (:mod:`snn2hw.nir.delays`). Subtractive reset cannot be expressed in NIR: it is
  exported as ``v_reset = 0`` with node metadata ``reset = "subtract"`` and a warning.

Parameters are written in float64 so that reading them back with
:func:`snn2hw.nir.discretize.discretize_neuron` gives the trained per-step factors exactly.
"""

from __future__ import annotations

import math
import os
import warnings
from collections import Counter
from typing import Any

import nir
import numpy as np
import torch
from torch import nn

from snn2hw.common.atomic_io import atomic_path
from snn2hw.common.errors import GraphError
from snn2hw.nir.delays import delay_node
from snn2hw.nn.layers import (
    Residual,
    SeqAvgPool2d,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    SeqSumPool2d,
    TemporalNorm,
    TimeDropout,
)
from snn2hw.nn.model import SpikingNet
from snn2hw.nn.neurons import CubaLIF

PRODUCER = "snn2hw"
_MIN_THRESHOLD = 1e-3  # CubaLIF.forward clamps the threshold to this


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


class _Exporter:
    def __init__(self, dt: float) -> None:
        self.dt = dt
        self.nodes: dict[str, nir.NIRNode] = {}
        self.edges: list[tuple[str, str]] = []
        self.count: Counter[str] = Counter()
        self.warnings: list[str] = []

    def name(self, prefix: str) -> str:
        self.count[prefix] += 1
        return f"{prefix}{self.count[prefix]}"

    def add(self, prefix: str, node: nir.NIRNode, tails: list[str], path: str) -> list[str]:
        name = self.name(prefix)
        node.metadata = {**node.metadata, "snn2hw_layer": path}
        self.nodes[name] = node
        self.edges.extend((t, name) for t in tails)
        return [name]

    def merge(self, tails: list[str], shape: tuple[int, ...], path: str) -> list[str]:
        """Parallel edges from one node would be duplicates: scale by the multiplicity."""
        out: list[str] = []
        for t, m in Counter(tails).items():
            if m == 1:
                out.append(t)
            else:
                scale = nir.Scale(scale=np.full(shape, float(m)))
                out += self.add("scale", scale, [t], path)
        return out

    def sequence(
        self, seq: nn.Sequential, prefix: str, tails: list[str], shape: tuple[int, ...]
    ) -> tuple[list[str], tuple[int, ...]]:
        for idx, layer in seq.named_children():
            path = f"{prefix}.{idx}"
            tails, shape = self.layer(layer, path, tails, shape)
        return tails, shape

    def layer(
        self, layer: nn.Module, path: str, tails: list[str], shape: tuple[int, ...]
    ) -> tuple[list[str], tuple[int, ...]]:
        if isinstance(layer, SeqLinear):
            w = _np(layer.weight)
            node = nir.Linear(weight=w) if layer.bias is None else nir.Affine(w, _np(layer.bias))
            return self.add("fc", node, tails, path), (layer.out_features,)
        if isinstance(layer, SeqConv2d):
            if isinstance(layer.padding, str):
                raise GraphError(f"{path}: string padding '{layer.padding}' is not exported")
            k, s = layer.kernel_size, layer.stride
            p, d = _pair(layer.padding), layer.dilation
            h = (shape[1] + 2 * p[0] - d[0] * (k[0] - 1) - 1) // s[0] + 1
            wd = (shape[2] + 2 * p[1] - d[1] * (k[1] - 1) - 1) // s[1] + 1
            bias = (
                _np(layer.bias) if layer.bias is not None
                else np.zeros(layer.out_channels, np.float32)
            )
            node = nir.Conv2d(
                input_shape=(shape[1], shape[2]), weight=_np(layer.weight), stride=tuple(s),
                padding=p, dilation=tuple(d), groups=int(layer.groups), bias=bias,
            )
            return self.add("conv", node, tails, path), (layer.out_channels, h, wd)
        if isinstance(layer, (SeqAvgPool2d, SeqSumPool2d)):
            k = _pair(layer.kernel_size)
            s = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
            p = _pair(layer.padding)
            avg = isinstance(layer, SeqAvgPool2d)
            cls, prefix = (nir.AvgPool2d, "avgpool") if avg else (nir.SumPool2d, "sumpool")
            node = cls(kernel_size=np.array(k), stride=np.array(s), padding=np.array(p))
            out = (
                shape[0],
                (shape[1] + 2 * p[0] - k[0]) // s[0] + 1,
                (shape[2] + 2 * p[1] - k[1]) // s[1] + 1,
            )
            return self.add(prefix, node, tails, path), out
        if isinstance(layer, SeqFlatten):
            node = nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1)
            return self.add("flatten", node, tails, path), (math.prod(shape),)
        if isinstance(layer, TimeDropout):
            return tails, shape  # identity at inference
        if isinstance(layer, TemporalNorm):
            self.fold_norm(layer, path, tails)
            return tails, shape
        if isinstance(layer, CubaLIF):
            if layer.input_delay:  # hop-delay training: the chip's hop as a nir.Delay per path
                tails = [self.add("delay", delay_node(shape, layer.input_delay, self.dt), [t],
                                  path)[0] for t in tails]
            return self.add(*self.neuron(layer, path, shape), tails, path), shape
        if isinstance(layer, Residual):
            a, sa = self.sequence(layer.block, f"{path}.block", tails, shape)
            b, sb = self.sequence(layer.shortcut, f"{path}.shortcut", tails, shape)
            if sa != sb:
                raise GraphError(f"{path}: residual branches disagree in shape: {sa} vs {sb}")
            return self.merge(a + b, sa, path), sa
        raise GraphError(f"{path}: layer {type(layer).__name__} cannot be exported to NIR")

    def fold_norm(self, norm: TemporalNorm, path: str, tails: list[str]) -> None:
        prev = self.nodes.get(tails[0]) if len(tails) == 1 else None
        if (
            not isinstance(prev, (nir.Affine, nir.Linear, nir.Conv2d))
            or prev.metadata.get("snn2hw_norm_folded")
            or any(src == tails[0] for src, _ in self.edges)  # its output is already used
        ):
            raise GraphError(
                f"{path}: a norm layer must directly follow a linear or conv layer to be "
                "folded into its weights for NIR export"
            )
        scale, shift = (t.detach().double().cpu().numpy() for t in norm.affine())
        w = np.asarray(prev.weight, np.float64)
        bias = getattr(prev, "bias", None)
        b = np.zeros(w.shape[0]) if bias is None else np.asarray(bias, np.float64)
        w2 = w * scale.reshape(-1, *([1] * (w.ndim - 1)))
        b2 = b * scale + shift
        dtype = np.asarray(prev.weight).dtype
        md = {**prev.metadata, "snn2hw_norm_folded": path}
        if isinstance(prev, nir.Conv2d):
            new: nir.NIRNode = nir.Conv2d(
                input_shape=prev.input_shape, weight=w2.astype(dtype), stride=prev.stride,
                padding=prev.padding, dilation=prev.dilation, groups=prev.groups,
                bias=b2.astype(dtype),
            )
        else:
            new = nir.Affine(weight=w2.astype(dtype), bias=b2.astype(dtype))
        new.metadata = md
        self.nodes[tails[0]] = new

    def neuron(self, layer: CubaLIF, path: str, shape: tuple[int, ...]) -> tuple[str, nir.NIRNode]:
        d = layer.describe()
        alpha, beta = d["alpha"], d["beta"]
        vth = max(d["threshold"], _MIN_THRESHOLD)
        dt = self.dt

        def full(v: float) -> np.ndarray:
            return np.full(shape, float(v), dtype=np.float64)

        md: dict[str, Any] = {}
        if d["reset"] == "subtract":
            self.warnings.append(
                f"{path}: neuron trained with subtractive reset; NIR cannot express it, so it "
                "is exported with v_reset=0 and metadata reset='subtract' (snn2hw reads it "
                "back, other tools will reset to zero)"
            )
            md["reset"] = "subtract"
        if d["kind"] == "srm":
            md["snn2hw_kind"] = "srm"
            md["note"] = "spike response model exported as the equivalent CubaLIF"
        if alpha == 0.0 and d["kind"] != "srm":
            if beta == 1.0:
                node: nir.NIRNode = nir.IF(r=full(1.0), v_threshold=full(vth), v_reset=full(0.0))
                prefix = "if"
            else:
                tau = dt / (1.0 - beta)
                node = nir.LIF(
                    tau=full(tau), r=full(tau / dt), v_leak=full(0.0), v_threshold=full(vth),
                    v_reset=full(0.0),
                )
                prefix = "lif"
        else:
            if not (0.0 <= alpha < 1.0 and 0.0 <= beta < 1.0):
                raise GraphError(
                    f"{path}: a neuron with synaptic current (alpha={alpha:g}) needs "
                    f"0 <= alpha < 1 and 0 <= beta < 1 (beta={beta:g}) to be a NIR CubaLIF"
                )
            tau_syn, tau_mem = dt / (1.0 - alpha), dt / (1.0 - beta)
            node = nir.CubaLIF(
                tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt),
                v_leak=full(0.0), v_threshold=full(vth), v_reset=full(0.0),
                w_in=full(tau_syn / dt),
            )
            prefix = "srm" if d["kind"] == "srm" else "cuba"
        node.metadata = md
        return prefix, node


def to_nir(model: SpikingNet, dt: float = 1e-3) -> nir.NIRGraph:
    """The NIR graph of ``model`` (inference form: dropout removed, norms folded)."""
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise GraphError(f"invalid dt={dt!r}: it must be a positive number of seconds")
    from snn2hw import __version__

    ex = _Exporter(dt)
    shape = tuple(int(s) for s in model.input_shape)
    ex.nodes["input"] = nir.Input(input_type={"input": np.array(shape)})
    tails, shape = ex.sequence(model.layers, "layers", ["input"], shape)
    ex.nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    ex.edges.extend((t, "output") for t in tails)
    for msg in ex.warnings:
        warnings.warn(msg, UserWarning, stacklevel=2)
    for node in ex.nodes.values():  # internal bookkeeping, not for other tools
        if isinstance(node.metadata, dict):
            node.metadata.pop("snn2hw_norm_folded", None)
    metadata = {
        "dt": dt, "producer": PRODUCER, "convention": PRODUCER, "snn2hw_version": __version__,
    }
    try:
        return nir.NIRGraph(nodes=ex.nodes, edges=ex.edges, metadata=metadata)
    except (ValueError, AssertionError) as exc:
        raise GraphError(f"NIR rejected the exported graph: {exc}") from None


def write_nir(model: SpikingNet, path: str | os.PathLike[str], dt: float = 1e-3) -> nir.NIRGraph:
    """Export ``model`` and write it to ``path`` atomically; returns the graph."""
    graph = to_nir(model, dt)
    with atomic_path(path) as tmp:
        nir.write(tmp, graph)
    return graph
