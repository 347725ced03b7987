"""The float path of a netx network: its quantized graph as a NIR graph in chip units.

Built from the :class:`QGraph` that :func:`snn2hw.netx.to_qgraph.netx_to_qgraph` made, so
the two cannot describe different networks. Units: one float unit is one weight unit
(``2^6`` in ``u`` and ``v``), so weights are the stored integers, the threshold is
``vThMant`` and the bias is ``bias_mant`` (``bias_mant << 6`` in ``v``, divided by 64).
The neuron is read with snn2hw's own NIR convention (Euler, ``>``, reset to zero; see
:mod:`snn2hw.nir.discretize`): ``alpha = 1 - (du + 1)/4096``, ``beta = 1 - dv/4096``,
``in_gain = 1``, ``v_bias = bias``. What the float path leaves out is what makes the
integers exact: Lava's truncating decays, the floor of a negative ``weight_exp`` and the
24-bit wraps (docs/netx.md "Float path").
"""

from __future__ import annotations

from typing import Any

import nir
import numpy as np

from snn2hw.netx.reader import NetxError
from snn2hw.nir.export import PRODUCER
from snn2hw.quant.qgraph import QGraph

DECAY_SCALE = 4096.0


def _neuron(node: Any, dt: float) -> tuple[str, nir.NIRNode]:
    shape = tuple(node.shape)
    alpha = 1.0 - (node.du + 1) / DECAY_SCALE
    beta = 1.0 - node.dv / DECAY_SCALE
    bias = (np.asarray(node.bias_mant, np.float64)
            * 2.0 ** (np.asarray(node.bias_exp, np.float64) - 6.0))

    def full(v: float) -> np.ndarray:
        return np.full(shape, float(v), np.float64)

    vth = full(node.vth)
    if beta >= 1.0:
        if alpha != 0.0 or bias.any():
            raise NetxError(f"'{node.name}': vDecay 0 with a current decay or a bias has no NIR "
                            "neuron (NIR's IF has neither)")
        return "if", nir.IF(r=full(1.0), v_threshold=vth, v_reset=full(0.0))
    a_m = 1.0 - beta
    tau_m = dt / a_m
    if alpha == 0.0:
        return "lif", nir.LIF(tau=full(tau_m), r=full(1.0 / a_m), v_leak=bias / a_m,
                              v_threshold=vth, v_reset=full(0.0))
    if not 0.0 < alpha < 1.0:
        raise NetxError(f"'{node.name}': iDecay 0 (current never decays) has no NIR CubaLIF")
    a_s = 1.0 - alpha
    return "cuba", nir.CubaLIF(
        tau_syn=full(dt / a_s), tau_mem=full(tau_m), r=full(1.0 / a_m), v_leak=bias / a_m,
        v_threshold=vth, v_reset=full(0.0), w_in=full(1.0 / a_s),
    )


def _ungrouped(w: np.ndarray, groups: int) -> np.ndarray:
    """The block-diagonal ``groups = 1`` kernel of a grouped one (nir's type inference reads
    the input channels from the kernel, without the groups)."""
    if groups == 1:
        return w
    c_out, c_in_g = w.shape[:2]
    out = np.zeros((c_out, c_in_g * groups, *w.shape[2:]), w.dtype)
    per = c_out // groups
    for o in range(c_out):
        g = o // per
        out[o, g * c_in_g:(g + 1) * c_in_g] = w[o]
    return out


def qgraph_to_nir(graph: QGraph) -> nir.NIRGraph:
    """The NIR graph of a netx quantized graph (input, dense, conv, flatten, LIF, output)."""
    nodes: dict[str, nir.NIRNode] = {}
    for name, n in graph.nodes.items():
        if n.kind == "input":
            nodes[name] = nir.Input(input_type={"input": np.array(n.shape)})
        elif n.kind == "output":
            nodes[name] = nir.Output(output_type={"output": np.array(n.shape)})
        elif n.kind == "dense":
            w = np.asarray(n.weight, np.float64) * 2.0 ** n.weight_exp
            nodes[name] = nir.Linear(weight=w)
        elif n.kind == "conv":
            w = _ungrouped(np.asarray(n.weight, np.float64) * 2.0 ** n.weight_exp, int(n.groups))
            nodes[name] = nir.Conv2d(
                input_shape=(n.input_shape[1], n.input_shape[2]), weight=w,
                stride=tuple(n.stride), padding=tuple(n.padding), dilation=tuple(n.dilation),
                groups=1, bias=np.zeros(w.shape[0]),
            )
        elif n.kind == "flatten":
            nodes[name] = nir.Flatten(input_type={"input": np.array(n.input_shape)},
                                      start_dim=0, end_dim=-1)
        elif n.kind == "lif":
            if int(n.reset_interval):
                raise NetxError(f"'{name}': periodic state reset (netx reset_interval "
                                f"{n.reset_interval}) has no NIR form")
            nodes[name] = _neuron(n, graph.dt)[1]
        else:
            raise NetxError(f"'{name}': node kind '{n.kind}' has no NIR form here")
        if getattr(n, "delay", 0) is not None and np.any(np.asarray(getattr(n, "delay", 0))):
            raise NetxError(f"'{name}': synaptic delays have no NIR form in snn2hw's float path")
    metadata = {"dt": graph.dt, "producer": PRODUCER, "convention": PRODUCER,
                "source": "lava-dl netx"}
    try:
        return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=metadata)
    except (ValueError, AssertionError) as exc:
        raise NetxError(f"NIR rejected the netx graph: {exc}") from None
