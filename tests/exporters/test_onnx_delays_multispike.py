"""The integer ONNX model executes synaptic delays (delay lines as state tensors) and
multi-spike output exactly as docs/qgraph.md writes them: the hand-computed cases of
tests/backends/delay_multispike_cases.py through the step model (onnxruntime), the Scan
model (onnxruntime and the ONNX reference evaluator), and an independent numpy loop."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from delay_multispike_cases import (
    ALL_CASES,
    chained_ops_delays_add,
    check,
    count_above_255,
    per_synapse_mixed_delays,
    random_dense_graph,
    recurrent_delay,
    reference_run,
)
from onnx.reference import ReferenceEvaluator

from snn2hw.backends import onnx_runtime, registry
from snn2hw.backends.onnx_runtime import OnnxIntRunner
from snn2hw.exporters.onnx_int import export_qgraph_onnx


@pytest.mark.parametrize("make", ALL_CASES, ids=lambda m: m().name)
def test_step_model_gives_hand_computed_case(make):
    case = make()
    res = onnx_runtime.run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)


@pytest.mark.parametrize("make", ALL_CASES, ids=lambda m: m().name)
def test_scan_model_gives_hand_computed_spikes(make, tmp_path):
    case = make()
    export_qgraph_onnx(case.graph, tmp_path / "scan.onnx", time_loop=True)
    spikes = OnnxIntRunner(tmp_path / "scan.onnx").run(case.frames, case.num_steps)
    for name, want in case.expect.get("spikes", {}).items():
        np.testing.assert_array_equal(spikes[name], want, err_msg=case.name)
    n = case.num_steps or case.graph.num_steps + case.graph.depth()
    assert all(s.shape[0] == n for s in spikes.values())


def test_delay_lines_are_state_tensors_carried_to_the_next_step(tmp_path):
    info = export_qgraph_onnx(chained_ops_delays_add().graph, tmp_path / "m.onnx")
    # conv 'c' (delay 1) holds its wrapped output, dense 'd' (delays 0..3) its unshifted sums
    assert info.inputs["c.delay"] == ["B", 1, 1, 4, 4]
    assert info.inputs["d.delay"] == ["B", 3, 2]
    assert info.state["c.delay_next"] == "c.delay" and info.state["d.delay_next"] == "d.delay"
    assert info.outputs["d.delay_next"] == ["B", 3, 2]
    assert json.loads(info.metadata["depth"]) == 5


def test_random_recurrent_graph_matches_independent_numpy_loop():
    g = random_dense_graph(3, "subtract", ">")
    x = np.random.default_rng(7).integers(0, 4, (8, 3, 6))
    res = onnx_runtime.run(g, x, record_state=True)
    ref = reference_run(g, x, res.spikes["O"].shape[0])
    for name in ("H", "O"):
        np.testing.assert_array_equal(res.spikes[name], ref["spikes"][name])
        np.testing.assert_array_equal(res.u[name], ref["u"][name])
        np.testing.assert_array_equal(res.v[name], ref["v"][name])
    assert res.spikes["H"].max() > 1


def test_onnx_reference_evaluator_runs_the_scan_model_with_delays_and_counts(tmp_path):
    g = random_dense_graph(4, "zero", ">=")
    x = np.random.default_rng(2).integers(0, 4, (8, 2, 6))
    n = g.num_steps + g.depth()
    export_qgraph_onnx(g, tmp_path / "scan.onnx", time_loop=True)
    frames = np.zeros((n, 2, 6), np.int64)
    frames[:8] = x
    model = onnx.load(str(tmp_path / "scan.onnx"))
    out = ReferenceEvaluator(model).run(None, {"frames": frames})
    ref = reference_run(g, x, n)
    np.testing.assert_array_equal(out[0], ref["spikes"]["H"])
    np.testing.assert_array_equal(out[1], ref["spikes"]["O"])


def test_recurrent_delay_in_reference_evaluator_step_model(tmp_path):
    """The step model's delay state, carried by hand as docs/onnx.md describes."""
    case = recurrent_delay()
    export_qgraph_onnx(case.graph, tmp_path / "m.onnx")
    model = onnx.load(str(tmp_path / "m.onnx"))
    meta = {p.key: p.value for p in model.metadata_props}
    state = json.loads(meta["state"])
    sess = ReferenceEvaluator(model)
    feed = {i.name: np.zeros([1, *(d.dim_value for d in i.type.tensor_type.shape.dim[1:])],
                             np.int64) for i in model.graph.input}
    names = [o.name for o in model.graph.output]
    got = []
    for n in range(case.num_steps):
        feed["x"] = case.frames[n] if n < len(case.frames) else np.zeros((1, 1), np.int64)
        out = dict(zip(names, sess.run(None, feed), strict=True))
        got.append(out["L.s"])
        for o, i in state.items():
            feed[i] = out[o]
    np.testing.assert_array_equal(np.stack(got), case.expect["spikes"]["L"])


def test_counts_above_255_come_back_as_int32_with_an_exact_linear_type(tmp_path):
    case = count_above_255()
    info = export_qgraph_onnx(case.graph, tmp_path / "scan.onnx", time_loop=True)
    assert info.linear_dtypes["d2"] == "float64"  # inputs up to 300 > 256
    assert info.outputs["L1.spikes"] == ["N", "B", 1]
    spikes = OnnxIntRunner(tmp_path / "scan.onnx").run(case.frames, 3)
    assert spikes["L1"].dtype == np.int32 and spikes["L1"][1, 0, 0] == 300
    step = onnx_runtime.run(case.graph, case.frames, 3)
    assert step.spikes["L1"].dtype == np.int32 and step.spikes["L2"].dtype == np.uint8


def test_backend_declares_both_features_and_runs_a_delayed_graph():
    backend = registry.get("onnx")
    assert {"delay", "multi_spike"} <= backend.features
    case = per_synapse_mixed_delays()
    res = backend.run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)
