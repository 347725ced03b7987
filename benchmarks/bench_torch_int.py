"""Milliseconds per sample of the torch integer backend, by batch size, old and new conv.

Workloads:

1. ``cnn``: the Sinabs N-MNIST CNN of the NIR paper
   (tests/reference_data/nir-paper/02_cnn/cnn_sinabs.nir, exported for Loihi as
   tests/acceptance does: 8,970 LIF neurons, 1.09 M synapses, three convs, two sum pools,
   two dense layers) fed 3.5 % random binary input events per pixel and step, ``T`` frames
   (default 30) and ``T`` steps.
2. ``mlp``: a 784-1024-1024-10 LIF MLP with random 8-bit weights, 5 % random input.

Each workload runs at batch 1, 16 and 64 (``--batches``), one :class:`TorchIntNetwork`
prepared once and reused; ``ms/sample`` is the wall time of one ``run`` divided by the batch,
median of ``--rounds`` interleaved rounds (>= 3); ``cpu ms`` is the same for the process
CPU time, which a machine shared with other jobs distorts far less than wall time. For the
CNN the same runs are repeated with every conv forced onto the unfold + GEMM formulation
(``unfold``: the formulation before the library conv2d path, and the one used on CUDA) and
the table gives the ratio.
The thread count used is printed (``--threads``, default 1).

Usage::

    python benchmarks/bench_torch_int.py [--steps 30] [--rounds 3] [--threads 1]
        [--device cpu|cuda] [--qgraph PATH] [--json PATH]

``--qgraph`` reuses an exported CNN graph instead of exporting it (about 20 s).

Measured 2026-11-30 on the 2-core helper machine under load 6-7 (other jobs), 1 thread, T = 30,
CPU ms/sample at batch 1 / 16 / 64 (wall times were 1.2-2x higher and noisier):
before this change (commit 9bcb285, unfold conv, full LIF arithmetic) CNN 22.6 / 10.7 / 10.1,
MLP 15.7 / 4.2 / 2.8; after, CNN 16.1 / 4.0 / 4.3 (unfold forced: 14.3 / 6.3 / 7.4),
MLP 10.7 / 3.0 / 2.2.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

import torch  # noqa: E402
from bench_report import write_json  # noqa: E402

from snn2hw.backends.torch_int import TorchIntNetwork  # noqa: E402
from snn2hw.quant.qgraph import (  # noqa: E402
    DenseNode,
    InputNode,
    LIFNode,
    OutputNode,
    QGraph,
)

CNN_NIR = REPO_ROOT / "tests/reference_data/nir-paper/02_cnn/cnn_sinabs.nir"
INPUT_RATE_CNN = 0.035
INPUT_RATE_MLP = 0.05


def export_cnn(out_dir: Path) -> QGraph:
    """The CNN exported for Loihi with Sinabs' convention, as tests/acceptance does."""
    from snn2hw.data import make_synthetic_events
    from snn2hw.pipeline.export import export
    from snn2hw.pipeline.samples import SampleSpec

    x, _ = make_synthetic_events(4, n_frames=12, seed=3)
    frames = np.ascontiguousarray(x.transpose(1, 0, 2, 3, 4)).astype(np.float32)
    np.save(out_dir / "inputs.npy", frames)
    res = export(CNN_NIR, "loihi", out_dir / "exp", convention="sinabs",
                 approximate=("reset", "threshold", "spikes"),
                 spec=SampleSpec(inputs_file=str(out_dir / "inputs.npy")), calib_samples=4)
    return QGraph.load(res.qgraph_path)


def make_mlp(seed: int = 0) -> QGraph:
    """784-1024-1024-10 LIF MLP, random even weights, thresholds for sparse firing."""
    rng = np.random.default_rng(seed)

    def lif(name: str, n: int, vth: int) -> LIFNode:
        z = np.zeros(n, dtype=np.int64)
        return LIFNode(name, (n,), du=4095, dv=410, vth=vth, bias_mant=z, bias_exp=z.copy())

    nodes = [InputNode("input", (784,)),
             DenseNode("fc1", rng.integers(-60, 80, (1024, 784)) * 2), lif("lif1", 1024, 300),
             DenseNode("fc2", rng.integers(-60, 80, (1024, 1024)) * 2), lif("lif2", 1024, 300),
             DenseNode("fc3", rng.integers(-60, 80, (10, 1024)) * 2), lif("lif3", 10, 600),
             OutputNode("output", (10,))]
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
             ("lif2", "fc3"), ("fc3", "lif3"), ("lif3", "output")]
    return QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 30).validate()


def _force_unfold(net: TorchIntNetwork, on: bool) -> None:
    for op in net._ops.values():
        if hasattr(op, "_direct_ok"):
            if on:
                op._direct_ok = lambda xf: False
            else:
                op.__dict__.pop("_direct_ok", None)


def _time_run(net: TorchIntNetwork, x: np.ndarray, steps: int, device: str
              ) -> tuple[float, float]:
    """Wall and process CPU seconds of one run (CPU time is what a loaded machine distorts
    least for a 1-thread run)."""
    t0, c0 = time.perf_counter(), time.process_time()
    net.run(x, steps)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return time.perf_counter() - t0, time.process_time() - c0


def bench(name: str, graph: QGraph, rate: float, args: argparse.Namespace,
          variants: tuple[str, ...]) -> list[dict]:
    net = TorchIntNetwork(graph, device=args.device)
    rng = np.random.default_rng(1)
    shape = tuple(int(s) for s in graph.input_node.shape)
    rows = []
    inputs = {b: (rng.random((args.steps, b, *shape)) < rate).astype(np.uint8)
              for b in args.batches}
    times: dict[tuple[str, int], list[tuple[float, float]]] = {
        (v, b): [] for v in variants for b in args.batches}
    for v in variants:  # warm-up: first calls allocate and pick kernels
        _force_unfold(net, v == "unfold")
        for b in args.batches:
            _time_run(net, inputs[b][:, :1] if b > 1 else inputs[b], args.steps, args.device)
    for _ in range(args.rounds):
        for b in args.batches:
            for v in variants:
                _force_unfold(net, v == "unfold")
                wall, cpu = _time_run(net, inputs[b], args.steps, args.device)
                times[(v, b)].append((wall / b, cpu / b))
    _force_unfold(net, False)
    for b in args.batches:
        row = {"workload": name, "batch": b, "steps": args.steps}
        for v in variants:
            row[f"{v}_ms_per_sample"] = 1e3 * statistics.median(t[0] for t in times[(v, b)])
            row[f"{v}_cpu_ms_per_sample"] = 1e3 * statistics.median(t[1] for t in times[(v, b)])
        rows.append(row)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 16, 64])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--qgraph", type=Path, default=None, help="exported CNN .qgraph to reuse")
    ap.add_argument("--skip-mlp", action="store_true")
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    if args.rounds < 3:
        ap.error("--rounds must be >= 3 (medians)")
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {args.device}, "
          f"T = {args.steps}, {args.rounds} rounds (median)")
    if args.qgraph is not None:
        cnn = QGraph.load(args.qgraph)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            cnn = export_cnn(Path(tmp))
    n_neurons = sum(int(np.prod(n.shape)) for n in cnn.lif_nodes)
    print(f"cnn: {n_neurons} LIF neurons, {INPUT_RATE_CNN:.1%} input events")
    rows = bench("cnn", cnn, INPUT_RATE_CNN, args, ("direct", "unfold"))
    if not args.skip_mlp:
        rows += bench("mlp", make_mlp(), INPUT_RATE_MLP, args, ("direct",))
    b1 = {r["workload"]: r["direct_ms_per_sample"] for r in rows if r["batch"] == 1}
    c1 = {r["workload"]: r["direct_cpu_ms_per_sample"] for r in rows if r["batch"] == 1}
    print(f"{'workload':8} {'batch':>5} {'ms/sample':>10} {'vs batch 1':>10} {'cpu ms':>8} "
          f"{'cpu vs b1':>9} {'unfold ms':>10} {'unfold cpu':>10} {'unfold/new cpu':>14}")
    for r in rows:
        new, cpu = r["direct_ms_per_sample"], r["direct_cpu_ms_per_sample"]
        gain = b1[r["workload"]] / new
        cgain = c1[r["workload"]] / cpu
        old, ocpu = r.get("unfold_ms_per_sample"), r.get("unfold_cpu_ms_per_sample")
        extra = (f"{old:10.2f} {ocpu:10.2f} {ocpu / cpu:13.2f}x" if old is not None and ocpu
                 else "")
        print(f"{r['workload']:8} {r['batch']:5d} {new:10.2f} {gain:9.2f}x {cpu:8.2f} "
              f"{cgain:8.2f}x {extra}")
    if args.json is not None:
        write_json(args.json, {"threads": torch.get_num_threads(), "device": args.device,
                               "rows": rows}, indent=2)


if __name__ == "__main__":
    main()
