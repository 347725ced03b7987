"""Torch integer mode: batched, bit-exact execution of a quantized graph on CPU or CUDA.

This is snn2hw's "GPU simulation" of Loihi. It implements docs/qgraph.md (the contract;
arithmetic from SPEC.md §1–2) independently of the event-driven simulator
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

Conv is lowered to ``unfold`` (an exact gather) plus a batched matmul instead of calling
``conv2d``: cuDNN/oneDNN may pick Winograd or FFT algorithms whose intermediate values are
not integers, so their results are not provably exact; a GEMM over integers is. The cost is
memory for the unfolded input, ``B * C_in * kH * kW * H_out * W_out`` floats per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from snn2hw.common.errors import ConfigError, GraphError
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    QGraph,
    SumPoolNode,
)

__all__ = [
    "TorchIntNetwork",
    "TorchIntResult",
    "lif_step",
    "prepare_dense_weight",
    "run",
]

_U_MAX = 2**23  # u wraps when > +2^23 or <= -2^23 (docs/qgraph.md, LIF step)
_U_SPAN = 2**24
_V_MAX = 2**23 - 1  # v saturates to +-(2^23 - 1)
_DECAY_SHIFT = 12  # decays are 12-bit fractions of 4096
_ACT_SHIFT = 6  # synaptic input and threshold are left-aligned by 6 bits
_F64_EXACT = 2**53  # every integer of magnitude <= 2^53 is a float64
_F32_EXACT = 2**24
_F32_OPERAND_MAX = 256  # exact even under TF32 / bfloat16 operand rounding
_INT64_HEADROOM = 2**62


# ----- arithmetic (docs/qgraph.md "Notation") ----------------------------------------------
def _rtz(x: torch.Tensor, k: int) -> torch.Tensor:
    """rtz(x, k) = sign(x) * (|x| >> k): shift toward zero (not floor)."""
    return torch.sign(x) * (x.abs() >> k)


def _shift(x: torch.Tensor, e: int) -> torch.Tensor:
    """shift(x, e) = x << e if e >= 0 else x >> -e; >> on int64 is arithmetic (floor)."""
    if e > 0:
        return x << e
    if e < 0:
        return x >> -e
    return x


def _wrap24(x: torch.Tensor) -> torch.Tensor:
    """wrap24(x) = ((x + 2^23) mod 2^24) - 2^23; the mask is a mod for two's complement."""
    return ((x + _U_MAX) & (_U_SPAN - 1)) - _U_MAX


def _shift_bound(bound: int, e: int) -> int:
    """Largest |shift(x, e)| for |x| <= bound (floor of a negative rounds away from 0)."""
    return bound << e if e >= 0 else -((-bound) >> -e)


def prepare_dense_weight(weight: np.ndarray, num_weight_bits: int) -> np.ndarray:
    """Dense weight preparation, once per layer (docs/qgraph.md, SPEC.md §2).

    1. sign mode: EXCITATORY if min(W) >= 0 (all-zero included), INHIBITORY if max(W) <= 0,
       else MIXED;
    2. clip: MIXED [-256, 255], EXCITATORY [0, 255], INHIBITORY [-255, 0];
    3. truncate: k = 8 - num_weight_bits + (1 if MIXED); W' = (W >> k) << k (floor), and for
       INHIBITORY W' = -(((-W) >> k) << k).  Mixed [7, -7] becomes [6, -8].

    Returns int64 W' with the shape of ``weight``.
    """
    w = np.asarray(weight, dtype=np.int64)
    if w.size == 0 or w.min() >= 0:
        return (np.clip(w, 0, 255) >> (8 - num_weight_bits)) << (8 - num_weight_bits)
    if w.max() <= 0:
        k = 8 - num_weight_bits
        return -(((-np.clip(w, -255, 0)) >> k) << k)
    k = 8 - num_weight_bits + 1
    return (np.clip(w, -256, 255) >> k) << k


def lif_step(
    u: torch.Tensor,
    v: torch.Tensor,
    a: torch.Tensor | int,
    du: int,
    dv: int,
    bias: torch.Tensor | int,
    vth: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One Loihi CUBA LIF step on int64 tensors (docs/qgraph.md "LIF step", SPEC.md §1).

    ``a`` is the summed synaptic input, ``bias = bias_mant << bias_exp``. Returns the new
    ``(u, v, spikes)``; spikes are bool. Equations::

        u = rtz(u * (4096 - (du + 1)), 12) + (a << 6)
        u = u - 2^24 if u > 2^23;  u = u + 2^24 if u <= -2^23     # +2^23 is kept
        v = rtz(v * (4096 - dv), 12) + u + b
        v = clip(v, -(2^23 - 1), 2^23 - 1)
        s = v > (vth << 6)                                        # strict
        v = 0 where s                                             # u is not reset
    """
    if isinstance(a, torch.Tensor):
        a = a << _ACT_SHIFT
    else:
        a = int(a) << _ACT_SHIFT
    # du + 1: Lava's hidden offset; du = -1 means no current decay.
    u = _rtz(u * (4096 - (du + 1)), _DECAY_SHIFT) + a
    # Docs define a single conditional correction, not a modulo (as Lava's np.where pair).
    u = torch.where(u > _U_MAX, u - _U_SPAN, u)
    u = torch.where(u <= -_U_MAX, u + _U_SPAN, u)
    v = _rtz(v * (4096 - dv), _DECAY_SHIFT) + u + bias
    v = v.clamp(-_V_MAX, _V_MAX)
    s = v > (vth << _ACT_SHIFT)
    v = v.masked_fill(s, 0)
    return u, v, s


# ----- synaptic operators -----------------------------------------------------------------
class _Op:
    """A prepared synaptic operator: integer tensor [B, *in] -> int64 tensor [B, *out]."""

    def __init__(self, name: str, in_bound: int) -> None:
        self.name = name
        self.in_bound = in_bound  # largest |value| this operator can receive
        self.acc_bound = in_bound  # largest |partial sum| it can form
        self.out_bound = in_bound  # largest |value| it can emit
        self.dtype: torch.dtype | None = None  # float type of the linear op; None: no math

    def _pick_dtype(self, kind: str) -> None:
        """Choose float32/float64 from the proven partial-sum bound (module docstring)."""
        if self.acc_bound >= _F64_EXACT:
            raise GraphError(
                f"node '{self.name}' ({kind}): partial sums can reach {self.acc_bound} "
                f"(>= 2^53), which torch integer mode cannot compute exactly; "
                "reduce weights, weight_exp or input payload bits"
            )
        f32_ok = self.acc_bound < _F32_EXACT and self.in_bound <= _F32_OPERAND_MAX
        self.dtype = torch.float32 if f32_ok else torch.float64

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


class _DenseOp(_Op):
    """shift(W' @ x, weight_exp); input read C-order flattened; no saturation."""

    def __init__(self, node: DenseNode, in_bound: int, device: torch.device) -> None:
        super().__init__(node.name, in_bound)
        w = prepare_dense_weight(node.weight, node.num_weight_bits)
        row_abs = int(np.abs(w).sum(axis=1).max()) if w.size else 0
        self.acc_bound = row_abs * in_bound
        self._pick_dtype("dense")
        self.weight_exp = int(node.weight_exp)
        self.out_bound = _shift_bound(self.acc_bound, self.weight_exp)
        # Stored transposed so each step is one [B, N_in] @ [N_in, N_out].
        self.wt = torch.as_tensor(w.T.copy(), dtype=self.dtype, device=device)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.reshape(x.shape[0], -1).to(self.dtype)
        acc = torch.mm(xf, self.wt).round_().to(torch.int64)
        return _shift(acc, self.weight_exp)  # floor of the SUM, not of each product


class _ConvOp(_Op):
    """wrap24(shift(conv2d(x, W), weight_exp)), PyTorch cross-correlation, zero padding."""

    def __init__(self, node: ConvNode, in_bound: int, device: torch.device) -> None:
        super().__init__(node.name, in_bound)
        w = np.asarray(node.weight, dtype=np.int64)  # used as stored: no clip, no truncation
        c_out, c_in_g, kh, kw = (int(s) for s in w.shape)
        per_out = np.abs(w).reshape(c_out, -1).sum(axis=1)
        self.acc_bound = int(per_out.max()) * in_bound if w.size else 0
        self._pick_dtype("conv")
        self.weight_exp = int(node.weight_exp)
        self.out_bound = min(_shift_bound(self.acc_bound, self.weight_exp), _U_MAX)
        self.groups = int(node.groups)
        self.in_shape = tuple(int(s) for s in node.input_shape)
        self.out_shape = tuple(int(s) for s in node.out_shape)
        self.kernel = (kh, kw)
        self.stride = tuple(int(s) for s in node.stride)
        self.padding = tuple(int(s) for s in node.padding)
        self.dilation = tuple(int(s) for s in node.dilation)
        # unfold orders its rows (c, i, j) with c slowest, matching W.reshape per group.
        self.w = torch.as_tensor(
            w.reshape(self.groups, c_out // self.groups, c_in_g * kh * kw),
            dtype=self.dtype,
            device=device,
        )

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        xf = x.reshape(b, *self.in_shape).to(self.dtype)
        cols = F.unfold(xf, self.kernel, self.dilation, self.padding, self.stride)
        cols = cols.reshape(b, self.groups, -1, cols.shape[-1])
        acc = torch.matmul(self.w, cols)  # [B, G, C_out/G, L]: exact integer GEMM
        acc = acc.round_().to(torch.int64).reshape(b, *self.out_shape)
        return _wrap24(_shift(acc, self.weight_exp))


class _SumPoolOp(_Op):
    """Per-channel window sums with zero padding, exact, no shift, no wrap."""

    def __init__(self, node: SumPoolNode, in_bound: int) -> None:
        super().__init__(node.name, in_bound)
        kh, kw = (int(s) for s in node.kernel_size)
        self.acc_bound = kh * kw * in_bound
        self._pick_dtype("sumpool")
        self.out_bound = self.acc_bound
        self.in_shape = tuple(int(s) for s in node.input_shape)
        self.kernel = (kh, kw)
        self.stride = tuple(int(s) for s in node.stride)
        ph, pw = (int(s) for s in node.padding)
        # Explicit F.pad: avg_pool2d refuses padding larger than half the kernel.
        self.pad = (pw, pw, ph, ph)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        xf = x.reshape(x.shape[0], *self.in_shape).to(self.dtype)
        if any(self.pad):
            xf = F.pad(xf, self.pad)
        # divisor_override=1 turns the average into the plain window sum.
        s = F.avg_pool2d(xf, self.kernel, self.stride, divisor_override=1)
        return s.round_().to(torch.int64)


class _FlattenOp(_Op):
    """C-order reshape to 1-D; no arithmetic."""

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(x.shape[0], -1)


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
    bias: torch.Tensor  # bias_mant << bias_exp, int64 [*shape]
    paths: list[_Path] = field(default_factory=list)


# ----- results ------------------------------------------------------------------------------
@dataclass
class TorchIntResult:
    """Outputs of one torch-integer run.

    ``spikes``: every LIF node name -> uint8 ``[N, B, *shape]``; ``u``, ``v``: int64 traces
    of the same shape, recorded after each step's reset (only with ``record_state``);
    ``device``: where it ran; ``wall_s``: seconds spent in the run (transfers included).
    """

    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray] | None
    v: dict[str, np.ndarray] | None
    device: str
    wall_s: float

    def predictions(self, graph: QGraph) -> np.ndarray:
        """Class per sample ``[B]``: argmax over the output LIF's spike counts summed over
        all steps (ties: lowest index). Uses the graph's first output node."""
        outs = graph.output_nodes
        if not outs:
            raise GraphError("quantized graph has no output node")
        src = graph.source_of_output(outs[0].name)
        if src not in self.spikes:
            raise GraphError(f"output node '{outs[0].name}' reads '{src}', which is not a LIF node")
        spk = self.spikes[src]
        counts = spk.sum(axis=0, dtype=np.int64).reshape(spk.shape[1], -1)
        return np.argmax(counts, axis=1)  # first maximum = lowest index


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


class TorchIntNetwork:
    """A quantized graph prepared once for batched integer execution on one device.

    Preparation validates the graph, truncates Dense weights (SPEC.md §2), moves weights and
    biases to ``device``, proves float exactness per operator (module docstring) and picks
    its float type (``op_dtypes``). Stream many batches through :meth:`run`.
    """

    def __init__(self, graph: QGraph, device: str | torch.device = "cpu") -> None:
        graph.validate()
        self.graph = graph
        self.device = _resolve_device(device)
        self.input = graph.input_node
        self._ops: dict[str, _Op] = {}
        self._lifs: list[_Lif] = []
        source_bound = {
            self.input.name: 1 if self.input.message_bits == 0 else 2**self.input.message_bits - 1
        }
        for node in graph.lif_nodes:
            source_bound[node.name] = 1
        for node in graph.lif_nodes:
            lif = _Lif(
                name=node.name,
                shape=tuple(int(s) for s in node.shape),
                du=int(node.du),
                dv=int(node.dv),
                vth=int(node.vth),
                bias=torch.as_tensor(
                    np.asarray(node.bias_mant, dtype=np.int64)
                    << np.asarray(node.bias_exp, dtype=np.int64),
                    device=self.device,
                ),
            )
            a_bound = 0
            for p in graph.synapse_paths(node.name):
                bound = source_bound[p[0]]
                for op_name in p[1:]:
                    bound = self._prepare_op(op_name, bound).out_bound
                lif.paths.append(_Path(source=p[0], ops=list(p[1:])))
                a_bound += bound
            # a << 6 plus decayed u must stay inside int64 (and far from its edge).
            if (a_bound << _ACT_SHIFT) + 4 * _U_SPAN >= _INT64_HEADROOM:
                raise GraphError(
                    f"node '{node.name}' (lif): synaptic input can reach {a_bound}, too large "
                    "for 64-bit integer state; reduce weights or weight_exp upstream"
                )
            self._lifs.append(lif)
        self.op_dtypes: dict[str, str] = {
            name: str(op.dtype).removeprefix("torch.") if op.dtype is not None else "none"
            for name, op in self._ops.items()
        }

    def _prepare_op(self, name: str, in_bound: int) -> _Op:
        """Build (once) the operator ``name``; an operator has one input so one bound."""
        if name in self._ops:
            return self._ops[name]
        node = self.graph.nodes[name]
        op: _Op
        if isinstance(node, DenseNode):
            op = _DenseOp(node, in_bound, self.device)
        elif isinstance(node, ConvNode):
            op = _ConvOp(node, in_bound, self.device)
        elif isinstance(node, SumPoolNode):
            op = _SumPoolOp(node, in_bound)
        elif isinstance(node, FlattenNode):
            op = _FlattenOp(name, in_bound)
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
            arr = np.asarray(inputs)
            if arr.dtype.kind not in "iub":
                raise GraphError(f"input frames must be integers, got dtype {arr.dtype}")
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

    @torch.inference_mode()
    def run(
        self,
        inputs: np.ndarray | torch.Tensor,
        num_steps: int | None = None,
        record_state: bool = False,
    ) -> TorchIntResult:
        """Run ``num_steps`` steps (default ``num_steps + depth()``) on integer frames
        ``[F, B, *input_shape]`` (docs/qgraph.md "Topology and timing")::

            for n in 0..N-1:
                out[input][n] = x[n] if n < F else 0
                for each lif L: a = sum over paths P of apply_ops(P, out[source(P)][n-1])
                                lif_step(L, a) -> out[L][n]

        Every LIF reads its sources' outputs of step n-1 (one-step delay per path, recurrent
        edges included); samples are independent. Raises GraphError on bad inputs.
        """
        t0 = time.perf_counter()
        n_steps = self.default_num_steps() if num_steps is None else int(num_steps)
        if n_steps < 1:
            raise GraphError(f"num_steps must be >= 1, got {n_steps}")
        x = self._check_inputs(inputs)
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
            lif.name: torch.zeros((n_steps, batch, *lif.shape), dtype=torch.uint8, device=dev)
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

        # prev[source]: that source's output at step n-1; None stands for all zeros
        # (step -1, frames past the end), and a path from a zero source contributes zero
        # because every operator is linear without bias.
        prev: dict[str, torch.Tensor | None] = {self.input.name: None}
        prev.update({lif.name: None for lif in self._lifs})
        for n in range(n_steps):
            cache: dict[str, torch.Tensor] = {}  # op outputs this step (shared path prefixes)
            cur: dict[str, torch.Tensor | None] = {self.input.name: x[n] if n < n_frames else None}
            for lif in self._lifs:
                a: torch.Tensor | int = 0
                for path in lif.paths:
                    y = prev[path.source]
                    if y is None:
                        continue
                    for op_name in path.ops:
                        if op_name not in cache:
                            cache[op_name] = self._ops[op_name](y)
                        y = cache[op_name]
                    a = a + y.reshape(batch, *lif.shape).to(i64)
                un, vn, s = lif_step(u[lif.name], v[lif.name], a, lif.du, lif.dv, lif.bias, lif.vth)
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
        return TorchIntResult(
            spikes=spikes, u=u_np, v=v_np, device=str(dev), wall_s=time.perf_counter() - t0
        )


def run(
    graph: QGraph,
    inputs: np.ndarray | torch.Tensor,
    num_steps: int | None = None,
    device: str = "cpu",
    record_state: bool = False,
) -> TorchIntResult:
    """Run ``graph`` on integer frames ``[F, B, *input_shape]`` with exact Loihi integer
    arithmetic (docs/qgraph.md). ``device``: "cpu", "cuda" or "auto". ``num_steps`` defaults
    to ``graph.num_steps + graph.depth()``. For many batches, build one
    :class:`TorchIntNetwork` and call its ``run`` instead."""
    return TorchIntNetwork(graph, device).run(inputs, num_steps, record_state)
