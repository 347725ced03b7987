"""The `.qgraph` file format (docs/qgraph.md "On-disk format", snn2hw.quant.qgraph_file)
and how loading refuses bad files: every refusal is a GraphError (one line at the CLI),
never a traceback or unpickle. Range and shape refusals are in test_validation.py."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from qgraph_samples import (
    edit_header,
    every_kind_graph,
    read_zip,
    replace_array,
    set_field,
    two_layer_dense_graph,
    write_zip,
)

from snn2hw.cli import main
from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import FORMAT_VERSION, QGraph

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
    # a graph with Loihi's arithmetic is written as version 1 (older readers run it right)
    assert header["format"] == "snn2hw.qgraph" and header["version"] == 1 < FORMAT_VERSION
    assert header["formats"]["u_bits"] == 24
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


def test_missing_header_key_is_corrupt(saved: Path, tmp_path: Path) -> None:
    def edit(h: dict) -> dict:
        del h["edges"]
        return h

    bad = edit_header(saved, tmp_path / "k.qgraph", edit)
    with pytest.raises(GraphError, match="corrupt or truncated"):
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


def test_an_archive_declaring_huge_members_is_refused_before_inflating(
    saved: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import zipfile

    monkeypatch.setenv("SNN2HW_MAX_QGRAPH_BYTES", str(32 * 2**20))
    bomb = tmp_path / "bomb.qgraph"
    with zipfile.ZipFile(saved) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info, src.read(info))
        with dst.open("arrays/zeros.npy", "w") as fh:  # 64 MiB of zeros in ~64 kB
            block = bytes(2**24)
            for _ in range(4):
                fh.write(block)
    assert bomb.stat().st_size < 2**20
    with pytest.raises(GraphError, match=r"declares 64 MiB uncompressed .*'arrays/zeros.npy'"):
        QGraph.load(bomb)
