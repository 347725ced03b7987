"""The float model a quantized graph came from: its exported NIR file, executed in torch.

One place rebuilds it (compare's float backend, measured GPU energy and the float ONNX
export all need it), so dt, convention and reset are resolved the same way everywhere.
"""

from __future__ import annotations

from pathlib import Path

from snn2hw.common.atomic_io import file_sha256
from snn2hw.common.errors import Snn2hwError
from snn2hw.nir import NIRNet, read_nir, resolve_timing
from snn2hw.quant.qgraph import QGraph


def nir_path_for(graph: QGraph, folder: Path) -> Path:
    """The NIR file named in ``graph``'s metadata, inside ``folder`` (the qgraph's folder).

    The name must be a plain file name (no folder, no ``..``: metadata never makes us read
    outside the artifact's folder), and when the graph records the NIR file's SHA-256 the
    file must match it, so a re-export interrupted between its two files can't pair a new
    ``.nir`` with an old ``.qgraph``."""
    name = str(graph.metadata.get("nir_file", ""))
    if name and (Path(name).name != name or name in (".", "..")):
        raise Snn2hwError(f"the quantized graph names its NIR file as {name!r}; only a file "
                          "name inside the artifact's folder is accepted")
    path = Path(folder) / name
    if not name or not path.is_file():
        raise Snn2hwError(
            f"the float model needs the exported NIR file next to the qgraph ({path}); "
            "re-run `snn2hw export` to write both"
        )
    want = graph.metadata.get("nir_sha256")
    if want and file_sha256(path) != want:
        raise Snn2hwError(
            f"{path} is not the NIR file this quantized graph was made from (SHA-256 differs: "
            "an interrupted or different export?); re-run `snn2hw export`"
        )
    return path


def float_net_for(graph: QGraph, folder: Path, nir_path: Path | None = None) -> NIRNet:
    """The float :class:`~snn2hw.nir.NIRNet` of ``graph`` (eval mode), timed like the chip:
    dt, neuron convention and reset come from the quantized graph's metadata."""
    g = read_nir(nir_path if nir_path is not None else nir_path_for(graph, folder))
    dt, conv, _ = resolve_timing(g, graph.dt, graph.metadata.get("convention"))
    return NIRNet(g, dt, conv, reset=graph.metadata.get("reset")).eval()
