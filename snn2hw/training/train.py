"""Surrogate-gradient BPTT training of :class:`~snn2hw.nn.model.SpikingNet`.

``train(cfg)`` runs the steps a validated config (snn2hw.training.config) describes: data ->
model -> optimizer (and scheduler) -> optional ``--resume`` -> epochs of
:func:`snn2hw.training.loop.run_epoch` (progress bar with loss, accuracy, spikes per sample)
-> validation evaluation and atomic checkpoints after every epoch (``last.pt`` with every
random-number state, so a ``--resume`` is bit-identical; ``best.pt`` when the validation
accuracy improved) -> after the last epoch, one evaluation of ``best.pt``
on the test split, written into ``best.pt`` and returned. Seeding is deterministic,
``[train].max_minutes`` stops early, and a non-finite loss stops with one line while keeping
the last good checkpoint.

Data parallel: under ``torchrun --nproc-per-node N`` (``WORLD_SIZE`` > 1) every rank runs
``train``; the model is wrapped in ``torch.nn.parallel.DistributedDataParallel`` (gloo on
CPU, NCCL with one GPU per rank), each rank trains on its share of every global batch
(:mod:`snn2hw.training.loop`; ``[data].batch_size`` stays the global batch, so N ranks
take the same optimizer steps as one process), and only rank 0 evaluates, writes
checkpoints and prints; the others receive its results. Checkpoints are the same files as
in one process, so ``--resume`` crosses world sizes in both directions (rank 0 reads the
checkpoint and sends it to the others). docs/distributed.md.

Protocol: the validation split is ``[data].val_fraction`` of the training data (stratified,
seeded; :meth:`snn2hw.data.Dataset.with_validation`), or the data set's official one. Model
selection reads validation only; the test split is read once, at the end, for the
checkpoint that is reported. Checkpoint metrics name their split: ``history[*].val_*``,
``val`` and ``selection`` (validation) and ``test`` (only in ``best.pt``, after training).

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.common``, other ``snn2hw.training``
modules. Never a backend, ``pipeline`` or ``cli``.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from snn2hw.common import distributed as dist_rt
from snn2hw.common.distributed import World
from snn2hw.common.errors import ConfigError
from snn2hw.nn.model import SpikingNet
from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn2hw.training.config import model_arch
from snn2hw.training.evaluation import EvalResult, eval_seed, evaluate
from snn2hw.training.loop import (
    EpochData,
    EpochStats,
    LossRule,
    encode_batch,
    progress_line,
    random_shift,
    run_epoch,
)
from snn2hw.training.runtime import (
    check_output_path,
    config_num_steps,
    config_validation,
    load_config_dataset,
    make_encoder,
    resolve_device,
    rng_state,
    seed_everything,
    set_rng_state,
)

# Re-exported: these lived here before the training package was split.
__all__ = [
    "EvalResult", "TrainResult", "encode_batch", "evaluate", "make_encoder", "random_shift",
    "resolve_device", "seed_everything", "train",
]


@dataclass
class TrainResult:
    checkpoint: Path  # last.pt
    best_checkpoint: Path  # best.pt: the reported checkpoint, selected on validation
    history: list[dict[str, Any]]
    test: EvalResult  # best.pt on the test split, measured once after training
    seconds: float
    val: EvalResult | None = None  # best.pt on the validation split
    best_epoch: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data (paths as strings), the inverse of :meth:`from_dict`."""
        return {"checkpoint": str(self.checkpoint), "best_checkpoint": str(self.best_checkpoint),
                "history": self.history, "test": asdict(self.test), "seconds": self.seconds,
                "val": asdict(self.val) if self.val is not None else None,
                "best_epoch": self.best_epoch}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainResult:
        return cls(Path(d["checkpoint"]), Path(d["best_checkpoint"]), list(d["history"]),
                   EvalResult(**d["test"]), float(d["seconds"]),
                   EvalResult(**d["val"]) if d.get("val") is not None else None,
                   int(d["best_epoch"]))


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
    best_acc: float = -1.0  # best validation accuracy so far
    best_epoch: int = 0
    best_val: dict[str, Any] | None = None
    start_epoch: int = 0
    world: World = World()
    forward: Any = None  # the DistributedDataParallel wrapper's forward under DDP

    @property
    def main(self) -> bool:
        return self.world.is_main

    def evaluate(self, split: str) -> EvalResult:
        """The current model on ``split`` ("val" or "test") with the evaluation encoder seed."""
        x, y = (self.ds.x_val, self.ds.y_val) if split == "val" else (self.ds.x_test,
                                                                        self.ds.y_test)
        return evaluate(self.model, x, y, encoder=self.data.encoder, num_steps=self.num_steps,
                        device=self.device, seed=eval_seed(self.cfg), split=split)


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
    world = dist_rt.env_world()
    joined = world.distributed and not dist_rt.is_initialized()
    dev = dist_rt.rank_device(resolve_device(device or cfg["experiment"]["device"]), world)
    if joined:
        dist_rt.init_process_group(world, dev)
    ok = False
    try:
        result = _train(cfg, world, dev, out_dir=out_dir, resume=resume,
                        progress=progress and world.is_main, dataset=dataset)
        ok = True
        return result
    finally:
        if joined:
            dist_rt.destroy_process_group(together=ok)


def _train(cfg: dict[str, Any], world: World, dev: torch.device, *, out_dir, resume, progress,
           dataset) -> TrainResult:
    exp, tcfg = cfg["experiment"], cfg["train"]
    seed = int(exp["seed"])
    seed_everything(seed)
    out = check_output_path(out_dir or exp["out_dir"] or f"runs/{exp['name']}",
                            "run folder", folder=True)
    if world.is_main:
        out.mkdir(parents=True, exist_ok=True)
    ds = config_validation(cfg, dataset if dataset is not None else load_config_dataset(cfg))
    run = _setup(cfg, ds, dev, out)
    run.world = world
    if world.distributed:
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(run.model, device_ids=[dev] if dev.type == "cuda" else None)
        run.forward = lambda inp: ddp(inp, record=True)
    if resume:
        _resume(run, resume, progress)
    deadline = time.monotonic() + 60 * float(tcfg["max_minutes"]) if tcfg["max_minutes"] else None
    t0 = time.monotonic()
    epochs = int(tcfg["epochs"])
    for epoch in range(run.start_epoch, epochs):
        _train_epoch(run, epoch, epochs, progress)
        # rank 0's clock decides for every rank: ranks must leave the loop together
        if deadline is not None and dist_rt.broadcast_flag(
                time.monotonic() > deadline, device=dev):
            if progress:
                progress_line(f"stopping early: [train].max_minutes={tcfg['max_minutes']} reached")
            break
    result = None
    if run.main:
        test, val = _final_test(run)
        if progress:
            progress_line(
                f"best.pt = epoch {run.best_epoch} (by validation accuracy {val.accuracy:.4f}, "
                f"{val.num_samples} val); test accuracy {test.accuracy:.4f} on "
                f"{test.num_samples} test samples (measured once)"
            )
        result = TrainResult(run.last_path, run.best_path, run.history, test,
                             time.monotonic() - t0, val, run.best_epoch)
    if not world.distributed:
        return result
    # as JSON, not a pickled object: the other ranks never unpickle what a peer sends
    return TrainResult.from_dict(dist_rt.broadcast_json(
        result.to_dict() if result is not None else None, device=dev))


def _final_test(run: _Run) -> tuple[EvalResult, EvalResult]:
    """The one test evaluation: ``best.pt``'s weights on the test split, recorded in
    ``best.pt`` (``metrics["test"]``) next to its validation metrics."""
    ck = load_checkpoint(run.best_path)
    run.model.load_state_dict(ck.state_dict)
    test = run.evaluate("test")
    val = ck.metrics.get("val") or {}
    ck.metrics["test"] = test.to_dict()
    save_checkpoint(run.best_path, ck)
    val_res = EvalResult(
        accuracy=float(val.get("accuracy", float("nan"))),
        num_samples=int(val.get("num_samples", 0)),
        spikes_per_sample=float(val.get("spikes_per_sample", float("nan"))),
        rates=dict(val.get("rates", {})),
        split="val",
    )
    return test, val_res


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


def _generators(run: _Run) -> dict[str, torch.Generator | None]:
    """The run's own generators, by the names ``last.pt`` stores their states under."""
    return {"order": run.data.order_gen, "encode": run.data.encode_gen,
            "augment": run.data.augment_gen}


def _resume(run: _Run, path: str | Path, progress: bool = True) -> None:
    """Continue from a checkpoint: weights, optimizer/scheduler state, epoch, history and
    every random-number state (so the resumed run is bit-identical to an uninterrupted one;
    a checkpoint written before those were saved resumes, but not bit-identically)."""
    # rank 0 reads the file (on a cluster it may exist on rank 0's machine only) and sends
    # its bytes; every other rank loads them as safely as a file (weights only, no pickle)
    ck = load_checkpoint(path) if run.main else None
    if run.world.distributed:
        data = dist_rt.broadcast_bytes(Path(path).read_bytes() if run.main else None,
                                       device=run.device)
        if not run.main:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                copy = Path(tmp) / Path(path).name
                copy.write_bytes(data)
                ck = load_checkpoint(copy)
    run.model.load_state_dict(ck.state_dict)
    if ck.optimizer:
        run.opt.load_state_dict(ck.optimizer.get("optimizer", {}))
        if run.sched is not None and ck.optimizer.get("scheduler"):
            run.sched.load_state_dict(ck.optimizer["scheduler"])
    if ck.rng:
        set_rng_state(ck.rng, _generators(run))
    elif progress:
        progress_line(f"note: {path} holds no random-number states (an older checkpoint); "
                      "resuming, but not bit-identically to an uninterrupted run")
    run.start_epoch = ck.epoch
    run.history = list(ck.metrics.get("history", []))
    # Only a validation-selected best counts (older checkpoints selected on test: start over).
    sel = ck.metrics.get("selection") or {}
    if sel.get("split") == "val":
        run.best_acc = float(sel.get("best_val_accuracy", -1.0))
        run.best_epoch = int(sel.get("best_epoch", 0))


def _train_epoch(run: _Run, epoch: int, epochs: int, progress: bool) -> EvalResult | None:
    """One epoch: train, step the scheduler, evaluate on the validation split, checkpoint
    (rank 0 only: None elsewhere)."""
    last = run.last_path

    def keep_note() -> str:
        kept = last if last.exists() else "none yet"
        return f"; the last good checkpoint is kept at {kept}; lower [train].lr or check the data"

    t0 = time.perf_counter()
    stats = run_epoch(run.model, run.data, run.opt, run.rule, device=run.device,
                      forward=run.forward, desc=f"epoch {epoch + 1}/{epochs}",
                      where=f"epoch {epoch + 1}", progress=progress, on_nonfinite=keep_note,
                      world=run.world)
    seconds = time.perf_counter() - t0
    if run.sched is not None:
        run.sched.step()
    if not run.main:  # rank 0 alone evaluates and writes; the others go on training
        return None
    val = run.evaluate("val")
    record = _epoch_record(epoch, stats, val)
    run.history.append(record)
    if progress:
        progress_line(
            f"epoch {epoch + 1}/{epochs}: loss {record['train_loss']:.4f} "
            f"train {record['train_accuracy']:.4f} val {val.accuracy:.4f} "
            f"spikes/sample {val.spikes_per_sample:.1f} ({seconds:.1f} s, "
            f"{stats.samples / seconds:.0f} training samples/s)"
        )
    _save_epoch(run, epoch, val)
    return val


def _epoch_record(epoch: int, stats: EpochStats, val: EvalResult) -> dict[str, Any]:
    return {
        "epoch": epoch + 1,
        "train_loss": stats.loss,
        "train_accuracy": stats.accuracy,
        "val_accuracy": val.accuracy,
        "val_spikes_per_sample": val.spikes_per_sample,
    }


def _save_epoch(run: _Run, epoch: int, val: EvalResult) -> None:
    """``last.pt`` after every epoch; ``best.pt`` too when the validation accuracy improved
    (ties keep the earlier epoch). Neither holds a test number yet."""
    improved = val.accuracy > run.best_acc
    if improved:
        run.best_acc, run.best_epoch = val.accuracy, epoch + 1
    sizes = run.ds.split_sizes()
    metrics = {
        "history": run.history,
        "val": val.to_dict(),
        "selection": {"split": "val", "metric": "accuracy", "best_epoch": run.best_epoch,
                      "best_val_accuracy": run.best_acc},
        "splits": {**sizes, "val_fraction": float(run.cfg["data"]["val_fraction"]),
                   "seed": int(run.cfg["experiment"]["seed"]),
                   "val_source": run.ds.info.get("validation", {}).get("source", "dataset")},
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
        rng=rng_state(_generators(run)),
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
