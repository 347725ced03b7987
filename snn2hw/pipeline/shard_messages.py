"""The messages sharded runs send between ranks: a shard to run and its result, as bytes.

No pickle: in a multi-machine run (``torchrun --nnodes``) the bytes come over the network
from another process, and unpickling them would run whatever code they name. A message is
an uncompressed zip of a JSON header and ``.npy`` members read with
``allow_pickle=False`` (numeric arrays only); the quantized graph of a job travels in its
own ``.qgraph`` format and is read back with :meth:`QGraph.load`, with its validation and
size caps. Anything else in a message is refused with :class:`ShardMessageError`.
"""

from __future__ import annotations

import io
import json
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.backends.base import ActivityCounters, SimResult
from snn2hw.common.errors import Snn2hwError
from snn2hw.quant.qgraph import QGraph

__all__ = ["Job", "ShardMessageError", "decode_job", "decode_result", "encode_job",
           "encode_result"]

_NUMERIC = "biuf"  # bool, signed, unsigned, float: what a run's arrays hold


class ShardMessageError(Snn2hwError):
    """A message from another rank is not one snn2hw wrote."""


@dataclass
class Job:
    """One shard of one backend run."""

    backend: str
    graph: QGraph
    ints: np.ndarray
    num_steps: int | None
    device: str
    record_state: bool
    batch_size: int


# ----- container ---------------------------------------------------------------------------
class _Writer:
    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.zf = zipfile.ZipFile(self.buf, "w", zipfile.ZIP_STORED)
        self.count = 0

    def array(self, a: np.ndarray) -> str:
        ref = f"a{self.count}.npy"
        self.count += 1
        out = io.BytesIO()
        np.save(out, np.ascontiguousarray(a), allow_pickle=False)
        self.zf.writestr(ref, out.getvalue())
        return ref

    def finish(self, header: dict[str, Any]) -> bytes:
        self.zf.writestr("header.json", json.dumps(header))
        self.zf.close()
        return self.buf.getvalue()


class _Reader:
    def __init__(self, data: bytes, kind: str) -> None:
        try:
            self.zf = zipfile.ZipFile(io.BytesIO(data))
            self.header = json.loads(self.zf.read("header.json"))
        except (zipfile.BadZipFile, KeyError, ValueError) as exc:
            raise ShardMessageError(f"a {kind} message from another rank is damaged ({exc})") \
                from None
        if not isinstance(self.header, dict) or self.header.get("kind") != kind:
            raise ShardMessageError(f"expected a {kind} message from another rank")

    def array(self, ref: Any) -> np.ndarray:
        try:
            a = np.load(io.BytesIO(self.zf.read(str(ref))), allow_pickle=False)
        except (KeyError, ValueError, OSError) as exc:
            raise ShardMessageError(f"array {ref!r} of a message is unreadable ({exc})") \
                from None
        if a.dtype.kind not in _NUMERIC:
            raise ShardMessageError(f"array {ref!r} of a message has dtype {a.dtype}")
        return a

    def arrays(self, refs: Any) -> dict[str, np.ndarray] | None:
        if refs is None:
            return None
        return {str(k): self.array(v) for k, v in dict(refs).items()}


# ----- jobs --------------------------------------------------------------------------------
def encode_job(job: Job) -> bytes:
    w = _Writer()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shard.qgraph"
        job.graph.save(path)
        w.zf.writestr("graph.qgraph", path.read_bytes())
    return w.finish({"kind": "job", "backend": job.backend, "ints": w.array(job.ints),
                     "num_steps": job.num_steps, "device": job.device,
                     "record_state": bool(job.record_state),
                     "batch_size": int(job.batch_size)})


def decode_job(data: bytes) -> Job:
    r = _Reader(data, "job")
    h = r.header
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "shard.qgraph"
        try:
            path.write_bytes(r.zf.read("graph.qgraph"))
        except KeyError:
            raise ShardMessageError("a job message from rank 0 carries no graph") from None
        graph = QGraph.load(path)
    graph.folder = None  # metadata files are rank 0's business, not a worker's
    return Job(str(h["backend"]), graph, r.array(h["ints"]),
               None if h["num_steps"] is None else int(h["num_steps"]), str(h["device"]),
               bool(h["record_state"]), int(h["batch_size"]))


# ----- results -----------------------------------------------------------------------------
def encode_result(res: SimResult) -> bytes:
    w = _Writer()

    def refs(traces: dict[str, np.ndarray] | None) -> dict[str, str] | None:
        return None if traces is None else {k: w.array(v) for k, v in traces.items()}

    counters = None
    if res.counters is not None:
        counters = {key: {layer: (w.array(val) if isinstance(val, np.ndarray) else int(val))
                          for layer, val in per_layer.items()}
                    for key, per_layer in res.counters.as_dict().items()}
    return w.finish({"kind": "result", "backend": res.backend, "spikes": refs(res.spikes),
                     "u": refs(res.u), "v": refs(res.v), "wall_s": res.wall_s,
                     "device": res.device, "counters": counters, "build_s": res.build_s,
                     "lava_steps": res.lava_steps, "buffer_resets": res.buffer_resets})


def decode_result(data: bytes) -> SimResult:
    r = _Reader(data, "result")
    h = r.header
    counters = None
    if h.get("counters") is not None:
        counters = ActivityCounters.from_dict({
            key: {layer: (r.array(val) if isinstance(val, str) else int(val))
                  for layer, val in per_layer.items()}
            for key, per_layer in h["counters"].items()})
    spikes = r.arrays(h.get("spikes"))
    if spikes is None:
        raise ShardMessageError("a result message from another rank carries no spikes")
    return SimResult(str(h["backend"]), spikes, r.arrays(h.get("u")), r.arrays(h.get("v")),
                     float(h["wall_s"]), device=str(h["device"]), counters=counters,
                     build_s=h.get("build_s"), lava_steps=h.get("lava_steps"),
                     buffer_resets=h.get("buffer_resets"))
