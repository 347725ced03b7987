"""The integer ONNX model as a backend: run a model written by
:func:`snn2hw.exporters.onnx_int.export_qgraph_onnx` with onnxruntime (CPU).

:class:`OnnxIntRunner` drives an existing model file (a step model in a Python time loop
carrying the state from one call to the next, docs/onnx.md; a ``time_loop`` Scan model in
one call); :func:`run` takes a quantized graph like the other backends, writes its step
model to a temporary file and runs it.

May import: onnxruntime (lazily), numpy, ``snn2hw.quant``, ``snn2hw.common`` and the writer
``snn2hw.exporters.onnx_int`` (the one cross-package import); never another backend.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.backends.base import PreparingBackend, SimResult, check_node_kinds
from snn2hw.common.errors import GraphError, MissingDependencyError
from snn2hw.common.frames import integer_frames
from snn2hw.exporters.onnx_int import (
    FORMAT_VERSION,
    SCAN_FORMAT,
    STEP_FORMAT,
    SUPPORTED_KINDS,
    export_qgraph_onnx,
)
from snn2hw.quant.qgraph import QGraph

__all__ = ["BACKEND", "NODE_KINDS", "OnnxBackend", "OnnxIntResult", "OnnxIntRunner", "run"]

# Every qgraph node kind the integer ONNX writer implements (docs/onnx.md).
NODE_KINDS = frozenset(SUPPORTED_KINDS)


@dataclass
class OnnxIntResult:
    """Outputs of :meth:`OnnxIntRunner.run_full`: per LIF node, spikes ``[N, B, *shape]``
    (uint8: 0/1, or a multi-spike LIF's counts; int32 for ``max_spikes > 255``)
    and (with ``record_state``) int64 ``u``/``v`` after each step; ``wall_s``: loop seconds."""

    spikes: dict[str, np.ndarray]
    u: dict[str, np.ndarray] | None
    v: dict[str, np.ndarray] | None
    wall_s: float


class OnnxIntRunner:
    """Run a model written by :func:`~snn2hw.exporters.onnx_int.export_qgraph_onnx` with
    onnxruntime (CPU): a step model in a Python time loop carrying the state from one call
    to the next (docs/onnx.md), a ``time_loop`` (Scan) model in one call. ``threads``:
    onnxruntime intra-op threads (None: its default)."""

    def __init__(self, path: str | Path, *, threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise MissingDependencyError(
                "onnxruntime is not installed: run `pip install onnxruntime`") from None

        path = Path(path)
        if not path.is_file():
            raise GraphError(f"ONNX model not found: {path}")
        opts = ort.SessionOptions()
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
        self.session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        meta = dict(self.session.get_modelmeta().custom_metadata_map)
        if meta.get("format") not in (STEP_FORMAT, SCAN_FORMAT):
            raise GraphError(
                f"{path}: not a snn2hw integer ONNX model (format {meta.get('format')!r}); "
                "write one with export_qgraph_onnx"
            )
        self.time_loop = meta["format"] == SCAN_FORMAT
        if int(meta.get("version", -1)) > FORMAT_VERSION:
            raise GraphError(f"{path}: model format version {meta['version']} is newer than "
                             f"this snn2hw supports ({FORMAT_VERSION}); upgrade snn2hw")
        self.metadata = meta
        self.num_steps = int(meta["num_steps"])
        self.depth = int(meta["depth"])
        self.input_name = meta["input"]
        self.input_shape = tuple(json.loads(meta["input_shape"]))
        self.message_bits = int(meta["message_bits"])
        self.lif_shapes = {k: tuple(v) for k, v in json.loads(meta["lif_shapes"]).items()}
        # what each LIF emits per step: 1 = 0/1 spikes, above = a count (multi-spike);
        # models written before multi-spike output carry no such key
        max_spikes = json.loads(meta.get("max_spikes", "{}"))
        self.spike_dtypes = {
            k: np.dtype(np.uint8 if int(max_spikes.get(k, 1)) <= 255 else np.int32)
            for k in self.lif_shapes
        }
        self.state = json.loads(meta["state"])  # output name -> input name of the next step
        self._inputs = {i.name: i for i in self.session.get_inputs()}
        self._outputs = [o.name for o in self.session.get_outputs()]

    def default_num_steps(self) -> int:
        """``num_steps + depth``: enough steps to flush the last frame to the output."""
        return self.num_steps + self.depth

    def _check_inputs(self, inputs: Any) -> np.ndarray:
        x = integer_frames(inputs)
        want = ", ".join(["F", "B", *(str(s) for s in self.input_shape)])
        if x.ndim != 2 + len(self.input_shape) or tuple(x.shape[2:]) != self.input_shape:
            raise GraphError(f"input frames for '{self.input_name}' must have shape [{want}] "
                             f"(time-major), got {list(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise GraphError(f"input frames are empty: shape {list(x.shape)}")
        x = x.astype(np.int64)
        lo, hi = int(x.min()), int(x.max())
        top = 1 if self.message_bits == 0 else 2**self.message_bits - 1
        if lo < 0 or hi > top:
            raise GraphError(
                f"input frames for '{self.input_name}' must lie in 0..{top} "
                f"(message_bits={self.message_bits}), got {lo}..{hi}"
            )
        return x

    def run(self, inputs: Any, num_steps: int | None = None) -> dict[str, np.ndarray]:
        """Spikes (or counts) of every LIF node ``[N, B, *shape]``, for integer frames
        ``[F, B, *input_shape]`` (zeros after frame F); N defaults to num_steps + depth."""
        return self.run_full(inputs, num_steps).spikes

    def run_full(self, inputs: Any, num_steps: int | None = None,
                 record_state: bool = False) -> OnnxIntResult:
        """As :meth:`run`, optionally also recording int64 ``u``/``v`` after each step
        (step models only: a Scan model returns spikes only)."""
        n_steps = self.default_num_steps() if num_steps is None else int(num_steps)
        if n_steps < 1:
            raise GraphError(f"num_steps must be >= 1, got {n_steps}")
        x = self._check_inputs(inputs)
        n_frames, batch = x.shape[0], x.shape[1]
        t0 = time.perf_counter()
        if self.time_loop:
            if record_state:
                raise GraphError("a time_loop (Scan) model returns spikes only; export a "
                                 "step model to record u and v")
            frames = np.zeros((n_steps, *x.shape[1:]), np.int64)  # zeros after frame F
            frames[: min(n_steps, n_frames)] = x[:n_steps]
            names = [f"{k}.spikes" for k in self.lif_shapes]
            out = self.session.run(names, {"frames": frames})
            spk = dict(zip(self.lif_shapes, out, strict=True))
            return OnnxIntResult(spk, None, None, time.perf_counter() - t0)
        feed: dict[str, np.ndarray] = {
            name: np.zeros((batch, *(int(d) for d in i.shape[1:])), np.int64)
            for name, i in self._inputs.items() if name != "x"
        }
        zero_frame = np.zeros((batch, *self.input_shape), np.int64)
        spikes = {k: np.zeros((n_steps, batch, *s), self.spike_dtypes[k])
                  for k, s in self.lif_shapes.items()}
        u_rec = v_rec = None
        if record_state:
            u_rec = {k: np.zeros(a.shape, np.int64) for k, a in spikes.items()}
            v_rec = {k: np.zeros(a.shape, np.int64) for k, a in spikes.items()}
        for n in range(n_steps):
            feed["x"] = x[n] if n < n_frames else zero_frame
            res = dict(zip(self._outputs, self.session.run(self._outputs, feed), strict=True))
            for lif in self.lif_shapes:
                spikes[lif][n] = res[f"{lif}.s"]
                if u_rec is not None and v_rec is not None:
                    u_rec[lif][n] = res[f"{lif}.u_next"]
                    v_rec[lif][n] = res[f"{lif}.v_next"]
            for out_name, in_name in self.state.items():
                feed[in_name] = res[out_name]
        wall = time.perf_counter() - t0
        return OnnxIntResult(spikes, u_rec, v_rec, wall)


def run(
    graph: QGraph,
    inputs: Any,
    num_steps: int | None = None,
    record_state: bool = False,
    *,
    threads: int | None = None,
) -> OnnxIntResult:
    """Run ``graph`` on integer input frames ``[F, B, *input_shape]`` for ``num_steps``
    steps (default ``graph.num_steps + graph.depth()``) through its integer ONNX step model
    (written to a temporary file, removed afterwards) in onnxruntime.

    Returns spikes of every LIF ``[N, B, *shape]`` (uint8; counts of a multi-spike LIF,
    int32 above 255) and, with ``record_state``, the
    int64 ``u``/``v`` after each step, like the other integer backends. Raises
    :class:`GraphError` on a graph the exporter refuses or bad inputs."""
    with tempfile.TemporaryDirectory(prefix="snn2hw-onnx-") as tmp:
        path = Path(tmp) / "step.onnx"
        export_qgraph_onnx(graph, path)
        return OnnxIntRunner(path, threads=threads).run_full(inputs, num_steps, record_state)


class _Prepared:
    def __init__(self, graph: QGraph) -> None:
        self.graph = graph

    def run(self, ints: Any, num_steps: int | None = None,
            record_state: bool = False) -> SimResult:
        t0 = time.perf_counter()
        res = run(self.graph, ints, num_steps, record_state)
        u, v = (res.u, res.v) if record_state else (None, None)
        return SimResult(OnnxBackend.name, res.spikes, u, v, time.perf_counter() - t0)


class OnnxBackend(PreparingBackend):
    """The integer ONNX model under onnxruntime behind :class:`snn2hw.backends.base.Backend`
    (registry name ``onnx``); all samples in one call, on the CPU."""

    name = "onnx"
    node_kinds = NODE_KINDS
    records_state = True
    uses_device = False
    counts_activity = False
    splits_batches = False
    features = frozenset({"delay", "multi_spike", "periodic_reset"})

    def prepare(self, graph: QGraph, device: str = "cpu") -> _Prepared:
        check_node_kinds(graph, self.name, self.node_kinds, self.features)
        return _Prepared(graph)



BACKEND = OnnxBackend()
