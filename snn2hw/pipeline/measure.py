"""Measure the torch paths: wall time per inference, and GPU energy through NVML on CUDA.

Everything here is *measured* (the chip package only models). :func:`measure_torch_paths`
runs the torch integer backend (and the float path when given) and returns the
``measured`` record :func:`snn2hw.chip.energy.estimate_energy` shows as measured rows.

GPU energy: NVML's total-energy counter (mJ) read around the timed runs, which are repeated
until at least ``min_duration_s`` has passed so the counter resolves (it advances in coarse
steps: over a few short batches it may not move at all). When the counter is missing or
did not advance, the energy is the mean sampled board power x time, and the record's
``method`` says which of the two was used. A sampled power never yields 0 J.

May import: ``snn2hw.backends``, ``snn2hw.chip``, ``snn2hw.quant``, ``snn2hw.common``.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from snn2hw.chip.energy import MEASURED
from snn2hw.quant.qgraph import QGraph

__all__ = ["DEFAULT_MIN_DURATION_S", "PowerSampler", "measure_path", "measure_torch_paths"]

# Shortest metered run: NVML's energy counter needs about this long to resolve a few W.
DEFAULT_MIN_DURATION_S = 1.0


def _nvml_start(device_index: int) -> tuple[Any, Any] | None:
    """(pynvml module, handle) when NVML is importable and works, else None."""
    try:
        import pynvml  # type: ignore[import-not-found]

        pynvml.nvmlInit()
        return pynvml, pynvml.nvmlDeviceGetHandleByIndex(device_index)
    except Exception:  # noqa: BLE001 - any NVML failure just means "not measured"
        return None


class PowerSampler:
    """Samples NVML board power (W) in a thread; also reads the energy counter if any
    (``energy_mj``: the counter's advance over the ``with`` block, None without one)."""

    def __init__(self, nv: Any, handle: Any, period_s: float = 0.005) -> None:
        self.nv, self.handle, self.period = nv, handle, period_s
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self.energy_mj: float | None = None
        self._e0: float | None = None

    def _sample(self) -> bool:
        try:
            self.samples.append(self.nv.nvmlDeviceGetPowerUsage(self.handle) / 1000.0)
        except Exception:  # noqa: BLE001
            return False
        return True

    def _loop(self) -> None:
        while not self._stop.is_set():
            if not self._sample():
                return
            time.sleep(self.period)

    def __enter__(self) -> PowerSampler:
        try:
            self._e0 = float(self.nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:  # noqa: BLE001 - older GPUs have no energy counter
            self._e0 = None
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        if not self.samples:  # a block shorter than the thread's start-up: one reading
            self._sample()
        if self._e0 is not None:
            try:
                e1 = float(self.nv.nvmlDeviceGetTotalEnergyConsumption(self.handle))
                self.energy_mj = e1 - self._e0
            except Exception:  # noqa: BLE001
                self.energy_mj = None


def _timed(fn: Callable[[], Any], repeats: int, sync: Callable[[], None],
           meter: PowerSampler | None = None, min_duration_s: float = 0.0
           ) -> tuple[float, int]:
    """``(mean wall time per call, calls)``: at least ``repeats`` calls after one warm-up,
    more until ``min_duration_s`` has passed; ``meter`` (if any) runs only around the timed
    calls. Extra calls come in rounds sized from the time per call so far (one sync per
    round, not per call)."""
    fn()  # warm-up (allocations, kernel selection)
    sync()
    calls = 0
    todo = max(1, int(repeats))
    with meter if meter is not None else contextlib.nullcontext():
        t0 = time.perf_counter()
        while True:
            for _ in range(todo):
                fn()
            calls += todo
            sync()
            wall = time.perf_counter() - t0
            if wall >= min_duration_s:
                break
            per = wall / calls
            todo = max(1, math.ceil((min_duration_s - wall) / per)) if per > 0 else calls
    return wall / calls, calls


def measure_path(
    fn: Callable[[], Any],
    *,
    batch: int,
    repeats: int = 3,
    sync: Callable[[], None] = lambda: None,
    nvml: tuple[Any, Any] | None = None,
    idle_w: float | None = None,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> dict[str, Any]:
    """Time one batched path ``fn`` (``batch`` samples per call); with ``nvml`` (module,
    handle) also its energy per inference. Without NVML only ``repeats`` calls are timed
    (``min_duration_s`` applies to metered runs, where the energy counter needs it)."""
    if nvml is None:
        wall, calls = _timed(fn, repeats, sync)
        rec: dict[str, Any] = {"method": f"time.perf_counter, mean of {calls} batched "
                                         f"run(s) of {batch} samples after one warm-up"}
    else:
        nvmod, handle = nvml
        ps = PowerSampler(nvmod, handle)
        wall, calls = _timed(fn, repeats, sync, ps, min_duration_s)
        total_s = wall * calls
        power = float(np.mean(ps.samples)) if ps.samples else None
        counter_j = ps.energy_mj / 1000.0 if ps.energy_mj is not None else None
        if counter_j is not None and counter_j > 0:
            energy_j = counter_j / calls  # per batch
            how = "NVML energy counter"
        elif power is not None:
            energy_j = power * wall
            how = ("NVML power samples x time (the energy counter did not advance over "
                   f"{total_s:.3g} s)" if counter_j is not None
                   else "NVML power samples x time (no energy counter)")
        else:
            energy_j = None
            how = "NVML gave neither an energy counter advance nor power samples"
        rec = {
            "method": f"time.perf_counter, mean of {calls} batched run(s) of {batch} samples "
                      f"after one warm-up (at least {repeats} run(s) and "
                      f"{min_duration_s:g} s); {how}",
            "power_w_mean": power,
            "energy_j_per_inference": energy_j / batch if energy_j is not None else None,
            "dynamic_energy_j_per_inference":
                ((power - idle_w) * wall / batch
                 if power is not None and idle_w is not None else None),
            "timed_runs": calls,
            "timed_s": total_s,
        }
    rec["wall_s_per_batch"] = wall
    rec["wall_s_per_inference"] = wall / batch
    return rec


def measure_torch_paths(
    graph: QGraph,
    ints: np.ndarray,
    device: str = "cpu",
    *,
    float_net: Any | None = None,
    float_frames: Any | None = None,
    repeats: int = 3,
    num_steps: int | None = None,
    min_duration_s: float = DEFAULT_MIN_DURATION_S,
) -> dict[str, Any]:
    """Measure wall time per inference of the torch integer path (and the float path when
    ``float_net``, a ``NIRNet``, is given) on ``device``; with CUDA and ``pynvml`` also
    the GPU energy per inference (NVML energy counter over at least ``min_duration_s`` of
    timed runs, else sampled board power x time; see :func:`measure_path`).

    ``float_frames`` default: ``ints x input unit`` from the graph metadata. The result is
    the ``measured`` argument of :func:`snn2hw.chip.energy.estimate_energy`; every figure in
    it is measured."""
    import torch

    from snn2hw.backends.torch_int import TorchIntNetwork

    arr = np.asarray(ints)
    batch = int(arr.shape[1])
    dev = torch.device(device)
    cuda = dev.type == "cuda" and torch.cuda.is_available()
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    nv = _nvml_start(dev.index if dev.index is not None else torch.cuda.current_device()) \
        if cuda else None
    out: dict[str, Any] = {
        "kind": MEASURED, "device": str(dev), "samples": batch, "repeats": repeats,
        "paths": {}, "energy_measured": nv is not None,
        "energy_note": ("GPU energy from NVML (board power, includes idle power; "
                        "'dynamic' subtracts the idle power sampled before the run)"
                        if nv is not None else
                        "energy not measured: " + ("pynvml is not installed or NVML failed"
                                                   if cuda else "no CUDA device (CPU run)")),
    }
    net = TorchIntNetwork(graph, device=dev)
    paths: list[tuple[str, Callable[[], Any]]] = [
        ("torch-int", lambda: net.run(arr, num_steps))]
    if float_net is not None:
        if float_frames is None:
            unit = float(graph.metadata.get("input_format", {}).get("unit", 1.0))
            float_frames = torch.from_numpy(arr.astype(np.float32) * unit)
        fnet = float_net.to(dev).eval()
        frames = torch.as_tensor(float_frames).to(dev)

        def run_float() -> Any:
            with torch.no_grad():
                return fnet(frames)

        paths.append(("float", run_float))
    idle_w = None
    if nv is not None:
        nvmod, handle = nv
        probe = PowerSampler(nvmod, handle)
        with probe:
            time.sleep(0.3)
        idle_w = float(np.mean(probe.samples)) if probe.samples else None
        out["idle_power_w"] = idle_w
    for name, fn in paths:
        out["paths"][name] = measure_path(fn, batch=batch, repeats=repeats, sync=sync,
                                          nvml=nv, idle_w=idle_w,
                                          min_duration_s=min_duration_s)
    return out
