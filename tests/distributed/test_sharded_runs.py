"""Sharded simulate/compare (snn2hw.pipeline.sharding): split across torchrun ranks or
``--workers`` processes they report exactly what one process reports (apart from timings),
the first divergence and exit code included; a rank that fails, dies or is killed fails the
run naming the rank and its samples, without hanging and without writing results."""

from __future__ import annotations

import json
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from launch import SINGLE_NODE, readme_commands, torchrun, two_machines

from snn2hw.backends import registry
from snn2hw.cli import main
from snn2hw.pipeline.samples import SampleSpec
from snn2hw.pipeline.sharding import shard_ranges
from snn2hw.quant.inputs import InputFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "pipeline"))
from fault_injection import fixed_graph, fixed_inputs, registry_with_fault  # noqa: E402

INJECT = str(Path(__file__).resolve().parent / "inject")
TIMINGS = ("wall_s", "samples_per_s")
# six samples: 0-2 go to rank 0, 3-5 to rank 1; the input fault hits the one sample whose
# content is fixed_inputs()'s sample 1: sample 4, in rank 1's shard
ORDER = [0, 2, 0, 2, 1, 2]


@pytest.fixture(scope="module")
def artifact(tmp_path_factory) -> str:
    d = tmp_path_factory.mktemp("sharded")
    np.save(d / "frames.npy", fixed_inputs()[:, ORDER])
    np.save(d / "labels.npy", np.array([0, 1, 0, 1, 1, 1]))
    g = fixed_graph()
    g.metadata = {"samples": SampleSpec(inputs_file="frames.npy",  # inside the artifact
                                        labels_file="labels.npy").to_dict(),
                  "input_format": InputFormat(0, 1.0).to_dict()}
    g.save(d / "fixed.qgraph")
    return str(d / "fixed.qgraph")


def _untimed(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in TIMINGS}


def _with_fault(monkeypatch, spec: str) -> None:
    """Processes started from here load tests/distributed/inject/sitecustomize.py."""
    monkeypatch.setenv("SNN2HW_TEST_FAULT", spec)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([INJECT, os.environ.get("PYTHONPATH", "")]))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def test_shard_ranges_cover_the_samples_contiguously_in_rank_order():
    assert shard_ranges(6, 2) == [(0, 3), (3, 6)]
    assert shard_ranges(7, 3) == [(0, 3), (3, 5), (5, 7)]
    assert shard_ranges(1, 3) == [(0, 1), (1, 1), (1, 1)]
    for n in range(0, 12):
        for size in range(1, 5):
            r = shard_ranges(n, size)
            assert r[0][0] == 0 and r[-1][1] == n
            assert all(a[1] == b[0] for a, b in zip(r, r[1:], strict=False))
            assert max(b - a for a, b in r) - min(b - a for a, b in r) <= 1


def test_readme_single_node_commands_are_the_tested_launch_form():
    cmds = [c for c in readme_commands() if "--standalone" in c]
    assert {c.split(" -m snn2hw.cli ")[1].split()[0] for c in cmds} >= {"train", "compare"}
    for c in cmds:
        assert c.startswith(SINGLE_NODE), c


def test_compare_on_two_torchrun_ranks_reports_what_one_process_reports(
        artifact, tmp_path, monkeypatch):
    """A divergence in rank 1's shard: same JSON (timings aside), same first divergence
    (sample 4), same exit code 2 (rank 0's). The fault is real: without it the JSON
    differs."""
    args = ["compare", artifact, "--backends", "torch-int,event", "--samples", "6",
            "--device", "cpu", "--no-report", "--json"]
    monkeypatch.setattr(registry, "get", registry_with_fault(registry.get, "event", "input",
                                                             fixed_inputs()))
    one = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "one")])
    assert one.exit_code == 2, one.output
    monkeypatch.undo()
    _with_fault(monkeypatch, "input:event")
    two = torchrun([*args, "-o", str(tmp_path / "two")])
    # torchrun exits 1 when any rank fails and names rank 0's own exit code, 2
    assert two.returncode == 1 and "exitcode  : 2" in two.stderr, two.stderr[-3000:]
    a, b = json.loads(one.output), json.loads(two.stdout)
    assert _untimed(a) == _untimed(b)
    assert a["divergences"][0]["sample"] == 4 and a["divergences"][0]["other"] == "event"
    files = [json.loads((tmp_path / d / "compare.json").read_text()) for d in ("one", "two")]
    assert _untimed(files[0]) == _untimed(files[1])
    clean = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "clean")])
    assert clean.exit_code == 0 and _untimed(json.loads(clean.output)) != _untimed(a)


def test_readme_two_machine_compare_runs_as_two_launchers(artifact, tmp_path):
    """The README's multi-machine compare line, as two torchrun launchers meeting at a
    c10d rendezvous on this machine: rank 0's launcher prints one process's report."""
    line = next(c for c in readme_commands() if "--rdzv-endpoint" in c and " compare " in c)
    args = ["compare", artifact, "--backends", "torch-int,event", "--samples", "6",
            "--no-report", "--json"]
    runs = two_machines(line, [*args, "-o", str(tmp_path / "two")])
    assert all(r.returncode == 0 for r in runs), [r.stderr[-2000:] for r in runs]
    printed = [r.stdout for r in runs if r.stdout.strip()]
    assert len(printed) == 1  # rank 0 alone prints
    one = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "one")])
    assert one.exit_code == 0, one.output
    assert _untimed(json.loads(printed[0])) == _untimed(json.loads(one.output))


def test_workers_2_give_the_reports_of_one_process(artifact, tmp_path, monkeypatch):
    """compare with every integer backend (Lava per rank) and energy from the summed
    activity counters, simulate's per-layer SynOps, and the energy command's reports:
    equal with 1 and 2 processes."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    backends = ",".join(b for b in ("torch-int", "event", "lava") if b in registry.available())
    out = {}
    for w in ("1", "2"):
        r = CliRunner().invoke(main, ["compare", artifact, "--backends", backends, "--samples",
                                      "6", "--device", "cpu", "--no-report", "--energy",
                                      "loihi", "--json", "-o", str(tmp_path / w),
                                      "--workers", w])
        assert r.exit_code == 0, r.output
        s = CliRunner().invoke(main, ["simulate", artifact, "--backend", "event", "--samples",
                                      "6", "--json", "--workers", w])
        assert s.exit_code == 0, s.output
        e = CliRunner().invoke(main, ["energy", artifact, "--samples", "6", "--json", "-o",
                                      str(tmp_path / f"e{w}"), "--workers", w])
        assert e.exit_code == 0, e.output
        out[w] = (json.loads(r.output), json.loads(s.output), json.loads(e.output))
    assert _untimed(out["1"][0]) == _untimed(out["2"][0])
    assert out["1"][0]["energy_per_inference"]["event"].endswith("modelled on loihi")
    assert _untimed(out["1"][1]) == _untimed(out["2"][1])
    assert all("synops_per_sample" in row for row in out["2"][1]["layers"].values())
    assert out["1"][2] == out["2"][2] and out["2"][2]["reports"]


@pytest.mark.parametrize("fault, says", [
    ("raise:1", "rank 1 of 2 (samples 3-5) failed: RuntimeError: injected fault on rank 1"),
    ("kill:1", "rank 1 of 2 (samples 3-5) exited with code -9"),
    ("hang:1", "rank 1 of 2 (samples 3-5) gave no result 3 s after rank 0 finished"),
])
def test_a_failing_worker_fails_the_run_naming_rank_and_samples(
        fault, says, artifact, tmp_path, monkeypatch):
    _with_fault(monkeypatch, fault)
    monkeypatch.setenv("SNN2HW_DIST_TIMEOUT", "3")  # patience with a stuck rank
    t0 = time.monotonic()
    r = CliRunner().invoke(main, ["compare", artifact, "--backends", "torch-int,event",
                                  "--samples", "6", "--no-report", "-o", str(tmp_path),
                                  "--workers", "2"])
    assert r.exit_code == 1, r.output
    assert says in r.output and "wrote no results" in r.output
    assert not (tmp_path / "compare.json").exists()
    assert time.monotonic() - t0 < 60  # failure is noticed by polling, not by a timeout


def test_a_killed_torchrun_rank_fails_the_run_without_results(artifact, tmp_path,
                                                              monkeypatch):
    """Under torchrun the launcher itself watches its ranks: it stops rank 0 (which writes
    nothing) and reports the killed rank."""
    _with_fault(monkeypatch, "kill:1")
    r = torchrun(["compare", artifact, "--backends", "torch-int,event", "--samples", "6",
                  "--no-report", "-o", str(tmp_path)], timeout=120)
    assert r.returncode == 1
    assert not (tmp_path / "compare.json").exists()
    # torchrun stops the other ranks and names the one that died as the root cause
    cause = r.stderr.split("Root Cause")[-1]
    assert re.search(r"rank\s*:\s*1 \(local_rank: 1\)", cause), r.stderr[-3000:]
    assert "Signal 9 (SIGKILL)" in cause


def test_workers_under_torchrun_are_refused(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    r = CliRunner().invoke(main, ["simulate", "x.qgraph", "--workers", "2"])
    assert r.exit_code == 1 and "drop --workers" in r.output


def test_shards_joined_in_rank_order_are_the_one_process_run_energy_included(artifact):
    """What rank 0 does with the shards, without processes: the event simulator's runs of
    samples 0-2 and 3-5 joined equal its run of all six (spikes and activity counters), so
    the energy estimate is the same; rank 0's counters alone would give another estimate."""
    from snn2hw.pipeline.energy import energy_for_graph
    from snn2hw.pipeline.simulate import graph_samples, run_local
    from snn2hw.quant.qgraph import QGraph

    g = QGraph.load(artifact)
    x = graph_samples(g, 6).ints
    full = run_local("event", g, x)
    parts = [run_local("event", g, x[:, a:b]) for a, b in shard_ranges(6, 2)]
    joined = type(full).concat(parts)
    for name, s in full.spikes.items():
        np.testing.assert_array_equal(joined.spikes[name], s)
    for key, per_layer in full.counters.as_dict().items():
        for layer, value in per_layer.items():
            np.testing.assert_array_equal(getattr(joined.counters, key)[layer], value)

    def total_pj(run) -> float:
        return energy_for_graph(g, "loihi", run=run, inputs=x)[0].total_pj

    assert total_pj(joined) == total_pj(full)
    assert total_pj(parts[0]) != total_pj(full)  # the check sees a missing shard
