"""Timing of a NIR graph: which dt and which framework convention to read it with.

NIR records neither the time step nor which framework wrote a graph; :func:`resolve_timing`
takes them from the user, else the graph metadata, else a convention's default, and never
guesses silently: a missing one is a one-line :class:`~snn2hw.common.errors.GraphError` that
names the option to pass. Every decision is returned as a note.

May import: ``nir``, :mod:`snn2hw.nir.discretize`, :mod:`snn2hw.nir.fields`,
:mod:`snn2hw.nir.notes` and :mod:`snn2hw.common`.
"""

from __future__ import annotations

import math
from typing import Any

import nir
import numpy as np

from snn2hw.common.errors import GraphError
from snn2hw.nir.discretize import Convention, get_convention
from snn2hw.nir.fields import as_array, graph_metadata
from snn2hw.nir.notes import import_notes


def resolve_timing(
    graph: nir.NIRGraph, dt: float | None = None, convention: str | Convention | None = None
) -> tuple[float, Convention, list[str]]:
    """The time step and convention to read ``graph`` with, and the notes saying why.

    dt: the user's, else the graph metadata's ``dt``, else the convention's default.
    Convention: the user's, else metadata ``convention`` (or a known ``producer``).
    Neither is ever guessed silently: a missing one is a :class:`GraphError` that says
    which option to pass."""
    md = graph_metadata(graph)
    notes = import_notes(graph)
    known = ", ".join(_known_conventions())
    conv: Convention | None
    if isinstance(convention, Convention):
        conv = convention
        notes.append(f"convention '{conv.name}' given by the user")
    elif convention is not None:
        conv = get_convention(str(convention))
        notes.append(f"convention '{conv.name}' given by the user")
    else:
        conv = None
        for key in ("convention", "producer"):
            name = md.get(key)
            if name is None:
                continue
            name = str(name).strip().lower()
            if name.partition(":")[0] in _known_conventions():
                conv = get_convention(name)
                notes.append(f"convention '{name}' from the graph metadata ('{key}')")
                break
            if key == "convention":
                raise GraphError(
                    f"the graph metadata names convention '{name}', which snn2hw does not "
                    f"know; pass --convention NAME (one of: {known})"
                )
    if dt is not None:
        dt_val = _check_dt(dt, "--dt")
        notes.append(f"dt = {dt_val:g} s given by the user")
    elif md.get("dt") is not None:
        dt_val = _check_dt(md["dt"], "the graph metadata 'dt'")
        notes.append(f"dt = {dt_val:g} s from the graph metadata")
    elif conv is not None and conv.dt is not None:
        dt_val = float(conv.dt)
        notes.append(f"dt = {dt_val:g} s: the default of the '{conv.name}' convention")
    elif conv is not None and conv.dt_from_r and (found := dt_from_rockpool_r(graph)):
        dt_val = found
        notes.append(f"dt = {dt_val:.6g} s recovered from r = tau*exp(-dt/tau)/dt "
                     f"(the '{conv.name}' exporter's encoding)")
    elif conv is None:
        raise GraphError(
            "this NIR graph stores no dt; pass --dt SECONDS or --convention NAME "
            f"(NIR records neither the time step nor which framework wrote it; known: {known})"
        )
    else:
        raise GraphError(
            f"this NIR graph stores no dt and the '{conv.name}' convention has no default; "
            "pass --dt SECONDS"
        )
    if conv is None:
        raise GraphError(
            "this NIR graph does not say which framework wrote it; pass --convention NAME "
            f"(one of: {known}) so that decays, thresholds and resets are read as intended"
        )
    _check_producer(md, conv)
    misfit = convention_misfits(graph, conv, dt_val)
    if misfit:
        raise GraphError(
            f"{misfit[0]}: this graph does not look like a '{conv.name}' export; pass the "
            f"--convention of the framework that wrote it (one of: {known}), or "
            "--convention nir to read it by NIR's equations alone"
        )
    notes.extend(f"{conv.name}: {n}" for n in conv.notes)
    notes.append(conv.describe())
    return dt_val, conv, notes


_PRODUCERS = {"snn2hw": "snn2hw", "snntorch": "snntorch", "norse": "norse",
              "spikingjelly": "spikingjelly", "sinabs": "sinabs", "rockpool": "rockpool"}


def _check_producer(md: dict, conv: Convention) -> None:
    """A user convention naming another framework than the graph's own metadata."""
    for key in ("producer", "convention"):
        val = str(md.get(key, "")).strip().lower().partition(":")[0]
        wrote = _PRODUCERS.get(val)
        if wrote and conv.name not in (wrote, "nir") and not (
                wrote == "snn2hw" and conv.name == "snn2hw"):
            raise GraphError(
                f"the graph metadata says '{key}' = '{val}', but convention '{conv.name}' was "
                f"asked for; pass --convention {wrote} (or nir to read NIR's equations alone)"
            )


def _close(a: Any, b: Any, rtol: float = 1e-4) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return bool(np.all(np.abs(a - b) <= rtol * np.maximum(np.abs(b), 1e-30)))


def _field(node: nir.NIRNode, key: str, default: float = 0.0) -> np.ndarray:
    val = getattr(node, key, None)
    return np.asarray(default if val is None else as_array(val), dtype=np.float64)


def convention_misfits(graph: nir.NIRGraph, conv: Convention, dt: float) -> list[str]:
    """Neuron fields that the framework of ``conv`` never writes (its exporter's
    fingerprints, docs/nir.md "Framework conventions"); empty when the graph fits or the
    convention has no fingerprint (nir, snn2hw). Each entry names the node."""
    out: list[str] = []
    for name, node in graph.nodes.items():
        why = _misfit(node, conv, dt)
        if why:
            out.append(f"node '{name}' ({type(node).__name__}): {why}")
    return out


def _misfit(node: nir.NIRNode, conv: Convention, dt: float) -> str:
    fw = conv.name
    if not isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI)):
        return ""
    r = _field(node, "r", 1.0)
    if fw == "snntorch":
        if isinstance(node, nir.IF):
            return "snnTorch exports no IF neurons"
        if isinstance(node, (nir.LIF, nir.LI)) and not _close(r * dt, _field(node, "tau")):
            return "r*dt != tau, but snnTorch always writes r = tau/dt (a per-step gain of 1)"
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)) and not (
                _close(r * dt, _field(node, "tau_mem"))
                and _close(_field(node, "w_in", 1.0) * dt, _field(node, "tau_syn"))):
            return "snnTorch always writes r = tau_mem/dt and w_in = tau_syn/dt"
    elif fw == "sinabs":
        if isinstance(node, (nir.CubaLIF, nir.CubaLI)):
            return "Sinabs exports no CubaLIF/CubaLI neurons"
        if not _close(r, 1.0):
            return "Sinabs always writes r = 1"
        if isinstance(node, (nir.LIF, nir.LI)) and np.all(_field(node, "tau") < 1.0):
            return "tau < 1, but Sinabs writes time constants in steps (dt = 1)"
    elif fw == "norse":
        if not _close(r, 1.0):
            return "Norse always writes r = 1"
        if isinstance(node, (nir.LIF, nir.LI)) and np.any(_field(node, "tau") / dt > 1e3):
            return f"tau/dt > 1000 s, but norse 1.1.0 writes tau = dt*tau_mem (dt = {dt:g})"
    elif fw == "spikingjelly":
        if isinstance(node, nir.IF) and not _close(r * dt, 1.0):
            return f"SpikingJelly writes IF r = 1/dt (= {1 / dt:g})"
        if isinstance(node, nir.LIF) and not (
                _close(r, 1.0) or _close(r * dt, _field(node, "tau"))):
            return "SpikingJelly writes LIF r = 1 or r = tau/dt"
    elif fw == "rockpool":
        if isinstance(node, (nir.IF, nir.CubaLI)):
            return f"Rockpool exports no {type(node).__name__} neurons"
        tau = _field(node, "tau_mem" if isinstance(node, nir.CubaLIF) else "tau")
        if not _close(r, tau * np.exp(-dt / tau) / dt, 1e-3):
            return (f"r != tau*exp(-dt/tau)/dt for dt = {dt:g} s (Rockpool's encoding); "
                    "check --dt")
    return ""


def dt_from_rockpool_r(graph: nir.NIRGraph) -> float | None:
    """The dt Rockpool's exporter encoded in ``r = tau·exp(-dt/tau)/dt`` (``x = dt/tau``
    solves ``x·exp(x) = 1/r``); None when the graph has no such neuron or its neurons
    disagree."""
    found: list[float] = []
    for node in graph.nodes.values():
        if isinstance(node, (nir.LIF, nir.LI, nir.CubaLIF)):
            tau = _field(node, "tau_mem" if isinstance(node, nir.CubaLIF) else "tau")
            r = _field(node, "r", 1.0)
            tau, r = np.broadcast_arrays(tau, r)
            if np.any(r <= 0) or not np.all(np.isfinite(tau)):
                return None
            c = 1.0 / r
            x = np.log1p(c)  # Newton on f(x) = x e^x - c from x = log(1 + c)
            for _ in range(60):
                ex = np.exp(x)
                x = x - (x * ex - c) / (ex * (1.0 + x))
            found.extend((x * tau).reshape(-1).tolist())
    if not found:
        return None
    dt = float(np.median(found))
    if not (dt > 0 and math.isfinite(dt)) or max(abs(f - dt) for f in found) > 1e-4 * dt:
        return None
    return dt


def _known_conventions() -> list[str]:
    from snn2hw.nir.discretize import CONVENTIONS

    return list(CONVENTIONS)


def _check_dt(value: Any, source: str) -> float:
    try:
        dt = float(value)
    except (TypeError, ValueError):
        raise GraphError(f"dt from {source} is not a number: {value!r}") from None
    if not (dt > 0 and math.isfinite(dt)):
        raise GraphError(f"dt from {source} must be a positive number of seconds, got {value!r}")
    return dt
