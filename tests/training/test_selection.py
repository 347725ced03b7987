"""Evaluation protocol: model selection reads validation only, the test split is read once,
after training, for best.pt; checkpoints name the split of every number; QAT and
benchmarks/deploy_digits.py report float, PTQ and QAT of one checkpoint on the same test
samples; export calibrates on the training part."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

import snn2hw.pipeline.samples as samples_mod
import snn2hw.training.qat as qat_mod
import snn2hw.training.train as train_mod
from snn2hw.cli import main
from snn2hw.training.checkpoint import load_checkpoint
from snn2hw.training.config import validate_config
from snn2hw.training.runtime import config_validation, load_config_dataset

TINY = {
    "experiment": {"name": "tiny", "seed": 0, "device": "cpu"},
    "data": {"dataset": "digits", "batch_size": 64},
    "model": {
        "layers": [
            {"type": "flatten"},
            {"type": "linear", "out": 16},
            {"type": "neuron"},
            {"type": "linear", "out": 10},
            {"type": "neuron"},
        ]
    },
    "train": {"epochs": 3, "num_steps": 3, "lr": 0.005},
}
ROOT = Path(__file__).resolve().parents[2]


class GuardedTest:
    """A data set whose test split raises if read before the last epoch has finished
    (fault injection), and counts the reads after it."""

    def __init__(self, ds, epochs_done: list[int], epochs: int):
        self._ds, self._done, self._epochs = ds, epochs_done, epochs
        self.test_reads = 0

    def __getattr__(self, name):
        if name in ("x_test", "y_test"):
            if self._done[0] < self._epochs:
                raise AssertionError(f"test split read after {self._done[0]} epoch(s)")
            self.test_reads += 1
        return getattr(self._ds, name)

    def with_validation(self, fraction, seed):
        assert self._ds.has_validation
        return self


def _count_epochs(monkeypatch, snapshots=None) -> list[int]:
    done = [0]
    real = train_mod.run_epoch

    def spy(model, *a, **k):
        stats = real(model, *a, **k)
        done[0] += 1
        if snapshots is not None:
            snapshots.append({k: v.clone() for k, v in model.state_dict().items()})
        return stats

    monkeypatch.setattr(train_mod, "run_epoch", spy)
    return done


def test_train_reads_the_test_split_once_after_the_last_epoch(tmp_path, monkeypatch):
    cfg = validate_config(TINY)
    done = _count_epochs(monkeypatch)
    data = GuardedTest(config_validation(cfg, load_config_dataset(cfg)), done, 3)
    res = train_mod.train(cfg, out_dir=tmp_path, progress=False, dataset=data)
    assert done[0] == 3
    assert data.test_reads == 2  # x_test and y_test, once each: one evaluation
    assert res.test.split == "test" and res.test.num_samples == 360
    assert res.val.split == "val" and res.val.num_samples == 142


def test_best_pt_is_chosen_by_validation_when_test_disagrees(tmp_path, monkeypatch):
    """Validation prefers epoch 2, test would prefer epoch 3: best.pt is epoch 2 and the one
    test evaluation ran on epoch 2's weights."""
    val_script = {1: 0.50, 2: 0.90, 3: 0.70}
    test_script = {1: 0.60, 2: 0.65, 3: 0.95}  # what test would say of each epoch's weights
    snapshots: list[dict] = []
    _count_epochs(monkeypatch, snapshots)
    calls: list[tuple[str, int]] = []

    def epoch_of(model) -> int:
        state = model.state_dict()
        for i, snap in enumerate(snapshots, start=1):
            if all(torch.equal(state[k], snap[k]) for k in snap):
                return i
        raise AssertionError("weights of no epoch")

    def fake_evaluate(model, x, y, *, split, **kw):
        epoch = epoch_of(model)
        calls.append((split, epoch))
        acc = (val_script if split == "val" else test_script)[epoch]
        return train_mod.EvalResult(acc, len(y), 1.0, split=split)

    monkeypatch.setattr(train_mod, "evaluate", fake_evaluate)
    res = train_mod.train(validate_config(TINY), out_dir=tmp_path, progress=False)
    assert calls == [("val", 1), ("val", 2), ("val", 3), ("test", 2)]
    assert res.best_epoch == 2 and res.test.accuracy == test_script[2]
    best, last = load_checkpoint(res.best_checkpoint), load_checkpoint(res.checkpoint)
    assert best.epoch == 2 and last.epoch == 3
    for k, v in snapshots[1].items():
        assert torch.equal(best.state_dict[k], v)
    # Every number names its split; no test number before the end, none in last.pt.
    assert best.metrics["selection"] == {"split": "val", "metric": "accuracy",
                                         "best_epoch": 2, "best_val_accuracy": 0.9}
    assert best.metrics["val"]["split"] == "val" and best.metrics["val"]["accuracy"] == 0.9
    assert best.metrics["test"]["split"] == "test" and best.metrics["test"]["accuracy"] == 0.65
    assert "test" not in last.metrics and last.metrics["selection"]["best_epoch"] == 2
    assert [h["val_accuracy"] for h in last.metrics["history"]] == [0.5, 0.9, 0.7]
    assert not any("test" in key for h in last.metrics["history"] for key in h)
    assert best.metrics["splits"] == {"train": 1295, "val": 142, "test": 360,
                                      "val_fraction": 0.1, "seed": 0,
                                      "val_source": "carved from train"}


def test_resume_keeps_the_validation_best(tmp_path, monkeypatch):
    accs = iter([0.8, 0.4])
    monkeypatch.setattr(train_mod, "evaluate", lambda m, x, y, *, split, **kw:
                        train_mod.EvalResult(next(accs) if split == "val" else 0.5, len(y), 0.0,
                                             split=split))
    cfg = validate_config({**TINY, "train": {**TINY["train"], "epochs": 1}})
    first = train_mod.train(cfg, out_dir=tmp_path, progress=False)
    res = train_mod.train(validate_config({**TINY, "train": {**TINY["train"], "epochs": 2}}),
                          out_dir=tmp_path, resume=first.checkpoint, progress=False)
    assert res.best_epoch == 1 and load_checkpoint(res.best_checkpoint).epoch == 1


def test_cli_evaluate_reports_test_by_default_and_validation_on_request(tmp_path):
    res = train_mod.train(validate_config({**TINY, "train": {**TINY["train"], "epochs": 1}}),
                          out_dir=tmp_path, progress=False)
    metrics = load_checkpoint(res.best_checkpoint).metrics
    runner = CliRunner()
    for args, split in (([], "test"), (["--split", "val"], "val")):
        r = runner.invoke(main, ["evaluate", str(res.best_checkpoint), "--device", "cpu",
                                 "--json", *args])
        assert r.exit_code == 0, r.output
        ev = json.loads(r.output)
        assert ev["split"] == split and ev["accuracy"] == pytest.approx(metrics[split]["accuracy"])
        assert ev["num_samples"] == metrics[split]["num_samples"]
        assert ev["sample_worth"] == pytest.approx(1 / ev["num_samples"])


def test_export_calibrates_on_the_training_part(tmp_path, monkeypatch):
    from snn2hw.pipeline.export import export

    res = train_mod.train(validate_config({**TINY, "train": {**TINY["train"], "epochs": 1}}),
                          out_dir=tmp_path, progress=False)
    seen = []
    real = samples_mod.float_frames

    def spy(spec, split, n):
        frames, labels = real(spec, split, n)
        seen.append((split, spec.val_fraction, n))
        return frames, labels

    monkeypatch.setattr(samples_mod, "float_frames", spy)
    export(res.best_checkpoint, "loihi", tmp_path / "export")
    assert ("train", 0.1, 128) in seen and all(s != "val" for s, _, _ in seen)
    spec = samples_mod.SampleSpec(dataset="digits", val_fraction=0.1, num_steps=3)
    calib, _ = real(spec, "train", 128)
    ds = load_config_dataset(validate_config(TINY))
    first = {r.tobytes() for r in ds.x_train[:128]}
    assert {r.tobytes() for r in calib[0].numpy().reshape(128, 1, 8, 8)} == first
    assert not first & ({r.tobytes() for r in ds.x_val} - {r.tobytes() for r in ds.x_train})


def _load_deploy_digits():
    spec = importlib.util.spec_from_file_location(
        "deploy_digits", ROOT / "benchmarks" / "deploy_digits.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_deploy_digits_and_qat_share_checkpoint_and_test_samples(tmp_path, monkeypatch):
    """A tiny run: float (training's one test pass and QAT's), PTQ and QAT, and the backend
    comparison all use best.pt (QAT: fine-tuned from it) and the same test samples."""
    dd = _load_deploy_digits()
    test_labels: list[tuple[str, bytes]] = []
    real_frames = samples_mod.float_frames

    def frames_spy(spec, split, n):
        frames, labels = real_frames(spec, split, n)
        if split == "test":
            test_labels.append(("integer", labels.tobytes()))
        return frames, labels

    real_eval = qat_mod.evaluate

    def eval_spy(model, x, y, **kw):
        test_labels.append(("float", y.tobytes()))
        return real_eval(model, x, y, **kw)

    monkeypatch.setattr(samples_mod, "float_frames", frames_spy)
    monkeypatch.setattr(qat_mod, "evaluate", eval_spy)
    int_calls = []

    def int_acc(path, target, n):
        int_calls.append(Path(path))
        return dd.export_integer_accuracy(path, target, n)

    cfg = validate_config({**TINY, "train": {**TINY["train"], "epochs": 2}})
    row = dd.measure(cfg, tmp_path, qat_epochs=1, lava_samples=0, integer_accuracy=int_acc)
    best = Path(row["checkpoint"])
    assert best.name == "best.pt" and int_calls == [best, tmp_path / "qat.pt"]
    assert load_checkpoint(tmp_path / "qat.pt").metrics["source"]["checkpoint"] == str(best)
    assert "test" not in load_checkpoint(tmp_path / "qat.pt").metrics  # source's is moved
    kinds = {k for k, _ in test_labels}
    assert kinds == {"float", "integer"} and len({b for _, b in test_labels}) == 1
    ds = load_config_dataset(cfg)
    assert test_labels[0][1] == ds.y_test.tobytes() and row["test_samples"] == 360
    assert row["float_acc"] == load_checkpoint(best).metrics["test"]["accuracy"]
    assert row["sample_worth"] == pytest.approx(1 / 360)
    assert row["ptq_vs_float_distinguishable"] == (abs(row["ptq_minus_float_samples"]) >= 2)
    text = dd.table([row])
    assert "n = 360 test samples: one sample = 0.28 pp" in text


def test_finetune_measures_all_three_on_the_same_first_n_test_samples(tmp_path, monkeypatch):
    res = train_mod.train(validate_config({**TINY, "train": {**TINY["train"], "epochs": 1}}),
                          out_dir=tmp_path, progress=False)
    seen = []
    real_eval = qat_mod.evaluate
    monkeypatch.setattr(qat_mod, "evaluate", lambda m, x, y, **kw: (seen.append(len(y)),
                                                                     real_eval(m, x, y, **kw))[1])
    out = qat_mod.finetune(res.best_checkpoint, "loihi", tmp_path / "q.pt", epochs=1,
                           progress=False, int_eval_samples=50,
                           integer_accuracy=lambda p, t, n: (seen.append(n), 0.5)[1])
    assert seen == [50, 50, 50] and out.test_samples == 50
    assert out.to_dict()["source_checkpoint"] == str(res.best_checkpoint)
    assert np.isfinite(out.float_accuracy)
