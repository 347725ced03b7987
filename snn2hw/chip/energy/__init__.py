"""Energy and latency estimates of a quantized graph on a target chip, from activity counts.

Modules, one job each: ``activity`` (the counted activity the estimator is given, and the
per-inference activity it reports), ``constants`` (modelled / measured labels, constant
rendering), ``estimator`` (activity x target constants -> energy per inference),
``latency`` (latency model), ``baselines`` (ANN / dense-GPU baselines), ``convention``
(the SNN-paper figure), ``report`` (:class:`EnergyReport`, Markdown, ``write_energy``) and
``kws`` (the keyword-spotting paper check and its activity synthesizer).

Running a backend to get activity (``energy_for_graph``, ``energy_for_targets``,
``activity_from_run``) lives in :mod:`snn2hw.pipeline.energy`; measuring the torch paths
(``measure_torch_paths``, NVML) in :mod:`snn2hw.pipeline.measure`.

May import: ``snn2hw.chip``, ``snn2hw.quant``, ``snn2hw.common``. Never a backend or
``snn2hw.pipeline``: activity arrives as data (:class:`RunActivity`).
"""

from snn2hw.chip.energy.activity import LayerActivity, LayerCounts, RunActivity, SourceTraffic
from snn2hw.chip.energy.baselines import BaselineRow
from snn2hw.chip.energy.constants import MEASURED, MODELLED
from snn2hw.chip.energy.convention import ConventionEnergy, snn_convention_energy
from snn2hw.chip.energy.estimator import estimate_energy
from snn2hw.chip.energy.kws import kws_graph, kws_sanity_check
from snn2hw.chip.energy.latency import Latency
from snn2hw.chip.energy.report import EnergyReport, EnergyTerm, write_energy
from snn2hw.common.formatting import format_energy, format_time

__all__ = [
    "MEASURED",
    "MODELLED",
    "BaselineRow",
    "ConventionEnergy",
    "EnergyReport",
    "EnergyTerm",
    "LayerActivity",
    "LayerCounts",
    "Latency",
    "RunActivity",
    "SourceTraffic",
    "estimate_energy",
    "format_energy",
    "format_time",
    "kws_graph",
    "kws_sanity_check",
    "snn_convention_energy",
    "write_energy",
]
