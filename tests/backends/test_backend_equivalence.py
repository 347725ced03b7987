"""Property-based: the two independent integer executions of docs/qgraph.md agree exactly.

Random small graphs with parameters drawn across the full legal ranges (including the
u-wrap and v-saturation edges) run through torch integer mode and the event-driven
reference simulator; every spike, u and v of every layer and step must be equal.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from snn2hw.backends import event, torch_int
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
)

SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


@st.composite
def lif_params(draw, n: int, prefix: str) -> LIFNode:
    edge = draw(st.booleans())
    vth = draw(st.sampled_from([0, 1, 131071]) if edge else st.integers(0, 131071))
    return LIFNode(
        prefix,
        (n,),
        du=draw(st.integers(-1, 4095)),
        dv=draw(st.integers(0, 4095)),
        vth=vth,
        bias_mant=np.array(draw(st.lists(st.integers(-4096, 4095), min_size=n, max_size=n))),
        bias_exp=np.array(draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))),
    )


@st.composite
def weights(draw, shape: tuple[int, ...]) -> np.ndarray:
    mode = draw(st.sampled_from(["mixed", "exc", "inh", "sparse"]))
    lo, hi = {"mixed": (-256, 255), "exc": (0, 255), "inh": (-255, 0), "sparse": (-256, 255)}[mode]
    seed = draw(st.integers(0, 2**31 - 1))
    w = np.random.default_rng(seed).integers(lo, hi + 1, size=shape)
    if mode == "sparse":
        w[np.random.default_rng(seed + 1).random(shape) < 0.8] = 0
    return w


@st.composite
def dense_graphs(draw):
    n_in = draw(st.integers(1, 12))
    n_h = draw(st.integers(1, 10))
    n_o = draw(st.integers(1, 6))
    graded = draw(st.integers(0, 8))
    nodes = [InputNode("x", (n_in,), message_bits=graded)]
    nodes.append(
        DenseNode(
            "d1",
            draw(weights((n_h, n_in))),
            weight_exp=draw(st.integers(-7, 7)),
            num_weight_bits=draw(st.integers(1, 8)),
        )
    )
    nodes.append(draw(lif_params(n_h, "h")))
    edges = [("x", "d1"), ("d1", "h")]
    if draw(st.booleans()):  # recurrence
        nodes.append(
            DenseNode("rec", draw(weights((n_h, n_h))), weight_exp=draw(st.integers(-7, 7)))
        )
        edges += [("h", "rec"), ("rec", "h")]
    nodes.append(DenseNode("d2", draw(weights((n_o, n_h))), weight_exp=draw(st.integers(-7, 7))))
    if draw(st.booleans()):  # residual: the input also reaches the output layer
        nodes.append(
            DenseNode("skip", draw(weights((n_o, n_in))), weight_exp=draw(st.integers(-7, 7)))
        )
        edges += [("x", "skip"), ("skip", "o")]
    nodes.append(draw(lif_params(n_o, "o")))
    edges += [("h", "d2"), ("d2", "o")]
    nodes.append(OutputNode("out", (n_o,)))
    edges.append(("o", "out"))
    g = QGraph(
        {n.name: n for n in nodes},
        edges,
        dt=1e-3,
        target="loihi",
        num_steps=draw(st.integers(1, 12)),
    )
    g.validate()
    frames = _inputs(draw, g.num_steps, (n_in,), graded)
    return g, frames


@st.composite
def conv_graphs(draw):
    c = draw(st.integers(1, 3))
    h = draw(st.integers(3, 7))
    w = draw(st.integers(3, 7))
    k = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, c]))
    c_out = groups * draw(st.integers(1, 2))
    conv = ConvNode(
        "c1",
        draw(weights((c_out, c // groups, k, k))),
        (c, h, w),
        weight_exp=draw(st.integers(-7, 7)),
        stride=(draw(st.integers(1, 2)), draw(st.integers(1, 2))),
        padding=(draw(st.integers(0, 1)), draw(st.integers(0, 1))),
        dilation=(draw(st.integers(1, 2)), 1),
        groups=groups,
    )
    oc, oh, ow = conv.out_shape
    if oh < 1 or ow < 1:
        oh = 0
    graded = draw(st.integers(0, 4))
    nodes = [InputNode("x", (c, h, w), message_bits=graded), conv]
    if oh < 1:
        conv = ConvNode("c1", conv.weight, (c, h, w), weight_exp=conv.weight_exp, groups=groups)
        nodes[1] = conv
        oc, oh, ow = conv.out_shape
    lif1 = draw(lif_params(oc * oh * ow, "l1"))
    lif1 = LIFNode(
        "l1",
        (oc, oh, ow),
        lif1.du,
        lif1.dv,
        lif1.vth,
        lif1.bias_mant.reshape(oc, oh, ow),
        lif1.bias_exp.reshape(oc, oh, ow),
    )
    nodes.append(lif1)
    edges = [("x", "c1"), ("c1", "l1")]
    pool = SumPoolNode("p", (oc, oh, ow), (min(2, oh), min(2, ow)), (1, 1))
    flat = FlattenNode("f", pool.out_shape)
    n_o = draw(st.integers(1, 4))
    d = DenseNode(
        "d", draw(weights((n_o, int(np.prod(pool.out_shape))))), weight_exp=draw(st.integers(-7, 7))
    )
    nodes += [pool, flat, d, draw(lif_params(n_o, "o")), OutputNode("out", (n_o,))]
    edges += [("l1", "p"), ("p", "f"), ("f", "d"), ("d", "o"), ("o", "out")]
    g = QGraph(
        {n.name: n for n in nodes},
        edges,
        dt=1e-3,
        target="loihi",
        num_steps=draw(st.integers(1, 8)),
    )
    g.validate()
    return g, _inputs(draw, g.num_steps, (c, h, w), graded)


def _inputs(draw, steps: int, shape: tuple[int, ...], bits: int) -> np.ndarray:
    seed = draw(st.integers(0, 2**31 - 1))
    batch = draw(st.integers(1, 3))
    rng = np.random.default_rng(seed)
    hi = 2 if bits == 0 else 2**bits
    x = rng.integers(0, hi, size=(steps, batch, *shape))
    x[rng.random(x.shape) < rng.random()] = 0  # varied activity, down to silence
    return x


def _assert_equal(g: QGraph, frames: np.ndarray) -> None:
    n = g.num_steps + g.depth() + 2
    a = torch_int.run(g, frames, num_steps=n, record_state=True)
    b = event.run(g, frames, num_steps=n, record_state=True)
    for lif in g.lif_nodes:
        name = lif.name
        np.testing.assert_array_equal(a.spikes[name], b.spikes[name], err_msg=f"spikes {name}")
        np.testing.assert_array_equal(a.u[name], b.u[name], err_msg=f"u {name}")
        np.testing.assert_array_equal(a.v[name], b.v[name], err_msg=f"v {name}")


@SETTINGS
@given(dense_graphs())
def test_torch_int_and_event_agree_on_random_dense_recurrent_residual_graphs(case):
    _assert_equal(*case)


@SETTINGS
@given(conv_graphs())
def test_torch_int_and_event_agree_on_random_conv_pool_graphs(case):
    _assert_equal(*case)


def test_agreement_at_wrap_and_saturation_edges():
    # Large excitatory input drives u past +2^23 (wrap) and v into saturation.
    nodes = [
        InputNode("x", (4,), message_bits=8),
        DenseNode("d", np.full((2, 4), 255), weight_exp=7),
        LIFNode(
            "h",
            (2,),
            du=-1,
            dv=0,
            vth=131071,
            bias_mant=np.array([4095, -4096]),
            bias_exp=np.array([7, 7]),
        ),
        OutputNode("out", (2,)),
    ]
    g = QGraph(
        {n.name: n for n in nodes},
        [("x", "d"), ("d", "h"), ("h", "out")],
        dt=1e-3,
        target="loihi",
        num_steps=6,
    )
    frames = np.full((6, 2, 4), 255)
    frames[:, 1] = 3
    _assert_equal(g, frames)
