"""A parsed netx network (:mod:`snn2hw.netx.reader`) as a quantized graph, integers unchanged.

netx files hold Loihi integers already (SLAYER quantizes in training); nothing is
re-quantized. Each block becomes what lava-dl's ``netx.hdf5.Network`` builds in Lava
(``src/lava/lib/dl/netx/hdf5.py``, ``blocks/process.py``, ``utils.py``, lava-dl d825ac5),
restated in docs/netx.md:

* CUBA / LOIHI neuron -> :class:`LIFNode` with ``du = iDecay - 1``, ``dv = vDecay``,
  ``vth = vThMant``, ``bias_mant = bias``, ``bias_exp = 6`` (``get_neuron_params``);
* ``dense`` -> :class:`DenseNode` with the weights, ``num_weight_bits`` and ``weight_exp``
  that netx's ``optimize_weight_bits`` gives Lava's ``Dense`` (the stored integer weights
  shifted left by ``s`` bits and the sum shifted right by ``s``: the product is the stored
  weights' own); a ``delay`` dataset -> ``DenseNode.delay`` per synapse;
* ``conv`` -> :class:`ConvNode`, weights as stored (Lava's ``Conv`` neither clips nor
  truncates), ``weight_exp = 0``;
* ``pool`` (SLAYER's weighted sum pool; netx itself raises NotImplementedError) -> a
  depthwise :class:`ConvNode` whose kernel is the pool weight everywhere;
* ``flatten`` -> :class:`FlattenNode` (C, H, W order, what netx's ``transpose([2, 1, 0])``
  of its W, H, C layout gives);
* ``input`` with a neuron -> :class:`InputNode` (graded) -> identity synapse -> LIF: the
  input block's neuron is driven through its current input ``a_in``;
* netx's ``Network(reset_interval=I, reset_offset=K)`` build options (``create_blocks``:
  every neuron layer j, 0-based in block order, gets ``LIFReset(reset_interval=I,
  reset_offset=K + 1 + j)``, Lava's time being 1-based) -> ``LIFNode.reset_interval = I``,
  ``reset_offset = (K + j + h) mod I``, with ``h = 1`` when the first block is an input
  block with a neuron (netx feeds that neuron directly, snn2hw through one synapse hop, so
  the whole network runs one step later here) and 0 otherwise (:func:`netx_reset_offsets`).

Anything snn2hw cannot execute exactly is refused with the layer index, the block name and
what would be needed (:class:`NetxError`); nothing is dropped silently.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snn2hw.netx.reader import NetxError, NetxLayer, NetxNetwork
from snn2hw.quant.formats import ARITHMETIC_FIELDS, LOIHI_FORMATS, NumberFormats
from snn2hw.quant.nodes import (
    BIAS_MANT_MAX,
    BIAS_MANT_MIN,
    DECAY_MAX,
    VTH_MAX,
    ConvNode,
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
)
from snn2hw.quant.qgraph import QGraph
from snn2hw.quant.weights import effective_dense_weight

NETX_BIAS_EXP = 6
"""netx gives every CUBA neuron ``bias_exp = 6`` (``Network.get_neuron_params``)."""
INPUT_BLOCK_MESSAGE_BITS = 8
"""Graded payload bits of the frames driving an input block's neuron (its ``a_in``)."""
DEFAULT_STEPS = 32
MAX_NETX_DELAY = 62  # netx's DelayDense max_delay

_NEURON_REFUSALS = {
    "SDNN": "a sigma-delta neuron (Lava Sigma/Delta/SigmaDelta processes); snn2hw's quantized "
            "graph has only the CUBA LIF",
    "RF": "a resonate-and-fire neuron (Lava RF / RF_IZ); snn2hw's quantized graph has only the "
          "CUBA LIF",
}


@dataclass
class NetxGraph:
    """The quantized graph of a netx file and what the mapping assumed (one line each)."""

    graph: QGraph
    notes: list[str] = field(default_factory=list)
    has_input_block: bool = False


def _int_array(layer: NetxLayer, key: str, path: Any) -> np.ndarray:
    a = np.asarray(layer.data[key])
    if not np.all(np.isfinite(a)) or np.any(a != np.round(a)):
        raise NetxError(f"{path}: {layer.label} '{key}' holds non-integer values; netx files "
                        "hold chip integers (quantize the network with SLAYER first)")
    return a.astype(np.int64)


def _scalar(value: Any) -> float:
    return float(np.asarray(value).reshape(-1)[0])


def _pair(layer: NetxLayer, key: str, default: int) -> tuple[int, int]:
    if key not in layer.data:
        return (default, default)
    v = np.atleast_1d(np.asarray(layer.data[key])).astype(np.int64).reshape(-1)
    if v.size == 1:
        return (int(v[0]), int(v[0]))
    if v.size != 2:
        raise NetxError(f"{layer.label}: '{key}' has {v.size} values, expected 1 or 2")
    return (int(v[0]), int(v[1]))  # stored (y, x) = (H, W); netx reverses it to W, H


def check_formats(formats: NumberFormats, target: str) -> None:
    """netx integers are Loihi's: refuse a target whose arithmetic differs from Lava's."""
    diff = [k for k in ARITHMETIC_FIELDS if getattr(formats, k) != getattr(LOIHI_FORMATS, k)]
    if diff:
        raise NetxError(
            f"target '{target}' differs from Loihi's arithmetic in {', '.join(diff)}; a netx "
            "network holds Loihi integers (use --target loihi or loihi2)"
        )


def neuron_params(layer: NetxLayer, path: Any, notes: list[str]) -> tuple[int, int, int]:
    """``(du, dv, vth)`` of a CUBA / LOIHI neuron group, or :class:`NetxError`."""
    nrn = layer.neuron
    if nrn is None:
        raise NetxError(
            f"{path}: {layer.label} has no neuron; netx would give it a non-leaky integrator "
            "(vDecay 4096, vThMant 2^17) that Loihi's 12-bit decay and 17-bit threshold "
            "registers cannot hold; add a CUBA neuron to the block"
        )
    kind = str(nrn.get("type", "CUBA"))
    if kind not in ("CUBA", "LOIHI"):
        why = next((v for k, v in _NEURON_REFUSALS.items() if kind.startswith(k) or k in kind),
                   f"neuron type '{kind}', which snn2hw's quantized graph (CUBA LIF only) "
                   "does not have")
        raise NetxError(f"{path}: {layer.label} uses {why}; it would need that neuron model "
                        "in docs/qgraph.md and every backend")
    for key in ("iDecay", "vDecay", "vThMant"):
        if key not in nrn:
            raise NetxError(f"{path}: {layer.label} neuron has no '{key}'")
    ref = int(_scalar(nrn.get("refDelay", 1)))
    if ref > 1:
        raise NetxError(
            f"{path}: {layer.label} neuron has refDelay {ref}: a refractory period, which "
            "snn2hw's LIF (and Lava's LIF that netx builds) does not have; it would need a "
            "refractory counter in docs/qgraph.md's LIF step"
        )
    if bool(_scalar(nrn.get("gradedSpike", 0))):
        raise NetxError(
            f"{path}: {layer.label} neuron has gradedSpike: its spikes carry the membrane "
            "voltage as payload (SLAYER's graded CUBA); snn2hw's graded LIF sends a threshold "
            "count (max_spikes), so it would need a voltage-payload neuron"
        )
    for key in ("vThStep", "thetaStep", "sinDecay", "cosDecay"):
        if key in nrn:
            raise NetxError(f"{path}: {layer.label} neuron has '{key}' (adaptive threshold or "
                            "resonator state), which snn2hw's CUBA LIF does not have")
    i_decay, v_decay = int(_scalar(nrn["iDecay"])), int(_scalar(nrn["vDecay"]))
    vth = int(_scalar(nrn["vThMant"]))
    du, dv = i_decay - 1, v_decay
    if not -1 <= du <= DECAY_MAX:
        raise NetxError(f"{path}: {layer.label} iDecay {i_decay} outside 0..{DECAY_MAX + 1}")
    if not 0 <= dv <= DECAY_MAX:
        raise NetxError(f"{path}: {layer.label} vDecay {v_decay} outside 0..{DECAY_MAX}")
    if not 0 <= vth <= VTH_MAX:
        raise NetxError(f"{path}: {layer.label} vThMant {vth} outside 0..{VTH_MAX}")
    if int(_scalar(nrn.get("wgtExp", 0))) != 0:
        notes.append(f"{layer.label}: neuron wgtExp {int(_scalar(nrn['wgtExp']))} is not used "
                     "(lava-dl's netx ignores it too; the stored weights are the chip weights)")
    if int(_scalar(nrn.get("messageBits", 0))) > 0:
        notes.append(f"{layer.label}: messageBits {int(_scalar(nrn['messageBits']))} ignored: "
                     "Lava's LIF (what netx builds) sends binary spikes")
    return du, dv, vth


def _bias(layer: NetxLayer, shape: tuple[int, ...], path: Any) -> np.ndarray:
    """Per-neuron ``bias_mant`` of ``shape``: netx's per-neuron, per-channel or scalar bias."""
    if "bias" not in layer.data:
        return np.zeros(shape, np.int64)
    b = _int_array(layer, "bias", path)
    if b.size == 1:
        out = np.full(shape, int(b.reshape(-1)[0]), np.int64)
    elif b.size == int(np.prod(shape)):
        out = b.reshape(shape)
    elif len(shape) == 3 and b.size == shape[0]:
        out = np.broadcast_to(b.reshape(-1, 1, 1), shape).copy()
    else:
        raise NetxError(f"{path}: {layer.label} bias of {b.size} values fits neither the "
                        f"neurons {list(shape)} nor their channels")
    if out.min() < BIAS_MANT_MIN or out.max() > BIAS_MANT_MAX:
        raise NetxError(f"{path}: {layer.label} bias {int(np.abs(out).max())} outside Loihi's "
                        f"13-bit mantissa {BIAS_MANT_MIN}..{BIAS_MANT_MAX}")
    return out


def dense_weight_bits(w: np.ndarray, label: str) -> tuple[np.ndarray, int, int]:
    """The ``(weight, num_weight_bits, weight_exp)`` netx gives Lava's ``Dense`` for the
    stored integer weights ``w`` (lava-dl ``netx/utils.py`` ``optimize_weight_bits``).

    The sign mode picks a scale that fills the 8-bit synapse (``127/max`` and ``128/|min|``
    mixed, ``255/max`` excitatory, ``256/|min|`` inhibitory); its power-of-two part ``s``
    (plus one when mixed) shifts the weights left and becomes ``weight_exp = -s``, so Lava
    computes ``((w << s) @ x) >> s = w @ x``. ``num_weight_bits = 8 - s - z`` where ``z`` is
    the number of trailing zero bits all weights share (one less when mixed): Lava's
    truncation then drops only zero bits."""
    w = w.astype(np.int64)
    hi, lo = int(w.max()), int(w.min())
    if hi == 0 and lo == 0:
        return w, 8, 0
    if (hi > 254 and lo < 0) or (lo < -256 and hi > 0) or hi > 255 or lo < -256:
        raise NetxError(
            f"{label}: weights {lo}..{hi} exceed Loihi's 8-bit synapse (netx would clip them to "
            "-256..254 with a warning); re-quantize the network to 8-bit weights"
        )
    if hi < 0:
        signed, scale = 0, -256.0 / lo
    elif lo >= 0:
        signed, scale = 0, 255.0 / hi
    else:
        signed = 1
        scale = min(127.0 / hi if hi > 0 else math.inf, -128.0 / lo)
    s = int(math.floor(math.log2(scale))) + signed
    zeros = 8
    while zeros > 0 and np.any(w % (1 << zeros)):
        zeros -= 1
    zeros -= signed
    nwb, exp = 8 - s - zeros, -s
    if s < 0 or not 1 <= nwb <= 8 or not -7 <= exp <= 7:
        raise NetxError(f"{label}: weights {lo}..{hi} give num_weight_bits {nwb}, weight_exp "
                        f"{exp}, outside Loihi's synapse formats")
    return w << s, nwb, exp


def _dense_delay(layer: NetxLayer, wshape: tuple[int, int], path: Any) -> int | np.ndarray:
    """netx's delay broadcast (``create_dense``): scalar, per output neuron (axonal delay
    moved to the synapses), per input, or per synapse."""
    if "delay" not in layer.data:
        return 0
    d = _int_array(layer, "delay", path)
    if d.size and (d.min() < 0 or d.max() > MAX_NETX_DELAY):
        raise NetxError(f"{path}: {layer.label} delays {int(d.min())}..{int(d.max())} outside "
                        f"0..{MAX_NETX_DELAY} (netx clamps them, changing the network)")
    if d.size == 1:
        return int(d.reshape(-1)[0])
    if d.ndim == 1 and d.size == wshape[0]:
        d = np.repeat(d.reshape(-1, 1), wshape[1], axis=1)
    elif d.ndim == 1 and d.size == wshape[1]:
        d = np.repeat(d.reshape(1, -1), wshape[0], axis=0)
    elif d.shape != wshape:
        raise NetxError(f"{path}: {layer.label} delay of shape {list(d.shape)} fits neither "
                        f"the weight {list(wshape)} nor its rows or columns")
    if not d.any():
        return 0
    return d


class _Builder:
    def __init__(self, net: NetxNetwork, formats: NumberFormats, input_message_bits: int | None):
        self.net = net
        self.path = net.path
        self.formats = formats
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.notes: list[str] = []
        self.src: str | None = None
        self.shape: tuple[int, ...] | None = None
        self.flatten_next = False
        self.input_bits = input_message_bits
        self.has_input_block = False

    def add(self, node: Any, src: str | None) -> str:
        self.nodes[node.name] = node
        if src is not None:
            self.edges.append((src, node.name))
        return node.name

    def ensure_input(self, shape: tuple[int, ...], layer: NetxLayer) -> None:
        if self.src is None:
            bits = 0 if self.input_bits is None else int(self.input_bits)
            self.src = self.add(InputNode("input", shape, bits), None)
            self.shape = shape

    def lif(self, layer: NetxLayer, shape: tuple[int, ...], syn: str) -> None:
        du, dv, vth = neuron_params(layer, self.path, self.notes)
        name = f"lif{layer.index}"
        bias = _bias(layer, shape, self.path)
        self.add(LIFNode(name, shape, du, dv, vth, bias,
                         np.full(shape, NETX_BIAS_EXP if bias.any() else 0, np.int64)), syn)
        self.src, self.shape = name, shape

    # ----- blocks ---------------------------------------------------------------------------
    def input(self, layer: NetxLayer) -> None:
        if self.src is not None:
            raise NetxError(f"{self.path}: {layer.label} is an input block after other blocks")
        shape = layer.shape
        if layer.neuron is None:
            self.ensure_input(shape, layer)
            return
        self.has_input_block = True
        bits = INPUT_BLOCK_MESSAGE_BITS if self.input_bits is None else int(self.input_bits)
        self.src = self.add(InputNode("input", shape, bits), None)
        self.shape = shape
        if len(shape) == 3:
            c = shape[0]
            syn = self.add(ConvNode(f"drive{layer.index}", np.ones((c, 1, 1, 1), np.int64),
                                    tuple(shape), groups=c), "input")
        else:
            n = int(np.prod(shape))
            syn = self.add(DenseNode(f"drive{layer.index}", np.eye(n, dtype=np.int64)), "input")
            shape = (n,)
        for key in ("weight", "bias"):
            if key in layer.data:
                self.notes.append(
                    f"{layer.label}: input transform {key} {_scalar(layer.data[key]):g} recorded, "
                    "not applied (netx leaves it to the data pipeline)")
        # the input block's neuron has no bias in netx (create_input passes none)
        du, dv, vth = neuron_params(layer, self.path, self.notes)
        name = f"lif{layer.index}"
        self.add(LIFNode(name, shape, du, dv, vth, np.zeros(shape, np.int64),
                         np.zeros(shape, np.int64)), syn)
        self.src, self.shape = name, shape

    def dense(self, layer: NetxLayer) -> None:
        if "weight" not in layer.data or isinstance(layer.data["weight"], dict):
            raise NetxError(f"{self.path}: {layer.label} has no integer 'weight' array")
        w = _int_array(layer, "weight", self.path)
        n_out = int(np.prod(layer.shape))
        w = w.reshape(n_out, -1)
        self.ensure_input((int(w.shape[1]),), layer)
        src = self.src
        assert self.shape is not None and src is not None
        if len(self.shape) > 1:
            if not self.flatten_next:
                self.notes.append(f"{layer.label}: dense after a {len(self.shape)}-D block "
                                  "without a flatten block; flattened in C, H, W order")
            src = self.add(FlattenNode(f"flatten{layer.index}", tuple(self.shape)), src)
        self.flatten_next = False
        if int(np.prod(self.shape)) != w.shape[1]:
            raise NetxError(f"{self.path}: {layer.label} weight takes {w.shape[1]} inputs, the "
                            f"previous block gives {int(np.prod(self.shape))}")
        w2, nwb, exp = dense_weight_bits(w, f"{self.path}: {layer.label}")
        changed = int(np.count_nonzero(effective_dense_weight(w2, nwb, self.formats) != w2))
        if changed:  # e.g. no positive weight: netx sizes it as mixed, Lava clips as inhibitory
            self.notes.append(
                f"{layer.label}: Lava's Dense stores {changed} of {w2.size} weights differently "
                "from the file (netx's optimize_weight_bits and Lava's sign mode disagree); "
                "snn2hw runs what Lava runs")
        delay = _dense_delay(layer, (int(w.shape[0]), int(w.shape[1])), self.path)
        syn = self.add(DenseNode(f"dense{layer.index}", w2, exp, nwb, delay=delay), src)
        self.lif(layer, (n_out,), syn)

    def conv(self, layer: NetxLayer) -> None:
        if self.src is None or self.shape is None or len(self.shape) != 3:
            raise NetxError(f"{self.path}: {layer.label} needs a 3-D (C, H, W) input before it; "
                            "add an input block with the image shape")
        w = _int_array(layer, "weight", self.path)
        if w.ndim == 5 and w.shape[-1] == 1:
            w = w[..., 0]
        if w.ndim != 4:
            raise NetxError(f"{self.path}: {layer.label} weight has shape {list(w.shape)}, "
                            "expected (out, in/groups, kH, kW[, 1])")
        groups = int(_scalar(layer.data.get("groups", 1)))
        node = ConvNode(f"conv{layer.index}", w, tuple(self.shape),  # type: ignore[arg-type]
                        stride=_pair(layer, "stride", 1), padding=_pair(layer, "padding", 0),
                        dilation=_pair(layer, "dilation", 1), groups=groups,
                        delay=self._conv_delay(layer))
        self._check_out(layer, node.out_shape)
        syn = self.add(node, self.src)
        self.lif(layer, tuple(layer.shape), syn)

    def pool(self, layer: NetxLayer) -> None:
        if self.src is None or self.shape is None or len(self.shape) != 3:
            raise NetxError(f"{self.path}: {layer.label} needs a 3-D (C, H, W) input before it")
        w = _int_array(layer, "weight", self.path) if "weight" in layer.data else np.ones(1)
        if np.unique(w).size != 1:
            raise NetxError(f"{self.path}: {layer.label} pool weight is not one value")
        kh, kw = _pair(layer, "kernelSize", 1)
        c = self.shape[0]
        kernel = np.full((c, 1, kh, kw), int(w.reshape(-1)[0]), np.int64)
        stride = _pair(layer, "stride", kh) if "stride" in layer.data else (kh, kw)
        node = ConvNode(f"pool{layer.index}", kernel, tuple(self.shape),  # type: ignore[arg-type]
                        stride=stride, padding=_pair(layer, "padding", 0),
                        dilation=_pair(layer, "dilation", 1), groups=c,
                        delay=self._conv_delay(layer))
        self._check_out(layer, node.out_shape)
        self.notes.append(f"{layer.label}: SLAYER pool block (netx does not build it) mapped to a "
                          "depthwise conv with the pool weight in every kernel tap")
        syn = self.add(node, self.src)
        self.lif(layer, tuple(layer.shape), syn)

    def _conv_delay(self, layer: NetxLayer) -> int:
        if "delay" not in layer.data:
            return 0
        d = _int_array(layer, "delay", self.path)
        if d.size and np.unique(d).size > 1:
            raise NetxError(f"{self.path}: {layer.label} has per-neuron delays; a conv node "
                            "carries one delay (it would need per-channel conv delays)")
        val = int(d.reshape(-1)[0]) if d.size else 0
        if not 0 <= val <= MAX_NETX_DELAY:
            raise NetxError(f"{self.path}: {layer.label} delay {val} outside 0..{MAX_NETX_DELAY}")
        return val

    def _check_out(self, layer: NetxLayer, got: tuple[int, ...]) -> None:
        if tuple(got) != tuple(layer.shape):
            raise NetxError(f"{self.path}: {layer.label} computes shape {list(got)} but declares "
                            f"{list(layer.shape)}")

    def flatten(self, layer: NetxLayer) -> None:
        self.flatten_next = True


def _refuse_block(path: Any, layer: NetxLayer) -> None:
    needs = {
        "dense_rec": "recurrent dense blocks (a recurrent edge per block)",
        "dense_comp": "complex-valued dense synapses (two weight matrices into an RF neuron)",
        "convT": "transposed convolution",
        "unpool": "unpooling",
        "average": "an averaging readout block",
        "concat": "skip connections (concat of earlier blocks)",
    }
    raise NetxError(f"{path}: {layer.label} is not supported: it would need "
                    f"{needs.get(layer.type, layer.type)} in the netx reader")


def netx_reset_offsets(num_layers: int, interval: int, offset: int,
                       has_input_block: bool) -> list[int]:
    """``LIFNode.reset_offset`` of each of ``num_layers`` neuron layers (block order) for
    netx's ``reset_interval=interval, reset_offset=offset`` build options (module
    docstring): layer j resets at 0-based step ``offset + j`` of netx's timing, which is
    step ``offset + j + 1`` here when an input block's neuron leads (one hop later)."""
    hop = 1 if has_input_block else 0
    return [(offset + j + hop) % interval for j in range(num_layers)]


def _apply_netx_reset(net: NetxNetwork, nodes: dict[str, Any], has_input_block: bool,
                      interval: int | None, offset: int, notes: list[str]) -> None:
    """Set every LIF's periodic state reset from netx's build options (none: nothing)."""
    if interval is None:
        if offset:
            raise NetxError(f"{net.path}: a netx reset offset ({offset}) needs a reset "
                            "interval (--netx-reset-interval N)")
        return
    if isinstance(interval, bool) or int(interval) < 1 or int(offset) < 0:
        raise NetxError(f"{net.path}: netx reset interval {interval} / offset {offset}: need "
                        "an interval >= 1 and an offset >= 0 (netx's Network options)")
    lifs = [n for n in nodes.values() if isinstance(n, LIFNode)]
    offsets = netx_reset_offsets(len(lifs), int(interval), int(offset), has_input_block)
    for node, off in zip(lifs, offsets, strict=True):
        node.reset_interval, node.reset_offset = int(interval), off
    where = ", ".join(f"{n.name} at steps {n.reset_offset} mod {interval}" for n in lifs)
    notes.append(
        f"netx reset_interval={interval}, reset_offset={offset}: u and v of {where}"
        + (" (one step later than netx: the input block's neuron is one synapse hop away "
           "here)" if has_input_block else ""))


def netx_to_qgraph(net: NetxNetwork, *, target: str = "loihi",
                   formats: NumberFormats = LOIHI_FORMATS,
                   input_message_bits: int | None = None,
                   num_steps: int | None = None,
                   reset_interval: int | None = None,
                   reset_offset: int = 0) -> NetxGraph:
    """Build the validated :class:`QGraph` of a parsed netx network for ``target``.

    ``input_message_bits``: payload bits of the input frames (default: binary spikes, or
    :data:`INPUT_BLOCK_MESSAGE_BITS` when the first block is an input block with a neuron).
    ``num_steps``: input frames per sample (default: the file's ``simulation/tSample``).
    ``reset_interval`` / ``reset_offset``: netx ``Network``'s build options of the same
    names (None: no periodic reset), mapped to each LIF's periodic state reset (module
    docstring)."""
    check_formats(formats, target)
    b = _Builder(net, formats, input_message_bits)
    for layer in net.layers:
        handler = getattr(b, layer.type, None) if layer.type in (
            "input", "dense", "conv", "pool", "flatten") else None
        if handler is None:
            _refuse_block(net.path, layer)
        handler(layer)
    if not any(isinstance(n, LIFNode) for n in b.nodes.values()):
        raise NetxError(f"{net.path}: no neuron block, nothing to run")
    _apply_netx_reset(net, b.nodes, b.has_input_block, reset_interval, reset_offset, b.notes)
    last = b.src
    assert last is not None and b.shape is not None
    b.add(OutputNode("output", tuple(b.shape)), last)
    ts = float(net.simulation.get("Ts", 1.0))
    steps = int(num_steps or net.simulation.get("tSample", 0) or DEFAULT_STEPS)
    graph = QGraph(
        nodes=b.nodes, edges=b.edges, dt=ts * 1e-3, target=target, num_steps=steps,
        metadata={"source_format": "lava-dl netx", "netx_file": net.path.name,
                  "netx_input_block": b.has_input_block,
                  **({"netx_reset": {"interval": int(reset_interval),
                                     "offset": int(reset_offset)}}
                     if reset_interval is not None else {})},
        formats=formats,
    )
    try:
        graph.validate()
    except NetxError:
        raise
    except Exception as exc:  # noqa: BLE001 - GraphError from validation: name the file
        raise NetxError(f"{net.path}: {exc}") from None
    return NetxGraph(graph, b.notes, b.has_input_block)
