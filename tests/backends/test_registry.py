"""The backend registry and the backend contract (snn2hw.backends.registry / .base):
the one list of backends, their node kinds, refusals by name and by node kind, the one
result type and the rule that a backend never imports another backend."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from qgraph_builders import dense, lif, make_graph  # noqa: E402

from snn2hw.backends import registry
from snn2hw.backends.base import (
    ActivityCounters,
    Backend,
    SimResult,
    UnsupportedNodeError,
    check_node_kinds,
)
from snn2hw.common.errors import GraphError, Snn2hwError
from snn2hw.pipeline.simulate import BackendRun, run_backend
from snn2hw.quant.qgraph import InputNode, QGraph

ALL_KINDS = {"input", "dense", "conv", "sumpool", "flatten", "lif", "output"}
BACKENDS_DIR = Path(registry.__file__).parent


def small_graph() -> QGraph:
    return make_graph(
        [InputNode("in", (4,)), dense("d", np.full((3, 4), 40)), lif("l", 3, vth=20)],
        [("in", "d"), ("d", "l")],
    )


@dataclass
class MysteryNode:
    """A node kind no backend executes (injected after validation)."""

    name: str
    shape: tuple[int, ...] = (3,)
    kind: str = "mystery"


def graph_with_mystery_node() -> QGraph:
    g = small_graph()
    g.nodes["odd"] = MysteryNode("odd")
    return g


# ----- the list ----------------------------------------------------------------------------------
def test_registry_lists_all_four_backends_in_reference_order():
    assert registry.names() == ("torch-int", "event", "lava", "onnx")


@pytest.mark.parametrize("name", ["torch-int", "event", "lava", "onnx"])
def test_each_backend_declares_its_node_kinds_and_capabilities(name):
    backend = registry.get(name)
    assert isinstance(backend, Backend)
    assert backend.name == name
    assert registry.node_kinds(name) == backend.node_kinds == ALL_KINDS
    hint = registry.install_hint(name)
    assert hint and "\n" not in hint
    for flag in ("records_state", "uses_device", "counts_activity", "splits_batches"):
        assert isinstance(getattr(backend, flag), bool), flag


def test_capabilities_say_who_counts_records_and_uses_a_device():
    get = registry.get
    assert [n for n in registry.names() if get(n).counts_activity] == ["event"]
    assert [n for n in registry.names() if get(n).uses_device] == ["torch-int"]
    assert [n for n in registry.names() if not get(n).records_state] == []
    assert [n for n in registry.names() if not get(n).splits_batches] == ["lava", "onnx"]


def test_available_backends_are_registered_ones():
    avail = registry.available()
    assert set(avail) <= set(registry.names())
    assert {"torch-int", "event", "onnx"} <= set(avail)  # hard dependencies of snn2hw


# ----- refusals ----------------------------------------------------------------------------------
def test_unknown_backend_name_is_refused_with_the_known_names():
    msg = "unknown backend 'nope'; known: torch-int, event, lava, onnx"
    with pytest.raises(registry.UnknownBackendError, match=msg):
        registry.get("nope")
    with pytest.raises(Snn2hwError, match=msg):
        run_backend("nope", small_graph(), np.ones((2, 1, 4), np.uint8))
    with pytest.raises(Snn2hwError, match="unknown backend 'nope'"):
        registry.install_hint("nope")


@pytest.mark.parametrize("name", ["torch-int", "event", "lava", "onnx"])
def test_unsupported_node_kind_is_refused_up_front_naming_node_kind_and_backend(name):
    g = graph_with_mystery_node()
    x = np.ones((2, 1, 4), np.uint8)
    want = f"node 'odd' has kind 'mystery', which backend '{name}' does not execute"
    with pytest.raises(UnsupportedNodeError, match=want):
        run_backend(name, g, x)
    with pytest.raises(GraphError, match=want):  # also through the protocol directly
        registry.get(name).run(g, x)


def test_check_node_kinds_lists_what_the_backend_executes():
    with pytest.raises(UnsupportedNodeError, match=r"it executes: dense, input, lif, output\)"):
        check_node_kinds(graph_with_mystery_node(), "toy", {"input", "dense", "lif", "output"})
    with pytest.raises(UnsupportedNodeError, match="node 'd' has kind 'dense'.*'toy'"):
        check_node_kinds(small_graph(), "toy", {"input", "lif", "output"})
    check_node_kinds(small_graph(), "toy", ALL_KINDS)  # no error


# ----- independence ------------------------------------------------------------------------------
# module -> the snn2hw modules it may import (its own split-off parts and the shared contract)
OWN_PARTS = {
    "torch_int": {"snn2hw.backends.base", "snn2hw.backends.torch_int_ops"},
    "torch_int_ops": set(),
    "event": {"snn2hw.backends.base", "snn2hw.backends.event_kernels_lif",
              "snn2hw.backends.event_ops", "snn2hw.backends.event_plan"},
    "event_ops": {"snn2hw.backends.event_kernels", "snn2hw.backends.event_kernels_conv",
                  "snn2hw.backends.event_kernels_dense", "snn2hw.backends.event_plan"},
    "event_plan": {"snn2hw.backends.base", "snn2hw.backends.event_kernels",
                   "snn2hw.backends.event_kernels_lif", "snn2hw.backends.event_ops"},
    "event_kernels": set(),
    "event_kernels_conv": {"snn2hw.backends.event_kernels"},
    "event_kernels_dense": {"snn2hw.backends.event_kernels"},
    "event_kernels_lif": {"snn2hw.backends.event_kernels",
                          "snn2hw.backends.event_kernels_conv"},
    "lava": {"snn2hw.backends.base", "snn2hw.backends.lava_lowering",
             "snn2hw.backends.lava_neuron"},
    "lava_lowering": set(),
    "lava_neuron": set(),
    "base": set(),
}
SHARED = ("snn2hw.common", "snn2hw.quant", "snn2hw.compat")


def _snn2hw_imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            mods = [node.module]
            if node.module == "snn2hw.backends":
                mods = [f"snn2hw.backends.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        else:
            continue
        found.update(m for m in mods if m.startswith("snn2hw"))
    return found


@pytest.mark.parametrize("module", sorted(OWN_PARTS))
def test_a_backend_imports_no_other_backend_and_no_pipeline(module):
    imports = _snn2hw_imports(BACKENDS_DIR / f"{module}.py")
    bad = {m for m in imports if m not in OWN_PARTS[module] and not m.startswith(SHARED)}
    assert not bad, f"{module}.py imports {sorted(bad)}"


def test_every_backend_module_is_covered_by_the_independence_check():
    mods = {p.stem for p in BACKENDS_DIR.glob("*.py")} - {"__init__", "registry", "onnx_runtime"}
    assert mods <= set(OWN_PARTS)


# ----- the one result type -----------------------------------------------------------------------
def counters(scale: int) -> ActivityCounters:
    return ActivityCounters(
        synops={"l": np.array([0, 2]) * scale},
        synops_dense={"l": np.array([1, 3]) * scale},
        neuron_updates={"l": np.array([1, 1]) * scale},
        spike_counts={"l": np.array([0, 1]) * scale},
        macs_dense={"l": 12},
        peak_fanin={"l": scale},
    )


def test_concat_joins_batches_and_merges_counters():
    s1, s2 = np.zeros((2, 1, 3), np.uint8), np.ones((2, 2, 3), np.uint8)
    a = SimResult("event", {"l": s1}, {"l": s1.astype(np.int64)}, None, 1.0, counters=counters(1))
    b = SimResult("event", {"l": s2}, {"l": s2.astype(np.int64)}, None, 2.0, counters=counters(3))
    r = SimResult.concat([a, b])
    assert r.backend == "event" and r.wall_s == 3.0 and r.v is None
    np.testing.assert_array_equal(r.spikes["l"], np.concatenate([s1, s2], axis=1))
    np.testing.assert_array_equal(r.u["l"], np.concatenate([s1, s2], axis=1))
    assert r.counters is not None
    np.testing.assert_array_equal(r.counters.synops["l"], [0, 8])
    np.testing.assert_array_equal(r.counters.spike_counts["l"], [0, 4])
    assert r.counters.macs_dense == {"l": 12} and r.counters.peak_fanin == {"l": 3}
    assert SimResult.concat([a, b], wall_s=0.5).wall_s == 0.5
    lava = SimResult.concat([SimResult("lava", {"l": s1}, lava_steps=2, buffer_resets=1,
                                       build_s=0.1)] * 2)
    assert lava.lava_steps == 4 and lava.buffer_resets == 2 and lava.counters is None
    with pytest.raises(ValueError):
        SimResult.concat([])


def test_counter_aliases_and_the_former_backend_run_constructor():
    stats = counters(1).as_dict()
    run = BackendRun("event", {"l": np.zeros((2, 1, 3), np.uint8)}, stats=stats)
    assert isinstance(run, SimResult) and BackendRun is SimResult
    assert run.counters is not None and run.backend == "event"
    assert run.stats["macs_dense"] == {"l": 12} and run.synops is run.counters.synops
    for key in ActivityCounters.KEYS:
        assert getattr(run, key) is getattr(run.counters, key)
    plain = BackendRun("torch-int", run.spikes)
    assert plain.stats == {} and plain.counters is None
    with pytest.raises(AttributeError, match="only the event backend counts activity"):
        _ = plain.synops
    with pytest.raises(ValueError, match="miss"):
        ActivityCounters.from_dict({"synops": {}})
