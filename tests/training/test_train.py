import json

import pytest
import torch
from click.testing import CliRunner

import snn2hw.training.loop as loop_mod
import snn2hw.training.train as train_mod
from snn2hw.cli import main
from snn2hw.common.errors import TrainingError
from snn2hw.training.checkpoint import load_checkpoint
from snn2hw.training.config import validate_config

TINY = {
    "experiment": {"name": "tiny", "seed": 0, "device": "cpu"},
    "data": {"dataset": "digits", "batch_size": 64},
    "model": {
        "layers": [
            {"type": "flatten"},
            {"type": "linear", "out": 32},
            {"type": "neuron"},
            {"type": "linear", "out": 10},
            {"type": "neuron"},
        ]
    },
    "train": {"epochs": 2, "num_steps": 4, "lr": 0.005},
}


def _write_cfg(tmp_path, cfg=TINY):
    import tomli_w

    p = tmp_path / "tiny.toml"
    p.write_bytes(tomli_w.dumps(cfg).encode())
    return p


def test_training_is_deterministic_and_learns(tmp_path):
    cfg = validate_config(TINY)
    r1 = train_mod.train(cfg, out_dir=tmp_path / "a", progress=False)
    r2 = train_mod.train(validate_config(TINY), out_dir=tmp_path / "b", progress=False)
    assert r1.test.accuracy == r2.test.accuracy
    assert r1.test.accuracy > 0.5  # far above chance (0.1) after two short epochs
    a, b = load_checkpoint(r1.checkpoint), load_checkpoint(r2.checkpoint)
    for k in a.state_dict:
        assert torch.equal(a.state_dict[k], b.state_dict[k])


def test_resume_continues_from_the_saved_epoch(tmp_path):
    cfg = validate_config({**TINY, "train": {**TINY["train"], "epochs": 1}})
    r1 = train_mod.train(cfg, out_dir=tmp_path, progress=False)
    cfg2 = validate_config(TINY)
    r2 = train_mod.train(cfg2, out_dir=tmp_path, resume=r1.checkpoint, progress=False)
    assert [h["epoch"] for h in r2.history] == [1, 2]
    assert load_checkpoint(r2.checkpoint).epoch == 2


def test_nan_loss_stops_with_one_line_error_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real = loop_mod.spike_loss
    calls = {"n": 0}

    def faulty(*a, **k):  # fault injection: NaN from the second epoch on
        calls["n"] += 1
        loss = real(*a, **k)
        return loss * float("nan") if calls["n"] > 23 else loss

    monkeypatch.setattr(loop_mod, "spike_loss", faulty)
    with pytest.raises(TrainingError, match="non-finite loss .* epoch 2") as exc:
        train_mod.train(validate_config(TINY), out_dir=tmp_path, progress=False)
    assert "last.pt" in str(exc.value) and "\n" not in str(exc.value)
    assert load_checkpoint(tmp_path / "last.pt").epoch == 1


def test_cli_train_then_evaluate_reports_accuracy_and_layer_rates(tmp_path):
    cfg = _write_cfg(tmp_path)
    runner = CliRunner()
    r = runner.invoke(
        main, ["train", str(cfg), "--out", str(tmp_path / "run"), "--quiet", "--json"]
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    r = runner.invoke(main, ["evaluate", out["best_checkpoint"], "--device", "cpu", "--json"])
    assert r.exit_code == 0, r.output
    ev = json.loads(r.output)
    assert ev["accuracy"] == pytest.approx(out["test"]["accuracy"])
    assert set(ev["rates"]) == {"2", "4"}
    assert ev["layers"]["2"].startswith("layers.2 (") and "neurons)" in ev["layers"]["2"]
    r = runner.invoke(main, ["evaluate", out["best_checkpoint"], "--device", "cpu"])
    assert "  layers.4 (" in r.output and "layer 4:" not in r.output


def test_cli_errors_are_one_line_with_nonzero_exit(tmp_path):
    runner = CliRunner()
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint at all")
    r = runner.invoke(main, ["evaluate", str(bad)])
    assert r.exit_code == 1 and r.output.startswith("error: ") and r.output.count("\n") == 1
    cfg = dict(TINY, train={**TINY["train"], "epochz": 3})
    r = runner.invoke(main, ["train", str(_write_cfg(tmp_path, cfg))])
    assert r.exit_code == 1 and "epochz" in r.output
    cfg = dict(TINY, data={"dataset": "mnist", "data_dir": str(tmp_path / "nowhere")})
    r = runner.invoke(main, ["train", str(_write_cfg(tmp_path, cfg))])
    assert r.exit_code == 1 and "nowhere" in r.output and "train-images" in r.output


def test_random_shift_translates_each_image_within_bounds():
    x = torch.zeros(16, 1, 7, 7)
    x[:, 0, 3, 3] = 1.0
    y = train_mod.random_shift(x, 2, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and torch.all(y.sum((1, 2, 3)) == 1)  # nothing lost, no fill
    pos = [tuple(torch.nonzero(img[0])[0].tolist()) for img in y]
    assert all(1 <= r <= 5 and 1 <= c <= 5 for r, c in pos) and len(set(pos)) > 3
