"""Sharded simulation: the samples of every backend run split across the ranks of a
torch.distributed run, the per-sample results gathered to rank 0 in sample order.

``snn2hw simulate`` and ``snn2hw compare`` run inside :func:`session`. Under ``torchrun``
every rank starts the same command; rank 0 runs it (the "driver"), the other ranks
:func:`serve`: they wait for a shard, run it with the single-process code
(:func:`snn2hw.pipeline.simulate.run_local`), send the :class:`SimResult` back and wait
for the next. Without torchrun, ``--workers N`` starts N - 1 local processes
(``python -m snn2hw.pipeline.sharding``) with the same environment torchrun would give
them, so both launchers take one code path.

While a session is active on rank 0, :func:`snn2hw.pipeline.simulate.run_backend` hands each
run to :meth:`Pool.run`: rank r runs samples ``shard_ranges(n, world)[r]`` (contiguous,
sizes differing by at most one), rank 0 its own first. Joining the parts with
:meth:`SimResult.concat` in rank order gives the arrays a single process produces (spikes
concatenated on the batch axis, activity counters summed), so everything computed from
them — agreement, first divergence, accuracy, energy — is the same; only ``wall_s``
(dispatch to last result, on rank 0) differs.

Transport: job and result headers and heartbeats go through the run's c10d key-value store
(``TCPStore``; values stay small), the payloads point to point over a gloo process group,
as the pickle-free messages of :mod:`snn2hw.pipeline.shard_messages`. Rank 0 never
blocks on a peer: it polls the store and the receive, and a rank that
reports an exception, exits, or whose heartbeat stops (``SNN2HW_HEARTBEAT_TIMEOUT``) fails
the run with a :class:`ShardError` naming the rank and its sample range. Nothing is
written before every shard has arrived, so a failed run leaves no partial results.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

from snn2hw.backends.base import SimResult
from snn2hw.common import distributed as dist_rt
from snn2hw.common.distributed import World
from snn2hw.common.errors import ConfigError, Snn2hwError
from snn2hw.common.threads import (
    configure_threads,
    contiguous_ranges,
    current_threads,
    threads_per_process,
)
from snn2hw.pipeline.shard_messages import (
    Job,
    decode_job,
    decode_result,
    encode_job,
    encode_result,
)
from snn2hw.quant.qgraph import QGraph

POLL_S = 0.02  # how often rank 0 looks at its ranks while it waits


class ShardError(Snn2hwError):
    """A rank failed while running its shard (exception, exit, silence)."""


def shard_ranges(n: int, size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` of each of ``size`` ranks over ``n`` samples: contiguous, in rank
    order, the first ``n % size`` ranks one sample longer."""
    return contiguous_ranges(n, size)


def describe_range(start: int, stop: int) -> str:
    return f"samples {start}-{stop - 1}" if stop > start else "no samples"


def _run_job(job: Job, world: World) -> SimResult:
    import torch

    from snn2hw.pipeline.simulate import run_local

    device = job.device
    if device.startswith("cuda"):
        device = str(dist_rt.rank_device(torch.device("cuda"), world))
    return run_local(job.backend, job.graph, job.ints, num_steps=job.num_steps, device=device,
                     record_state=job.record_state, batch_size=job.batch_size)


class Pool:
    """Rank 0's side of a session: sends shards, runs its own, gathers the results."""

    def __init__(self, world: World, store: Any, prefix: str,
                 procs: dict[int, subprocess.Popen] | None = None) -> None:
        self.world, self.store, self.prefix = world, store, prefix
        self.procs = procs or {}
        self.liveness = dist_rt.Liveness(store, prefix)
        self._job = 0
        self._sends: list[Any] = []

    def _key(self, what: str, job: int, rank: int) -> str:
        return f"{self.prefix}/{what}/{job}/{rank}"

    def run(self, name: str, graph: QGraph, ints: np.ndarray, *, num_steps: int | None,
            device: str, record_state: bool, batch_size: int) -> SimResult:
        """The result of running ``name`` over all of ``ints`` ``[F, B, ...]``, computed
        shard by shard across the ranks (see the module docstring)."""
        from snn2hw.backends import registry

        registry.get(name)  # an unknown backend fails here, as in one process
        t0 = time.perf_counter()
        k, self._job = self._job, self._job + 1
        ranges = shard_ranges(int(ints.shape[1]), self.world.size)
        for r in range(1, self.world.size):
            start, stop = ranges[r]
            if stop == start:
                self.store.set(self._key("job", k, r), "0")
                continue
            payload = encode_job(Job(name, graph, np.ascontiguousarray(ints[:, start:stop]),
                                     num_steps, device, record_state, batch_size))
            self.store.set(self._key("job", k, r), str(len(payload)))
            self._sends.append(dist_rt.send_bytes(payload, r))
        start, stop = ranges[0]
        t_own = time.perf_counter()
        mine = _run_job(Job(name, graph, ints[:, start:stop], num_steps, device, record_state,
                            batch_size), self.world)
        t_own = time.perf_counter() - t_own
        # a rank alive but stuck (a deadlocked backend) must not hold the run forever: the
        # others get SNN2HW_DIST_TIMEOUT, or 4x rank 0's own shard time if that is longer
        patience = max(dist_rt.timeout_s(), 4 * t_own)
        parts = [mine, *self._gather(k, ranges, patience, t_own)]
        self._sends.clear()
        return SimResult.concat(parts, wall_s=time.perf_counter() - t0)

    def _gather(self, k: int, ranges: list[tuple[int, int]], patience: float,
                t_own: float) -> list[SimResult]:
        waiting = {r for r in range(1, self.world.size) if ranges[r][1] > ranges[r][0]}
        got: dict[int, SimResult] = {}
        deadline = time.monotonic() + patience
        while waiting:
            if time.monotonic() > deadline:
                r = min(waiting)
                raise self._failure(r, ranges[r], (
                    f"gave no result {patience:.0f} s after rank 0 finished its own shard "
                    f"in {t_own:.1f} s (SNN2HW_DIST_TIMEOUT)"))
            for r in sorted(waiting):
                if self.store.check([self._key("res", k, r)]):
                    # the rank has posted its send: receiving now cannot wait on its work
                    got[r] = self._receive(r, ranges[r], int(self.store.get(
                        self._key("res", k, r))))
                    waiting.discard(r)
                elif self.store.check([self._key("err", k, r)]):
                    msg = self.store.get(self._key("err", k, r)).decode()
                    raise self._failure(r, ranges[r], f"failed: {msg}")
                else:
                    self._check_alive(r, ranges[r])
            time.sleep(POLL_S)
        return [got[r] for r in sorted(got)]

    def _receive(self, r: int, rng: tuple[int, int], size: int) -> SimResult:
        import datetime

        work, buf = dist_rt.recv_bytes(size, r)
        try:
            work.wait(datetime.timedelta(seconds=dist_rt.heartbeat_timeout_s()))
        except Exception as exc:  # noqa: BLE001 - gloo names a broken peer many ways
            raise self._failure(r, rng, f"died while sending its results ({exc})") from None
        return decode_result(buf.numpy().tobytes())

    def _check_alive(self, r: int, rng: tuple[int, int]) -> None:
        proc = self.procs.get(r)
        if proc is not None and proc.poll() is not None:
            raise self._failure(r, rng, f"exited with code {proc.returncode}")
        silent = self.liveness.silent_for(r)
        if silent > dist_rt.heartbeat_timeout_s():
            raise self._failure(r, rng, f"stopped answering (no heartbeat for {silent:.0f} s)")

    def _failure(self, r: int, rng: tuple[int, int], what: str) -> ShardError:
        return ShardError(
            f"rank {r} of {self.world.size} ({describe_range(*rng)}) {what}; "
            "the run is incomplete and wrote no results"
        )

    def close(self, failed: bool) -> None:
        """Tell the ranks to stop; local workers get a grace period, then are killed."""
        try:
            self.store.set(f"{self.prefix}/stop", "1")
        except Exception:  # noqa: BLE001 - store already gone: the workers exit on their own
            pass
        deadline = time.monotonic() + (2.0 if failed else 30.0)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


_ACTIVE: Pool | None = None


def active_pool() -> Pool | None:
    """The pool of the session running on this process (rank 0), or None."""
    return _ACTIVE


def _wait_for_ranks(store: Any, prefix: str, world: World,
                    procs: dict[int, subprocess.Popen]) -> None:
    """Every rank's first heartbeat, or a ShardError naming the one that never came."""
    deadline = time.monotonic() + dist_rt.heartbeat_timeout_s()
    for r in range(world.size):
        while not store.check([f"{prefix}/hb/{r}"]):
            proc = procs.get(r)
            if proc is not None and proc.poll() is not None:
                raise ShardError(f"worker rank {r} of {world.size} exited with code "
                                 f"{proc.returncode} before it started")
            if time.monotonic() > deadline:
                raise ShardError(f"rank {r} of {world.size} did not join within "
                                 f"{dist_rt.heartbeat_timeout_s():.0f} s")
            time.sleep(POLL_S)


def _join(world: World, procs: dict[int, subprocess.Popen], store: Any = None) -> tuple:
    """Store client, heartbeat, process group: what every rank of a session holds."""
    import torch
    import torch.distributed as dist

    prefix = dist_rt.run_prefix()
    if store is None:
        store = dist_rt.store_client(world)
        beat = dist_rt.Heartbeat(world, prefix, lambda: dist_rt.store_client(world, host=False))
    else:  # rank 0 of --workers: it serves the store itself
        port = store.port
        beat = dist_rt.Heartbeat(
            world, prefix, lambda: dist_rt.store_client(world, host=False, addr="127.0.0.1",
                                                        port=port))
    _wait_for_ranks(store, prefix, world, procs)
    dist_rt.init_process_group(world, torch.device("cpu"),
                               store=dist.PrefixStore(f"{prefix}/pg", store))
    return store, prefix, beat


def _spawn(workers: int) -> tuple[World, Any, dict[int, subprocess.Popen]]:
    """Rank 0 here, ranks 1..workers-1 as local processes with torchrun's variables."""
    world = World(0, workers, 0)
    store = dist_rt.store_client(world, host=True, addr="127.0.0.1", port=0)
    import snn2hw

    # the workers import the snn2hw this process runs, installed or not
    here = os.path.dirname(os.path.dirname(os.path.abspath(snn2hw.__file__)))
    path = os.pathsep.join(p for p in (here, os.environ.get("PYTHONPATH", "")) if p)
    share = str(threads_per_process(workers))  # the cores are shared by the processes
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(store.port),
           "WORLD_SIZE": str(workers), "LOCAL_WORLD_SIZE": str(workers), "PYTHONPATH": path,
           "OMP_NUM_THREADS": share, "NUMBA_NUM_THREADS": share}
    env.pop("TORCHELASTIC_USE_AGENT_STORE", None)
    procs = {}
    for r in range(1, workers):
        procs[r] = subprocess.Popen(
            [sys.executable, "-m", "snn2hw.pipeline.sharding"],
            env={**env, "RANK": str(r), "LOCAL_RANK": str(r)},
            stdout=subprocess.DEVNULL,  # stdout carries rank 0's results (--json) only
        )
    return world, store, procs


@contextmanager
def session(workers: int = 1) -> Iterator[bool]:
    """Run a command's body sharded: yields True on the process that runs it (rank 0, or a
    plain single process), False on a rank that has finished serving rank 0 (its command
    should return). ``workers`` > 1 starts that many local processes in all; under
    torchrun the ranks torchrun started are the workers."""
    global _ACTIVE
    world = dist_rt.env_world()
    if world.distributed and workers > 1:
        raise ConfigError(f"--workers {workers} under torchrun: the {world.size} ranks torchrun "
                          "started are the workers; drop --workers")
    if not world.distributed and workers <= 1:
        yield True
        return
    procs: dict[int, subprocess.Popen] = {}
    store = None
    threads_before = current_threads()
    if not world.distributed:
        world, store, procs = _spawn(workers)
        configure_threads(threads_per_process(workers))  # rank 0's share, restored below
    failed = True
    pool = None
    beat = None
    try:
        store, prefix, beat = _join(world, procs, store)
        if world.rank != 0:
            serve_loop(world, store, prefix)
            failed = False
            yield False
            return
        pool = Pool(world, store, prefix, procs)
        _ACTIVE = pool
        yield True
        failed = False
    finally:
        _ACTIVE = None
        if pool is not None:
            pool.close(failed)
        elif procs:
            Pool(world, store, dist_rt.run_prefix(), procs).close(True)
        if beat is not None:
            beat.stop()
        # after a failure under torchrun a peer may still hold an operation open and the
        # process is about to exit anyway; local workers are gone by now, so nothing blocks
        if not failed or procs:
            dist_rt.destroy_process_group()
        if procs:
            configure_threads(threads_before)


def serve_loop(world: World, store: Any, prefix: str) -> None:
    """A worker rank: run each shard rank 0 sends until it says stop (or goes silent)."""
    liveness = dist_rt.Liveness(store, prefix)
    k = 0
    while True:
        key = f"{prefix}/job/{k}/{world.rank}"
        while not store.check([key]):
            if store.check([f"{prefix}/stop"]):
                return
            if liveness.dead(0):
                raise ShardError(f"rank 0 stopped answering; rank {world.rank} stops")
            time.sleep(POLL_S)
        size = int(store.get(key))
        store.delete_key(key)
        if size:
            work, buf = dist_rt.recv_bytes(size, 0)
            work.wait()
            try:
                payload = encode_result(_run_job(decode_job(buf.numpy().tobytes()), world))
            except Exception as exc:  # noqa: BLE001 - any failure goes to rank 0, one line
                text = str(exc).strip().splitlines()
                store.set(f"{prefix}/err/{k}/{world.rank}",
                          f"{type(exc).__name__}: {text[0] if text else ''}"[:2000])
            else:
                store.set(f"{prefix}/res/{k}/{world.rank}", str(len(payload)))
                dist_rt.send_bytes(payload, 0).wait()
        k += 1


def worker_main() -> int:
    """Entry of a local worker process (``python -m snn2hw.pipeline.sharding``)."""
    if dist_rt.env_world().rank == 0:
        print("error: a worker process needs RANK > 0 (started by --workers or torchrun)",
              file=sys.stderr)
        return 1
    try:
        configure_threads()  # the share --workers gave this process (OMP_NUM_THREADS)
        with session(1):
            pass
    except Exception as exc:  # noqa: BLE001 - a worker reports one line and exits non-zero
        print(f"error: worker rank {dist_rt.env_world().rank}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover - run as a worker process
    from snn2hw.pipeline.sharding import worker_main as _main

    sys.exit(_main())
