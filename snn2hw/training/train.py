"""Surrogate-gradient BPTT training and evaluation of :class:`~snn2hw.nn.model.SpikingNet`.

``train(cfg)`` runs the loop described by a validated config (snn2hw.training.config): data ->
encoder -> network -> spike loss -> optimizer, with a progress bar per epoch (loss,
accuracy, spikes per sample), deterministic seeding, atomic checkpoints after every epoch
(``last.pt``, and ``best.pt`` by test accuracy), ``--resume``, and a hard stop on a
non-finite loss that keeps the last good checkpoint.
"""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from snn2hw.common.errors import ConfigError, TrainingError
from snn2hw.nn.encoders import Encoder
from snn2hw.nn.losses import spike_loss
from snn2hw.nn.model import SpikingNet
from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn2hw.training.config import model_arch


def resolve_device(name: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' requested but no CUDA GPU is available; use --device cpu")
    return torch.device(name)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def make_encoder(cfg: dict[str, Any], temporal: bool) -> Encoder:
    e = cfg["encoder"]
    kind = "events" if temporal else e["kind"]
    return Encoder(kind, float(e["gain"]), float(e["threshold"]))


def random_shift(x: torch.Tensor, max_shift: int, generator: torch.Generator) -> torch.Tensor:
    """Translate each image ``[B, C, H, W]`` by a random integer offset in
    ``[-max_shift, max_shift]`` pixels (zero fill): cheap augmentation for small datasets."""
    b, _, h, w = x.shape
    pad = torch.nn.functional.pad(x, (max_shift,) * 4)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=generator)
    rows = (dy.view(b, 1) + torch.arange(h).view(1, h)).to(x.device)
    cols = (dx.view(b, 1) + torch.arange(w).view(1, w)).to(x.device)
    idx_b = torch.arange(b, device=x.device).view(b, 1, 1)
    out = pad.permute(0, 2, 3, 1)[idx_b, rows.view(b, h, 1), cols.view(b, 1, w)]
    return out.permute(0, 3, 1, 2).contiguous()


def encode_batch(
    encoder: Encoder, x: torch.Tensor, num_steps: int, generator: torch.Generator | None
) -> torch.Tensor:
    return encoder(x, num_steps, generator)


@dataclass
class EvalResult:
    accuracy: float
    num_samples: int
    spikes_per_sample: float
    rates: dict[str, float] = field(default_factory=dict)  # mean spikes / neuron / step
    loss: float = float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {
            "accuracy": self.accuracy,
            "num_samples": self.num_samples,
            "spikes_per_sample": self.spikes_per_sample,
            "rates": self.rates,
            "loss": self.loss,
        }


@torch.no_grad()
def evaluate(
    model: SpikingNet,
    x: np.ndarray,
    y: np.ndarray,
    *,
    encoder: Encoder,
    num_steps: int,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    seed: int = 1234,
    loss_kind: str | None = None,
    loss_options: dict[str, Any] | None = None,
) -> EvalResult:
    """Accuracy (argmax of output spike counts) and per-layer firing rates."""
    model.eval()
    device = torch.device(device)
    gen = torch.Generator().manual_seed(seed)
    correct, total, spikes, loss_sum = 0, 0, 0.0, 0.0
    rate_sum: dict[str, float] = {}
    for i in range(0, len(x), batch_size):
        xb = torch.from_numpy(x[i : i + batch_size]).to(device)
        yb = torch.from_numpy(y[i : i + batch_size]).to(device)
        inp = encode_batch(encoder, xb, num_steps, gen)
        out, rec = model(inp, record=True)
        correct += int((out.sum(0).argmax(1) == yb).sum())
        total += len(yb)
        for name, s in rec.items():
            rate_sum[name] = rate_sum.get(name, 0.0) + float(s.mean()) * len(yb)
            spikes += float(s.sum())
        if loss_kind:
            loss_sum += float(spike_loss(loss_kind, out, yb, **(loss_options or {}))) * len(yb)
    return EvalResult(
        accuracy=correct / max(total, 1),
        num_samples=total,
        spikes_per_sample=spikes / max(total, 1),
        rates={k: v / max(total, 1) for k, v in rate_sum.items()},
        loss=loss_sum / max(total, 1) if loss_kind else float("nan"),
    )


@dataclass
class TrainResult:
    checkpoint: Path
    best_checkpoint: Path
    history: list[dict[str, Any]]
    test: EvalResult
    seconds: float


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

    ds = dataset
    if ds is None:
        from snn2hw.data import load_dataset

        ds = load_dataset(
            cfg["data"]["dataset"],
            cfg["data"]["data_dir"] or None,
            seed=seed,
            **cfg["data"]["options"],
        )
    arch = model_arch(cfg, ds.input_shape)
    model = SpikingNet(arch).to(dev)
    if tuple(model.output_shape) != (ds.num_classes,):
        raise ConfigError(
            f"model: output layer has shape {list(model.output_shape)} but dataset "
            f"'{ds.name}' has {ds.num_classes} classes"
        )
    encoder = make_encoder(cfg, ds.temporal)
    num_steps = ds.x_train.shape[1] if ds.temporal else int(tcfg["num_steps"])
    opt = _make_optimizer(model, tcfg)
    epochs = int(tcfg["epochs"])
    sched = (
        torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
        if tcfg["scheduler"] == "cosine"
        else None
    )
    start_epoch, history, best_acc = 0, [], -1.0
    last_path, best_path = out / "last.pt", out / "best.pt"
    if resume:
        ck = load_checkpoint(resume)
        model.load_state_dict(ck.state_dict)
        if ck.optimizer:
            opt.load_state_dict(ck.optimizer.get("optimizer", {}))
            if sched is not None and ck.optimizer.get("scheduler"):
                sched.load_state_dict(ck.optimizer["scheduler"])
        start_epoch = ck.epoch
        history = list(ck.metrics.get("history", []))
        best_acc = float(ck.metrics.get("best_accuracy", -1.0))

    gen = torch.Generator().manual_seed(seed + 1)
    enc_gen = torch.Generator().manual_seed(seed + 2)
    aug_gen = torch.Generator().manual_seed(seed + 4)
    bs = int(cfg["data"]["batch_size"])
    x_tr = torch.from_numpy(ds.x_train)
    y_tr = torch.from_numpy(ds.y_train)
    loss_kind, loss_opts = tcfg["loss"], dict(tcfg["loss_options"])
    deadline = time.monotonic() + 60 * float(tcfg["max_minutes"]) if tcfg["max_minutes"] else None
    t0 = time.monotonic()
    test = None
    for epoch in range(start_epoch, epochs):
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        n_batches = math.ceil(len(perm) / bs)
        bar = tqdm(
            range(n_batches),
            desc=f"epoch {epoch + 1}/{epochs}",
            disable=not progress,
            leave=False,
            dynamic_ncols=True,
        )
        loss_sum, correct, seen, spikes = 0.0, 0, 0, 0.0
        for b in bar:
            idx = perm[b * bs : (b + 1) * bs]
            xb, yb = x_tr[idx].to(dev), y_tr[idx].to(dev)
            if tcfg["augment_shift"] and xb.dim() == 4:
                xb = random_shift(xb, int(tcfg["augment_shift"]), aug_gen)
            inp = encode_batch(encoder, xb, num_steps, enc_gen)
            outs, rec = model(inp, record=True)
            loss = spike_loss(loss_kind, outs, yb, **loss_opts)
            if not torch.isfinite(loss):
                raise TrainingError(
                    f"non-finite loss ({float(loss.detach())}) at epoch {epoch + 1}, "
                    f"batch {b + 1}; the last good checkpoint is kept at "
                    f"{last_path if last_path.exists() else 'none yet'}"
                    "; lower [train].lr or check the data"
                )
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if tcfg["grad_clip"]:
                torch.nn.utils.clip_grad_norm_(model.parameters(), float(tcfg["grad_clip"]))
            opt.step()
            loss_sum += float(loss.detach()) * len(yb)
            correct += int((outs.detach().sum(0).argmax(1) == yb).sum())
            seen += len(yb)
            spikes += sum(float(s.detach().sum()) for s in rec.values())
            bar.set_postfix(
                loss=f"{loss_sum / seen:.4f}",
                acc=f"{correct / seen:.3f}",
                spk=f"{spikes / seen:.1f}",
            )
        bar.close()
        if sched is not None:
            sched.step()
        test = evaluate(
            model,
            ds.x_test,
            ds.y_test,
            encoder=encoder,
            num_steps=num_steps,
            device=dev,
            seed=seed + 3,
        )
        rec_epoch = {
            "epoch": epoch + 1,
            "train_loss": loss_sum / max(seen, 1),
            "train_accuracy": correct / max(seen, 1),
            "test_accuracy": test.accuracy,
            "spikes_per_sample": test.spikes_per_sample,
        }
        history.append(rec_epoch)
        if progress:
            tqdm.write(
                f"epoch {epoch + 1}/{epochs}: loss {rec_epoch['train_loss']:.4f} "
                f"train {rec_epoch['train_accuracy']:.4f} test {test.accuracy:.4f} "
                f"spikes/sample {test.spikes_per_sample:.1f}"
            )
        improved = test.accuracy > best_acc
        best_acc = max(best_acc, test.accuracy)
        metrics = {
            "history": history,
            "best_accuracy": best_acc,
            "test": test.to_dict(),
            "num_steps": num_steps,
            "dataset": ds.name,
        }
        ck = Checkpoint(
            arch=arch,
            state_dict=model.state_dict(),
            config=cfg,
            epoch=epoch + 1,
            metrics=metrics,
            optimizer={
                "optimizer": opt.state_dict(),
                "scheduler": sched.state_dict() if sched else None,
            },
        )
        save_checkpoint(last_path, ck)
        if improved:
            save_checkpoint(best_path, ck)
        if deadline is not None and time.monotonic() > deadline:
            if progress:
                tqdm.write(f"stopping early: [train].max_minutes={tcfg['max_minutes']} reached")
            break
    if test is None:  # resumed a finished run
        test = evaluate(
            model, ds.x_test, ds.y_test, encoder=encoder, num_steps=num_steps, device=dev
        )
    return TrainResult(last_path, best_path, history, test, time.monotonic() - t0)


def _make_optimizer(model: torch.nn.Module, tcfg: dict[str, Any]) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    lr, wd = float(tcfg["lr"]), float(tcfg["weight_decay"])
    if tcfg["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=wd)
    if tcfg["optimizer"] == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=wd)
    return torch.optim.Adam(params, lr=lr, weight_decay=wd)
