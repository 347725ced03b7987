"""Draw docs/architecture.svg: snn2hw's packages in flow order and the imports between them.

The edges are read from the code (every ``snn2hw`` import, lazy ones included), so the picture
cannot drift from the source; the layer rows follow the contract that
``tests/architecture/layers.py`` enforces. Usage: ``python scripts/draw_architecture.py``.
"""

from __future__ import annotations

import sys
from collections import Counter
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.patches import FancyArrowPatch, FancyBboxPatch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "architecture"))
from layers import imports  # noqa: E402

ROWS = [
    ["cli"],
    ["pipeline"],
    ["training", "backends", "exporters", "chip", "reporting"],
    ["netx"],
    ["quant"],
    ["nir"],
    ["nn", "data", "compat"],
    ["common"],
]
JOBS = {
    "cli": "click commands only",
    "pipeline": "samples, export, simulate,\ncompare, report, demo",
    "training": "BPTT loop, QAT,\ncheckpoints, configs",
    "backends": "protocol + registry: torch_int,\nevent, lava, onnx_runtime",
    "exporters": "integer / float ONNX",
    "chip": "targets, core mapping,\nenergy & latency",
    "reporting": "report pages, plots",
    "netx": "lava-dl netx .net reader,\n-> quantized graph + NIR",
    "quant": "quantized graph, formats, PTQ",
    "nir": "torch <-> NIR, conventions,\nfloat executor",
    "nn": "neurons, surrogates,\nfused LIF, layers",
    "data": "datasets",
    "compat": "lava on Python 3.11",
    "common": "errors, atomic files, units, tables, readout",
}


def package_edges(pkg: Path) -> Counter[tuple[str, str]]:
    """(importer, imported) package pairs with the number of import statements."""
    edges: Counter[tuple[str, str]] = Counter()
    for path in pkg.rglob("*.py"):
        rel = path.relative_to(pkg)
        here = "cli" if rel.parts == ("cli.py",) else rel.parts[0] if len(rel.parts) > 1 else None
        for _, mod in imports(path, pkg):
            parts = mod.split(".")
            there = parts[1] if len(parts) > 1 else None
            if here and there and here != there and there in JOBS:
                edges[(here, there)] += 1
    return edges


def draw(out: Path) -> None:
    pos: dict[str, tuple[float, float]] = {}
    for r, row in enumerate(ROWS):
        for c, name in enumerate(row):
            pos[name] = ((c + 0.5) / len(row) * 10.0, (len(ROWS) - 1 - r) * 1.25)
    fig, ax = plt.subplots(figsize=(12, 9))
    bw, bh = 1.75, 0.72
    for (a, b), n in package_edges(ROOT / "snn2hw").items():
        (x0, y0), (x1, y1) = pos[a], pos[b]
        ax.add_patch(FancyArrowPatch((x0, y0 - bh / 2), (x1, y1 + bh / 2), arrowstyle="-|>",
                                     mutation_scale=10, lw=0.4 + 0.15 * min(n, 8),
                                     color="#7a8899", alpha=0.7,
                                     connectionstyle="arc3,rad=0.06"))
    for name, (x, y) in pos.items():
        ax.add_patch(FancyBboxPatch((x - bw / 2, y - bh / 2), bw, bh,
                                    boxstyle="round,pad=0.02", fc="#eef3fb", ec="#33507a"))
        ax.text(x, y + 0.15, name + "/" * (name != "cli"), ha="center", va="center",
                fontsize=11, weight="bold", color="#1d3557")
        ax.text(x, y - 0.13, JOBS[name], ha="center", va="center", fontsize=7.5)
    ax.set_xlim(-0.3, 10.3)
    ax.set_ylim(-0.8, (len(ROWS) - 1) * 1.25 + 0.8)
    ax.axis("off")
    ax.set_title("snn2hw packages in flow order; arrows: imports found in the code "
                 "(width: number of import statements)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out, format="svg")


if __name__ == "__main__":
    draw(ROOT / "docs" / "architecture.svg")
    print(f"wrote {ROOT / 'docs' / 'architecture.svg'}")
