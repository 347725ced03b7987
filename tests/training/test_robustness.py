"""Resume is bit-identical, progress goes line by line off a terminal, unwritable outputs and
nonsense settings fail before any work, non-finite weights are refused on load."""

import os
from pathlib import Path

import pytest
import torch

import snn2hw.training.train as train_mod
from snn2hw.common.errors import CheckpointError, ConfigError
from snn2hw.training import loop as loop_mod
from snn2hw.training.checkpoint import load_checkpoint, save_checkpoint
from snn2hw.training.config import validate_config
from snn2hw.training.evaluation import evaluate_checkpoint
from snn2hw.training.qat import finetune

DROPOUT = {
    "experiment": {"name": "drop", "seed": 3, "device": "cpu"},
    "data": {"dataset": "digits", "batch_size": 128},
    "encoder": {"kind": "poisson"},
    "model": {
        "layers": [
            {"type": "flatten"},
            {"type": "linear", "out": 24},
            {"type": "neuron"},
            {"type": "dropout", "p": 0.3},
            {"type": "linear", "out": 10},
            {"type": "neuron"},
        ]
    },
    "train": {"epochs": 4, "num_steps": 4, "lr": 0.005, "augment_shift": 0},
}


class _Interrupted(Exception):
    pass


def _interrupt_after(monkeypatch, epochs_done: int) -> None:
    """Simulate a kill right after ``last.pt`` of epoch ``epochs_done`` is written."""
    real = train_mod._save_epoch

    def save_then_die(run, epoch, val):
        real(run, epoch, val)
        if epoch + 1 == epochs_done:
            raise _Interrupted

    monkeypatch.setattr(train_mod, "_save_epoch", save_then_die)


def _assert_same_run(a, b):
    assert a.history == b.history  # losses, train and val accuracy, spikes: exact floats
    assert a.test.accuracy == b.test.accuracy
    for path_a, path_b in ((a.checkpoint, b.checkpoint), (a.best_checkpoint, b.best_checkpoint)):
        sa, sb = load_checkpoint(path_a).state_dict, load_checkpoint(path_b).state_dict
        assert sa.keys() == sb.keys()
        for k in sa:
            assert torch.equal(sa[k], sb[k]), k


AUGMENTED = {**DROPOUT, "encoder": {"kind": "direct"},
             "train": {**DROPOUT["train"], "augment_shift": 1}}


@pytest.mark.parametrize("cfg", [DROPOUT, AUGMENTED], ids=["dropout-poisson", "dropout-augment"])
def test_interrupted_then_resumed_run_is_bit_identical(tmp_path, monkeypatch, cfg):
    full = train_mod.train(validate_config(cfg), out_dir=tmp_path / "full", progress=False)
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(_Interrupted):
            train_mod.train(validate_config(cfg), out_dir=tmp_path / "cut", progress=False)
    assert load_checkpoint(tmp_path / "cut" / "last.pt").rng is not None
    resumed = train_mod.train(validate_config(cfg), out_dir=tmp_path / "cut",
                              resume=tmp_path / "cut" / "last.pt", progress=False)
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3, 4]
    _assert_same_run(full, resumed)


def test_resume_from_a_checkpoint_without_rng_states_still_works(tmp_path, monkeypatch, capsys):
    with monkeypatch.context() as m:
        _interrupt_after(m, 2)
        with pytest.raises(_Interrupted):
            train_mod.train(validate_config(DROPOUT), out_dir=tmp_path, progress=False)
    ck = load_checkpoint(tmp_path / "last.pt")
    ck.rng = None  # as written before random-number states were saved
    save_checkpoint(tmp_path / "old.pt", ck)
    assert load_checkpoint(tmp_path / "old.pt").rng is None
    res = train_mod.train(validate_config(DROPOUT), out_dir=tmp_path, resume=tmp_path / "old.pt")
    assert [h["epoch"] for h in res.history] == [1, 2, 3, 4]
    assert "not bit-identically" in capsys.readouterr().err


def test_progress_off_a_terminal_is_one_line_per_epoch(tmp_path, capsys):
    assert not loop_mod.on_terminal()  # capsys: not a TTY, like a log file or a pipe
    cfg = {**DROPOUT, "train": {**DROPOUT["train"], "epochs": 3}}
    train_mod.train(validate_config(cfg), out_dir=tmp_path)  # progress on
    results, progress = capsys.readouterr()  # stdout is for results (--json), stderr progress
    assert "\r" not in progress and "\x1b" not in progress
    epoch_lines = [ln for ln in progress.splitlines() if ln.startswith("epoch ")]
    assert [ln.split(":")[0] for ln in epoch_lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert len(progress.splitlines()) == 4  # three epochs and the best.pt/test line
    assert results == ""


def test_progress_bar_is_drawn_on_a_terminal(monkeypatch):
    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(loop_mod.sys, "stderr", Tty())
    assert loop_mod.on_terminal()


@pytest.mark.parametrize("key,value", [("grad_clip", -1), ("max_minutes", -0.5),
                                       ("grad_clip", float("nan")), ("weight_decay", -0.1),
                                       ("augment_shift", -2)])
def test_negative_train_settings_are_refused_naming_the_key(key, value):
    with pytest.raises(ConfigError, match=rf"\[train\]\.{key} must be >= 0"):
        validate_config({**DROPOUT, "train": {**DROPOUT["train"], key: value}})


def _one_epoch_checkpoint(tmp_path):
    cfg = {**DROPOUT, "train": {**DROPOUT["train"], "epochs": 1}}
    return train_mod.train(validate_config(cfg), out_dir=tmp_path / "src",
                           progress=False).best_checkpoint


@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_checkpoint_with_nan_weights_is_refused_with_one_line(tmp_path, suffix):
    ck = load_checkpoint(_one_epoch_checkpoint(tmp_path))
    name = next(k for k, v in ck.state_dict.items() if v.is_floating_point())
    ck.state_dict[name] = ck.state_dict[name].clone()
    ck.state_dict[name].view(-1)[0] = float("nan")
    bad = tmp_path / f"nan{suffix}"
    save_checkpoint(bad, ck)
    for call in (load_checkpoint, evaluate_checkpoint):
        with pytest.raises(CheckpointError, match=f"'{name}' has 1 non-finite") as exc:
            call(bad)
        assert "\n" not in str(exc.value)
    with pytest.raises(CheckpointError, match="non-finite"):
        ck.build_model("in memory")


def test_finetune_refuses_zero_epochs_and_unwritable_outputs_before_work(tmp_path, monkeypatch):
    src = _one_epoch_checkpoint(tmp_path)

    def no_work(*a, **k):
        raise AssertionError("fine-tuning started before the output was checked")

    monkeypatch.setattr("snn2hw.training.qat._load_job", no_work)
    with pytest.raises(ConfigError, match="epochs must be an integer >= 1"):
        finetune(src, "loihi1", tmp_path / "q.pt", epochs=0)
    afile = tmp_path / "afile"
    afile.write_text("x")
    with pytest.raises(ConfigError, match="afile is a file, not a folder") as exc:
        finetune(src, "loihi1", afile / "x.pt", epochs=1)
    assert "\n" not in str(exc.value)
    with pytest.raises(ConfigError, match="is a folder"):
        finetune(src, "loihi1", tmp_path, epochs=1)


def _read_only_folder(tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    if os.access(ro, os.W_OK):  # root ignores permissions: inject what a read-only mount says
        import snn2hw.training.runtime as runtime

        real = os.access
        monkeypatch.setattr(runtime.os, "access", lambda p, mode: (
            False if Path(p) == ro and mode & os.W_OK else real(p, mode)))
    return ro


def test_finetune_and_train_refuse_a_read_only_folder(tmp_path, monkeypatch):
    src = _one_epoch_checkpoint(tmp_path)
    ro = _read_only_folder(tmp_path, monkeypatch)
    try:
        monkeypatch.setattr("snn2hw.training.qat._load_job",
                            lambda *a, **k: pytest.fail("work before the output check"))
        with pytest.raises(ConfigError, match="is not writable"):
            finetune(src, "loihi1", ro / "sub" / "q.pt", epochs=1)
        monkeypatch.setattr(train_mod, "load_config_dataset",
                            lambda *a, **k: pytest.fail("work before the output check"))
        for out in (ro, ro / "run"):
            with pytest.raises(ConfigError, match="run folder .* not writable"):
                train_mod.train(validate_config(DROPOUT), out_dir=out, progress=False)
    finally:
        ro.chmod(0o700)


def test_train_refuses_a_run_folder_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        train_mod.train(validate_config(DROPOUT), out_dir=tmp_path / "f", progress=False)
    with pytest.raises(ConfigError, match="is a file, not a folder"):
        train_mod.train(validate_config(DROPOUT), out_dir=tmp_path / "f" / "run",
                        progress=False)
