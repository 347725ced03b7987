"""The event simulator's conv as blocks (``event_kernels_conv.conv_scatter``, "Blocks";
``event_ops.conv_blocks``): every event adds the same R runs of Rx * C_out packed int32
values rounded up to whole 16-lane vector adds, the taps a stride phase or a border lacks
and the spare lanes weighing 0 and landing on other output positions or in margins around
the sums.

Checked: the tables reach exactly the (input, kernel, output) triples of the per-tap
tables, on geometries wider than the random conv families elsewhere (kernels up to 7,
strides up to 4, padding up to k - 1, channel counts that leave 512-bit, 256-bit and
single-value tails); runs with blocks equal the numpy reference of test_event and runs
without blocks, fused with the LIF and not (both output layouts), binary and graded
inputs; the int32 sums and their margins are all zero after every call; and a fault in the
tables (a case's weights one slot off) is caught.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
from test_event import assert_matches_reference, graph, lif

from snn2hw.backends import event, event_ops
from snn2hw.quant.qgraph import ConvNode, FlattenNode, InputNode, QGraph

# (C_in, H, W, C_out, k, stride, padding): strides above and below the kernel, padding at
# its largest, C_out giving runs of whole 512-bit vectors (16), a 256-bit tail (8, 24) and
# single values (3, 5)
GEOMETRIES = [
    (2, 12, 12, 16, 5, 2, 1),
    (3, 9, 11, 8, 3, 1, 2),
    (1, 10, 7, 5, 7, 3, 6),
    (2, 8, 8, 24, 2, 4, 0),
    (4, 6, 9, 3, 4, 2, 3),
    (1, 5, 5, 16, 1, 1, 0),
    (2, 7, 13, 8, 3, 3, 1),
]


def _conv_graph(geom: tuple[int, ...], rng: np.random.Generator, fused: bool,
                message_bits: int) -> QGraph:
    c, h, w, c_out, k, s, p = geom
    wt = rng.integers(-40, 41, (c_out, c, k, k)) * (rng.random((c_out, c, k, k)) < 0.8)
    conv = ConvNode("c", wt.astype(np.int64), (c, h, w), stride=(s, s), padding=(p, p))
    shape = conv.out_shape
    src = InputNode("in", (c, h, w), message_bits=message_bits)
    if fused:  # the conv alone feeds a LIF of its shape: one kernel (conv_step)
        return graph([src, conv, lif("l", shape, vth=40)], [("in", "c"), ("c", "l")],
                     num_steps=5)
    n = int(np.prod(shape))  # through a flatten: conv_scatter, output in (C, H, W) order
    return graph([src, conv, FlattenNode("f", shape), lif("l", (n,), vth=40)],
                 [("in", "c"), ("c", "f"), ("f", "l")], num_steps=5)


def _frames(g: QGraph, rng: np.random.Generator, message_bits: int) -> np.ndarray:
    c, h, w = g.nodes["in"].shape
    top = 1 if message_bits == 0 else (1 << message_bits) - 1
    return (rng.integers(1, top + 1, (5, 3, c, h, w))
            * (rng.random((5, 3, c, h, w)) < 0.3)).astype(np.int64)


def test_block_tables_reach_exactly_the_taps_of_the_per_tap_tables():
    for geom in GEOMETRIES:
        c, h, w, c_out, k, s, p = geom
        conv = ConvNode("c", np.ones((c_out, c, k, k), np.int64), (c, h, w), stride=(s, s),
                        padding=(p, p))
        op = event_ops.ConvOp(conv, hwc_in=False, hwc_out=True)
        blk = op.blk
        assert blk[0] > 0, geom
        ry, run, row_step, ch_step, r_step, front = (int(v) for v in blk[:6])
        rx = -(-k // s)  # the most kernel columns one input column reaches
        assert run % 16 == 0 and run - 16 < rx * c_out <= run, geom  # whole vector adds
        # per stored input position (C order here): where its runs start, sums and kernel
        at = blk[6:].reshape(c, h, w)
        sums_at, kernel_at = at >> 32, at & 0xFFFFFFFF
        # the sums' offsets do not depend on the channel, the kernel's by ch_step per one
        assert (sums_at == sums_at[:1]).all(), geom
        assert (kernel_at - kernel_at[:1] == np.arange(c)[:, None, None] * ch_step).all()
        # a channels-last input: the same offsets, in its stored order
        hwc = event_ops.ConvOp(conv, hwc_in=True, hwc_out=True).blk[6:]
        np.testing.assert_array_equal(hwc, at.transpose(1, 2, 0).ravel(), str(geom))
        # every lane of every run stays inside the int32 sums and their margins
        assert int(sums_at.max()) + (ry - 1) * row_step + run <= op.n_acc32, geom
        assert int(sums_at.min()) >= 0, geom
        table = op.wblk32.reshape(-1)
        (yp, yk, yo), (xp, xk, xo) = op.ytaps, op.xtaps
        for y in range(h):
            for x in range(w):
                want = {(int(yo[i]), int(xo[j]), int(yk[i]), int(xk[j]))
                        for i in range(yp[y], yp[y + 1]) for j in range(xp[x], xp[x + 1])}
                got = set()
                for r in range(ry):
                    for t in range(rx):
                        flat = int(sums_at[0, y, x]) + r * row_step + t * c_out - front
                        wb = int(kernel_at[0, y, x]) + r * r_step + t * c_out
                        if table[wb:wb + c_out].any():  # every weight 1: taps reached
                            oy, ox = divmod(flat // c_out, conv.out_shape[2])
                            # the kernel tap: the one whose output this is
                            got.add((oy, ox, y + p - oy * s, x + p - ox * s))
                        else:  # a slot a case lacks: nothing added anywhere
                            assert not table[wb:wb + c_out].any()
                    lanes = int(kernel_at[0, y, x]) + r * r_step  # the adds' spare lanes
                    assert not table[lanes + rx * c_out:lanes + run].any(), geom
                assert got == want, (geom, y, x)


@pytest.mark.parametrize("fused", [True, False], ids=["fused", "conv_scatter"])
@pytest.mark.parametrize("message_bits", [0, 2], ids=["binary", "graded"])
def test_blocks_match_the_reference_and_the_per_tap_scatter(fused, message_bits, monkeypatch):
    rng = np.random.default_rng(1 + message_bits + fused)
    for geom in GEOMETRIES:
        g = _conv_graph(geom, rng, fused, message_bits)
        x = _frames(g, rng, message_bits)
        event.PLANS.clear()
        assert_matches_reference(g, x)
        plan = event.PLANS.get(g)
        assert plan.ops["c"].blk[0] > 0 and (plan.fused == {"l": "c"}) == fused, geom
        blocks = event.run(g, x, threads=1)
        with monkeypatch.context() as m:
            m.setattr(event_ops, "BLOCK_BYTES", 0)  # per tap instead
            event.PLANS.clear()
            taps = event.run(g, x, threads=1)
            assert event.PLANS.get(g).ops["c"].blk[0] == 0
        event.PLANS.clear()
        np.testing.assert_array_equal(blocks.spikes["l"], taps.spikes["l"], err_msg=str(geom))
        for field in ("synops", "synops_dense", "neuron_updates", "spike_counts",
                      "peak_fanin"):
            a, b = getattr(blocks.counters, field), getattr(taps.counters, field)
            np.testing.assert_array_equal(a["l"], b["l"], err_msg=f"{field} {geom}")


def test_int32_sums_and_margins_are_all_zero_after_every_call():
    rng = np.random.default_rng(2)
    margins = 0
    for geom in GEOMETRIES[:4]:
        for fused in (True, False):
            g = _conv_graph(geom, rng, fused, 0)
            x = _frames(g, rng, 0)
            plan = event.PLANS.get(g)
            op = copy.copy(plan.ops["c"])
            rows = x.shape[1]
            op.alloc(rows)
            margins += op.acc32.size > op.n_scratch
            xs = x.reshape(x.shape[0], rows, -1)
            syn = np.zeros((1, 2), np.int64)
            L = plan.lifs[0]
            u = np.zeros((rows, L.size), L.state_dtype)
            v = np.zeros_like(u)
            for step in xs:
                if fused:
                    op.apply_lif(step, L, u, v, np.zeros((rows, L.size), np.uint8), syn,
                                 np.zeros((1, 3), np.int64))
                else:
                    op.apply(step, True, syn, 0)
                assert not op.acc32.any(), (geom, fused)
            event.PLANS.clear()
    assert margins  # some of these geometries have taps outside the output


def test_a_table_one_slot_off_is_caught(monkeypatch):
    real = event_ops.conv_blocks

    def shifted(*args):
        blk, table, n = real(*args)
        return blk, np.roll(table, 1), n  # every weight one output channel further

    monkeypatch.setattr(event_ops, "conv_blocks", shifted)
    rng = np.random.default_rng(3)
    g = _conv_graph(GEOMETRIES[0], rng, True, 0)
    x = _frames(g, rng, 0)
    event.PLANS.clear()
    with pytest.raises(AssertionError):
        assert_matches_reference(g, x)
    event.PLANS.clear()


def test_no_blocks_where_the_sums_offsets_could_pass_31_bits():
    """The packed offsets hold the sums' offset in their high 32 bits: outputs of 2^30
    values or more (margins come on top) get no blocks, one value fewer still does."""
    w = np.ones((1, 1, 1, 1), dtype=np.int32)
    pos = event_ops.position_table((1, 4, 4), False, None)
    args = (1, (1, 1), (0, 0), (1, 1), pos)
    edge = 1 << 15
    assert event_ops.conv_blocks(w, (1, 4, 4), (edge, edge), *args)[0][0] == 0
    assert event_ops.conv_blocks(w, (1, 4, 4), (edge, edge - 1), *args)[0][0] > 0
