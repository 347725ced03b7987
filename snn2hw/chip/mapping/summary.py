"""The mapping as a table for people: :func:`format_mapping` (the ``snn2hw`` CLI).

The JSON form is :meth:`snn2hw.chip.mapping.Mapping.to_dict`, next to the data it reads.

May import: the sibling ``result`` module; nothing else of ``snn2hw``.
"""

from __future__ import annotations

from snn2hw.chip.mapping.result import Mapping


def format_mapping(mapping: Mapping) -> str:
    """A table of the mapping (``snn2hw`` CLI)."""
    head = ("layer", "neurons", "cores", "neurons/core", "in-axons", "out-axons",
            "synapses", "syn.mem/core", "syn.mem total", "limited by")
    rows = [head]
    for lm in mapping.layers.values():
        rows.append((
            lm.name, f"{lm.neurons:,}", str(lm.num_cores), f"{max(lm.neurons_per_core):,}",
            f"{lm.max_input_axons:,}", f"{lm.max_output_axons:,}", f"{lm.synapses:,}",
            _bits(lm.max_synaptic_memory_bits), _bits(lm.total_synaptic_memory_bits),
            lm.limited_by.replace("_", " ") or "-",
        ))
    total_syn = sum(lm.synapses for lm in mapping.layers.values())
    total_bits = sum(lm.total_synaptic_memory_bits for lm in mapping.layers.values())
    rows.append(("total", f"{sum(lm.neurons for lm in mapping.layers.values()):,}",
                 str(mapping.total_cores), "", "", "", f"{total_syn:,}", "",
                 _bits(total_bits), ""))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    lines = [
        f"Mapping onto {mapping.target}: {mapping.total_cores} cores on {mapping.chips} "
        f"chip(s) ({mapping.cores_per_chip} cores per chip, at most {mapping.max_chips} chips)",
        "",
    ]
    for k, r in enumerate(rows):
        cells = [r[0].ljust(widths[0])]
        cells += [c.rjust(w) for c, w in zip(r[1:], widths[1:], strict=True)]
        lines.append("  ".join(cells).rstrip())
        if k == 0 or k == len(rows) - 2:
            lines.append("  ".join("-" * w for w in widths))
    delayed = [lm for lm in mapping.layers.values() if lm.max_delay]
    if delayed:
        lines += ["", "Synaptic delays: " + "; ".join(
            f"{lm.name} up to {lm.max_delay} steps, {_bits(lm.total_delay_buffer_bits)} of "
            "extra accumulator slots" for lm in delayed)
            + " (assumed model: snn2hw.chip.mapping.delays)"]
    lim = mapping.limits
    lines += [
        "",
        f"Per core: {lim['neurons']:,} neurons, {lim['input_axons']:,} input axons, "
        f"{lim['output_axons']:,} output axons, {_bits(lim['synaptic_memory_bits'])} synaptic "
        f"memory. Columns show the per-core maximum.",
        f"Assumed: {mapping.bits_per_synapse} bits per non-zero synapse (weight + index); one "
        "layer per core; inputs injected from off the mesh.",
    ]
    return "\n".join(lines)


def _bits(b: int) -> str:
    return f"{b / 8192:,.1f} KiB" if b >= 8192 else f"{b:,} b"
