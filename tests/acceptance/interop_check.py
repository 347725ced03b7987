"""Shared steps of the interop acceptance tests (tests/acceptance/test_interop_*.py).

Each test builds a small random network in a real framework, exports it with that
framework's own NIR exporter, simulates it in the framework (T = 100, Bernoulli input),
and checks: the float path reproduces the framework's output spikes exactly (0 mismatching
entries), the firing is 2-20 %, and the quantized graph runs identically on the integer
backends. Only the Input/Output port shapes are edited before writing: exporters that
trace an example input store its batch/time dimensions there."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import nir
import numpy as np
import torch

from snn2hw.nir import NIRNet, read_nir, resolve_timing

T, B, N_IN, N_HID, N_OUT = 100, 4, 8, 12, 4
GAINS = (0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0)


def frames(seed: int = 0, p: float = 0.3) -> torch.Tensor:
    """Bernoulli input ``[T, B, N_IN]``."""
    g = torch.Generator().manual_seed(seed)
    return (torch.rand(T, B, N_IN, generator=g) < p).float()


def rate(spikes: torch.Tensor) -> float:
    return float((spikes > 0).float().mean())


def tuned(build: Callable[[float], tuple[Callable[[], nir.NIRGraph], torch.Tensor]]):
    """The first weight gain whose framework output fires 2-20 % of the time:
    ``(graph, framework output [T, B, N_OUT], gain)``. ``build(gain)`` simulates and
    returns the exporter call, so that only the chosen network is exported."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nirtorch / framework deprecation warnings
        for gain in GAINS:
            export, ref = build(gain)
            if 0.02 <= rate(ref) <= 0.20:
                return export(), ref, gain
    raise AssertionError("no weight gain gives 2-20 % output firing")


def _plain(val):
    if isinstance(val, torch.Tensor):
        val = val.detach().cpu().numpy()
    if isinstance(val, np.ndarray) and val.ndim == 0:
        val = val.reshape(1)  # nir.write cannot store 0-d arrays
    return val


def write(graph: nir.NIRGraph, path: Path) -> Path:
    """Write ``graph`` as the framework exported it, with port shapes per sample."""
    for node in graph.nodes.values():
        for key, val in list(vars(node).items()):
            if isinstance(val, (torch.Tensor, np.ndarray)):
                setattr(node, key, _plain(val))
        if isinstance(node, nir.Input):
            n = int(np.asarray(node.input_type["input"]).reshape(-1)[-1])
            node.input_type = {"input": np.array([n])}
            node.output_type = {"output": np.array([n])}
        if isinstance(node, nir.Output):
            n = int(np.asarray(node.output_type["output"]).reshape(-1)[-1])
            node.input_type = {"input": np.array([n])}
            node.output_type = {"output": np.array([n])}
    nir.write(str(path), graph)
    return path


def float_path(path: Path, convention: str, x: torch.Tensor) -> torch.Tensor:
    """The float path's output spikes for the NIR file at ``path``."""
    graph = read_nir(path)
    dt, conv, _ = resolve_timing(graph, None, convention)
    with torch.no_grad():
        return NIRNet(graph, dt, conv)(x)


def assert_float_exact(path: Path, convention: str, x: torch.Tensor, ref: torch.Tensor) -> None:
    y = float_path(path, convention, x)
    bad = int((y != ref.to(y.dtype)).sum())
    assert bad == 0, f"{bad} of {ref.numel()} output entries differ from the framework"


def integer_backends_agree(tmp_path: Path, path: Path, convention: str, x: torch.Tensor,
                           target: str = "loihi2", approximate: tuple[str, ...] = (),
                           backends: tuple[str, ...] = ("torch-int", "event")):
    """Export for ``target`` and require identical spikes on ``backends``."""
    from snn2hw.pipeline.compare import compare
    from snn2hw.pipeline.export import export
    from snn2hw.pipeline.samples import SampleSpec

    np.save(tmp_path / "x.npy", x.numpy().astype(np.float32))
    res = export(path, target, tmp_path / f"out_{target}", convention=convention,
                 spec=SampleSpec(inputs_file=str(tmp_path / "x.npy")),
                 calib_samples=x.shape[1], approximate=approximate)
    cmp = compare(res.qgraph_path, list(backends), x.shape[1])
    assert cmp.integer_equal, cmp.divergences[0].describe()
    return res, cmp
