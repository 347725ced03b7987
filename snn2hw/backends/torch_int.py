"""Torch integer mode: batched, bit-exact execution of a quantized graph on CPU or CUDA.

This is snn2hw's "GPU simulation" of Loihi. It implements docs/qgraph.md (the contract;
arithmetic of Lava's bit-accurate models) independently of the event-driven simulator
(``snn2hw.backends.event``); the two are tested against each other bit for bit.

State ``u``, ``v`` is int64. The linear synaptic operators (dense matmul, conv, sumpool) run
in floating point because CUDA has no int64 matmul/conv and CPU int64 matmul is slow. That is
exact, not approximate: every operand is an integer, and every partial sum is bounded by
``sum_j |w_j| * max|x|``, which :class:`TorchIntNetwork` computes per operator from the
actual weights and the largest value its input can carry, and requires to be below 2^53
(float64; otherwise :class:`GraphError`). Any summation order then gives the exact integer,
which is converted back with ``.round().to(int64)``; shifts and wraps happen on int64.

Per operator the float type is chosen once (``TorchIntNetwork.op_dtypes``):
``float32`` when the partial-sum bound is below 2^24 *and* every input value is at most 256
in magnitude (weights always are), ``float64`` otherwise. The operand condition makes float32
exact even where the library silently rounds float32 matmul operands to TF32 (11 significant
bits) or bfloat16 (8 significant bits; ``torch.set_float32_matmul_precision("medium")``):
integers of magnitude <= 256 fit in 8 significant bits, and products/sums accumulate in
float32. Binary spikes through a 784-input dense layer (bound 784 * 255 < 2^24) use float32.

Conv runs as ``F.conv2d`` only where the library's arithmetic is a plain sum of products:
on the CPU, when torch's dispatcher (``torch._C._select_conv_backend``) picks oneDNN (called
by PyTorch with ideep's default ``algorithm::convolution_direct``) or ATen's
``slow_conv2d``/``slow_conv_dilated2d`` (im2col + GEMM); the choice is cached per batch size
(``ConvOp.last_path`` says which ran). Everywhere else (CUDA, NNPACK, XNNPACK, or a torch
without that private function) it is lowered to ``unfold`` (an exact gather) plus a batched
matmul: cuDNN/NNPACK may pick Winograd or FFT algorithms whose intermediate values are not
integers, so their results are not provably exact; a GEMM over integers is. The unfold path
costs memory for the unfolded input, ``B * C_in * kH * kW * H_out * W_out`` floats per step,
and on the CPU 2-4x the time of the direct conv at batch 16-64
(``benchmarks/bench_torch_int.py``). Conv weights are used as stored (no clip), so float32
also requires ``max|w| <= 256`` for conv (the operand condition above).

Synaptic delays and multi-spike output (docs/qgraph.md, the optional ``features`` of
:class:`TorchIntBackend`): every operator with a delay keeps a delay line of its per-step
contributions, a ring of ``max_delay + 1`` slots of ``[B, *out]`` tensors (for dense the
int64 sums *before* the floor shift: one matmul per step against the prepared matrix split
by delay value (the blocks side by side), each block's products added to the slot of its
delay, so the products due at one step are summed across delays before the node's one
shift; for conv its wrapped output). A multi-spike LIF's count is a graded payload to the
operators it feeds (their exactness bounds use ``max_spikes`` as the input's largest value).
Periodic state reset (the third optional feature): a LIF with ``reset_interval > 0`` starts
step ``n`` from ``u = v = 0`` when ``n % reset_interval == reset_offset``, before the step's
input is integrated (:func:`~snn2hw.backends.torch_int_ops.reset_due`, ``lif_step``'s
``from_rest``); ``n`` counts from the run's first step, the same for every sample.

Module layout: this module holds the prepared network (:class:`TorchIntNetwork`), its time
loop and the registry entry :data:`BACKEND`; the integer arithmetic and the synaptic
operators live in :mod:`snn2hw.backends.torch_int_ops` (same backend). Results are
:class:`snn2hw.backends.base.SimResult`.

May import: torch, numpy, ``snn2hw.common``, ``snn2hw.quant``, ``snn2hw.backends.base`` and
its own ``torch_int_ops``. Never another backend (event, lava, onnx) nor pipeline, chip,
training, reporting or cli.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import torch

from snn2hw.backends.base import (
    PreparingBackend,
    SimResult,
    check_int64_formats,
    check_node_kinds,
)
from snn2hw.backends.torch_int_ops import (
    ConvOp,
    DenseOp,
    FlattenOp,
    Op,
    SumPoolOp,
    lif_step,
    prepare_dense_weight,
    reset_due,
    u_stays_in_range,
)
from snn2hw.common.errors import ConfigError, GraphError
from snn2hw.common.frames import integer_frames
from snn2hw.common.threads import contiguous_ranges, current_threads, map_parts
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    QGraph,
    SumPoolNode,
)

__all__ = [
    "BACKEND",
    "NODE_KINDS",
    "TorchIntBackend",
    "TorchIntNetwork",
    "lif_step",
    "prepare_dense_weight",
    "run",
]

# Every qgraph node kind this backend executes (docs/qgraph.md).
NODE_KINDS = frozenset({"input", "dense", "conv", "sumpool", "flatten", "lif", "output"})

_INT64_HEADROOM = 2**62

@dataclass
class _Path:
    source: str
    ops: list[str]


@dataclass
class _Lif:
    name: str
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias: torch.Tensor  # LIFNode.bias(): bias_mant << bias_exp (floor >> if negative)
    max_spikes: int = 1  # > 1: emits the count of thresholds crossed (graded payload)
    reset_interval: int = 0  # > 0: u = v = 0 at the start of steps n % interval == offset
    reset_offset: int = 0
    paths: list[_Path] = field(default_factory=list)
    u_in_range: bool = False  # proven: the u overflow rule never fires (u_stays_in_range)
    _zero_bias: bool | None = None

    @property
    def step_bias(self) -> torch.Tensor | int:
        """The bias as ``lif_step`` takes it: the int 0 when every bias is 0 (no add)."""
        if self._zero_bias is None:
            self._zero_bias = not bool(self.bias.any())
        return 0 if self._zero_bias else self.bias

    @property
    def spike_dtype(self) -> torch.dtype:
        """Record type of the emitted values: 0/1 or counts up to ``max_spikes``."""
        return torch.uint8 if self.max_spikes <= 255 else torch.int32


class _DelayLine:
    """What one delayed operator has in flight: ``slots[k]`` is the sum of contributions
    due ``k`` steps after the current one (None: nothing). :meth:`add` accumulates into a
    slot, :meth:`pop` takes the current one and advances one step."""

    def __init__(self, max_delay: int) -> None:
        self.slots: list[torch.Tensor | None] = [None] * (max_delay + 1)

    def add(self, k: int, t: torch.Tensor) -> None:
        cur = self.slots[k]
        self.slots[k] = t if cur is None else cur + t

    def pop(self) -> torch.Tensor | None:
        out = self.slots.pop(0)
        self.slots.append(None)
        return out


# ----- the prepared network -----------------------------------------------------------------
def _resolve_device(device: str | torch.device) -> torch.device:
    if isinstance(device, str) and device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ConfigError(f"unknown device {device!r}: use 'cpu', 'cuda' or 'auto'") from exc
    if dev.type not in ("cpu", "cuda"):
        raise ConfigError(f"unsupported device {device!r}: use 'cpu', 'cuda' or 'auto'")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} requested but CUDA is not available; use 'cpu'")
    if dev.type == "cuda" and dev.index is None:  # report "cuda:0", not a bare "cuda"
        dev = torch.device("cuda", torch.cuda.current_device())
    return dev


_OPS_LOCK = threading.Lock()
_OPS_STATE = {"depth": 0, "saved": 1}


@contextmanager
def _single_threaded_ops() -> Iterator[None]:
    """torch's ops on one thread while any CPU run is in progress; the count found by the
    first of overlapping runs is restored by the last (torch's setting is process-wide)."""
    with _OPS_LOCK:
        if _OPS_STATE["depth"] == 0:
            _OPS_STATE["saved"] = torch.get_num_threads()
            torch.set_num_threads(1)
        _OPS_STATE["depth"] += 1
    try:
        yield
    finally:
        with _OPS_LOCK:
            _OPS_STATE["depth"] -= 1
            if _OPS_STATE["depth"] == 0:
                torch.set_num_threads(_OPS_STATE["saved"])


class TorchIntNetwork:
    """A quantized graph prepared once for batched integer execution on one device.

    Preparation validates the graph, truncates Dense weights (docs/qgraph.md), moves weights and
    biases to ``device``, proves float exactness per operator (module docstring) and picks
    its float type (``op_dtypes``). Stream many batches through :meth:`run`.
    """

    def __init__(self, graph: QGraph, device: str | torch.device = "cpu") -> None:
        graph.validate()
        check_int64_formats(graph, "torch-int")
        self.graph = graph
        self.formats = graph.formats
        self.device = _resolve_device(device)
        self.input = graph.input_node
        self._ops: dict[str, Op] = {}
        self._lifs: list[_Lif] = []
        source_bound = {
            self.input.name: 1 if self.input.message_bits == 0 else 2**self.input.message_bits - 1
        }
        for node in graph.lif_nodes:
            source_bound[node.name] = int(node.max_spikes)  # a count is a graded payload
        self._op_input: dict[str, str] = {}  # op -> the node feeding it (one edge)
        for node in graph.lif_nodes:
            lif = _Lif(
                name=node.name,
                shape=tuple(int(s) for s in node.shape),
                du=int(node.du),
                dv=int(node.dv),
                vth=int(node.vth),
                bias=torch.as_tensor(node.bias(), device=self.device),
                max_spikes=int(node.max_spikes),
                reset_interval=int(node.reset_interval),
                reset_offset=int(node.reset_offset),
            )
            a_bound = 0
            for p in graph.synapse_paths(node.name):
                bound = source_bound[p[0]]
                for prev_name, op_name in zip(p[:-1], p[1:], strict=True):
                    bound = self._prepare_op(op_name, bound).out_bound
                    self._op_input[op_name] = prev_name
                lif.paths.append(_Path(source=p[0], ops=list(p[1:])))
                a_bound += bound
            # a << shift plus decayed u must stay inside int64 (and far from its edge).
            f = self.formats
            if (a_bound << f.activation_shift) + 4 * (1 << f.u_bits) >= _INT64_HEADROOM:
                raise GraphError(
                    f"node '{node.name}' (lif): synaptic input can reach {a_bound}, too large "
                    "for 64-bit integer state; reduce weights or weight_exp upstream"
                )
            lif.u_in_range = u_stays_in_range(a_bound, lif.du, f)
            self._lifs.append(lif)
        self.op_dtypes: dict[str, str] = {
            name: str(op.dtype).removeprefix("torch.") if op.dtype is not None else "none"
            for name, op in self._ops.items()
        }

    def _prepare_op(self, name: str, in_bound: int) -> Op:
        """Build (once) the operator ``name``; an operator has one input so one bound."""
        if name in self._ops:
            return self._ops[name]
        node = self.graph.nodes[name]
        op: Op
        if isinstance(node, DenseNode):
            op = DenseOp(node, in_bound, self.device, self.formats)
        elif isinstance(node, ConvNode):
            op = ConvOp(node, in_bound, self.device)
        elif isinstance(node, SumPoolNode):
            op = SumPoolOp(node, in_bound)
        elif isinstance(node, FlattenNode):
            op = FlattenOp(name, in_bound)
        else:
            raise GraphError(f"node '{name}' ({node.kind}) cannot sit on a synapse path")
        self._ops[name] = op
        return op

    def default_num_steps(self) -> int:
        """``graph.num_steps + graph.depth()``: enough to flush the last frame."""
        return int(self.graph.num_steps + self.graph.depth())

    def _check_inputs(self, inputs: np.ndarray | torch.Tensor) -> torch.Tensor:
        """Validate ``[F, B, *input_shape]`` integer frames; return them on the device."""
        node: InputNode = self.input
        shape = tuple(int(s) for s in node.shape)
        want = ["F", "B", *(str(s) for s in shape)]
        if isinstance(inputs, torch.Tensor):
            x = inputs.detach()
            if x.dtype.is_floating_point or x.dtype.is_complex:
                raise GraphError(f"input frames must be integers, got dtype {x.dtype}")
        else:
            arr = integer_frames(inputs)
            if arr.dtype.kind == "u" and arr.dtype.itemsize > 1:
                arr = arr.astype(np.int64)  # torch lacks most ops on uint16/32/64
            x = torch.from_numpy(np.ascontiguousarray(arr))
        if x.dim() != 2 + len(shape) or tuple(x.shape[2:]) != shape:
            raise GraphError(
                f"input frames for '{node.name}' must have shape [{', '.join(want)}] "
                f"(time-major), got {list(x.shape)}"
            )
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise GraphError(f"input frames are empty: shape {list(x.shape)}")
        if x.dtype == torch.bool:
            x = x.to(torch.uint8)
        lo, hi = int(x.min()), int(x.max())
        if lo < 0:
            raise GraphError(f"input frames for '{node.name}' contain negative values (min {lo})")
        if node.message_bits == 0 and hi > 1:
            raise GraphError(
                f"input node '{node.name}' is binary (message_bits=0): values must be 0/1, "
                f"got max {hi}"
            )
        if node.message_bits > 0 and hi >= 2**node.message_bits:
            raise GraphError(
                f"input node '{node.name}' has message_bits={node.message_bits}: values must "
                f"be < {2**node.message_bits}, got max {hi}"
            )
        small = torch.uint8 if node.message_bits <= 8 else torch.int32  # all legal values fit
        return x.to(device=self.device, dtype=small)

    def run(
        self,
        inputs: np.ndarray | torch.Tensor,
        num_steps: int | None = None,
        record_state: bool = False,
        threads: int | None = None,
    ) -> SimResult:
        """Run ``num_steps`` steps on integer frames ``[F, B, *input_shape]``; see
        :meth:`_run` for the semantics. On the CPU the batch is split into ``threads``
        contiguous parts (default: the process's thread count, which ``snn2hw --threads``
        sets) run at once on Python threads, each op single-threaded: a time-stepped run
        is thousands of small ops, and OpenMP's threads inside each op either spin (stealing
        a busy machine's cores) or sleep and wake per op (the Sinabs CNN, batch 16, took
        2.2x longer on 2 such threads than on 1; split by samples it takes 0.85x).
        Results do not depend on ``threads``."""
        t0 = time.perf_counter()
        n_steps = self.default_num_steps() if num_steps is None else int(num_steps)
        if n_steps < 1:
            raise GraphError(f"num_steps must be >= 1, got {n_steps}")
        x = self._check_inputs(inputs)
        if self.device.type != "cpu":
            return self._run(x, n_steps, record_state, t0)
        n_par = current_threads() if threads is None else int(threads)
        if n_par < 1:
            raise GraphError(f"threads must be >= 1, got {n_par}")
        batch = int(x.shape[1])
        spans = contiguous_ranges(batch, max(1, min(n_par, batch)))
        with _single_threaded_ops():
            if len(spans) <= 1:
                return self._run(x, n_steps, record_state, t0)
            parts = map_parts(
                lambda sp: self._run(x[:, sp[0]:sp[1]], n_steps, record_state, t0), spans)

        def joined(field_name: str) -> dict[str, np.ndarray] | None:
            first = getattr(parts[0], field_name)
            if first is None:
                return None
            return {k: np.concatenate([getattr(p, field_name)[k] for p in parts], axis=1)
                    for k in first}

        return SimResult(BACKEND.name, joined("spikes"), joined("u"), joined("v"),
                         time.perf_counter() - t0, device=str(self.device))

    @torch.inference_mode()
    def _run(self, x: torch.Tensor, n_steps: int, record_state: bool, t0: float
             ) -> SimResult:
        """Run ``num_steps`` steps (default ``num_steps + depth()``) on integer frames
        ``[F, B, *input_shape]`` (docs/qgraph.md "Topology and timing")::

            for n in 0..N-1:
                out[input][n] = x[n] if n < F else 0
                for each lif L: a = sum over paths P of apply_ops(P, out[source(P)][n-1])
                                lif_step(L, a) -> out[L][n]

        Every LIF reads its sources' outputs of step n-1 (one-step delay per path, recurrent
        edges included); samples are independent. A path with synaptic delays adding up to
        ``d`` delivers a source's output of step n at step n+1+d ("Synaptic delays": each
        delayed operator keeps a delay line of its contributions; a dense sums the products
        due at one step before its one floor shift). A LIF with ``max_spikes > 1`` emits,
        and records in ``spikes``, the count of thresholds crossed ("Multi-spike output"):
        uint8, or int32 when ``max_spikes > 255``. A LIF with ``reset_interval > 0`` starts
        step n from ``u = v = 0`` when ``n % reset_interval == reset_offset`` ("Periodic
        state reset"). Raises GraphError on bad inputs.
        """
        n_frames, batch = int(x.shape[0]), int(x.shape[1])
        dev = self.device
        i64 = torch.int64

        u = {
            lif.name: torch.zeros((batch, *lif.shape), dtype=i64, device=dev) for lif in self._lifs
        }
        v = {
            lif.name: torch.zeros((batch, *lif.shape), dtype=i64, device=dev) for lif in self._lifs
        }
        spk_rec = {
            lif.name: torch.zeros((n_steps, batch, *lif.shape), dtype=lif.spike_dtype,
                                  device=dev)
            for lif in self._lifs
        }
        u_rec = v_rec = None
        if record_state:
            u_rec = {
                k: torch.empty((n_steps, *t.shape), dtype=i64, device=dev) for k, t in u.items()
            }
            v_rec = {
                k: torch.empty((n_steps, *t.shape), dtype=i64, device=dev) for k, t in v.items()
            }
        lines = {name: _DelayLine(op.max_delay) for name, op in self._ops.items()
                 if op.max_delay > 0}

        # prev[source]: that source's output at step n-1; None stands for all zeros
        # (step -1, frames past the end), and a path from a zero source contributes zero
        # because every operator is linear without bias.
        prev: dict[str, torch.Tensor | None] = {self.input.name: None}
        prev.update({lif.name: None for lif in self._lifs})
        for n in range(n_steps):
            # Every operator's output due at this step (ops in topological order), from its
            # input of step n-1; a delayed op adds that input's contributions to its delay
            # line (due d steps later) and emits what falls due now.
            val: dict[str, torch.Tensor | None] = dict(prev)
            for name, op in self._ops.items():
                y = val[self._op_input[name]]
                line = lines.get(name)
                if line is None:
                    val[name] = None if y is None else op(y)
                    continue
                if y is not None:
                    for k, t in op.products(y):
                        line.add(k, t)
                due = line.pop()
                val[name] = None if due is None else op.finish(due)
            cur: dict[str, torch.Tensor | None] = {self.input.name: x[n] if n < n_frames else None}
            for lif in self._lifs:
                a: torch.Tensor | int = 0
                for path in lif.paths:
                    y = val[path.ops[-1]] if path.ops else val[path.source]
                    if y is not None:
                        y = y.reshape(batch, *lif.shape).to(i64)
                        a = y if isinstance(a, int) else a + y
                # every sample of the batch is at step n, so one decision serves them all
                rest = reset_due(n, lif.reset_interval, lif.reset_offset)
                un, vn, s = lif_step(u[lif.name], v[lif.name], a, lif.du, lif.dv, lif.step_bias,
                                     lif.vth, self.formats, lif.max_spikes, from_rest=rest,
                                     u_in_range=lif.u_in_range)
                u[lif.name], v[lif.name] = un, vn
                spk_rec[lif.name][n] = s
                if u_rec is not None and v_rec is not None:
                    u_rec[lif.name][n] = un
                    v_rec[lif.name][n] = vn
                cur[lif.name] = s
            prev = cur

        spikes = {k: t.cpu().numpy() for k, t in spk_rec.items()}  # .cpu() syncs CUDA
        u_np = {k: t.cpu().numpy() for k, t in u_rec.items()} if u_rec is not None else None
        v_np = {k: t.cpu().numpy() for k, t in v_rec.items()} if v_rec is not None else None
        return SimResult(
            BACKEND.name, spikes, u_np, v_np, time.perf_counter() - t0, device=str(dev)
        )


def run(
    graph: QGraph,
    inputs: np.ndarray | torch.Tensor,
    num_steps: int | None = None,
    device: str = "cpu",
    record_state: bool = False,
) -> SimResult:
    """Run ``graph`` on integer frames ``[F, B, *input_shape]`` with exact integer
    arithmetic in the graph's number formats (docs/qgraph.md). ``device``: "cpu", "cuda"
    or "auto". ``num_steps`` defaults to ``graph.num_steps + graph.depth()``. For many
    batches, build one :class:`TorchIntNetwork` and call its ``run`` instead."""
    return TorchIntNetwork(graph, device).run(inputs, num_steps, record_state)


class TorchIntBackend(PreparingBackend):
    """The torch integer backend behind :class:`snn2hw.backends.base.Backend` (registry
    name ``torch-int``): prepares a :class:`TorchIntNetwork` once on ``device``."""

    name = "torch-int"
    node_kinds = NODE_KINDS
    records_state = True
    uses_device = True
    counts_activity = False
    splits_batches = True
    features = frozenset({"delay", "multi_spike", "periodic_reset"})

    def prepare(self, graph: QGraph, device: str = "cpu") -> TorchIntNetwork:
        check_node_kinds(graph, self.name, self.node_kinds, self.features)
        return TorchIntNetwork(graph, device=device)



BACKEND = TorchIntBackend()
