"""Every copy of a repeated semantic gives the same result on the same random inputs.

Non-backend code uses one shared helper per semantic (``snn2hw.quant.weights``,
``snn2hw.common.readout``, ``snn2hw.common.units``, ``snn2hw.chip.mapping``'s structure);
the integer backends and the ONNX writer keep deliberate independent copies (they are
independent implementations of docs/qgraph.md). These tests run all copies side by side, and
show that the comparison catches a copy that drifts (a one-bit change in one copy fails).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from snn2hw.backends import event, event_kernels_dense, lava_lowering, torch_int_ops
from snn2hw.chip.mapping import connectivity
from snn2hw.common import readout, units
from snn2hw.exporters import onnx_int
from snn2hw.quant import formats
from snn2hw.quant.qgraph import ConvNode, InputNode, LIFNode, OutputNode, QGraph, SumPoolNode
from snn2hw.quant.weights import effective_dense_weight


def _event_kernel_weight(w: np.ndarray, bits: int) -> np.ndarray:
    wt, nnz = event_kernels_dense.dense_prepare(np.ascontiguousarray(w, dtype=np.int64), bits)
    assert np.array_equal(nnz, (wt != 0).sum(1))
    return wt.T.astype(np.int64)


DENSE_COPIES = {
    "quant.weights (shared)": effective_dense_weight,
    "torch_int": torch_int_ops.prepare_dense_weight,
    "event": event.dense_effective_weight,
    "event kernel (numba)": _event_kernel_weight,
    "lava": lava_lowering._dense_effective,
    "onnx writer": onnx_int._prepare_dense_weight,
}


@st.composite
def weights(draw):
    rows, cols = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mode = draw(st.sampled_from(["mixed", "excitatory", "inhibitory", "zero"]))
    lo, hi = {"mixed": (-300, 300), "excitatory": (0, 300), "inhibitory": (-300, 0),
              "zero": (0, 0)}[mode]
    seed = draw(st.integers(0, 2**31 - 1))
    w = np.random.default_rng(seed).integers(lo, hi + 1, size=(rows, cols))
    return w, draw(st.integers(1, 8))


@settings(max_examples=150, deadline=None)
@given(weights())
def test_every_dense_weight_preparation_agrees(case):
    w, bits = case
    want = effective_dense_weight(w, bits)
    for name, fn in DENSE_COPIES.items():
        np.testing.assert_array_equal(np.asarray(fn(w, bits), dtype=np.int64), want,
                                      err_msg=f"{name}, {bits} bits")


def test_a_drifting_copy_is_caught():
    def drifted(w, bits):  # floor instead of truncation on inhibitory matrices
        k = 8 - bits
        return (np.clip(w, -255, 0) >> k) << k

    w, bits = -np.arange(1, 13).reshape(3, 4) * 7, 6
    assert not np.array_equal(drifted(w, bits), effective_dense_weight(w, bits))


def test_every_output_decision_agrees():
    rng = np.random.default_rng(0)
    spikes = rng.integers(0, 2, size=(12, 40, 2, 5)).astype(np.uint8)
    spikes[:, 0] = 0  # all-zero sample: ties go to class 0
    spikes[:, 1, 0, 1] = spikes[:, 1, 1, 3] = 1  # a tie between classes 1 and 8
    want = readout.classify(spikes)
    assert want[0] == 0 and readout.decide(readout.spike_counts(spikes))[1] in (1, 8)
    np.testing.assert_array_equal(readout.classify(torch.from_numpy(spikes)).numpy(), want)
    counts = spikes.sum(0).reshape(40, -1)
    np.testing.assert_array_equal(want, np.argmax(counts, axis=1))  # first maximum


@pytest.mark.parametrize("dt_over_tau", [1e-4, 0.01, 0.1, 0.5, 0.99, 1.0])
def test_decay_registers_have_one_definition(dt_over_tau):
    alpha = 1.0 - dt_over_tau
    assert formats.du_from_alpha(alpha) == units.du_register(alpha)
    assert formats.dv_from_beta(alpha) == units.dv_register(alpha)


def _graph_into_lif(op) -> QGraph:
    shape = tuple(op.out_shape)
    nodes = [InputNode("in", tuple(op.input_shape)), op,
             LIFNode("l", shape, du=4095, dv=4095, vth=100,
                     bias_mant=np.zeros(shape, np.int64), bias_exp=np.zeros(shape, np.int64)),
             OutputNode("out", shape)]
    edges = [("in", op.name), (op.name, "l"), ("l", "out")]
    return QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 4).validate()


@pytest.mark.parametrize("seed", range(6))
def test_conv_and_sumpool_structure_agrees_between_mapping_and_lava(seed):
    rng = np.random.default_rng(seed)
    groups = int(rng.choice([1, 2]))
    c_in, c_out = 2 * groups, 2 * groups
    w = rng.integers(-3, 4, size=(c_out, c_in // groups, 3, 3))
    w[rng.random(w.shape) < 0.4] = 0
    conv = ConvNode("c", w, (c_in, 7, 6), stride=(1 + seed % 2, 1), padding=(seed % 2, 1),
                    dilation=(1, 1 + seed % 2), groups=groups)
    pool = SumPoolNode("p", (c_in, 6, 7), kernel_size=(2, 3), stride=(2, 2),
                       padding=(seed % 2, 0))
    for op, lava_matrix in ((conv, lava_lowering._conv_matrix(conv)),
                            (pool, lava_lowering._sumpool_matrix(pool))):
        mapped = connectivity(_graph_into_lif(op), "l").matrix
        np.testing.assert_array_equal(mapped.toarray() != 0, lava_matrix.toarray() != 0)
