"""An N-MNIST-sized evaluation, measured whole: 10,000 samples at T = 300 through the
Sinabs N-MNIST CNN of the NIR paper on the event simulator (and, for comparison, a part of
them on torch-int, extrapolated and labelled so).

Network: ``tests/reference_data/nir-paper/02_cnn/cnn_sinabs.nir`` exported for ``loihi``
exactly as ``bench_event.py --real`` does (8,970 neurons, 1.09 M synapses). Input: binary
frames ``2 x 34 x 34`` with ~3.5 % random events per pixel and step (N-MNIST's size and a
comparable activity; the real dataset is not on this machine), generated chunk by chunk
from a seed (generation is timed separately: reading recorded events from disk would
replace it). Each sample runs its ``T`` frames plus the graph's depth in flush steps; the
evaluation reads the output layer's spike counts and takes the arg-max class, as an
accuracy run would (the labels are synthetic, so no accuracy is reported).

``--threads N`` (default: the cores this process may use) is passed to ``event.run``,
which splits each chunk's batch over N threads; torch-int runs with torch on N threads.
Peak memory is the process's peak RSS.

Usage: ``python benchmarks/bench_eval_nmnist.py [--samples 10000] [--steps 300]
[--chunk 100] [--threads 2] [--torch-int-samples 200] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
sys.path.insert(0, str(REPO_ROOT / "benchmarks"))

from bench_event import cnn_graph  # noqa: E402
from bench_report import write_json  # noqa: E402

from snn2hw.backends import event  # noqa: E402
from snn2hw.common.threads import available_cores  # noqa: E402

ACTIVITY = 0.035


def chunk_input(seed: int, steps: int, batch: int) -> np.ndarray:
    """Binary ``[steps, batch, 2, 34, 34]`` frames with ``ACTIVITY`` events per pixel-step."""
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, 2, 34, 34), dtype=np.float32) < ACTIVITY).astype(
        np.uint8)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def evaluate(run, graph, samples: int, steps: int, chunk: int) -> dict:
    """Run ``samples`` samples in chunks; returns timings, events and predictions. Sample k
    has the same input however many samples a call evaluates: a chunk's frames are drawn
    for the whole chunk (the draw is time-major) and a shorter last chunk takes its first
    samples."""
    t_gen = t_sim = 0.0
    synops = 0
    preds = []
    for i, start in enumerate(range(0, samples, chunk)):
        b = min(chunk, samples - start)
        t0 = time.perf_counter()
        x = chunk_input(1000 + i, steps, chunk)[:, :b]
        t_gen += time.perf_counter() - t0
        t0 = time.perf_counter()
        spikes, syn = run(x, steps + graph.depth())
        counts = spikes.reshape(spikes.shape[0], b, -1).sum(axis=0)
        preds.append(counts.argmax(axis=1))
        t_sim += time.perf_counter() - t0
        synops += syn
    return {"samples": samples, "sim_s": t_sim, "gen_s": t_gen, "synops": synops,
            "ms_per_sample": 1e3 * t_sim / samples, "events_per_s": synops / t_sim,
            "predictions": np.concatenate(preds)}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--threads", type=int, default=available_cores())
    ap.add_argument("--torch-int-samples", type=int, default=200,
                    help="samples run on torch-int (0: skip); its total is extrapolated")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    event.warmup()
    with tempfile.TemporaryDirectory() as tmp:
        graph = cnn_graph(Path(tmp))
    lif_out = graph.source_of_output(graph.output_nodes[0].name)

    def run_event(x, steps):
        r = event.run(graph, x, num_steps=steps, threads=args.threads)
        return r.spikes[lif_out], int(sum(int(a.sum()) for a in r.counters.synops.values()))

    load0 = os.getloadavg()
    ev = evaluate(run_event, graph, args.samples, args.steps, args.chunk)
    rows = [{"backend": "event", "measured_samples": args.samples, **ev}]
    if args.torch_int_samples:
        from snn2hw.backends.torch_int import TorchIntNetwork

        net = TorchIntNetwork(graph, device="cpu")
        n_ti = min(args.torch_int_samples, args.samples)
        syn_per_sample = ev["synops"] / args.samples

        def run_ti(x, steps):
            return np.asarray(net.run(x, steps).spikes[lif_out]), int(syn_per_sample * x.shape[1])

        ti = evaluate(run_ti, graph, n_ti, args.steps, args.chunk)  # same chunks: same input
        same = np.array_equal(ti["predictions"], ev["predictions"][:n_ti])
        rows.append({"backend": "torch-int", "measured_samples": n_ti, **ti,
                     "predictions_equal_event": bool(same)})
    load1 = os.getloadavg()

    print(f"N-MNIST-sized evaluation: {args.samples} samples, T = {args.steps} (+{graph.depth()} "
          f"flush), chunk {args.chunk}, {args.threads} threads, {ACTIVITY:.1%} input events; "
          f"load {load0[0]:.2f} -> {load1[0]:.2f} ({os.cpu_count()} logical CPUs)")
    print(f"{'backend':10s} {'measured':>8s} {'ms/sample':>9s} {'G ev/s':>7s} "
          f"{'total for ' + str(args.samples):>16s} {'input gen s':>11s}")
    for r in rows:
        total = r["ms_per_sample"] * args.samples / 1e3
        note = "" if r["measured_samples"] == args.samples else " (extrapolated)"
        print(f"{r['backend']:10s} {r['measured_samples']:8d} {r['ms_per_sample']:9.2f} "
              f"{r['events_per_s'] / 1e9:7.3f} {total:14.1f} s{note} {r['gen_s']:10.1f}")
    if len(rows) > 1:
        print(f"torch-int predictions equal event's on its {rows[1]['measured_samples']} "
              f"samples: {rows[1]['predictions_equal_event']}")
    print(f"peak RSS {_peak_rss_mb():.0f} MB")
    if args.json:
        doc = {"args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
               "load": [load0, load1], "peak_rss_mb": _peak_rss_mb(),
               "rows": [{k: v for k, v in r.items() if k != "predictions"} for r in rows]}
        write_json(args.json, doc)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
