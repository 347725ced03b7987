"""snn2hw.common.distributed: the world from torchrun's variables, and heartbeats that tell
a live rank from a silent one by the reader's own clock."""

from __future__ import annotations

import time

import pytest

from snn2hw.common import distributed as d


def test_world_comes_from_torchruns_variables(monkeypatch):
    for k in ("WORLD_SIZE", "RANK", "LOCAL_RANK"):
        monkeypatch.delenv(k, raising=False)
    assert d.env_world() == d.World() and not d.env_world().distributed
    monkeypatch.setenv("WORLD_SIZE", "4")
    monkeypatch.setenv("RANK", "3")
    monkeypatch.setenv("LOCAL_RANK", "1")
    w = d.env_world()
    assert (w.rank, w.size, w.local_rank, w.is_main, w.distributed) == (3, 4, 1, False, True)


def test_a_stopped_heartbeat_is_declared_dead_and_a_beating_one_is_not(monkeypatch):
    monkeypatch.setenv("SNN2HW_HEARTBEAT_TIMEOUT", "1.5")
    world = d.World(0, 3, 0)
    store = d.store_client(world, host=True, addr="127.0.0.1", port=0)
    port = store.port

    def connect():
        return d.store_client(world, host=False, addr="127.0.0.1", port=port)

    beats = {r: d.Heartbeat(d.World(r, 3, r), "t", connect, period=0.2) for r in (1, 2)}
    live = d.Liveness(store, "t")
    assert not live.dead(1) and not live.dead(2)
    beats[2].stop()  # rank 2 falls silent (as a killed or frozen process would)
    t_end = time.monotonic() + 10
    while not live.dead(2):
        assert time.monotonic() < t_end, "a silent rank was never declared dead"
        time.sleep(0.1)
    assert not live.dead(1)
    assert live.silent_for(1) < 1.0
    beats[1].stop()


@pytest.mark.parametrize("n", [0, 1, 5])
def test_all_reduce_and_broadcast_are_identity_in_one_process(n):
    assert d.all_reduce_sum([float(n), 2.0]) == [float(n), 2.0]
    assert d.broadcast_json({"n": n}) == {"n": n}
    assert d.broadcast_bytes(bytes([n, 7])) == bytes([n, 7])
    assert d.broadcast_flag(n > 0) is (n > 0)
