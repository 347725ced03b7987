"""Surrogate-gradient BPTT training of :class:`~snn2hw.nn.model.SpikingNet`.

``train(cfg)`` runs the steps a validated config (snn2hw.training.config) describes: data ->
model -> optimizer (and scheduler) -> optional ``--resume`` -> epochs of
:func:`snn2hw.training.loop.run_epoch` (progress bar with loss, accuracy, spikes per sample)
-> test evaluation and atomic checkpoints after every epoch (``last.pt``, and ``best.pt`` by
test accuracy). Seeding is deterministic, ``[train].max_minutes`` stops early, and a
non-finite loss stops with one line while keeping the last good checkpoint.

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.common``, other ``snn2hw.training``
modules. Never a backend, ``pipeline`` or ``cli``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

from snn2hw.common.errors import ConfigError
from snn2hw.nn.model import SpikingNet
from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn2hw.training.config import model_arch
from snn2hw.training.evaluation import EvalResult, evaluate
from snn2hw.training.loop import (
    EpochData,
    EpochStats,
    LossRule,
    encode_batch,
    random_shift,
    run_epoch,
)
from snn2hw.training.runtime import (
    config_num_steps,
    load_config_dataset,
    make_encoder,
    resolve_device,
    seed_everything,
)

# Re-exported: these lived here before the training package was split.
__all__ = [
    "EvalResult", "TrainResult", "encode_batch", "evaluate", "make_encoder", "random_shift",
    "resolve_device", "seed_everything", "train",
]


@dataclass
class TrainResult:
    checkpoint: Path
    best_checkpoint: Path
    history: list[dict[str, Any]]
    test: EvalResult
    seconds: float


@dataclass
class _Run:
    """Everything the epochs of one training run share."""

    cfg: dict[str, Any]
    ds: Any
    arch: dict[str, Any]
    model: SpikingNet
    device: torch.device
    num_steps: int
    opt: torch.optim.Optimizer
    sched: Any
    data: EpochData
    rule: LossRule
    last_path: Path
    best_path: Path
    history: list[dict[str, Any]]
    best_acc: float = -1.0
    start_epoch: int = 0

    def test(self, seed: int | None = None) -> EvalResult:
        kw = {} if seed is None else {"seed": seed}
        return evaluate(self.model, self.ds.x_test, self.ds.y_test, encoder=self.data.encoder,
                        num_steps=self.num_steps, device=self.device, **kw)


def train(
    cfg: dict[str, Any],
    *,
    out_dir: str | Path | None = None,
    device: str | None = None,
    resume: str | Path | None = None,
    progress: bool = True,
    dataset=None,
) -> TrainResult:
    """Train the model described by ``cfg``; returns paths of the checkpoints and metrics."""
    exp, tcfg = cfg["experiment"], cfg["train"]
    seed = int(exp["seed"])
    seed_everything(seed)
    dev = resolve_device(device or exp["device"])
    out = Path(out_dir or exp["out_dir"] or f"runs/{exp['name']}")
    out.mkdir(parents=True, exist_ok=True)
    run = _setup(cfg, dataset if dataset is not None else load_config_dataset(cfg), dev, out)
    if resume:
        _resume(run, resume)
    deadline = time.monotonic() + 60 * float(tcfg["max_minutes"]) if tcfg["max_minutes"] else None
    t0 = time.monotonic()
    test = None
    epochs = int(tcfg["epochs"])
    for epoch in range(run.start_epoch, epochs):
        test = _train_epoch(run, epoch, epochs, progress)
        if deadline is not None and time.monotonic() > deadline:
            if progress:
                tqdm.write(f"stopping early: [train].max_minutes={tcfg['max_minutes']} reached")
            break
    if test is None:  # resumed a finished run
        test = run.test()
    return TrainResult(run.last_path, run.best_path, run.history, test, time.monotonic() - t0)


def _setup(cfg: dict[str, Any], ds, dev: torch.device, out: Path) -> _Run:
    """Model, encoder, optimizer, scheduler and the seeded epoch data of a fresh run."""
    tcfg, seed = cfg["train"], int(cfg["experiment"]["seed"])
    arch = model_arch(cfg, ds.input_shape)
    model = SpikingNet(arch).to(dev)
    if tuple(model.output_shape) != (ds.num_classes,):
        raise ConfigError(
            f"model: output layer has shape {list(model.output_shape)} but dataset "
            f"'{ds.name}' has {ds.num_classes} classes"
        )
    encoder = make_encoder(cfg, ds.temporal)
    num_steps = config_num_steps(cfg, ds)
    opt = _make_optimizer(model, tcfg)
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=int(tcfg["epochs"]))
        if tcfg["scheduler"] == "cosine"
        else None
    )
    data = EpochData(
        x=torch.from_numpy(ds.x_train),
        y=torch.from_numpy(ds.y_train),
        batch_size=int(cfg["data"]["batch_size"]),
        encoder=encoder,
        num_steps=num_steps,
        order_gen=torch.Generator().manual_seed(seed + 1),
        encode_gen=torch.Generator().manual_seed(seed + 2),
        augment_shift=int(tcfg["augment_shift"] or 0),
        augment_gen=torch.Generator().manual_seed(seed + 4),
    )
    rule = LossRule(tcfg["loss"], dict(tcfg["loss_options"]), tcfg["grad_clip"] or None)
    return _Run(cfg, ds, arch, model, dev, num_steps, opt, sched, data, rule,
                out / "last.pt", out / "best.pt", [])


def _resume(run: _Run, path: str | Path) -> None:
    """Continue from a checkpoint: weights, optimizer/scheduler state, epoch, history."""
    ck = load_checkpoint(path)
    run.model.load_state_dict(ck.state_dict)
    if ck.optimizer:
        run.opt.load_state_dict(ck.optimizer.get("optimizer", {}))
        if run.sched is not None and ck.optimizer.get("scheduler"):
            run.sched.load_state_dict(ck.optimizer["scheduler"])
    run.start_epoch = ck.epoch
    run.history = list(ck.metrics.get("history", []))
    run.best_acc = float(ck.metrics.get("best_accuracy", -1.0))


def _train_epoch(run: _Run, epoch: int, epochs: int, progress: bool) -> EvalResult:
    """One epoch: train, step the scheduler, evaluate on the test split, checkpoint."""
    last = run.last_path

    def keep_note() -> str:
        kept = last if last.exists() else "none yet"
        return f"; the last good checkpoint is kept at {kept}; lower [train].lr or check the data"

    stats = run_epoch(run.model, run.data, run.opt, run.rule, device=run.device,
                      desc=f"epoch {epoch + 1}/{epochs}", where=f"epoch {epoch + 1}",
                      progress=progress, on_nonfinite=keep_note)
    if run.sched is not None:
        run.sched.step()
    test = run.test(seed=int(run.cfg["experiment"]["seed"]) + 3)
    record = _epoch_record(epoch, stats, test)
    run.history.append(record)
    if progress:
        tqdm.write(
            f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f} "
            f"train {record['train_accuracy']:.4f} test {test.accuracy:.4f} "
            f"spikes/sample {test.spikes_per_sample:.1f}"
        )
    _save_epoch(run, epoch, test)
    return test


def _epoch_record(epoch: int, stats: EpochStats, test: EvalResult) -> dict[str, Any]:
    return {
        "epoch": epoch + 1,
        "train_loss": stats.loss,
        "train_accuracy": stats.accuracy,
        "test_accuracy": test.accuracy,
        "spikes_per_sample": test.spikes_per_sample,
    }


def _save_epoch(run: _Run, epoch: int, test: EvalResult) -> None:
    """``last.pt`` after every epoch; ``best.pt`` too when the test accuracy improved."""
    improved = test.accuracy > run.best_acc
    run.best_acc = max(run.best_acc, test.accuracy)
    metrics = {
        "history": run.history,
        "best_accuracy": run.best_acc,
        "test": test.to_dict(),
        "num_steps": run.num_steps,
        "dataset": run.ds.name,
    }
    ck = Checkpoint(
        arch=run.arch,
        state_dict=run.model.state_dict(),
        config=run.cfg,
        epoch=epoch + 1,
        metrics=metrics,
        optimizer={
            "optimizer": run.opt.state_dict(),
            "scheduler": run.sched.state_dict() if run.sched else None,
        },
    )
    save_checkpoint(run.last_path, ck)
    if improved:
        save_checkpoint(run.best_path, ck)


def _make_optimizer(model: torch.nn.Module, tcfg: dict[str, Any]) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    lr, wd = float(tcfg["lr"]), float(tcfg["weight_decay"])
    if tcfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if tcfg["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)
