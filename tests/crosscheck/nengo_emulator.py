"""Run a small snn2hw QGraph on nengo-loihi's Loihi 1 emulator, at the integer level.

An independent cross-check of snn2hw's arithmetic against the emulator whose authors
validated it against Loihi 1 silicon (nengo-loihi 1.1.0, ``nengo_loihi/emulator/
interface.py``). No float model and no nengo builder is involved: the emulator's own
objects (``LoihiBlock``, ``Compartment``, ``Synapse``, ``Axon``, ``SpikeInput``) are
filled with the very integers of the QGraph, and ``EmulatorInterface`` steps them with
its integer (int32) semantics: the synaptic accumulator ``q`` wraps to 21 bits plus sign,
``u`` and ``u + bias`` to 23 bits plus sign, ``v`` is clipped to ``[vmin, vmax]``.

Mapping of the integers (docs/qgraph.md on the left, nengo-loihi on the right):

* ``LIFNode``: ``decay_u = du``, ``decay_v = dv``, ``vth = vth << 6``, ``bias =
  bias_mant << bias_exp`` (nengo-loihi keeps thresholds and biases in u units),
  ``vmin = -(2^23 - 1)``, ``vmax = 2^23 - 1`` (the chip's widest setting, Lava's clip),
  no refractory period, no noise;
* ``DenseNode``: one ``Synapse`` per path whose per-synapse weight is the chip's two-part
  shift of the effective weight ``W'`` (docs/qgraph.md Dense preparation):
  ``shift(shift(W', weight_exp), 6)`` with nengo-loihi's own ``shift`` (a floor shift for
  negative exponents), i.e. ``discretize_weights(..., lossy_shift=True)`` without its
  host-side pre-rounding (our weights are already integers on the grid);
* sources: a LIF block's ``Axon`` to the synapse (one step per hop), the graph input as a
  ``SpikeInput`` whose frame ``k`` is given at emulator time ``k + 1`` (so snn2hw step ``n``
  = emulator time ``n + 1`` integrates frame ``n - 1``, as docs/qgraph.md says). A graded
  payload ``x`` is ``x`` spikes on the same axon in one step: the accumulator then holds
  ``x · w`` exactly as a graded spike would deliver it (Loihi 1 has no graded spikes).

Supported: input, dense, LIF and output nodes (feed-forward and recurrent). Only for
tests; it imports nengo-loihi lazily.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from types import SimpleNamespace

import numpy as np

from snn2hw.backends.event import run as event_run
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph
from snn2hw.quant.weights import effective_dense_weight


def import_nengo_loihi():
    """Import nengo-loihi quietly (it warns that it was only tested with nengo 3.2)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import nengo_loihi  # noqa: F401
        from nengo_loihi import block, inputs
        from nengo_loihi.builder import discretize
        from nengo_loihi.emulator import interface
    return SimpleNamespace(block=block, inputs=inputs, discretize=discretize,
                           interface=interface, version=nengo_loihi.__version__)


@dataclass
class Trace:
    """Per LIF node: ``u``, ``v`` (int64) and spikes (bool), each ``[steps, neurons]``."""

    u: dict[str, np.ndarray]
    v: dict[str, np.ndarray]
    s: dict[str, np.ndarray]
    warnings: list[str] = field(default_factory=list)


def chip_synapse_weights(node: DenseNode, nl) -> np.ndarray:
    """``[N_in, N_out]`` int32: what each synapse adds to the accumulator on the chip."""
    w = effective_dense_weight(node.weight, node.num_weight_bits).T.copy()  # axon-major
    w = nl.discretize.shift(w, int(node.weight_exp))  # per synapse (floor for e < 0)
    w = nl.discretize.shift(w, 6)  # the second part of the chip's weight shift
    return w.astype(np.int32)


def run_emulator(graph: QGraph, frames: np.ndarray, num_steps: int) -> Trace:
    """Run one sample ``frames`` ``[F, *input_shape]`` (ints) for ``num_steps`` steps."""
    nl = import_nengo_loihi()
    blocks = {}
    for lif in graph.lif_nodes:
        n = int(np.prod(lif.shape))
        blk = nl.block.LoihiBlock(n, label=lif.name)
        c = blk.compartment
        c.decay_u = np.full(n, lif.du, dtype=np.int32)
        c.decay_v = np.full(n, lif.dv, dtype=np.int32)
        c.scale_u = c.scale_v = False
        c.vth = np.full(n, int(lif.vth) << 6, dtype=np.int32)
        bias = np.asarray(lif.bias_mant, np.int64).ravel() << np.asarray(lif.bias_exp,
                                                                        np.int64).ravel()
        c.bias = np.broadcast_to(bias, (n,)).astype(np.int32)
        c.vmin = -(2**23 - 1)
        c.vmax = 2**23 - 1
        c.refract_delay = np.zeros(n, dtype=np.int32)
        blocks[lif.name] = blk
    inp = graph.input_node
    n_in = int(np.prod(inp.shape))
    spike_input = nl.inputs.SpikeInput(n_in, label=inp.name)
    for lif in graph.lif_nodes:
        for path in graph.synapse_paths(lif.name):
            src, ops = path[0], [graph.nodes[p] for p in path[1:]]
            if len(ops) != 1 or not isinstance(ops[0], DenseNode):
                raise NotImplementedError("the emulator harness takes src -> dense -> lif paths")
            w = chip_synapse_weights(ops[0], nl)
            syn = nl.block.Synapse(w.shape[0], label=ops[0].name)
            syn.set_weights(w)
            syn.weights = [np.asarray(r, dtype=np.int32) for r in syn.weights]  # integer model
            blocks[lif.name].add_synapse(syn)
            axon = nl.block.Axon(w.shape[0], label=f"{src}->{ops[0].name}")
            axon.target = syn
            if isinstance(graph.nodes[src], InputNode):
                spike_input.add_axon(axon)
            else:
                blocks[src].add_axon(axon)
    x = np.asarray(frames, dtype=np.int64).reshape(len(frames), n_in)
    for k in range(len(x)):
        spike_input.add_spikes(k + 1, np.repeat(np.arange(n_in), x[k]).tolist())
    model = SimpleNamespace(blocks=list(blocks.values()), inputs=[spike_input], probes=[],
                            dt=graph.dt)
    names = [lif.name for lif in graph.lif_nodes]
    out = Trace({}, {}, {})
    rec = {k: {n: [] for n in names} for k in ("u", "v", "s")}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        emu = nl.interface.EmulatorInterface(model, seed=0)
        sl = emu.block_info.slices
        for _ in range(num_steps):
            emu.step()
            cs = emu.compartment
            for name in names:
                s = sl[blocks[name]]
                rec["u"][name].append(cs.current[s].astype(np.int64))
                rec["v"][name].append(cs.voltage[s].astype(np.int64))
                rec["s"][name].append(cs.spiked[s].copy())
    out.warnings = sorted({str(w.message) for w in caught})
    for key in ("u", "v", "s"):
        getattr(out, key).update({n: np.array(rec[key][n]) for n in names})
    return out


def run_event(graph: QGraph, frames: np.ndarray, num_steps: int) -> Trace:
    """The same sample on snn2hw's event simulator (batch of one)."""
    x = np.asarray(frames, dtype=np.int64)[:, None]
    res = event_run(graph, x, num_steps, record_state=True)
    assert res.u is not None and res.v is not None
    flat = {n: int(np.prod(graph.nodes[n].shape)) for n in res.spikes}
    return Trace(
        {n: res.u[n][:, 0].reshape(num_steps, flat[n]) for n in res.u},
        {n: res.v[n][:, 0].reshape(num_steps, flat[n]) for n in res.v},
        {n: res.spikes[n][:, 0].reshape(num_steps, flat[n]).astype(bool) for n in res.spikes},
    )


def first_difference(a: Trace, b: Trace) -> str | None:
    """``None`` if u, v and spikes agree everywhere; else the first (step, layer, what)."""
    for key in ("u", "v", "s"):
        for name in getattr(a, key):
            x, y = getattr(a, key)[name], getattr(b, key)[name]
            bad = np.argwhere(x != y)
            if len(bad):
                t, i = (int(k) for k in bad[0])
                return f"{key} of '{name}'[{i}] at step {t}: {x[t, i]} vs {y[t, i]}"
    return None


def graph_of(nodes: list, edges: list[tuple[str, str]], num_steps: int = 8) -> QGraph:
    """A validated QGraph with an output node on the last LIF."""
    for n in nodes:
        if isinstance(n, DenseNode):
            n.weight = np.asarray(n.weight, dtype=np.int64)
    last = [n for n in nodes if isinstance(n, LIFNode)][-1]
    out = OutputNode("out", tuple(last.shape))
    return QGraph({n.name: n for n in [*nodes, out]}, [*edges, (last.name, "out")], 1e-3,
                  "loihi", num_steps).validate()


def lif_node(name: str, n: int, du: int, dv: int, vth: int, bias_mant=0, bias_exp=0) -> LIFNode:
    return LIFNode(name, (n,), du=du, dv=dv, vth=vth,
                   bias_mant=np.broadcast_to(np.asarray(bias_mant, np.int64), (n,)).copy(),
                   bias_exp=np.broadcast_to(np.asarray(bias_exp, np.int64), (n,)).copy())
