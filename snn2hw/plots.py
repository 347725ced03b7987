"""PNG plots (matplotlib, headless) for reports: rasters, rates, SynOps, energy, accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from snn2hw.io_utils import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def raster(
    spikes: dict[str, np.ndarray],
    sample: int,
    path: str | Path,
    *,
    title: str = "",
    mark: tuple[int, str, int] | None = None,
    other: dict[str, np.ndarray] | None = None,
) -> Path:
    """Spike raster of every layer for one sample (one panel per layer). ``mark``
    (step, layer, neuron) circles a divergence; ``other`` overlays a second backend's
    spikes where they differ (red crosses)."""
    layers = list(spikes)
    fig, axes = plt.subplots(len(layers), 1, figsize=(8, 1.6 + 1.4 * len(layers)), sharex=True,
                             squeeze=False)
    for ax, name in zip(axes[:, 0], layers):
        s = spikes[name][:, sample].reshape(spikes[name].shape[0], -1)
        t, n = np.nonzero(s)
        ax.scatter(t, n, s=4, marker="|", color="black", linewidths=0.8)
        if other is not None and name in other:
            o = other[name][:, sample].reshape(s.shape)
            dt_, dn = np.nonzero(o != s)
            ax.scatter(dt_, dn, s=20, marker="x", color="red", label="differs")
        if mark is not None and mark[1] == name:
            ax.scatter([mark[0]], [mark[2]], s=120, facecolors="none", edgecolors="red")
        ax.set_ylabel(f"{name}\n(neuron)", fontsize=8)
        ax.set_ylim(-1, s.shape[1])
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title or f"spike raster, sample {sample}", fontsize=10)
    return _save(fig, Path(path))


def bars(values: dict[str, float], path: str | Path, *, title: str, ylabel: str,
         log: bool = False) -> Path:
    """A labelled bar chart (rates, SynOps per layer, accuracies)."""
    fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(values) + 2), 3.2))
    keys = list(values)
    ax.bar(range(len(keys)), [values[k] for k in keys], color="#4477aa")
    ax.set_xticks(range(len(keys)), keys, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    for i, k in enumerate(keys):
        ax.annotate(f"{values[k]:.3g}", (i, values[k]), ha="center", va="bottom", fontsize=7)
    return _save(fig, Path(path))


def lines(series: dict[str, np.ndarray], path: str | Path, *, title: str, xlabel: str,
          ylabel: str) -> Path:
    """One line per series (e.g. SynOps per step per layer)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for k, v in series.items():
        ax.plot(np.arange(len(v)), v, label=k, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, Path(path))


def stacked(breakdowns: dict[str, dict[str, float]], path: str | Path, *, title: str,
            ylabel: str) -> Path:
    """Stacked bars: one bar per item, one colour per component (energy breakdowns)."""
    items = list(breakdowns)
    comps: list[str] = []
    for b in breakdowns.values():
        comps += [c for c in b if c not in comps]
    fig, ax = plt.subplots(figsize=(max(4, 1.2 * len(items) + 2), 3.4))
    bottom = np.zeros(len(items))
    for c in comps:
        vals = np.array([breakdowns[i].get(c, 0.0) for i in items])
        ax.bar(range(len(items)), vals, bottom=bottom, label=c)
        bottom += vals
    ax.set_xticks(range(len(items)), items, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, Path(path))


def as_float_dict(d: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in d.items() if v is not None}
