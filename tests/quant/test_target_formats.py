"""A target's ``[formats]`` drive quantization, validation, the file and the backends.

A copy of ``snn2hw/chip/targets/data/loihi.toml`` with one field changed quantizes to a graph
that follows that field; the generic low-precision target
(``snn2hw/chip/targets/data/generic4.toml``) runs identically on torch-int, event and
ONNX, and Lava refuses it naming the fields; graph files written before
formats were recorded load as Loihi."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from qgraph_samples import read_zip, two_layer_dense_graph, write_zip
from test_ptq import calibrate, lif_cuba_graph

from snn2hw.backends import event, torch_int
from snn2hw.backends.base import UnsupportedFormatsError
from snn2hw.backends.lava import check_formats
from snn2hw.chip.targets import load_target
from snn2hw.chip.targets.files import bundled_targets_dir
from snn2hw.common.errors import GraphError
from snn2hw.quant.formats import ARITHMETIC_FIELDS, LOIHI_FORMATS, NumberFormats
from snn2hw.quant.ptq import QuantResult, quantize
from snn2hw.quant.qgraph import DenseNode, LIFNode, QGraph

TARGETS = bundled_targets_dir()
DT = 1e-3


def target_copy(tmp_path: Path, base: str = "loihi", **changes: str) -> Path:
    """The bundled ``<base>.toml`` with ``key = value`` lines of ``[formats]`` replaced."""
    text = (TARGETS / f"{base}.toml").read_text(encoding="utf-8")
    for key, value in changes.items():
        text, n = re.subn(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
        assert n == 1, key
    path = tmp_path / f"{base}_changed.toml"
    path.write_text(text, encoding="utf-8")
    return path


def ptq(formats: NumberFormats, target: str = "t") -> QuantResult:
    graph = lif_cuba_graph(DT)
    net, rec = calibrate(graph, DT, "snn2hw")
    return quantize(graph, net.discrete_neurons(), rec, dt=DT, target=target, num_steps=30,
                    formats=formats)


def spikes_equal(g: QGraph, x: np.ndarray, onnx: bool = False) -> None:
    """torch-int = event (= ONNX) on every spike, and something spikes."""
    a = torch_int.run(g, x).spikes
    runs = [event.run(g, x).spikes]
    if onnx:
        pytest.importorskip("onnxruntime")
        from snn2hw.backends import registry

        runs.append(registry.get("onnx").run(g, x).spikes)
    assert sum(int(s.sum()) for s in a.values()) > 0
    for b in runs:
        for k in a:
            np.testing.assert_array_equal(a[k], b[k], err_msg=k)


def binary_frames(n: int = 40, batch: int = 6, width: int = 8, p: float = 0.3) -> np.ndarray:
    return (np.random.default_rng(1).random((n, batch, width)) < p).astype(np.int64)


@pytest.fixture(scope="module")
def loihi_result() -> QuantResult:
    return ptq(LOIHI_FORMATS, "loihi")


# ----- the target files -------------------------------------------------------------------------


def test_loihi_file_gives_the_default_formats() -> None:
    assert load_target("loihi").number_formats == LOIHI_FORMATS
    f2 = load_target("loihi2").number_formats
    assert all(getattr(f2, k) == getattr(LOIHI_FORMATS, k) for k in ARITHMETIC_FIELDS)


def test_generic_target_loads_with_its_own_formats() -> None:
    t = load_target("generic4")
    f = t.number_formats
    assert (f.weight_mantissa_bits, f.u_bits, f.v_bits, f.reset) == (4, 16, 16, "subtract")
    assert f.differences(LOIHI_FORMATS)
    assert not t.energy.available and not t.latency.available
    assert t.bits_per_synapse == 4 + t.resources.synapse_index_bits


# ----- one field changed in a copy of loihi.toml -------------------------------------------------


def test_weight_mantissa_bits_in_a_copy_changes_the_graph(tmp_path, loihi_result) -> None:
    f = load_target(target_copy(tmp_path, weight_mantissa_bits="4")).number_formats
    assert f.differences(LOIHI_FORMATS) == ["weight_mantissa_bits"]
    res = ptq(f)
    dense = [n for n in res.graph.nodes.values() if isinstance(n, DenseNode)]
    assert dense and all(n.num_weight_bits == 4 for n in dense)
    assert max(int(np.abs(n.weight).max()) for n in dense) <= 15
    assert max(lr.max_weight for lr in loihi_result.layers) > 15
    assert res.graph.formats == f
    # validation follows the graph's formats: 8-bit truncation is not a 4-bit field
    bad = dense[0]
    bad.num_weight_bits = 8
    with pytest.raises(GraphError, match=r"num_weight_bits=8 outside 1\.\.4"):
        res.graph.validate()
    bad.num_weight_bits = 4
    spikes_equal(res.graph, binary_frames())


def test_threshold_bits_in_a_copy_bound_every_threshold(tmp_path, loihi_result) -> None:
    f = load_target(target_copy(tmp_path, threshold_bits="12")).number_formats
    assert f.vth_max == 4095
    res = ptq(f)
    assert max(lr.vth for lr in loihi_result.layers) > 4095  # so the bound is visible
    assert all(lr.vth <= 4095 for lr in res.layers)
    assert any(lr.limited_by == "12-bit threshold" for lr in res.layers)
    lif = res.graph.lif_nodes[0]
    lif.vth = 4096
    with pytest.raises(GraphError, match=r"vth=4096 outside 0\.\.4095 \(12 bits\)"):
        res.graph.validate()


def test_decay_bits_in_a_copy_rescale_the_decay_registers(tmp_path, loihi_result) -> None:
    f = load_target(target_copy(tmp_path, decay_bits="8")).number_formats
    res = ptq(f)
    lif, cuba = res.graph.nodes["lif1"], res.graph.nodes["last"]
    assert isinstance(lif, LIFNode) and isinstance(cuba, LIFNode)
    assert lif.dv == round(256 / 20) == 13 and lif.du == 255  # 4096-scale: 205, 4095
    assert cuba.dv == round(256 / 10) and cuba.du == round(256 / 5) - 1
    assert loihi_result.graph.nodes["lif1"].dv == 205
    spikes_equal(res.graph, binary_frames())


@pytest.mark.parametrize("changes", [
    {"u_bits": "16"}, {"v_overflow": '"wrap"', "v_bits": "18"}, {"activation_shift": "2"},
    {"reset": '"subtract"'}, {"threshold_compare": '">="'},
    {"mixed_sign_lsb_loss": "false"},
])
def test_arithmetic_fields_reach_every_integer_backend(tmp_path, changes) -> None:
    text = (TARGETS / "loihi.toml").read_text(encoding="utf-8")
    for key in ("reset", "threshold_compare"):  # optional keys: add them to the copy
        if key in changes and not re.search(rf"(?m)^{key} = ", text):
            text = text.replace("[formats]\n", f"[formats]\n{key} = \"\"\n", 1)
    for key, value in changes.items():
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    path = tmp_path / "changed.toml"
    path.write_text(text, encoding="utf-8")
    f = load_target(path).number_formats
    assert sorted(f.differences(LOIHI_FORMATS)) == sorted(changes)
    res = ptq(f)
    spikes_equal(res.graph, binary_frames(p=0.6))
    if set(changes) <= {"reset", "threshold_compare"}:
        check_formats(res.graph)  # Lava runs these on snn2hw's own LIF (docs/lava.md)
        return
    with pytest.raises(UnsupportedFormatsError, match=next(iter(changes))):
        check_formats(res.graph)


# ----- the generic target ------------------------------------------------------------------------


def test_generic_graph_is_refused_by_lava_naming_the_fields() -> None:
    g = ptq(load_target("generic4").number_formats, "generic4").graph
    with pytest.raises(UnsupportedFormatsError) as exc:
        check_formats(g)
    msg = str(exc.value)
    assert "backend 'lava' cannot run target 'generic4'" in msg
    assert "u_bits 16: Lava's PyLifModelBitAcc implements 24" in msg
    assert "reset" not in msg  # Lava runs reset by subtraction on snn2hw's own LIF
    assert "weight_mantissa_bits 4: Lava's PyDenseModelBitAcc implements 8" in msg


def test_generic_graph_round_trips_through_a_version_2_file(tmp_path) -> None:
    f = load_target("generic4").number_formats
    g = ptq(f, "generic4").graph
    path = tmp_path / "g.qgraph"
    g.save(path)
    header = json.loads(read_zip(path)["graph.json"])
    assert header["version"] == 2 and header["formats"]["reset"] == "subtract"
    back = QGraph.load(path)
    assert back.formats == f
    spikes_equal(back, binary_frames(), onnx=True)


def test_old_file_without_formats_loads_as_loihi(tmp_path) -> None:
    path = tmp_path / "old.qgraph"
    two_layer_dense_graph().save(path)
    members = read_zip(path)
    header = json.loads(members["graph.json"])
    del header["formats"]
    header["version"] = 1
    members["graph.json"] = json.dumps(header).encode()
    write_zip(path, members)
    assert QGraph.load(path).formats == LOIHI_FORMATS


def test_version_2_file_without_formats_is_refused(tmp_path) -> None:
    path = tmp_path / "bad.qgraph"
    two_layer_dense_graph().save(path)
    members = read_zip(path)
    header = json.loads(members["graph.json"])
    del header["formats"]
    header["version"] = 2
    members["graph.json"] = json.dumps(header).encode()
    write_zip(path, members)
    with pytest.raises(GraphError, match="lacks its number formats"):
        QGraph.load(path)


def test_int64_limits_are_refused_with_the_field() -> None:
    g = two_layer_dense_graph()
    g.formats = NumberFormats(u_bits=56)
    with pytest.raises(UnsupportedFormatsError, match="u_bits 56 with decay_bits 12"):
        torch_int.run(g, np.zeros((1, 1, *g.input_node.shape), np.int64))
    with pytest.raises(UnsupportedFormatsError, match="u_bits 56"):
        event.run(g, np.zeros((1, 1, *g.input_node.shape), np.int64))
