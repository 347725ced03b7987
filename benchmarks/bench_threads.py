"""How much a busy machine slows snn2hw's runs, under torch's default OpenMP wait policy
and under snn2hw's (idle threads sleep: ``OMP_WAIT_POLICY=PASSIVE``, snn2hw/common/threads.py).

    .venv/bin/python benchmarks/bench_threads.py [--rounds 3] [--only event_cnn] [--json out.json]

Workloads (each in a fresh process, so the policy is read when torch loads):
``lif_loop`` a 100-step two-layer LIF loop in float torch (784-1024-1024, batch 64, 5 %
input activity; the shape of training/float-path inference), and ``torch_int`` the torch
integer backend on a 784-1024-10 quantized MLP (batch 16, 50 frames), ``torch_int_cnn`` on
the Sinabs N-MNIST CNN of ``bench_event.py --real`` (batch 16, 30 frames), and
``event_cnn`` the event simulator on that CNN (its kernels are numba's, the batch split
across threads whatever the OpenMP policy). Each runs with 1
and with all available threads, alone and beside one CPU-bound competing process; the
table gives the median of ``--rounds`` rounds and the slowdown against the same run alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = {
    "lif_loop": """
import torch
x = (torch.rand(100, 64, 784, generator=torch.Generator().manual_seed(0)) < 0.05).float()
w = torch.randn(1024, 784) * 0.1; w2 = torch.randn(1024, 1024) * 0.1
def work():
    v = torch.zeros(64, 1024); v2 = torch.zeros(64, 1024)
    for t in range(100):
        v = v * 0.9 + x[t] @ w.T
        s = (v > 1.0).float(); v = v * (1 - s)
        v2 = v2 * 0.9 + s @ w2.T
        s2 = (v2 > 1.0).float(); v2 = v2 * (1 - s2)
""",
    "torch_int": """
import numpy as np
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph
from snn2hw.backends import registry
rng = np.random.default_rng(0)
def lif(name, n, vth):
    z = np.zeros(n, dtype=np.int64)
    return LIFNode(name, (n,), du=4095, dv=410, vth=vth, bias_mant=z, bias_exp=z.copy())
nodes = [InputNode("input", (784,)), DenseNode("fc1", rng.integers(-60, 80, (1024, 784)) * 2),
         lif("lif1", 1024, 300), DenseNode("fc2", rng.integers(-60, 80, (10, 1024)) * 2),
         lif("lif2", 10, 600), OutputNode("output", (10,))]
edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "lif2"),
         ("lif2", "output")]
g = QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 50).validate()
x = (rng.random((50, 16, 784)) < 0.05).astype(np.int64)
backend = registry.get("torch-int")
def work():
    backend.run(g, x)
""",
    "torch_int_cnn": """
import numpy as np
from snn2hw.quant.qgraph import QGraph
from snn2hw.backends.torch_int import TorchIntNetwork
g = QGraph.load(CNN_QGRAPH)
x = (np.random.default_rng(0).random((30, 16, 2, 34, 34)) < 0.035).astype(np.uint8)
net = TorchIntNetwork(g)
def work():
    net.run(x, 35)
""",
    "event_cnn": """
import numpy as np, torch
from snn2hw.quant.qgraph import QGraph
from snn2hw.backends import event
g = QGraph.load(CNN_QGRAPH)
x = (np.random.default_rng(0).random((30, 16, 2, 34, 34)) < 0.035).astype(np.uint8)
event.warmup()
def work():
    event.run(g, x, 35, threads=torch.get_num_threads())  # the batch split across threads
""",
}

TIMER = """
import time, torch
{setup}
torch.set_num_threads({threads})
work()
t = time.perf_counter(); work(); print(time.perf_counter() - t)
"""


def run_once(workload: str, threads: int, policy: str, cnn: str = "") -> float:
    """Seconds of one timed call, in a fresh interpreter (the policy is read at load)."""
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY",
                                                             "OMP_NUM_THREADS")}
    setup = WORKLOADS[workload].replace("CNN_QGRAPH", repr(cnn))
    code = TIMER.format(setup=setup, threads=threads)
    if policy == "snn2hw":
        code = "import snn2hw\n" + code  # sets OMP_WAIT_POLICY=PASSIVE before torch loads
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=600, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--only", nargs="+", choices=list(WORKLOADS), default=list(WORKLOADS),
                    help="run only these workloads")
    args = ap.parse_args()
    from snn2hw.common.threads import available_cores

    cores = available_cores()
    rows = []
    tmp = tempfile.TemporaryDirectory()
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from bench_event import cnn_graph  # the issue-14 CNN, exported for loihi
    from bench_report import write_json

    cnn = os.path.join(tmp.name, "cnn.qgraph")
    cnn_graph(Path(tmp.name)).save(cnn)
    for workload in args.only:
        for threads in sorted({1, cores}):
            for policy in ("torch default", "snn2hw"):
                times: dict[str, list[float]] = {"alone": [], "busy": []}
                for _ in range(args.rounds):  # interleaved: load drifts over a run
                    times["alone"].append(run_once(workload, threads, policy, cnn))
                    hog = subprocess.Popen([sys.executable, "-c", "while True: pass"])
                    try:
                        time.sleep(0.5)
                        times["busy"].append(run_once(workload, threads, policy, cnn))
                    finally:
                        hog.kill()
                        hog.wait()
                alone = statistics.median(times["alone"])
                busy = statistics.median(times["busy"])
                rows.append({"workload": workload, "threads": threads, "policy": policy,
                             "alone_s": alone, "busy_s": busy, "slowdown": busy / alone})
                print(f"{workload:10s} threads={threads} {policy:14s} alone {alone:7.3f} s  "
                      f"beside a busy process {busy:7.3f} s  slowdown {busy / alone:5.1f}x",
                      flush=True)
    print(f"cores available: {cores}; load average at the end: {os.getloadavg()}")
    if args.json:
        write_json(Path(args.json), {"cores": cores, "rounds": args.rounds, "rows": rows},
                   indent=2)


if __name__ == "__main__":
    main()
