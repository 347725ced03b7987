"""Small graphs with a periodic state reset of LIF nodes (docs/qgraph.md "Periodic state
reset") and their traces worked out by hand, shared by the event and Lava tests (imported
as a plain module: pytest puts this folder on sys.path).

Arithmetic used in the hand traces (Loihi formats: ``a << 6``, 12-bit decays):
``du = 4095`` makes ``u = a << 6`` (no memory); ``du = 0`` makes ``u`` lose 1 per step
while ``0 < u < 4096`` (``rtz(u * 4095, 12) = u - 1``); ``dv = 0`` keeps ``v`` exactly
(``v = v + u + b``); ``vth = 2`` is the threshold 128, ``vth = 3`` 192, spike when
``v > TH`` and then ``v = 0`` (``u`` is kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from delay_graphs import dense, frames, lif, make

from snn2hw.quant.formats import LOIHI_FORMATS
from snn2hw.quant.qgraph import InputNode, QGraph


@dataclass
class Case:
    graph: QGraph
    x: np.ndarray  # [F, B, 1]
    steps: int
    spikes: dict[str, list[list[int]]]  # LIF -> per sample: the steps it spikes at
    u: dict[str, list[list[int]]]  # LIF -> per sample: u after every step
    v: dict[str, list[list[int]]]


def with_reset(g: QGraph, **schedule: tuple[int, int]) -> QGraph:
    """``g`` with ``(reset_interval, reset_offset)`` set on the named LIF nodes."""
    for name, (interval, offset) in schedule.items():
        g.nodes[name].reset_interval, g.nodes[name].reset_offset = interval, offset
    return g.validate()


def constant_bias() -> Case:
    """One neuron driven by its bias alone (b = 64, TH = 128), interval 5, offset 2:
    ``v`` climbs 64, 128, 192 (spike) but is zeroed at steps 2, 7, 12, so it spikes at
    4 and 9 only (without the reset: at 2, 5, 8, 11)."""
    g = make([InputNode("in", (1,)), dense("fc", [[1]]),
              lif("l", 1, du=4095, dv=0, vth=2, bias_mant=64)],
             [("in", "fc"), ("fc", "l")], num_steps=13, fmt=LOIHI_FORMATS)
    g = with_reset(g, l=(5, 2))
    return Case(g, np.zeros((13, 1, 1), np.int64), 13, {"l": [[4, 9]]},
                {"l": [[0] * 13]},
                {"l": [[64, 128, 64, 128, 0, 64, 128, 64, 128, 0, 64, 128, 64]]})


def two_layers(batch_inputs: tuple[tuple[int, ...], ...] = ((0, 4),)) -> Case:
    """in -> fc1 (1) -> h1 (du 0, TH 128; interval 4, offset 0) -> fc2 (3) -> h2 (du 0,
    TH 128; interval 4, offset 1): each layer is reset one step after the one before,
    so each starts from rest when its input arrives (lava-dl netx's timing).

    An input at frame 0 reaches h1 at step 1: u = 64, 63, 62, v = 64, 127, 189 (spike at
    3, v = 0); step 4 resets h1 (u = 0: without the reset u would go on 61, 60, ...).
    h1's spike reaches h2 at step 4: u = v = 192, spike; step 5 resets h2 (else u = 191,
    v = 191 would spike again). An input at frame 4 does the same 4 steps later, and
    step 9 resets h2 again. ``batch_inputs``: the input frames of each sample, drawn from
    {0, 4}."""
    g = make([InputNode("in", (1,)), dense("fc1", [[1]]), lif("h1", 1, du=0, dv=0, vth=2),
              dense("fc2", [[3]]), lif("h2", 1, du=0, dv=0, vth=2)],
             [("in", "fc1"), ("fc1", "h1"), ("h1", "fc2"), ("fc2", "h2")], num_steps=10,
             fmt=LOIHI_FORMATS)
    g = with_reset(g, h1=(4, 0), h2=(4, 1))
    x = frames(10, len(batch_inputs), 1,
               {(t, b): [0] for b, ts in enumerate(batch_inputs) for t in ts})
    wave = {  # what one input frame at 0 or 4 contributes (the waves never overlap)
        0: ({1: 64, 2: 63, 3: 62}, {1: 64, 2: 127}, 3, {4: 192}, 4),
        4: ({5: 64, 6: 63, 7: 62}, {5: 64, 6: 127}, 7, {8: 192}, 8),
    }
    spk: dict[str, list[list[int]]] = {"h1": [], "h2": []}
    u: dict[str, list[list[int]]] = {"h1": [], "h2": []}
    v: dict[str, list[list[int]]] = {"h1": [], "h2": []}
    for ts in batch_inputs:
        u1, v1, u2 = [0] * 10, [0] * 10, [0] * 10
        s1, s2 = [], []
        for t in ts:
            du1, dv1, sp1, du2, sp2 = wave[t]
            for k, val in du1.items():
                u1[k] = val
            for k, val in dv1.items():
                v1[k] = val
            for k, val in du2.items():
                u2[k] = val
            s1.append(sp1)
            s2.append(sp2)
        spk["h1"].append(sorted(s1))
        spk["h2"].append(sorted(s2))
        u["h1"].append(u1)
        v["h1"].append(v1)
        u["h2"].append(u2)
        v["h2"].append([0] * 10)  # h2 spikes as soon as its input arrives: v = 0 after
    return Case(g, x, 10, spk, u, v)


def every_step() -> Case:
    """Interval 1: u and v are zeroed before every step, the neuron has no memory:
    v = (a << 6) + 64 each step; an input of 2 at frame 1 gives v = 192 > 128 at step 2
    only (without the reset v would climb from 64 and spike at step 1)."""
    g = make([InputNode("in", (1,)), dense("fc", [[2]]),
              lif("l", 1, du=4095, dv=0, vth=2, bias_mant=64)],
             [("in", "fc"), ("fc", "l")], num_steps=6, fmt=LOIHI_FORMATS)
    g = with_reset(g, l=(1, 0))
    return Case(g, frames(6, 1, 1, {(1, 0): [0]}), 6, {"l": [[2]]},
                {"l": [[0, 0, 128, 0, 0, 0]]}, {"l": [[64, 64, 0, 64, 64, 64]]})


def delays_and_recurrence() -> Case:
    """in -> fc (3, delay 1) -> h (du 0, TH 128; interval 6, offset 3) and h -> rec (2,
    delay 2) -> h. The reset zeroes u and v, never a pending delayed input.

    frame 0 arrives at step 2: u = v = 192, spike (its echo arrives at 5). Step 3 resets.
    5: u = v = 128 (no spike: not > 128); 6: u = 127, v = 255 spike (echo at 9); 7: u =
    126, v = 126; 8: u = 125, v = 251 spike (echo at 11); 9 resets, then the echo: u = v
    = 128; 10: u = 127, v = 255 spike; 11: u = 126 + 128 = 254, v = 254 spike."""
    g = make([InputNode("in", (1,)), dense("fc", [[3]], 0, 1),
              lif("h", 1, du=0, dv=0, vth=2), dense("rec", [[2]], 0, 2)],
             [("in", "fc"), ("fc", "h"), ("h", "rec"), ("rec", "h")], num_steps=12)
    g = with_reset(g, h=(6, 3))
    return Case(g, frames(12, 1, 1, {(0, 0): [0]}), 12, {"h": [[2, 6, 8, 10, 11]]},
                {"h": [[0, 0, 192, 0, 0, 128, 127, 126, 125, 128, 127, 254]]},
                {"h": [[0, 0, 0, 0, 0, 128, 0, 126, 0, 128, 0, 0]]})


def check(case: Case, res) -> None:
    """``res`` (a SimResult with state) equals the hand traces of ``case``."""
    for name, per_sample in case.spikes.items():
        batch = len(per_sample)
        for b, want in enumerate(per_sample):
            got = np.asarray(res.spikes[name]).reshape(case.steps, batch, -1)[:, b, 0]
            assert list(np.flatnonzero(got)) == want, f"spikes of '{name}', sample {b}"
            for key, table in (("u", case.u), ("v", case.v)):
                rec = np.asarray(getattr(res, key)[name]).reshape(case.steps, batch, -1)
                assert list(rec[:, b, 0]) == table[name][b], f"{key} of '{name}', sample {b}"
