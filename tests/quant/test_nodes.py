"""Quantized-graph node kinds (snn2hw.quant.nodes): shapes, the kind registry, the
integer update each node documents, and the names snn2hw.quant.qgraph re-exports."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import snn2hw.quant.nodes as nodes_mod
import snn2hw.quant.qgraph as qgraph_mod
from snn2hw.common.units import DECAY_SCALE
from snn2hw.quant.nodes import (
    DECAY_MAX,
    NODE_TYPES,
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    SumPoolNode,
    as_shape,
    conv_out_size,
    node_in_shape,
    node_out_shape,
)

QUANT = Path(nodes_mod.__file__).parent


@pytest.mark.parametrize(
    ("hw", "k", "stride", "pad", "dil", "groups"),
    [((6, 6), (3, 3), (1, 1), (0, 0), (1, 1), 1), ((7, 5), (3, 2), (2, 1), (1, 0), (1, 2), 2),
     ((9, 9), (2, 2), (3, 3), (2, 1), (2, 1), 1), ((4, 4), (1, 1), (1, 1), (0, 0), (1, 1), 2)],
)
def test_conv_out_shape_matches_torch(hw, k, stride, pad, dil, groups) -> None:
    w = np.zeros((4, 2 // groups, *k), np.int64)
    node = ConvNode("c", w, (2, *hw), stride=stride, padding=pad, dilation=dil, groups=groups)
    y = F.conv2d(torch.zeros(1, 2, *hw), torch.zeros(w.shape), None, stride, pad, dil, groups)
    assert node.out_shape == tuple(y.shape[1:])
    assert node.in_shape == (2, *hw)


@pytest.mark.parametrize(
    ("hw", "k", "stride", "pad"),
    [((4, 4), (2, 2), (2, 2), (0, 0)), ((5, 7), (3, 2), (1, 2), (1, 1)),
     ((6, 6), (3, 3), (3, 3), (0, 0))],
)
def test_sumpool_out_shape_matches_torch(hw, k, stride, pad) -> None:
    node = SumPoolNode("p", (3, *hw), kernel_size=k, stride=stride, padding=pad)
    y = F.avg_pool2d(F.pad(torch.zeros(1, 3, *hw), (pad[1],) * 2 + (pad[0],) * 2), k, stride)
    assert node.out_shape == tuple(y.shape[1:])
    assert conv_out_size(hw[0], k[0], stride[0], pad[0]) == y.shape[2]


def test_dense_and_flatten_shapes() -> None:
    d = DenseNode("d", np.zeros((3, 8), np.int64))
    assert (d.in_shape, d.out_shape) == ((8,), (3,))
    f = FlattenNode("f", (2, 3, 4))
    assert (f.in_shape, f.out_shape) == ((2, 3, 4), (24,))


def test_sources_and_sinks_emit_their_own_shape() -> None:
    z = np.zeros((2, 3), np.int64)
    lif = LIFNode("l", (2, 3), du=0, dv=0, vth=1, bias_mant=z, bias_exp=z)
    assert node_out_shape(lif) == node_in_shape(lif) == (2, 3)
    inp = InputNode("i", (5,))
    assert node_out_shape(inp) == (5,) and node_in_shape(inp) == ()
    out = OutputNode("o", (4,))
    assert node_in_shape(out) == node_out_shape(out) == (4,)
    assert node_in_shape(FlattenNode("f", (2, 2))) == (2, 2)


def test_as_shape_normalises_shape_like_values() -> None:
    assert as_shape(3) == (3,)
    assert as_shape(np.array([2, 3])) == (2, 3)
    assert all(type(v) is int for v in as_shape(np.array([4, 5], np.int32)))


def test_kind_registry_matches_each_class() -> None:
    for kind, cls in NODE_TYPES.items():
        assert cls.__dataclass_fields__["kind"].default == kind
    assert set(NODE_TYPES) == {"input", "dense", "conv", "sumpool", "flatten", "lif", "output"}


def test_decay_register_range_follows_the_decay_scale() -> None:
    assert DECAY_MAX == DECAY_SCALE - 1 == 4095


@pytest.mark.parametrize(
    ("cls", "phrases"),
    [
        (LIFNode, ["rtz(u * (4096 - (du + 1)), 12)", "(a << 6)", "2^24", "2^23",
                   "rtz(v * (4096 - dv), 12)", "clip(v", "v > (vth << 6)", "u is NOT reset"]),
        (DenseNode, ["num_weight_bits", "MIXED", "shift(W' @ x, weight_exp)", "floor"]),
        (ConvNode, ["wrap24(shift(conv2d(x, W), weight_exp))", "no clip"]),
        (SumPoolNode, ["no shift", "no wrap"]),
    ],
)
def test_each_node_documents_its_integer_update(cls, phrases) -> None:
    doc = cls.__doc__ or ""
    for phrase in phrases:
        assert phrase in doc, (cls.__name__, phrase)


# Names other packages import from snn2hw.quant.qgraph (kept after the split).
REEXPORTED = [
    "FORMAT_VERSION", "FORMAT_NAME", "VTH_MAX", "DECAY_MAX", "U_V_BITS", "INT32_MAX",
    "BIAS_MANT_MIN", "BIAS_MANT_MAX", "BIAS_EXP_MIN", "BIAS_EXP_MAX", "WEIGHT_EXP_MIN",
    "WEIGHT_EXP_MAX", "SYNAPSE_KINDS", "ConvNode", "DenseNode", "FlattenNode", "InputNode",
    "LIFNode", "OutputNode", "QGraph", "SumPoolNode", "Node", "as_shape", "node_in_shape",
    "node_out_shape",
]


@pytest.mark.parametrize("name", REEXPORTED)
def test_qgraph_still_exports(name: str) -> None:
    assert hasattr(qgraph_mod, name)
    if hasattr(nodes_mod, name):
        assert getattr(qgraph_mod, name) is getattr(nodes_mod, name)


FORBIDDEN = ("snn2hw.backends", "snn2hw.pipeline", "snn2hw.chip", "snn2hw.training",
             "snn2hw.cli", "snn2hw.exporters", "snn2hw.reporting")


@pytest.mark.parametrize("path", sorted(QUANT.glob("*.py")), ids=lambda p: p.name)
def test_quant_modules_import_no_higher_layer(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        for name in names:
            assert not name.startswith(FORBIDDEN), (path.name, name)
