"""Hand-built quantized graphs and `.qgraph` file surgery shared by the quant tests."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)


def every_kind_graph() -> QGraph:
    """input (1,6,6) -> conv -> lif1 (2,4,4) -> sumpool -> flatten -> dense -> lif2 (3,),
    plus a recurrent dense lif2 -> lif2 and an output: one node of every kind."""
    rng = np.random.default_rng(3)
    nodes = {
        "input": InputNode("input", (1, 6, 6), message_bits=3),
        "conv": ConvNode(
            "conv",
            rng.integers(-256, 256, (2, 1, 3, 3)),
            (1, 6, 6),
            weight_exp=-2,
            stride=(1, 1),
            padding=(0, 0),
            dilation=(1, 1),
            groups=1,
        ),
        "lif1": LIFNode(
            "lif1",
            (2, 4, 4),
            du=4095,
            dv=205,
            vth=131071,
            bias_mant=rng.integers(-4096, 4096, (2, 4, 4)),
            bias_exp=rng.integers(0, 8, (2, 4, 4)),
        ),
        "pool": SumPoolNode("pool", (2, 4, 4), kernel_size=(2, 2), stride=(2, 2), padding=(0, 0)),
        "flat": FlattenNode("flat", (2, 2, 2)),
        "dense": DenseNode("dense", rng.integers(-128, 128, (3, 8)) * 2, weight_exp=7,
                           num_weight_bits=7),
        "lif2": LIFNode(
            "lif2",
            (3,),
            du=-1,
            dv=0,
            vth=0,
            bias_mant=np.array([-4096, 0, 4095]),
            bias_exp=np.array([7, 0, 3]),
        ),
        "rec": DenseNode("rec", np.array([[0, 1, 2], [3, 4, 5], [255, 0, 0]]), weight_exp=-7),
        "out": OutputNode("out", (3,)),
    }
    edges = [
        ("input", "conv"),
        ("conv", "lif1"),
        ("lif1", "pool"),
        ("pool", "flat"),
        ("flat", "dense"),
        ("dense", "lif2"),
        ("lif2", "rec"),
        ("rec", "lif2"),
        ("lif2", "out"),
    ]
    meta = {"source": "unit test", "accuracy": 0.5, "nested": {"list": [1, 2]}}
    return QGraph(nodes, edges, dt=1e-3, target="loihi2", num_steps=25, metadata=meta)


def two_layer_dense_graph() -> QGraph:
    """input (4,) -> d1 -> l1 (3,) -> d2 -> l2 (2,) -> out, in topological order."""
    nodes = {
        "input": InputNode("input", (4,)),
        "d1": DenseNode("d1", np.array([[2, -4, 6, 0], [8, 10, -2, 4], [0, 2, 2, 2]])),
        "l1": LIFNode("l1", (3,), du=4095, dv=205, vth=1000,
                      bias_mant=np.array([1, -2, 3]), bias_exp=np.array([0, 1, 7])),
        "d2": DenseNode("d2", np.array([[1, 2, 3], [4, 5, 6]])),
        "l2": LIFNode("l2", (2,), du=818, dv=205, vth=500,
                      bias_mant=np.zeros(2, np.int64), bias_exp=np.zeros(2, np.int64)),
        "out": OutputNode("out", (2,)),
    }
    edges = [("input", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2"), ("l2", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=10)


def read_zip(path: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(path) as zf:
        return {n: zf.read(n) for n in zf.namelist()}


def write_zip(path: Path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)


def edit_header(src: Path, dst: Path, edit) -> Path:
    """Copy ``src`` to ``dst`` with graph.json replaced by ``edit(header)``."""
    members = read_zip(src)
    header = json.loads(members["graph.json"])
    members["graph.json"] = json.dumps(edit(header)).encode()
    write_zip(dst, members)
    return dst


def set_field(node: str, key: str, value: Any):
    def edit(header: dict) -> dict:
        recs = [r for r in header["nodes"] if r["name"] == node]
        assert len(recs) == 1
        recs[0][key] = value
        return header

    return edit


def replace_array(src: Path, dst: Path, node: str, key: str, arr: np.ndarray, pickle: bool):
    members = read_zip(src)
    header = json.loads(members["graph.json"])
    ref = next(r[key]["array"] for r in header["nodes"] if r["name"] == node)
    buf = io.BytesIO()
    np.save(buf, arr, allow_pickle=pickle)
    members[f"arrays/{ref}.npy"] = buf.getvalue()
    write_zip(dst, members)
    return dst
