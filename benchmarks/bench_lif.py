"""Fwd+bwd time and peak memory of Linear(n, n) + LIF: snn2hw vs snnTorch (vs SpikingJelly).

Every contender runs in its own fresh subprocess (``sys.executable``) on identical, seeded data
and identical neuron settings: voltage decay ``beta = 0.9``, threshold 1.0, hard reset to zero
with a detached reset, no synaptic current filter (``alpha = 0``), ArcTan surrogate (slope 2;
snnTorch's and SpikingJelly's default). Contenders:

* ``snn2hw-fused``: ``Linear`` on all ``T*B`` rows at once, then ``lif_multistep`` (numba
  kernels on CPU, its torch loop on CUDA).
* ``snn2hw-reference``: the same Linear, then the step-by-step autograd reference
  ``lif_multistep_reference`` (only for ``n <= --ref-max-n``).
* ``snntorch-loop``: the tutorial loop, ``cur = fc(x[t]); spk, mem = lif(cur, mem)``.
* ``snntorch-leaky-loop``: ``Linear`` on all steps at once, only ``Leaky`` looped (its best
  case; the loop iterates over ``cur.unbind(0)`` so backward stays linear in T).
* ``spikingjelly``: ``Linear`` on all steps, then a multi-step ``LIFNode``; on CUDA its fastest
  implementation (automatic selection in SpikingJelly >= 2, else cupy when importable, else its
  torch multi-step backend). On CPU it is an extra row when installed.

Time: median over ``--reps`` repetitions (after ``--warmup``) of one forward pass plus
``loss.backward()`` with ``loss = (spikes * w).sum()``, ``w`` a fixed random weight tensor;
``--rounds R`` runs every contender R times, interleaved, and pools the repetitions (shared,
noisy machines); the minimum is reported too. ``--lif-only`` times the neuron alone (currents
precomputed, gradient w.r.t. them). Threads: ``--threads`` (default 2) for torch, numba, OpenMP.
Memory (CPU): ``peak MB`` is the child's peak RSS (``ru_maxrss``) minus that of a baseline child
that only imports torch and builds the same inputs and Linear; ``run MB`` is the child's peak RSS
minus its peak RSS before the first full-size pass (library imports and a tiny warm-up call done),
i.e. the working memory of forward+backward alone. On CUDA both columns are
``torch.cuda.max_memory_allocated`` above the allocation before the first pass.

Usage: ``python benchmarks/bench_lif.py [--sizes 512,4096] [--T 500] [--B 16] [--reps 3]
[--rounds 1] [--lif-only] [--quick] [--json PATH]``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_report import write_json
from contender_process import loadavg, spawn

BETA = 0.9
VTH = 1.0
SURROGATE_SLOPE = 2.0  # ArcTan alpha: snnTorch atan(alpha=2) == SpikingJelly ATan(alpha=2)
CONTENDERS = (
    "snn2hw-fused",
    "snn2hw-reference",
    "snntorch-loop",
    "snntorch-leaky-loop",
    "spikingjelly",
)
SNNTORCH_ROWS = ("snntorch-loop", "snntorch-leaky-loop")
REPO_ROOT = Path(__file__).resolve().parents[1]


# --------------------------------------------------------------------------- child process


def _rss_peak_mb() -> float:
    """Peak resident set size of this process so far, in MiB (Linux ru_maxrss is KiB)."""
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib / 1024.0 if sys.platform != "darwin" else kib / 2**20


def _make_inputs(spec: dict[str, Any]):
    """Seeded input currents ``x [T, B, n]``, loss weights ``w`` and ``Linear(n, n)``."""
    import torch

    torch.manual_seed(spec["seed"])
    T, B, n = spec["T"], spec["B"], spec["n"]
    fc = torch.nn.Linear(n, n)
    x = torch.randn(T, B, n) * spec["scale"] + spec["offset"]
    w = torch.rand(T, B, n)
    dev = torch.device(spec["device"])
    x, w, fc = x.to(dev), w.to(dev), fc.to(dev)
    if spec["lif_only"]:
        # Neuron alone: the currents are fc(x), computed once; gradients flow to them.
        with torch.no_grad():
            x = fc(x)
        x.requires_grad_()
        fc = torch.nn.Identity()
    return x, w, fc


def _build(name: str, fc, spec: dict[str, Any]) -> tuple[Callable, dict[str, str]]:
    """Return ``run(x) -> spikes [T, B, n]`` for contender ``name`` and version info."""
    import torch

    if name in ("snn2hw-fused", "snn2hw-reference"):
        if str(REPO_ROOT) not in sys.path:
            sys.path.insert(0, str(REPO_ROOT))
        from snn2hw.nn.functional import lif_multistep_reference
        from snn2hw.nn.fused import default_backend, lif_multistep
        from snn2hw.nn.surrogate import Surrogate

        sur = Surrogate("arctan", SURROGATE_SLOPE)
        if name == "snn2hw-fused":

            def run(x):
                return lif_multistep(fc(x), alpha=0.0, beta=BETA, vth=VTH, reset="hard",
                                     surrogate=sur, detach_reset=True)

            return run, {"backend": default_backend(spec["device"])}

        def run(x):
            return lif_multistep_reference(fc(x), alpha=0.0, beta=BETA, vth=VTH, reset="hard",
                                           surrogate=sur, detach_reset=True)

        return run, {}

    if name in SNNTORCH_ROWS:
        import snntorch as snn
        from snntorch import surrogate as sgrad

        lif = snn.Leaky(beta=BETA, threshold=VTH, reset_mechanism="zero",
                        spike_grad=sgrad.atan(alpha=SURROGATE_SLOPE)).to(spec["device"])
        info = {"snntorch": snn.__version__}
        if name == "snntorch-loop":

            def run(x):
                mem = lif.reset_mem()
                spk_rec = []
                for t in range(x.shape[0]):
                    cur = fc(x[t])
                    spk, mem = lif(cur, mem)
                    spk_rec.append(spk)
                return torch.stack(spk_rec)

            return run, info

        def run(x):
            cur = fc(x)
            mem = lif.reset_mem()
            spk_rec = []
            for cur_t in cur.unbind(0):
                spk, mem = lif(cur_t, mem)
                spk_rec.append(spk)
            return torch.stack(spk_rec)

        return run, info

    if name == "spikingjelly":
        import inspect

        import spikingjelly
        from spikingjelly.activation_based import functional as sjf
        from spikingjelly.activation_based import neuron, surrogate

        kwargs: dict[str, Any] = dict(
            tau=1.0 / (1.0 - BETA), decay_input=False, v_threshold=VTH, v_reset=0.0,
            surrogate_function=surrogate.ATan(alpha=SURROGATE_SLOPE), detach_reset=True,
            step_mode="m",
        )
        info = {"spikingjelly": getattr(spikingjelly, "__version__", "?")}
        if "backend" in inspect.signature(neuron.LIFNode.__init__).parameters:
            # SpikingJelly < 2: explicit backend; cupy is its fast CUDA path.
            backend = "torch"
            if x_device(spec) == "cuda" and importlib.util.find_spec("cupy") is not None:
                backend = "cupy"
            kwargs["backend"] = backend
            info["backend"] = backend
        else:
            # SpikingJelly >= 2 selects its fastest implementation per device
            # (env SJ_LIF_CUDA_IMPLEMENTATION: auto|cuda|triton|torch).
            info["backend"] = os.environ.get("SJ_LIF_CUDA_IMPLEMENTATION", "auto")
            if x_device(spec) == "cpu":
                info["backend"] = "cpu"
        lif = neuron.LIFNode(**kwargs).to(spec["device"])

        def run(x):
            sjf.reset_net(lif)
            return lif(fc(x))

        return run, info

    raise ValueError(f"unknown contender {name!r}")


def x_device(spec: dict[str, Any]) -> str:
    """Device type of a spec (``cpu`` or ``cuda``)."""
    return spec["device"].split(":")[0]


def _sj_cuda_choice() -> str | None:
    """Name of the CUDA LIF implementation SpikingJelly >= 2 selected (cuda/triton/torch)."""
    try:
        from spikingjelly._ops.lif import _selection

        names = {getattr(v, "name", None) for v in _selection._selections.values()}
        return ",".join(sorted(n for n in names if n)) or None
    except Exception:  # private API; the version may differ
        return None


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one contender (or the baseline) in this fresh process; return its measurements."""
    import torch

    torch.set_num_threads(spec["threads"])
    cuda = x_device(spec) == "cuda"
    x, w, fc = _make_inputs(spec)
    if spec["contender"] == "baseline":
        return {"rss_peak_mb": _rss_peak_mb()}

    run, info = _build(spec["contender"], fc, spec)

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize()

    def step(xi, wi):
        fc.zero_grad(set_to_none=True)
        x.grad = None
        spikes = run(xi)
        loss = (spikes * wi).sum()
        loss.backward()
        return spikes

    # Tiny call: imports, numba cache load / JIT, cuDNN/kernel selection; not measured.
    step(x[:2, :1].contiguous(), w[:2, :1].contiguous())
    sync()
    if cuda and spec["contender"] == "spikingjelly":
        info["backend"] = _sj_cuda_choice() or info["backend"]
    rss_setup = _rss_peak_mb()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        cuda_base = torch.cuda.memory_allocated()
    times = []
    for i in range(spec["warmup"] + spec["reps"]):
        sync()
        t0 = time.perf_counter()
        spikes = step(x, w)
        sync()
        dt = time.perf_counter() - t0
        if i >= spec["warmup"]:
            times.append(dt)
    out: dict[str, Any] = {
        "times_ms": [t * 1e3 for t in times],
        "ms": statistics.median(times) * 1e3,
        "rate": float(spikes.float().mean()),
        "spikes": int(spikes.sum()),
        "grad_norm": float((x.grad if spec["lif_only"] else fc.weight.grad).norm()),
        "info": info,
        "rss_setup_mb": rss_setup,
        "rss_peak_mb": _rss_peak_mb(),
    }
    if cuda:
        out["cuda_run_mb"] = (torch.cuda.max_memory_allocated() - cuda_base) / 2**20
    return out


# --------------------------------------------------------------------------- parent process


def _spawn(spec: dict[str, Any], timeout: float) -> dict[str, Any]:
    """Run the worker for ``spec`` in a fresh interpreter; errors become ``{"error": ...}``."""
    return spawn(__file__, spec, timeout)


def _available(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _fmt(v: float | None, spec: str = ".1f", suffix: str = "") -> str:
    return "n/a" if v is None else f"{v:{spec}}{suffix}"


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    """Run all contenders on every device and size; returns the results document."""
    import torch

    devices = ["cpu"]
    if args.device in ("auto", "cuda"):
        if torch.cuda.is_available():
            devices.append("cuda")
        else:
            print("no CUDA GPU detected: skipping GPU rows")
    if args.device == "cuda":
        devices.remove("cpu")
    chosen = [c.strip() for c in args.contenders.split(",")] if args.contenders else CONTENDERS
    if not _available("snntorch"):
        print("snnTorch not installed (pip install -r benchmarks/requirements.txt): "
              "skipping the snnTorch rows")
        chosen = [c for c in chosen if c not in SNNTORCH_ROWS]
    if "spikingjelly" in chosen and not _available("spikingjelly"):
        print("SpikingJelly not installed: skipping the SpikingJelly rows")
        chosen = [c for c in chosen if c != "spikingjelly"]

    if args.lif_only and "snntorch-loop" in chosen:
        # Without the Linear the tutorial loop is the Leaky-only loop (x[t] vs unbind aside).
        chosen = [c for c in chosen if c != "snntorch-loop"]

    load_before = loadavg()
    rows: list[dict[str, Any]] = []
    for device in devices:
        for n in args.sizes:
            base = dict(device=device, n=n, B=args.B, seed=args.seed, threads=args.threads,
                        scale=args.scale, offset=args.offset, warmup=args.warmup, reps=args.reps,
                        lif_only=args.lif_only)
            jobs = []  # (contender, T)
            for name in chosen:
                if name == "snn2hw-reference":
                    if n > args.ref_max_n:
                        continue
                    jobs.append((name, min(args.T, args.ref_T) if args.ref_T else args.T))
                else:
                    jobs.append((name, args.T))
            baselines: dict[int, float | None] = {}
            if device == "cpu":
                for T in sorted({T for _, T in jobs}):
                    res = _spawn({**base, "T": T, "contender": "baseline"}, args.timeout)
                    if "error" in res:
                        print(f"baseline child failed: {res['error']}")
                    baselines[T] = res.get("rss_peak_mb")
            results: dict[tuple[str, int], list[dict[str, Any]]] = {job: [] for job in jobs}
            # Rounds interleave the contenders in time, so slow phases of a shared machine
            # hit all of them; each round is a fresh child per contender.
            for rnd in range(args.rounds):
                for name, T in jobs:
                    tag = f" round {rnd + 1}/{args.rounds}" if args.rounds > 1 else ""
                    print(f"  running {name:22s} device={device} n={n} T={T}{tag} ...", flush=True)
                    res = _spawn({**base, "T": T, "contender": name}, args.timeout)
                    if "error" in res:
                        print(f"    failed: {res['error']}", flush=True)
                    else:
                        print(f"    {res['ms']:.1f} ms, rate {res['rate']:.3f}", flush=True)
                    results[(name, T)].append(res)
            for (name, T), runs in results.items():
                rows.append(_merge_row(device, name, n, T, args.B, runs, baselines.get(T)))
    _speedups(rows)
    return {
        "args": {k: v for k, v in vars(args).items() if k != "json"},
        "env": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "machine": platform.machine(),
            "processor": _cpu_name(),
            "gpu": torch.cuda.get_device_name(0) if "cuda" in devices else None,
            "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
        },
        "rows": rows,
    }


def _merge_row(device: str, name: str, n: int, T: int, B: int, runs: list[dict[str, Any]],
               baseline_mb: float | None) -> dict[str, Any]:
    """One table row from the runs (rounds) of one contender: median over all timed reps."""
    row: dict[str, Any] = {"device": device, "contender": name, "n": n, "T": T, "B": B}
    ok = [r for r in runs if "error" not in r]
    if not ok:
        row["error"] = runs[-1]["error"] if runs else "not run"
        return row
    times = [t for r in ok for t in r["times_ms"]]
    row.update(ok[-1])
    row["times_ms"] = times
    row["ms"] = statistics.median(times)
    row["min_ms"] = min(times)
    peak = max(r["rss_peak_mb"] for r in ok)
    if device == "cpu":
        row["peak_mb"] = peak - baseline_mb if baseline_mb is not None else None
        row["run_mb"] = max(r["rss_peak_mb"] - r["rss_setup_mb"] for r in ok)
    else:
        row["peak_mb"] = row["run_mb"] = max(r["cuda_run_mb"] for r in ok)
    return row


def _speedups(rows: list[dict[str, Any]]) -> None:
    """Add ``x_vs_loop`` / ``x_vs_best``: snnTorch time over this row's time (same device, n, T)."""
    for row in rows:
        row["x_vs_loop"] = row["x_vs_best"] = row["x_vs_best_min"] = None
        if "error" in row:
            continue
        same = [r for r in rows if "error" not in r
                and (r["device"], r["n"], r["T"]) == (row["device"], row["n"], row["T"])]
        ref = {r["contender"]: r for r in same}
        if "snntorch-loop" in ref:
            row["x_vs_loop"] = ref["snntorch-loop"]["ms"] / row["ms"]
        snn = [ref[k] for k in SNNTORCH_ROWS if k in ref]
        if snn:
            row["x_vs_best"] = min(r["ms"] for r in snn) / row["ms"]
            row["x_vs_best_min"] = min(r["min_ms"] for r in snn) / row["min_ms"]


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def markdown_table(doc: dict[str, Any]) -> str:
    """The results as a markdown table."""
    head = ("| device | contender | n | T | ms fwd+bwd (median) | min ms | x vs snnTorch loop | "
            "x vs snnTorch best | peak MB | run MB | firing rate |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in doc["rows"]:
        if "error" in r:
            lines.append(f"| {r['device']} | {r['contender']} | {r['n']} | {r['T']} | "
                         f"failed: {r['error']} | | | | | | |")
            continue
        name = r["contender"]
        if r["info"].get("backend"):
            name += f" ({r['info']['backend']})"
        lines.append(
            f"| {r['device']} | {name} | {r['n']} | {r['T']} | {r['ms']:.1f} | {r['min_ms']:.1f} | "
            f"{_fmt(r['x_vs_loop'], '.2f', 'x')} | {_fmt(r['x_vs_best'], '.2f', 'x')} | "
            f"{_fmt(r['peak_mb'], '.0f')} | {_fmt(r['run_mb'], '.0f')} | {r['rate']:.3f} |"
        )
    return "\n".join(lines)


def verdict(doc: dict[str, Any], target: float = 2.0) -> list[str]:
    """One line per (device, n): is snn2hw-fused >= ``target`` x faster than the best snnTorch?"""
    out = []
    for r in doc["rows"]:
        if r["contender"] == "snn2hw-fused" and "error" not in r and r["x_vs_best"] is not None:
            ok = "MET" if r["x_vs_best"] >= target else "NOT met"
            mode = " (LIF alone, no Linear)" if doc["args"].get("lif_only") else ""
            out.append(f"target {target:g}x vs best snnTorch{mode} on {r['device']} n={r['n']}: "
                       f"{r['x_vs_best']:.2f}x (medians; {r['x_vs_best_min']:.2f}x on minima) "
                       f"-> {ok}")
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512,4096", help="comma-separated layer widths n")
    p.add_argument("--T", type=int, default=500, help="time steps")
    p.add_argument("--B", type=int, default=16, help="batch size")
    p.add_argument("--reps", type=int, default=3, help="timed repetitions (median reported)")
    p.add_argument("--rounds", type=int, default=1,
                   help="run every contender this many times, interleaved (noisy machines)")
    p.add_argument("--lif-only", action="store_true",
                   help="time the neuron alone: currents precomputed, no Linear in fwd+bwd")
    p.add_argument("--warmup", type=int, default=1, help="untimed full-size repetitions")
    p.add_argument("--quick", action="store_true", help="smoke test: T=100, one rep")
    p.add_argument("--json", type=Path, default=None, help="write results to this JSON file")
    p.add_argument("--threads", type=int, default=2, help="torch/numba/OpenMP threads")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    p.add_argument("--contenders", default="", help=f"subset of: {','.join(CONTENDERS)}")
    p.add_argument("--ref-max-n", type=int, default=512, help="largest n for snn2hw-reference")
    p.add_argument("--ref-T", type=int, default=0, help="shorter T for snn2hw-reference (0: T)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--scale", type=float, default=2.0,
                   help="std of the random input x (2.0: firing rate ~10 %%)")
    p.add_argument("--offset", type=float, default=0.0, help="mean of the random input x")
    p.add_argument("--timeout", type=float, default=1800.0, help="per-contender timeout, s")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.quick:
        args.T, args.reps = 100, 1
    if args.worker is None:
        args.sizes = [int(s) for s in str(args.sizes).split(",") if s.strip()]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.worker is not None:
        print("RESULT " + json.dumps(_worker(json.loads(args.worker))), flush=True)
        return 0
    what = "LIF alone (no Linear)" if args.lif_only else "Linear(n, n) + LIF"
    print(f"{what} fwd+bwd: B={args.B} T={args.T} reps={args.reps} rounds={args.rounds} "
          f"threads={args.threads} sizes={args.sizes}")
    doc = run_benchmark(args)
    print()
    print(markdown_table(doc))
    print()
    print("peak MB: child peak RSS minus a baseline child (torch + inputs + Linear); run MB: "
          "peak RSS growth during the full-size fwd+bwd (GPU rows: CUDA allocator peak).")
    for line in verdict(doc):
        print(line)
    env = doc["env"]
    print(f"load average before/after: {env['loadavg_before']} / {env['loadavg_after']} "
          f"({os.cpu_count()} CPUs; timings are noisy when it exceeds the thread count)")
    if args.json:
        write_json(args.json, doc, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
