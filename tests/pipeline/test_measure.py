"""Measuring the torch paths: CPU wall time without energy, and the NVML energy path with a
fake NVML module (CPU-runnable): a counter that never advances falls back to sampled power
x time (never 0 J), and metered runs last at least the minimum duration."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from snn2hw.chip.energy import estimate_energy
from snn2hw.chip.mapping import map_to_cores
from snn2hw.chip.targets import load_target
from snn2hw.pipeline import measure
from snn2hw.pipeline.energy import activity_from_run
from snn2hw.pipeline.measure import measure_path, measure_torch_paths
from snn2hw.pipeline.simulate import run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


def tiny_graph() -> QGraph:
    z = np.zeros(3, dtype=np.int64)
    nodes = {
        "in": InputNode("in", (4,)),
        "w1": DenseNode("w1", np.full((3, 4), 40, dtype=np.int64)),
        "l1": LIFNode("l1", (3,), du=4095, dv=0, vth=100, bias_mant=z, bias_exp=z.copy()),
        "out": OutputNode("out", (3,)),
    }
    edges = [("in", "w1"), ("w1", "l1"), ("l1", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=2)


class FakeNVML:
    """Stands in for ``pynvml``: constant board power; the total-energy counter either
    advances with wall time at that power or (fault injected) never moves, or is absent."""

    def __init__(self, power_w: float = 100.0, counter: str = "stuck") -> None:
        self.power_w, self.counter = power_w, counter
        self.t0 = time.perf_counter()
        self.lock = threading.Lock()
        self.power_reads = 0
        self.inits = 0

    def nvmlInit(self) -> None:  # noqa: N802 - pynvml's names
        self.inits += 1

    def nvmlDeviceGetHandleByIndex(self, index: int) -> str:  # noqa: N802
        return f"gpu{index}"

    def nvmlDeviceGetPowerUsage(self, handle: str) -> float:  # noqa: N802
        with self.lock:
            self.power_reads += 1
        return self.power_w * 1000.0  # mW

    def nvmlDeviceGetTotalEnergyConsumption(self, handle: str) -> float:  # noqa: N802
        if self.counter == "absent":
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")
        if self.counter == "stuck":
            return 123_456.0  # mJ, never advances
        return 123_456.0 + (time.perf_counter() - self.t0) * self.power_w * 1000.0


def batch_fn(seconds: float = 0.014):
    calls = []

    def fn() -> None:
        calls.append(time.perf_counter())
        time.sleep(seconds)

    return fn, calls


def test_stuck_energy_counter_falls_back_to_power_times_time() -> None:
    """The H200 case: a 14 ms batch x 3 repeats left the counter unchanged and 0 J was
    reported next to 103 W. Now: power x time, and the method says so."""
    nv = FakeNVML(power_w=103.0, counter="stuck")
    fn, calls = batch_fn()
    rec = measure_path(fn, batch=8, repeats=3, nvml=(nv, "gpu0"), idle_w=60.0,
                       min_duration_s=0.1)
    assert rec["power_w_mean"] == pytest.approx(103.0)
    e = rec["energy_j_per_inference"]
    assert e is not None and e > 0
    assert e == pytest.approx(103.0 * rec["wall_s_per_batch"] / 8)
    assert "power samples x time" in rec["method"] and "did not advance" in rec["method"]
    assert "energy counter did not advance" in rec["method"]
    assert rec["dynamic_energy_j_per_inference"] == pytest.approx(
        (103.0 - 60.0) * rec["wall_s_per_batch"] / 8)
    assert len(calls) == rec["timed_runs"] + 1  # one warm-up


def test_minimum_duration_is_respected_and_counter_used_when_it_advances() -> None:
    nv = FakeNVML(power_w=50.0, counter="advancing")
    fn, calls = batch_fn(0.01)
    t0 = time.perf_counter()
    rec = measure_path(fn, batch=4, repeats=3, nvml=(nv, "gpu0"), min_duration_s=0.25)
    t_end = time.perf_counter()
    assert t_end - t0 >= 0.25
    assert rec["timed_runs"] > 3  # 3 x 10 ms would not reach 0.25 s
    assert rec["timed_s"] >= 0.25
    assert rec["timed_s"] == pytest.approx(rec["wall_s_per_batch"] * rec["timed_runs"])
    assert t_end - calls[1] >= 0.25  # the timed calls (after the warm-up) span the minimum
    assert "NVML energy counter" in rec["method"] and "0.25 s" in rec["method"]
    # the counter advanced at 50 W over the metered block (a little longer than the runs)
    per_batch_j = rec["energy_j_per_inference"] * 4
    assert per_batch_j == pytest.approx(50.0 * rec["wall_s_per_batch"], rel=0.2)


def test_absent_counter_and_no_power_samples() -> None:
    nv = FakeNVML(power_w=80.0, counter="absent")
    fn, _ = batch_fn(0.001)
    rec = measure_path(fn, batch=2, repeats=1, nvml=(nv, "gpu0"), min_duration_s=0.02)
    assert "no energy counter" in rec["method"]
    assert rec["energy_j_per_inference"] == pytest.approx(80.0 * rec["wall_s_per_batch"] / 2)

    class NoPower(FakeNVML):
        def nvmlDeviceGetPowerUsage(self, handle: str) -> float:  # noqa: N802
            raise RuntimeError("NVML_ERROR_NOT_SUPPORTED")

    rec = measure_path(fn, batch=2, repeats=1, nvml=(NoPower(counter="stuck"), "gpu0"),
                       min_duration_s=0.02)
    assert rec["power_w_mean"] is None and rec["energy_j_per_inference"] is None  # not 0 J


def test_without_nvml_only_the_repeats_are_timed() -> None:
    fn, calls = batch_fn(0.001)
    rec = measure_path(fn, batch=2, repeats=3, min_duration_s=5.0)
    assert len(calls) == 4 and "energy_j_per_inference" not in rec
    assert rec["method"] == ("time.perf_counter, mean of 3 batched run(s) of 2 samples "
                             "after one warm-up")


def test_nvml_start_uses_the_pynvml_module(monkeypatch) -> None:
    nv = FakeNVML()
    monkeypatch.setitem(sys.modules, "pynvml", nv)
    started = measure._nvml_start(1)
    assert started == (nv, "gpu1") and nv.inits == 1
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails: not measured
    assert measure._nvml_start(0) is None


def test_measure_torch_paths_cpu_reports_wall_time_not_energy() -> None:
    loihi = load_target("loihi")
    g = tiny_graph()
    x = np.ones((3, 4, 4), dtype=np.int64)
    m = measure_torch_paths(g, x, "cpu", repeats=1)
    assert m["kind"] == "measured" and not m["energy_measured"]
    assert "not measured" in m["energy_note"]
    p = m["paths"]["torch-int"]
    assert p["wall_s_per_inference"] > 0 and "energy_j_per_inference" not in p
    run = run_backend("event", g, x)
    rep = estimate_energy(g, loihi, activity_from_run(run), map_to_cores(g, loihi), measured=m,
                          inputs=x)
    row = next(r for r in rep.baselines if r.kind == "measured")
    assert row.wall_s == p["wall_s_per_inference"] and row.energy_pj is None
    md = rep.markdown()
    assert "not measured" in md and "energy (measured)" in md and "energy (modelled)" in md
