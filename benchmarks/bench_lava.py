"""snn2hw's Lava backend against a hand-written Lava network of the same graph.

Graph: a 64-256-10 LIF MLP (random int8 weights, binary input at 20 % per step), ``--steps``
steps per sample, ``--samples`` samples. Both sides run Lava's bit-accurate CPU models
(``Loihi2SimCfg(select_tag="fixed_pt")``):

* ``ours``: ``snn2hw.backends.lava.LavaNetwork(graph).run(x)`` (input streamed through an
  int32 ``Injector`` chunk by chunk, spikes read through ``Extractor`` s, connection buffers
  cleared at sample boundaries, the compiled network kept for the next call);
* ``hand``: what one writes by hand for the same graph: a ``RingBuffer`` holding every
  sample's frames -> ``Dense`` -> ``LIFReset(reset_interval=steps)`` -> ``Dense`` ->
  ``LIFReset``, one ``Extractor`` per LIF sized for the whole run, ONE blocking ``run()`` of
  ``samples * steps`` steps (no boundary clearing: it is not exact across samples, so it is
  only a timing reference).

Reported (medians of ``--rounds`` interleaved rounds, 1 thread):

* ``run``: a compiled network running all samples (ours: a second call on the same
  ``LavaNetwork``; hand: ``run()`` plus reading the Extractors after ``create_runtime``);
* ``call``: one call from nothing (build, compile, run, read, stop);
* ``maxrss``: peak resident memory (``ru_maxrss``) of a fresh subprocess running one call
  with 10 and with ``--many`` samples, for the main process and for the largest Lava actor
  (``RUSAGE_CHILDREN``), in MiB.

Measured on the shared 2-core development machine (load average 7-8, 20 samples x 50 steps,
firing 13 % / 37 %, medians of 5 rounds), before this backend kept its network and streamed
its input (commit 9bcb285) and after:

=====================================================  ===============  ===============
what                                                   before           after
=====================================================  ===============  ===============
run, compiled network (ours rebuilt it per call)       2.42 / 1.31 s    1.36 / 1.29 s
  ratio ours / hand                                    1.85x            1.06x
call from nothing, ours / hand                         2.51 / 2.29 s    1.87 / 1.84 s
  ratio ours / hand                                    1.10x            1.02x
peak RSS ours, 10 -> 200 samples, main (MiB)           99 -> 112        99 -> 102
peak RSS ours, 10 -> 200 samples, largest actor        72 -> 84         71 -> 73
peak RSS hand, 10 -> 200 samples, main / actor         101 -> 166 / 71 -> 96
ours, 10 -> 1,000 samples (--memory-only --many 1000)                   99 -> 115 / 71 -> 75
hand, 10 -> 1,000 samples, main / actor                101 -> 440 / 72 -> 202
=====================================================  ===============  ===============

What remains of ours above the Lava actors is the returned spike record (uint8, ``samples
x steps x neurons``, 13 MiB for 1,000 samples here) and its time-major copy.

Usage: ``python benchmarks/bench_lava.py [--samples 20] [--steps 50] [--rounds 3]
[--many 200] [--memory-only] [--sizes 64,256,10]`` (``--sizes 784,1024,1024,10``: the
issue-14 MLP's shape, same random weights and 20 % input).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from snn2hw.backends import lava as lava_backend  # noqa: E402
from snn2hw.compat.lava_py311 import import_lava, lava_start_method  # noqa: E402
from snn2hw.quant.qgraph import DenseNode, InputNode, LIFNode, OutputNode, QGraph  # noqa: E402

SIZES = (64, 256, 10)
DU, DV, VTH = 1000, 400, 6000
SEED = 7


def make_graph(steps: int, sizes: tuple[int, ...] = SIZES) -> QGraph:
    """The benchmark MLP as a quantized graph (``num_steps + depth() == steps``)."""
    rng = np.random.default_rng(SEED)
    nodes: list = [InputNode("in", (sizes[0],))]
    edges, prev = [], "in"
    for i, (n_in, n_out) in enumerate(zip(sizes, sizes[1:], strict=False), 1):
        w = rng.integers(-40, 90, (n_out, n_in))
        nodes += [DenseNode(f"d{i}", w, 0, 8),
                  LIFNode(f"l{i}", (n_out,), du=DU, dv=DV, vth=VTH,
                          bias_mant=np.zeros(n_out, np.int64),
                          bias_exp=np.zeros(n_out, np.int64))]
        edges += [(prev, f"d{i}"), (f"d{i}", f"l{i}")]
        prev = f"l{i}"
    nodes.append(OutputNode("out", (sizes[-1],)))
    edges.append((prev, "out"))
    g = QGraph({n.name: n for n in nodes}, edges, 1e-3, "loihi", 1).validate()
    g.num_steps = steps - g.depth()
    return g.validate()


def make_inputs(samples: int, steps: int, n_in: int = SIZES[0]) -> np.ndarray:
    rng = np.random.default_rng(SEED + samples)
    return (rng.random((steps, samples, n_in)) < 0.2).astype(np.uint8)


class Hand:
    """The hand-written Lava network of :func:`make_graph` for ``x`` (module docstring)."""

    def __init__(self, graph: QGraph, x: np.ndarray) -> None:
        import_lava()
        from lava.magma.core.run_configs import Loihi2SimCfg
        from lava.proc.dense.process import Dense
        from lava.proc.io.extractor import Extractor
        from lava.proc.io.source import RingBuffer
        from lava.proc.lif.process import LIFReset

        steps, samples = x.shape[0], x.shape[1]
        self.total = steps * samples
        data = np.ascontiguousarray(x.transpose(1, 0, 2).reshape(self.total, -1).T, np.int32)
        self.src = RingBuffer(data=data)
        port, self.ex = self.src.s_out, []
        n_layers = len(graph.lif_nodes)
        for i in range(1, n_layers + 1):
            d, n = graph.nodes[f"d{i}"], graph.nodes[f"l{i}"]
            dense = Dense(weights=np.asarray(d.weight), weight_exp=0, num_weight_bits=8)
            lif = LIFReset(shape=n.shape, du=DU, dv=DV, vth=VTH, bias_mant=0, bias_exp=0,
                           reset_interval=steps, reset_offset=1)
            port.connect(dense.s_in)
            dense.a_out.connect(lif.a_in)
            ex = Extractor(shape=n.shape, buffer_size=self.total)
            lif.s_out.connect(ex.in_port)
            self.ex.append(ex)
            port = lif.s_out
        # Lava's Extractor model carries no tag: name it, as snn2hw's backend does
        from lava.proc.io.extractor import PyLoihiExtractorModel

        self.cfg = Loihi2SimCfg(select_tag="fixed_pt",
                                exception_proc_model_map={Extractor: PyLoihiExtractorModel})

    def start(self) -> None:
        with lava_start_method():
            self.src.create_runtime(run_cfg=self.cfg)

    def run(self) -> list[np.ndarray]:
        from lava.magma.core.run_conditions import RunSteps

        self.src.run(condition=RunSteps(num_steps=self.total))
        return [np.stack([ex.receive() for _ in range(self.total)]) for ex in self.ex]

    def stop(self) -> None:
        self.src.stop()


def time_ours(graph: QGraph, x: np.ndarray) -> tuple[float, float]:
    """(run, call) seconds: a second call on a kept network; a fresh network's first call
    plus stopping it."""
    net = lava_backend.LavaNetwork(graph)
    t0 = time.perf_counter()
    net.run(x)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.run(x)
    run = time.perf_counter() - t0
    t0 = time.perf_counter()
    net.close()
    return run, first + time.perf_counter() - t0


def time_hand(graph: QGraph, x: np.ndarray) -> tuple[float, float]:
    t0 = time.perf_counter()
    h = Hand(graph, x)
    h.start()
    t1 = time.perf_counter()
    h.run()
    run = time.perf_counter() - t1
    h.stop()
    return run, time.perf_counter() - t0


def child(which: str, samples: int, steps: int, sizes: tuple[int, ...]) -> None:
    """One call in this (fresh) process; print peak RSS in MiB as JSON."""
    g, x = make_graph(steps, sizes), make_inputs(samples, steps, sizes[0])
    if which == "ours":
        lava_backend.run(g, x)
    else:
        h = Hand(g, x)
        h.start()
        h.run()
        h.stop()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(json.dumps({"self_mib": round(own, 1), "actor_mib": round(kids, 1)}))


def maxrss(which: str, samples: int, steps: int, sizes: tuple[int, ...]) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", which, "--samples", str(samples),
         "--steps", str(steps), "--sizes", ",".join(map(str, sizes))],
        check=True, capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--samples", type=int, default=20)
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--many", type=int, default=200)
    ap.add_argument("--memory-only", action="store_true", help="skip the timing rounds")
    ap.add_argument("--sizes", default=",".join(map(str, SIZES)),
                    help="layer widths, input first (784,1024,1024,10: the issue-14 MLP)")
    ap.add_argument("--child", choices=("ours", "hand"))
    args = ap.parse_args()
    sizes = tuple(int(v) for v in args.sizes.split(","))
    if args.child:
        child(args.child, args.samples, args.steps, sizes)
        return
    # memory first: Linux keeps ru_maxrss across exec, so a child started after this
    # process imported torch (the exactness check below) would report at least its size
    report_memory(args.many, args.steps, sizes)
    if args.memory_only:
        return
    g, x = make_graph(args.steps, sizes), make_inputs(args.samples, args.steps, sizes[0])
    # exactness first: the backend equals the docs' arithmetic (torch_int) on this graph
    from snn2hw.backends import torch_int

    ref, res = torch_int.run(g, x), lava_backend.run(g, x)
    for k, v in ref.spikes.items():
        np.testing.assert_array_equal(res.spikes[k], v, err_msg=k)
    rate = {k: float(v.mean()) for k, v in ref.spikes.items()}
    rows: dict[str, list[float]] = {"ours_run": [], "ours_call": [], "hand_run": [],
                                   "hand_call": []}
    for _ in range(args.rounds):
        r, c = time_ours(g, x)
        rows["ours_run"].append(r)
        rows["ours_call"].append(c)
        r, c = time_hand(g, x)
        rows["hand_run"].append(r)
        rows["hand_call"].append(c)
    med = {k: statistics.median(v) for k, v in rows.items()}
    print(f"graph {'-'.join(map(str, sizes))} LIF MLP, {args.samples} samples x "
          f"{args.steps} steps, firing rates {rate}, OMP_NUM_THREADS="
          f"{os.environ['OMP_NUM_THREADS']}, median of {args.rounds} rounds")
    for what in ("run", "call"):
        o, h = med[f"ours_{what}"], med[f"hand_{what}"]
        print(f"{what:5s} ours {o:7.3f} s  hand {h:7.3f} s  ratio {o / h:5.2f}x  "
              f"(ours {1e3 * o / (args.samples * args.steps):.2f} ms/step)")


def report_memory(many: int, steps: int, sizes: tuple[int, ...]) -> None:
    for which in ("ours", "hand"):
        few, lots = maxrss(which, 10, steps, sizes), maxrss(which, many, steps, sizes)
        print(f"maxrss {which}: 10 samples {few}, {many} samples {lots}")


if __name__ == "__main__":
    main()
