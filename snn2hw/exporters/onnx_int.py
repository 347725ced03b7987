"""The integer network as a bit-exact ONNX model: :func:`export_qgraph_onnx` writes ONE
time step of a quantized graph (docs/qgraph.md), or with ``time_loop=True`` the whole run
as an ONNX ``Scan`` over that step. Running it is the job of
:mod:`snn2hw.backends.onnx_runtime`; the float model is :mod:`snn2hw.exporters.onnx_float`.

May import: ``onnx``, numpy, ``snn2hw.quant`` and ``snn2hw.common``; no torch, no
onnxruntime, no backend. Longer than the ~500 lines of the other modules because it is one
argument: the int64 builder arithmetic, the per-operator bounds that prove the float
MatMuls exact, the LIF step and the Scan wrapper all have to agree, and read best together.

The step model is built node by node with ``onnx.helper`` from the :class:`QGraph` (it
shares no code with the other integer backends), with explicit state in and out. It is
driven by a time loop outside the model (:class:`snn2hw.backends.onnx_runtime.OnnxIntRunner`,
or the 15-line loop in docs/onnx.md). Names, shapes and the exactness argument are in
docs/onnx.md; in short:

* all state and all shifts, wraps, clips and comparisons are int64;
* right shifts never rely on how a runtime rounds a negative integer division: ``rtz``
  divides ``|x|`` (non-negative) and re-applies the sign; the floor shift subtracts
  ``Mod(x, 2^k)`` (ONNX ``Mod`` with ``fmod=0`` takes the divisor's sign, so the
  remainder is in ``[0, 2^k)``) before dividing, so the division is exact;
* the linear operators (dense MatMul, conv as an exact Gather (im2col) + MatMul) run in
  float32 / float64 / int64, chosen per operator from a bound on every partial sum
  proven at export time from the weights and the largest value the operator's input
  can carry: float32 when the bound is < 2^24 and every input value is <= 256
  (exact even under TF32 operand rounding on GPU runtimes), float64 when < 2^53,
  else int64. Integer operands and integer partial sums below those bounds are exact
  in any summation order, so the float result is the exact integer and the Cast back
  to int64 is exact;
* sum pooling is a Gather of the window + int64 ReduceSum;
* synaptic delays are delay lines, one int64 state tensor per delayed dense/conv operator
  (a dense's products of all delay values summed before its one floor shift); a
  multi-spike LIF's count is ``Min(Div(Max(v, 0), TH), max_spikes)`` (``v - 1`` for ``>``);
* periodic state reset needs the step index: a graph with a LIF whose ``reset_interval > 0``
  gets one more state tensor, the int64 counter ``step`` ``[B]`` (0 at the first step,
  ``step_next = step + 1``), and such a LIF zeroes ``u`` and ``v`` with ``Where`` where
  ``Mod(step, interval) == offset`` before the step's input is integrated.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from snn2hw.common.atomic_io import atomic_path
from snn2hw.common.errors import ConfigError, GraphError
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats
from snn2hw.quant.qgraph import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
    SumPoolNode,
    max_delay,
)

__all__ = [
    "FORMAT_VERSION",
    "MIN_OPSET",
    "SCAN_FORMAT",
    "STEP_FORMAT",
    "SUPPORTED_KINDS",
    "OnnxExportInfo",
    "check_opset",
    "export_qgraph_onnx",
    "save_model",
]

STEP_FORMAT = "snn2hw.onnx.step"
SCAN_FORMAT = "snn2hw.onnx.scan"
FORMAT_VERSION = 1  # of every snn2hw ONNX format (integer step, Scan, float)
_KIND_TYPES: dict[str, type] = {  # every QGraph node kind this exporter implements
    "input": InputNode,
    "dense": DenseNode,
    "conv": ConvNode,
    "sumpool": SumPoolNode,
    "flatten": FlattenNode,
    "lif": LIFNode,
    "output": OutputNode,
}
SUPPORTED_KINDS = tuple(_KIND_TYPES)
MIN_OPSET = 13  # ReduceSum with axes as an input, Clip/Where/LessOrEqual on int64

# u/v widths, overflow rules, decay bits, activation shift, reset and comparison are the
# graph's number formats (QGraph.formats; Loihi: 24-bit u wraps, 24-bit v saturates,
# 12-bit decays, << 6, reset to 0, strict >).
_U_MAX = 2**23  # the conv output's wrap24 (Lava Conv), the same for every target
_U_SPAN = 2**24
_F32_EXACT = 2**24
_F32_OPERAND_MAX = 256  # integers <= 256 survive TF32 (11 significant bits) unchanged
_F64_EXACT = 2**53
_INT64_SAFE = 2**62
_LINEAR_DTYPES = ("auto", "float32", "float64", "int64")
_NP_OF = {"float32": np.float32, "float64": np.float64, "int64": np.int64}
_ONNX_OF = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE, "int64": TensorProto.INT64}


# ----- results --------------------------------------------------------------------------------
@dataclass
class OnnxExportInfo:
    """What an export wrote: ``inputs``/``outputs`` map each graph I/O name to its shape
    (symbolic dims as names: ``"B"`` batch, ``"N"`` steps of a Scan model; the float
    model's T is a number); ``state`` maps each state output of the integer step to the
    input it feeds at the next step; ``linear_dtypes``: the arithmetic type chosen per
    linear operator (integer models)."""

    path: Path
    format: str
    opset: int
    inputs: dict[str, list[int | str]]
    outputs: dict[str, list[int | str]]
    metadata: dict[str, str]
    state: dict[str, str] = field(default_factory=dict)
    linear_dtypes: dict[str, str] = field(default_factory=dict)


# ----- dense weight preparation (docs/qgraph.md "Dense weight preparation") -----------------
def _prepare_dense_weight(weight: np.ndarray, num_weight_bits: int,
                          f: NumberFormats = LOIHI_FORMATS) -> np.ndarray:
    """Sign-mode clip and LSB truncation, written from docs/qgraph.md: EXCITATORY
    (min >= 0, all-zero included) clips to ``f.weight_range_excitatory`` (Loihi [0, 255]),
    INHIBITORY (max <= 0) to ``weight_range_inhibitory`` ([-255, 0]), MIXED to
    ``weight_range_mixed`` ([-256, 255]); then ``k = weight_mantissa_bits - bits`` (+1 if
    MIXED and the target loses the mixed-sign LSB) LSBs are dropped with floor shifts,
    mirrored for INHIBITORY."""
    w = np.asarray(weight, dtype=np.int64)
    k = f.weight_mantissa_bits - num_weight_bits
    if w.size == 0 or w.min() >= 0:
        return (np.clip(w, *f.weight_range_excitatory) >> k) << k
    if w.max() <= 0:
        return -(((-np.clip(w, *f.weight_range_inhibitory)) >> k) << k)
    k += 1 if f.mixed_sign_lsb_loss else 0
    return (np.clip(w, *f.weight_range_mixed) >> k) << k  # int64 >> is arithmetic (floor)


def _shift_bound(bound: int, e: int) -> int:
    """Largest ``|shift(x, e)|`` for ``|x| <= bound`` (a floor shift of a negative number
    rounds away from zero, hence the ceiling)."""
    return bound << e if e >= 0 else -((-bound) >> -e)


# ----- the graph builder ----------------------------------------------------------------------
class _Builder:
    """Accumulates ONNX nodes and initializers; every value gets a fresh unique name."""

    def __init__(self, prefix: str = "") -> None:
        self.prefix = prefix  # keeps names distinct from those of an enclosed subgraph
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self._consts: dict[tuple[str, tuple[int, ...], bytes], str] = {}
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{self.prefix}{hint}:{self._count}"  # ':' never occurs in I/O names

    def const(self, value: Any, dtype: Any = np.int64, hint: str = "const") -> str:
        """An initializer; identical small constants are shared."""
        arr = np.ascontiguousarray(np.asarray(value, dtype=dtype))
        key = (arr.dtype.str, arr.shape, arr.tobytes()) if arr.size <= 16 else None
        if key is not None and key in self._consts:
            return self._consts[key]
        name = self.fresh(hint)
        self.inits.append(numpy_helper.from_array(arr, name))
        if key is not None:
            self._consts[key] = name
        return name

    def op(self, op_type: str, inputs: list[str], hint: str, out: str | None = None,
           **attrs: Any) -> str:
        out = out or self.fresh(hint)
        self.nodes.append(helper.make_node(op_type, inputs, [out], name=f"{out}#{op_type}",
                                           **attrs))
        return out

    # --- exact int64 arithmetic (docs/qgraph.md "Notation") ---
    def rtz(self, x: str, k: int, hint: str) -> str:
        """``sign(x) * (|x| >> k)``: the division only ever sees a non-negative dividend,
        so truncating and flooring integer Div agree."""
        q = self.op("Div", [self.op("Abs", [x], hint), self.const(2**k)], hint)
        return self.op("Mul", [self.op("Sign", [x], hint), q], hint)

    def floor_shift(self, x: str, k: int, hint: str) -> str:
        """``x >> k`` (arithmetic, floor) as ``(x - Mod(x, 2^k)) / 2^k``: Mod with fmod=0
        has the divisor's sign, so the dividend is an exact multiple and Div is exact."""
        d = self.const(2**k)
        r = self.op("Mod", [x, d], hint, fmod=0)
        return self.op("Div", [self.op("Sub", [x, r], hint), d], hint)

    def shift(self, x: str, e: int, hint: str) -> str:
        if e > 0:
            return self.op("Mul", [x, self.const(2**e)], hint)
        if e < 0:
            return self.floor_shift(x, -e, hint)
        return x

    def wrap24(self, x: str, hint: str) -> str:
        """``((x + 2^23) mod 2^24) - 2^23`` with a non-negative Mod (fmod=0)."""
        y = self.op("Mod", [self.op("Add", [x, self.const(_U_MAX)], hint), self.const(_U_SPAN)],
                    hint, fmod=0)
        return self.op("Sub", [y, self.const(_U_MAX)], hint)

    def reshape(self, x: str, shape: tuple[int, ...], hint: str) -> str:
        """Reshape to ``[B, *shape]``; the leading 0 copies the (dynamic) batch dim."""
        return self.op("Reshape", [x, self.const([0, *shape])], hint)

    def cast(self, x: str, to: str, hint: str) -> str:
        return self.op("Cast", [x], hint, to=_ONNX_OF[to])


# ----- synaptic operators -----------------------------------------------------------------------
def _gather_index(
    in_shape: tuple[int, int, int],
    channels: np.ndarray,
    kernel: tuple[int, int],
    stride: tuple[int, int],
    padding: tuple[int, int],
    dilation: tuple[int, int],
    out_hw: tuple[int, int],
) -> tuple[np.ndarray, bool]:
    """im2col indices into the C-order flattened input: for each channel in ``channels``
    (any shape ``S``) and kernel tap ``(i, j)`` and output position ``(oh, ow)`` the flat
    index of the input pixel it reads, or ``C*H*W`` (a zero sentinel appended to the input)
    where it reads zero padding. Returns ``(index [*S, kH*kW, OH*OW], uses_sentinel)``."""
    c_all, h, w = in_shape
    kh, kw = kernel
    oh, ow = out_hw
    ii, jj = np.meshgrid(np.arange(kh), np.arange(kw), indexing="ij")  # [kH, kW]
    yy, xx = np.meshgrid(np.arange(oh), np.arange(ow), indexing="ij")  # [OH, OW]
    rows = yy.reshape(1, -1) * stride[0] - padding[0] + ii.reshape(-1, 1) * dilation[0]
    cols = xx.reshape(1, -1) * stride[1] - padding[1] + jj.reshape(-1, 1) * dilation[1]
    inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)  # [kH*kW, L]
    pix = np.where(inside, rows * w + cols, 0)
    idx = np.asarray(channels)[..., None, None] * (h * w) + pix
    idx = np.where(inside, idx, c_all * h * w)
    return idx.astype(np.int64), not bool(inside.all())


@dataclass
class _Value:
    """A built ONNX value: its name, static shape without B, and the largest |entry|."""

    name: str
    shape: tuple[int, ...]
    bound: int


def _linear_dtype(requested: str, acc_bound: int, in_bound: int, where: str) -> str:
    """Per-operator arithmetic type from the proven partial-sum bound (module doc)."""
    if acc_bound >= _INT64_SAFE:
        raise GraphError(
            f"{where}: partial sums can reach {acc_bound} (>= 2^62), too large for exact "
            "64-bit integer arithmetic; reduce weights, weight_exp or input payload bits"
        )
    if requested == "auto":
        if acc_bound < _F32_EXACT and in_bound <= _F32_OPERAND_MAX:
            return "float32"
        return "float64" if acc_bound < _F64_EXACT else "int64"
    limit = {"float32": _F32_EXACT, "float64": _F64_EXACT, "int64": _INT64_SAFE}[requested]
    if acc_bound >= limit or (requested == "float32" and in_bound > _F32_OPERAND_MAX):
        raise GraphError(
            f"{where}: linear_dtype={requested!r} is not provably exact here (partial sums up "
            f"to {acc_bound}, inputs up to {in_bound}); use 'auto'"
        )
    return requested


def _build_dense(b: _Builder, node: DenseNode, x: _Value, dtype_req: str,
                 dtypes: dict[str, str], f: NumberFormats, line: _Line | None) -> _Value:
    """``shift(W' @ x, weight_exp)``; with delays (``line``), the products of every
    distinct delay value go to the delay line and what falls due is shifted once."""
    w = _prepare_dense_weight(node.weight, int(node.num_weight_bits), f)
    row_abs = int(np.abs(w).sum(axis=1).max()) if w.size else 0
    # A delayed synapse still contributes once per arrival step: same bound as undelayed.
    acc_bound = row_abs * x.bound
    dt = _linear_dtype(dtype_req, acc_bound, x.bound, f"node '{node.name}' (dense)")
    dtypes[node.name] = dt
    hint = node.name
    xf = b.reshape(x.name, (-1,), hint) if len(x.shape) != 1 else x.name  # C-order flatten
    if dt != "int64":
        xf = b.cast(xf, dt, hint)
    n_out = int(w.shape[0])
    if line is None:
        wt = w.T  # [N_in, N_out]: one MatMul per step
    else:  # W' (prepared from the whole matrix) split per delay: [N_in, K * N_out]
        d = np.broadcast_to(np.asarray(node.delay, np.int64), w.shape)
        wt = np.concatenate([np.where(d == k, w, 0).T for k in line.delays], axis=1)
    acc = b.op("MatMul", [xf, b.const(wt, _NP_OF[dt], f"{hint}/weight_t")], hint)
    if dt != "int64":
        acc = b.cast(acc, "int64", hint)  # exact: the float holds an exact integer
    if line is not None:  # [B, K, N_out] contributions -> the sum due now
        acc = _delay_line(b, b.reshape(acc, (len(line.delays), n_out), hint), line, hint)
    e = int(node.weight_exp)
    out = b.shift(acc, e, hint)  # floor of the SUM (over synapses and delays)
    return _Value(out, tuple(node.out_shape), _shift_bound(acc_bound, e))


@dataclass
class _Line:
    """The delay line of one operator: ``delays`` are its distinct delay values (the
    contributions of one step come as ``[B, K, *shape]`` in that order); the state
    ``[B, max(delays), *shape]`` enters as ``state_in`` and leaves as ``state_out``."""

    delays: tuple[int, ...]
    shape: tuple[int, ...]
    state_in: str
    state_out: str

    @property
    def depth(self) -> int:
        return max(self.delays)


def _delay_line(b: _Builder, contrib: str, line: _Line, hint: str) -> str:
    """Add this step's contributions ``[B, K, *shape]`` (one per delay value) to the
    pending sums and return what falls due now ``[B, *shape]``.

    ``state_in[:, k]`` holds the sum due ``k`` steps from now; with one zero slot appended
    it is ``[B, D + 1, *shape]``, and the contribution with delay ``d`` is added to slot
    ``d`` (a Gather of the contributions, a zero slot where no synapse has that delay).
    Slot 0 is due now; slots ``1..D`` are the next state, all in int64."""
    rank = 2 + len(line.shape)
    pad_end = [0] * rank + [0, 1] + [0] * (rank - 2)  # one zero slot at the end of axis 1
    pads = b.const(pad_end)
    full = list(range(line.depth + 1))
    if list(line.delays) == full:
        spread = contrib  # every slot has a delay value, in slot order already
    else:
        where = {d: i for i, d in enumerate(line.delays)}
        idx = [where.get(k, len(line.delays)) for k in full]
        padded = b.op("Pad", [contrib, pads], hint, mode="constant")
        spread = b.op("Gather", [padded, b.const(idx)], hint, axis=1)
    pending = b.op("Pad", [line.state_in, pads], hint, mode="constant")
    tot = b.op("Add", [pending, spread], hint)
    b.op("Slice", [tot, b.const([1]), b.const([line.depth + 1]), b.const([1])], hint,
         out=line.state_out)
    due = b.op("Gather", [tot, b.const([0])], hint, axis=1)  # [B, 1, *shape]
    return b.op("Squeeze", [due, b.const([1])], hint)


def _build_conv(b: _Builder, node: ConvNode, x: _Value, dtype_req: str,
                dtypes: dict[str, str], line: _Line | None) -> _Value:
    w = np.asarray(node.weight, dtype=np.int64)  # used as stored: no clip, no truncation
    c_out, c_in_g, kh, kw = (int(s) for s in w.shape)
    groups = int(node.groups)
    c_out_g = c_out // groups
    acc_bound = int(np.abs(w).reshape(c_out, -1).sum(axis=1).max()) * x.bound if w.size else 0
    dt = _linear_dtype(dtype_req, acc_bound, x.bound, f"node '{node.name}' (conv)")
    dtypes[node.name] = dt
    hint = node.name
    in_shape = tuple(int(s) for s in node.input_shape)
    _, oh, ow = (int(s) for s in node.out_shape)
    # channels[g, c] = the input channel read by the c-th channel of group g
    chans = np.arange(groups)[:, None] * c_in_g + np.arange(c_in_g)[None, :]
    idx, sentinel = _gather_index(in_shape, chans, (kh, kw), tuple(node.stride),
                                  tuple(node.padding), tuple(node.dilation), (oh, ow))
    idx = idx.reshape(groups, c_in_g * kh * kw, oh * ow)  # rows (c, i, j) as W.reshape
    xf = b.reshape(x.name, (-1,), hint)
    if dt != "int64":
        xf = b.cast(xf, dt, hint)
    if sentinel:  # one zero column at the end for every padded tap
        xf = b.op("Pad", [xf, b.const([0, 0, 0, 1])], hint, mode="constant")
    cols = b.op("Gather", [xf, b.const(idx, hint=f"{hint}/im2col")], hint, axis=1)
    wg = b.const(w.reshape(groups, c_out_g, c_in_g * kh * kw), _NP_OF[dt], f"{hint}/weight")
    acc = b.op("MatMul", [wg, cols], hint)  # [G, Co/G, K] @ [B, G, K, L] -> [B, G, Co/G, L]
    if dt != "int64":
        acc = b.cast(acc, "int64", hint)
    acc = b.reshape(acc, (c_out, oh, ow), hint)
    e = int(node.weight_exp)
    out = b.wrap24(b.shift(acc, e, hint), hint)
    if line is not None:  # one delay for the node: the wrapped output waits in the line
        one = b.op("Unsqueeze", [out, b.const([1])], hint)
        out = _delay_line(b, one, line, hint)
    return _Value(out, (c_out, oh, ow), min(_shift_bound(acc_bound, e), _U_MAX))


def _build_sumpool(b: _Builder, node: SumPoolNode, x: _Value) -> _Value:
    hint = node.name
    in_shape = tuple(int(s) for s in node.input_shape)
    c, oh, ow = (int(s) for s in node.out_shape)
    kh, kw = (int(s) for s in node.kernel_size)
    idx, sentinel = _gather_index(in_shape, np.arange(c), (kh, kw), tuple(node.stride),
                                  tuple(node.padding), (1, 1), (oh, ow))  # [C, kk, L]
    xf = b.reshape(x.name, (-1,), hint)
    if sentinel:
        xf = b.op("Pad", [xf, b.const([0, 0, 0, 1])], hint, mode="constant")
    win = b.op("Gather", [xf, b.const(idx, hint=f"{hint}/window")], hint, axis=1)
    s = b.op("ReduceSum", [win, b.const([2])], hint, keepdims=0)  # int64: exact
    return _Value(b.reshape(s, (c, oh, ow), hint), (c, oh, ow), kh * kw * x.bound)


def _overflow(b: _Builder, x: str, bits: int, rule: str, hint: str, out: str | None = None
              ) -> str:
    """docs/qgraph.md overflow of an ``bits``-bit register: ``saturate`` clips to
    ``+-(2^(bits-1) - 1)``; ``wrap`` applies one conditional correction each way, as
    written (not a modulo; +2^(bits-1) is kept)."""
    half = 1 << (bits - 1)
    if rule == "saturate":
        return b.op("Clip", [x, b.const(-(half - 1)), b.const(half - 1)], hint, out=out)
    x2 = b.op("Where", [b.op("Greater", [x, b.const(half)], hint),
                        b.op("Sub", [x, b.const(2 * half)], hint), x], hint)
    return b.op("Where", [b.op("LessOrEqual", [x2, b.const(-half)], hint),
                          b.op("Add", [x2, b.const(2 * half)], hint), x2], hint, out=out)


def _build_lif(b: _Builder, node: LIFNode, a: str, u: str, v: str,
               names: dict[str, str], f: NumberFormats, rest: str | None = None) -> None:
    """One LIF step on int64 (docs/qgraph.md "LIF step") in the graph's formats ``f``;
    writes the outputs named in ``names`` (``u``, ``v``, ``s``). ``rest``: a bool
    ``[B, 1, ...]`` (:func:`_rest_mask`), true in the samples whose step starts from
    ``u = v = 0`` (docs/qgraph.md "Periodic state reset"); None: never."""
    hint = node.name
    u, v = _from_rest(b, u, rest, hint), _from_rest(b, v, rest, hint)
    shape = tuple(int(s) for s in node.shape)
    one, db, sh = 1 << f.decay_bits, f.decay_bits, f.activation_shift
    du_f = one - (int(node.du) + 1)  # du + 1: Lava's offset; du = -1: no decay
    dv_f = one - int(node.dv)
    a6 = b.op("Mul", [a, b.const(1 << sh)], hint)
    if du_f == 0:  # du = 2^db - 1: no synaptic memory, rtz(u * 0) = 0
        u1 = a6
    else:
        ud = u if du_f == one else b.rtz(b.op("Mul", [u, b.const(du_f)], hint), db, hint)
        u1 = b.op("Add", [ud, a6], hint)
    u3 = _overflow(b, u1, f.u_bits, f.u_overflow, hint, out=names["u"])
    vd = v if dv_f == one else b.rtz(b.op("Mul", [v, b.const(dv_f)], hint), db, hint)
    v1 = b.op("Add", [vd, u3], hint)
    bias = node.bias()  # bias_mant << bias_exp, the floor shift for a negative exponent
    if np.any(bias):
        v1 = b.op("Add", [v1, b.const(bias.reshape(shape), hint=f"{hint}/bias")], hint)
    v2 = _overflow(b, v1, f.v_bits, f.v_overflow, hint)
    th = int(node.vth) << sh
    if int(node.max_spikes) > 1:
        _multi_spike(b, v2, th, int(node.max_spikes), names, f, hint)
        return
    cmp = "GreaterOrEqual" if f.threshold_compare == ">=" else "Greater"
    s = b.op(cmp, [v2, b.const(th)], hint)
    # reset of v only (u is not reset): to 0, or minus the threshold
    v_reset = b.const(0) if f.reset == "zero" else b.op("Sub", [v2, b.const(th)], hint)
    b.op("Where", [s, v_reset, v2], hint, out=names["v"])
    b.op("Cast", [s], hint, out=names["s"], to=TensorProto.INT64)


def _from_rest(b: _Builder, x: str, rest: str | None, hint: str) -> str:
    """``x`` with 0 where ``rest`` holds: the state a periodic reset starts the step from."""
    return x if rest is None else b.op("Where", [rest, b.const(0), x], hint)


def _rest_mask(b: _Builder, step: str, interval: int, offset: int, rank: int) -> str:
    """``Mod(step, interval) == offset`` as a bool ``[B, 1 x rank]`` that broadcasts over a
    LIF's state; ``step`` (int64 ``[B]``, non-negative) is each sample's step index, so
    ``Mod`` sees no negative operand."""
    hint = f"reset{interval}/{offset}"
    phase = b.op("Mod", [step, b.const(interval)], hint, fmod=0)
    due = b.op("Equal", [phase, b.const(offset)], hint)
    return b.reshape(due, (1,) * rank, hint) if rank else due


def _multi_spike(b: _Builder, v: str, th: int, max_spikes: int, names: dict[str, str],
                 f: NumberFormats, hint: str) -> None:
    """docs/qgraph.md "Multi-spike output": ``n = min(max_spikes, floor(v / TH))`` if
    ``v >= TH`` (``floor((v - 1) / TH)`` if ``v > TH`` for ``">"``), else 0; then v reset
    to 0 where ``n > 0`` or ``v - n * TH``. The dividend is clamped at 0 (0 below the
    threshold, and Div only ever sees a non-negative dividend: no rounding question)."""
    num = v if f.threshold_compare == ">=" else b.op("Sub", [v, b.const(1)], hint)
    q = b.op("Div", [b.op("Max", [num, b.const(0)], hint), b.const(th)], hint)
    n = b.op("Min", [q, b.const(max_spikes)], hint, out=names["s"])
    if f.reset == "zero":
        b.op("Where", [b.op("Greater", [n, b.const(0)], hint), b.const(0), v], hint,
             out=names["v"])
    else:
        b.op("Sub", [v, b.op("Mul", [n, b.const(th)], hint)], hint, out=names["v"])


# ----- export of the integer step model ---------------------------------------------------------
def _check_kinds(graph: QGraph) -> None:
    """Refuse any node this exporter does not implement, by name and kind."""
    for name, node in graph.nodes.items():
        kind = getattr(node, "kind", type(node).__name__)
        if kind not in _KIND_TYPES or not isinstance(node, _KIND_TYPES[kind]):
            raise GraphError(
                f"ONNX export of node '{name}' ({kind}) is not supported; "
                f"supported: {', '.join(SUPPORTED_KINDS)}"
            )


def _check_formats(graph: QGraph) -> None:
    """Refuse formats whose decay products ``u · (2^decay_bits - du - 1)`` (or ``v · ...``)
    could leave int64: ``u_bits + decay_bits`` and ``v_bits + decay_bits`` at most 62."""
    f = graph.formats
    key = f.int64_decay_overflow()
    if key is not None:
        raise GraphError(
            f"ONNX export cannot run target '{graph.target}': {key} {getattr(f, key)} with "
            f"decay_bits {f.decay_bits} overflows the 64-bit decay products "
            f"({key} + decay_bits must be <= 62)"
        )


def check_opset(opset: int) -> int:
    """``opset`` as an int if this onnx package and the integer model support it, else
    :class:`ConfigError` (also used by the float exporter)."""
    top = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= int(opset) <= top:
        raise ConfigError(f"ONNX opset {opset} unsupported: use {MIN_OPSET}..{top}")
    return int(opset)


def _step_io_names(graph: QGraph) -> dict[str, Any]:
    """The step model's I/O names (docs/onnx.md); refuses node names that would collide."""
    lifs = [n.name for n in graph.lif_nodes]
    used_sources: list[str] = []
    for name in lifs:
        for p in graph.synapse_paths(name):
            if p[0] not in used_sources:
                used_sources.append(p[0])
    delayed = [name for name in _path_ops(graph) if max_delay(graph.nodes[name]) > 0]
    inp = graph.input_node.name
    # the step counter exists only where a LIF needs the step index (periodic reset);
    # no node-derived name lacks a '.', so these cannot clash with them
    counted = any(int(n.reset_interval) > 0 for n in graph.lif_nodes)
    names = {
        "x": "x",
        "u_in": {n: f"{n}.u" for n in lifs},
        "v_in": {n: f"{n}.v" for n in lifs},
        "s_prev": {n: f"{n}.s_prev" for n in used_sources},
        "d_in": {n: f"{n}.delay" for n in delayed},
        "u_out": {n: f"{n}.u_next" for n in lifs},
        "v_out": {n: f"{n}.v_next" for n in lifs},
        "s_out": {n: f"{n}.s" for n in [*lifs, inp]},
        "d_out": {n: f"{n}.delay_next" for n in delayed},
        "step": {"step": "step_next"} if counted else {},
    }
    flat = ["x"]
    for key in ("u_in", "v_in", "s_prev", "d_in", "u_out", "v_out", "s_out", "d_out"):
        flat += list(names[key].values())
    flat += [*names["step"], *names["step"].values()]
    if len(set(flat)) != len(flat):
        dup = sorted({n for n in flat if flat.count(n) > 1})
        raise GraphError(f"node names give clashing ONNX input/output names {dup}; rename them")
    return names


def _path_ops(graph: QGraph) -> list[str]:
    """The synaptic operators on any synapse path, each once, in graph order."""
    on_path = {op for lif in graph.lif_nodes for p in graph.synapse_paths(lif.name)
               for op in p[1:]}
    return [name for name in graph.nodes if name in on_path]


def _line_of(node: DenseNode | ConvNode, names: dict[str, Any]) -> _Line | None:
    """The delay line of a delayed dense/conv operator (None without delays)."""
    if node.name not in names["d_in"]:
        return None
    if isinstance(node, DenseNode):
        d = np.asarray(node.delay, np.int64)
        delays = tuple(int(k) for k in np.unique(d))
    else:
        delays = (int(node.delay),)
    return _Line(delays, tuple(int(s) for s in node.out_shape), names["d_in"][node.name],
                 names["d_out"][node.name])


@dataclass
class _Step:
    """The built step graph: nodes/initializers in ``b``, its I/O value infos, the state
    map (output -> input of the next step), per-LIF shapes and the linear dtypes."""

    b: _Builder
    inputs: list[onnx.ValueInfoProto]
    outputs: list[onnx.ValueInfoProto]
    state: dict[str, str]
    shapes: dict[str, tuple[int, ...]]
    dtypes: dict[str, str]


def _build_step(graph: QGraph, linear_dtype: str) -> _Step:
    """Build one integer time step of ``graph`` (docs/qgraph.md) into a fresh builder."""
    io_names = _step_io_names(graph)
    inp = graph.input_node
    b = _Builder()
    dtypes: dict[str, str] = {}

    def vi(name: str, shape: tuple[int, ...]) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name, TensorProto.INT64, ["B", *shape])

    in_bound = 1 if inp.message_bits == 0 else 2**inp.message_bits - 1
    shapes = {n.name: tuple(int(s) for s in n.shape) for n in [inp, *graph.lif_nodes]}
    bounds = {inp.name: in_bound, **{n.name: int(n.max_spikes) for n in graph.lif_nodes}}
    sources: dict[str, _Value] = {  # a multi-spike count is a graded payload up to max_spikes
        src: _Value(name, shapes[src], bounds[src]) for src, name in io_names["s_prev"].items()
    }
    built: dict[str, _Value] = {}  # op name -> its output (an op has one input, built once)
    masks: dict[tuple[int, int, int], str] = {}  # periodic reset masks, shared by LIFs

    def value_of(name: str) -> _Value:
        if name in sources:
            return sources[name]
        if name in built:
            return built[name]
        node = graph.nodes[name]
        x = value_of(graph.predecessors(name)[0])
        if isinstance(node, DenseNode):
            out = _build_dense(b, node, x, linear_dtype, dtypes, graph.formats,
                               _line_of(node, io_names))
        elif isinstance(node, ConvNode):
            out = _build_conv(b, node, x, linear_dtype, dtypes, _line_of(node, io_names))
        elif isinstance(node, SumPoolNode):
            out = _build_sumpool(b, node, x)
        elif isinstance(node, FlattenNode):
            out = _Value(b.reshape(x.name, (-1,), name), tuple(node.out_shape), x.bound)
        else:  # validate() guarantees only synaptic operators lie inside a path
            raise GraphError(f"node '{name}' ({node.kind}) cannot sit on a synapse path")
        built[name] = out
        return out

    for node in graph.lif_nodes:
        shape = shapes[node.name]
        terms: list[str] = []
        a_bound = 0
        for syn_path in graph.synapse_paths(node.name):
            val = value_of(syn_path[-1]) if len(syn_path) > 1 else sources[syn_path[0]]
            a_bound += val.bound
            terms.append(val.name if val.shape == shape else b.reshape(val.name, shape,
                                                                        node.name))
        # a << shift plus the decayed state must stay far inside int64.
        fm = graph.formats
        if (a_bound << fm.activation_shift) + 4 * (1 << fm.u_bits) >= _INT64_SAFE:
            raise GraphError(
                f"node '{node.name}' (lif): synaptic input can reach {a_bound}, too large for "
                "64-bit integer state; reduce weights or weight_exp upstream"
            )
        a = terms[0]
        for t in terms[1:]:
            a = b.op("Add", [a, t], node.name)
        rest = None
        if int(node.reset_interval) > 0:  # one mask per (interval, offset, rank)
            key = (int(node.reset_interval), int(node.reset_offset), len(shape))
            if key not in masks:
                masks[key] = _rest_mask(b, "step", *key)
            rest = masks[key]
        _build_lif(b, node, a, io_names["u_in"][node.name], io_names["v_in"][node.name],
                   {"u": io_names["u_out"][node.name], "v": io_names["v_out"][node.name],
                    "s": io_names["s_out"][node.name]}, fm, rest)
    b.op("Identity", ["x"], inp.name, out=io_names["s_out"][inp.name])
    for counter, counter_next in io_names["step"].items():
        b.op("Add", [counter, b.const(1)], "step", out=counter_next)

    inputs = [vi("x", shapes[inp.name])]
    for n in io_names["u_in"]:
        inputs += [vi(io_names[k][n], shapes[n]) for k in ("u_in", "v_in")]
    inputs += [vi(io_names["s_prev"][n], shapes[n]) for n in io_names["s_prev"]]
    lines = {n: _line_of(graph.nodes[n], io_names) for n in io_names["d_in"]}
    inputs += [vi(ln.state_in, (ln.depth, *ln.shape)) for ln in lines.values()]
    inputs += [vi(counter, ()) for counter in io_names["step"]]
    outputs = []
    for n in io_names["u_out"]:
        outputs += [vi(io_names[k][n], shapes[n]) for k in ("u_out", "v_out", "s_out")]
    outputs.append(vi(io_names["s_out"][inp.name], shapes[inp.name]))
    outputs += [vi(ln.state_out, (ln.depth, *ln.shape)) for ln in lines.values()]
    outputs += [vi(counter_next, ()) for counter_next in io_names["step"].values()]
    state = {}
    for n in io_names["u_in"]:
        state[io_names["u_out"][n]] = io_names["u_in"][n]
        state[io_names["v_out"][n]] = io_names["v_in"][n]
    state.update({io_names["s_out"][n]: io_names["s_prev"][n] for n in io_names["s_prev"]})
    state.update({ln.state_out: ln.state_in for ln in lines.values()})
    state.update({nxt: counter for counter, nxt in io_names["step"].items()})
    return _Step(b, inputs, outputs, state, shapes, dtypes)


def _spike_type(node: LIFNode) -> int:
    """Recorded type of what a LIF emits: uint8 (0/1, or counts up to 255), else int32."""
    return TensorProto.UINT8 if int(node.max_spikes) <= 255 else TensorProto.INT32


def _scan_graph(step: _Step, graph: QGraph) -> tuple[onnx.GraphProto, list, list]:
    """Wrap the step graph as the body of an ONNX ``Scan`` over the leading time axis of
    ``frames`` [N, B, *input_shape]; zero initial state (u, v, s_prev, delay lines, step
    counter); per-LIF uint8 spikes out (int32 counts for ``max_spikes > 255``)."""
    b = step.b
    by_name = {v.name: v for v in [*step.inputs, *step.outputs]}
    lifs = [n.name for n in graph.lif_nodes]
    spike_outs = []
    types = {n.name: _spike_type(n) for n in graph.lif_nodes}
    for n in lifs:  # uint8 scan outputs: 8x less memory than the int64 state spikes
        b.op("Cast", [f"{n}.s"], n, out=f"{n}.s_u8", to=types[n])
        spike_outs.append(helper.make_tensor_value_info(f"{n}.s_u8", types[n],
                                                        ["B", *step.shapes[n]]))
    # Scan body I/O order: the N state variables, then the scan input / scan outputs.
    body_in = [by_name[i] for i in step.state.values()] + [by_name["x"]]
    body_out = [by_name[o] for o in step.state] + spike_outs
    body = helper.make_graph(b.nodes, "snn2hw_step", body_in, body_out, b.inits)

    outer = _Builder(prefix="loop/")
    in_shape = step.shapes[graph.input_node.name]
    batch = outer.op("Gather", [outer.op("Shape", ["frames"], "shape"), outer.const([1])],
                     "batch", axis=0)
    init_states = []
    for in_name in step.state.values():
        shape = tuple(by_name[in_name].type.tensor_type.shape.dim[1:])
        dims = [int(d.dim_value) for d in shape]
        full = outer.op("Concat", [batch, outer.const(dims)], "state_shape", axis=0)
        init_states.append(outer.op("ConstantOfShape", [full], "zeros",
                                    value=numpy_helper.from_array(np.zeros(1, np.int64))))
    finals = [outer.fresh("final") for _ in step.state]
    spikes = [f"{n}.spikes" for n in lifs]
    outer.nodes.append(helper.make_node(
        "Scan", [*init_states, "frames"], [*finals, *spikes], name="loop/scan",
        body=body, num_scan_inputs=1,
    ))
    inputs = [helper.make_tensor_value_info("frames", TensorProto.INT64,
                                            ["N", "B", *in_shape])]
    outputs = [helper.make_tensor_value_info(f"{n}.spikes", types[n],
                                             ["N", "B", *step.shapes[n]]) for n in lifs]
    body_names = {o for nd in b.nodes for o in nd.output} | {i.name for i in body_in}
    outer_names = {"frames", *spikes, *(o for nd in outer.nodes for o in nd.output),
                   *(t.name for t in outer.inits)}
    clash = body_names & outer_names
    if clash:
        raise GraphError(f"node names give clashing ONNX names {sorted(clash)}; rename them")
    g = helper.make_graph(outer.nodes, "snn2hw_scan", inputs, outputs, outer.inits,
                          doc_string="The integer time loop of a snn2hw quantized graph as "
                                     "one ONNX Scan over the step model (docs/onnx.md).")
    return g, inputs, outputs


def export_qgraph_onnx(
    graph: QGraph,
    path: str | Path,
    *,
    opset: int = 17,
    linear_dtype: str = "auto",
    time_loop: bool = False,
) -> OnnxExportInfo:
    """Write ONE integer time step of ``graph`` as an ONNX model with explicit state
    (docs/onnx.md), bit-exact with docs/qgraph.md, atomically to ``path``.

    Inputs: ``x`` int64 ``[B, *input_shape]`` (this step's frame), ``<lif>.u``/``<lif>.v``
    int64 ``[B, *shape]`` per LIF, ``<src>.s_prev`` int64 (the previous step's output of
    every source that feeds a synapse path). Outputs: ``<lif>.u_next``, ``<lif>.v_next``,
    ``<lif>.s`` per LIF and ``<input>.s`` (this step's frame, the next ``s_prev``).

    ``time_loop=True`` writes the whole run instead: the same step as the body of an ONNX
    ``Scan``; input ``frames`` int64 ``[N, B, *input_shape]`` (one frame per step, zeros
    after the last real frame), outputs ``<lif>.spikes`` uint8 ``[N, B, *shape]`` (int32 for
    a multi-spike LIF with ``max_spikes > 255``). Synaptic delays become delay-line state
    tensors ``<op>.delay`` / ``<op>.delay_next``; a multi-spike LIF's ``<lif>.s`` is its
    count (docs/onnx.md "Synaptic delays and multi-spike output"). A graph with periodic
    state reset gets the step counter ``step`` / ``step_next`` int64 ``[B]`` (docs/onnx.md
    "Periodic state reset").
    ``linear_dtype``: "auto" (per-operator proven-exact choice; module doc) or force
    "float32"/"float64"/"int64" (refused where not provably exact).
    Raises :class:`GraphError` for unsupported node kinds or unrepresentable graphs."""
    opset = check_opset(opset)
    if linear_dtype not in _LINEAR_DTYPES:
        raise ConfigError(f"linear_dtype {linear_dtype!r} unknown; use one of {_LINEAR_DTYPES}")
    _check_kinds(graph)  # before validate(): name the unsupported node, not a side effect
    graph.validate()
    _check_formats(graph)
    inp = graph.input_node
    step = _build_step(graph, linear_dtype)
    meta = {
        "format": SCAN_FORMAT if time_loop else STEP_FORMAT,
        "version": str(FORMAT_VERSION),
        "num_steps": str(int(graph.num_steps)),
        "depth": str(int(graph.depth())),
        "dt": repr(float(graph.dt)),
        "target": str(graph.target),
        "formats": json.dumps(graph.formats.to_dict()),
        "input": inp.name,
        "input_shape": json.dumps(list(step.shapes[inp.name])),
        "message_bits": str(int(inp.message_bits)),
        "lif_nodes": json.dumps([n.name for n in graph.lif_nodes]),
        "lif_shapes": json.dumps({n.name: list(step.shapes[n.name]) for n in graph.lif_nodes}),
        "max_spikes": json.dumps({n.name: int(n.max_spikes) for n in graph.lif_nodes}),
        "node_names": json.dumps(list(graph.nodes)),
        "outputs": json.dumps({o.name: graph.source_of_output(o.name)
                               for o in graph.output_nodes}),
        "state": json.dumps(step.state),
        "linear_dtypes": json.dumps(step.dtypes),
    }
    if time_loop:
        g, inputs, outputs = _scan_graph(step, graph)
        lead: list[int | str] = ["N", "B"]
    else:
        g = helper.make_graph(step.b.nodes, "snn2hw_step", step.inputs, step.outputs,
                              step.b.inits,
                              doc_string="One integer time step of a snn2hw quantized graph "
                                         "(docs/onnx.md); state in, state out.")
        inputs, outputs, lead = step.inputs, step.outputs, ["B"]
    model = _finish_model(g, opset, meta)
    save_model(model, path)
    skip = len(lead)
    return OnnxExportInfo(
        path=Path(path), format=meta["format"], opset=opset,
        inputs={i.name: [*lead, *_static_dims(i, skip)] for i in inputs},
        outputs={o.name: [*lead, *_static_dims(o, skip)] for o in outputs},
        metadata=meta, state=step.state, linear_dtypes=step.dtypes,
    )


def _static_dims(v: onnx.ValueInfoProto, skip: int) -> list[int]:
    """Static dims of a value info after its ``skip`` leading symbolic dims."""
    return [int(d.dim_value) for d in v.type.tensor_type.shape.dim[skip:]]


def _finish_model(g: onnx.GraphProto, opset: int, meta: dict[str, str]) -> onnx.ModelProto:
    opsets = [helper.make_opsetid("", opset)]
    # The lowest IR version that carries this opset, so older runtimes can load the file.
    model = helper.make_model(g, opset_imports=opsets, producer_name="snn2hw",
                              ir_version=helper.find_min_ir_version_for(opsets))
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    return model


def save_model(model: onnx.ModelProto, path: str | Path) -> None:
    """Write ``model`` to ``path`` atomically (no partial file on error)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(model.SerializeToString())
