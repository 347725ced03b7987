"""torch-int LIF shortcuts are taken only where they provably change nothing.

``u_stays_in_range`` lets the network skip the u overflow rule; ``_decay`` skips the decay
arithmetic for the factors 0 and 2^12. Graphs here sit just below and just over the u bound
(binary inputs, weights 255, weight_exp 7: each input adds 255 << 7 = 32640, and
``a << 6`` passes 2^23 from the fifth input on); forcing the shortcut past the bound must
give a detectably wrong u.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from qgraph_builders import dense, lif, make_graph

from snn2hw.backends import torch_int_ops
from snn2hw.backends.torch_int import TorchIntNetwork
from snn2hw.quant.qgraph import InputNode


def _net(n_in: int, du: int = 4095) -> TorchIntNetwork:
    nodes = [InputNode("in", (n_in,)), dense("d", np.full((1, n_in), 255), weight_exp=7),
             lif("l", 1, du=du)]
    return TorchIntNetwork(make_graph(nodes, [("in", "d"), ("d", "l")]))


def test_u_overflow_rule_is_skipped_just_below_the_bound_and_kept_just_over():
    assert (4 * 32640) << 6 < 2**23 < (5 * 32640) << 6
    assert _net(4)._lifs[0].u_in_range
    assert not _net(5)._lifs[0].u_in_range
    assert _net(4, du=4094)._lifs[0].u_in_range  # decayed u adds at most 2^23 >> 12
    assert not _net(4, du=3000)._lifs[0].u_in_range  # ... here (2^23 * 1095) >> 12


def test_u_bound_counts_the_decayed_state():
    h = 2**23
    assert torch_int_ops.u_stays_in_range(0, 4095)
    assert torch_int_ops.u_stays_in_range(1, 2048)  # (h * 2047) >> 12 + 64 < h
    assert not torch_int_ops.u_stays_in_range(h >> 7, 2047)  # h/2 + h/2 is not below h
    assert torch_int_ops.u_stays_in_range((h >> 7) - 1, 2047)
    assert not torch_int_ops.u_stays_in_range(0, -1)  # du = -1: u kept, no room


def test_wrap_fires_just_over_the_bound_and_forcing_the_skip_is_detectably_wrong():
    net = _net(5)
    frames = np.ones((1, 1, 5), np.uint8)
    u = net.run(frames, num_steps=2, record_state=True).u["l"]
    want = ((5 * 32640) << 6) - 2**24  # one wrap correction
    assert int(u[1, 0, 0]) == want
    net._lifs[0].u_in_range = True  # fault injection: the shortcut past its bound
    bad = net.run(frames, num_steps=2, record_state=True).u["l"]
    assert int(bad[1, 0, 0]) != want


@pytest.mark.parametrize("mult", [0, 1, 2048, 4095, 4096])
def test_decay_shortcuts_equal_rtz_of_the_product(mult):
    x = torch.tensor([-(2**23) + 1, -4097, -4096, -1, 0, 1, 4095, 2**23], dtype=torch.int64)
    want = torch.sign(x * mult) * ((x * mult).abs() >> 12)
    torch.testing.assert_close(torch_int_ops._decay(x, mult, 12), want, rtol=0, atol=0)
