"""Quantized-graph node kinds, their legal integer ranges and their shapes.

Each node class states in its docstring the integer arithmetic it stands for, restating
``docs/qgraph.md`` (which cites Lava's models); the backends implement that
arithmetic, this module does not execute anything. Notation used below:
``rtz(x, k) = sign(x) * (|x| >> k)`` (truncation toward zero), ``shift(x, e) = x << e``
if ``e >= 0`` else ``x >> -e`` (arithmetic, i.e. floor), ``wrap24(x)`` the signed 24-bit
two's-complement value of ``x``. All arithmetic is on int64.

Sources of spikes: :class:`InputNode` and :class:`LIFNode`. Stateless synaptic operators:
:class:`DenseNode`, :class:`ConvNode`, :class:`SumPoolNode`, :class:`FlattenNode`.
Sink: :class:`OutputNode`. Every path from a source to a :class:`LIFNode` passes only
through synaptic operators and costs exactly one time step (the Loihi hop delay).

Dependencies: numpy and :mod:`snn2hw.common` only. Range checks live in
:mod:`snn2hw.quant.validation`, file I/O in :mod:`snn2hw.quant.qgraph_file`, the graph
container in :mod:`snn2hw.quant.qgraph`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from snn2hw.common.units import DECAY_SCALE

# Declared Loihi ranges (docs/qgraph.md "Register ranges"); checked by snn2hw.quant.validation.
U_V_BITS = 24
DECAY_MAX = DECAY_SCALE - 1  # 12-bit decay registers: 0..4095
VTH_MAX = 131071  # 17-bit threshold mantissa
BIAS_MANT_MIN, BIAS_MANT_MAX = -4096, 4095
BIAS_EXP_MIN, BIAS_EXP_MAX = 0, 7
WEIGHT_EXP_MIN, WEIGHT_EXP_MAX = -7, 7  # docs/sources.md#loihi-arithmetic-formats
WEIGHT_MIN, WEIGHT_MAX = -256, 255  # 9-bit signed weights as stored
MESSAGE_BITS_MAX = 24  # graded input payloads
INT32_MAX = 2**31 - 1

__all__ = [
    "BIAS_EXP_MAX",
    "BIAS_EXP_MIN",
    "BIAS_MANT_MAX",
    "BIAS_MANT_MIN",
    "DECAY_MAX",
    "INT32_MAX",
    "MESSAGE_BITS_MAX",
    "NODE_TYPES",
    "SYNAPSE_KINDS",
    "U_V_BITS",
    "VTH_MAX",
    "WEIGHT_EXP_MAX",
    "WEIGHT_EXP_MIN",
    "WEIGHT_MAX",
    "WEIGHT_MIN",
    "ConvNode",
    "DenseNode",
    "FlattenNode",
    "InputNode",
    "LIFNode",
    "Node",
    "OutputNode",
    "SumPoolNode",
    "as_shape",
    "conv_out_size",
    "max_delay",
    "node_in_shape",
    "node_out_shape",
]


def as_shape(x: Any) -> tuple[int, ...]:
    """Normalise a shape-like value (int, list, array) to a tuple of ints."""
    return tuple(int(v) for v in np.atleast_1d(np.asarray(x)).tolist())


def conv_out_size(size: int, kernel: int, stride: int, padding: int, dilation: int = 1) -> int:
    """Output length of one spatial axis of a convolution or pooling window (PyTorch's
    formula; pooling is the ``dilation = 1`` case)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@dataclass
class InputNode:
    """External input, ``shape`` without T and B.

    At 0-based step n it emits frame n (zero once the input runs out).
    ``message_bits == 0``: binary spikes 0/1; ``> 0``: graded non-negative integer
    payloads ``0 <= x < 2^message_bits`` (at most 24 bits)."""

    name: str
    shape: tuple[int, ...]
    message_bits: int = 0
    kind: str = "input"


@dataclass
class DenseNode:
    """Fully connected synapses, Lava ``Dense`` fixed point (docs/qgraph.md).

    ``weight`` is int (N_out, N_in) in [-256, 255]. Weight preparation, once:

    1. sign mode: EXCITATORY if ``min(W) >= 0`` (all-zero counts as excitatory),
       INHIBITORY if ``max(W) <= 0``, else MIXED;
    2. clip: MIXED to [-256, 255], EXCITATORY to [0, 255], INHIBITORY to [-255, 0];
    3. truncate the low bits: ``k = 8 - num_weight_bits + (1 if MIXED else 0)``,
       ``W' = (W >> k) << k`` (floor shifts); INHIBITORY ``W' = -(((-W) >> k) << k)``.
       Example: mixed ``[7, -7]`` becomes ``[6, -8]``.

    Per step, on the (C-order flattened) input ``x``::

        out = shift(W' @ x, weight_exp)        # floor for weight_exp < 0, no saturation
    """

    name: str
    weight: np.ndarray
    weight_exp: int = 0
    num_weight_bits: int = 8
    delay: int | np.ndarray = 0
    """Extra steps on top of the one-step hop: an int for every synapse, or an int array of
    ``weight``'s shape (per synapse); docs/qgraph.md "Synaptic delays"."""
    kind: str = "dense"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[1]),)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(self.weight.shape[0]),)


@dataclass
class ConvNode:
    """2-D convolution, Lava ``Conv`` fixed point.

    ``weight`` int (C_out, C_in/groups, kH, kW), input (C, H, W). ``conv2d`` is PyTorch's
    cross-correlation with zero padding. Weights are used as stored (no clip, no
    truncation). Per step::

        out = wrap24(shift(conv2d(x, W), weight_exp))   # floor shift, then signed 24-bit wrap
    """

    name: str
    weight: np.ndarray
    input_shape: tuple[int, int, int]
    weight_exp: int = 0
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    delay: int = 0
    """Extra steps on top of the one-step hop, the same for every synapse of the node."""
    kind: str = "conv"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        _, h, w = self.input_shape
        kh, kw = self.weight.shape[2], self.weight.shape[3]
        oh = conv_out_size(h, kh, self.stride[0], self.padding[0], self.dilation[0])
        ow = conv_out_size(w, kw, self.stride[1], self.padding[1], self.dilation[1])
        return (int(self.weight.shape[0]), int(oh), int(ow))


@dataclass
class SumPoolNode:
    """Sum pooling over (C, H, W) inputs.

    Per step, per channel: the sum of each ``kernel_size`` window (zero padding,
    ``stride``) — exact integer sums, no weight exponent, no shift, no wrap."""

    name: str
    input_shape: tuple[int, int, int]
    kernel_size: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int] = (0, 0)
    kind: str = "sumpool"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        c, h, w = self.input_shape
        oh = conv_out_size(h, self.kernel_size[0], self.stride[0], self.padding[0])
        ow = conv_out_size(w, self.kernel_size[1], self.stride[1], self.padding[1])
        return (int(c), int(oh), int(ow))


@dataclass
class FlattenNode:
    """Row-major (C-order) flatten of ``input_shape`` to one dimension; values unchanged."""

    name: str
    input_shape: tuple[int, ...]
    kind: str = "flatten"

    @property
    def in_shape(self) -> tuple[int, ...]:
        return tuple(self.input_shape)

    @property
    def out_shape(self) -> tuple[int, ...]:
        return (int(np.prod(self.input_shape)),)


@dataclass
class LIFNode:
    """Loihi CUBA LIF population, fixed point (docs/qgraph.md "LIF step", ``PyLifModelBitAcc``).

    ``du`` (-1..4095), ``dv`` (0..4095), ``vth`` (0..131071) are one value per
    population; ``bias_mant`` (13-bit signed) and ``bias_exp`` (0..7) are int arrays of
    ``shape``. ``u`` and ``v`` start at 0 for each sample. Per step, per neuron, with
    ``a`` the summed synaptic input of this step::

        b = bias_mant << bias_exp
        u = rtz(u * (4096 - (du + 1)), 12) + (a << 6)
        u = u - 2^24 if u > 2^23;  u = u + 2^24 if u <= -2^23     # 24-bit wrap; +2^23 kept
        v = rtz(v * (4096 - dv), 12) + u + b
        v = clip(v, -(2^23 - 1), 2^23 - 1)                       # saturation
        s = v > (vth << 6)                                       # strict threshold
        v = 0 where s                                            # reset to 0; u is NOT reset

    These are Loihi's rules; the graph's formats may choose ``>=`` and reset by subtraction,
    and ``max_spikes > 1`` makes the output a count (docs/qgraph.md "Multi-spike output").

    The per-step decay factors are ``alpha = 1 - (du + 1)/4096`` and
    ``beta = 1 - dv/4096`` (:mod:`snn2hw.common.units`)."""

    name: str
    shape: tuple[int, ...]
    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: np.ndarray
    max_spikes: int = 1
    """Largest payload one neuron emits per step: 1 is a binary spike; above 1 the neuron is
    multi-spike (graded), docs/qgraph.md "Multi-spike output"."""
    reset_interval: int = 0
    """Periodic state reset (docs/qgraph.md "Periodic state reset"): 0 = none; else u and v
    are zeroed at the start of every step n with ``n % reset_interval == reset_offset``."""
    reset_offset: int = 0
    kind: str = "lif"

    def bias(self) -> np.ndarray:
        """``b`` per neuron (int64, ``shape``): ``bias_mant << bias_exp``, and the floor
        shift ``bias_mant >> -bias_exp`` for a negative exponent (docs/qgraph.md, Lava's
        ``scale_bias``; a numpy ``<<`` by a negative count is not that)."""
        m = np.asarray(self.bias_mant, dtype=np.int64)
        e = np.asarray(self.bias_exp, dtype=np.int64)
        return np.where(e >= 0, m << np.maximum(e, 0), m >> np.maximum(-e, 0))


@dataclass
class OutputNode:
    """Marks a LIF population whose spikes are the network output; computes nothing."""

    name: str
    shape: tuple[int, ...]
    kind: str = "output"


Node = InputNode | DenseNode | ConvNode | SumPoolNode | FlattenNode | LIFNode | OutputNode
SYNAPSE_KINDS = ("dense", "conv", "sumpool", "flatten")
NODE_TYPES: dict[str, type] = {
    "input": InputNode,
    "dense": DenseNode,
    "conv": ConvNode,
    "sumpool": SumPoolNode,
    "flatten": FlattenNode,
    "lif": LIFNode,
    "output": OutputNode,
}
"""Node class by its ``kind`` string (the ``kind`` field stored in a ``.qgraph`` file)."""


def node_out_shape(node: Node) -> tuple[int, ...]:
    """Shape of what ``node`` emits each step (spikes for sources, integers for synapses)."""
    if isinstance(node, (InputNode, LIFNode, OutputNode)):
        return tuple(node.shape)
    return node.out_shape


def node_in_shape(node: Node) -> tuple[int, ...]:
    """Shape ``node`` expects on its input edge(s)."""
    if isinstance(node, (LIFNode, OutputNode)):
        return tuple(node.shape)
    if isinstance(node, InputNode):
        return ()
    return node.in_shape


def max_delay(node: Node) -> int:
    """Largest synaptic delay ``node`` adds on top of the hop (0 for nodes without one)."""
    d = getattr(node, "delay", 0)
    if isinstance(d, np.ndarray):
        return int(d.max()) if d.size else 0
    return int(d)
