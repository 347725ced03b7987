"""The float network as a conventional ONNX sequence model: :func:`export_float_onnx`.

A :class:`~snn2hw.nir.NIRNet` is traced by ``torch.onnx.export`` over a whole sequence
``[T, B, ...]`` (T fixed at export, B dynamic) through the executor's public export hook,
:meth:`NIRNet.traceable() <snn2hw.nir.executor.NIRNet.traceable>` (step-by-step neurons
instead of the fused numba LIF, sum pools as ones-convolutions). A trained
:class:`~snn2hw.nn.model.SpikingNet` is first converted to its NIR graph
(:func:`snn2hw.nir.to_nir`, the graph ``snn2hw export`` writes) and executed by a NIRNet,
so there is one float path to trace. Nothing is patched: the net passed in is left as it
was (its training flag included).

May import: torch, onnx, the public API of ``snn2hw.nir`` and ``snn2hw.nn`` (to recognise
a SpikingNet), ``snn2hw.common`` and the file helpers of ``snn2hw.exporters.onnx_int``;
no private name of another module, no backend.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import onnx
import torch
from onnx import helper

from snn2hw.common.errors import GraphError
from snn2hw.exporters.onnx_int import FORMAT_VERSION, OnnxExportInfo, check_opset, save_model
from snn2hw.nir import NIRNet, resolve_timing, to_nir
from snn2hw.nn.model import SpikingNet

__all__ = ["FLOAT_FORMAT", "export_float_onnx"]

FLOAT_FORMAT = "snn2hw.onnx.float"


def _as_nirnet(net: Any) -> NIRNet:
    """``net`` itself if it is a NIRNet; a SpikingNet as the NIRNet of its NIR graph (the
    inference form: dropout removed, norms folded, the reset recorded in the metadata)."""
    if isinstance(net, NIRNet):
        return net
    if isinstance(net, SpikingNet):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # the subtractive-reset note
            graph = to_nir(net)
        dt, conv, _ = resolve_timing(graph)
        return NIRNet(graph, dt, conv, dtype=torch.float32).eval()
    raise GraphError(
        f"export_float_onnx exports a SpikingNet or a NIRNet, got {type(net).__name__}"
    )


def export_float_onnx(
    net: Any,
    example: Any,
    path: str | Path,
    opset: int = 17,
) -> OnnxExportInfo:
    """Export a float spiking network (SpikingNet or NIRNet) over a whole sequence.

    ``example``: a float tensor ``[T, B, *input_shape]``; the time loop is unrolled, so the
    model takes exactly T steps (B is dynamic). Input ``x`` float32 ``[T, B, ...]``, output
    ``spikes`` float32 ``[T, B, *output_shape]`` (0/1). Written atomically; checked with
    ``onnx.checker`` (full check)."""
    opset = check_opset(opset)
    example = torch.as_tensor(example)
    if example.dim() < 3 or not example.dtype.is_floating_point:
        raise GraphError(
            f"example input must be a float tensor [T, B, ...], got {list(example.shape)} "
            f"{example.dtype}"
        )
    example = example.to(torch.float32)
    net_dtype = next((p.dtype for p in net.parameters()), torch.float32)
    if net_dtype != torch.float32:
        raise GraphError(f"export_float_onnx exports float32 models; net is {net_dtype}")
    traced = _as_nirnet(net).traceable()  # x -> net(x, traceable=True), shared parameters

    buf = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        # Tracing freezes Python floats read from tensors (the surrogate's width, used only
        # by the backward pass) into constants, which is intended; and dynamo=False (the
        # TorchScript exporter: the dynamo one needs onnxscript) is deprecated upstream.
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        y = traced(example)
        # training=EVAL (the default): the exporter puts the module in eval mode for the
        # trace and restores its previous mode afterwards.
        torch.onnx.export(
            traced, (example,), buf, dynamo=False, opset_version=opset,
            input_names=["x"], output_names=["spikes"],
            dynamic_axes={"x": {1: "B"}, "spikes": {1: "B"}},
        )
    model = onnx.load_from_string(buf.getvalue())
    t = int(example.shape[0])
    meta = {
        "format": FLOAT_FORMAT,
        "version": str(FORMAT_VERSION),
        "num_steps": str(t),
        "input_shape": json.dumps([int(s) for s in example.shape[2:]]),
        "output_shape": json.dumps([int(s) for s in y.shape[2:]]),
        "model": type(net).__name__,
    }
    del model.metadata_props[:]
    helper.set_model_props(model, meta)
    onnx.checker.check_model(model, full_check=True)
    save_model(model, path)
    return OnnxExportInfo(
        path=Path(path), format=FLOAT_FORMAT, opset=opset,
        inputs={"x": [t, "B", *(int(s) for s in example.shape[2:])]},
        outputs={"spikes": [t, "B", *(int(s) for s in y.shape[2:])]},
        metadata=meta,
    )
