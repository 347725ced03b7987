"""snn2hw's Lava backend on the issue-14 networks: the Sinabs N-MNIST CNN of the NIR paper
(8,970 neurons, 28 Loihi cores, T = 30 / 100 / 300) and the 784-1024-1024-10 LIF MLP fed
MNIST digits (T = 100), the same graphs and inputs as ``bench_event.py --real``.

Per workload: ``first call`` (build, compile, start and run a new ``LavaNetwork``), ``run``
(a second call on the same network: the compiled network is reused), both per sample; the
per-step cost of the reused network (``run / (samples x steps)``); the event simulator's
time on the same input (1 thread) for scale; and whether Lava's spikes equal the event
simulator's on every LIF. Lava runs its bit-accurate CPU models (one process per Lava
process: ``Loihi2SimCfg(select_tag="fixed_pt")`` through ``snn2hw.backends.lava``).

Medians of ``--rounds`` rounds. Usage: ``python benchmarks/bench_lava_real.py [--samples 4]
[--rounds 3] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from bench_event import (  # noqa: E402
    SEED,
    calibrate_mlp_vth,
    cnn_graph,
    cnn_input,
    mlp_graph,
    mnist_input,
)
from bench_report import print_table, write_json  # noqa: E402

from snn2hw.backends import event  # noqa: E402
from snn2hw.backends import lava as lava_backend  # noqa: E402
from snn2hw.quant.qgraph import QGraph  # noqa: E402


def measure(name: str, graph: QGraph, x: np.ndarray, rounds: int) -> dict[str, Any]:
    """Medians over ``rounds`` rounds, each: the event run, then a new LavaNetwork's first
    call and its second call."""
    steps = int(x.shape[0]) + graph.depth()
    batch = int(x.shape[1])
    times: dict[str, list[float]] = {"event": [], "first": [], "run": []}
    same = True
    for _ in range(rounds):
        t0 = time.perf_counter()
        ref = event.run(graph, x, num_steps=steps, threads=1)
        times["event"].append(time.perf_counter() - t0)
        net = lava_backend.LavaNetwork(graph)
        try:
            t0 = time.perf_counter()
            net.run(x, steps)
            times["first"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            res = net.run(x, steps)
            times["run"].append(time.perf_counter() - t0)
        finally:
            net.close()
        same = same and all(np.array_equal(np.asarray(res.spikes[k]), np.asarray(ref.spikes[k]))
                            for k in ref.spikes)
    first, run, t_event = (statistics.median(times[k]) for k in ("first", "run", "event"))
    return {"workload": name, "steps": steps, "samples": batch,
            "first_call_ms_per_sample": 1e3 * first / batch,
            "run_ms_per_sample": 1e3 * run / batch,
            "run_ms_per_step": 1e3 * run / (batch * steps),
            "event_ms_per_sample": 1e3 * t_event / batch,
            "spikes_equal_event": bool(same)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--cnn-steps", type=int, nargs="+", default=[30, 100, 300])
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)
    event.warmup()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        cnn = cnn_graph(Path(tmp))
    for frames in args.cnn_steps:
        x = cnn_input(np.random.default_rng(SEED), frames, args.samples)
        rows.append(measure(f"cnn T={frames}", cnn, x, args.rounds))
        print(rows[-1], flush=True)
    v1, v2 = calibrate_mlp_vth()
    rng = np.random.default_rng(SEED)
    mlp = mlp_graph(rng, 100, v1, v2)
    rows.append(measure("mlp T=100", mlp, mnist_input(rng, 100, args.samples), args.rounds))
    load = os.getloadavg()
    print(f"Lava backend, {args.samples} samples per call, medians of {args.rounds} rounds; "
          f"Lava runs one process per Lava process, the event simulator 1 thread; "
          f"load {load[0]:.2f} ({os.cpu_count()} logical CPUs)")
    print_table([
        ("workload", "s", lambda r: r["workload"]),
        ("steps", "d", lambda r: r["steps"]),
        ("first call ms/sample", ".0f", lambda r: r["first_call_ms_per_sample"]),
        ("run ms/sample", ".0f", lambda r: r["run_ms_per_sample"]),
        ("ms/step", ".2f", lambda r: r["run_ms_per_step"]),
        ("samples/s", ".2f", lambda r: 1e3 / r["run_ms_per_sample"]),
        ("event ms/sample", ".2f", lambda r: r["event_ms_per_sample"]),
        ("= event", ">s", lambda r: str(r["spikes_equal_event"])),
    ], rows)
    if args.json:
        write_json(args.json, {"rows": rows, "load": load})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
