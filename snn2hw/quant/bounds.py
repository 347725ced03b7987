"""Worst-case integer ranges per LIF layer, against the limits of the Loihi 1 silicon.

snn2hw executes Lava's bit-accurate model of Loihi (docs/qgraph.md). The chip agrees
with that model only while a few values stay inside ranges the model does not enforce
(docs/loihi-edges.md, five edge rules, cross-checked against nengo-loihi's emulator in
``tests/crosscheck``):

1. the synaptic accumulator: the step's input sum ``q = a << 6`` (``a`` summed over
   every path into a neuron) holds 21 bits plus sign on the chip and wraps outside
   ``[-2^21, 2^21 - 1]``; Lava's model has no such register;
2. ``u + bias`` wraps to 24 bits on the chip before it reaches ``v``; Lava adds it into
   ``v`` and saturates, so they agree only while ``u + bias`` is in ``[-2^23, 2^23 - 1]``;
3. ``u`` at exactly ``+2^23`` (and ``-2^23``): Lava's wrap rule keeps ``+2^23`` (and turns
   ``-2^23`` into ``+2^23``), the chip's two's complement wraps ``+2^23`` to ``-2^23``; they
   agree for ``|u| <= 2^23 - 1`` before the wrap;
4. a negative ``weight_exp``: the chip shifts each synapse's weight, Lava shifts the sum;
   they agree for every input iff ``sum_i x_max_i * (W_i mod 2^k) < 2^k`` per neuron
   (``k = -weight_exp``, non-negative inputs: the floors lose the same amount);
5. with a large input sum Lava's ``u`` wrap subtracts ``2^24`` once and can leave the
   24-bit range; rule 1's limit already keeps ``|q| < 2^21``, far from that.

This module proves, per LIF layer of a :class:`~snn2hw.quant.qgraph.QGraph`, an
interval for ``a`` (hence ``q``), ``u`` and ``u + bias`` that holds for *every* input
the graph accepts (binary spikes, or graded payloads ``0 .. 2^bits - 1`` from the input
node; LIF sources are binary), by interval arithmetic over each synapse path (sum
pooling, dense, conv, flatten) with the effective weights, fan-in and ``weight_exp``,
and a geometric bound on ``u`` from the decay ``du``. :func:`layer_bounds` returns the
report, :func:`check_chip_limits` raises :class:`ChipLimitError` naming the layer and
the limit crossed.

Dependencies: numpy, torch (conv bounds), :mod:`snn2hw.common` and ``snn2hw.quant``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.common.units import ACT_SHIFT, DECAY_SCALE
from snn2hw.quant.nodes import (
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    SumPoolNode,
)
from snn2hw.quant.weights import effective_dense_weight

__all__ = [
    "LOIHI1",
    "ChipLimitError",
    "ChipLimits",
    "LayerBound",
    "PathBound",
    "METADATA_KEY",
    "bounds_table",
    "check_graph",
    "graph_limits",
    "limits_to_metadata",
    "shrink_factor",
    "check_chip_limits",
    "layer_bounds",
    "limits_from_formats",
]


class ChipLimitError(GraphError):
    """A layer's worst-case values can leave the range where Lava's model and the chip
    agree (docs/loihi-edges.md)."""


@dataclass(frozen=True)
class ChipLimits:
    """Where Lava's fixed-point model and the Loihi 1 silicon agree.

    ``accumulator_bits``: magnitude bits of the synaptic accumulator (21: ``q = a << 6``
    must lie in ``[-2^21, 2^21 - 1]``); ``u_bits``: width of ``u`` and of ``u + bias``
    (24, two's complement); ``per_synapse_weight_shift``: the chip applies a negative
    ``weight_exp`` to each synapse, so it must agree with Lava's shift of the sum."""

    accumulator_bits: int = 21
    u_bits: int = 24
    activation_shift: int = ACT_SHIFT
    per_synapse_weight_shift: bool = True
    u_bias_wraps: bool = True

    @property
    def acc_range(self) -> tuple[int, int]:
        """Legal ``q = a << 6`` (the chip's accumulator, in u units)."""
        return -(2**self.accumulator_bits), 2**self.accumulator_bits - 1

    @property
    def a_range(self) -> tuple[int, int]:
        """Legal ``a`` (the summed synaptic input before ``<< 6``): ``[-32768, 32767]``."""
        lo, hi = self.acc_range
        s = self.activation_shift
        return -((-lo) >> s), hi >> s

    @property
    def u_range(self) -> tuple[int, int]:
        """``u`` before the wrap: both wrap rules leave it alone (``±2^23`` excluded)."""
        m = 2 ** (self.u_bits - 1) - 1
        return -m, m

    @property
    def u_bias_range(self) -> tuple[int, int]:
        """``u + bias``: the chip's 24-bit register, where it equals Lava's exact sum."""
        h = 2 ** (self.u_bits - 1)
        return -h, h - 1


LOIHI1 = ChipLimits()
"""The Loihi 1 chip (nengo-loihi 1.1.0 ``Q_BITS = 21``, ``U_BITS = 23`` plus sign)."""


def limits_from_formats(formats: Mapping[str, Any] | Any) -> ChipLimits | None:
    """The chip limits a target's ``[formats]`` declares (``chip_accumulator_bits`` and
    friends, see snn2hw/chip/targets/data/loihi.toml), or ``None`` when it declares none
    (a target that is only Lava's model). Accepts the raw table or an object with those
    attributes."""

    def get(key: str, default: Any = None) -> Any:
        if isinstance(formats, Mapping):
            return formats.get(key, default)
        return getattr(formats, key, default)

    acc = get("chip_accumulator_bits")
    if acc is None:
        return None
    return ChipLimits(
        accumulator_bits=int(acc),
        u_bits=int(get("u_bits", 24)),
        activation_shift=int(get("activation_shift", ACT_SHIFT)),
        per_synapse_weight_shift=get("chip_weight_exp_shift", "per_synapse") == "per_synapse",
        u_bias_wraps=get("chip_u_bias_overflow", "wrap") == "wrap",
    )


# ----- the report --------------------------------------------------------------------------


@dataclass
class PathBound:
    """One synapse path into a layer: what it can deliver per step."""

    source: str
    weighted: str  # name of its last weighted node ('' for an identity path)
    weight_exp: int
    x_max: int  # largest value its source emits (1 for spikes)
    fan_in: int  # largest number of non-zero synapses into one neuron
    a_lo: int  # smallest / largest contribution to one neuron's ``a`` (both semantics)
    a_hi: int
    shift_loss: int  # max over neurons of sum x_max * (W mod 2^k); 0 for weight_exp >= 0
    shift_limit: int  # 2^k (they agree iff shift_loss < shift_limit)


@dataclass
class LayerBound:
    """Worst-case intervals of one LIF layer and the limits they are checked against."""

    name: str
    neurons: int
    du: int
    paths: list[PathBound]
    a_lo: int
    a_hi: int
    u_lo: float  # may be +-inf for du = -1 (no current decay)
    u_hi: float
    ub_lo: float
    ub_hi: float
    worst_neuron: int  # the neuron with the largest |q|
    limits: ChipLimits = field(default_factory=ChipLimits)

    @property
    def acc_lo(self) -> int:
        return self.a_lo << self.limits.activation_shift

    @property
    def acc_hi(self) -> int:
        return self.a_hi << self.limits.activation_shift

    @property
    def acc_abs(self) -> int:
        return max(-self.acc_lo, self.acc_hi)

    @property
    def ub_abs(self) -> float:
        return max(-self.ub_lo, self.ub_hi)

    def violations(self) -> list[str]:
        """One sentence per limit the layer's bound can cross (empty: inside)."""
        out: list[str] = []
        lim = self.limits
        lo, hi = lim.acc_range
        if self.acc_lo < lo or self.acc_hi > hi:
            out.append(
                f"synaptic input sum (a << {lim.activation_shift}) can reach "
                f"[{self.acc_lo}, {self.acc_hi}] (neuron {self.worst_neuron}) but the chip's "
                f"{lim.accumulator_bits}-bit-plus-sign accumulator holds [{lo}, {hi}] "
                "(edge rule 1)"
            )
        lo, hi = lim.u_range
        if self.u_lo < lo or self.u_hi > hi:
            out.append(
                f"u can reach [{_fmt(self.u_lo)}, {_fmt(self.u_hi)}] but Lava's wrap and the "
                f"chip's agree only on [{lo}, {hi}] (edge rules 3, 5)"
            )
        lo, hi = lim.u_bias_range
        if lim.u_bias_wraps and (self.ub_lo < lo or self.ub_hi > hi):
            out.append(
                f"u + bias can reach [{_fmt(self.ub_lo)}, {_fmt(self.ub_hi)}] but the chip "
                f"wraps it to {lim.u_bits} bits [{lo}, {hi}] where Lava saturates v "
                "(edge rule 2)"
            )
        if lim.per_synapse_weight_shift:
            for p in self.paths:
                if p.weight_exp < 0 and p.shift_loss >= p.shift_limit:
                    out.append(
                        f"weight_exp = {p.weight_exp} on '{p.weighted}': the chip shifts each "
                        "synapse, Lava the sum, and the floors can differ (sum of x_max · "
                        f"(W mod {p.shift_limit}) = {p.shift_loss} >= {p.shift_limit}; "
                        "edge rule 4)"
                    )
        return out

    @property
    def ok(self) -> bool:
        return not self.violations()

    def to_dict(self) -> dict[str, Any]:
        return {
            "layer": self.name,
            "neurons": self.neurons,
            "du": self.du,
            "weight_exps": [p.weight_exp for p in self.paths],
            "fan_in": max((p.fan_in for p in self.paths), default=0),
            "acc_range": [self.acc_lo, self.acc_hi],
            "acc_limit": list(self.limits.acc_range),
            "u_range": [self.u_lo, self.u_hi],
            "u_limit": list(self.limits.u_range),
            "u_bias_range": [self.ub_lo, self.ub_hi],
            "u_bias_limit": list(self.limits.u_bias_range),
            "violations": self.violations(),
        }


def _fmt(x: float) -> str:
    return str(int(x)) if math.isfinite(x) else ("inf" if x > 0 else "-inf")


def bounds_table(bounds: list[LayerBound], title: str = "") -> str:
    """A plain-text table: per layer the worst |q| and |u + bias| against the limits."""
    lim = bounds[0].limits if bounds else LOIHI1
    acc_max = lim.acc_range[1]
    ub_max = lim.u_bias_range[1]
    rows = [f"{title}" if title else ""]
    rows.append(
        f"{'layer':<24} {'fan-in':>6} {'w_exp':>8} {'max |q|':>10} {'/2^21':>6} "
        f"{'max |u+b|':>10} {'/2^23':>6}  status"
    )
    for b in bounds:
        exps = ",".join(str(p.weight_exp) for p in b.paths)
        fan = max((p.fan_in for p in b.paths), default=0)
        ub = b.ub_abs
        rows.append(
            f"{b.name[:24]:<24} {fan:>6} {exps[:8]:>8} {b.acc_abs:>10} "
            f"{b.acc_abs / (acc_max + 1):>6.2f} {_fmt(ub):>10} "
            f"{ub / (ub_max + 1):>6.2f}  {'inside' if b.ok else 'OUTSIDE'}"
        )
    return "\n".join(r for r in rows if r)


# ----- interval propagation ----------------------------------------------------------------


def _source_max(node: InputNode | LIFNode) -> int:
    if isinstance(node, InputNode) and node.message_bits > 0:
        return 2 ** int(node.message_bits) - 1
    return 1


def _shift(x: np.ndarray, e: int) -> np.ndarray:
    return x << e if e >= 0 else x >> (-e)


def _dense_interval(
    w: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    return wp @ lo + wn @ hi, wp @ hi + wn @ lo


def _conv(node: ConvNode, w: np.ndarray, x: np.ndarray) -> np.ndarray:
    import torch  # lazy: importing the bounds (the event backend does) must not load torch

    t = torch.from_numpy(x.astype(np.float64).reshape(1, *node.input_shape))
    y = torch.nn.functional.conv2d(
        t,
        torch.from_numpy(w.astype(np.float64)),
        stride=tuple(node.stride),
        padding=tuple(node.padding),
        dilation=tuple(node.dilation),
        groups=int(node.groups),
    )
    return np.rint(y.numpy().ravel()).astype(np.int64)  # exact: integers far below 2^53


def _conv_interval(
    node: ConvNode, w: np.ndarray, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    wp, wn = np.maximum(w, 0), np.minimum(w, 0)
    return (_conv(node, wp, lo) + _conv(node, wn, hi), _conv(node, wp, hi) + _conv(node, wn, lo))


def _pool(node: SumPoolNode, x: np.ndarray) -> np.ndarray:
    c = int(node.input_shape[0])
    k = np.ones((c, 1, *node.kernel_size), dtype=np.int64)
    fake = ConvNode("", k, tuple(node.input_shape), stride=tuple(node.stride),
                    padding=tuple(node.padding), groups=c)
    return _conv(fake, k, x)


def _weighted_bounds(
    node: DenseNode | ConvNode, lo: np.ndarray, hi: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """``(lo, hi, shift_loss, fan_in)`` of a weighted node's output, with both Lava's
    shift of the sum and the chip's per-synapse shift (for ``weight_exp < 0``)."""
    e = int(node.weight_exp)
    if isinstance(node, DenseNode):
        w = effective_dense_weight(node.weight, node.num_weight_bits)

        def apply(m: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _dense_interval(m, a, b)

        fan_in = int((w != 0).sum(axis=1).max(initial=0))
    else:
        w = np.asarray(node.weight, dtype=np.int64)

        def apply(m: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
            return _conv_interval(node, m, a, b)

        fan_in = int((w != 0).reshape(w.shape[0], -1).sum(axis=1).max(initial=0))
    s_lo, s_hi = apply(w, lo, hi)
    out_lo, out_hi = _shift(s_lo, e), _shift(s_hi, e)  # Lava: shift of the sum (monotone)
    loss = 0
    if e < 0:
        k = -e
        q = w >> k  # the chip: each synapse's weight shifted (floor)
        c_lo, c_hi = apply(q, lo, hi)
        out_lo, out_hi = np.minimum(out_lo, c_lo), np.maximum(out_hi, c_hi)
        xmax = np.maximum(np.abs(lo), np.abs(hi))
        rem = w - (q << k)  # W mod 2^k, in [0, 2^k)
        if np.any(lo < 0) and np.any(rem):
            loss = 2**62  # negative inputs: the floors need not agree at all
        else:
            loss = int(apply(rem, xmax, xmax)[1].max(initial=0))
    return out_lo, out_hi, loss, fan_in


def _path_bound(graph: Any, path: list[str]) -> tuple[PathBound, np.ndarray, np.ndarray]:
    src = graph.nodes[path[0]]
    x_max = _source_max(src)
    size = int(np.prod(src.shape))
    lo = np.zeros(size, dtype=np.int64)
    hi = np.full(size, x_max, dtype=np.int64)
    weighted, e, loss, fan_in = "", 0, 0, 1
    for name in path[1:]:
        node = graph.nodes[name]
        if isinstance(node, FlattenNode):
            continue
        if isinstance(node, SumPoolNode):
            lo, hi = _pool(node, lo), _pool(node, hi)
            continue
        if isinstance(node, (DenseNode, ConvNode)):
            lo, hi, l_k, fan_in = _weighted_bounds(node, lo, hi)
            loss = max(loss, l_k)
            weighted, e = name, int(node.weight_exp)
            continue
        raise GraphError(f"node '{name}' ({node.kind}) cannot sit on a synapse path")
    pb = PathBound(
        source=path[0],
        weighted=weighted,
        weight_exp=e,
        x_max=x_max,
        fan_in=fan_in,
        a_lo=int(lo.min(initial=0)),
        a_hi=int(hi.max(initial=0)),
        shift_loss=loss,
        shift_limit=2 ** (-e) if e < 0 else 1,
    )
    return pb, lo, hi


def _u_bound(q: np.ndarray, du: int) -> np.ndarray:
    """Largest |u| reachable with per-step input at most ``q`` (u units, one sign):
    ``|u_n| <= |u_{n-1}| · r / 4096 + q`` with ``r = 4096 - (du + 1)`` from ``u_0 = 0``,
    so ``|u| <= q · 4096 / (du + 1)`` (rtz only shrinks the decayed term)."""
    q = np.asarray(q, dtype=np.float64)
    if du + 1 <= 0:  # du = -1: no current decay, u integrates without bound
        return np.where(q > 0, np.inf, 0.0)
    return np.floor(q * DECAY_SCALE / (du + 1))


def layer_bound(graph: Any, lif: LIFNode, limits: ChipLimits = LOIHI1) -> LayerBound:
    """The worst-case report of one LIF node of ``graph``."""
    size = int(np.prod(lif.shape))
    a_lo = np.zeros(size, dtype=np.int64)
    a_hi = np.zeros(size, dtype=np.int64)
    paths: list[PathBound] = []
    for path in graph.synapse_paths(lif.name):
        pb, lo, hi = _path_bound(graph, path)
        if lo.size != size:
            raise GraphError(
                f"LIF '{lif.name}' has {size} neurons but path from '{path[0]}' delivers "
                f"{lo.size} values"
            )
        a_lo += lo
        a_hi += hi
        paths.append(pb)
    s = limits.activation_shift
    q_hi = np.maximum(a_hi, 0) << s
    q_lo = np.minimum(a_lo, 0) << s
    u_hi = _u_bound(q_hi, int(lif.du))
    u_lo = -_u_bound(-q_lo, int(lif.du))
    bm = np.asarray(lif.bias_mant, dtype=np.int64).ravel()
    be = np.asarray(lif.bias_exp, dtype=np.int64).ravel()
    bias = np.broadcast_to(bm << be, (size,)).astype(np.float64)
    worst = int(np.argmax(np.maximum(-q_lo, q_hi))) if size else 0
    return LayerBound(
        name=lif.name,
        neurons=size,
        du=int(lif.du),
        paths=paths,
        a_lo=int(a_lo.min(initial=0)),
        a_hi=int(a_hi.max(initial=0)),
        u_lo=float(u_lo.min(initial=0)),
        u_hi=float(u_hi.max(initial=0)),
        ub_lo=float((u_lo + bias).min(initial=0)),
        ub_hi=float((u_hi + bias).max(initial=0)),
        worst_neuron=worst,
        limits=limits,
    )


def layer_bounds(graph: Any, limits: ChipLimits = LOIHI1) -> list[LayerBound]:
    """One :class:`LayerBound` per LIF node of ``graph``, in graph order."""
    return [layer_bound(graph, lif, limits) for lif in graph.lif_nodes]


def check_chip_limits(graph: Any, limits: ChipLimits = LOIHI1) -> list[LayerBound]:
    """The per-layer report, or :class:`ChipLimitError` naming the first layer whose
    worst case crosses a limit (and every limit it crosses)."""
    bounds = layer_bounds(graph, limits)
    for b in bounds:
        why = b.violations()
        if why:
            raise ChipLimitError(
                f"layer '{b.name}': worst case leaves the range where Lava's model and the "
                f"Loihi 1 chip agree: {'; '.join(why)}. Lower the layer's weight exponent "
                "or threshold, or use binary (spike) input (docs/loihi-edges.md)"
            )
    return bounds


# ----- what PTQ and the backends call --------------------------------------------------------

METADATA_KEY = "chip_limits"
"""QGraph metadata entry carrying the target's chip limits (the ``chip_*`` keys of its
``[formats]``); written by PTQ, read by :func:`check_graph`."""


def graph_limits(graph: Any) -> ChipLimits | None:
    """The chip limits a quantized graph was made for (its metadata), if any."""
    meta = getattr(graph, "metadata", None) or {}
    table = meta.get(METADATA_KEY)
    return limits_from_formats(table) if table else None


def limits_to_metadata(limits: ChipLimits) -> dict[str, Any]:
    """The metadata form of ``limits`` (the ``[formats]`` keys :func:`limits_from_formats`
    reads)."""
    return {
        "chip_accumulator_bits": limits.accumulator_bits,
        "u_bits": limits.u_bits,
        "activation_shift": limits.activation_shift,
        "chip_weight_exp_shift": "per_synapse" if limits.per_synapse_weight_shift else "sum",
        "chip_u_bias_overflow": "wrap" if limits.u_bias_wraps else "saturate",
    }


def check_graph(graph: Any) -> list[LayerBound]:
    """What a backend calls before running a graph: :func:`check_chip_limits` with the
    graph's own chip limits; nothing (``[]``) for a graph made for a target without any."""
    limits = graph_limits(graph)
    return [] if limits is None else check_chip_limits(graph, limits)


def shrink_factor(bound: LayerBound) -> float:
    """By how much the layer's threshold (hence weights and bias) must shrink for its
    accumulator, u and u + bias bounds to fit (1.0 when they already do; 0.0 when no
    scale helps, e.g. du = -1 with input). Weight-exponent problems (rule 4) are not
    scale problems: PTQ avoids them with ``weight_exp >= 0``."""
    lim = bound.limits
    f = 1.0
    for val, top in (
        (bound.acc_abs, lim.acc_range[1]),
        (max(-bound.u_lo, bound.u_hi), lim.u_range[1]),
        (bound.ub_abs if lim.u_bias_wraps else 0.0, lim.u_bias_range[1]),
    ):
        if val > top:
            f = min(f, top / val if math.isfinite(val) else 0.0)
    return f
