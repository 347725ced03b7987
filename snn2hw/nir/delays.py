"""``nir.Delay`` nodes: steps from seconds, the float path's delay line, and the Delay nodes
snn2hw writes (docs/nir.md "Delay").

NIR's Delay is ``y(t) = x(t - tau)`` with ``tau`` per element, in seconds. snn2hw runs
graphs in steps of ``dt``, so a delay must be a whole number of steps:
:func:`delay_steps` returns ``round(tau / dt)`` and refuses (naming the node) a negative
delay or one that is not an integer multiple of ``dt``. The float path
(:class:`snn2hw.nir.executor.NIRNet`) runs a Delay as a time shift of each element
(:class:`DelayLine`); the quantizer turns it into a synaptic delay on the dense or conv op
of its path (:mod:`snn2hw.quant.nir_paths`, :mod:`snn2hw.quant.align_delays`).

May import: ``nir``, ``numpy``, ``torch``, :mod:`snn2hw.common` and the ``snn2hw.nir``
helper modules (fields, analysis).
"""

from __future__ import annotations

import nir
import numpy as np
import torch
from torch import nn

from snn2hw.common.errors import GraphError
from snn2hw.nir.fields import as_array

__all__ = ["DelayLine", "delay_node", "delay_steps", "flush_steps"]

_REL_TOL = 1e-6  # a delay within this fraction of a step of a whole step is that step


def delay_node(shape: tuple[int, ...], steps: int, dt: float) -> nir.Delay:
    """A ``nir.Delay`` of ``steps`` time steps on every element of ``shape``."""
    return nir.Delay(delay=np.full(tuple(shape), float(steps) * float(dt), dtype=np.float64))


def delay_steps(name: str, node: nir.Delay, dt: float) -> np.ndarray:
    """The node's delays in whole steps (int64, its shape): ``round(delay / dt)``.
    Refuses negative or non-finite delays and any that is not a multiple of ``dt``."""
    d = np.asarray(as_array(node.delay), dtype=np.float64)
    if not np.all(np.isfinite(d)):
        raise GraphError(f"node '{name}' (Delay): delays must be finite")
    if d.size and d.min() < 0:
        raise GraphError(f"node '{name}' (Delay): negative delay {d.min():g} s")
    steps = np.rint(d / dt)
    off = np.abs(d / dt - steps)
    if off.size and off.max() > _REL_TOL:
        bad = float(d.reshape(-1)[int(off.reshape(-1).argmax())])
        raise GraphError(
            f"node '{name}' (Delay): delay {bad:g} s is not a whole number of time steps of "
            f"dt = {dt:g} s ({bad / dt:g} steps); export with a dt that divides it (--dt)"
        )
    return steps.astype(np.int64)


class DelayLine(nn.Module):
    """The float path's Delay: ``y[t] = x[t - d]`` per element (zeros before), over a
    whole sequence ``[T, B, *shape]``. A Delay inside a recurrent graph (run step by step)
    is refused when the net is built."""

    def __init__(self, name: str, node: nir.Delay, dt: float, recurrent: bool) -> None:
        super().__init__()
        if recurrent:
            raise GraphError(f"node '{name}' (Delay): delays inside a recurrent graph are not "
                             "supported by the float path")
        steps = delay_steps(name, node, dt)
        self.name = name
        self.uniform = int(steps.reshape(-1)[0]) if steps.size and np.all(steps == steps.flat[0]) \
            else None
        self.register_buffer("steps", torch.as_tensor(steps), persistent=False)

    def forward(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        if lead != 2:
            raise GraphError(f"node '{self.name}' (Delay): runs on whole sequences only")
        t = x.shape[0]
        if self.uniform is not None:
            d = self.uniform
            if d == 0:
                return x
            if d >= t:
                return torch.zeros_like(x)
            return torch.cat([torch.zeros_like(x[:d]), x[:-d]])
        steps = self.steps.to(x.device).broadcast_to(x.shape[2:])
        dmax = int(steps.max())
        xp = torch.cat([x.new_zeros((dmax, *x.shape[1:])), x])
        # y[t, b, e] = xp[t + dmax - d_e, b, e]
        idx = (torch.arange(t, device=x.device).view(t, *([1] * (x.dim() - 1)))
               + dmax - steps.view(1, 1, *steps.shape))
        return torch.gather(xp, 0, idx.expand(x.shape).contiguous())


def flush_steps(graph: nir.NIRGraph, dt: float) -> int:
    """The longest total Delay, in steps, along any feed-forward path from the input to
    the output: how many steps after the last input frame the output still changes
    because of Delay nodes (a float run of a graph with delays pads its input by this)."""
    from snn2hw.nir.analysis import analyze

    info = analyze(graph)
    best: dict[str, int] = {}
    for name in info.order:
        node = graph.nodes[name]
        own = 0
        if isinstance(node, nir.Delay):
            s = delay_steps(name, node, dt)
            own = int(s.max()) if s.size else 0
        preds = [best[p] for p, back in info.preds[name] if not back and p in best]
        best[name] = max(preds, default=0) + own
    return best.get(info.output_node, 0)
