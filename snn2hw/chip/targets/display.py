"""Rendering a target for people: ``format_target`` (``snn2hw targets show``).

May import: the sibling ``files`` and ``schema`` modules; nothing else of ``snn2hw``.
"""

from __future__ import annotations

from snn2hw.chip.targets.files import _display
from snn2hw.chip.targets.schema import Constant, Target


def _flags(c: Constant) -> str:
    flags = [f for f, on in (("pre-silicon", c.pre_silicon), ("assumption", c.assumption)) if on]
    return f" [{', '.join(flags)}]" if flags else ""


def _num(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() and abs(v) >= 1000 else f"{v:g}"


def format_target(target: Target) -> str:
    """Human-readable description, every constant with its source (``snn2hw targets show``)."""
    f, r = target.formats, target.resources
    lines = [
        f"{target.name}: {target.description}",
        f"  file: {_display(target.path)}",
        f"  neuron model: {target.neuron_model}",
    ]
    if target.source:
        lines.append(f"  sources: {target.source}")
    lines += ["", "Number formats" + (f"  (source: {f.source})" if f.source else "")]
    rows = [
        ("weights", f"{f.weight_mantissa_bits}-bit mantissa, exponent "
                    f"{f.weight_exp_min}..{f.weight_exp_max}"),
        ("weight clip", f"mixed {list(f.weight_range_mixed)}, excitatory "
                        f"{list(f.weight_range_excitatory)}, inhibitory "
                        f"{list(f.weight_range_inhibitory)}"),
        ("mixed-sign LSB loss", "yes ([7, -7] -> [6, -8])" if f.mixed_sign_lsb_loss else "no"),
        ("activation shift", f"<< {f.activation_shift} (weights and threshold)"),
        ("u", f"{f.u_bits}-bit, {f.u_overflow}"),
        ("v", f"{f.v_bits}-bit, {f.v_overflow}"),
        ("du, dv", f"{f.decay_bits}-bit, 0..{f.decay_max}"),
        ("vth", f"{f.threshold_bits}-bit, 0..{f.vth_max}"),
        ("bias", f"{f.bias_mant_bits}-bit signed mantissa {f.bias_mant_range[0]}.."
                 f"{f.bias_mant_range[1]}, exponent {f.bias_exp_min}..{f.bias_exp_max}"),
        ("message bits", "0 (binary spikes)" if f.max_message_bits == 0
         else f"up to {f.max_message_bits} (graded spikes)"),
        ("synaptic delay", f"0..{f.max_synaptic_delay} steps"),
        ("reset", "v = 0 on a spike" if f.reset == "zero"
         else f"v -= vth << {f.activation_shift} on a spike"),
        ("spike condition", f"v {f.threshold_compare} (vth << {f.activation_shift})"),
    ]
    lines += [f"  {k:<22}{v}" for k, v in rows]
    if f.note:
        lines.append(f"  note: {f.note}")

    lines += ["", "Resources" + (f"  (source: {r.source})" if r.source else "")]
    for key, c in r.limits.items():
        lines.append(f"  {key:<32}{_num(c.value):>12}{_flags(c)}  {c.source}")
        if c.note:
            lines.append(f"  {'':<32}{'':>12}  note: {c.note}")
    lines.append(f"  {'bits per synapse (model)':<32}{target.bits_per_synapse:>12}  "
                 "formats.weight_mantissa_bits + synapse_index_bits")

    for table in (target.energy, target.latency):
        lines += ["", table.name.capitalize()]
        if not table.available:
            lines.append(f"  not available: {table.note}")
            continue
        if table.note:
            lines.append(f"  {table.note}")
        for key, c in table.constants.items():
            lines.append(f"  {key:<32}{_num(c.value):>8} {c.unit:<3}{_flags(c)}  {c.source}")
            if c.note:
                lines.append(f"  {'':<44}note: {c.note}")
    return "\n".join(lines)
