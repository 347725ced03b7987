"""PTQ's view of a NIR graph (snn2hw.quant.nir_paths, snn2hw.quant.normalize): sources,
synapse paths, folding of ops into one weighted op, and the threshold span."""

from __future__ import annotations

import nir
import numpy as np
import pytest

from snn2hw.common.errors import GraphError, QuantizationError
from snn2hw.quant.nir_paths import Structure, plan_path, weighted_out_shape
from snn2hw.quant.normalize import max_u_norm


def lif(n: int) -> nir.LIF:
    o = np.ones(n)
    return nir.LIF(tau=o * 1e-2, r=o, v_leak=0 * o, v_threshold=o, v_reset=0 * o)


def chain_graph() -> nir.NIRGraph:
    """in(4) -> scale 2 -> fc1 -> fc2 -> l1(3) -> l2(3) (direct) -> out, l2 -> l2 via rec."""
    rng = np.random.default_rng(0)
    nodes = {
        "in": nir.Input(np.array([4])),
        "sc": nir.Scale(np.full(4, 2.0)),
        "fc1": nir.Affine(rng.normal(size=(5, 4)), np.ones(5)),
        "fc2": nir.Affine(rng.normal(size=(3, 5)), np.zeros(3)),
        "l1": lif(3),
        "l2": lif(3),
        "rec": nir.Linear(np.eye(3)),
        "out": nir.Output(np.array([3])),
    }
    edges = [("in", "sc"), ("sc", "fc1"), ("fc1", "fc2"), ("fc2", "l1"), ("l1", "l2"),
             ("l2", "rec"), ("rec", "l2"), ("l2", "out")]
    return nir.NIRGraph(nodes, edges)


def test_structure_orders_sources_and_finds_paths() -> None:
    s = Structure(chain_graph())
    assert s.input == "in" and s.order == ["in", "l1", "l2"]
    assert s.paths("l1") == [["in", "sc", "fc1", "fc2"]]
    assert sorted(s.paths("l2")) == [["l1"], ["l2", "rec"]]


def test_consecutive_affines_fuse_with_the_scale_folded_in() -> None:
    g = chain_graph()
    s = Structure(g)
    plan = plan_path(s, s.paths("l1")[0], (3,))
    w1, w2 = g.nodes["fc1"].weight, g.nodes["fc2"].weight
    np.testing.assert_allclose(plan.weighted["weight"], w2 @ (w1 * 2.0))
    np.testing.assert_allclose(plan.bias, w2 @ np.ones(5))
    assert plan.ops == [] and weighted_out_shape(plan.weighted) == (3,)


def test_direct_connection_becomes_an_identity_map() -> None:
    s = Structure(chain_graph())
    plan = plan_path(s, ["l1"], (3,))
    assert plan.weighted["name"] == "l1.identity"
    np.testing.assert_array_equal(plan.weighted["weight"], np.eye(3))
    conv = plan_path(s, ["l1"], (2, 2, 2))
    assert conv.weighted["kind"] == "conv" and conv.weighted["groups"] == 2


def test_unsupported_nodes_and_structures_are_refused() -> None:
    g = chain_graph()
    g.nodes["in2"] = nir.Input(np.array([4]))
    with pytest.raises(GraphError, match="exactly one Input"):
        Structure(g)
    g = chain_graph()
    g.nodes["out"] = nir.Output(np.array([3]))
    g.nodes["l2"] = nir.LI(tau=np.ones(3), r=np.ones(3), v_leak=np.zeros(3))
    with pytest.raises(QuantizationError, match="non-spiking"):
        Structure(g)


def test_max_u_norm_follows_the_current_decay() -> None:
    import torch

    current = torch.tensor([[[1.0]], [[0.0]], [[-3.0]]], dtype=torch.float64)
    assert max_u_norm(current, 0.5) == pytest.approx(2.75)  # 1, 0.5, -2.75
    assert max_u_norm(current, 0.0) == pytest.approx(3.0)
