"""Small QGraph builders shared by the backend tests (imported as a plain module: pytest
puts this folder on sys.path)."""

from __future__ import annotations

import numpy as np

from snn2hw.quant.qgraph import DenseNode, LIFNode, OutputNode, QGraph

VTH_MAX = 131071


def lif(name, shape, du=4095, dv=4095, vth=VTH_MAX, bias_mant=0, bias_exp=0) -> LIFNode:
    """A LIF node; scalar biases are broadcast to every neuron."""
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    return LIFNode(
        name, shape, du=du, dv=dv, vth=vth,
        bias_mant=np.broadcast_to(np.asarray(bias_mant, np.int64), shape).copy(),
        bias_exp=np.broadcast_to(np.asarray(bias_exp, np.int64), shape).copy(),
    )


def dense(name, w, weight_exp=0, num_weight_bits=8) -> DenseNode:
    return DenseNode(name, np.asarray(w, np.int64), weight_exp, num_weight_bits)


def make_graph(nodes, edges, out=None, num_steps=4) -> QGraph:
    """A validated graph with an output node reading ``out`` (default: the last LIF)."""
    nodes = list(nodes)
    if out is None:
        out = [n for n in nodes if isinstance(n, LIFNode)][-1].name
    src = next(n for n in nodes if n.name == out)
    nodes.append(OutputNode("out", tuple(src.shape)))
    return QGraph({n.name: n for n in nodes}, [*edges, (out, "out")], 1e-3, "loihi",
                  num_steps).validate()
