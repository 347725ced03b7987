"""The float path: execute a NIR graph in PyTorch over time-major input ``[T, B, ...]``.

Neuron nodes are read through :func:`snn2hw.nir.discretize.discretize_neuron` (the one
discretization, shared with the quantizer) and updated with
:func:`snn2hw.nn.functional.lif_step` (the one float neuron update); the fused
:func:`snn2hw.nn.fused.lif_multistep` runs the same equations faster where it applies
(uniform decays and threshold, reset to 0, strict threshold).

Timing: no delay on edges (a ``nir.Delay`` node shifts its input in time,
:mod:`snn2hw.nir.delays`). Feed-forward graphs run node by node over whole sequences.
Graphs with cycles run step by step in a topological order without the back edges; a back
edge delivers its source's output of the previous step. Before the first step that output
is the graph's value at rest (zero input, neurons silent): an Affine on a recurrent edge
therefore contributes its bias from step 0 on, as a bias on a recurrent ``nn.Linear`` does
in snnTorch (this is what reproduces snnTorch's braille activity exactly).

The module is differentiable (surrogate gradients through the spikes) and its weights are
``nn.Parameter``s, so an imported graph can be fine-tuned. Neuron constants are buffers;
they are recomputed from the float64 discretization whenever the module changes dtype, so
``NIRNet(...).double()`` runs with the exact float64 decays.

Export hook (public): ``NIRNet.forward(x, traceable=True)`` and :meth:`NIRNet.traceable`
run the same equations in a form ``torch.onnx.export`` can trace (used by
:mod:`snn2hw.exporters.onnx_float`); see :class:`NIRNet`.
"""

from __future__ import annotations

from dataclasses import replace
from functools import reduce

import nir
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snn2hw.common.errors import GraphError
from snn2hw.nir.analysis import GraphInfo, analyze
from snn2hw.nir.delays import DelayLine
from snn2hw.nir.discretize import (
    Convention,
    DiscreteNeuron,
    discretize_neuron,
    is_neuron,
    with_reset,
)
from snn2hw.nir.fields import as_array, as_ints, node_metadata
from snn2hw.nir.shapes import conv_geometry
from snn2hw.nn.functional import LIFState, lif_step
from snn2hw.nn.fused import lif_multistep
from snn2hw.nn.surrogate import Surrogate, spike

RESETS = ("hard", "subtract")
_NEURON_KEYS = ("alpha", "beta", "in_gain", "v_bias", "vth", "v_reset")


def _tensor(x, dtype: torch.dtype) -> torch.Tensor:
    return torch.as_tensor(np.array(as_array(x), dtype=np.float64), dtype=dtype)


def _window_sum(z: torch.Tensor, k: tuple[int, int], stride: tuple[int, int],
                padding: tuple[int, int]) -> torch.Tensor:
    """Zero-padded window sums of ``z`` [N, C, H, W] as a depthwise convolution with a ones
    kernel: what ``avg_pool2d(..., divisor_override=1)`` computes, in a form
    ``torch.onnx.export`` keeps (it drops ``divisor_override`` and writes an average)."""
    c = int(z.shape[1])  # a constant while tracing: the exporter needs a static kernel
    ones = torch.ones((c, 1, *k), dtype=z.dtype, device=z.device)
    return F.conv2d(z, ones, None, stride, padding, 1, c)


def _fold(fn, x: torch.Tensor, lead: int) -> torch.Tensor:
    """Apply ``fn`` to ``x`` with its ``lead`` leading dims (T, B) folded into one."""
    if lead == 1:
        return fn(x)
    head = x.shape[:lead]
    y = fn(x.reshape(-1, *x.shape[lead:]))
    return y.reshape(*head, *y.shape[1:])


class _Affine(nn.Module):
    def __init__(self, node: nir.NIRNode, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(_tensor(node.weight, dtype))
        bias = getattr(node, "bias", None)
        self.bias = None if bias is None else nn.Parameter(_tensor(bias, dtype).reshape(-1))

    def forward(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        return F.linear(x, self.weight, self.bias)


class _Scale(nn.Module):
    def __init__(self, node: nir.Scale, dtype: torch.dtype) -> None:
        super().__init__()
        self.scale = nn.Parameter(_tensor(node.scale, dtype))

    def forward(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        return x * self.scale


class _Conv(nn.Module):
    def __init__(self, name: str, node: nir.NIRNode, dtype: torch.dtype) -> None:
        super().__init__()
        self.weight = nn.Parameter(_tensor(node.weight, dtype))
        cout = self.weight.shape[0]
        b = None if node.bias is None else _tensor(node.bias, dtype).reshape(-1)
        if b is not None and b.numel() == 1 and cout != 1:
            b = b.expand(cout).clone()
        self.bias = None if b is None or b.numel() == 0 else nn.Parameter(b)
        self.geom = conv_geometry(name, node)
        self.fn = F.conv1d if isinstance(node, nir.Conv1d) else F.conv2d

    def forward(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        g = self.geom
        return _fold(
            lambda z: self.fn(z, self.weight, self.bias, g["stride"], g["padding"],
                              g["dilation"], g["groups"]),
            x, lead,
        )


class _Pool(nn.Module):
    def __init__(self, name: str, node: nir.NIRNode) -> None:
        super().__init__()
        self.k = as_ints(node.kernel_size, 2, "kernel_size", name)
        self.s = as_ints(node.stride, 2, "stride", name) if node.stride is not None else self.k
        self.p = as_ints(node.padding, 2, "padding", name) if node.padding is not None else (0, 0)
        # divisor_override=1 sums the window exactly (no divide-then-multiply rounding).
        self.divisor = 1 if isinstance(node, nir.SumPool2d) else None

    def forward(self, x: torch.Tensor, lead: int, traceable: bool = False) -> torch.Tensor:
        if traceable and self.divisor == 1:  # see NIRNet.forward(traceable=True)
            return _fold(lambda z: _window_sum(z, self.k, self.s, self.p), x, lead)
        return _fold(
            lambda z: F.avg_pool2d(z, self.k, self.s, self.p, count_include_pad=True,
                                   divisor_override=self.divisor),
            x, lead,
        )


class _Reshape(nn.Module):
    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        return x.reshape(*x.shape[:lead], *self.shape)


class _Threshold(nn.Module):
    def __init__(self, node: nir.Threshold, dtype: torch.dtype, strict: bool, surrogate) -> None:
        super().__init__()
        self.register_buffer("threshold", _tensor(node.threshold, dtype))
        self.strict, self.surrogate = strict, surrogate

    def forward(self, x: torch.Tensor, lead: int) -> torch.Tensor:
        vth = float(self.threshold.mean())
        if self.strict:
            return spike(x - self.threshold, self.surrogate, vth)
        return 1.0 - spike(self.threshold - x, self.surrogate, vth)


class _Neuron(nn.Module):
    """One neuron node: per-step constants from a :class:`DiscreteNeuron` as buffers."""

    def __init__(
        self, dn: DiscreteNeuron, shape: tuple[int, ...], dtype: torch.dtype,
        surrogate: Surrogate, detach_reset: bool,
    ) -> None:
        super().__init__()
        self.dn = dn
        self.shape = tuple(shape)
        self._master = {
            k: np.ascontiguousarray(np.broadcast_to(getattr(dn, k), self.shape), dtype=np.float64)
            for k in _NEURON_KEYS
        }
        for k, m in self._master.items():
            self.register_buffer(k, torch.tensor(m, dtype=dtype))
        self.spiking = dn.spiking
        self.strict = dn.threshold_op == ">"
        self.reset = dn.reset
        self.surrogate = surrogate
        self.detach_reset = detach_reset
        m = self._master

        def uniform(a: np.ndarray) -> bool:
            return a.size == 0 or bool(np.all(a == a.reshape(-1)[0]))

        self.unit_gain = bool(np.all(m["in_gain"] == 1.0))
        self.max_spikes = dn.max_spikes
        self.snntorch = dn.step == "snntorch"
        self.fused_ok = (
            self.spiking and self.strict and bool(np.all(m["v_reset"] == 0.0))
            and dn.max_spikes == 1 and not self.snntorch
            and uniform(m["alpha"]) and uniform(m["beta"]) and uniform(m["vth"])
            and bool(np.all(np.isfinite(m["vth"])))
        )

    def _apply(self, fn, recurse: bool = True):  # type: ignore[override]
        super()._apply(fn, recurse)
        # Recompute from float64 so .double() gives the exact decays, not upcast float32.
        for k, m in self._master.items():
            buf = self._buffers[k]
            self._buffers[k] = torch.tensor(m, dtype=buf.dtype, device=buf.device)
        return self

    def init_state(self, like: torch.Tensor) -> LIFState:
        z = torch.zeros_like(like)
        return LIFState(z, z)

    def step(self, x: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        if not self.unit_gain:
            x = self.in_gain * x
        if not self.spiking:  # LI, CubaLI, I: no threshold; the output is the membrane
            u = self.alpha * state.u + x
            v = self.beta * state.v + u + self.v_bias
            return v, LIFState(u, v)
        if self.snntorch:
            return self._snntorch_step(x, state)
        if self.max_spikes != 1:
            return self._multi_step(x, state)
        return lif_step(
            x, state, alpha=self.alpha, beta=self.beta, vth=self.vth, bias=self.v_bias,
            reset=self.reset, surrogate=self.surrogate, detach_reset=self.detach_reset,
            v_reset=self.v_reset, strict=self.strict,
        )

    def _fire(self, h: torch.Tensor) -> torch.Tensor:
        """Binary spikes of membrane ``h`` with the node's comparison (surrogate gradient)."""
        vth_f = float(self.vth.detach().mean())
        leak = 1.0 - float(self.beta.detach().mean())
        if self.strict:
            return spike(h - self.vth, self.surrogate, vth_f, leak)
        return 1.0 - spike(self.vth - h, self.surrogate, vth_f, leak)

    def _multi_step(self, x: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """Several spikes per step (Sinabs MultiSpike, Rockpool): ``n = floor(h / vth)``
        where ``h`` crosses ``vth``, capped at ``max_spikes``; the gradient is that of the
        first spike."""
        u = self.alpha * state.u + x
        h = self.beta * state.v + u + self.v_bias
        s = self._fire(h)
        n = torch.floor(h.detach() / self.vth) * s.detach()
        if self.max_spikes is not None:
            n = n.clamp(max=float(self.max_spikes))
        n = s + (n - s.detach())
        n_r = n.detach() if self.detach_reset else n
        if self.reset == "hard":
            on = (n_r > 0).to(h.dtype)
            v = h * (1.0 - on) + self.v_reset * on
        else:
            v = h - self.vth * n_r
        return n, LIFState(u, v)

    def _snntorch_step(self, x: torch.Tensor, state: LIFState) -> tuple[torch.Tensor, LIFState]:
        """snnTorch's own update (``_neurons/leaky.py``, ``synaptic.py``, ``rleaky.py``,
        ``rsynaptic.py``): the reset signal ``r`` is computed from the *stored* membrane
        (``mem_reset``), applied in the state function, and, without ``reset_delay``,
        the stored membrane is then corrected by ``spk - r``. ``v`` here is snnTorch's
        stored ``mem``."""
        r = (state.v > self.vth).to(x.dtype)
        u = self.alpha * state.u + x
        if self.reset == "subtract":
            h = self.beta * state.v + u + self.v_bias - r * self.vth
        elif self.dn.nir_type == "LIF" and not self.dn.recurrent:  # Leaky: mem *= 1 - r first
            h = self.beta * ((1.0 - r) * state.v) + u + self.v_bias
        else:  # Synaptic, RLeaky, RSynaptic: mem -= r * (new mem)
            h = self.beta * state.v + u + self.v_bias
            h = h - r * h
        s = self._fire(h)
        if self.dn.reset_delay:
            return s, LIFState(u, h)
        s_r = s.detach() if self.detach_reset else s
        if self.reset == "subtract":
            v = h - (s_r - r) * self.vth
        else:
            v = h - (s_r - r) * h
        return s, LIFState(u, v)

    def forward(self, x: torch.Tensor, lead: int, traceable: bool = False) -> torch.Tensor:
        """Whole sequence ``[T, B, *shape]`` (``lead == 2``); ``traceable``: always the step
        loop (the fused kernel calls numba, which tracing cannot follow)."""
        if self.fused_ok and not traceable:
            xin = x if self.unit_gain else self.in_gain * x
            return lif_multistep(
                xin, alpha=self.alpha.reshape(-1)[0], beta=self.beta.reshape(-1)[0],
                vth=self.vth.reshape(-1)[0], bias=self.v_bias, reset=self.reset,
                surrogate=self.surrogate, detach_reset=self.detach_reset,
            )
        state = self.init_state(x[0])
        out = []
        for xt in x.unbind(0):
            s, state = self.step(xt, state)
            out.append(s)
        return torch.stack(out)


def _nodes_on_cycles(info: GraphInfo) -> set[str]:
    """Nodes that lie on a cycle of the graph (their output reaches their own input)."""
    succ: dict[str, list[str]] = {}
    for dst, preds in info.preds.items():
        for src, _ in preds:
            succ.setdefault(src, []).append(dst)
    on: set[str] = set()
    for start in info.order:
        stack, seen = list(succ.get(start, [])), set()
        while stack:
            k = stack.pop()
            if k == start:
                on.add(start)
                break
            if k not in seen:
                seen.add(k)
                stack.extend(succ.get(k, []))
    return on


def _module_key(name: str, taken: set[str]) -> str:
    key = "".join(c if c.isalnum() or c == "_" else "_" for c in name) or "node"
    if key[0].isdigit():
        key = "n" + key
    base, i = key, 1
    while key in taken:
        key, i = f"{base}_{i}", i + 1
    taken.add(key)
    return key


class NIRNet(nn.Module):
    """Execute a float NIR graph over ``[T, B, *input_shape]`` (see the module doc).

    ``graph``: a NIR graph (from :func:`snn2hw.nir.read_nir` or in memory); ``dt`` in
    seconds and ``convention`` as from :func:`snn2hw.nir.resolve_timing`; ``reset``
    ('hard' | 'subtract') overrides the convention and any per-node ``reset`` metadata
    (written by snn2hw's exporter for neurons trained with subtractive reset).

    Export hook: ``net(x, traceable=True)`` runs the same equations with implementations
    that ``torch.jit.trace``/``torch.onnx.export`` can record, and :meth:`traceable`
    returns a module ``x -> net(x, traceable=True)`` to hand to those exporters. Neither
    changes the net: the switch is a call argument, not a mode."""

    def __init__(
        self,
        graph: nir.NIRGraph,
        dt: float,
        convention: Convention,
        reset: str | None = None,
        *,
        surrogate: Surrogate | None = None,
        detach_reset: bool = True,
        dtype: torch.dtype | None = None,
    ) -> None:
        super().__init__()
        if reset is not None and reset not in RESETS:
            raise GraphError(f"reset '{reset}' unknown; use one of {RESETS}")
        dtype = dtype or torch.get_default_dtype()
        surrogate = surrogate or Surrogate()
        self.graph = graph
        self.dt = float(dt)
        self.convention = convention
        self.info: GraphInfo = analyze(graph)
        self.notes: list[str] = list(self.info.notes)
        self.order: list[str] = list(self.info.order)
        self.back_edges: list[tuple[str, str]] = list(self.info.back_edges)
        self.input_node, self.output_node = self.info.input_node, self.info.output_node
        self.input_shape = self.info.out_shapes[self.input_node]
        self.output_shape = self.info.out_shapes[self.output_node]
        self._discrete: dict[str, DiscreteNeuron] = {}
        self._on_cycle = _nodes_on_cycles(self.info)
        self.nodes = nn.ModuleDict()
        self._key: dict[str, str] = {}
        taken: set[str] = set()
        for name in self.order:
            node = graph.nodes[name]
            mod = self._build(name, node, dtype, surrogate, detach_reset, reset)
            if mod is not None:
                key = _module_key(name, taken)
                self._key[name] = key
                self.nodes[key] = mod

    # ------------------------------------------------------------------ construction

    def _build(self, name, node, dtype, surrogate, detach_reset, reset) -> nn.Module | None:
        strict = self.convention.threshold_op == ">"
        if isinstance(node, (nir.Input, nir.Output)):
            return None
        if isinstance(node, (nir.Affine, nir.Linear)):
            return _Affine(node, dtype)
        if isinstance(node, nir.Scale):
            return _Scale(node, dtype)
        if isinstance(node, (nir.Conv1d, nir.Conv2d)):
            return _Conv(name, node, dtype)
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            return _Pool(name, node)
        if isinstance(node, nir.Flatten):
            return _Reshape(self.info.out_shapes[name])
        if isinstance(node, nir.Threshold):
            return _Threshold(node, dtype, strict, surrogate)
        if isinstance(node, nir.Delay):  # snn2hw.nir.delays
            return DelayLine(name, node, self.dt, self.info.recurrent)
        if is_neuron(node):
            dn = discretize_neuron(name, node, self.dt, self.convention)
            md_reset = node_metadata(node).get("reset")
            if reset is not None:
                dn = with_reset(dn, reset)
            elif md_reset in RESETS and md_reset != dn.reset:
                dn = with_reset(dn, md_reset)
                self.notes.append(f"node '{name}': reset '{md_reset}' from its metadata")
            if name in self._on_cycle:
                dn = replace(dn, recurrent=True)
            shape = tuple(self.info.out_shapes[name])
            if dn.shape != shape:  # per-node scalars (Norse writes 0-d/[1] parameters)
                try:
                    dn = replace(dn, **{k: np.broadcast_to(getattr(dn, k), shape).copy()
                                        for k in _NEURON_KEYS})
                except ValueError:
                    raise GraphError(f"node '{name}': parameters of shape {list(dn.shape)} do "
                                     f"not fit its {list(shape)} neurons") from None
            self._discrete[name] = dn
            return _Neuron(dn, self.info.out_shapes[name], dtype, surrogate, detach_reset)
        raise GraphError(f"node '{name}' has unsupported type {type(node).__name__}")

    # ------------------------------------------------------------------ introspection

    def discrete_neurons(self) -> dict[str, DiscreteNeuron]:
        """Per-step parameters of every neuron node (with the reset actually used)."""
        return dict(self._discrete)

    def module(self, name: str) -> nn.Module | None:
        """The torch module executing node ``name`` (None for Input/Output)."""
        key = self._key.get(name)
        return None if key is None else self.nodes[key]

    @property
    def recurrent(self) -> bool:
        return self.info.recurrent

    # ------------------------------------------------------------------ execution

    def _dtype(self) -> torch.dtype:
        for t in (*self.parameters(), *self.buffers()):
            return t.dtype
        return torch.get_default_dtype()

    def _device(self) -> torch.device:
        for t in (*self.parameters(), *self.buffers()):
            return t.device
        return torch.device("cpu")

    def _gather(self, name: str, cur: dict, prev: dict | None) -> torch.Tensor:
        vals = [
            (prev[src] if is_back else cur[src])
            for src, is_back in self.info.preds[name]
            if prev is not None or not is_back
        ]
        return reduce(torch.add, vals)

    def forward(self, x: torch.Tensor, record: bool = False, *, traceable: bool = False):
        """``x``: ``[T, B, *input_shape]``. Returns the output ``[T, B, *output_shape]``
        and, with ``record=True``, also ``{node_name: [T, B, ...]}`` for every node.

        ``traceable=True`` (the export hook, for this call only) swaps two implementations
        for ones a tracer can record, with the same equations:

        * neurons run their step-by-step loop (:func:`snn2hw.nn.functional.lif_step`)
          instead of the fused multi-step kernel, which calls numba;
        * ``SumPool2d`` nodes sum each window as a depthwise convolution with a ones kernel
          instead of ``avg_pool2d(divisor_override=1)``, whose ``divisor_override``
          ``torch.onnx.export`` silently drops (it would write an average pool).

        The step loop is tested bit for bit against the fused kernel; window sums of
        spikes (small integers) are exact either way, other pooled values may differ in
        the last bit (a different summation order)."""
        x = torch.as_tensor(x).to(dtype=self._dtype(), device=self._device())
        if x.dim() < 2 or tuple(x.shape[2:]) != tuple(self.input_shape):
            raise GraphError(
                f"input has shape {list(x.shape)}; expected [T, B, "
                f"{', '.join(map(str, self.input_shape))}]"
            )
        if self.recurrent:
            outs = self._run_steps(x, traceable)
        else:
            outs = self._run_sequence(x, traceable)
        y = outs[self.output_node]
        return (y, outs) if record else y

    def traceable(self) -> nn.Module:
        """A module computing ``self(x, traceable=True)`` from ``x`` alone (no optional
        arguments for a tracer to turn into inputs), sharing this net's parameters and
        buffers: what :func:`snn2hw.exporters.onnx_float.export_float_onnx` passes to
        ``torch.onnx.export``. Creating or tracing it leaves this net unchanged."""
        return _TraceableNIRNet(self)

    @staticmethod
    def _call(mod: nn.Module | None, inp: torch.Tensor, lead: int,
              traceable: bool) -> torch.Tensor:
        if mod is None:
            return inp
        if traceable and isinstance(mod, (_Pool, _Neuron)):
            return mod(inp, lead, traceable=True)
        return mod(inp, lead)

    def _run_sequence(self, x: torch.Tensor, traceable: bool = False) -> dict[str, torch.Tensor]:
        outs: dict[str, torch.Tensor] = {}
        for name in self.order:
            if name == self.input_node:
                outs[name] = x
                continue
            inp = self._gather(name, outs, None)
            outs[name] = self._call(self.module(name), inp, 2, traceable)
        return outs

    def _rest_outputs(self, x0: torch.Tensor, traceable: bool = False) -> dict[str, torch.Tensor]:
        """Each node's output at rest (zero input, silent neurons): what a back edge
        delivers before the first step."""
        outs: dict[str, torch.Tensor] = {}
        zeros_prev = {}
        for name in self.order:
            if name == self.input_node:
                outs[name] = torch.zeros_like(x0)
                continue
            for src, is_back in self.info.preds[name]:
                if is_back and src not in zeros_prev:
                    shape = self.info.out_shapes[src]
                    zeros_prev[src] = x0.new_zeros((x0.shape[0], *shape))
            inp = self._gather(name, outs, zeros_prev)
            mod = self.module(name)
            if isinstance(mod, _Neuron):
                outs[name] = torch.zeros_like(inp)
            else:
                outs[name] = self._call(mod, inp, 1, traceable)
        return outs

    def _run_steps(self, x: torch.Tensor, traceable: bool = False) -> dict[str, torch.Tensor]:
        prev = self._rest_outputs(x[0], traceable)
        states: dict[str, LIFState] = {}
        seq: dict[str, list[torch.Tensor]] = {k: [] for k in self.order}
        for xt in x.unbind(0):
            cur: dict[str, torch.Tensor] = {}
            for name in self.order:
                if name == self.input_node:
                    cur[name] = xt
                else:
                    inp = self._gather(name, cur, prev)
                    mod = self.module(name)
                    if isinstance(mod, _Neuron):
                        if name not in states:
                            states[name] = mod.init_state(inp)
                        cur[name], states[name] = mod.step(inp, states[name])
                    else:
                        cur[name] = self._call(mod, inp, 1, traceable)
                seq[name].append(cur[name])
            prev = cur
        return {k: torch.stack(v) for k, v in seq.items()}

    def extra_repr(self) -> str:
        rec = f", recurrent edges={self.back_edges}" if self.back_edges else ""
        return f"dt={self.dt:g}, convention={self.convention.label}{rec}"


class _TraceableNIRNet(nn.Module):
    """``x -> net(x, traceable=True)``: returned by :meth:`NIRNet.traceable`."""

    def __init__(self, net: NIRNet) -> None:
        super().__init__()
        self.net = net
        # Start in the net's mode, so that a tracer that switches to eval and back (as
        # torch.onnx.export does) restores the net's own mode, not this wrapper's default.
        self.training = net.training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x, traceable=True)


def load_nir(
    path, dt: float | None = None, convention: str | None = None, reset: str | None = None,
    **kwargs,
) -> NIRNet:
    """Read, check and wrap a NIR file in one call (notes in ``net.notes``)."""
    from snn2hw.nir.importer import read_nir
    from snn2hw.nir.timing import resolve_timing

    graph = read_nir(path)
    dt_val, conv, notes = resolve_timing(graph, dt, convention)
    net = NIRNet(graph, dt_val, conv, reset, **kwargs)
    net.notes = list(dict.fromkeys(notes + net.notes))
    return net
