"""The one training epoch: batches -> (augment) -> encode -> forward -> loss -> backward ->
step, with running metrics and a progress bar — drawn only when stderr is a terminal: in a log
file or a pipe every redraw would be a line, so there the callers print one line per epoch
(:func:`progress_line`) and nothing else. Used by ``train.train`` (plain BPTT) and by
``qat.finetune`` (forward through fake-quantized weights).

Data parallel (``world`` of several ranks, the model wrapped in DistributedDataParallel by
the caller): every rank draws the same global batch from the same seeded order and encodes
(and augments) all of it, so every random-number stream advances exactly as in one
process; rank r then keeps samples ``r, r + W, ...`` of it (the strided assignment of
``torch.utils.data.DistributedSampler``, without its padding, which would count samples
twice). Its loss is scaled by ``W · n_r / n`` so DDP's gradient average is the gradient of
the mean over the global batch, also for an uneven last batch; a rank left without samples
runs one sample with weight 0 so it still joins the all-reduce. The loss checked for being
finite and every metric are summed over the ranks, so all ranks stop together.

May import: ``snn2hw.nn``, ``snn2hw.common``. Nothing else in snn2hw.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from tqdm import tqdm

from snn2hw.common.distributed import World, all_reduce_sum
from snn2hw.common.errors import TrainingError
from snn2hw.common.readout import classify
from snn2hw.nn.encoders import Encoder
from snn2hw.nn.losses import spike_loss

# (encoded input [T, B, ...]) -> (output spikes [T, B, classes], {layer: spikes})
Forward = Callable[[torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


def on_terminal() -> bool:
    """True when stderr (where tqdm draws) is an interactive terminal."""
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):  # replaced or closed stream
        return False


def progress_line(message: str) -> None:
    """One finished line of progress (an epoch, a stage) on stderr, so stdout carries only
    results (``--json`` stays parseable); above a live bar on a terminal, a plain flushed
    line elsewhere."""
    if on_terminal():
        tqdm.write(message, file=sys.stderr)
    else:
        print(message, file=sys.stderr, flush=True)


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
class EpochData:
    """The training split and how one epoch walks it (each generator advances per epoch)."""

    x: torch.Tensor
    y: torch.Tensor
    batch_size: int
    encoder: Encoder
    num_steps: int
    order_gen: torch.Generator  # sample order
    encode_gen: torch.Generator  # stochastic encoders
    augment_shift: int = 0  # random_shift of image batches, 0: off
    augment_gen: torch.Generator | None = None


@dataclass
class LossRule:
    """What is minimised and how one step is taken."""

    kind: str
    options: dict[str, Any] = field(default_factory=dict)
    grad_clip: float | None = None


@dataclass
class EpochStats:
    loss: float  # mean training loss per sample
    accuracy: float  # training accuracy (output decision of snn2hw.common.readout)
    spikes_per_sample: float
    samples: int


@dataclass
class _Running:
    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    spikes: float = 0.0

    def add(self, loss: torch.Tensor, out: torch.Tensor, rec: dict, y: torch.Tensor) -> None:
        self.loss_sum += float(loss.detach()) * len(y)
        self.correct += int((classify(out.detach()) == y).sum())
        self.seen += len(y)
        self.spikes += sum(float(s.detach().sum()) for s in rec.values())

    def postfix(self) -> dict[str, str]:
        return {
            "loss": f"{self.loss_sum / self.seen:.4f}",
            "acc": f"{self.correct / self.seen:.3f}",
            "spk": f"{self.spikes / self.seen:.1f}",
        }

    def stats(self) -> EpochStats:
        n = max(self.seen, 1)
        return EpochStats(self.loss_sum / n, self.correct / n, self.spikes / n, self.seen)


def _batch(data: EpochData, idx: torch.Tensor, device: torch.device) -> tuple:
    xb, yb = data.x[idx].to(device), data.y[idx].to(device)
    if data.augment_shift and xb.dim() == 4:
        xb = random_shift(xb, int(data.augment_shift), data.augment_gen)
    return encode_batch(data.encoder, xb, data.num_steps, data.encode_gen), yb


def _rank_share(
    inp: torch.Tensor, yb: torch.Tensor, world: World
) -> tuple[torch.Tensor, torch.Tensor, int, float]:
    """This rank's samples of a global batch ``inp`` ``[T, B, ...]``: ``(inp, labels, n_r,
    loss weight)``; without samples, one stand-in sample with weight 0."""
    n = len(yb)
    mine = torch.arange(world.rank, n, world.size, device=yb.device)
    if len(mine) == 0:
        return inp[:, :1], yb[:1], 0, 0.0
    return inp[:, mine], yb[mine], len(mine), world.size * len(mine) / n


def run_epoch(
    model: torch.nn.Module,
    data: EpochData,
    opt: torch.optim.Optimizer,
    rule: LossRule,
    *,
    device: torch.device,
    forward: Forward | None = None,
    desc: str = "epoch",
    where: str | None = None,
    progress: bool = True,
    on_nonfinite: Callable[[], str] = lambda: "",
    world: World | None = None,
) -> EpochStats:
    """One pass over ``data`` in a seeded random order; ``forward`` defaults to
    ``model(inp, record=True)``. A non-finite loss raises :class:`TrainingError` (one line:
    ``at {where}, batch N{on_nonfinite()}``) before the optimizer step. With a ``world`` of
    several ranks, each rank trains on its share of every global batch (module docstring)
    and the returned statistics are those of the whole epoch, on every rank."""
    forward = forward or (lambda inp: model(inp, record=True))
    world = world or World()
    model.train()
    perm = torch.randperm(len(data.x), generator=data.order_gen)
    bs = data.batch_size
    bar = tqdm(range(math.ceil(len(perm) / bs)), desc=desc,
               disable=not (progress and on_terminal()), leave=False, dynamic_ncols=True)
    run = _Running()
    for b in bar:
        inp, yb = _batch(data, perm[b * bs : (b + 1) * bs], device)
        n_global, weight = len(yb), 1.0
        if world.distributed:
            inp, yb, n_mine, weight = _rank_share(inp, yb, world)
        out, rec = forward(inp)
        loss = spike_loss(rule.kind, out, yb, **rule.options)
        value = float(loss.detach())
        if world.distributed:  # the global batch's mean loss, the same on every rank
            value = all_reduce_sum([value * n_mine], device)[0] / n_global
        if not math.isfinite(value):
            raise TrainingError(
                f"non-finite loss ({value}) at {where or desc}, batch {b + 1}"
                f"{on_nonfinite()}"
            )
        opt.zero_grad(set_to_none=True)
        (loss * weight if world.distributed else loss).backward()
        if rule.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), float(rule.grad_clip))
        opt.step()
        if weight:
            run.add(loss, out, rec, yb)
        bar.set_postfix(**run.postfix() if run.seen else {})
    bar.close()
    if world.distributed:
        run.loss_sum, correct, seen, run.spikes = all_reduce_sum(
            [run.loss_sum, run.correct, run.seen, run.spikes], device)
        run.correct, run.seen = int(correct), int(seen)
    return run.stats()
