"""simulate.run_backend dispatches through the backend registry: for every backend it gives
exactly what calling that backend directly gives (spikes, u, v, activity counters), also
when it splits the samples into batches."""

from __future__ import annotations

import numpy as np
import pytest

from snn2hw.backends import event, lava, registry, torch_int
from snn2hw.backends.base import SimResult
from snn2hw.pipeline.simulate import layer_summary, predictions, run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


def _lif(name: str, n: int, vth: int) -> LIFNode:
    z = np.zeros(n, np.int64)
    return LIFNode(name, (n,), du=3000, dv=500, vth=vth, bias_mant=z, bias_exp=z.copy())


def recurrent_graph() -> QGraph:
    """in(6) -> d1 -> l1(8) <-> rec, l1 -> d2 -> l2(3): active, not saturated."""
    rng = np.random.default_rng(3)
    nodes = [
        InputNode("in", (6,)),
        DenseNode("d1", rng.integers(-40, 120, (8, 6))),
        _lif("l1", 8, 40),
        DenseNode("rec", rng.integers(-60, 60, (8, 8))),
        DenseNode("d2", rng.integers(-30, 110, (3, 8))),
        _lif("l2", 3, 30),
        OutputNode("out", (3,)),
    ]
    edges = [("in", "d1"), ("d1", "l1"), ("l1", "rec"), ("rec", "l1"), ("l1", "d2"),
             ("d2", "l2"), ("l2", "out")]
    return QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 6).validate()


def frames(batch: int) -> np.ndarray:
    return (np.random.default_rng(5).random((6, batch, 6)) < 0.5).astype(np.uint8)


def assert_same(got: SimResult, want: SimResult, state: bool) -> None:
    assert set(got.spikes) == set(want.spikes)
    for name, s in want.spikes.items():
        np.testing.assert_array_equal(got.spikes[name], s, err_msg=name)
        assert 0 < s.sum() < s.size, f"'{name}' silent or saturated: the check proves little"
        if state:
            np.testing.assert_array_equal(got.u[name], want.u[name], err_msg=name)
            np.testing.assert_array_equal(got.v[name], want.v[name], err_msg=name)
    if not state:
        assert got.u is None and got.v is None


@pytest.mark.parametrize("state", [False, True])
def test_torch_int_through_the_registry_equals_direct_call_in_batches(state):
    g, x = recurrent_graph(), frames(7)
    want = torch_int.run(g, x, record_state=state)
    got = run_backend("torch-int", g, x, record_state=state, batch_size=3)  # 3 + 3 + 1
    assert got.backend == "torch-int" and got.device == "cpu" and got.counters is None
    assert_same(got, want, state)


@pytest.mark.parametrize("state", [False, True])
def test_event_through_the_registry_equals_direct_call_counters_included(state):
    g, x = recurrent_graph(), frames(7)
    want = event.run(g, x, record_state=state)
    got = run_backend("event", g, x, record_state=state, batch_size=2)  # 4 batches
    assert got.backend == "event"
    assert_same(got, want, state)
    assert got.counters is not None and want.counters is not None
    for key, per_layer in want.counters.as_dict().items():
        for layer, value in per_layer.items():
            np.testing.assert_array_equal(
                getattr(got.counters, key)[layer], value, err_msg=f"{key} of {layer}"
            )
    summary = layer_summary(g, got)
    assert summary["l1"]["synops_per_sample"] == want.counters.synops["l1"].sum() / 7


@pytest.mark.lava
def test_lava_through_the_registry_equals_direct_call():
    g, x = recurrent_graph(), frames(3)
    want = lava.run(g, x, record_state=True)
    got = run_backend("lava", g, x, record_state=True, batch_size=1)  # Lava never splits
    assert_same(got, want, True)
    assert got.lava_steps == want.lava_steps == 3 * (g.num_steps + g.depth())
    assert got.build_s is not None and got.buffer_resets == want.buffer_resets


def test_onnx_through_the_registry_equals_torch_int_spikes_u_and_v():
    g, x = recurrent_graph(), frames(4)
    got = run_backend("onnx", g, x, record_state=True)
    assert got.backend == "onnx"
    assert_same(got, torch_int.run(g, x, record_state=True), True)
    assert_same(run_backend("onnx", g, x), torch_int.run(g, x), False)


def test_every_backend_agrees_and_predictions_match_the_result_method():
    g, x = recurrent_graph(), frames(5)
    names = [n for n in registry.names() if n in registry.available()]
    runs = {n: run_backend(n, g, x) for n in names}
    ref = runs["torch-int"]
    for name, r in runs.items():
        assert_same(r, ref, False)
        np.testing.assert_array_equal(predictions(g, r.spikes), r.predictions(g), err_msg=name)
        assert r.wall_s > 0


def test_device_reaches_only_backends_that_use_one():
    g, x = recurrent_graph(), frames(2)
    # 'meta' is no device torch-int accepts, and event must never see it
    assert run_backend("event", g, x, device="meta").backend == "event"
    with pytest.raises(Exception, match="meta"):
        run_backend("torch-int", g, x, device="meta")


def test_no_samples_is_reported_by_the_backend():
    g = recurrent_graph()
    with pytest.raises(Exception, match="empty"):
        run_backend("torch-int", g, np.zeros((6, 0, 6), np.uint8))
