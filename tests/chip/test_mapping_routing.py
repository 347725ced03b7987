"""Resource mapping, mesh and routing: core positions, tile hops, spike deliveries
(snn2hw.chip.mapping.mesh, .routing)."""

from __future__ import annotations

import numpy as np
import pytest
from mapping_graphs import two_by_two

from snn2hw.chip.mapping import Hops, map_to_cores, spike_hops
from snn2hw.chip.targets import Target, load_target


@pytest.fixture(scope="module")
def loihi() -> Target:
    return load_target("loihi")


def test_hops_on_a_hand_worked_mesh(loihi: Target) -> None:
    # 1 core per tile, 4 cores per chip -> a 2x2 tile grid in snake order:
    # core 0 (0,0), core 1 (1,0), core 2 (1,1), core 3 (0,1)
    g, t = two_by_two(loihi, neurons_per_core=1, cores_per_tile=1, cores_per_chip=4)
    m = map_to_cores(g, t)
    assert [m.layers["A"].first_core, m.layers["B"].first_core] == [0, 2]
    xs, ys = m.position(np.arange(4))
    assert list(zip(xs.tolist(), ys.tolist(), strict=True)) == [(0, 0), (1, 0), (1, 1), (0, 1)]
    assert m.hops(0, 2) == Hops(ew=1, ns=1)
    assert m.hops(1, 3) == Hops(ew=1, ns=1)
    assert m.hops(0, 3) == Hops(ew=0, ns=1)
    # A0 (3 spikes) -> cores 2, 3; A1 (5 spikes) -> core 3
    r = spike_hops(m, "A", np.array([3, 5]))
    assert r.deliveries == 3 * 2 + 5
    assert r.hops_ew == 3 * (1 + 0) + 5 * 1
    assert r.hops_ns == 3 * (1 + 1) + 5 * 1
    assert (r.within_tile, r.chip_crossings, r.source_on_mesh) == (0, 0, True)
    # external input: deliveries only (injected from off the mesh)
    r_in = spike_hops(m, "in", np.array([1, 2]))
    assert (r_in.deliveries, r_in.hops_ew, r_in.source_on_mesh) == (3, 0, False)
    # the output layer feeds no core
    assert spike_hops(m, "B", np.array([4, 4])).deliveries == 0


def test_spikes_within_one_tile_make_no_hops(loihi: Target) -> None:
    g, t = two_by_two(loihi, neurons_per_core=1, cores_per_tile=4)
    m = map_to_cores(g, t)
    r = spike_hops(m, "A", np.array([3, 5]))
    assert (r.deliveries, r.within_tile, r.hops_ew, r.hops_ns) == (11, 11, 0, 0)


def test_spikes_across_chips_are_counted(loihi: Target) -> None:
    g, t = two_by_two(loihi, neurons_per_core=1, cores_per_tile=1, cores_per_chip=2)
    m = map_to_cores(g, t)
    assert m.chips == 2
    r = spike_hops(m, "A", np.array([1, 1]))
    assert r.deliveries == 3 and r.chip_crossings == 3
    assert r.hops_ew + r.hops_ns >= 3
