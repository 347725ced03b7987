"""The integer ONNX model executes periodic state reset (docs/qgraph.md "Periodic state
reset") through its step counter state ``step`` (docs/onnx.md): the hand-computed traces of
tests/backends/periodic_reset_int_cases.py through the step model and the Scan model
(onnxruntime and the ONNX reference evaluator), random recurrent graphs with delays and
multi-spike output against an independent numpy loop, the docs' hand-written driving loop,
and the phase, order and extent of the reset injected wrong into the exporter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx.reference import ReferenceEvaluator
from periodic_reset_int_cases import (
    FAULTS,
    HAND_CASES,
    assert_matches,
    bias_interval5_offset2,
    check,
    random_graph,
    reference,
)

from snn2hw.backends import onnx_runtime, registry
from snn2hw.backends.onnx_runtime import OnnxIntRunner
from snn2hw.exporters import onnx_int
from snn2hw.exporters.onnx_int import export_qgraph_onnx

COMBOS = [("zero", ">"), ("subtract", ">"), ("zero", ">="), ("subtract", ">=")]


def _frames(g, batch=3, seed=5):
    return np.random.default_rng(seed).integers(0, 4, (g.num_steps, batch, 6))


def _padded(frames: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros((n, *frames.shape[1:]), np.int64)
    out[: min(n, len(frames))] = frames[:n]
    return out


@pytest.mark.parametrize("make", HAND_CASES, ids=lambda m: m().name)
def test_step_model_gives_hand_computed_case(make):
    case = make()
    res = onnx_runtime.run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)


@pytest.mark.parametrize("make", HAND_CASES, ids=lambda m: m().name)
def test_scan_model_gives_hand_computed_spikes_in_onnxruntime_and_reference(make, tmp_path):
    case = make()
    path = tmp_path / "scan.onnx"
    export_qgraph_onnx(case.graph, path, time_loop=True)
    spikes = OnnxIntRunner(path).run(case.frames, case.num_steps)
    ev = ReferenceEvaluator(onnx.load(path))
    names = [f"{k}.spikes" for k in spikes]
    evald = dict(zip(spikes, ev.run(names, {"frames": _padded(case.frames, case.num_steps)}),
                     strict=True))
    for got in (spikes, evald):
        for name, traces in case.expect.items():
            np.testing.assert_array_equal(got[name].reshape(traces["spikes"].shape),
                                          traces["spikes"], err_msg=f"{case.name}: {name}")


def test_step_counter_is_a_state_tensor_only_where_a_lif_resets(tmp_path):
    info = export_qgraph_onnx(bias_interval5_offset2().graph, tmp_path / "m.onnx")
    assert info.inputs["step"] == ["B"] and info.outputs["step_next"] == ["B"]
    assert info.state["step_next"] == "step"
    assert list(info.inputs)[-1] == "step" and list(info.outputs)[-1] == "step_next"
    g = bias_interval5_offset2().graph
    g.nodes["L"].reset_interval = g.nodes["L"].reset_offset = 0
    plain = export_qgraph_onnx(g, tmp_path / "p.onnx")
    assert "step" not in plain.inputs and "step_next" not in plain.state


def test_each_sample_resets_at_its_own_step_index(tmp_path):
    """``step`` is per sample: fed [2, 3] to an interval-5 offset-2 LIF, sample 0 starts
    from rest (u = 0 + 64, v = 0 + 64 + 3) and sample 1 integrates its state."""
    export_qgraph_onnx(bias_interval5_offset2().graph, tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    feed = {"x": np.ones((2, 1), np.int64), "L.u": np.full((2, 1), 64, np.int64),
            "L.v": np.full((2, 1), 70, np.int64), "in.s_prev": np.ones((2, 1), np.int64),
            "step": np.array([2, 3], np.int64)}
    u, v, nxt = sess.run(["L.u_next", "L.v_next", "step_next"], feed)
    assert u.ravel().tolist() == [64, 128] and v.ravel().tolist() == [67, 201]
    assert nxt.tolist() == [3, 4]


@pytest.mark.parametrize(("reset", "compare"), COMBOS)
def test_random_recurrent_graph_with_delays_matches_independent_numpy_loop(reset, compare,
                                                                           tmp_path):
    g = random_graph(reset, compare)
    x = _frames(g)
    n = g.num_steps + g.depth()
    want = reference(g, x, n)
    res = onnx_runtime.run(g, x, record_state=True)
    assert_matches(want, res.spikes, res.u, res.v)
    assert res.spikes["H"].max() > 1 and res.spikes["O"].any()
    export_qgraph_onnx(g, tmp_path / "scan.onnx", time_loop=True)
    assert_matches(want, OnnxIntRunner(tmp_path / "scan.onnx").run(x), None, None)


def test_the_driving_loop_in_docs_onnx_md_carries_the_step_counter(tmp_path, monkeypatch):
    doc = (Path(__file__).parents[2] / "docs" / "onnx.md").read_text()
    code = doc.split("```python\n", 1)[1].split("```", 1)[0]
    g = random_graph("subtract", ">")
    monkeypatch.chdir(tmp_path)
    export_qgraph_onnx(g, "net.step.onnx")
    x = _frames(g)
    ns = {"frames": x}
    exec(compile(code, "docs/onnx.md", "exec"), ns)
    want = reference(g, x, g.num_steps + g.depth())
    assert_matches(want, {k: np.stack(s) for k, s in ns["spikes"].items()}, None, None)


def test_onnx_backend_declares_and_runs_periodic_reset():
    backend = registry.get("onnx")
    assert "periodic_reset" in backend.features
    case = HAND_CASES[1]()
    res = backend.run(case.graph, case.frames, case.num_steps, record_state=True)
    check(case, res.spikes, res.u, res.v)


# ----- faults injected into the exporter ---------------------------------------------------------
def _phase_off_by_one(monkeypatch):
    mask = onnx_int._rest_mask
    # (n + 1) % i == o  <=>  n % i == (o - 1) % i
    monkeypatch.setattr(onnx_int, "_rest_mask",
                        lambda b, step, i, o, rank: mask(b, step, i, (o - 1) % i, rank))


def _reset_after_integration(monkeypatch):
    build = onnx_int._build_lif

    def after(b, node, a, u, v, names, f, rest=None):
        if rest is None:
            return build(b, node, a, u, v, names, f)
        tmp = {"u": b.fresh("u"), "v": b.fresh("v"), "s": names["s"]}
        build(b, node, a, u, v, tmp, f)
        for k in ("u", "v"):
            b.op("Where", [rest, b.const(0), tmp[k]], node.name, out=names[k])

    monkeypatch.setattr(onnx_int, "_build_lif", after)


def _only_v_reset(monkeypatch):
    zero = onnx_int._from_rest
    monkeypatch.setattr(onnx_int, "_from_rest", lambda b, x, rest, hint:
                        x if x.endswith(".u") else zero(b, x, rest, hint))


INJECT = {"phase_off_by_one": _phase_off_by_one,
          "reset_after_integration": _reset_after_integration,
          "only_v_reset": _only_v_reset}


@pytest.mark.parametrize("fault", FAULTS)
def test_fault_injected_into_the_exporter_is_caught(fault, monkeypatch):
    INJECT[fault](monkeypatch)
    failed = []
    for make in HAND_CASES:
        case = make()
        res = onnx_runtime.run(case.graph, case.frames, case.num_steps, record_state=True)
        try:
            check(case, res.spikes, res.u, res.v)
        except AssertionError:
            failed.append(case.name)
    # interval 1 has no phase to get wrong; the delay case's u forgets every step (du 4095)
    blind = {"phase_off_by_one": {"interval_1_every_step"},
             "only_v_reset": {"delays_and_recurrent_edge"}}.get(fault, set())
    assert sorted(failed) == sorted({m().name for m in HAND_CASES} - blind)
    g = random_graph("zero", ">=")
    x = _frames(g)
    res = onnx_runtime.run(g, x, record_state=True)
    with pytest.raises(AssertionError):
        assert_matches(reference(g, x, g.num_steps + g.depth()), res.spikes, res.u, res.v)
    # the faulty model is exactly the numpy loop's faulty variant: the injection is the fault
    assert_matches(reference(g, x, g.num_steps + g.depth(), fault), res.spikes, res.u, res.v)
