"""The torch.distributed runtime every multi-process command shares: who am I (rank, world
size, local rank, from the environment ``torchrun`` sets), one process group per run
(gloo on CPU, NCCL on CUDA), reductions of plain numbers, and the pieces sharded
simulation needs to watch its ranks: a key-value store client (c10d ``TCPStore``, the one
``torchrun``'s rendezvous serves), per-rank heartbeats, and byte messages sent point to
point over gloo that the receiver polls instead of blocking on.

Environment (``torchrun`` sets all of it; ``snn2hw ... --workers N`` sets it for the
processes it starts): ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``; ``TORCHELASTIC_USE_AGENT_STORE=True`` when torchrun's agent serves the
store. ``SNN2HW_DIST_TIMEOUT`` (seconds, default 1800) bounds every collective;
``SNN2HW_HEARTBEAT_TIMEOUT`` (seconds, default 60) is how long a rank may go silent before
it is declared dead.

May import: ``snn2hw.common`` only (torch.distributed itself is imported lazily).
"""

from __future__ import annotations

import datetime
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

#: Prefix of every key snn2hw puts into a store it shares with torchrun.
KEY_PREFIX = "snn2hw"


@dataclass(frozen=True)
class World:
    """This process's place in a run: ``rank`` of ``size`` processes, ``local_rank`` on its
    machine. ``size == 1``: a single process, no process group."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes files, prints and draws progress."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.size > 1


def env_world() -> World:
    """The :class:`World` the environment describes (``torchrun``'s variables); a single
    process when ``WORLD_SIZE`` is unset or 1."""
    size = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if size <= 1:
        return World()
    return World(int(os.environ.get("RANK", "0")), size, int(os.environ.get("LOCAL_RANK", "0")))


def timeout_s() -> float:
    """Seconds any collective may block (``SNN2HW_DIST_TIMEOUT``, default 1800)."""
    return float(os.environ.get("SNN2HW_DIST_TIMEOUT", "1800"))


def heartbeat_timeout_s() -> float:
    """Seconds a rank may go without a heartbeat before it counts as dead."""
    return float(os.environ.get("SNN2HW_HEARTBEAT_TIMEOUT", "60"))


def is_initialized() -> bool:
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def init_process_group(world: World, device: torch.device, store: Any = None) -> None:
    """Join the run's process group: NCCL when this rank trains on a CUDA device, else gloo.
    ``store``: an existing store (else ``env://``, torchrun's variables)."""
    import torch.distributed as dist

    backend = "nccl" if device.type == "cuda" else "gloo"
    kwargs: dict[str, Any] = {"timeout": datetime.timedelta(seconds=timeout_s())}
    if store is not None:
        kwargs.update(store=store, rank=world.rank, world_size=world.size)
    if device.type == "cuda":
        kwargs["device_id"] = device
    dist.init_process_group(backend, **kwargs)


def destroy_process_group(together: bool = False) -> None:
    """Leave the process group. ``together`` (a run that succeeded on every rank): a barrier
    first, so no rank tears down its gloo pairs while another still sends (a rank then
    aborts with "terminate called without an active exception", seen once under load).
    Never after a failure: the peers may be stuck in a collective and the barrier would
    wait for them until the timeout."""
    import torch.distributed as dist

    if is_initialized():
        if together:
            try:
                dist.barrier()
            except Exception:  # noqa: BLE001 - a peer already gone: leave anyway
                pass
        dist.destroy_process_group()


def rank_device(device: torch.device, world: World) -> torch.device:
    """A CUDA device becomes this rank's own GPU (``cuda:LOCAL_RANK``, wrapping around
    when a machine has fewer GPUs than ranks); CPU stays CPU."""
    if device.type != "cuda" or not world.distributed:
        return device
    return torch.device("cuda", world.local_rank % max(1, torch.cuda.device_count()))


def all_reduce_sum(values: list[float], device: torch.device | str = "cpu") -> list[float]:
    """Sum ``values`` over every rank (float64); unchanged without a process group."""
    if not is_initialized():
        return [float(v) for v in values]
    import torch.distributed as dist

    t = torch.tensor(values, dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return [float(v) for v in t.cpu().tolist()]


def broadcast_flag(value: bool, src: int = 0, device: torch.device | str = "cpu") -> bool:
    """Rank ``src``'s ``value`` on every rank."""
    if not is_initialized():
        return bool(value)
    import torch.distributed as dist

    t = torch.tensor([1 if value else 0], dtype=torch.int64, device=device)
    dist.broadcast(t, src=src)
    return bool(t.item())


def broadcast_bytes(data: bytes | None, src: int = 0,
                    device: torch.device | str = "cpu") -> bytes:
    """Rank ``src``'s ``data`` on every rank (``data`` elsewhere is ignored). Bytes, not
    objects: ``broadcast_object_list`` would unpickle what a peer sends, and a peer of a
    multi-machine run is not trusted to send code."""
    if not is_initialized():
        return bytes(data or b"")
    import torch.distributed as dist

    n = torch.tensor([len(data or b"")], dtype=torch.int64, device=device)
    dist.broadcast(n, src=src)
    buf = torch.zeros(int(n.item()), dtype=torch.uint8, device=device)
    if data:
        buf.copy_(torch.frombuffer(bytearray(data), dtype=torch.uint8))
    dist.broadcast(buf, src=src)
    return buf.cpu().numpy().tobytes()


def broadcast_json(obj: Any, src: int = 0, device: torch.device | str = "cpu") -> Any:
    """Rank ``src``'s JSON-able ``obj`` on every rank (numbers, strings, lists, dicts)."""
    import json

    text = json.dumps(obj, default=float).encode() if obj is not None else None
    return json.loads(broadcast_bytes(text, src, device).decode() or "null")


# ----- store, heartbeats and polled byte messages (sharded simulation) ----------------------
def store_client(world: World, *, host: bool | None = None, addr: str | None = None,
                 port: int | None = None) -> Any:
    """A client of the run's key-value store at ``addr:port`` (default ``MASTER_ADDR:
    MASTER_PORT``; port 0 with ``host``: any free port, read it from ``.port``). Rank 0
    serves it unless torchrun's agent does (``TORCHELASTIC_USE_AGENT_STORE=True``); ``host``
    overrides that decision."""
    import torch.distributed as dist

    if host is None:
        host = world.rank == 0 and os.environ.get("TORCHELASTIC_USE_AGENT_STORE") != "True"
    return dist.TCPStore(
        addr or os.environ.get("MASTER_ADDR", "127.0.0.1"),
        int(port if port is not None else os.environ["MASTER_PORT"]),
        world.size if host else None, host,
        timeout=datetime.timedelta(seconds=timeout_s()), wait_for_workers=False,
    )


def run_prefix() -> str:
    """Key prefix of this run: a torchrun restart must not read the last attempt's keys."""
    return (f"{KEY_PREFIX}/{os.environ.get('TORCHELASTIC_RUN_ID', 'local')}/"
            f"{os.environ.get('TORCHELASTIC_RESTART_COUNT', '0')}")


class Heartbeat:
    """A daemon thread that counts up ``{prefix}/hb/{rank}`` in the store every ``period``
    seconds (on its own client from ``connect``, so it never waits behind the main
    thread's calls);
    :class:`Liveness` reads the counters with the reader's own clock (no clock sync)."""

    def __init__(self, world: World, prefix: str, connect: Callable[[], Any],
                 period: float = 1.0) -> None:
        self._stop = threading.Event()
        self._key = f"{prefix}/hb/{world.rank}"
        self._store = connect()
        self._store.add(self._key, 1)
        self._thread = threading.Thread(target=self._beat, args=(period,), daemon=True,
                                        name=f"snn2hw-heartbeat-{world.rank}")
        self._thread.start()

    def _beat(self, period: float) -> None:
        while not self._stop.wait(period):
            try:
                self._store.add(self._key, 1)
            except Exception:  # noqa: BLE001 - the store is gone: the run is ending
                return

    def stop(self) -> None:
        self._stop.set()


class Liveness:
    """Whether each rank's heartbeat still moves: a rank whose counter has not changed for
    :func:`heartbeat_timeout_s` seconds of the reader's clock is dead."""

    def __init__(self, store: Any, prefix: str) -> None:
        self._store, self._prefix = store, prefix
        self._seen: dict[int, tuple[int, float]] = {}

    def silent_for(self, rank: int) -> float:
        """Seconds since ``rank``'s heartbeat last moved (0 when it just did)."""
        key = f"{self._prefix}/hb/{rank}"
        now = time.monotonic()
        value = self._store.add(key, 0) if self._store.check([key]) else 0
        last = self._seen.get(rank)
        if last is None or last[0] != value:
            self._seen[rank] = (value, now)
            return 0.0
        return now - last[1]

    def dead(self, rank: int) -> bool:
        return self.silent_for(rank) > heartbeat_timeout_s()


def send_bytes(data: bytes, dst: int) -> Any:
    """Start sending ``data`` to rank ``dst`` over the process group; returns the Work."""
    import torch.distributed as dist

    t = torch.frombuffer(bytearray(data), dtype=torch.uint8) if data else torch.empty(
        0, dtype=torch.uint8)
    return dist.isend(t, dst=dst)


def recv_bytes(size: int, src: int) -> tuple[Any, torch.Tensor]:
    """Start receiving ``size`` bytes from rank ``src``; returns ``(work, buffer)``: poll
    ``work.is_completed()``, then ``bytes(buffer.numpy())``."""
    import torch.distributed as dist

    buf = torch.empty(size, dtype=torch.uint8)
    return dist.irecv(buf, src=src), buf
