"""CPU thread policy: how many threads, and how idle OpenMP threads wait.

Why: torch's OpenMP threads spin-wait between parallel regions by default. A time-stepped
SNN run issues thousands of small parallel regions, so when another process holds one of
the cores, each region waits for a descheduled spinner: on a 2-core machine with one busy
neighbour a 100-step LIF loop took 10.2 s with 2 threads against 0.36 s with 1
(benchmarks/bench_threads.py). With ``OMP_WAIT_POLICY=PASSIVE`` idle threads sleep
instead, and the same run takes 0.8 s: a busy machine then slows a run in proportion to
the cores it lost, not 10-50x.

The wait policy is read once, when the OpenMP runtime loads (at ``import torch``), so
:func:`prefer_passive_wait` runs when :mod:`snn2hw` is imported, and only sets what the
user has not set. A program that imports torch before snn2hw keeps torch's default; it can
set ``OMP_WAIT_POLICY=PASSIVE`` itself. :func:`configure_threads` sets the thread counts
(default: the cores this process may run on, from its CPU affinity); the CLI's
``--threads`` calls it.

May import: the standard library; torch lazily. Nothing else of snn2hw.
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")

PASSIVE_WAIT = {"OMP_WAIT_POLICY": "PASSIVE"}
"""Environment defaults applied before torch and numba load (a value the user set is kept).
Both OpenMP runtimes read it: torch's and the one numba's default ``omp`` threading layer
loads for the parallel kernels (fused LIF, sparse Linear). numba's ``workqueue`` layer
avoids that second runtime but its parallel regions did not scale: training the
784-512-512-10 MLP on 2 threads ran 1,631 samples/s with it and 2,082 with ``omp``
(1.66x and 1.97x snnTorch, ``benchmarks/bench_training.py --threads 2``), and beside a
CPU-bound process ``omp`` was still ahead (1,431-1,465 against 1,312-1,346 samples/s)."""


def prefer_passive_wait() -> bool:
    """Apply :data:`PASSIVE_WAIT` where the user set nothing; True when it still takes
    effect (neither torch nor numba imported yet)."""
    for key, value in PASSIVE_WAIT.items():
        os.environ.setdefault(key, value)
    return "torch" not in sys.modules and "numba" not in sys.modules


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity; ``os.cpu_count()`` where the
    platform has no affinity)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def configure_threads(threads: int | None = None) -> int:
    """Use ``threads`` CPU threads for torch and numba (default: :func:`available_cores`, unless the
    user set ``OMP_NUM_THREADS``) and return the number. Before torch is imported this sets
    ``OMP_NUM_THREADS`` (so importing torch stays lazy); after, ``torch.set_num_threads``."""
    if threads is None:
        env = os.environ.get("OMP_NUM_THREADS", "")
        n = int(env) if env.isdigit() and int(env) > 0 else available_cores()
    else:
        n = int(threads)
    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    # numba first: its first set_num_threads starts its OpenMP layer, which sets the
    # calling thread's OpenMP thread count to NUMBA_NUM_THREADS, and torch reads that count
    if "numba" in sys.modules:  # the fused LIF kernels' parallel loops
        numba = sys.modules["numba"]
        numba.set_num_threads(min(n, numba.config.NUMBA_NUM_THREADS))
    else:
        os.environ["NUMBA_NUM_THREADS"] = str(n)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(n)
    else:
        os.environ["OMP_NUM_THREADS"] = str(n)
    return n


def current_threads() -> int:
    """The CPU thread count in force: torch's once it is loaded, else what
    :func:`configure_threads` would use."""
    if "torch" in sys.modules:
        return int(sys.modules["torch"].get_num_threads())
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else available_cores()


def threads_per_process(processes: int) -> int:
    """Each of ``processes`` local processes' share of :func:`current_threads` (at least
    1): ``--workers N`` runs N processes on the same cores, and N times the threads would
    only time-slice them."""
    return max(1, current_threads() // max(1, int(processes)))


def contiguous_ranges(n: int, parts: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each of ``parts`` contiguous, in-order parts of ``n`` items, the
    first ``n % parts`` one longer (``numpy.array_split``): how batches split across threads
    and samples across ranks."""
    base, extra = divmod(n, parts)
    out, start = [], 0
    for r in range(parts):
        stop = start + base + (1 if r < extra else 0)
        out.append((start, stop))
        start = stop
    return out


class _Pool:
    """The process's part threads: one executor, replaced by a larger one when a call
    needs more parts than it has threads (at most the largest part count ever asked)."""

    executor: ThreadPoolExecutor | None = None
    size = 0
    lock = threading.Lock()


def _forget_pool_in_child() -> None:
    """A forked child has the executor but none of its threads (submitting would wait
    forever): it starts its own on first use."""
    _Pool.executor, _Pool.size, _Pool.lock = None, 0, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_in_child)


def map_parts(fn: Callable[[T], R], parts: Sequence[T]) -> list[R]:
    """``[fn(p) for p in parts]``, one thread per part, on threads kept for the process:
    starting threads per call cost a batch-split run 0.5-0.9 ms (the event simulator's CNN
    at batch 16, T = 30, takes 13 ms). ``fn`` must release the GIL to run in parallel
    (numba ``nogil`` kernels, torch ops) and must not call :func:`map_parts` itself. The
    first exception raised by a part is raised here, after every part has ended."""
    with _Pool.lock:  # submitted under the lock: a replaced executor takes no new parts
        if _Pool.executor is None or _Pool.size < len(parts):
            old = _Pool.executor
            _Pool.executor = ThreadPoolExecutor(len(parts), thread_name_prefix="snn2hw-part")
            _Pool.size = len(parts)
            if old is not None:
                old.shutdown(wait=False)  # its running parts finish; its threads then end
        futures = [_Pool.executor.submit(fn, p) for p in parts]
    wait(futures)
    return [f.result() for f in futures]
