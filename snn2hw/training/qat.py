"""Quantization-aware fine-tuning: train the float model toward what the chip computes.

Each epoch starts by running post-training quantization (snn2hw.quant.ptq) on the current
weights, which fixes every layer's integer grid: ``W_int = round(W · row_factor)`` with the
row factor ``vth · 2^-weight_exp · in_gain / θ'`` (and any folded normalization). During
the epoch the forward pass uses fake-quantized weights ``round(W · f) / f`` with a
straight-through gradient (``W + (Q(W) - W).detach()``), and neuron decays rounded to the
chip's 1/4096 grid (``CubaLIF.quantize_dynamics``). The chip's rounding rules come from
:mod:`snn2hw.quant.formats`, the same functions PTQ uses.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.func import functional_call
from tqdm import tqdm

from snn2hw.nn.layers import TemporalNorm
from snn2hw.nn.losses import spike_loss
from snn2hw.nn.model import SpikingNet
from snn2hw.quant.formats import round_weights
from snn2hw.training.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from snn2hw.training.config import validate_config


@dataclass
class GridEntry:
    param: str  # state-dict name of the weight, e.g. "layers.1.weight"
    row_factor: torch.Tensor  # per output row


@dataclass
class FinetuneResult:
    checkpoint: Path
    float_accuracy: float
    ptq_accuracy: float
    qat_accuracy: float
    history: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "checkpoint": str(self.checkpoint),
            "float_accuracy": self.float_accuracy,
            "ptq_accuracy": self.ptq_accuracy,
            "qat_accuracy": self.qat_accuracy,
            "history": self.history,
            "seconds": self.seconds,
        }


def _norm_after(model: SpikingNet, module_path: str) -> TemporalNorm | None:
    """The TemporalNorm directly after ``module_path`` in its Sequential, if any."""
    parent_path, _, idx = module_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    nxt = str(int(idx) + 1)
    if hasattr(parent, nxt) and isinstance(getattr(parent, nxt), TemporalNorm):
        return getattr(parent, nxt)
    return None


def derive_grid(
    ckpt_path: Path, model: SpikingNet, target: str, calib_samples: int = 128
) -> list[GridEntry]:
    """Run PTQ on ``model`` (saved next to ``ckpt_path``) and read back each weight's grid."""
    import nir

    from snn2hw.pipeline.export import export

    with tempfile.TemporaryDirectory() as tmp:
        src = load_checkpoint(ckpt_path)
        tmp_ck = Path(tmp) / "model.pt"
        save_checkpoint(
            tmp_ck,
            Checkpoint(
                arch=src.arch, state_dict=model.state_dict(), config=src.config, metrics=src.metrics
            ),
        )
        res = export(tmp_ck, target, Path(tmp) / "out", calib_samples=calib_samples)
        graph = nir.read(str(res.nir_path))
    meta = {name: getattr(node, "metadata", {}) or {} for name, node in graph.nodes.items()}
    entries: list[GridEntry] = []
    for layer in res.report["quantization"]["layers"]:
        for path in layer["paths"]:
            mod = meta.get(path["weighted"], {}).get("snn2hw_layer")
            if isinstance(mod, bytes):
                mod = mod.decode()
            if not mod:
                continue  # identity or foreign node: nothing trainable
            factor = torch.tensor(path["row_factor"], dtype=torch.float32)
            norm = _norm_after(model, mod)
            if norm is not None:
                scale, _ = norm.affine()
                factor = factor * scale.detach().float()
            entries.append(GridEntry(f"{mod}.weight", factor))
    return entries


def fake_quant(w: torch.Tensor, factor: torch.Tensor) -> torch.Tensor:
    """``round(W · f) / f`` per output row with the chip's rounding, straight-through."""
    f = factor.to(w.device).reshape(-1, *([1] * (w.dim() - 1)))
    q = torch.from_numpy(round_weights((w.detach() * f).cpu().double().numpy())).to(w)
    return w + (q / f - w).detach()


def _quant_params(model: SpikingNet, grid: list[GridEntry]) -> dict[str, torch.Tensor]:
    params = dict(model.named_parameters())
    return {g.param: fake_quant(params[g.param], g.row_factor) for g in grid if g.param in params}


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
) -> FinetuneResult:
    """Fine-tune ``ckpt_path`` for ``target``; report float, PTQ and QAT integer accuracy
    (torch integer mode on the exported quantized graph)."""
    from snn2hw.data import load_dataset
    from snn2hw.training.train import evaluate, make_encoder, resolve_device, seed_everything

    t0 = time.monotonic()
    ckpt_path, out_path = Path(ckpt_path), Path(out_path)
    ck = load_checkpoint(ckpt_path)
    cfg = validate_config(ck.config or {"model": {"layers": ck.arch["layers"]}}, str(ckpt_path))
    seed = int(cfg["experiment"]["seed"])
    seed_everything(seed)
    dev = resolve_device(device)
    model = ck.build_model(str(ckpt_path)).to(dev)
    ds = load_dataset(
        cfg["data"]["dataset"], cfg["data"]["data_dir"] or None, seed=seed, **cfg["data"]["options"]
    )
    encoder = make_encoder(cfg, ds.temporal)
    num_steps = ds.x_train.shape[1] if ds.temporal else int(cfg["train"]["num_steps"])
    float_acc = evaluate(
        model, ds.x_test, ds.y_test, encoder=encoder, num_steps=num_steps, device=dev
    ).accuracy
    ptq_acc = integer_accuracy(ckpt_path, target, int_eval_samples)
    lr = float(lr or cfg["train"]["lr"]) * 0.2
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    gen = torch.Generator().manual_seed(seed + 11)
    enc_gen = torch.Generator().manual_seed(seed + 12)
    bs = int(cfg["data"]["batch_size"])
    x_tr, y_tr = torch.from_numpy(ds.x_train), torch.from_numpy(ds.y_train)
    history: list[dict[str, Any]] = []
    model.set_quantize_dynamics(True)
    for epoch in range(epochs):
        model.eval()  # the grid comes from inference-mode statistics
        save_checkpoint(
            out_path,
            Checkpoint(
                arch=ck.arch,
                state_dict=model.state_dict(),
                config=ck.config,
                metrics=ck.metrics,
                epoch=ck.epoch,
            ),
        )
        grid = derive_grid(out_path, model, target)
        model.train()
        perm = torch.randperm(len(x_tr), generator=gen)
        n_b = math.ceil(len(perm) / bs)
        loss_sum = 0.0
        for b in tqdm(
            range(n_b), desc=f"qat {epoch + 1}/{epochs}", disable=not progress, leave=False
        ):
            idx = perm[b * bs : (b + 1) * bs]
            xb, yb = x_tr[idx].to(dev), y_tr[idx].to(dev)
            inp = encoder(xb, num_steps, enc_gen)
            out = functional_call(model, _quant_params(model, grid), (inp,))
            loss = spike_loss(cfg["train"]["loss"], out, yb, **cfg["train"]["loss_options"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach()) * len(yb)
        history.append({"epoch": epoch + 1, "loss": loss_sum / len(perm)})
        if progress:
            tqdm.write(f"qat epoch {epoch + 1}/{epochs}: loss {history[-1]['loss']:.4f}")
    model.eval()
    model.set_quantize_dynamics(False)
    metrics = dict(ck.metrics)
    metrics["qat"] = {"target": target, "epochs": epochs, "history": history}
    save_checkpoint(
        out_path,
        Checkpoint(
            arch=ck.arch,
            state_dict=model.state_dict(),
            config=ck.config,
            metrics=metrics,
            epoch=ck.epoch,
        ),
    )
    qat_acc = integer_accuracy(out_path, target, int_eval_samples)
    return FinetuneResult(out_path, float_acc, ptq_acc, qat_acc, history, time.monotonic() - t0)


def integer_accuracy(ckpt_path: Path, target: str, samples: int | None = None) -> float:
    """Export ``ckpt_path`` for ``target`` and measure torch-int accuracy on the test split."""
    from snn2hw.pipeline.export import export
    from snn2hw.pipeline.simulate import graph_samples, predictions, run_backend

    with tempfile.TemporaryDirectory() as tmp:
        res = export(ckpt_path, target, tmp)
        from snn2hw.quant.qgraph import QGraph

        g = QGraph.load(res.qgraph_path)
    smp = graph_samples(g, samples)
    run = run_backend("torch-int", g, smp.ints)
    return (
        float((predictions(g, run.spikes) == smp.labels).mean())
        if smp.labels is not None
        else float("nan")
    )


__all__ = ["finetune", "fake_quant", "derive_grid", "integer_accuracy", "FinetuneResult"]
