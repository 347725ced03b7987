"""The SNN-paper convention figure: SNN = SynOps x E_AC against ANN = MACs x E_MAC.

May import: ``snn2hw.chip.targets`` and ``.constants``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snn2hw.chip.energy.constants import MODELLED, const_dict
from snn2hw.chip.targets import Baselines, Constant, load_baselines


@dataclass(frozen=True)
class ConventionEnergy:
    """The usual SNN-paper comparison: SNN = SynOps x E_AC, ANN = MACs x E_MAC (no memory)."""

    synops: float
    macs: float
    e_ac: Constant
    e_mac: Constant

    @property
    def snn_pj(self) -> float:
        return self.synops * self.e_ac.value

    @property
    def ann_pj(self) -> float:
        return self.macs * self.e_mac.value

    @property
    def ratio(self) -> float | None:
        """ANN energy / SNN energy (> 1: the convention says the SNN is cheaper)."""
        return self.ann_pj / self.snn_pj if self.snn_pj > 0 else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "synops": self.synops, "macs": self.macs,
            "snn_pj": self.snn_pj, "ann_pj": self.ann_pj, "ann_over_snn": self.ratio,
            "e_ac": const_dict(self.e_ac), "e_mac": const_dict(self.e_mac),
            "kind": MODELLED,
        }


def snn_convention_energy(synops: float, macs: float,
                          baselines: Baselines | None = None) -> ConventionEnergy:
    """SynOps x E_AC (0.9 pJ) versus MACs x E_MAC (4.6 pJ), constants from baselines.toml."""
    b = baselines if baselines is not None else load_baselines()
    conv = b["snn_convention"]
    return ConventionEnergy(float(synops), float(macs), conv["e_ac_pj"], conv["e_mac_pj"])
