"""Data-parallel training (snn2hw.training under torchrun): two gloo ranks on the CPU take
the same optimizer steps as one process with the same global batch, write the same
checkpoint format, and ``--resume`` crosses world sizes in both directions."""

from __future__ import annotations

import json
import shutil

import pytest
import torch
from launch import torchrun

from snn2hw.training import train as train_mod
from snn2hw.training.checkpoint import load_checkpoint
from snn2hw.training.config import validate_config

# batch 100 over 1165 training samples: the last global batch (65) splits unevenly
# (33 + 32); augmentation and the fused LIF kernels are on, dropout off (its masks are
# drawn per rank, see docs/distributed.md).
CFG = {
    "experiment": {"name": "ddp", "seed": 3, "device": "cpu"},
    "data": {"dataset": "digits", "batch_size": 100},
    "model": {"layers": [{"type": "flatten"}, {"type": "linear", "out": 24},
                         {"type": "neuron"}, {"type": "linear", "out": 10},
                         {"type": "neuron"}]},
    "train": {"epochs": 1, "num_steps": 4, "lr": 0.01, "augment_shift": 1},
}


def _toml(tmp_path, epochs: int):
    import tomli_w

    p = tmp_path / f"ddp{epochs}.toml"
    p.write_bytes(tomli_w.dumps({**CFG, "train": {**CFG["train"], "epochs": epochs}}).encode())
    return p


def _single(tmp_path, name: str, epochs: int, resume=None):
    cfg = validate_config({**CFG, "train": {**CFG["train"], "epochs": epochs}})
    return train_mod.train(cfg, out_dir=tmp_path / name, resume=resume, progress=False)


def _assert_close(a: str, b: str, atol: float = 1e-5) -> None:
    """Every weight equal within float tolerance (ranks sum gradients in another order)."""
    sa, sb = load_checkpoint(a).state_dict, load_checkpoint(b).state_dict
    assert sa.keys() == sb.keys()
    for k in sa:
        torch.testing.assert_close(sa[k], sb[k], atol=atol, rtol=1e-4, msg=k)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """One epoch in one process and on two ranks (printing as the CLI does)."""
    d = tmp_path_factory.mktemp("ddp")
    one = _single(d, "one", 1)
    r = torchrun(["train", str(_toml(d, 1)), "--out", str(d / "ddp"), "--quiet", "--json"])
    assert r.returncode == 0, r.stderr[-3000:]
    return d, one, r


def test_two_gloo_ranks_take_the_same_steps_as_one_process(runs):
    d, one, r = runs
    _assert_close(one.checkpoint, d / "ddp" / "last.pt")
    ck1, ck2 = load_checkpoint(one.checkpoint), load_checkpoint(d / "ddp" / "last.pt")
    h1, h2 = ck1.metrics["history"][0], ck2.metrics["history"][0]
    assert h1["train_accuracy"] == pytest.approx(h2["train_accuracy"], abs=1e-9)
    assert h1["train_loss"] == pytest.approx(h2["train_loss"], rel=1e-4)
    assert h1["val_accuracy"] == pytest.approx(h2["val_accuracy"], abs=1 / 130)


def _flat(state) -> list:
    if isinstance(state, dict):
        return [x for k in sorted(state) for x in [k, *_flat(state[k])]]
    if isinstance(state, (list, tuple)):
        return [x for v in state for x in _flat(v)]
    return [state.tolist() if isinstance(state, torch.Tensor) else state]


def test_a_two_rank_checkpoint_holds_what_one_process_would_resume_from(runs):
    """Same format, and the same random-number states (data order, encoder, augmentation,
    torch, numpy, Python) as the one-process run: either resumes at either world size."""
    d, one, _ = runs
    ck1, ck2 = load_checkpoint(one.checkpoint), load_checkpoint(d / "ddp" / "last.pt")
    assert ck2.epoch == 1 and ck2.optimizer is not None and ck2.arch == ck1.arch
    assert ck2.rng is not None and _flat(ck2.rng) == _flat(ck1.rng)


def test_resume_crosses_world_sizes_both_ways(runs, tmp_path):
    d, one, _ = runs
    # one process -> two ranks: the same second epoch as resuming in one process
    for name in ("single", "to_ddp"):
        shutil.copytree(d / "one", tmp_path / name)
    ref = _single(tmp_path, "single", 2, resume=tmp_path / "single" / "last.pt")
    r = torchrun(["train", str(_toml(tmp_path, 2)), "--out", str(tmp_path / "to_ddp"),
                  "--resume", str(tmp_path / "to_ddp" / "last.pt"), "--quiet", "--json"])
    assert r.returncode == 0, r.stderr[-3000:]
    assert json.loads(r.stdout)["epochs"] == 2
    _assert_close(tmp_path / "to_ddp" / "last.pt", ref.checkpoint)
    # two ranks -> one process (resumed in a copy of the run folder, as a user would)
    shutil.copytree(d / "ddp", tmp_path / "from_ddp")
    cont = _single(tmp_path, "from_ddp", 2, resume=tmp_path / "from_ddp" / "last.pt")
    assert [h["epoch"] for h in cont.history] == [1, 2]
    assert cont.history[0] == load_checkpoint(d / "ddp" / "last.pt").metrics["history"][0]


def test_equivalence_check_fails_on_a_different_global_batch(runs, tmp_path):
    """The comparison is sharp: one process with a global batch of 50 instead of 100 is
    far outside the tolerance the two-rank run meets."""
    cfg = validate_config({**CFG, "data": {**CFG["data"], "batch_size": 50}})
    other = train_mod.train(cfg, out_dir=tmp_path / "b50", progress=False)
    with pytest.raises(AssertionError):
        _assert_close(runs[0] / "ddp" / "last.pt", other.checkpoint)
