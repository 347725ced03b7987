"""Quantization-aware fine-tuning: train the float model toward what the chip computes.

Each epoch starts by quantizing the current weights in memory with the functions export
uses (:func:`snn2hw.training.qgrid.quantize_model`: NIR graph -> calibration ->
:func:`snn2hw.quant.ptq.quantize`), which fixes every layer's integer grid:
``W_int = round(W · row_factor)`` with the row factor ``vth · 2^-weight_exp · in_gain / θ'``
(and any folded normalization). During the epoch (:func:`snn2hw.training.loop.run_epoch`)
the forward pass uses fake-quantized weights ``round(W · f) / f`` with a straight-through
gradient (``W + (Q(W) - W).detach()``), and neuron decays rounded to the chip's 1/4096 grid
(``CubaLIF.quantize_dynamics``). The chip's rounding rules come from
:mod:`snn2hw.quant.formats`, the same functions PTQ uses. The fine-tuned checkpoint is
written once, atomically, at the end.

Integer (PTQ / QAT) accuracy needs an export and an integer backend, which training may not
import: the caller passes them in as ``integer_accuracy`` (the CLI does).

Evaluation protocol: QAT trains on the training part of the data (the validation split that
selected the source checkpoint is carved out as in training) for a fixed number of epochs and
keeps the last weights; nothing is selected, so no split is read during the epochs. After
them the test split is read once per figure, all on the same first ``int_eval_samples`` test
samples (all when None): float (the source checkpoint's weights, the training evaluation
encoder), PTQ (the source checkpoint exported) and QAT (the result exported). The QAT
checkpoint keeps the source's val/test metrics under ``metrics["source"]``, never as its own.

May import: ``snn2hw.nn``, ``snn2hw.data``, ``snn2hw.nir``, ``snn2hw.quant``,
``snn2hw.common``, other ``snn2hw.training`` modules. Never a backend, ``pipeline``, ``chip``
or ``cli``.
"""

from __future__ import annotations

import copy
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call

from snn2hw.common.errors import ConfigError
from snn2hw.nn.model import SpikingNet
from snn2hw.quant.bounds import ChipLimits
from snn2hw.quant.formats import LOIHI_FORMATS, NumberFormats, round_weights
from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn2hw.training.config import validate_config
from snn2hw.training.evaluation import eval_seed, evaluate, sample_worth
from snn2hw.training.loop import EpochData, LossRule, progress_line, run_epoch
from snn2hw.training.qgrid import GridEntry, quantize_model
from snn2hw.training.runtime import (
    check_output_path,
    config_num_steps,
    load_config_dataset,
    make_encoder,
    resolve_device,
    seed_everything,
)

# (checkpoint, target, test samples or None for all) -> integer accuracy on the first
# that many samples of the test split
IntegerAccuracy = Callable[[Path, str, "int | None"], float]


@dataclass
class FinetuneResult:
    checkpoint: Path
    float_accuracy: float  # the source checkpoint, float, on the test samples below
    ptq_accuracy: float  # NaN when no integer_accuracy was given
    qat_accuracy: float  # NaN when no integer_accuracy was given
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0
    source: Path | None = None  # the checkpoint float and PTQ are measured on
    test_samples: int = 0  # n: all three accuracies are on the first n test samples
    split: str = "test"

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "source_checkpoint": str(self.source) if self.source else None,
            "split": self.split,
            "test_samples": self.test_samples,
            "sample_worth": sample_worth(self.test_samples),
            "float_accuracy": self.float_accuracy,
            "ptq_accuracy": self.ptq_accuracy,
            "qat_accuracy": self.qat_accuracy,
            "history": self.history,
            "seconds": self.seconds,
        }


def fake_quant(w: torch.Tensor, factor: torch.Tensor,
               formats: NumberFormats | None = None) -> torch.Tensor:
    """``round(W · f) / f`` per output row with the target's rounding (Loihi's by default),
    straight-through."""
    f = factor.to(w.device).reshape(-1, *([1] * (w.dim() - 1)))
    fmts = LOIHI_FORMATS if formats is None else formats
    q = torch.from_numpy(round_weights((w.detach() * f).cpu().double().numpy(), fmts)).to(w)
    return w + (q / f - w).detach()


def _quant_params(model: SpikingNet, grid: list[GridEntry],
                  formats: NumberFormats | None = None) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {g.param: fake_quant(params[g.param], g.row_factor, formats)
            for g in grid if g.param in params}


@dataclass
class _Job:
    """The checkpoint being fine-tuned and what its epochs share."""

    ck: Checkpoint
    cfg: dict[str, Any]
    model: SpikingNet
    ds: Any
    device: torch.device
    num_steps: int  # steps the model was trained with (export's calibration length)
    data: EpochData


def finetune(
    ckpt_path: str | Path,
    target: str,
    out_path: str | Path,
    *,
    epochs: int = 5,
    lr: float | None = None,
    device: str = "cpu",
    progress: bool = True,
    int_eval_samples: int | None = None,
    integer_accuracy: IntegerAccuracy | None = None,
    formats: NumberFormats | None = None,
    chip_limits: ChipLimits | None = None,
    trust_pickle: bool = False,
    hop_delays: bool = False,
) -> FinetuneResult:
    """Fine-tune ``ckpt_path`` for ``target`` and write the result to ``out_path``; report
    float accuracy and, with ``integer_accuracy``, PTQ and QAT integer accuracy — all three
    on the same first ``int_eval_samples`` test samples, measured once each after the
    epochs (float and PTQ on ``ckpt_path``, QAT on ``out_path``). ``hop_delays``: fine-tune
    with the chip's one-step hop per layer (:mod:`snn2hw.nn.model`); the result keeps that
    timing (its architecture records it, its NIR export carries the Delay nodes). ``formats`` and
    ``chip_limits``: the target's number formats and chip limits, so the grid QAT trains
    on is the one export will quantize to (the caller reads them from the target file).
    ``trust_pickle``: allow unpickling ``ckpt_path`` (only for files you trust)."""
    t0 = time.monotonic()
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ConfigError(f"finetune: epochs must be an integer >= 1, got {epochs!r}")
    if lr is not None and not float(lr) > 0:
        raise ConfigError(f"finetune: lr must be > 0, got {lr!r}")
    if int_eval_samples is not None and int_eval_samples < 1:
        raise ConfigError(f"finetune: int_eval_samples must be >= 1, got {int_eval_samples!r}")
    ckpt_path = Path(ckpt_path)
    out_path = check_output_path(out_path, "fine-tuned checkpoint")  # before any work
    job = _load_job(ckpt_path, device, hop_delays, trust_pickle)
    lr = float(lr or job.cfg["train"]["lr"]) * 0.2
    opt = torch.optim.Adam([p for p in job.model.parameters() if p.requires_grad], lr=lr)
    rule = LossRule(job.cfg["train"]["loss"], job.cfg["train"]["loss_options"])
    history: list[dict[str, Any]] = []
    job.model.set_quantize_dynamics(True)
    for epoch in range(epochs):
        history.append(_qat_epoch(job, opt, rule, target, epoch, epochs, progress,
                                  formats, chip_limits))
    job.model.eval()
    job.model.set_quantize_dynamics(False)
    _write_result(out_path, job, target, epochs, history, ckpt_path)
    # The test split, once per figure, after training: nothing above read it.
    x, y = job.ds.x_test[:int_eval_samples], job.ds.y_test[:int_eval_samples]
    source_model = load_checkpoint(ckpt_path).build_model(str(ckpt_path)).to(job.device)
    float_acc = evaluate(source_model, x, y, encoder=job.data.encoder,
                         num_steps=job.data.num_steps, device=job.device,
                         seed=eval_seed(job.cfg)).accuracy
    nan = float("nan")
    ptq_acc = integer_accuracy(ckpt_path, target, int_eval_samples) if integer_accuracy else nan
    qat_acc = integer_accuracy(out_path, target, int_eval_samples) if integer_accuracy else nan
    return FinetuneResult(out_path, float_acc, ptq_acc, qat_acc, history,
                          time.monotonic() - t0, ckpt_path, len(y))


def _load_job(ckpt_path: Path, device: str, hop_delays: bool = False,
              trust_pickle: bool = False) -> _Job:
    """Checkpoint, config, seeding, model and data, in the seeded order of a QAT run; with
    ``hop_delays`` the model (and the architecture QAT quantizes and saves) gets the
    chip's per-hop timing."""
    ck = load_checkpoint(ckpt_path, trust_pickle=trust_pickle)
    cfg = validate_config(ck.config or {"model": {"layers": ck.arch["layers"]}}, str(ckpt_path))
    seed = int(cfg["experiment"]["seed"])
    seed_everything(seed)
    dev = resolve_device(device)
    model = ck.build_model(str(ckpt_path)).to(dev)
    if hop_delays:
        model.set_hop_delays(True)
        ck = dataclasses.replace(ck, arch=copy.deepcopy(model.arch))
    ds = load_config_dataset(cfg)
    data = EpochData(
        x=torch.from_numpy(ds.x_train),
        y=torch.from_numpy(ds.y_train),
        batch_size=int(cfg["data"]["batch_size"]),
        encoder=make_encoder(cfg, ds.temporal),
        num_steps=config_num_steps(cfg, ds),
        order_gen=torch.Generator().manual_seed(seed + 11),
        encode_gen=torch.Generator().manual_seed(seed + 12),
    )
    num_steps = int(ck.metrics.get("num_steps", cfg["train"]["num_steps"]))
    return _Job(ck, cfg, model, ds, dev, num_steps, data)


def _qat_epoch(
    job: _Job, opt: torch.optim.Optimizer, rule: LossRule, target: str, epoch: int,
    epochs: int, progress: bool, formats: NumberFormats | None = None,
    chip_limits: ChipLimits | None = None,
) -> dict[str, Any]:
    """Fix the grid from the current weights (inference-mode statistics), then one epoch
    through fake-quantized weights."""
    model = job.model
    model.eval()
    grid = quantize_model(model, job.ck.arch, job.cfg, job.ds, target=target,
                          num_steps=job.num_steps, formats=formats,
                          chip_limits=chip_limits).grid

    def forward(inp: torch.Tensor):
        return functional_call(model, _quant_params(model, grid, formats), (inp,),
                               {"record": True})

    stats = run_epoch(model, job.data, opt, rule, device=job.device, forward=forward,
                      desc=f"qat {epoch + 1}/{epochs}", where=f"QAT epoch {epoch + 1}",
                      progress=progress, on_nonfinite=lambda: "; nothing written; lower --lr")
    if progress:
        progress_line(f"qat epoch {epoch + 1}/{epochs}: loss {stats.loss:.4f}")
    return {"epoch": epoch + 1, "loss": stats.loss}


def _write_result(
    out_path: Path, job: _Job, target: str, epochs: int, history: list[dict[str, Any]],
    source: Path,
) -> None:
    """The fine-tuned checkpoint, once, atomically (``save_checkpoint``). The source's
    split metrics move under ``metrics["source"]``: they describe other weights."""
    metrics = dict(job.ck.metrics)
    moved = {k: metrics.pop(k) for k in ("val", "test", "selection", "history") if k in metrics}
    metrics["source"] = {"checkpoint": str(source), "epoch": job.ck.epoch, **moved}
    metrics["qat"] = {"target": target, "epochs": epochs, "history": history,
                      "data": "train (validation carved out); fixed epochs, last weights kept"}
    save_checkpoint(
        out_path,
        Checkpoint(
            arch=job.ck.arch,
            state_dict=job.model.state_dict(),
            config=job.ck.config,
            metrics=metrics,
            epoch=job.ck.epoch,
        ),
    )


__all__ = ["FinetuneResult", "IntegerAccuracy", "fake_quant", "finetune", "quantize_model"]
