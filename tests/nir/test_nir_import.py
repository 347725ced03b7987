"""read_nir / check_graph / resolve_timing: one-line errors naming what is wrong."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from snn2hw.common.errors import GraphError
from snn2hw.nir import analyze, check_graph, read_nir, resolve_timing


def _mlp(weight=None, metadata=None, type_check=True, r=1.0) -> nir.NIRGraph:
    w = np.ones((4, 3), np.float32) if weight is None else weight
    n = w.shape[0]
    return nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "fc": nir.Affine(weight=w, bias=np.zeros(n, np.float32)),
            "lif": nir.LIF(tau=np.full(n, 1e-2), r=np.full(n, r), v_leak=np.zeros(n),
                           v_threshold=np.ones(n), v_reset=np.zeros(n)),
            "output": nir.Output(output_type={"output": np.array([n])}),
        },
        edges=[("input", "fc"), ("fc", "lif"), ("lif", "output")],
        metadata=metadata or {},
        type_check=type_check,
    )


# ----------------------------------------------------------------------------- files


def test_missing_file(tmp_path):
    with pytest.raises(GraphError, match="NIR file not found: .*nope.nir"):
        read_nir(tmp_path / "nope.nir")


def test_file_that_is_not_hdf5(tmp_path):
    p = tmp_path / "model.nir"
    p.write_text("this is not a NIR file\n")
    with pytest.raises(GraphError, match="not a NIR file .*not HDF5|HDF5; this one is not"):
        read_nir(p)


def test_hdf5_file_without_a_graph(tmp_path):
    import h5py

    p = tmp_path / "empty.nir"
    with h5py.File(p, "w") as f:
        f.create_dataset("x", data=np.arange(3))
    with pytest.raises(GraphError, match="cannot read the NIR graph"):
        read_nir(p)


@pytest.mark.parametrize(
    "name",
    ["extras_braille_noDelay_bias_zero_subgraph.nir",
     "extras_braille_noDelay_noBias_subtract_subgraph.nir"],
)
def test_subgraph_files_with_an_edge_to_a_missing_node_are_refused(external, name):
    with pytest.raises(GraphError) as err:
        read_nir(external / "nir-paper" / "03_rnn" / name)
    msg = str(err.value)
    assert "\n" not in msg
    assert name in msg and "('input', 'lif')" in msg and "'lif' which does not exist" in msg


def test_rockpool_output_shape_is_handled_with_a_note(external):
    g = read_nir(external / "nir-paper" / "01_lif" / "lif_rockpool.nir")
    notes = check_graph(g)
    assert any("type check failed" in n and "type_check=False" in n for n in notes)
    assert any("declares shape [1, 1, 1] but receives [1]" in n for n in notes)
    dt, conv, tnotes = resolve_timing(g, convention="rockpool", dt=1e-4)
    assert conv.decay == "exp" and any("type_check=False" in n for n in tnotes)


# ----------------------------------------------------------------------------- checks


def test_supported_graph_passes_and_round_trips_through_a_file(tmp_path):
    p = tmp_path / "ok.nir"
    nir.write(p, _mlp())
    assert check_graph(read_nir(p)) == []


def test_delay_node_is_read_and_checked(tmp_path):
    """nir.Delay is supported (docs/nir.md "Delay"); what snn2hw cannot run is refused."""
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([2])}),
            "wait": nir.Delay(delay=np.ones(2)),
            "output": nir.Output(output_type={"output": np.array([2])}),
        },
        edges=[("input", "wait"), ("wait", "output")],
    )
    p = tmp_path / "delay.nir"
    nir.write(p, g)
    check_graph(read_nir(p))
    inner = nir.NIRGraph(nodes={"i": nir.Input(np.array([2])), "o": nir.Output(np.array([2]))},
                         edges=[("i", "o")])
    g.nodes["wait"] = inner
    with pytest.raises(GraphError, match=r"node 'wait' has unsupported type nested NIRGraph; "
                                         r"supported: Input, Output, Affine.*CubaLIF.*Delay"):
        check_graph(g)


def test_nested_graph_is_unsupported():
    inner = _mlp()
    g = nir.NIRGraph(
        nodes={
            "input": nir.Input(input_type={"input": np.array([3])}),
            "block": inner,
            "output": nir.Output(output_type={"output": np.array([4])}),
        },
        edges=[("input", "block"), ("block", "output")],
        type_check=False,
    )
    with pytest.raises(GraphError, match="node 'block' has unsupported type nested NIRGraph; "
                                         "supported: Input"):
        check_graph(g)


def test_nan_weight_names_node_and_field(tmp_path):
    w = np.ones((4, 3), np.float32)
    w[1, 2] = np.nan
    p = tmp_path / "nan.nir"
    nir.write(p, _mlp(w))
    with pytest.raises(GraphError, match=r"node 'fc' \(Affine\): field 'weight' contains NaN"):
        check_graph(read_nir(p))


def test_inf_threshold_is_refused_but_infinite_tau_is_allowed():
    g = _mlp()
    g.nodes["lif"].tau = np.full(4, np.inf)  # no leak: legal
    assert check_graph(g) == []
    g.nodes["lif"].v_threshold = np.array([1.0, np.inf, 1.0, 1.0])
    with pytest.raises(GraphError, match="node 'lif' \\(LIF\\): field 'v_threshold' contains Inf"):
        check_graph(g)


def test_shape_mismatch_on_an_edge_names_both_nodes_and_shapes():
    g = _mlp(type_check=False)
    n = 5
    g.nodes["lif"] = nir.LIF(tau=np.full(n, 1e-2), r=np.ones(n), v_leak=np.zeros(n),
                             v_threshold=np.ones(n), v_reset=np.zeros(n))
    with pytest.raises(GraphError, match=r"edge \('fc', 'lif'\): 'fc' gives \[4\], "
                                         r"'lif' expects \[5\]"):
        check_graph(g)


def test_no_input_node():
    g = _mlp(type_check=False)
    del g.nodes["input"]
    g.edges = [e for e in g.edges if e[0] != "input"]
    with pytest.raises(GraphError, match="no Input node"):
        check_graph(g)


def test_edge_to_a_missing_node_in_memory():
    g = _mlp(type_check=False)
    g.edges.append(("lif", "ghost"))
    with pytest.raises(GraphError, match=r"edge \('lif', 'ghost'\) names destination node 'ghost'"):
        check_graph(g)


def test_topology_marks_the_recurrent_edge(external):
    info = analyze(read_nir(external / "nir-paper" / "03_rnn" / "braille_noDelay_bias_zero.nir"))
    assert info.back_edges == [("lif1.w_rec", "lif1.lif")]
    assert info.order.index("lif1.lif") < info.order.index("lif1.w_rec")
    assert info.order[0] == "input" and info.out_shapes["lif2"] == (7,)


# ----------------------------------------------------------------------------- timing


def test_missing_dt_without_convention_asks_for_dt_or_convention():
    with pytest.raises(GraphError) as err:
        resolve_timing(_mlp())
    assert "this NIR graph stores no dt; pass --dt SECONDS or --convention NAME" in str(err.value)


def test_dt_without_convention_asks_for_convention():
    with pytest.raises(GraphError, match="pass --convention NAME"):
        resolve_timing(_mlp(), dt=1e-3)


def test_convention_without_default_dt_asks_for_dt():
    with pytest.raises(GraphError, match="'nir' convention has no default; pass --dt"):
        resolve_timing(_mlp(), convention="nir")


def test_convention_default_dt_and_user_override_are_noted():
    dt, conv, notes = resolve_timing(_mlp(r=1e-2 / 1e-4), convention="snntorch")
    assert (dt, conv.name) == (1e-4, "snntorch")
    assert any("default of the 'snntorch' convention" in n for n in notes)
    dt, _, notes = resolve_timing(_mlp(metadata={"dt": 1e-3}), dt=2e-3, convention="norse")
    assert dt == 2e-3 and any("given by the user" in n for n in notes)


def test_producer_metadata_names_the_convention():
    dt, conv, _ = resolve_timing(_mlp(metadata={"producer": "snnTorch"}, r=1e-2 / 1e-4))
    assert conv.name == "snntorch" and dt == 1e-4


def test_unknown_convention_is_refused():
    with pytest.raises(GraphError, match="unknown NIR convention 'keras'"):
        resolve_timing(_mlp(), convention="keras")
    with pytest.raises(GraphError, match="metadata names convention 'foo'"):
        resolve_timing(_mlp(metadata={"convention": "foo", "dt": 1e-3}))


def test_bad_dt_is_refused():
    with pytest.raises(GraphError, match="positive number of seconds"):
        resolve_timing(_mlp(metadata={"dt": -1.0, "convention": "snn2hw"}))


def test_import_modules_keep_their_old_names():
    """The import job is split over fields/notes/shapes/analysis/timing; every name callers
    imported from ``snn2hw.nir.importer`` (and ``snn2hw.nir``) is still there, the same object."""
    import snn2hw.nir as pkg
    from snn2hw.nir import analysis, fields, importer, notes, shapes, timing

    homes = {
        analysis: ("SUPPORTED_TYPES", "SUPPORTED_NAMES", "GraphInfo", "analyze", "check_graph"),
        fields: ("as_array", "as_ints", "meta_value", "graph_metadata", "node_metadata"),
        notes: ("import_notes",),
        shapes: ("Shape", "conv_geometry"),
        timing: ("resolve_timing",),
    }
    for module, names in homes.items():
        for name in names:
            assert getattr(importer, name) is getattr(module, name), name
    for name in ("SUPPORTED_TYPES", "GraphInfo", "analyze", "check_graph", "import_notes",
                 "read_nir", "resolve_timing"):
        assert getattr(pkg, name) is getattr(importer, name), name


def test_read_nir_notes_reach_check_and_timing():
    """A note recorded while reading travels with the graph into analyze and resolve_timing."""
    from snn2hw.nir.notes import attach_import_notes, import_notes

    g = _mlp(metadata={"dt": 1e-3, "convention": "snn2hw"})
    attach_import_notes(g, ["read with a fallback"])
    assert import_notes(g) == ["read with a fallback"]
    assert analyze(g).notes[0] == "read with a fallback"
    assert resolve_timing(g)[2][0] == "read with a fallback"
    assert import_notes(g) == ["read with a fallback"]  # callers get copies


def test_a_nir_file_declaring_huge_arrays_is_refused_before_reading(tmp_path, external):
    import shutil

    import h5py

    from snn2hw.common.errors import GraphError
    from snn2hw.nir import read_nir

    bomb = tmp_path / "bomb.nir"
    shutil.copy(external / "nir-paper" / "01_lif" / "lif_norse.nir", bomb)
    with h5py.File(bomb, "a") as fh:  # a few kB on disk, 4 GiB once decompressed
        fh.create_dataset("node/nodes/big", shape=(2**32,), dtype="u1", chunks=(2**20,),
                          compression="gzip")
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(GraphError, match=r"declares 4096 MiB of arrays \(largest 'node/nodes/big'"):
        read_nir(bomb)


def test_the_nir_size_limit_can_be_set(tmp_path, external, monkeypatch):
    from snn2hw.common.errors import GraphError
    from snn2hw.nir import read_nir

    path = external / "nir-paper" / "01_lif" / "lif_norse.nir"
    read_nir(path)
    monkeypatch.setenv("SNN2HW_MAX_NIR_BYTES", "4")
    with pytest.raises(GraphError, match="SNN2HW_MAX_NIR_BYTES"):
        read_nir(path)
