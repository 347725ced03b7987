"""Quantized-graph validation (snn2hw.quant.validation): shapes, integer ranges, storage
order and field types, on hand-edited files (refused on load, naming the node) and on
graphs in memory."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pytest
from qgraph_samples import (
    edit_header,
    every_kind_graph,
    read_zip,
    replace_array,
    set_field,
    two_layer_dense_graph,
    write_zip,
)

from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)
from snn2hw.quant.validation import validate_node


def test_float_array_is_refused_naming_the_node(saved: Path, tmp_path: Path) -> None:
    bad = replace_array(
        saved, tmp_path / "f.qgraph", "l1", "bias_mant", np.array([1.5, 0.0, 2.0]), pickle=False
    )
    with pytest.raises(GraphError, match=r"'l1'.*bias_mant"):
        QGraph.load(bad)


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


# ----- graphs in memory --------------------------------------------------------------------


def test_sample_graphs_are_valid() -> None:
    assert every_kind_graph().validate().depth() == 2  # includes a recurrent edge
    assert two_layer_dense_graph().validate().depth() == 2


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda g: setattr(g, "dt", 0.0), "invalid dt"),
        (lambda g: setattr(g, "dt", float("nan")), "invalid dt"),
        (lambda g: setattr(g, "num_steps", 0), "num_steps=0"),
        (lambda g: g.nodes.update(input2=InputNode("input2", (4,))), "exactly one input"),
        (lambda g: g.nodes.pop("out") and g.edges.remove(("l2", "out")), "no output node"),
        (lambda g: setattr(g.nodes["l1"], "name", "other"), "calls itself 'other'"),
        (lambda g: g.edges.append(("l1", "d2")), "exactly one incoming edge"),
    ],
    ids=["zero-dt", "nan-dt", "zero-steps", "two-inputs", "no-output", "renamed", "two-in-dense"],
)
def test_graph_level_checks(edit, match) -> None:
    g = two_layer_dense_graph()
    edit(g)
    with pytest.raises(GraphError, match=match):
        g.validate()


def test_output_must_read_a_lif() -> None:
    g = two_layer_dense_graph()
    g.nodes["out"] = OutputNode("out", (2,))
    g.edges = [e for e in g.edges if e != ("l2", "out")] + [("d2", "out")]
    with pytest.raises(GraphError, match="must read spikes from a LIF"):
        g.validate()


@pytest.mark.parametrize(
    ("node", "match"),
    [
        (ConvNode("c", np.full((2, 1, 3, 3), 300), (1, 6, 6)), r"'c' \(conv\).*outside \[-256"),
        (ConvNode("c", np.zeros((2, 1, 3, 3), np.int64), (2, 6, 6)), "channels"),
        (ConvNode("c", np.zeros((3, 1, 3, 3), np.int64), (2, 6, 6), groups=2), "divisible"),
        (ConvNode("c", np.zeros((2, 1, 3, 3), np.int64), (1, 2, 2)), "is empty"),
        (ConvNode("c", np.zeros((2, 1, 3, 3), np.int64), (1, 6, 6), weight_exp=9), "weight_exp=9"),
        (ConvNode("c", np.zeros((2, 1, 3, 3), np.int64), (1, 6, 6), stride=(0, 1)), "stride"),
        (ConvNode("c", np.zeros((2, 1, 3, 3), np.int64), (1, 6, 6), padding=(-1, 0)), "padding"),
        (ConvNode("c", np.zeros((2, 1, 3, 3)), (1, 6, 6)), "must be integers"),
        (SumPoolNode("p", (1, 2, 2), (3, 3), (1, 1)), "is empty"),
        (SumPoolNode("p", (2, 2), (1, 1), (1, 1)), r"\(C, H, W\)"),
        (DenseNode("d", np.zeros((2, 2, 2), np.int64)), "2-D"),
        (InputNode("i", (0,)), "invalid shape"),
        (InputNode("i", (3,), message_bits=True), "must be an integer"),
        (LIFNode("l", (2,), 0, 0, 0, np.zeros(2, np.int64), np.zeros(3, np.int64)), "bias_exp"),
        (OutputNode("", (2,)), "non-empty string"),
    ],
)
def test_node_level_checks_name_the_node(node, match) -> None:
    with pytest.raises(GraphError, match=match):
        validate_node(node)


def test_legal_extremes_pass_node_checks() -> None:
    validate_node(DenseNode("d", np.array([[-256, 255]]), weight_exp=-7, num_weight_bits=1))
    validate_node(LIFNode("l", (2,), du=-1, dv=4095, vth=131071,
                          bias_mant=np.array([-4096, 4095]), bias_exp=np.array([0, 7])))
    validate_node(InputNode("i", (3,), message_bits=24))
