"""Baselines on the same work: the equivalent ANN, the SNN run dense and time-stepped on
conventional hardware (each at the SNN-paper E_MAC and at Horowitz's fp32 / int8 mult + add),
the convention's SNN figure, and rows for measured torch paths (data passed in).

May import: ``snn2hw.chip.targets``, ``snn2hw.common`` and the sibling modules
``.constants`` / ``.convention``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snn2hw.chip.energy.constants import MEASURED, MODELLED
from snn2hw.chip.energy.convention import ConventionEnergy
from snn2hw.chip.targets import Baselines, Constant
from snn2hw.common.formatting import format_count


@dataclass
class BaselineRow:
    """One comparison line. ``kind`` is 'modelled' or 'measured'."""

    name: str
    kind: str
    energy_pj: float | None
    basis: str
    wall_s: float | None = None
    count: float | None = None  # operations behind a modelled figure
    group: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dict(vars(self))


def baseline_rows(b: Baselines, macs: int, steps: int, synops: float,
                  conv: ConventionEnergy) -> tuple[list[BaselineRow], list[Constant]]:
    """Convention, equivalent-ANN and dense-SNN rows, and the Horowitz constants used."""
    h = b["horowitz_45nm"]
    fp32 = (h["fp32_mult_pj"], h["fp32_add_pj"])
    int8 = (h["int8_mult_pj"], h["int8_add_pj"])
    per_mac = [
        ("SNN-paper E_MAC", conv.e_mac.value, f"E_MAC = {conv.e_mac.value:g} pJ "
                                              "(SNN-paper convention)"),
        ("fp32 mult + add", fp32[0].value + fp32[1].value,
         f"Horowitz 45 nm fp32 {fp32[0].value:g} + {fp32[1].value:g} pJ"),
        ("int8 mult + add", int8[0].value + int8[1].value,
         f"Horowitz 45 nm int8 {int8[0].value:g} + {int8[1].value:g} pJ"),
    ]
    ratio = f"; the convention's ANN / SNN ratio is {conv.ratio:.3g}" if conv.ratio else ""
    rows = [BaselineRow("SNN-paper convention: SNN = SynOps x E_AC", MODELLED, conv.snn_pj,
                        f"{format_count(synops)} SynOps x {conv.e_ac.value:g} pJ (compare "
                        f"the ANN rows: MACs x E_MAC){ratio}", count=synops, group="convention")]
    for label, e, basis in per_mac:
        rows.append(BaselineRow(f"equivalent ANN, one forward pass, {label}", MODELLED,
                                macs * e, f"{macs:,} MACs x {e:.3g} pJ; {basis}", count=macs,
                                group="ann"))
    for label, e, basis in per_mac:
        rows.append(BaselineRow(
            f"SNN dense, time-stepped on conventional HW, {label}", MODELLED,
            macs * steps * e, f"{macs:,} MACs x {steps} steps x {e:.3g} pJ; {basis}",
            count=macs * steps, group="dense_snn"))
    return rows, [*fp32, *int8]


def measured_rows(measured: dict[str, Any] | None) -> list[BaselineRow]:
    """Rows for :func:`snn2hw.pipeline.measure.measure_torch_paths`' result (or one
    'not measured' row)."""
    if not measured:
        return [BaselineRow("torch paths on this machine", MEASURED, None,
                            "not measured (pass measure_torch_paths(...) results)",
                            group="measured")]
    rows = []
    for name, m in measured.get("paths", {}).items():
        e_j = m.get("energy_j_per_inference")
        basis = f"{measured.get('device', '?')}: {m.get('method', '')}"
        if e_j is None:
            basis += f"; {measured.get('energy_note', 'energy not measured')}"
        rows.append(BaselineRow(f"{name} on {measured.get('device', '?')}", MEASURED,
                                None if e_j is None else e_j * 1e12, basis,
                                wall_s=m.get("wall_s_per_inference"), group="measured"))
    return rows
