"""snn2hw's own fixed-point LIF for Lava: a Lava process and its ``fixed_pt`` process model
executing the general LIF step of docs/qgraph.md, for the Lava backend
(:mod:`snn2hw.backends.lava`).

Lava's bit-accurate LIF (``PyLifModelBitAcc`` / ``PyLifResetModelBitAcc`` in
``lava/proc/lif/models.py``) knows one rule set: reset to zero, strict ``>`` and a binary
spike. Loihi 2's neurons are programmable, so a graph made for it may ask for reset by
subtraction, the ``>=`` comparison or multi-spike output (``max_spikes > 1``). Those LIF
nodes run on :class:`SnnLif` with :class:`PySnnLifModel`, written like Lava's
bit-accurate model (a ``PyLoihiProcessModel`` of the ``LoihiProtocol`` that receives
``a_in``, updates ``u``/``v`` and sends on ``s_out`` in ``run_spk``) but with the step of
docs/qgraph.md "Number formats" and "Multi-spike output" on int64. A multi-spike count
leaves through ``s_out`` as a graded spike (payload); the receiving ``Dense``/``Sparse``
must be built with ``num_message_bits > 0`` to multiply it (``proc/dense/models.py``).
Like ``LIFReset``, it zeroes ``u`` and ``v`` when ``time_step % reset_interval ==
reset_offset`` (the first step of every sample), before integrating that step's input.
A node with a periodic state reset of its own (docs/qgraph.md "Periodic state reset")
adds a second schedule counted within the sample: with ``n = (time_step - reset_offset)
mod reset_interval`` (0 at the sample's first step), ``u`` and ``v`` are also zeroed when
``n % step_interval == step_offset`` (``step_interval`` 0: none).

The same module holds :class:`PyIntInjectorModel`, an integer model of Lava's
``Injector`` (``proc/io/injector.py``), through which the backend streams input frames
chunk by chunk: Lava's own Injector model sends float64, which the bit-accurate ``Dense``
cannot shift when it multiplies graded payloads; this one sends int32 like ``RingBuffer``'s
fixed-point model (``proc/io/source.py``).

Importing this module imports Lava (through :func:`snn2hw.compat.lava_py311.import_lava`,
which installs the Python 3.11 import fix first); the Lava backend imports it lazily. Lava
gets the model through ``exception_proc_model_map`` of the run configuration
(:func:`model_map`), not by scanning this folder. May import: numpy, lava,
``snn2hw.compat``, ``snn2hw.common``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snn2hw.compat.lava_py311 import import_lava

import_lava()

from lava.magma.core.decorator import implements, requires, tag  # noqa: E402
from lava.magma.core.model.py.model import PyLoihiProcessModel  # noqa: E402
from lava.magma.core.model.py.ports import PyInPort, PyOutPort  # noqa: E402
from lava.magma.core.model.py.type import LavaPyType  # noqa: E402
from lava.magma.core.process.ports.ports import InPort, OutPort  # noqa: E402
from lava.magma.core.process.process import AbstractProcess  # noqa: E402
from lava.magma.core.process.variable import Var  # noqa: E402
from lava.magma.core.resources import CPU  # noqa: E402
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol  # noqa: E402
from lava.proc.io.injector import Injector, PyLoihiInjectorModel  # noqa: E402

__all__ = ["PyIntInjectorModel", "PySnnLifModel", "SnnLif", "model_map"]


class SnnLif(AbstractProcess):
    """A LIF population executing docs/qgraph.md's step with the given rules.

    ``shape``: flat ``(n,)``; ``du``, ``dv``, ``vth`` scalars; ``bias_mant``,
    ``bias_exp`` per neuron; ``max_spikes``: largest payload (1: binary spikes);
    ``reset``: ``"zero"`` or ``"subtract"``; ``compare``: ``">"`` or ``">="``;
    ``reset_interval``/``reset_offset``: state reset schedule (as ``LIFReset``; the
    sample boundaries); ``step_interval``/``step_offset``: the node's periodic reset
    within each sample (0: none, module docstring); ``rules``:
    the number formats' arithmetic (``activation_shift``, ``decay_bits``, ``u_bits``,
    ``u_overflow``, ``v_bits``, ``v_overflow``)."""

    def __init__(self, *, shape: tuple[int, ...], du: int, dv: int, vth: int,
                 bias_mant: np.ndarray, bias_exp: np.ndarray, max_spikes: int, reset: str,
                 compare: str, reset_interval: int, reset_offset: int,
                 rules: dict[str, Any], step_interval: int = 0, step_offset: int = 0,
                 name: str | None = None) -> None:
        super().__init__(shape=shape, max_spikes=int(max_spikes), reset=reset,
                         compare=compare, reset_interval=int(reset_interval),
                         reset_offset=int(reset_offset), step_interval=int(step_interval),
                         step_offset=int(step_offset), rules=dict(rules), name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=(1,), init=int(du))
        self.dv = Var(shape=(1,), init=int(dv))
        self.vth = Var(shape=(1,), init=int(vth))
        self.bias_mant = Var(shape=shape, init=np.asarray(bias_mant, np.int64))
        self.bias_exp = Var(shape=shape, init=np.asarray(bias_exp, np.int64))


def _rtz(x: np.ndarray, k: int) -> np.ndarray:
    """``rtz(x, k) = sign(x) * (|x| >> k)`` (docs/qgraph.md "Notation")."""
    return np.sign(x) * (np.abs(x) >> k)


def _ovf(x: np.ndarray, bits: int, rule: str) -> np.ndarray:
    """``ovf(x, n, rule)`` of docs/qgraph.md: one conditional correction each way
    ("wrap", ``+2^(n-1)`` kept) or a symmetric clip ("saturate")."""
    hi = 1 << (bits - 1)
    if rule == "saturate":
        return np.clip(x, -(hi - 1), hi - 1)
    x = np.where(x > hi, x - 2 * hi, x)
    return np.where(x <= -hi, x + 2 * hi, x)


@implements(proc=SnnLif, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnnLifModel(PyLoihiProcessModel):
    """The ``fixed_pt`` model of :class:`SnnLif` (int64 state; the step of docs/qgraph.md)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=24)
    du: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=12)
    dv: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=12)
    vth: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=17)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int64, precision=3)

    def __init__(self, proc_params: Any) -> None:
        super().__init__(proc_params)
        self.max_spikes = int(proc_params["max_spikes"])
        self.subtract = proc_params["reset"] == "subtract"
        self.ge = proc_params["compare"] == ">="
        self.reset_interval = int(proc_params["reset_interval"])
        self.reset_offset = int(proc_params["reset_offset"]) % self.reset_interval
        self.step_interval = int(proc_params.get("step_interval", 0))
        self.step_offset = int(proc_params.get("step_offset", 0))
        r = proc_params["rules"]
        self.sh = int(r["activation_shift"])
        self.db = int(r["decay_bits"])
        self.u_bits, self.u_rule = int(r["u_bits"]), str(r["u_overflow"])
        self.v_bits, self.v_rule = int(r["v_bits"]), str(r["v_overflow"])

    def _resets_now(self) -> bool:
        """A new sample starts (``time_step % reset_interval == reset_offset``) or the
        node's own periodic reset falls on this step of the sample."""
        n = (self.time_step - self.reset_offset) % self.reset_interval  # step in sample
        if n == 0:
            return True
        return self.step_interval > 0 and n % self.step_interval == self.step_offset

    def _reset_state(self) -> None:
        """Zero ``u`` and ``v`` where :meth:`_resets_now`."""
        if self._resets_now():
            self.u[:] = 0
            self.v[:] = 0

    def run_spk(self) -> None:
        a = np.asarray(self.a_in.recv()).astype(np.int64)
        self._reset_state()  # before integrating this step's input
        u = np.asarray(self.u, np.int64)
        v = np.asarray(self.v, np.int64)
        be = np.asarray(self.bias_exp, np.int64)
        bm = np.asarray(self.bias_mant, np.int64)
        b = np.where(be >= 0, bm << np.maximum(be, 0), bm >> np.maximum(-be, 0))
        scale = 1 << self.db
        du, dv, vth = (int(np.asarray(x).ravel()[0]) for x in (self.du, self.dv, self.vth))
        u = _ovf(_rtz(u * (scale - (du + 1)), self.db) + (a << self.sh), self.u_bits,
                 self.u_rule)
        v = _ovf(_rtz(v * (scale - dv), self.db) + u + b, self.v_bits, self.v_rule)
        th = vth << self.sh
        if self.max_spikes == 1:
            n = ((v >= th) if self.ge else (v > th)).astype(np.int64)
        elif self.ge:  # n = min(max_spikes, floor(v / TH)) where v >= TH
            n = np.where(v >= th, np.minimum(self.max_spikes, v // th), 0)
        else:  # n = min(max_spikes, floor((v - 1) / TH)) where v > TH
            n = np.where(v > th, np.minimum(self.max_spikes, (v - 1) // th), 0)
        v = v - n * th if self.subtract else np.where(n > 0, 0, v)
        self.u[:] = u
        self.v[:] = v
        self.s_out.send(n.astype(np.int32))


@implements(proc=Injector, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyIntInjectorModel(PyLoihiInjectorModel):
    """Lava's Injector model with int32 ports: the external channel the runtime builds
    takes its dtype from ``in_port`` (``Runtime._create_external_channels``), and the frames
    leave on ``out_port`` as int32, as from ``RingBuffer``'s ``PySendModelFixed``."""

    in_port: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    out_port: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)


def model_map(procs: list[Any]) -> dict[Any, type]:
    """``exception_proc_model_map`` entries for the run configuration: the class (which
    ``RunConfig.select`` looks up) and each process instance (which Lava's compiler looks
    up first, ``ProcGroupDiGraphs._map_proc_to_model``; without it the compiler imports
    every module of this folder in search of models)."""
    return {SnnLif: PySnnLifModel, **{p: PySnnLifModel for p in procs}}
