"""Labels shared by every energy record and the rendering of a target :class:`Constant`.

``MODELLED`` / ``MEASURED`` mark each figure's kind; the optional constant names a target may
give (static energy, per-operation latencies) are read by the estimator and latency model.

May import: ``snn2hw.chip.targets``.
"""

from __future__ import annotations

from typing import Any

from snn2hw.chip.targets import Constant

# Optional constant names (not required by the target loader; used when a target has them).
STATIC_KEY_PREFIX = "static_per_core_step_"
SYNOP_LATENCY = "synop_ns"
NEURON_LATENCY = "neuron_update_ns"

MODELLED = "modelled"
MEASURED = "measured"


def const_dict(c: Constant) -> dict[str, Any]:
    """JSON form of one constant, with its source and flags."""
    return {"name": c.name, "value": c.value, "unit": c.unit, "source": c.source,
            "pre_silicon": c.pre_silicon, "assumption": c.assumption}


def const_flags(c: Constant) -> str:
    """``'pre-silicon, assumption'`` (the flags that are set), or ``''``."""
    flags = [f for f, on in (("pre-silicon", c.pre_silicon), ("assumption", c.assumption)) if on]
    return ", ".join(flags)
