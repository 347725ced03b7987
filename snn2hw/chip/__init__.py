"""The hardware side: target descriptions (``snn2hw/chip/targets/data/*.toml``),
mapping a quantized graph onto cores, and energy/latency estimates from activity counts.

May import: ``quant``, ``common``. Never a backend: activity counts arrive as data.
"""
