"""Small quantized graphs and target variants for the mapping tests (a plain module: pytest
puts this folder on sys.path)."""

from __future__ import annotations

import dataclasses

import numpy as np

from snn2hw.chip.targets import Target
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


def lif(name: str, shape: tuple[int, ...]) -> LIFNode:
    zeros = np.zeros(shape, dtype=np.int64)
    return LIFNode(name, shape, du=4095, dv=0, vth=100, bias_mant=zeros, bias_exp=zeros.copy())


def chain(input_shape: tuple[int, ...], layers: list[tuple[str, object]]) -> QGraph:
    """input -> (op, lif) -> (op, lif) ... -> output; ``layers`` = [(lif name, op node)]."""
    nodes: dict[str, object] = {"in": InputNode("in", input_shape)}
    edges: list[tuple[str, str]] = []
    prev = "in"
    for name, op in layers:
        nodes[op.name] = op
        edges.append((prev, op.name))
        nodes[name] = lif(name, tuple(op.out_shape))
        edges.append((op.name, name))
        prev = name
    nodes["out"] = OutputNode("out", tuple(nodes[prev].shape))
    edges.append((prev, "out"))
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=4)


def dense(name: str, weight: np.ndarray) -> DenseNode:
    return DenseNode(name, np.asarray(weight, dtype=np.int64))


def with_resources(target: Target, **changes: int) -> Target:
    return dataclasses.replace(target, resources=dataclasses.replace(target.resources, **changes))


def two_by_two(target: Target, **res: int) -> tuple[QGraph, Target]:
    """in(2) -> A(2) -> B(2); A0 feeds B0 and B1, A1 feeds B1."""
    g = chain((2,), [("A", dense("wa", 2 * np.eye(2, dtype=np.int64))),
                     ("B", dense("wb", [[2, 0], [2, 2]]))])
    return g, with_resources(target, **res)
