"""Input frames in any integer dtype, layout and byte order give the results of contiguous
native frames: non-contiguous, Fortran-ordered, reversed and broadcast frames on the event
simulator, and frames read from a file with an explicit byte order (``'>i2'``), which once
crashed the event simulator inside numba (found by a differential review);
``common.frames.integer_frames`` converts those to the machine's order for every
backend."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from snn2hw.backends import event, registry, torch_int
from snn2hw.common.errors import GraphError
from snn2hw.common.frames import integer_frames
from snn2hw.quant.formats import LOIHI_FORMATS
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph

COUNTERS = ("synops", "synops_dense", "neuron_updates", "spike_counts", "peak_fanin")


def _graph() -> QGraph:
    w = np.random.default_rng(1).integers(-40, 40, (5, 130)) * 2
    z = np.zeros(5, np.int64)
    nodes = {n.name: n for n in (
        InputNode("in", (130,), message_bits=8),
        DenseNode("d", w, num_weight_bits=8),
        LIFNode("l", (5,), du=4095, dv=0, vth=5, bias_mant=z, bias_exp=z.copy()),
        OutputNode("out", (5,)))}
    return QGraph(nodes, [("in", "d"), ("d", "l"), ("l", "out")], 1e-3, "loihi2", 4,
                  formats=dataclasses.replace(LOIHI_FORMATS, max_message_bits=24)).validate()


def test_integer_frames_keep_values_in_native_byte_order():
    x = np.arange(6, dtype=">i2").reshape(2, 3)
    got = integer_frames(x)
    assert got.dtype == np.int16 and got.dtype.isnative
    np.testing.assert_array_equal(got, np.arange(6).reshape(2, 3))
    assert integer_frames(np.ones(3, np.uint8)).dtype == np.uint8  # native: as it is
    with pytest.raises(GraphError, match="must be integers"):
        integer_frames(np.ones(3, np.float32))


@pytest.mark.parametrize("dtype", [">i2", ">u4", ">i8"])
@pytest.mark.parametrize("backend", ["event", "torch-int", "onnx"])
def test_big_endian_frames_give_the_native_results(backend, dtype):
    g = _graph()
    x = (np.random.default_rng(3).random((4, 2, 130)) < 0.2).astype(np.int64) * 9
    run = registry.get(backend).run
    want = run(g, x, record_state=True)
    got = run(g, x.astype(dtype), record_state=True)
    assert int(want.spikes["l"].sum()) > 0
    np.testing.assert_array_equal(got.spikes["l"], want.spikes["l"])
    np.testing.assert_array_equal(got.v["l"], want.v["l"])


@pytest.mark.parametrize("layout", ["fortran", "reversed time", "reversed features",
                                    "every other sample", "broadcast", "uint64 fortran"])
def test_non_contiguous_input_frames_give_the_contiguous_results(layout):
    g = _graph()
    rng = np.random.default_rng(3)
    x = (rng.random((7, 6, 130)) < 0.1) * rng.integers(1, 256, (7, 6, 130))
    if layout == "fortran":
        xv = np.asfortranarray(x.astype(np.uint8))
    elif layout == "reversed time":  # a negative stride on the frame axis
        xv = np.ascontiguousarray(x[::-1]).astype(np.uint8)[::-1]
    elif layout == "reversed features":  # a negative stride inside each frame
        xv = np.ascontiguousarray(x[..., ::-1]).astype(np.int16)[..., ::-1]
    elif layout == "every other sample":
        big = np.zeros((7, 12, 130), np.int32)
        big[:, ::2] = x
        xv = big[:, ::2]
    elif layout == "broadcast":  # stride 0 over the batch
        x = np.broadcast_to(x[:, :1], x.shape)
        xv = x
    else:
        xv = np.asfortranarray(x.astype(np.uint64))
    assert not xv.flags.c_contiguous
    np.testing.assert_array_equal(xv, x)
    got = event.run(g, xv, record_state=True, threads=2)
    want = torch_int.run(g, np.ascontiguousarray(x).astype(np.int64), record_state=True)
    for field in ("spikes", "u", "v"):
        np.testing.assert_array_equal(getattr(got, field)["l"], getattr(want, field)["l"],
                                      err_msg=field)
    assert int(want.spikes["l"].sum()) > 0
    ref = event.run(g, np.ascontiguousarray(x).astype(np.int64), threads=1)
    for c in COUNTERS:
        np.testing.assert_array_equal(getattr(got, c)["l"], getattr(ref, c)["l"], c)
