"""Lava backend against the written semantics (docs/qgraph.md), with torch_int as reference.

Every comparison is spike for spike over all steps and samples; each graph streams several
samples through ONE Lava network, so equality with torch_int (which runs samples
independently) also shows that nothing leaks from one sample into the next. Lava is slow
to start (about 1.5 s per network), so the graphs are few and each covers several features.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
from qgraph_builders import dense  # noqa: E402
from qgraph_builders import lif as build_lif  # noqa: E402

from snn2hw.backends import lava as lava_backend
from snn2hw.backends import torch_int
from snn2hw.common.errors import GraphError
from snn2hw.quant.qgraph import (
    ConvNode,
    FlattenNode,
    InputNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

pytestmark = pytest.mark.lava


# ----- helpers ---------------------------------------------------------------------------------
def lif(name, shape, du=4095, dv=4095, vth=20, bias_mant=0, bias_exp=0):
    return build_lif(name, shape, du, dv, vth, bias_mant, bias_exp)


def graph(nodes, edges, out, num_steps):
    src = next(n for n in nodes if n.name == out)
    nodes = [*nodes, OutputNode("out", tuple(src.shape))]
    return QGraph(
        {n.name: n for n in nodes}, [*edges, (out, "out")], 1e-3, "loihi", num_steps
    ).validate()


def spikes_in(rng, steps, batch, shape, p):
    return (rng.random((steps, batch, *shape)) < p).astype(np.uint8)


def assert_matches(g, x, record_state=False):
    """Lava == torch_int spike for spike (and u/v when recorded); every LIF must be active
    but not saturated, or the comparison would prove little."""
    ref = torch_int.run(g, x, record_state=record_state)
    res = lava_backend.run(g, x, record_state=record_state)
    assert set(res.spikes) == set(ref.spikes)
    for name, want in ref.spikes.items():
        got = res.spikes[name]
        assert got.dtype == np.uint8 and got.shape == want.shape, name
        np.testing.assert_array_equal(got, want, err_msg=f"spikes of '{name}'")
        assert 0 < want.sum() < want.size // 2, f"'{name}' is silent or saturated"
        if record_state:
            np.testing.assert_array_equal(res.u[name], ref.u[name], err_msg=f"u of '{name}'")
            np.testing.assert_array_equal(res.v[name], ref.v[name], err_msg=f"v of '{name}'")
    np.testing.assert_array_equal(res.predictions(g), ref.predictions(g))
    assert res.lava_steps == x.shape[1] * ref.spikes[g.lif_nodes[0].name].shape[0]
    assert 0 < res.build_s < res.wall_s
    return ref, res


# ----- graphs ------------------------------------------------------------------------------------
def test_dense_binary_two_layers_matches_torch_int_with_state():
    rng = np.random.default_rng(7)
    w1 = rng.integers(-61, 62, (12, 8))  # mixed sign with odd values: Lava truncates them
    w1[0, 0], w1[1, 0] = 7, -7  # the docs' worked example: [7, -7] -> [6, -8]
    g = graph(
        [
            InputNode("in", (8,)),
            dense("d1", w1, weight_exp=-1, num_weight_bits=7),
            lif("l1", 12, du=3000, dv=200, vth=20, bias_mant=rng.integers(-30, 40, 12), bias_exp=1),
            dense("d2", rng.integers(0, 40, (5, 12)), weight_exp=1),  # excitatory
            lif("l2", 5, du=2000, dv=100, vth=400),
        ],
        [("in", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")],
        "l2",
        num_steps=10,
    )
    x = spikes_in(rng, 10, 4, (8,), 0.4)
    assert_matches(g, x, record_state=True)


def test_graded_input_matches_torch_int():
    rng = np.random.default_rng(3)
    g = graph(
        [
            InputNode("in", (6,), message_bits=8),
            dense("d1", rng.integers(-40, 41, (10, 6)), weight_exp=-3),
            lif("l1", 10, du=4095, dv=300, vth=120),
            dense("d2", -rng.integers(0, 60, (4, 10)), weight_exp=0),  # inhibitory
            lif("l2", 4, du=1000, dv=50, vth=10, bias_mant=300, bias_exp=2),
        ],
        [("in", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")],
        "l2",
        num_steps=8,
    )
    x = rng.integers(0, 256, (8, 3, 6))
    assert_matches(g, x)


def test_conv_sumpool_flatten_dense_matches_torch_int():
    rng = np.random.default_rng(11)
    c_w = rng.integers(-9, 10, (4, 1, 3, 2)) * 3  # odd mixed conv weights: re-encoded x2
    conv = ConvNode(
        "conv", c_w, (2, 7, 7), -1, stride=(2, 2), padding=(1, 1), dilation=(1, 2), groups=2
    )
    assert conv.out_shape == (4, 4, 4)
    g = graph(
        [
            InputNode("in", (2, 7, 7)),
            conv,
            lif("l1", (4, 4, 4), du=3500, dv=500, vth=25),
            # Overlapping pool then dense with weight_exp > 0: composed weights exceed 8 bits
            # and are split into base-256 digit matrices.
            SumPoolNode("pool_a", (4, 4, 4), kernel_size=(3, 3), stride=(1, 1), padding=(1, 1)),
            FlattenNode("flat_a", (4, 4, 4)),
            dense("fc_a", rng.integers(-100, 101, (5, 64)) * 2, weight_exp=1),
            # Non-overlapping pool then dense with a floor shift: one Sparse.
            SumPoolNode("pool_b", (4, 4, 4), kernel_size=(2, 2), stride=(2, 2)),
            FlattenNode("flat_b", (4, 2, 2)),
            dense("fc_b", rng.integers(-120, 121, (5, 16)), weight_exp=-2),
            lif("l2", 5, du=4095, dv=400, vth=300),
        ],
        [
            ("in", "conv"),
            ("conv", "l1"),
            ("l1", "pool_a"),
            ("pool_a", "flat_a"),
            ("flat_a", "fc_a"),
            ("fc_a", "l2"),
            ("l1", "pool_b"),
            ("pool_b", "flat_b"),
            ("flat_b", "fc_b"),
            ("fc_b", "l2"),
        ],
        "l2",
        num_steps=6,
    )
    net = lava_backend.LavaNetwork(g)
    conns = {p.nodes[-1]: p.conns for lif_ in net.lifs for p in lif_.paths}
    assert [c.weight_exp for c in conns["conv"]] == [-2]  # doubled mantissa, exponent -1 - 1
    assert len(conns["fc_a"]) > 1 and len(conns["fc_b"]) == 1
    x = spikes_in(rng, 6, 3, (2, 7, 7), 0.5)
    assert_matches(g, x)


def test_recurrent_stream_equals_torch_int_and_single_sample_runs(monkeypatch):
    rng = np.random.default_rng(5)
    g = graph(
        [
            InputNode("in", (5,)),
            dense("d_in", rng.integers(0, 80, (8, 5))),
            # Bias drives spikes at every sample's last step, so the one-step-delayed
            # activation must be cleared between samples (buffer_resets > 0 below).
            lif("h", 8, du=2500, dv=300, vth=60, bias_mant=rng.integers(0, 600, 8)),
            dense("d_rec", rng.integers(-90, 91, (8, 8)) * 2),
            dense("d_out", rng.integers(-50, 120, (3, 8))),
            lif("o", 3, du=4095, dv=800, vth=160),
        ],
        [("in", "d_in"), ("d_in", "h"), ("h", "d_rec"), ("d_rec", "h"), ("h", "d_out")]
        + [("d_out", "o")],
        "o",
        num_steps=9,
    )
    x = spikes_in(rng, 9, 3, (5,), 0.3)
    _, res = assert_matches(g, x)
    assert res.buffer_resets > 0
    net = lava_backend.LavaNetwork(g)
    monkeypatch.setattr(lava_backend, "_CHUNK_MAX", 4)  # each sample now spans 3 run() calls
    for b in range(x.shape[1]):
        single = net.run(x[:, b : b + 1])
        for name, spk in res.spikes.items():
            np.testing.assert_array_equal(single.spikes[name], spk[:, b : b + 1], err_msg=name)


def test_residual_two_paths_and_a_detached_part_match_torch_int():
    rng = np.random.default_rng(2)
    g = graph(
        [
            InputNode("in", (2, 3)),
            FlattenNode("flat", (2, 3)),
            dense("d1", rng.integers(0, 90, (7, 6))),
            lif("l1", 7, du=3000, dv=600, vth=150),
            dense("d2", rng.integers(-80, 81, (4, 7)), weight_exp=1),
            FlattenNode("flat_skip", (2, 3)),
            dense("skip", rng.integers(-50, 101, (4, 6)) | 1, weight_exp=-1),  # odd: truncated
            lif("l2", 4, du=1500, dv=200, vth=800),
            # A bias-driven LIF that only hears itself: a network part not connected to the
            # input, which Lava would not compile unless the backend ties it in.
            lif("osc", 2, du=4095, dv=0, vth=100, bias_mant=[1500, 2500]),
            dense("d_osc", [[-40, 0], [0, 30]]),
        ],
        [("in", "flat"), ("flat", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")]
        + [("in", "flat_skip"), ("flat_skip", "skip"), ("skip", "l2")]
        + [("osc", "d_osc"), ("d_osc", "osc")],
        "l2",
        num_steps=10,
    )
    x = spikes_in(rng, 10, 3, (2, 3), 0.4)
    assert_matches(g, x)


# ----- published Lava trace --------------------------------------------------------------------
def test_nir_paper_lava_fixed_point_lif_trace(external):
    """NIR paper, 01_lif: Lava CPU fixed point with du=4095, dv=163, vth=25 and a 1x1 Dense of
    weight 10. The CSVs have 1000 rows = steps (row index = 0-based step), columns input
    (binary 0/1), v, spike. Lava's spikes are at rows 461, 511, 711, 761: one step after the
    exact solution's (460, 510, 710, 760), the Dense hop of docs/qgraph.md."""
    folder = external / "nir-paper" / "01_lif"
    exact = np.loadtxt(folder / "lif_exact.csv", delimiter=",")
    published = np.loadtxt(folder / "lif_lava_cpu_fixed.csv", delimiter=",")
    assert exact.shape == published.shape == (1000, 3)
    inp = exact[:, 0]
    assert set(np.unique(inp)) == {0.0, 1.0}  # binary input spikes
    assert np.array_equal(inp, published[:, 0])
    g = graph(
        [InputNode("in", (1,)), dense("w", [[10]]), lif("lif", 1, du=4095, dv=163, vth=25)],
        [("in", "w"), ("w", "lif")],
        "lif",
        num_steps=1000,
    )
    x = inp.astype(np.int64)[:, None, None]  # [F=1000, B=1, 1]
    want = published[:, 2].astype(np.uint8)
    np.testing.assert_array_equal(np.nonzero(want)[0], [461, 511, 711, 761])
    ref = torch_int.run(g, x, num_steps=1000)
    res = lava_backend.run(g, x, num_steps=1000, record_state=True)
    np.testing.assert_array_equal(ref.spikes["lif"][:, 0, 0], want)
    np.testing.assert_array_equal(res.spikes["lif"][:, 0, 0], want)
    # The published v column is Lava's raw fixed-point v (after the reset), step for step.
    np.testing.assert_array_equal(res.v["lif"][:, 0, 0], published[:, 1].astype(np.int64))


# ----- refusals ------------------------------------------------------------------------------
def test_paths_that_do_not_compose_exactly_raise_graph_error_naming_the_node():
    conv = ConvNode("conv", np.ones((1, 1, 2, 2), np.int64), (1, 4, 4), weight_exp=-1)
    g = graph(
        [
            InputNode("in", (1, 4, 4)),
            conv,
            SumPoolNode("pool", (1, 3, 3), kernel_size=(2, 2), stride=(1, 1)),
            lif("l", (1, 2, 2)),
        ],
        [("in", "conv"), ("conv", "pool"), ("pool", "l")],
        "l",
        num_steps=2,
    )
    with pytest.raises(GraphError, match="'conv' floor-shifts"):
        lava_backend.LavaNetwork(g)
    # Odd mixed weights beyond +-127 need 9 bits; with a floor shift they cannot be split.
    w = np.array([[255, -3]], np.int64)[:, :, None, None]
    conv9 = ConvNode("conv9", w, (2, 1, 1), weight_exp=-1)
    g9 = graph(
        [InputNode("in", (2, 1, 1)), conv9, lif("l", (1, 1, 1))],
        [("in", "conv9"), ("conv9", "l")],
        "l",
        num_steps=2,
    )
    with pytest.raises(GraphError, match="conv9 -> l.*8-bit weights"):
        lava_backend.LavaNetwork(g9)


def test_activation_beyond_lavas_int32_datapath_is_refused_at_run_time():
    """Static bound 255 * 255 * 2^7 > 2^18: checked on the actual run instead."""
    g = graph(
        [
            InputNode("in", (1,), message_bits=8),
            dense("d", [[255]], weight_exp=7),
            lif("l", 1, du=4095, dv=4095, vth=131071),
        ],
        [("in", "d"), ("d", "l")],
        "l",
        num_steps=3,
    )
    net = lava_backend.LavaNetwork(g)
    assert not net.lifs[0].proven
    small = np.array([[[1]], [[2]], [[0]]])  # a = 255 * 2 * 128 < 2^18: exact, accepted
    np.testing.assert_array_equal(net.run(small).spikes["l"], torch_int.run(g, small).spikes["l"])
    with pytest.raises(GraphError, match="'l' \\(lif\\): synaptic input reached"):
        net.run(np.array([[[255]], [[0]], [[0]]]))


def test_missing_lava_raises_one_line_install_hint():
    code = textwrap.dedent(
        """
        import sys
        sys.modules["lava"] = None  # as if lava-nc were not installed
        import numpy as np
        from snn2hw.backends import lava as backend
        from snn2hw.compat.lava_py311 import LavaMissingError
        from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph
        z = np.zeros(1, np.int64)
        nodes = [InputNode("in", (1,)), DenseNode("d", np.ones((1, 1), np.int64)),
                 LIFNode("l", (1,), 4095, 4095, 1, z, z), OutputNode("out", (1,))]
        g = QGraph({n.name: n for n in nodes}, [("in", "d"), ("d", "l"), ("l", "out")],
                   1e-3, "loihi", 1)
        try:
            backend.run(g, np.ones((1, 1, 1), np.int64))
        except LavaMissingError as exc:
            print("HINT:" + str(exc))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    hint = out.stdout.split("HINT:", 1)[1].strip()
    assert "\n" not in hint and "Lava is not installed" in hint and "snn2hw install-lava" in hint
