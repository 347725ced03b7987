"""Spiking networks built from an architecture description that is plain data.

An architecture is a dict (from TOML/JSON; stored in checkpoints, never pickled)::

    {"input_shape": [1, 8, 8],
     "neuron": {"kind": "lif", "beta": 0.9, "threshold": 1.0, "surrogate": "arctan"},
     "layers": [{"type": "flatten"}, {"type": "linear", "out": 128}, {"type": "neuron"},
                {"type": "linear", "out": 10}, {"type": "neuron"}]}

Layer types: ``linear`` (out, bias), ``conv`` (out, kernel, stride, padding, dilation,
groups, bias), ``avgpool``/``sumpool`` (kernel, stride, padding), ``flatten``,
``dropout`` (p; mask fixed over time), ``norm`` (temporal channel normalization),
``neuron`` (overrides of the ``neuron`` defaults: kind lif|cuba|if|srm, beta, alpha,
tau_mem, tau_syn, threshold, reset, surrogate, surrogate_alpha, learn_threshold,
learn_decay), ``residual`` (``layers`` and optional ``shortcut`` lists; the branch
outputs are summed). The network's last layer must be a neuron layer.

``"hop_delays": true`` trains with the chip's timing (docs/qgraph.md "Topology and
timing"): every neuron layer integrates at step ``t`` what reaches it from the layers
feeding it at ``t - 1``, so a skip branch arrives at its hop depth, exactly as on a chip
without synaptic delays. The forward pass then runs ``T + hop_depth`` steps (zero input
after the last frame), as a chip run does, and the NIR export carries one ``nir.Delay``
of ``dt`` in front of every neuron (:mod:`snn2hw.nir.export`).
"""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn

from snn2hw.common.errors import ConfigError
from snn2hw.nn.layers import (
    Residual,
    SeqAvgPool2d,
    SeqConv2d,
    SeqFlatten,
    SeqLinear,
    SeqSumPool2d,
    TemporalNorm,
    TimeDropout,
)
from snn2hw.nn.neurons import NEURONS, CubaLIF
from snn2hw.nn.surrogate import Surrogate

LAYER_KEYS: dict[str, set[str]] = {
    "linear": {"out", "bias"},
    "conv": {"out", "kernel", "stride", "padding", "dilation", "groups", "bias"},
    "avgpool": {"kernel", "stride", "padding"},
    "sumpool": {"kernel", "stride", "padding"},
    "flatten": set(),
    "dropout": {"p"},
    "norm": set(),
    "neuron": {
        "kind",
        "beta",
        "alpha",
        "tau_mem",
        "tau_syn",
        "threshold",
        "reset",
        "surrogate",
        "surrogate_alpha",
        "learn_threshold",
        "learn_decay",
        "detach_reset",
    },
    "residual": {"layers", "shortcut"},
}
NEURON_DEFAULTS: dict[str, Any] = {"kind": "lif", "beta": 0.9, "threshold": 1.0}


def make_neuron(params: dict[str, Any], where: str = "neuron") -> CubaLIF:
    """Build a neuron module from plain parameters (see module doc)."""
    p = dict(params)
    unknown = set(p) - LAYER_KEYS["neuron"]
    if unknown:
        raise ConfigError(f"{where}: unknown neuron key(s) {sorted(unknown)}")
    kind = p.pop("kind", "lif")
    if kind not in NEURONS:
        raise ConfigError(f"{where}: unknown neuron kind '{kind}'; known: {sorted(NEURONS)}")
    surrogate = Surrogate(p.pop("surrogate", "arctan"), p.pop("surrogate_alpha", None))
    if "tau_mem" in p and kind != "srm":
        p["beta"] = 1.0 - 1.0 / float(p.pop("tau_mem"))  # Euler, tau in steps
    if "tau_syn" in p and kind != "srm":
        p["alpha"] = 1.0 - 1.0 / float(p.pop("tau_syn"))
    if kind == "srm":
        p.pop("beta", None)
        p.pop("alpha", None)
    if kind == "if":
        p.pop("beta", None)
    if kind in ("lif", "if"):
        p.pop("alpha", None)
    try:
        return NEURONS[kind](surrogate=surrogate, **p)
    except TypeError as exc:
        raise ConfigError(f"{where}: bad neuron parameters: {exc}") from None


class SpikingNet(nn.Module):
    """A sequential spiking network over ``[T, B, *input_shape]``; see the module doc."""

    def __init__(self, arch: dict[str, Any]) -> None:
        super().__init__()
        self.arch = copy.deepcopy(arch)
        if "input_shape" not in arch or "layers" not in arch:
            raise ConfigError("model: architecture needs 'input_shape' and 'layers'")
        unknown = set(arch) - {"input_shape", "layers", "neuron", "name", "hop_delays"}
        if unknown:
            raise ConfigError(f"model: unknown key(s) {sorted(unknown)}")
        self.input_shape = tuple(int(s) for s in arch["input_shape"])
        defaults = {**NEURON_DEFAULTS, **arch.get("neuron", {})}
        self.layers, shape = _build(arch["layers"], self.input_shape, defaults, "model.layers")
        if not self.layers or not isinstance(self.layers[-1], CubaLIF):
            raise ConfigError("model: the last layer must be a neuron layer (spiking output)")
        self.output_shape = shape
        self.hop_depth = _hop_depth(self.layers)
        hop = arch.get("hop_delays", False)
        if not isinstance(hop, bool):
            raise ConfigError(f"model: 'hop_delays' must be true or false, got {hop!r}")
        self.set_hop_delays(hop)

    def set_hop_delays(self, on: bool) -> None:
        """Train (or run) with the chip's one-step hop per layer (module doc); recorded in
        ``arch`` so checkpoints rebuild and export the same timing."""
        self.hop_delays = bool(on)
        if self.hop_delays:
            self.arch["hop_delays"] = True
        else:
            self.arch.pop("hop_delays", None)
        for _, m in self.neurons():
            m.input_delay = 1 if on else 0

    def forward(self, x: torch.Tensor, record: bool = False):
        """``x``: ``[T, B, *input_shape]`` currents or spikes. Returns output spikes
        ``[T, B, classes]``, and with ``record=True`` also ``{layer_name: spikes}``."""
        spikes: dict[str, torch.Tensor] = {}
        if self.hop_delays:  # flush the last frame through every hop, as a chip run does
            x = torch.cat([x, x.new_zeros((self.hop_depth, *x.shape[1:]))])
        for name, layer in self.layers.named_children():
            x = layer(x)
            if record and isinstance(layer, CubaLIF):
                spikes[name] = x
        return (x, spikes) if record else x

    def neurons(self) -> list[tuple[str, CubaLIF]]:
        return [(n, m) for n, m in self.named_modules() if isinstance(m, CubaLIF)]

    def set_quantize_dynamics(self, on: bool) -> None:
        """Round decays to the chip grid in forward (QAT)."""
        for _, m in self.neurons():
            m.quantize_dynamics = on


def _hop_depth(seq: nn.Module) -> int:
    """Neuron layers on the longest path through ``seq`` (a residual: its longer branch)."""
    n = 0
    for layer in seq.children():
        if isinstance(layer, CubaLIF):
            n += 1
        elif isinstance(layer, Residual):
            n += max(_hop_depth(layer.block), _hop_depth(layer.shortcut))
    return n


def _check_keys(spec: dict[str, Any], where: str) -> str:
    if not isinstance(spec, dict) or "type" not in spec:
        raise ConfigError(f"{where}: each layer must be a table with a 'type'")
    kind = spec["type"]
    if kind not in LAYER_KEYS:
        raise ConfigError(f"{where}: unknown layer type '{kind}'; known: {sorted(LAYER_KEYS)}")
    unknown = set(spec) - LAYER_KEYS[kind] - {"type"}
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {sorted(unknown)} for a '{kind}' layer")
    return kind


def _int(spec: dict[str, Any], key: str, where: str, default: int | None = None) -> int:
    val = spec.get(key, default)
    if isinstance(val, bool) or not isinstance(val, int) or val < 0:
        raise ConfigError(f"{where}: '{key}' must be a non-negative integer, got {val!r}")
    return val


def _build(
    specs: list[dict[str, Any]], shape: tuple[int, ...], defaults: dict[str, Any], where: str
) -> tuple[nn.Sequential, tuple[int, ...]]:
    mods: list[nn.Module] = []
    for i, spec in enumerate(specs):
        w = f"{where}[{i}]"
        kind = _check_keys(spec, w)
        if kind == "linear":
            if len(shape) != 1:
                raise ConfigError(
                    f"{w}: linear needs a flat input, got shape {list(shape)}; add a flatten"
                )
            out = _int(spec, "out", w)
            mod: nn.Module = SeqLinear(shape[0], out, bias=bool(spec.get("bias", True)))
            shape = (out,)
        elif kind == "conv":
            if len(shape) != 3:
                raise ConfigError(f"{w}: conv needs a (C, H, W) input, got {list(shape)}")
            k, s = _int(spec, "kernel", w), _int(spec, "stride", w, 1)
            p, d, g = (
                _int(spec, "padding", w, 0),
                _int(spec, "dilation", w, 1),
                _int(spec, "groups", w, 1),
            )
            out = _int(spec, "out", w)
            mod = SeqConv2d(shape[0], out, k, s, p, d, g, bias=bool(spec.get("bias", True)))
            h = (shape[1] + 2 * p - d * (k - 1) - 1) // s + 1
            wd = (shape[2] + 2 * p - d * (k - 1) - 1) // s + 1
            if h <= 0 or wd <= 0:
                raise ConfigError(f"{w}: conv output would be empty for input {list(shape)}")
            shape = (out, h, wd)
        elif kind in ("avgpool", "sumpool"):
            if len(shape) != 3:
                raise ConfigError(f"{w}: {kind} needs a (C, H, W) input, got {list(shape)}")
            k = _int(spec, "kernel", w)
            s = _int(spec, "stride", w, k)
            p = _int(spec, "padding", w, 0)
            mod = SeqAvgPool2d(k, s, p) if kind == "avgpool" else SeqSumPool2d(k, s, p)
            shape = (shape[0], (shape[1] + 2 * p - k) // s + 1, (shape[2] + 2 * p - k) // s + 1)
        elif kind == "flatten":
            mod = SeqFlatten()
            shape = (math.prod(shape),)
        elif kind == "dropout":
            mod = TimeDropout(float(spec.get("p", 0.5)))
        elif kind == "norm":
            mod = TemporalNorm(shape[0], len(shape))
        elif kind == "neuron":
            params = {**defaults, **{k: v for k, v in spec.items() if k != "type"}}
            mod = make_neuron(params, w)
        else:  # residual
            block, bshape = _build(spec.get("layers", []), shape, defaults, f"{w}.layers")
            short, sshape = _build(spec.get("shortcut", []), shape, defaults, f"{w}.shortcut")
            if bshape != sshape:
                raise ConfigError(
                    f"{w}: residual branches disagree in shape: block {list(bshape)}, "
                    f"shortcut {list(sshape)}"
                )
            mod = Residual(block, short)
            shape = bshape
        mods.append(mod)
    return nn.Sequential(*mods), shape
