"""NIR's continuous-time neurons as per-step parameters: the one discretization in snn2hw.

Both the float executor of NIR graphs (the "float path") and the quantizer read neuron
nodes through :func:`discretize_neuron`, so what the float path simulates is exactly what
gets quantized. Per step (``x`` = the summed input current of the node)::

    u = alpha · u + in_gain · x
    v = beta  · v + u + v_bias
    n = v > vth  (v >= vth when threshold_op == ">=");  with max_spikes != 1:
        n = floor(v / vth) where v crosses vth, capped at max_spikes (None: no cap)
    v = v_reset where n > 0  (reset == "hard")   |   v = v - n · vth   ("subtract")

NIR equations (docs/nir.md "Discretization") with ``a = dt/tau`` (Euler) or ``a = 1 - exp(-dt/tau)``
(exponential integration, the convention of Sinabs and Rockpool):

* ``LIF(tau, r, v_leak, v_threshold, v_reset)``: ``beta = 1 - a``, ``alpha = 0``,
  ``in_gain = a·r``, ``v_bias = a·v_leak``.
* ``CubaLIF(tau_syn, tau_mem, r, v_leak, v_threshold, v_reset, w_in)``: with ``a_s``,
  ``a_m``: ``alpha = 1 - a_s``, ``beta = 1 - a_m``, ``in_gain = a_m·r·a_s·w_in``,
  ``v_bias = a_m·v_leak`` (``u`` is ``a_m·r·I``; current first, then voltage with the
  new current, as in Lava, snnTorch and Norse).
* ``IF(r, v_threshold, v_reset)``: ``dv/dt = R·I``: ``beta = 1``, ``alpha = 0``,
  ``in_gain = r·dt``.
* ``LI``, ``CubaLI``, ``I``: as above but non-spiking (``spiking = False``).

A :class:`Convention` records what NIR cannot: the dt an exporter used (never stored in
the graph), Euler versus exponential decay, ``>`` versus ``>=``, the reset, several spikes
per step, snnTorch's delayed reset, and the few places where a framework's exporter means
something other than NIR's equations (``gains``: Norse and Rockpool, ``tau_times_dt``:
Norse 1.1.0). Each built-in convention is its framework's default; options select other
settings: ``snntorch:reset=zero,reset_delay=false``, ``sinabs:spikes=1`` (grammar in
:func:`get_convention`, table in docs/nir.md "Framework conventions").
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import nir
import numpy as np

from snn2hw.common.errors import GraphError

RESETS = ("hard", "subtract")
THRESHOLD_OPS = (">", ">=")
GAINS = ("nir", "snn2hw", "norse", "rockpool")
STEPS = ("nir", "snntorch")


@dataclass(frozen=True)
class Convention:
    """How a framework's NIR export is to be read (docs/nir.md "Framework conventions").

    ``max_spikes``: spikes a neuron may emit per step (1: binary; None: no cap).
    ``reset_delay``: snnTorch's ``reset_delay=True`` (the reset of a spike is applied in
    the next step's update); only with ``step = "snntorch"``.
    ``step``: "nir" (the equations of the module doc) or "snntorch" (snnTorch's own
    update order, which computes its reset signal from the stored membrane).
    ``gains``: how ``r`` (and ``w_in``) become the per-step input gain: "nir" (NIR's
    equations), "snn2hw" (as nir, but ``IF.r`` is the per-step gain, as snn2hw writes it),
    "norse" (``r`` per step for ``IF``; ``CubaLIF`` input enters the current unscaled),
    "rockpool" (Rockpool's ``r = tau·exp(-dt/tau)/dt`` encodes a gain of 1 per step).
    ``tau_times_dt``: the exporter wrote ``tau·dt`` instead of ``tau`` (Norse 1.1.0).
    ``dt_from_r``: without metadata or ``--dt``, dt is recovered from ``r`` (Rockpool)."""

    name: str
    dt: float | None  # default dt in seconds, None = must come from metadata or the user
    decay: str = "euler"  # "euler" | "exp"
    threshold_op: str = ">"  # ">" | ">="
    reset: str = "hard"  # "hard" | "subtract" (NIR stores only v_reset)
    max_spikes: int | None = 1
    reset_delay: bool = False
    step: str = "nir"
    gains: str = "nir"
    tau_times_dt: bool = False
    dt_from_r: bool = False
    notes: tuple[str, ...] = field(default_factory=tuple)
    options: tuple[tuple[str, str], ...] = ()  # user options applied to the base convention

    @property
    def label(self) -> str:
        """The name with its options, as the user would write it (``snntorch:reset=zero``)."""
        if not self.options:
            return self.name
        return self.name + ":" + ",".join(f"{k}={v}" for k, v in self.options)

    def describe(self) -> str:
        spikes = ("one spike per step" if self.max_spikes == 1 else
                  "several spikes per step" + (f" (at most {self.max_spikes})"
                                                if self.max_spikes is not None else ""))
        delay = ", reset applied one step late (reset_delay)" if self.reset_delay else ""
        return (f"'{self.label}' convention: {self.decay} decay, spike when v "
                f"{self.threshold_op} threshold, {self.reset} reset{delay}, {spikes}")


CONVENTIONS: dict[str, Convention] = {
    c.name: c
    for c in (
        Convention("nir", None, notes=("NIR's own equations; dt from metadata or --dt",)),
        Convention("snn2hw", None, gains="snn2hw",
                   notes=("dt read from graph metadata; IF.r is the per-step gain",)),
        Convention(
            "snntorch", 1e-4, reset="subtract", reset_delay=True, step="snntorch",
            notes=("snnTorch hard-codes dt=1e-4 at export",
                   "snnTorch's defaults: reset_mechanism='subtract' (exported as v_reset=0) "
                   "and reset_delay=True (not in NIR); other settings: "
                   "--convention snntorch:reset=zero,reset_delay=false"),
        ),
        Convention(
            "norse", 1e-3, gains="norse", tau_times_dt=True,
            notes=("Norse's default dt=1e-3 is not stored in the graph",
                   "norse 1.1.0 writes tau = dt*tau_mem; read as tau_mem = tau/dt",
                   "Norse integrates CubaLIF input as current jumps (no dt/tau_syn factor) "
                   "and IF input with gain r per step"),
        ),
        Convention(
            "spikingjelly", 1e-4, threshold_op=">=",
            notes=("SpikingJelly spikes on v >= threshold; its exporter refuses soft reset",),
        ),
        Convention(
            "sinabs", 1.0, decay="exp", threshold_op=">=", reset="subtract", max_spikes=None,
            notes=("Sinabs time constants are in steps (dt = 1)",
                   "Sinabs' defaults (not in NIR): MultiSpike (floor(v/threshold) spikes per "
                   "step, fires at v >= threshold) and subtractive reset; "
                   "SingleSpike: --convention sinabs:spikes=1"),
        ),
        Convention(
            "rockpool", None, decay="exp", threshold_op=">=", reset="subtract",
            max_spikes=2**16, gains="rockpool", dt_from_r=True,
            notes=("Rockpool integrates exponentially, fires on v >= threshold, emits "
                   "floor(v/threshold) spikes per step (max_spikes_per_dt = 2^16) and "
                   "subtracts (not in NIR)",
                   "Rockpool does not store dt; r = tau*exp(-dt/tau)/dt determines it"),
        ),
    )
}

_OPTION_KEYS = {
    "reset": "reset (zero|hard|subtract)",
    "reset_delay": "reset_delay (true|false; snntorch only)",
    "threshold": "threshold (>|>=)",
    "spikes": "spikes (1, N or multi)",
    "tau": "tau (seconds|dt_times; norse only)",
}


def get_convention(name: str) -> Convention:
    """The convention ``NAME`` or ``NAME:key=value,...`` (keys: reset = zero|hard|subtract,
    reset_delay = true|false, threshold = >|>=, spikes = 1|N|multi, tau = seconds|dt_times)."""
    if isinstance(name, Convention):
        return name
    base_name, _, opts = str(name).strip().partition(":")
    base_name = base_name.strip().lower()
    if base_name not in CONVENTIONS:
        raise GraphError(f"unknown NIR convention '{base_name}'; known: {', '.join(CONVENTIONS)}")
    conv = CONVENTIONS[base_name]
    if not opts.strip():
        return conv
    applied: list[tuple[str, str]] = []
    changes: dict[str, object] = {}
    for item in opts.split(","):
        key, eq, val = (s.strip().lower() for s in item.partition("="))
        if not eq or key not in _OPTION_KEYS:
            raise GraphError(f"convention option '{item.strip()}' in '{name}' is not key=value "
                             f"with a known key ({'; '.join(_OPTION_KEYS.values())})")
        changes.update(_parse_option(conv, key, val, str(name)))
        applied.append((key, val))
    return replace(conv, options=tuple(applied), **changes)  # type: ignore[arg-type]


def _parse_option(conv: Convention, key: str, val: str, full: str) -> dict[str, object]:
    def bad(allowed: str) -> GraphError:
        return GraphError(f"convention '{full}': {key}={val!r} is not one of {allowed}")

    if key == "reset":
        if val not in ("zero", "hard", "subtract"):
            raise bad("zero, hard, subtract")
        return {"reset": "hard" if val == "zero" else val}
    if key == "reset_delay":
        if val not in ("true", "false"):
            raise bad("true, false")
        if conv.step != "snntorch" and val == "true":
            raise GraphError(f"convention '{full}': reset_delay=true exists only in snnTorch "
                             "(convention snntorch)")
        return {"reset_delay": val == "true"}
    if key == "tau":
        if val not in ("seconds", "dt_times") or conv.name != "norse":
            raise bad("seconds, dt_times (convention norse only)")
        return {"tau_times_dt": val == "dt_times"}
    if key == "threshold":
        if val not in THRESHOLD_OPS:
            raise bad("'>', '>='")
        return {"threshold_op": val}
    if val in ("multi", "inf", "none"):
        return {"max_spikes": None}
    try:
        n = int(val)
    except ValueError:
        raise bad("1, a count, multi") from None
    if n < 1:
        raise bad("1, a count, multi")
    return {"max_spikes": n}


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
    max_spikes: int | None = 1
    reset_delay: bool = False
    step: str = "nir"
    recurrent: bool = False  # the node's own spikes reach its input (snnTorch RLeaky)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.beta.shape)


@dataclass(frozen=True)
class IntegerNeuron:
    """What the integer neuron of docs/qgraph.md must do to execute a :class:`DiscreteNeuron`
    exactly: ``reset`` ('zero' | 'subtract', the names of the target formats),
    ``compare`` ('>' | '>='), ``max_spikes`` (None: no cap in float). ``inexact``: why
    no integer neuron reproduces it (empty when one does), and what the nearest one
    (the fields above) changes."""

    reset: str
    compare: str
    max_spikes: int | None
    inexact: str = ""


def integer_neuron(dn: DiscreteNeuron) -> IntegerNeuron:
    """The integer semantics that execute ``dn`` (see :class:`IntegerNeuron`).

    snnTorch's step is the NIR step except in three cases: ``reset_delay=True`` with a
    subtractive reset (the threshold is subtracted one step late, undecayed) or with a
    reset to zero on a synaptic or recurrent neuron (the whole update of the step after
    a spike is discarded); and, without delay, a subtractive reset whose membrane stays
    above threshold (snnTorch then compares against twice the threshold). ``Leaky`` with
    reset to zero and delay is exactly a hard reset (its stored membrane is zeroed
    before the decay)."""
    reset = "zero" if dn.reset == "hard" else "subtract"
    inexact = ""
    if dn.step == "snntorch" and dn.reset_delay:
        if dn.reset == "subtract":
            inexact = ("snnTorch reset_delay=True subtracts the threshold one step late "
                       "(undecayed); no integer neuron does that, the nearest subtracts at once")
        elif dn.nir_type != "LIF" or dn.recurrent:
            inexact = ("snnTorch reset_delay=True with reset to zero discards the whole update "
                       "of the step after a spike (Synaptic, RLeaky, RSynaptic); no integer "
                       "neuron does that, the nearest resets at once")
    return IntegerNeuron(reset, dn.threshold_op, dn.max_spikes, inexact)


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


def _rockpool_gain(r: np.ndarray, tau: np.ndarray, dt: float) -> np.ndarray:
    """Rockpool writes ``r = tau·exp(-dt/tau)/dt`` for a per-step input gain of 1; any
    other ``r`` scales the gain proportionally."""
    return r * dt / (tau * np.exp(-dt / tau))


def discretize_neuron(
    name: str, node: nir.NIRNode, dt: float, convention: Convention
) -> DiscreteNeuron:
    """Per-step parameters of NIR neuron ``node`` for time step ``dt`` (seconds)."""
    if not (dt > 0 and math.isfinite(dt)):
        raise GraphError(f"invalid dt={dt!r}: it must be a positive number of seconds")
    conv = convention

    def arr(x, default=0.0):
        return np.asarray(default if x is None else x, dtype=np.float64)

    def tau_of(x):
        t = arr(x)
        return t / dt if conv.tau_times_dt else t

    if isinstance(node, (nir.LIF, nir.LI)):
        tau = tau_of(node.tau)
        a = _frac(tau, dt, conv.decay, "tau", name)
        r, v_leak = arr(node.r), arr(node.v_leak)
        shape = np.broadcast(a, r, v_leak).shape
        gain = _rockpool_gain(r, tau, dt) if conv.gains == "rockpool" else a * r
        d = dict(alpha=np.zeros(shape), beta=1.0 - a, in_gain=gain, v_bias=a * v_leak)
    elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        tau_syn, tau_mem = tau_of(node.tau_syn), tau_of(node.tau_mem)
        a_s = _frac(tau_syn, dt, conv.decay, "tau_syn", name)
        a_m = _frac(tau_mem, dt, conv.decay, "tau_mem", name)
        r, v_leak, w_in = arr(node.r), arr(node.v_leak), arr(getattr(node, "w_in", 1.0), 1.0)
        if conv.gains == "norse":  # i += x; v += a_m (v_leak - v + r i)
            gain = a_m * r * w_in
        elif conv.gains == "rockpool":  # i = exp(-dt/tau_syn) (i + x); v = beta v + i
            gain = _rockpool_gain(r, tau_mem, dt) * (1.0 - a_s) * w_in
        else:
            gain = a_m * r * a_s * w_in
        d = dict(alpha=1.0 - a_s, beta=1.0 - a_m, in_gain=gain, v_bias=a_m * v_leak)
    elif isinstance(node, (nir.IF, nir.I)):
        r = arr(node.r)
        z = np.zeros(r.shape)
        gain = r if conv.gains in ("snn2hw", "norse") else r * dt
        d = dict(alpha=z, beta=np.ones(r.shape), in_gain=gain, v_bias=z)
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
        threshold_op=conv.threshold_op,
        reset=conv.reset,
        max_spikes=conv.max_spikes if spiking else 1,
        reset_delay=conv.reset_delay,
        step=conv.step,
        **out,
    )


def with_reset(dn: DiscreteNeuron, reset: str) -> DiscreteNeuron:
    """A copy of ``dn`` with another reset mode (user override of the convention)."""
    return replace(dn, reset=reset)
