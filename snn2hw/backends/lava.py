"""Lava backend: run a quantized graph on Lava's bit-accurate CPU models (``fixed_pt``).

Implements docs/qgraph.md with real Lava processes, so its spikes must equal the torch
integer backend's bit for bit. Lava (lava-nc 0.10.0) is imported lazily through
:func:`snn2hw.compat.lava_py311.import_lava`; without it, :class:`LavaMissingError` says
how to install it.

Lowering (one Lava *connection* per synapse path, so every path costs exactly one step):

* each LIF node -> ``LIFReset`` (the bit-accurate ``LIF`` model plus a state reset at the
  first step of every sample), with a flat shape ``(prod(shape),)``: C-order flattening is
  then free and Flatten nodes vanish. A LIF node that needs rules Lava's LIF lacks (reset
  by subtraction, ``>=``, ``max_spikes > 1``: programmable neurons such as Loihi 2's) ->
  snn2hw's own fixed-point process :class:`snn2hw.backends.lava_neuron.SnnLif`, which
  sends its spike count as a graded spike;
* a path ``source -> [flatten...] -> dense -> [flatten...]`` -> Lava ``Dense`` with the
  node's *raw* weights, ``weight_exp`` and ``num_weight_bits``: Lava itself applies the
  sign-mode clip and truncation, so the tests check the docs' rule against Lava's;
* every other path (conv, sumpool, identity, or several ops) -> its ops are composed into
  one exact integer matrix over the source's flat outputs and lowered to Lava ``Sparse``
  (explicit index mapping; keeps ``weight_exp``, unlike Lava ``Conv``). The matrix is
  re-encoded so that Lava's clip/truncation is the identity (an odd mixed-sign matrix is
  doubled and its exponent lowered by one; a matrix too wide for 8 bits is split into
  base-256 digit matrices when no floor shift follows). A composition that would change
  the arithmetic (a floor shift or a possible 24-bit wrap in the middle of a path, a wrap
  at its end, weights that cannot be encoded exactly) raises :class:`GraphError`.
* synaptic delays: a path with total delay d > 0 uses ``DelayDense`` / ``DelaySparse``
  with delay d (they deliver at ``t + 1 + d``, the docs' arrival step); per-synapse
  delays of different lengths only on a ``source -> dense`` path and, there, only with
  ``weight_exp >= 0`` (Lava shifts each delay's products separately).
* periodic state reset (docs/qgraph.md "Periodic state reset", ``reset_interval`` I,
  ``reset_offset`` O of a LIF node): the node needs both the sample-boundary reset and
  its own phase. Where one LIFReset schedule gives both (O = 0 and I divides the
  sample's N steps) it is ``LIFReset(reset_interval=I, reset_offset=1 % I)``; otherwise
  the node runs on ``SnnLif`` with the sample schedule plus ``step_interval=I``,
  ``step_offset=O`` (a second reset counted within the sample). Graphs without it keep
  Lava's LIFReset;
* connections fed by a graded source (graded input, multi-spike LIF) get
  ``num_message_bits`` so they multiply the payload.

Samples run back to back in ONE Lava network, built and compiled once per step count
(:class:`RunPlan`) and kept started between calls (:meth:`LavaNetwork.close` or garbage
collection stops it). Input frames are streamed: the source is Lava's ``Injector`` with an
int32 model (:class:`snn2hw.backends.lava_neuron.PyIntInjectorModel`) whose channel holds
one chunk; before each ``run()`` of ``c`` steps the backend sends those ``c`` frames, so no
buffer of every sample's frames exists (the old ``RingBuffer`` held them all).
``LIFReset(reset_interval=N, reset_offset=1)`` zeroes ``u``/``v`` at the first step of each
sample. Connections hold a one-step-delayed buffer, so activity at a sample's last step
would leak into the next sample's first step: LIFReset zeroes the state *before*
integrating that step's input, and zero padding cannot prevent it either (a bias-driven
LIF spikes without input). The run is therefore chunked at sample boundaries and, where a
source was active at that last step, the buffers of its connections are zeroed with
``Var.set`` (about 1 ms per small buffer); after a call's last sample too, so that the
kept network starts the next call clean. Spikes are read in bulk with ``Extractor``, whose
buffer holds one chunk: its sends block when full, so a longer blocking run would deadlock.

Exactness against Lava's int32 datapath: Lava computes ``a << 6`` and ``u`` in int32. With
``|a| <= 2^18`` per step, ``|u| <= 2^23`` stays invariant and nothing overflows, so Lava
equals the docs' int64 arithmetic. That bound is proven statically from the weights; where
it is not, the actual activations are recomputed from the recorded spikes after the run
and a violation raises :class:`GraphError` instead of returning inexact spikes.

Module layout: this module holds the Lava process network (:class:`LavaNetwork`), its run
and the registry entry :data:`BACKEND`; the lowering of synapse paths to exact integer
matrices and Lava weights lives in :mod:`snn2hw.backends.lava_lowering` (same backend).
Results are :class:`snn2hw.backends.base.SimResult` with the Lava extras set. May import:
numpy, lava (lazily, through ``snn2hw.compat``), ``snn2hw.common``, ``snn2hw.quant``,
``snn2hw.backends.base`` and its own ``lava_lowering``; never another backend (torch_int,
event, onnx), pipeline, chip, training, reporting or cli.
"""

from __future__ import annotations

import time
import weakref
from dataclasses import dataclass
from typing import Any

import numpy as np

from snn2hw.backends.base import (
    PreparingBackend,
    SimResult,
    UnsupportedFormatsError,
    check_node_kinds,
)
from snn2hw.backends.lava_lowering import LoweredLif, check_path_int32, lower_path, shift
from snn2hw.common.errors import GraphError
from snn2hw.common.frames import integer_frames
from snn2hw.compat.lava_py311 import LavaMissingError, import_lava, lava_start_method
from snn2hw.quant.formats import LOIHI_FORMATS
from snn2hw.quant.qgraph import InputNode, LIFNode, QGraph

__all__ = ["BACKEND", "NODE_KINDS", "LavaBackend", "LavaMissingError", "LavaNetwork",
           "check_formats", "run"]

# Every qgraph node kind this backend executes (docs/qgraph.md).
NODE_KINDS = frozenset({"input", "dense", "conv", "sumpool", "flatten", "lif", "output"})

_A_SAFE = 1 << 18  # |a| bound under which Lava's int32 LIF datapath is exact (module doc)
_EXTRACTOR_BYTES = 1 << 25  # cap on one Extractor's shared-memory buffer (float64 frames)
_CHUNK_MAX = 1024  # at most this many steps per Lava run() call


# What Lava's bit-accurate models implement: field -> the Lava model that fixes it. Arithmetic
# rules must equal Loihi's; value ranges must lie inside Loihi's (a narrower range is fine).
_LAVA_RULES = {
    "weight_mantissa_bits": "PyDenseModelBitAcc",
    "weight_range_mixed": "PyDenseModelBitAcc",
    "weight_range_excitatory": "PyDenseModelBitAcc",
    "weight_range_inhibitory": "PyDenseModelBitAcc",
    "mixed_sign_lsb_loss": "PyDenseModelBitAcc",
    "activation_shift": "PyLifModelBitAcc",
    "u_bits": "PyLifModelBitAcc",
    "u_overflow": "PyLifModelBitAcc",
    "v_bits": "PyLifModelBitAcc",
    "v_overflow": "PyLifModelBitAcc",
    "decay_bits": "PyLifModelBitAcc",
}
# reset and threshold_compare are not listed: a graph asking for "subtract" or ">=" runs
# its LIF nodes on snn2hw's own fixed-point process (lava_neuron.SnnLif).
_LAVA_RANGES = {  # field -> (Lava model, True where the value is an upper bound)
    "weight_exp_min": ("PyDenseModelBitAcc", False),
    "weight_exp_max": ("PyDenseModelBitAcc", True),
    "threshold_bits": ("PyLifModelBitAcc", True),
    "bias_mant_bits": ("PyLifModelBitAcc", True),
    "bias_exp_min": ("PyLifModelBitAcc", False),
    "bias_exp_max": ("PyLifModelBitAcc", True),
}


def check_formats(graph: QGraph) -> None:
    """Refuse a graph made for number formats Lava's Loihi models do not implement, with
    :class:`UnsupportedFormatsError` naming every such field, its value and Lava's (e.g.
    ``u_bits 16: Lava's PyLifModelBitAcc implements 24``). Needs no Lava installed."""
    f, lava = graph.formats, LOIHI_FORMATS
    why = []
    for key, model in _LAVA_RULES.items():
        mine, theirs = getattr(f, key), getattr(lava, key)
        if mine != theirs:
            why.append(f"{key} {_show(mine)}: Lava's {model} implements {_show(theirs)}")
    for key, (model, upper) in _LAVA_RANGES.items():
        mine, theirs = getattr(f, key), getattr(lava, key)
        if (mine > theirs) if upper else (mine < theirs):
            bound = "at most" if upper else "at least"
            why.append(f"{key} {mine}: Lava's {model} allows {bound} {theirs}")
    if why:
        raise UnsupportedFormatsError(
            f"backend 'lava' cannot run target '{graph.target}' (Lava implements only the "
            f"Loihi formats): {'; '.join(why)}"
        )


def _show(val: Any) -> str:
    if isinstance(val, tuple):
        return str(list(val))
    if isinstance(val, str):
        return repr(val) if val in (">", ">=") else val
    return str(val).lower() if isinstance(val, bool) else str(val)


# ----- the network ---------------------------------------------------------------------------
@dataclass(frozen=True)
class RunPlan:
    """How samples stream through one Lava network (:meth:`LavaNetwork.plan`): each sample's
    ``n_steps`` run as ``runs_per_sample`` ``run()`` calls of at most ``chunk`` steps; the
    input channel holds ``input_frames`` int32 frames (``input_bytes``) and each Extractor
    ``output_frames`` frames, whatever the number of samples."""

    n_steps: int
    chunk: int
    runs_per_sample: int
    input_frames: int
    input_bytes: int
    output_frames: int


def _stop_quietly(anchor: Any) -> None:
    """Stop a Lava runtime (finalizer of a kept network; it may be half torn down)."""
    try:
        anchor.stop()
    except Exception:  # noqa: BLE001 - interpreter exit or a runtime already failed
        pass


class LavaNetwork:
    """A quantized graph lowered once for Lava; :meth:`run` streams all samples of a call
    through ONE Lava process network, compiled on the first call of a :meth:`plan` and
    reused by the following calls with the same plan.

    Construction validates the graph, composes every synapse path into its Lava
    connection(s) (module docstring) and proves the int32 bounds; it raises
    :class:`GraphError` naming the node for graphs Lava cannot run exactly and
    :class:`LavaMissingError` when lava-nc is not installed.
    """

    def __init__(self, graph: QGraph) -> None:
        graph.validate()
        check_formats(graph)  # before Lava: the reason holds whether or not it is installed
        import_lava()  # fail fast with the install hint
        self.graph = graph
        self._live: dict[str, Any] | None = None  # the started network kept between calls
        self._finalizer: weakref.finalize | None = None
        self.builds = 0  # Lava networks compiled by this object (reuse keeps it at 1)
        self.input: InputNode = graph.input_node
        self.n_in = int(np.prod(self.input.shape))
        graded = self.input.message_bits > 0
        in_max = 1 if not graded else (1 << self.input.message_bits) - 1
        self.lifs: list[LoweredLif] = []
        for node in graph.lif_nodes:
            lif = LoweredLif(node, int(np.prod(node.shape)))
            lo_a = np.zeros(lif.size, np.int64)
            hi_a = np.zeros(lif.size, np.int64)
            for path in graph.synapse_paths(node.name):
                from_input = path[0] == self.input.name
                x_max = in_max if from_input else int(graph.nodes[path[0]].max_spikes)
                p = lower_path(graph, path, node.name, x_max)
                lo, hi = check_path_int32(p, x_max, self.message_bits(path[0]) > 0)
                lo_a += lo
                hi_a += hi
                lif.paths.append(p)
            lif.proven = max(int(-lo_a.min()), int(hi_a.max())) <= _A_SAFE
            self.lifs.append(lif)

    def message_bits(self, source: str) -> int:
        """``num_message_bits`` of the connections fed by ``source``: the input's payload
        width, a multi-spike LIF's count width, 0 (binary) otherwise."""
        if source == self.input.name:
            return int(self.input.message_bits)
        m = int(self.graph.nodes[source].max_spikes)
        return m.bit_length() if m > 1 else 0

    def own_neuron(self, node: LIFNode, n_steps: int | None = None) -> bool:
        """Whether ``node`` needs snn2hw's LIF process (rules Lava's LIF lacks, or a
        periodic state reset that one ``LIFReset`` schedule cannot combine with the sample
        boundaries of an ``n_steps``-step run, default :meth:`default_num_steps`)."""
        f = self.graph.formats
        if node.max_spikes > 1 or f.reset != "zero" or f.threshold_compare != ">":
            return True
        n = self.default_num_steps() if n_steps is None else int(n_steps)
        return _lif_reset_schedule(node, n) is None

    @property
    def num_connections(self) -> int:
        """Lava connection processes per network (one per path, more for split weights)."""
        return sum(len(p.conns) for lif in self.lifs for p in lif.paths)

    def default_num_steps(self) -> int:
        """``graph.num_steps + graph.depth()``: enough to flush the last frame."""
        return int(self.graph.num_steps + self.graph.depth())

    def _check_inputs(self, inputs: Any) -> np.ndarray:
        """Validate integer frames ``[F, B, *input_shape]``; return them as ``[F, B, n_in]``
        in their own integer dtype (a view where possible)."""
        arr = integer_frames(inputs.detach().cpu() if hasattr(inputs, "detach") else inputs)
        node = self.input
        shape = tuple(int(s) for s in node.shape)
        if arr.ndim != 2 + len(shape) or tuple(arr.shape[2:]) != shape:
            want = ", ".join(["F", "B", *(str(s) for s in shape)])
            raise GraphError(
                f"input frames for '{node.name}' must have shape [{want}] (time-major), "
                f"got {list(arr.shape)}"
            )
        if arr.shape[0] == 0 or arr.shape[1] == 0:
            raise GraphError(f"input frames are empty: shape {list(arr.shape)}")
        # no widened copy of every sample: frames are converted chunk by chunk (_stream)
        x = arr.astype(np.int64) if arr.dtype.kind == "b" else arr
        x = x.reshape(arr.shape[0], arr.shape[1], -1)
        hi = (1 << node.message_bits) - 1 if node.message_bits else 1
        if x.min() < 0 or x.max() > hi:
            raise GraphError(
                f"input node '{node.name}' (message_bits={node.message_bits}) takes values in "
                f"0..{hi}, got [{x.min()}, {x.max()}]"
            )
        return x

    def plan(self, n_steps: int | None = None, chunk: int | None = None) -> RunPlan:
        """How a call of ``n_steps`` steps per sample streams through Lava (module
        docstring): steps per ``run()`` and the frames held on each side. Nothing here
        depends on the number of samples."""
        n = self.default_num_steps() if n_steps is None else int(n_steps)
        if n < 1:
            raise GraphError(f"num_steps must be >= 1, got {n}")
        c = min(n, _CHUNK_MAX if chunk is None else int(chunk))
        if c < 1:
            raise GraphError(f"chunk must be >= 1 step, got {chunk}")
        for lif in self.lifs:  # bound each Extractor's shared-memory ring
            c = max(1, min(c, _EXTRACTOR_BYTES // (8 * lif.size)))
        return RunPlan(n_steps=n, chunk=c, runs_per_sample=-(-n // c),
                       input_frames=c, input_bytes=4 * c * self.n_in, output_frames=c)

    def run(
        self, inputs: Any, num_steps: int | None = None, record_state: bool = False,
        chunk: int | None = None,
    ) -> SimResult:
        """Run every sample of ``inputs`` (integer frames ``[F, B, *input_shape]``) for
        ``num_steps`` steps (default ``num_steps + depth()``) in one Lava network, fed
        ``chunk`` steps at a time (default :meth:`plan`'s).

        The compiled network stays alive for the next call with the same step count and
        chunk (:meth:`close` stops it; so does garbage collection). ``record_state`` also
        reads ``u``/``v`` traces through Lava Monitors, in a network built for that call
        only (slow: Lava reads them element by element)."""
        t_start = time.perf_counter()
        plan = self.plan(num_steps, chunk)
        x = self._check_inputs(inputs)
        if record_state:
            net = self._start(plan, record=True, total=x.shape[1] * plan.n_steps)
            try:
                return self._stream(net, x, plan, True, t_start)
            finally:
                net["anchor"].stop()
        if self._live is None or self._live["plan"] != plan:
            self.close()
            self._live = self._start(plan, record=False)
            self._finalizer = weakref.finalize(self, _stop_quietly, self._live["anchor"])
        try:
            return self._stream(self._live, x, plan, False, t_start)
        except BaseException:
            self.close()  # a failed run leaves the runtime in an unknown state
            raise

    def close(self) -> None:
        """Stop the Lava runtime kept alive between calls (if any)."""
        if self._finalizer is not None:
            self._finalizer()
        self._live = self._finalizer = None

    def _start(self, plan: RunPlan, record: bool, total: int = 0) -> dict[str, Any]:
        """Build, compile and start a Lava network for ``plan`` (one per step count)."""
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.io.extractor import Extractor, PyLoihiExtractorModel
        from lava.proc.io.injector import Injector

        from snn2hw.backends.lava_neuron import PyIntInjectorModel, model_map

        t0 = time.perf_counter()
        net = self._build(plan, record, total)
        models: dict[Any, Any] = {Extractor: PyLoihiExtractorModel,
                                  Injector: PyIntInjectorModel}
        models.update(_instance_models(net))
        own = [net["lifs"][lif.node.name] for lif in self.lifs
               if self.own_neuron(lif.node, plan.n_steps)]
        models.update(model_map(own))
        cfg = Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=models)
        anchor = net["source"]
        with lava_start_method():  # fork for Lava's actors only, not the whole program
            anchor.create_runtime(run_cfg=cfg)
        self.builds += 1
        net.update(anchor=anchor, plan=plan, build_s=time.perf_counter() - t0)
        return net

    def _stream(self, net: dict[str, Any], x: np.ndarray, plan: RunPlan, record_state: bool,
                t_start: float) -> SimResult:
        """Stream every sample through the started network ``chunk`` steps at a time:
        send the chunk's frames, run it, drain the Extractors. Leaves the network clean
        for a next call (no carry from the last sample)."""
        from lava.magma.core.run_conditions import RunSteps

        build_s = max(time.perf_counter() - t_start, 1e-9) if net.get("used") else net["build_s"]
        net["used"] = True
        n_steps, batch, n_frames = plan.n_steps, x.shape[1], x.shape[0]
        spk = {lif.node.name: np.zeros((batch, n_steps, lif.size), _payload_dtype(lif.node))
               for lif in self.lifs}
        source, resets = net["source"], 0
        zero = np.zeros(self.n_in, np.int32)
        for b in range(batch):
            done = 0
            while done < n_steps:
                c = min(plan.chunk, n_steps - done)
                for t in range(done, done + c):  # the Injector's channel holds `chunk` frames
                    source.send(x[t, b].astype(np.int32) if t < n_frames else zero)
                net["anchor"].run(condition=RunSteps(num_steps=c))
                for lif in self.lifs:
                    ex, rec = net["extractors"][lif.node.name], spk[lif.node.name][b]
                    for i in range(done, done + c):
                        rec[i] = ex.receive()
                done += c
            if b + 1 < batch or not record_state:
                resets += self._clear_carry(net, x, spk, b, n_steps)
        u_rec = v_rec = None
        if record_state:
            u_rec, v_rec = self._read_state(net, batch, n_steps)

        spikes = {
            lif.node.name: spk[lif.node.name]
            .transpose(1, 0, 2)
            .reshape(n_steps, batch, *lif.node.shape)
            for lif in self.lifs
        }
        self._verify_unproven(x, spikes, n_steps)
        return SimResult(
            BACKEND.name,
            spikes,
            u_rec,
            v_rec,
            time.perf_counter() - t_start,
            build_s=build_s,
            lava_steps=batch * n_steps,
            buffer_resets=resets,
        )

    # ----- helpers of run() ------------------------------------------------------------------
    def _build(self, plan: RunPlan, record: bool, total: int = 0) -> dict[str, Any]:
        """Create and connect the Lava processes (not yet compiled); Monitors of ``total``
        steps where ``record``."""
        from lava.proc.dense.process import DelayDense, Dense
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.injector import Injector
        from lava.proc.lif.process import LIFReset
        from lava.proc.sparse.process import DelaySparse, Sparse

        n_steps, chunk = plan.n_steps, plan.chunk
        source = Injector(shape=(self.n_in,), buffer_size=chunk)
        lifs: dict[str, Any] = {}
        for lif in self.lifs:
            n = lif.node
            if self.own_neuron(n, n_steps):
                lifs[n.name] = self._own_lif(lif, n_steps)
                continue
            interval, offset = _lif_reset_schedule(n, n_steps) or (n_steps, 1 % n_steps)
            lifs[n.name] = LIFReset(
                shape=(lif.size,),
                du=int(n.du),
                dv=int(n.dv),
                vth=int(n.vth),
                bias_mant=np.asarray(n.bias_mant, np.int64).ravel(),
                bias_exp=np.asarray(n.bias_exp, np.int64).ravel(),
                reset_interval=interval,  # the first step of every sample (and the
                reset_offset=offset,  # node's periodic reset): _lif_reset_schedule
                name=f"lif:{n.name}",
            )
        out_port = {self.input.name: source.out_port, **{k: p.s_out for k, p in lifs.items()}}
        # source -> its connection processes, each with the steps its buffer spans
        conns: dict[str, list[tuple[Any, int]]] = {}
        linked = _Components([self.input.name, *lifs])
        for lif in self.lifs:
            for p in lif.paths:
                bits = self.message_bits(p.source)
                for c in p.conns:
                    kw = {"weight_exp": c.weight_exp, "num_message_bits": bits}
                    if c.kind == "dense":
                        kw.update(weights=c.weights, num_weight_bits=c.num_weight_bits)
                        if c.max_delay:  # arrives at t + 1 + delay (docs/lava.md)
                            proc = DelayDense(delays=_delay_matrix(c.delays, c.weights.shape),
                                              **kw)
                        else:
                            proc = Dense(**kw)
                    else:
                        kw.update(weights=c.weights.astype(np.int32), num_weight_bits=8)
                        if c.max_delay:
                            proc = DelaySparse(delays=_sparse_delays(c.weights, c.max_delay),
                                               **kw)
                        else:
                            proc = Sparse(**kw)
                    out_port[p.source].connect(proc.s_in)
                    proc.a_out.connect(lifs[lif.node.name].a_in)
                    conns.setdefault(p.source, []).append((proc, c.max_delay + 1))
                linked.join(p.source, p.target)
        zeros: list[Any] = []
        for name in linked.cut_off(self.input.name):
            # Lava compiles only what is connected to the process it runs: tie a network
            # part that never hears the input to it with an all-zero Dense.
            zero = Dense(weights=np.zeros((lifs[name].a_in.shape[0], self.n_in), np.int64))
            source.out_port.connect(zero.s_in)
            zero.a_out.connect(lifs[name].a_in)
            zeros.append(zero)
        extractors = {}
        for name, proc in lifs.items():
            ex = Extractor(shape=proc.s_out.shape, buffer_size=chunk)
            proc.s_out.connect(ex.in_port)
            extractors[name] = ex
        monitors = {}
        if record:
            from lava.proc.monitor.process import Monitor

            for name, proc in lifs.items():
                mu, mv = Monitor(), Monitor()
                mu.probe(proc.u, total)
                mv.probe(proc.v, total)
                monitors[name] = (mu, mv)
        return {
            "source": source,
            "lifs": lifs,
            "conns": conns,
            "zeros": zeros,
            "extractors": extractors,
            "monitors": monitors,
        }

    def _own_lif(self, lif: LoweredLif, n_steps: int) -> Any:
        """snn2hw's fixed-point LIF process for ``lif`` (module docstring)."""
        from snn2hw.backends.lava_neuron import SnnLif

        n, f = lif.node, self.graph.formats
        return SnnLif(
            shape=(lif.size,), du=int(n.du), dv=int(n.dv), vth=int(n.vth),
            bias_mant=np.asarray(n.bias_mant, np.int64).ravel(),
            bias_exp=np.asarray(n.bias_exp, np.int64).ravel(),
            max_spikes=int(n.max_spikes), reset=f.reset, compare=f.threshold_compare,
            reset_interval=n_steps, reset_offset=1,
            step_interval=int(n.reset_interval), step_offset=int(n.reset_offset),
            rules={k: getattr(f, k) for k in ("activation_shift", "decay_bits", "u_bits",
                                              "u_overflow", "v_bits", "v_overflow")},
            name=f"lif:{n.name}",
        )

    def _clear_carry(
        self, net: dict[str, Any], x: np.ndarray, spk: dict[str, np.ndarray], b: int, n: int
    ) -> int:
        """Zero the buffered activation that sample ``b``'s last steps would deliver to
        sample ``b + 1`` (docs: ``a = 0`` before step 0): the buffer of every connection
        whose source was active in the last ``delay + 1`` steps. Returns buffers zeroed."""
        count = 0
        for name, procs in net["conns"].items():
            for proc, span in procs:
                steps = range(max(0, n - span), n)
                if name == self.input.name:
                    active = any(k < x.shape[0] and x[k, b].any() for k in steps)
                else:
                    active = bool(spk[name][b, steps.start:steps.stop].any())
                if active:
                    proc.a_buff.set(np.zeros(proc.a_buff.shape))
                    count += 1
        return count

    def _read_state(
        self, net: dict[str, Any], batch: int, n: int
    ) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
        u_rec, v_rec = {}, {}
        for lif in self.lifs:
            name = lif.node.name
            mu, mv = net["monitors"][name]
            proc = net["lifs"][name]
            for mon, var, out in ((mu, "u", u_rec), (mv, "v", v_rec)):
                arr = np.asarray(mon.get_data()[proc.name][var]).round().astype(np.int64)
                out[name] = (
                    arr.reshape(batch, n, lif.size)
                    .transpose(1, 0, 2)
                    .reshape(n, batch, *lif.node.shape)
                )
        return u_rec, v_rec

    def _verify_unproven(self, x: np.ndarray, spikes: dict[str, np.ndarray], n: int) -> None:
        """Where |a| <= 2^18 was not proven statically, recompute every LIF's activation
        from the recorded source activity (exact by induction over steps) and refuse the
        result if it left the range where Lava's int32 arithmetic equals the docs'."""
        batch = x.shape[1]
        for lif in self.lifs:
            if lif.proven:
                continue
            a = np.zeros((n * batch, lif.size), np.int64)
            for p in lif.paths:
                if p.source == self.input.name:
                    src = np.zeros((n, batch, self.n_in), np.int64)
                    k = min(n, x.shape[0])
                    src[:k] = x[:k]
                else:
                    src = spikes[p.source].reshape(n, batch, -1).astype(np.int64)
                acc = np.zeros((n * batch, lif.size), np.int64)
                for d, part in p.parts.items():  # step m feeds step m + 1 + d
                    late = np.zeros_like(src)
                    late[1 + d:] = src[:max(0, n - 1 - d)]
                    flat = late.reshape(n * batch, -1)
                    acc += np.asarray((part @ flat.T).T, dtype=np.int64)
                a += shift(acc, p.exp)
            peak = int(np.abs(a).max()) if a.size else 0
            if peak > _A_SAFE:
                raise GraphError(
                    f"node '{lif.node.name}' (lif): synaptic input reached {peak} > 2^18, where "
                    "Lava's int32 LIF arithmetic (a << 6, u) can differ from docs/qgraph.md; "
                    "reduce weights or weight_exp upstream"
                )


def _instance_models(net: dict[str, Any]) -> dict[Any, type]:
    """``exception_proc_model_map`` entries naming the ``fixed_pt`` model of every Lava
    process of ``net`` by instance. Lava's compiler looks instances up first
    (``ProcGroupDiGraphs._map_proc_to_model``, ``magma/compiler/compiler_graphs.py``);
    otherwise it imports every module next to each process class in search of models
    (``_find_proc_models``), about 0.3 s per compile on a small network. The models are
    the ones ``select_tag="fixed_pt"`` picks (docs/lava.md "Processes and models used")."""
    from lava.proc.dense.models import PyDelayDenseModelBitAcc, PyDenseModelBitAcc
    from lava.proc.dense.process import DelayDense, Dense
    from lava.proc.io.extractor import PyLoihiExtractorModel
    from lava.proc.lif.models import PyLifResetModelBitAcc
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.models import PyMonitorModel
    from lava.proc.sparse.models import PyDelaySparseModelBitAcc, PySparseModelBitAcc
    from lava.proc.sparse.process import DelaySparse, Sparse

    from snn2hw.backends.lava_neuron import PyIntInjectorModel

    by_type = {Dense: PyDenseModelBitAcc, DelayDense: PyDelayDenseModelBitAcc,
               Sparse: PySparseModelBitAcc, DelaySparse: PyDelaySparseModelBitAcc,
               LIFReset: PyLifResetModelBitAcc}
    procs = [p for group in net["conns"].values() for p, _ in group] + net["zeros"]
    procs += [p for p in net["lifs"].values() if type(p) in by_type]
    found: dict[Any, type] = {p: by_type[type(p)] for p in procs}
    found[net["source"]] = PyIntInjectorModel
    found.update({ex: PyLoihiExtractorModel for ex in net["extractors"].values()})
    found.update({m: PyMonitorModel for pair in net["monitors"].values() for m in pair})
    return found


def _lif_reset_schedule(node: LIFNode, n_steps: int) -> tuple[int, int] | None:
    """``(reset_interval, reset_offset)`` of one ``LIFReset`` that zeroes ``u``/``v`` at
    the first step of every ``n_steps``-step sample and at the node's periodic reset
    (docs/qgraph.md "Periodic state reset"), or None where no single schedule does both.

    Sample b's step n is Lava's ``time_step = b * N + n + 1`` and LIFReset resets when
    ``time_step % interval == offset``. Without a periodic reset: ``(N, 1 % N)``. With
    interval I and offset 0, where I divides N: ``n % I == 0`` is ``time_step % I == 1 %
    I`` on every sample, and n = 0 is among those steps, so ``(I, 1 % I)`` does both."""
    interval = int(node.reset_interval)
    if interval <= 0:
        return n_steps, 1 % n_steps
    if int(node.reset_offset) == 0 and n_steps % interval == 0:
        return interval, 1 % interval
    return None


def _payload_dtype(node: LIFNode) -> type:
    """Record dtype of a LIF's output: uint8 for spikes and counts up to 255."""
    m = int(node.max_spikes)
    return np.uint8 if m <= 0xFF else np.uint16 if m <= 0xFFFF else np.uint32


def _delay_matrix(delays: Any, shape: tuple[int, ...]) -> np.ndarray:
    """DelayDense's per-synapse delays as an int array of the weights' shape."""
    return np.broadcast_to(np.asarray(delays, dtype=int), shape).copy()


def _sparse_delays(weights: Any, delay: int) -> Any:
    """DelaySparse's delays: ``delay`` on every stored synapse of ``weights``."""
    import scipy.sparse as sp

    d = sp.csr_matrix(weights, copy=True)
    d.data = np.full(d.data.shape, delay, dtype=int)
    return d


class _Components:
    """Tiny union-find over node names (which LIFs Lava would compile together)."""

    def __init__(self, names: list[str]) -> None:
        self.parent = {n: n for n in names}

    def find(self, n: str) -> str:
        while self.parent[n] != n:
            self.parent[n] = self.parent[self.parent[n]]
            n = self.parent[n]
        return n

    def join(self, a: str, b: str) -> None:
        self.parent[self.find(a)] = self.find(b)

    def cut_off(self, root: str) -> list[str]:
        """One representative of every component not containing ``root``."""
        seen, reps = {self.find(root)}, []
        for n in self.parent:
            r = self.find(n)
            if r not in seen:
                seen.add(r)
                reps.append(n)
        return reps


def run(
    graph: QGraph, inputs: Any, num_steps: int | None = None, record_state: bool = False
) -> SimResult:
    """Run ``graph`` on integer frames ``[F, B, *input_shape]`` with Lava's bit-accurate
    models (docs/qgraph.md); one Lava network, stopped on return. ``num_steps`` defaults to
    ``graph.num_steps + graph.depth()``. Raises LavaMissingError without lava-nc."""
    net = LavaNetwork(graph)
    try:
        return net.run(inputs, num_steps, record_state)
    finally:
        net.close()


class LavaBackend(PreparingBackend):
    """The Lava backend behind :class:`snn2hw.backends.base.Backend` (registry name
    ``lava``): every sample of a call streams through ONE Lava network, kept compiled by
    the prepared :class:`LavaNetwork` for its next call, so callers pass all samples at
    once (``splits_batches = False``)."""

    name = "lava"
    node_kinds = NODE_KINDS
    features = frozenset({"delay", "multi_spike", "periodic_reset"})
    records_state = True
    uses_device = False
    counts_activity = False
    splits_batches = False

    def prepare(self, graph: QGraph, device: str = "cpu") -> LavaNetwork:
        check_node_kinds(graph, self.name, self.node_kinds, self.features)
        check_formats(graph)
        return LavaNetwork(graph)



BACKEND = LavaBackend()
