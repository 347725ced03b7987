"""PNG plots (matplotlib, headless) for reports: rasters, rates, SynOps, energy, accuracy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from snn2hw.common.atomic_io import atomic_path  # noqa: E402


def _save(fig, path: Path) -> Path:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


MARK_GID = "first-divergence"  # gid of the circle :func:`raster_figure` draws at ``mark``


def raster_figure(
    spikes: dict[str, np.ndarray],
    sample: int,
    *,
    title: str = "",
    mark: tuple[int, str, int] | None = None,
    other: dict[str, np.ndarray] | None = None,
):
    """The figure of :func:`raster` (not saved). The ``mark`` circle is the one artist with
    gid :data:`MARK_GID`, in the panel of the marked layer, at (step, neuron)."""
    layers = list(spikes)
    if mark is not None and mark[1] not in spikes:
        raise ValueError(f"mark names layer '{mark[1]}', not one of {layers}")
    fig, axes = plt.subplots(
        len(layers), 1, figsize=(8, 1.6 + 1.4 * len(layers)), sharex=True, squeeze=False
    )
    for ax, name in zip(axes[:, 0], layers, strict=True):
        s = spikes[name][:, sample].reshape(spikes[name].shape[0], -1)
        t, n = np.nonzero(s)
        ax.scatter(t, n, s=4, marker="|", color="black", linewidths=0.8)
        if other is not None and name in other:
            o = other[name][:, sample].reshape(s.shape)
            dt_, dn = np.nonzero(o != s)
            ax.scatter(dt_, dn, s=20, marker="x", color="red", label="differs")
        if mark is not None and mark[1] == name:
            ax.scatter([mark[0]], [mark[2]], s=120, facecolors="none", edgecolors="red",
                       linewidths=1.5, gid=MARK_GID, zorder=3)
        ax.set_ylabel(f"{name}\n(neuron)", fontsize=8)
        ax.set_ylim(-1, s.shape[1])
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title or f"spike raster, sample {sample}", fontsize=10)
    return fig


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
    (step, layer, neuron; neuron as the C-order flat index) circles a divergence in red;
    ``other`` overlays a second backend's spikes where they differ (red crosses)."""
    return _save(raster_figure(spikes, sample, title=title, mark=mark, other=other),
                 Path(path))


def bars(
    values: dict[str, float], path: str | Path, *, title: str, ylabel: str, log: bool = False
) -> Path:
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


def lines(
    series: dict[str, np.ndarray], path: str | Path, *, title: str, xlabel: str, ylabel: str
) -> Path:
    """One line per series (e.g. SynOps per step per layer)."""
    fig, ax = plt.subplots(figsize=(7, 3.2))
    for k, v in series.items():
        ax.plot(np.arange(len(v)), v, label=k, linewidth=1)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=7)
    return _save(fig, Path(path))


def stacked(
    breakdowns: dict[str, dict[str, float]], path: str | Path, *, title: str, ylabel: str
) -> Path:
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


# ----- report helpers (snn2hw.reporting.report) -----
def _energy_unit(max_pj: float) -> tuple[str, float]:
    """Display unit and divisor for energies given in pJ."""
    for scale, unit in ((1e9, "mJ"), (1e6, "µJ"), (1e3, "nJ")):
        if max_pj >= scale:
            return unit, scale
    return "pJ", 1.0


def energy_breakdown(
    breakdowns: dict[str, dict[str, float | None] | None], path: str | Path, *, title: str
) -> Path:
    """Stacked bars of energy per inference (pJ in, auto unit out), one bar per target.

    A target whose value is ``None`` (no per-operation energy published) gets a labelled
    empty slot instead of a bar; a component that is ``None`` (e.g. static power not given)
    is left out and named under the chart."""
    items = list(breakdowns)
    comps: list[str] = []
    missing: set[str] = set()
    for b in breakdowns.values():
        for c, v in (b or {}).items():
            if v is None:
                missing.add(c)
            elif c not in comps:
                comps.append(c)
    totals = [sum(v for v in (breakdowns[i] or {}).values() if v is not None) for i in items]
    unit, scale = _energy_unit(max(totals, default=0.0))
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(items) + 3.0), 3.6))
    bottom = np.zeros(len(items))
    colors = plt.get_cmap("tab10").colors
    for k, c in enumerate(comps):
        vals = np.array([((breakdowns[i] or {}).get(c) or 0.0) / scale for i in items])
        ax.bar(range(len(items)), vals, bottom=bottom, label=c, color=colors[k % 10], width=0.6)
        bottom += vals
    top = max(bottom.max(initial=0.0), 1e-12)
    for x, i in enumerate(items):
        if breakdowns[i] is None:
            ax.text(
                x,
                top * 0.05,
                "no per-op energy\npublished",
                ha="center",
                va="bottom",
                fontsize=8,
                color="#555555",
            )
        else:
            ax.text(x, bottom[x], f"{bottom[x]:.3g} {unit}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(items)), items, fontsize=9)
    ax.set_xlim(-0.8, len(items) - 0.2)
    ax.set_ylim(0, top * 1.18)
    ax.set_ylabel(f"energy per inference ({unit})")
    ax.set_title(title, fontsize=10)
    if comps:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    if missing:
        fig.text(
            0.01,
            -0.02,
            "not included (not given by the target): " + ", ".join(sorted(missing)),
            fontsize=7,
            color="#555555",
            ha="left",
            va="top",
        )
    return _save(fig, Path(path))


def accuracy_bars(values: dict[str, float | None], path: str | Path, *, title: str) -> Path:
    """Accuracies in [0, 1] as horizontal bars with their values; ``None`` reads 'not run'."""
    keys = list(values)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(keys) + 1.2))
    ys = np.arange(len(keys))[::-1]
    for y, k in zip(ys, keys, strict=True):
        v = values[k]
        if v is None:
            ax.text(0.01, y, "not run", va="center", fontsize=8, color="#555555")
            continue
        ax.barh(y, v, color="#4477aa" if k.startswith("float") else "#ee7733", height=0.6)
        ax.text(min(v, 1.0) + 0.01, y, f"{v:.4f}", va="center", fontsize=8)
    ax.set_yticks(ys, keys, fontsize=8)
    ax.set_xlim(0, 1.12)
    ax.set_xlabel("accuracy")
    ax.set_title(title, fontsize=10)
    return _save(fig, Path(path))


def rate_bars(rates: dict[str, float], path: str | Path, *, title: str) -> Path:
    """Firing rate (spikes per neuron per step) per layer, horizontal so long names fit."""
    keys = list(rates)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(keys) + 1.2))
    ys = np.arange(len(keys))[::-1]
    vals = [float(rates[k]) for k in keys]
    ax.barh(ys, vals, color="#4477aa", height=0.6)
    top = max(vals, default=0.0) or 1.0
    for y, v in zip(ys, vals, strict=True):
        ax.text(v + top * 0.01, y, f"{v:.4f}", va="center", fontsize=8)
    ax.set_yticks(ys, keys, fontsize=8)
    ax.set_xlim(0, top * 1.2)
    ax.set_xlabel("spikes per neuron per time step")
    ax.set_title(title, fontsize=10)
    return _save(fig, Path(path))


def layer_raster(
    spikes: dict[str, np.ndarray], sample: int, path: str | Path, *, title: str
) -> Path:
    """Spike raster of one sample, one panel per layer (``[N, B, ...]`` arrays), with
    integer neuron ticks and panel heights that follow the layer sizes (capped)."""
    from matplotlib.ticker import MaxNLocator

    layers = list(spikes)
    sizes = [int(np.prod(spikes[k].shape[2:])) for k in layers]
    ratios = [min(max(n, 8), 256) ** 0.5 for n in sizes]
    fig, axes = plt.subplots(
        len(layers),
        1,
        figsize=(8, 1.2 + 0.25 * sum(ratios)),
        sharex=True,
        squeeze=False,
        gridspec_kw={"height_ratios": ratios},
    )
    for ax, name, n in zip(axes[:, 0], layers, sizes, strict=True):
        s = spikes[name][:, sample].reshape(spikes[name].shape[0], -1)
        t, idx = np.nonzero(s)
        ax.scatter(
            t,
            idx,
            s=6 if n > 64 else 14,
            marker="|" if n > 64 else "o",
            color="black",
            linewidths=0.8,
        )
        ax.set_ylim(-0.5, n - 0.5)
        ax.set_xlim(-0.5, s.shape[0] - 0.5)
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_ylabel(f"{name}\n{n} neurons\n{int(s.sum())} spikes", fontsize=8)
        ax.tick_params(labelsize=8)
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))


def synops_panels(per_step: dict[str, np.ndarray], path: str | Path, *, title: str) -> Path:
    """SynOps per inference: total per layer (left, horizontal bars) and per time step
    (right, one line per layer)."""
    from matplotlib.ticker import EngFormatter

    keys = list(per_step)
    fig, (left, right) = plt.subplots(
        1, 2, figsize=(10, max(2.8, 0.45 * len(keys) + 1.6)), gridspec_kw={"width_ratios": [1, 1.4]}
    )
    totals = [float(np.sum(per_step[k])) for k in keys]
    ys = np.arange(len(keys))[::-1]
    left.barh(ys, totals, color="#4477aa", height=0.6)
    top = max(totals, default=0.0) or 1.0
    for y, v in zip(ys, totals, strict=True):
        left.text(v + top * 0.01, y, f"{v:,.0f}", va="center", fontsize=8)
    left.set_yticks(ys, keys, fontsize=8)
    left.set_xlim(0, top * 1.3)
    left.set_xlabel("SynOps per inference")
    left.xaxis.set_major_formatter(EngFormatter(sep=""))
    for k in keys:
        v = np.asarray(per_step[k], dtype=float)
        right.plot(np.arange(v.size), v, marker="o", markersize=3, linewidth=1, label=k)
    right.set_xlabel("time step")
    right.set_ylabel("SynOps")
    right.yaxis.set_major_formatter(EngFormatter(sep=""))
    right.legend(fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _save(fig, Path(path))
