"""A negative bias exponent is the floor shift ``bias_mant >> -bias_exp`` (docs/qgraph.md,
Lava's ``scale_bias``) on every backend: numpy's ``<<`` by a negative count, which
torch-int and the ONNX writer once used, gives 0 instead (found by a differential review).
Formats may allow such exponents (``bias_exp_min`` down to -31)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snn2hw.backends import event, registry, torch_int
from snn2hw.quant.formats import LOIHI_FORMATS
from snn2hw.quant.qgraph import ConvNode, InputNode, LIFNode, OutputNode, QGraph

WANT_V = [-1, 2, -3, 40]  # floor(-1 / 8), floor(5 / 2), -3 << 0, 5 << 3


def _graph() -> QGraph:
    """in -> identity 1x1 conv -> LIF of four neurons, no input, vth large (no spike):
    v after one step is the bias."""
    f = dataclasses.replace(LOIHI_FORMATS, bias_exp_min=-7)
    n = len(WANT_V)
    nodes = {m.name: m for m in (
        InputNode("in", (n, 1, 1)),
        ConvNode("c", np.eye(n, dtype=np.int64)[:, :, None, None], (n, 1, 1)),
        LIFNode("l", (n, 1, 1), du=4095, dv=0, vth=1000,
                bias_mant=np.array([-1, 5, -3, 5]).reshape(n, 1, 1),
                bias_exp=np.array([-3, -1, 0, 3]).reshape(n, 1, 1)),
        OutputNode("out", (n, 1, 1)))}
    return QGraph(nodes, [("in", "c"), ("c", "l"), ("l", "out")], 1e-3, "custom", 1,
                  formats=f).validate()


def test_the_node_bias_floors_a_negative_exponent():
    np.testing.assert_array_equal(_graph().nodes["l"].bias().ravel(), WANT_V)


@pytest.mark.parametrize("backend", ["event", "torch-int", "onnx"])
def test_every_backend_floors_a_negative_bias_exponent(backend):
    g = _graph()
    run = {"event": event.run, "torch-int": torch_int.run}.get(backend)
    x = np.zeros((1, 1, len(WANT_V), 1, 1), np.int64)
    r = run(g, x, 1, record_state=True) if run else registry.get(backend).run(
        g, x, 1, record_state=True)
    np.testing.assert_array_equal(r.v["l"].ravel(), WANT_V)
