"""NIR's continuous-time neurons as per-step parameters: the one discretization in snn2hw.

Both the float executor of NIR graphs (the "float path") and the quantizer read neuron
nodes through :func:`discretize_neuron`, so what the float path simulates is exactly what
gets quantized. Per step (``x`` = the summed input current of the node)::

    u = alpha · u + in_gain · x
    v = beta  · v + u + v_bias
    s = v > vth            (v >= vth when threshold_op == ">=")
    v = v_reset where s    (reset == "hard")   |   v = v - vth where s   ("subtract")

NIR equations (docs/nir.md "Discretization") with ``a = dt/tau`` (Euler) or ``a = 1 - exp(-dt/tau)``
(exponential integration, the convention of Sinabs and Rockpool):

* ``LIF(tau, r, v_leak, v_threshold, v_reset)``: ``beta = 1 - a``, ``alpha = 0``,
  ``in_gain = a·r``, ``v_bias = a·v_leak``.
* ``CubaLIF(tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in)``: with ``a_s``,
  ``a_m``: ``alpha = 1 - a_s``, ``beta = 1 - a_m``, ``in_gain = a_m·r·a_s·w_in``,
  ``v_bias = a_m·v_leak`` (``u`` is ``a_m·r·I``; current first, then voltage with the
  new current, as in Lava, snnTorch and Norse).
* ``IF(r, v_threshold, v_reset)``: ``beta = 1``, ``alpha = 0``, ``in_gain = r``.
* ``LI``, ``CubaLI``, ``I``: as above but non-spiking (``spiking = False``).

Conventions record what NIR cannot: the dt an exporter used (never stored in the graph),
Euler versus exponential decay, ``>`` versus ``>=``, and the reset the training used.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import nir
import numpy as np

from snn2hw.common.errors import GraphError


@dataclass(frozen=True)
class Convention:
    """How a framework's NIR export is to be read (docs/nir.md "Framework conventions")."""

    name: str
    dt: float | None  # default dt in seconds, None = must come from metadata or the user
    decay: str = "euler"  # "euler" | "exp"
    threshold_op: str = ">"  # ">" | ">="
    reset: str = "hard"  # "hard" | "subtract" (NIR stores only v_reset)
    notes: tuple[str, ...] = field(default_factory=tuple)


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("snn2hw", None, notes=("dt read from graph metadata",)),
        Convention(
            "snntorch", 1e-4,
            notes=("snnTorch hard-codes dt=1e-4 at export",
                   "subtractive reset is exported as v_reset=0; "
                   "pass --reset subtract if trained so",
                   "Synaptic with reset_mechanism='zero' and snnTorch's default reset_delay=True "
                   "also discards the update of the step after a spike; NIR (and snnTorch's "
                   "import_from_nir) mean reset_delay=False"),
        ),
        Convention("norse", 1e-3, notes=("Norse's default dt=1e-3 is not stored in the graph",)),
        Convention(
            "spikingjelly", 1e-4, threshold_op=">=",
            notes=("SpikingJelly spikes on v >= threshold", "soft reset is exported as hard"),
        ),
        Convention(
            "sinabs", 1.0, decay="exp", reset="subtract",
            notes=("Sinabs time constants are in steps (dt = 1)",
                   "Sinabs emits several spikes per step and subtracts; "
                   "modelled as one spike + subtract"),
        ),
        Convention("rockpool", None, decay="exp", notes=("Rockpool integrates exponentially",)),
    )
}


def get_convention(name: str) -> Convention:
    if name not in CONVENTIONS:
        raise GraphError(f"unknown NIR convention '{name}'; known: {', '.join(CONVENTIONS)}")
    return CONVENTIONS[name]


@dataclass
class DiscreteNeuron:
    """Per-step parameters of one neuron node (arrays of the node's shape)."""

    node: str
    nir_type: str
    alpha: np.ndarray
    beta: np.ndarray
    in_gain: np.ndarray
    v_bias: np.ndarray
    vth: np.ndarray
    v_reset: np.ndarray
    spiking: bool
    threshold_op: str = ">"
    reset: str = "hard"

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.beta.shape)


NEURON_TYPES = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.CubaLI, nir.I)


def is_neuron(node: nir.NIRNode) -> bool:
    return isinstance(node, NEURON_TYPES)


def _frac(tau: np.ndarray, dt: float, decay: str, what: str, name: str) -> np.ndarray:
    tau = np.asarray(tau, dtype=np.float64)
    if not np.all(np.isfinite(tau) | np.isposinf(tau)) or np.any(tau <= 0):
        raise GraphError(f"node '{name}': {what} must be > 0 (got {np.unique(tau)[:4]})")
    with np.errstate(divide="ignore"):
        if decay == "exp":
            return 1.0 - np.exp(-dt / tau)
        a = dt / tau
    if np.any(a > 1.0):
        raise GraphError(
            f"node '{name}': dt/{what} = {float(a.max()):.3g} > 1 makes forward Euler unstable; "
            "check --dt (the graph's time unit) or use an exponential convention"
        )
    return a


def discretize_neuron(
    name: str, node: nir.NIRNode, dt: float, convention: Convention
) -> DiscreteNeuron:
    """Per-step parameters of NIR neuron ``node`` for time step ``dt`` (seconds)."""
    if not (dt > 0 and math.isfinite(dt)):
        raise GraphError(f"invalid dt={dt!r}: it must be a positive number of seconds")

    def arr(x, default=0.0):
        return np.asarray(default if x is None else x, dtype=np.float64)

    if isinstance(node, (nir.LIF, nir.LI)):
        a = _frac(node.tau, dt, convention.decay, "tau", name)
        r, v_leak = arr(node.r), arr(node.v_leak)
        shape = np.broadcast(a, r, v_leak).shape
        d = dict(alpha=np.zeros(shape), beta=1.0 - a, in_gain=a * r, v_bias=a * v_leak)
    elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        a_s = _frac(node.tau_syn, dt, convention.decay, "tau_syn", name)
        a_m = _frac(node.tau_mem, dt, convention.decay, "tau_mem", name)
        r, v_leak, w_in = arr(node.r), arr(node.v_leak), arr(getattr(node, "w_in", 1.0), 1.0)
        d = dict(alpha=1.0 - a_s, beta=1.0 - a_m, in_gain=a_m * r * a_s * w_in, v_bias=a_m * v_leak)
    elif isinstance(node, (nir.IF, nir.I)):
        r = arr(node.r)
        z = np.zeros(r.shape)
        d = dict(alpha=z, beta=np.ones(r.shape), in_gain=r, v_bias=z)
    else:
        raise GraphError(f"node '{name}' ({type(node).__name__}) is not a neuron node")
    spiking = isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))
    if spiking:
        vth = arr(node.v_threshold)
        v_reset = arr(getattr(node, "v_reset", None))
    else:
        vth = np.full(np.shape(d["beta"]), np.inf)
        v_reset = np.zeros(np.shape(d["beta"]))
    shape = np.broadcast(*d.values(), vth, v_reset).shape
    out = {k: np.broadcast_to(v, shape).astype(np.float64) for k, v in d.items()}
    for key, val in (*out.items(), ("vth", vth)):
        if not np.all(np.isfinite(val) | (key == "vth")):
            raise GraphError(f"node '{name}': non-finite {key} (NaN/Inf in the NIR parameters)")
    return DiscreteNeuron(
        node=name,
        nir_type=type(node).__name__,
        vth=np.broadcast_to(vth, shape).astype(np.float64),
        v_reset=np.broadcast_to(v_reset, shape).astype(np.float64),
        spiking=spiking,
        threshold_op=convention.threshold_op,
        reset=convention.reset,
        **out,
    )


def with_reset(dn: DiscreteNeuron, reset: str) -> DiscreteNeuron:
    """A copy of ``dn`` with another reset mode (user override of the convention)."""
    return replace(dn, reset=reset)
