"""The `.qgraph` file format (docs/qgraph.md "On-disk format") and how loading refuses bad
files: every refusal is a GraphError (one line at the CLI), never a traceback or unpickle."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from snn2hw.cli import main
from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import (
    FORMAT_VERSION,
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

# ----- helpers -----------------------------------------------------------------------------


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


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    path = tmp_path / "g.qgraph"
    two_layer_dense_graph().save(path)
    return path


# ----- round trip --------------------------------------------------------------------------


def test_round_trip_preserves_every_node_field_exactly(tmp_path: Path) -> None:
    g = every_kind_graph()
    path = tmp_path / "all.qgraph"
    g.save(path)
    back = QGraph.load(path)
    assert list(back.nodes) == list(g.nodes)  # storage (topological) order kept
    assert back.edges == g.edges
    assert back.dt == g.dt and back.target == g.target and back.num_steps == g.num_steps
    assert back.metadata == g.metadata
    for name, node in g.nodes.items():
        other = back.nodes[name]
        assert type(other) is type(node)
        want, got = vars(node), vars(other)
        assert set(want) == set(got), name
        for key, val in want.items():
            if isinstance(val, np.ndarray):
                assert got[key].dtype == np.int64, (name, key)
                assert got[key].shape == val.shape, (name, key)
                np.testing.assert_array_equal(got[key], val, err_msg=f"{name}.{key}")
            else:
                assert got[key] == val, (name, key, got[key], val)
                assert type(got[key]) is type(val), (name, key)
    assert back.depth() == g.depth()


def test_file_holds_only_json_and_npy_members(tmp_path: Path) -> None:
    path = tmp_path / "all.qgraph"
    every_kind_graph().save(path)
    members = read_zip(path)
    assert "graph.json" in members
    others = [n for n in members if n != "graph.json"]
    assert others and all(n.startswith("arrays/") and n.endswith(".npy") for n in others)
    header = json.loads(members["graph.json"])
    assert header["format"] == "snn2hw.qgraph" and header["version"] == FORMAT_VERSION
    for name in others:  # every array loads without pickle, as int64
        arr = np.load(io.BytesIO(members[name]), allow_pickle=False)
        assert arr.dtype == np.int64


def test_save_refuses_an_invalid_graph(tmp_path: Path) -> None:
    g = two_layer_dense_graph()
    g.nodes["l1"].vth = 131072
    with pytest.raises(GraphError, match="l1"):
        g.save(tmp_path / "bad.qgraph")
    assert not (tmp_path / "bad.qgraph").exists()


# ----- never unpickles ---------------------------------------------------------------------

UNPICKLED: list[str] = []


def _record(tag: str) -> str:
    UNPICKLED.append(tag)
    return tag


class _Payload:
    def __reduce__(self):
        return (_record, ("unpickled",))


def test_object_array_is_refused_without_unpickling(saved: Path, tmp_path: Path) -> None:
    arr = np.empty((3, 4), dtype=object)
    arr[...] = 0
    arr[0, 0] = _Payload()
    bad = replace_array(saved, tmp_path / "obj.qgraph", "d1", "weight", arr, pickle=True)
    UNPICKLED.clear()
    with pytest.raises(GraphError, match="corrupt or truncated"):
        QGraph.load(bad)
    assert UNPICKLED == []


def test_float_array_is_refused_naming_the_node(saved: Path, tmp_path: Path) -> None:
    bad = replace_array(
        saved, tmp_path / "f.qgraph", "l1", "bias_mant", np.array([1.5, 0.0, 2.0]), pickle=False
    )
    with pytest.raises(GraphError, match=r"'l1'.*bias_mant"):
        QGraph.load(bad)


# ----- damaged files -----------------------------------------------------------------------


@pytest.mark.parametrize("keep", [0, 10, 100, 0.5, -1])
def test_truncated_file_is_corrupt_or_truncated(saved: Path, tmp_path: Path, keep) -> None:
    data = saved.read_bytes()
    n = int(len(data) * keep) if isinstance(keep, float) else keep % len(data)
    bad = tmp_path / "t.qgraph"
    bad.write_bytes(data[:n])
    with pytest.raises(GraphError, match="corrupt or truncated"):
        QGraph.load(bad)


def test_every_truncation_is_a_graph_error(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    bad = tmp_path / "t.qgraph"
    for n in range(0, len(data), 11):
        bad.write_bytes(data[:n])
        with pytest.raises(GraphError):
            QGraph.load(bad)


def test_missing_array_member_is_corrupt(saved: Path, tmp_path: Path) -> None:
    members = read_zip(saved)
    victim = next(n for n in members if n.endswith(".npy"))
    del members[victim]
    bad = tmp_path / "m.qgraph"
    write_zip(bad, members)
    with pytest.raises(GraphError, match="corrupt or truncated"):
        QGraph.load(bad)


def test_invalid_json_is_corrupt(saved: Path, tmp_path: Path) -> None:
    members = read_zip(saved)
    members["graph.json"] = members["graph.json"][:-20]
    bad = tmp_path / "j.qgraph"
    write_zip(bad, members)
    with pytest.raises(GraphError, match="corrupt or truncated"):
        QGraph.load(bad)


def test_every_single_byte_corruption_is_a_graph_error(saved: Path, tmp_path: Path) -> None:
    data = saved.read_bytes()
    bad = tmp_path / "flip.qgraph"
    escaped = []
    for i in range(0, len(data), 3):
        flipped = bytearray(data)
        flipped[i] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        try:
            QGraph.load(bad)
        except GraphError:
            pass
        except Exception as exc:  # noqa: BLE001 - collecting what escapes
            escaped.append((i, type(exc).__name__))
    assert escaped == []


def damage_deflate_stream(src: Path, dst: Path) -> Path:
    """Copy ``src`` with graph.json's first deflate block header set to the reserved
    block type 3 (zlib: "invalid block type"); the zip directory stays intact."""
    data = bytearray(src.read_bytes())
    with zipfile.ZipFile(src) as zf:
        off = zf.getinfo("graph.json").header_offset
    name_len = int.from_bytes(data[off + 26 : off + 28], "little")
    extra_len = int.from_bytes(data[off + 28 : off + 30], "little")
    data[off + 30 + name_len + extra_len] = 0b111  # BFINAL=1, BTYPE=11 (reserved)
    dst.write_bytes(bytes(data))
    return dst


def test_non_zip_file_is_corrupt(tmp_path: Path) -> None:
    bad = tmp_path / "x.qgraph"
    bad.write_text("this is not a zip archive\n")
    with pytest.raises(GraphError, match="corrupt or truncated"):
        QGraph.load(bad)


def test_missing_file_is_a_graph_error(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="not found"):
        QGraph.load(tmp_path / "nope.qgraph")


def test_directory_is_not_a_graph_file(tmp_path: Path) -> None:
    with pytest.raises(GraphError, match="not found"):
        QGraph.load(tmp_path)


# ----- hand-edited graph.json --------------------------------------------------------------


def test_unedited_rewrite_still_loads(saved: Path, tmp_path: Path) -> None:
    ok = edit_header(saved, tmp_path / "same.qgraph", lambda h: h)
    assert list(QGraph.load(ok).nodes) == ["input", "d1", "l1", "d2", "l2", "out"]


def test_shape_mismatch_on_an_edge_names_both_nodes(saved: Path, tmp_path: Path) -> None:
    # l1 claims 4 neurons, d1 still emits 3 (bias arrays kept consistent with the new shape)
    def edit(h: dict) -> dict:
        for r in h["nodes"]:
            if r["name"] == "l1":
                r["shape"] = [4]
        return h

    members = read_zip(saved)
    header = edit(json.loads(members["graph.json"]))
    for r in header["nodes"]:
        if r["name"] == "l1":
            for key in ("bias_mant", "bias_exp"):
                buf = io.BytesIO()
                np.save(buf, np.zeros(4, np.int64), allow_pickle=False)
                members[f"arrays/{r[key]['array']}.npy"] = buf.getvalue()
    members["graph.json"] = json.dumps(header).encode()
    bad = tmp_path / "shape.qgraph"
    write_zip(bad, members)
    with pytest.raises(GraphError, match="shape mismatch") as err:
        QGraph.load(bad)
    assert "'d1'" in str(err.value) and "'l1'" in str(err.value)


def test_bias_array_of_the_wrong_shape_names_the_node(saved: Path, tmp_path: Path) -> None:
    bad = replace_array(
        saved, tmp_path / "b.qgraph", "l2", "bias_exp", np.zeros(5, np.int64), pickle=False
    )
    with pytest.raises(GraphError, match=r"'l2'.*bias_exp"):
        QGraph.load(bad)


@pytest.mark.parametrize(
    ("node", "field", "value"),
    [
        ("l1", "vth", 200000),
        ("l1", "vth", -1),
        ("l1", "dv", 5000),
        ("l1", "dv", -1),
        ("l2", "du", 4096),
        ("l2", "du", -2),
        ("d1", "weight_exp", 8),
        ("d1", "weight_exp", -8),
        ("d1", "num_weight_bits", 9),
        ("d1", "num_weight_bits", 0),
        ("input", "message_bits", 25),
    ],
)
def test_out_of_range_scalar_names_node_and_field(
    saved: Path, tmp_path: Path, node: str, field: str, value: int
) -> None:
    bad = edit_header(saved, tmp_path / "r.qgraph", set_field(node, field, value))
    with pytest.raises(GraphError) as err:
        QGraph.load(bad)
    msg = str(err.value)
    assert f"'{node}'" in msg and field in msg and str(value) in msg


@pytest.mark.parametrize(
    ("node", "field", "values"),
    [
        ("l1", "bias_exp", [0, 9, 0]),
        ("l1", "bias_exp", [0, -1, 0]),
        ("l1", "bias_mant", [0, 4096, 0]),
        ("l1", "bias_mant", [0, -4097, 0]),
        ("d1", "weight", [[2, -4, 6, 0], [8, 300, -2, 4], [0, 2, 2, 2]]),
        ("d1", "weight", [[2, -4, 6, 0], [8, 10, -258, 4], [0, 2, 2, 2]]),
    ],
)
def test_out_of_range_array_names_node_and_field(
    saved: Path, tmp_path: Path, node: str, field: str, values: list
) -> None:
    bad = replace_array(
        saved, tmp_path / "a.qgraph", node, field, np.array(values, np.int64), pickle=False
    )
    with pytest.raises(GraphError) as err:
        QGraph.load(bad)
    msg = str(err.value)
    assert f"'{node}'" in msg
    assert field in msg or (field == "weight" and "weights span" in msg)


def test_newer_format_version_asks_to_upgrade(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(saved, tmp_path / "v.qgraph", lambda h: {**h, "version": FORMAT_VERSION + 1})
    with pytest.raises(GraphError, match="upgrade") as err:
        QGraph.load(bad)
    assert str(FORMAT_VERSION + 1) in str(err.value)


def test_foreign_format_field_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(saved, tmp_path / "f.qgraph", lambda h: {**h, "format": "other.graph"})
    with pytest.raises(GraphError, match="not a snn2hw quantized graph"):
        QGraph.load(bad)


def test_unknown_node_kind_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(saved, tmp_path / "k.qgraph", set_field("d1", "kind", "sparse"))
    with pytest.raises(GraphError, match=r"'d1'.*unknown kind 'sparse'"):
        QGraph.load(bad)


def test_unknown_node_field_is_a_graph_error(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(saved, tmp_path / "u.qgraph", set_field("l1", "refractory", 3))
    with pytest.raises(GraphError):
        QGraph.load(bad)


def test_empty_graph_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(saved, tmp_path / "e.qgraph", lambda h: {**h, "nodes": [], "edges": []})
    with pytest.raises(GraphError, match="empty"):
        QGraph.load(bad)


def test_empty_graph_in_memory_is_refused() -> None:
    with pytest.raises(GraphError, match="empty"):
        QGraph({}, [], dt=1e-3, target="loihi", num_steps=1).validate()


def test_dense_stored_before_its_source_is_refused(saved: Path, tmp_path: Path) -> None:
    def edit(h: dict) -> dict:
        nodes = h["nodes"]
        nodes.insert(0, nodes.pop(1))  # d1 before input
        return h

    bad = edit_header(saved, tmp_path / "o.qgraph", edit)
    with pytest.raises(GraphError, match="topological order"):
        QGraph.load(bad)


def test_output_stored_before_its_lif_is_refused(saved: Path, tmp_path: Path) -> None:
    def edit(h: dict) -> dict:
        nodes = h["nodes"]
        nodes.insert(1, nodes.pop())  # out right after input
        return h

    bad = edit_header(saved, tmp_path / "o.qgraph", edit)
    with pytest.raises(GraphError, match="topological order"):
        QGraph.load(bad)


def test_lif_stored_before_its_feed_forward_dense_is_refused(
    saved: Path, tmp_path: Path
) -> None:
    def edit(h: dict) -> dict:
        order = ["input", "l1", "l2", "d1", "d2", "out"]
        h["nodes"] = sorted(h["nodes"], key=lambda r: order.index(r["name"]))
        return h

    bad = edit_header(saved, tmp_path / "o.qgraph", edit)
    try:
        g = QGraph.load(bad)
    except GraphError as exc:
        assert "topological order" in str(exc)
        return
    assert g.depth() == 2, f"misordered file accepted with depth {g.depth()}"
    pytest.fail("misordered file accepted")


def test_edge_to_a_missing_node_is_refused(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(
        saved, tmp_path / "m.qgraph", lambda h: {**h, "edges": [*h["edges"], ["l2", "ghost"]]}
    )
    with pytest.raises(GraphError, match="ghost"):
        QGraph.load(bad)


def test_missing_header_key_is_corrupt(saved: Path, tmp_path: Path) -> None:
    def edit(h: dict) -> dict:
        del h["edges"]
        return h

    bad = edit_header(saved, tmp_path / "k.qgraph", edit)
    with pytest.raises(GraphError, match="corrupt or truncated"):
        QGraph.load(bad)


@pytest.mark.parametrize(
    "edit",
    [
        set_field("l1", "vth", 100.5),
        set_field("l1", "du", 4094.5),
        set_field("l1", "vth", "1000"),
        set_field("input", "message_bits", None),
        lambda h: [h],
    ],
    ids=["float-vth", "float-du", "string-vth", "null-message-bits", "list-header"],
)
def test_wrongly_typed_field_is_a_graph_error(saved: Path, tmp_path: Path, edit) -> None:
    bad = edit_header(saved, tmp_path / "t.qgraph", edit)
    with pytest.raises(GraphError):
        QGraph.load(bad)


# ----- the CLI -----------------------------------------------------------------------------


def _one_line_error(result) -> str:
    assert result.exit_code == 1, (result.exit_code, result.output, result.exception)
    err = result.stderr.strip()
    assert err.startswith("error: "), err
    assert "\n" not in err, err
    assert "Traceback" not in result.output
    return err


def test_cli_simulate_on_truncated_qgraph_prints_one_line_error(
    saved: Path, tmp_path: Path
) -> None:
    bad = tmp_path / "bad.qgraph"
    bad.write_bytes(saved.read_bytes()[:200])
    result = CliRunner().invoke(main, ["simulate", str(bad), "--backend", "torch-int"])
    err = _one_line_error(result)
    assert "corrupt or truncated" in err and "bad.qgraph" in err


def test_cli_simulate_on_out_of_range_qgraph_names_the_node(saved: Path, tmp_path: Path) -> None:
    bad = edit_header(saved, tmp_path / "r.qgraph", set_field("l1", "dv", 5000))
    result = CliRunner().invoke(main, ["simulate", str(bad), "--backend", "torch-int"])
    err = _one_line_error(result)
    assert "'l1'" in err and "dv=5000" in err


def test_cli_simulate_on_corrupt_qgraph_prints_one_line_error(
    saved: Path, tmp_path: Path
) -> None:
    bad = damage_deflate_stream(saved, tmp_path / "bad.qgraph")
    result = CliRunner().invoke(main, ["simulate", str(bad), "--backend", "torch-int"])
    err = _one_line_error(result)
    assert "corrupt or truncated" in err


def test_cli_simulate_on_missing_qgraph_prints_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["simulate", str(tmp_path / "nope.qgraph")])
    _one_line_error(result)
