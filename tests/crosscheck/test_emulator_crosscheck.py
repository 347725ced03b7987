"""Cross-check: snn2hw's event simulator against nengo-loihi's Loihi 1 emulator.

Same integer parameters on both (see nengo_emulator.py for the mapping); u, v and spikes
are compared at every step. Part 1: every normal-range case agrees, where "normal range"
is exactly what :func:`snn2hw.quant.bounds.check_chip_limits` accepts. Part 2: one test
per edge rule of docs/loihi-edges.md, showing where (and how) the two part ways, and that
the bound refuses each such graph naming the layer.
"""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip(
    "nengo_loihi",
    reason="nengo-loihi is not installed (scripts/setup_env.sh installs nengo==4.1.0 and "
    "nengo-loihi==1.1.0 for the Loihi 1 emulator cross-check)",
)

from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from nengo_emulator import (  # noqa: E402
    first_difference,
    graph_of,
    lif_node,
    run_emulator,
    run_event,
)

from snn2hw.quant.bounds import ChipLimitError, check_chip_limits, layer_bounds  # noqa: E402
from snn2hw.quant.qgraph import DenseNode, InputNode  # noqa: E402

U_TOP = 2**23


def _both(g, x, steps):
    return run_event(g, x, steps), run_emulator(g, x, steps)


def _overflow_warnings(emu) -> list[str]:
    return [w for w in emu.warnings if w.startswith("Overflow")]


# ----- part 1: the normal range agrees ------------------------------------------------------


def _two_hop(seed, du1, dv1, vth1, du2, dv2, vth2, e1, e2, bits, recurrent, bias):
    rng = np.random.default_rng(seed)
    n_in, n1, n2 = 6, 5, 4
    lim = 2 if bits else 120
    nodes = [
        InputNode("in", (n_in,), message_bits=bits),
        DenseNode("d1", rng.integers(-lim, lim + 1, (n1, n_in)), weight_exp=e1),
        lif_node("l1", n1, du1, dv1, vth1, rng.integers(-bias, bias + 1, n1), 3),
        DenseNode("d2", rng.integers(-200, 201, (n2, n1)), weight_exp=e2),
        lif_node("l2", n2, du2, dv2, vth2, rng.integers(-bias, bias + 1, n2), 1),
    ]
    edges = [("in", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")]
    if recurrent:
        nodes.append(DenseNode("rec", rng.integers(-150, 151, (n2, n2))))
        edges += [("l2", "rec"), ("rec", "l2")]
    g = graph_of(nodes, edges)
    hi = 2 if not bits else 2**bits
    x = rng.integers(0, hi, (30, n_in))
    return g, x


NORMAL_CASES = [
    # (du1, dv1, vth1, du2, dv2, vth2, e1, e2, bits, recurrent, bias)
    (4095, 4095, 10, 4095, 4095, 10, 0, 0, 0, False, 0),  # no memory: u = a << 6
    (4095, 0, 3000, 3000, 0, 3000, 2, 0, 0, False, 0),  # v integrators (dv = 0)
    (1200, 300, 400, 600, 90, 200, 3, 1, 0, True, 50),  # CUBA + recurrence + biases
    (4095, 200, 300, 300, 50, 500, 5, 4, 0, True, 4000),  # bias dominates: bias timing
    (2000, 10, 100, 2000, 1000, 50, 0, 0, 4, False, 0),  # graded 4-bit input
    (4095, 0, 131071, 4095, 0, 131071, 5, 5, 0, False, 4095),  # |v| up to 8.37M, vth max
]


@pytest.mark.parametrize("case", NORMAL_CASES)
def test_normal_range_graphs_agree_at_every_step(case):
    g, x = _two_hop(7, *case)
    check_chip_limits(g)  # inside the range where Lava's model and the chip agree
    ours, chip = _both(g, x, 36)
    assert first_difference(ours, chip) is None, first_difference(ours, chip)
    assert not _overflow_warnings(chip)


def test_strict_threshold_hard_reset_and_one_step_per_hop():
    """v == vth << 6 does not spike (strict >), v resets to 0 and u does not, and a spike
    at step n reaches the next layer's u at step n + 1, on both."""
    nodes = [InputNode("in", (1,)), DenseNode("d1", [[100]]), lif_node("l1", 1, 4095, 4095, 100),
             DenseNode("d2", [[1]]), lif_node("l2", 1, 4095, 4095, 0)]
    g = graph_of(nodes, [("in", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")])
    x = np.array([[1], [0], [0]])
    ours, chip = _both(g, x, 5)
    assert first_difference(ours, chip) is None
    # step 1: u = v = 100 << 6 = vth << 6: no spike (strict); add one more unit -> spike
    assert chip.u["l1"][1, 0] == chip.v["l1"][1, 0] == 6400 and not chip.s["l1"][1, 0]
    g2 = graph_of([InputNode("in", (1,)), DenseNode("d1", [[101]]),
                   lif_node("l1", 1, 4095, 4095, 100), DenseNode("d2", [[1]]),
                   lif_node("l2", 1, 4095, 4095, 0)],
                  [("in", "d1"), ("d1", "l1"), ("l1", "d2"), ("d2", "l2")])
    ours, chip = _both(g2, x, 5)
    assert first_difference(ours, chip) is None
    assert chip.s["l1"][:, 0].tolist() == [False, True, False, False, False]
    assert chip.v["l1"][1, 0] == 0 and chip.u["l1"][1, 0] == 6464  # hard reset of v only
    assert chip.u["l2"][:, 0].tolist() == [0, 0, 64, 0, 0]  # one step per hop


def test_u_wrap_away_from_the_edges_agrees():
    """u pumped past +2^23 by graded input (never hitting ±2^23 exactly) wraps alike."""
    nodes = [InputNode("in", (1,), message_bits=8), DenseNode("d", [[128]]),
             lif_node("l", 1, 0, 4095, 131071)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    x = np.full((8, 1), 255)
    ours, chip = _both(g, x, 9)
    assert first_difference(ours, chip) is None
    assert (np.diff(chip.u["l"][:, 0]) < 0).any()  # it did wrap
    assert np.abs(chip.u["l"]).max() < U_TOP


def test_v_saturates_alike_at_both_ends():
    """v integrates (dv = 0) a steady input until it clips at -(2^23 - 1), and a large
    bias drives it to +(2^23 - 1) past the largest threshold."""
    nodes = [InputNode("in", (1,)), DenseNode("d", [[-255]], weight_exp=5),
             lif_node("l", 1, 4095, 0, 131071)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    check_chip_limits(g)
    ours, chip = _both(g, np.ones((20, 1), dtype=int), 21)
    assert first_difference(ours, chip) is None
    assert chip.v["l"][-1, 0] == -(U_TOP - 1)
    nodes = [InputNode("in", (1,)), DenseNode("d", [[255]], weight_exp=7),
             lif_node("l", 1, 4095, 0, 131071, bias_mant=4095, bias_exp=7)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    check_chip_limits(g)
    ours, chip = _both(g, np.ones((6, 1), dtype=int), 7)
    assert first_difference(ours, chip) is None
    assert chip.s["l"].any()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**16),
    du1=st.integers(0, 4095), dv1=st.integers(0, 4095), vth1=st.integers(0, 3000),
    du2=st.integers(0, 4095), dv2=st.integers(0, 4095), vth2=st.integers(0, 3000),
    e1=st.integers(0, 4), e2=st.integers(-2, 3), bits=st.sampled_from([0, 0, 2]),
    recurrent=st.booleans(), bias=st.integers(0, 4095),
)
def test_every_graph_inside_the_bound_agrees_with_the_emulator(
    seed, du1, dv1, vth1, du2, dv2, vth2, e1, e2, bits, recurrent, bias
):
    """Property: whatever check_chip_limits accepts runs identically on both."""
    g, x = _two_hop(seed, du1, dv1, vth1, du2, dv2, vth2, e1, e2, bits, recurrent, bias)
    if e2 < 0:  # make the per-synapse and per-sum shifts agree: weights on the 2^-e grid
        d2 = g.nodes["d2"]
        d2.weight = (d2.weight >> -e2) << -e2
    if any(not b.ok for b in layer_bounds(g)):
        return  # outside the normal range: the edge tests below cover it
    ours, chip = _both(g, x, 34)
    assert first_difference(ours, chip) is None, first_difference(ours, chip)


# ----- part 2: the five edge rules ----------------------------------------------------------


@pytest.mark.parametrize("graded", [False, True])
def test_edge1_synaptic_accumulator_wraps_at_21_bits_plus_sign_on_the_chip(graded):
    """Two spikes of weight 255 << 7 (or one 8-bit payload 255 on weight 254): the sum
    q = a << 6 exceeds 2^21 - 1. Lava's model adds it to u whole; the chip's accumulator
    wraps it to 22 bits (q - 2^22) before it reaches u."""
    if graded:
        nodes = [InputNode("in", (1,), message_bits=8), DenseNode("d", [[254]])]
        x, q = np.array([[255]]), 255 * 254 * 64
    else:
        nodes = [InputNode("in", (2,)), DenseNode("d", [[255, 255]], weight_exp=7)]
        x, q = np.array([[1, 1]]), 2 * (255 << 7) * 64
    g = graph_of([*nodes, lif_node("l", 1, 4095, 4095, 131071)], [("in", "d"), ("d", "l")])
    ours, chip = _both(g, x, 2)
    assert q > 2**21 - 1
    assert ours.u["l"][1, 0] == q  # 4,177,920 (binary) / 4,145,280 (graded)
    assert chip.u["l"][1, 0] == q - 2**22  # -16,384 / -49,024
    assert "Overflow in q0" in _overflow_warnings(chip)
    with pytest.raises(ChipLimitError, match=r"layer 'l'.*accumulator"):
        check_chip_limits(g)


def test_edge2_u_plus_bias_wraps_on_the_chip_and_saturates_in_lava():
    """u close below 2^23 plus a positive bias: the chip wraps u + bias to 24 bits (v goes
    negative, no spike); Lava's model adds it into v, which saturates at 2^23 - 1 and
    spikes."""
    b = 4095 << 7
    # constant input q per step into an integrator (du = 0): find the weight whose u lands
    # in [2^23 - b, 2^23 - 1] before ever going beyond it
    def u_seq(w):
        u, out = 0, []
        for _ in range(8):
            p = u * 4095
            u = (p >> 12) + ((w << 7) << 6)
            out.append(u)
        return out
    w, n = next((w, i) for w in range(255, 0, -1) for i, u in enumerate(u_seq(w))
                if U_TOP - b <= u < U_TOP and max(u_seq(w)[:i], default=0) < U_TOP - b)
    nodes = [InputNode("in", (1,)), DenseNode("d", [[w]], weight_exp=7),
             lif_node("l", 1, 0, 4095, 131071, bias_mant=4095, bias_exp=7)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    x = np.ones((n + 1, 1), dtype=int)
    ours, chip = _both(g, x, n + 2)
    t = n + 1
    assert ours.u["l"][t, 0] == chip.u["l"][t, 0] == u_seq(w)[n]  # same u ...
    assert ours.s["l"][t, 0] and ours.v["l"][t, 0] == 0  # Lava: v saturated, spiked
    assert chip.v["l"][t, 0] < 0 and not chip.s["l"][t, 0]  # chip: u + bias wrapped
    assert "Overflow in u2" in _overflow_warnings(chip)
    with pytest.raises(ChipLimitError, match=r"layer 'l'.*u \+ bias"):
        check_chip_limits(g)


def test_edge3_u_exactly_plus_2_23_is_kept_by_lava_and_wrapped_by_the_chip():
    """du = 250, four steps of a = 32640, then a = 19325: u = 2^23 exactly. Lava's rule
    (wrap only u > 2^23) keeps it; the chip's two's complement makes it -2^23."""
    nodes = [InputNode("in", (2,), message_bits=8), DenseNode("d", [[128, 1]]),
             lif_node("l", 1, 250, 4095, 131071)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    x = np.array([[255, 0]] * 4 + [[150, 125]])
    ours, chip = _both(g, x, 6)
    assert first_difference(ours, chip).startswith("u of 'l'[0] at step 5")
    assert ours.u["l"][5, 0] == U_TOP
    assert chip.u["l"][5, 0] == -U_TOP
    with pytest.raises(ChipLimitError, match=r"layer 'l'.*u can reach"):
        check_chip_limits(g)


def test_edge4_negative_weight_exp_chip_shifts_each_synapse_lava_the_sum():
    """weight_exp = -3, two synapses of 84 spiking together: Lava (84 + 84) >> 3 = 21, the
    chip (84 >> 3) + (84 >> 3) = 20; u = 21 << 6 = 1344 vs 1280."""
    nodes = [InputNode("in", (2,)), DenseNode("d", [[84, 84]], weight_exp=-3),
             lif_node("l", 1, 4095, 4095, 131071)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    ours, chip = _both(g, np.array([[1, 1]]), 2)
    assert ours.u["l"][1, 0] == 21 << 6 == 1344
    assert chip.u["l"][1, 0] == 20 << 6 == 1280
    with pytest.raises(ChipLimitError, match=r"layer 'l'.*weight_exp = -3"):
        check_chip_limits(g)
    # on the 2^3 grid the two shifts agree, and the bound accepts it
    g.nodes["d"].weight = np.array([[80, 88]])
    ours, chip = _both(g, np.array([[1, 1]]), 2)
    assert first_difference(ours, chip) is None
    check_chip_limits(g)


def test_edge5_weight_exp_7_our_u_leaves_24_bits_the_chip_stays_inside():
    """13 synapses of 255 << 7 at once: q = 27,156,480. Lava's wrap subtracts 2^24 once,
    leaving u = 10,379,264 > 2^23; the chip wraps q to 22 bits and u to 24 bits."""
    nodes = [InputNode("in", (13,)), DenseNode("d", np.full((1, 13), 255), weight_exp=7),
             lif_node("l", 1, 4095, 4095, 131071)]
    g = graph_of(nodes, [("in", "d"), ("d", "l")])
    ours, chip = _both(g, np.ones((1, 13), dtype=int), 2)
    q = 13 * (255 << 13)
    assert ours.u["l"][1, 0] == q - 2**24 == 10_379_264 > U_TOP
    assert -U_TOP <= chip.u["l"][1, 0] < U_TOP
    with pytest.raises(ChipLimitError, match="layer 'l'"):
        check_chip_limits(g)
