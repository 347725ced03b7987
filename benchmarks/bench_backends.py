"""Wall time per sample of the three integer backends on the same quantized graph, one run.

    .venv/bin/python benchmarks/bench_backends.py [--qgraph build/demo/export/best.qgraph]
                                                  [--samples 50] [--json out.json]

Without ``--qgraph`` a digits-sized graph (64 -> 256 -> 10, LIF, binary input at 20%
activity, 16 frames) with a fixed seed is used. Every backend gets the same integer input
frames; spikes are checked equal before timings are reported.
"""

from __future__ import annotations

import argparse
import json
import platform
import time

import numpy as np
import torch

from snn2hw.pipeline.simulate import run_backend
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph


def synthetic_graph(seed: int = 0) -> QGraph:
    rng = np.random.default_rng(seed)

    def lif(name: str, n: int, vth: int) -> LIFNode:
        z = np.zeros(n, dtype=np.int64)
        return LIFNode(name, (n,), du=4095, dv=410, vth=vth, bias_mant=z, bias_exp=z.copy())

    nodes = [
        InputNode("input", (64,)),
        DenseNode("fc1", rng.integers(-60, 80, (256, 64)) * 2),
        lif("lif1", 256, 300),
        DenseNode("fc2", rng.integers(-60, 80, (10, 256)) * 2),
        lif("lif2", 10, 600),
        OutputNode("output", (10,)),
    ]
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "output")]
    return QGraph({n.name: n for n in nodes}, edges, dt=1e-3, target="loihi", num_steps=16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--qgraph", default=None)
    ap.add_argument("--samples", type=int, default=50)
    ap.add_argument("--backends", default="torch-int,event,lava")
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.qgraph:
        from snn2hw.pipeline.simulate import graph_samples

        g = QGraph.load(args.qgraph)
        ints = graph_samples(g, args.samples).ints
    else:
        g = synthetic_graph()
        rng = np.random.default_rng(1)
        ints = (rng.random((g.num_steps, args.samples, 64)) < 0.2).astype(np.int64)
    n_steps = g.num_steps + g.depth()
    rows, ref = [], None
    for name in args.backends.split(","):
        run_backend(name, g, ints[:, :2], num_steps=n_steps)  # warm-up (JIT, imports)
        t0 = time.perf_counter()
        run = run_backend(name, g, ints, num_steps=n_steps)
        wall = time.perf_counter() - t0
        if ref is None:
            ref = run
        equal = all(np.array_equal(run.spikes[k], ref.spikes[k]) for k in ref.spikes)
        rows.append({"backend": name, "samples": ints.shape[1], "steps": n_steps,
                     "wall_s": wall, "ms_per_sample": 1e3 * wall / ints.shape[1],
                     "spikes_equal_to_first": equal})
    print(f"# backends on {args.qgraph or 'synthetic 64-256-10'}; {platform.processor() or ''} "
          f"{torch.get_num_threads()} torch thread(s)")
    print("| backend | samples | steps | wall s | ms/sample | spikes equal |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['backend']} | {r['samples']} | {r['steps']} | {r['wall_s']:.3f} | "
              f"{r['ms_per_sample']:.2f} | {r['spikes_equal_to_first']} |")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(rows, fh, indent=2)


if __name__ == "__main__":
    main()
