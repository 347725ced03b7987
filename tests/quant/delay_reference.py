"""A tiny, independent reference of docs/qgraph.md with synaptic delays, for the alignment
tests (the backends get delays on other branches; this shares no code with them).

Loihi formats only (the defaults of ``NumberFormats``), feed-forward graphs only. ``hop``
is the step cost of a path: 1 is the chip's rule; 0 is the float model's timing (a LIF
sums what its sources emit in the same step), evaluated in node order within a step.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from snn2hw.quant.qgraph import ConvNode, DenseNode, FlattenNode, InputNode, LIFNode, QGraph


def _rtz(x: np.ndarray, k: int) -> np.ndarray:
    return np.sign(x) * (np.abs(x) >> k)


def _shift(x: np.ndarray, e: int) -> np.ndarray:
    return x << e if e >= 0 else x >> -e


def _dense_weights(w: np.ndarray, bits: int) -> np.ndarray:
    """Loihi's sign mode, clip and truncation (docs/qgraph.md "Dense weight preparation")."""
    w = w.astype(np.int64)
    if w.min() >= 0:
        mode, w = "exc", np.clip(w, 0, 255)
    elif w.max() <= 0:
        mode, w = "inh", np.clip(w, -255, 0)
    else:
        mode, w = "mixed", np.clip(w, -256, 255)
    k = 8 - bits + (1 if mode == "mixed" else 0)
    return -(((-w) >> k) << k) if mode == "inh" else (w >> k) << k


def _structural(node, x: np.ndarray) -> np.ndarray:
    b = x.shape[0]
    if isinstance(node, FlattenNode):
        return x.reshape(b, -1)
    z = torch.as_tensor(x.reshape(b, *node.input_shape), dtype=torch.float64)
    kh, kw = node.kernel_size
    z = F.pad(z, (node.padding[1],) * 2 + (node.padding[0],) * 2)
    y = F.avg_pool2d(z, (kh, kw), node.stride, divisor_override=1)
    return y.numpy().round().astype(np.int64)


def _weighted(node, x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``W' @ x`` (dense) or conv2d, before the exponent shift."""
    if isinstance(node, DenseNode):
        return x.reshape(x.shape[0], -1) @ w.T
    z = torch.as_tensor(x.reshape(x.shape[0], *node.input_shape), dtype=torch.float64)
    y = F.conv2d(z, torch.as_tensor(w, dtype=torch.float64), None, node.stride,
                 node.padding, node.dilation, node.groups)
    return y.numpy().round().astype(np.int64)


def _wrap24(x: np.ndarray) -> np.ndarray:
    return ((x + 2**23) % 2**24) - 2**23


def run_reference(g: QGraph, frames: np.ndarray, num_steps: int, hop: int = 1
                  ) -> dict[str, np.ndarray]:
    """Spikes ``[N, B, *shape]`` of every LIF over ``num_steps`` steps of ``frames``
    ``[F, B, *input]`` (zeros after the last frame)."""
    batch = frames.shape[1]
    hist: dict[str, list[np.ndarray]] = {n: [] for n in g.nodes}
    state: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    weights = {n: (_dense_weights(v.weight, v.num_weight_bits) if isinstance(v, DenseNode)
                   else np.asarray(v.weight, np.int64))
               for n, v in g.nodes.items() if isinstance(v, (DenseNode, ConvNode))}

    def source_at(src: str, t: int) -> np.ndarray:
        node = g.nodes[src]
        shape = node.shape
        if t < 0 or t >= len(hist[src]):
            return np.zeros((batch, *shape), np.int64)
        return hist[src][t]

    def path_value(path: list[str], n: int) -> np.ndarray:
        src, ops = path[0], path[1:]
        *structural, last = ops
        d = getattr(g.nodes[last], "delay", 0)
        base = n - hop - sum(int(getattr(g.nodes[o], "delay", 0)) for o in structural)
        node, w = g.nodes[last], weights[last]
        delays = np.asarray(d) if isinstance(d, np.ndarray) else None
        total = 0
        for dv in (np.unique(delays) if delays is not None else [int(d)]):
            x = source_at(src, base - int(dv))
            for o in structural:
                x = _structural(g.nodes[o], x)
            wd = np.where(delays == dv, w, 0) if delays is not None else w
            total = total + _weighted(node, x, wd)
        y = _shift(np.asarray(total, np.int64), node.weight_exp)
        return _wrap24(y) if isinstance(node, ConvNode) else y

    for n in range(num_steps):
        for name, node in g.nodes.items():
            if isinstance(node, InputNode):
                x = frames[n] if n < frames.shape[0] else np.zeros_like(frames[0])
                hist[name].append(np.asarray(x, np.int64))
            elif isinstance(node, LIFNode):
                a = sum(path_value(p, n).reshape(batch, *node.shape)
                        for p in g.synapse_paths(name))
                u, v = state.get(name, (np.zeros((batch, *node.shape), np.int64),) * 2)
                u = _rtz(u * (4096 - (node.du + 1)), 12) + (a << 6)
                u = np.where(u > 2**23, u - 2**24, np.where(u <= -(2**23), u + 2**24, u))
                b = np.asarray(node.bias_mant, np.int64) << np.asarray(node.bias_exp, np.int64)
                v = np.clip(_rtz(v * (4096 - node.dv), 12) + u + b, -(2**23 - 1), 2**23 - 1)
                s = v > (node.vth << 6)
                v = np.where(s, 0, v)
                state[name] = (u, v)
                hist[name].append(s.astype(np.int64))
    return {n.name: np.stack(hist[n.name]) for n in g.lif_nodes}
