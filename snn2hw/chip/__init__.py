"""The hardware side: target descriptions (``targets/*.toml``), mapping a quantized graph
onto cores, and energy/latency estimates from activity counts.

May import: ``quant``, ``common``. Never a backend: activity counts arrive as data.
"""
