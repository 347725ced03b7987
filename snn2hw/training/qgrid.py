"""The chip's quantization grid of a model's current weights, computed in memory.

:func:`quantize_model` runs post-training quantization (:func:`snn2hw.quant.ptq.quantize`)
on a :class:`~snn2hw.nn.model.SpikingNet` exactly as ``snn2hw export`` does for a checkpoint
— same model rebuild, same NIR graph (:func:`snn2hw.nir.to_nir`), same float path
(:class:`snn2hw.nir.NIRNet`), same calibration frames and input format
(:mod:`snn2hw.quant.inputs`) — but without files. :func:`grid_entries` reads back, per
trainable weight, the row factor PTQ multiplies it by before rounding (folding any
normalization that follows), which is what QAT's fake quantization needs.
``tests/training/test_qat.py`` checks the result equals ``snn2hw.pipeline.export.export``'s.

May import: ``snn2hw.nn``, ``snn2hw.nir``, ``snn2hw.quant``, ``snn2hw.common`` and
``snn2hw.training.checkpoint``/``runtime``. Never a backend, ``pipeline``, ``chip`` or ``cli``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import nir
import torch

from snn2hw.common.units import DEFAULT_DT
from snn2hw.nn.encoders import SAMPLE_ENCODER_SEED
from snn2hw.nn.layers import TemporalNorm
from snn2hw.nn.model import SpikingNet
from snn2hw.quant.bounds import ChipLimits
from snn2hw.quant.formats import NumberFormats
from snn2hw.quant.inputs import infer_input_format, to_chip
from snn2hw.quant.ptq import QuantResult
from snn2hw.training.checkpoint import Checkpoint
from snn2hw.training.runtime import make_encoder

# The values snn2hw.pipeline.export uses for a checkpoint (training may not import
# pipeline; the grid-equality test fails if they drift apart):
CALIBRATION_SAMPLES = 128  # export's default calib_samples


@dataclass
class GridEntry:
    param: str  # state-dict name of the weight, e.g. "layers.1.weight"
    row_factor: torch.Tensor  # per output row


@dataclass
class ModelQuant:
    graph: nir.NIRGraph  # the float NIR graph that was quantized
    result: QuantResult  # PTQ's integer graph and per-layer report
    grid: list[GridEntry]  # the grid of every trainable weight


def calibration_frames(
    cfg: dict[str, Any], ds, num_steps: int, n: int = CALIBRATION_SAMPLES
) -> tuple[torch.Tensor, float | None]:
    """Encoded float frames ``[T, n, ...]`` of the first ``n`` training samples (the
    frames export calibrates on) and the ``x_max`` export gives the input format."""
    enc = make_encoder(cfg, ds.temporal)
    gen = torch.Generator().manual_seed(SAMPLE_ENCODER_SEED)
    frames = enc(torch.from_numpy(ds.x_train[:n]), num_steps, gen).float()
    x_max = float(cfg["encoder"]["gain"]) if cfg["encoder"]["kind"] == "direct" else None
    return frames, x_max


def quantize_model(
    model: SpikingNet,
    arch: dict[str, Any],
    cfg: dict[str, Any],
    ds,
    *,
    target: str,
    num_steps: int,
    calib_samples: int = CALIBRATION_SAMPLES,
    formats: NumberFormats | None = None,
    chip_limits: ChipLimits | None = None,
) -> ModelQuant:
    """PTQ of ``model``'s current weights for ``target``, as export would quantize a
    checkpoint of them. ``num_steps``: the checkpoint's ``metrics["num_steps"]``."""
    from snn2hw.nir import NIRNet, resolve_timing, to_nir
    from snn2hw.quant.ptq import quantize

    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    fresh = Checkpoint(arch=arch, state_dict=state).build_model("QAT model").eval()
    graph = to_nir(fresh, dt=DEFAULT_DT)
    dt, conv, _ = resolve_timing(graph, None, None)
    net = NIRNet(graph, dt, conv, reset=None).eval()
    raw, x_max = calibration_frames(cfg, ds, num_steps, calib_samples)
    fmt = infer_input_format(raw, x_max=x_max)
    _, frames = to_chip(raw, fmt)
    with torch.no_grad():
        _, rec = net(frames, record=True)
    result = quantize(
        graph,
        net.discrete_neurons(),
        dict(rec),
        dt=dt,
        target=target,
        num_steps=int(frames.shape[0]),
        input_scale=fmt.unit,
        input_message_bits=fmt.message_bits,
        input_shape=tuple(net.input_shape),
        formats=formats,  # the target's NumberFormats; None: Loihi's
        chip_limits=chip_limits,  # the target's chip limits; None: none checked
    )
    return ModelQuant(graph, result, grid_entries(result, graph, model))


def _norm_after(model: SpikingNet, module_path: str) -> TemporalNorm | None:
    """The TemporalNorm directly after ``module_path`` in its Sequential, if any."""
    parent_path, _, idx = module_path.rpartition(".")
    parent = model.get_submodule(parent_path) if parent_path else model
    nxt = str(int(idx) + 1)
    if hasattr(parent, nxt) and isinstance(getattr(parent, nxt), TemporalNorm):
        return getattr(parent, nxt)
    return None


def grid_entries(result: QuantResult, graph: nir.NIRGraph, model: SpikingNet) -> list[GridEntry]:
    """Per weight of ``model`` that PTQ rounded: its row factor, times the scale of a
    normalization folded into it (the float model applies that norm separately)."""
    meta = {name: getattr(node, "metadata", {}) or {} for name, node in graph.nodes.items()}
    entries: list[GridEntry] = []
    for layer in result.layers:
        for path in layer.paths:
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
