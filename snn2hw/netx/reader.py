"""Read lava-dl netx network files (``.net``, HDF5) into plain Python values.

The format is lava-dl's "HDF5 description protocol" (``src/lava/lib/dl/netx/README.md``
and ``hdf5.py`` in https://github.com/lava-nc/lava-dl, snapshot d825ac5): a group
``layer`` holding groups ``0 .. n-1`` in order from input to output, each with at least
``type`` and ``shape`` (stored C, H, W, i.e. z, y, x) and, for neuron layers, a ``neuron``
group (``type``, ``iDecay``, ``vDecay``, ``vThMant``, ``refDelay``, ...). An optional
``simulation`` group holds ``Ts`` and ``tSample``.

This module only parses: it checks sizes, types and keys and returns :class:`NetxNetwork`;
what the values mean is decided in :mod:`snn2hw.netx.to_qgraph`. Every failure is a one-line
:class:`NetxError` naming the file and, where there is one, the layer index.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from snn2hw.common.errors import GraphError

HDF5_SIGNATURE = b"\x89HDF\r\n\x1a\n"
MAX_NETX_BYTES = 512 * 2**20
"""Largest total array size a netx file may declare (``SNN2HW_MAX_NETX_BYTES`` overrides)."""
MAX_LAYERS = 1024
KNOWN_LAYER_TYPES = ("input", "dense", "conv", "pool", "flatten")
"""Layer types snn2hw reads; lava-dl also writes ``dense_rec``, ``dense_comp``, ``convT``,
``unpool``, ``average`` and ``concat`` (refused by :mod:`snn2hw.netx.to_qgraph` with a reason)."""
OTHER_LAYER_TYPES = ("dense_rec", "dense_comp", "convT", "unpool", "average", "concat")


class NetxError(GraphError):
    """A netx file is unreadable, malformed or uses something snn2hw cannot run exactly."""


@dataclass
class NetxLayer:
    """One entry of the ``layer`` group: its index, ``type``, ``shape`` (as stored: C, H, W
    or features), the neuron parameters and every other dataset, as numpy values."""

    index: int
    type: str
    shape: tuple[int, ...]
    neuron: dict[str, Any] | None
    data: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"layer {self.index} ('{self.type}')"


@dataclass
class NetxNetwork:
    """A parsed netx file: its layers in order and the ``simulation`` values if present."""

    path: Path
    layers: list[NetxLayer]
    simulation: dict[str, float] = field(default_factory=dict)


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def hdf5_kind(path: str | os.PathLike[str]) -> str | None:
    """What an HDF5 file holds, by its top-level groups: ``"netx"`` (a ``layer`` group of
    numbered layers), ``"nir"`` (a ``node`` group), ``"hdf5"`` (another HDF5 file), or
    None when the file is not HDF5 at all or cannot be opened."""
    p = Path(path)
    try:
        with open(p, "rb") as fh:
            if fh.read(8) != HDF5_SIGNATURE:
                return None
    except OSError:
        return None
    import h5py

    try:
        with h5py.File(p, "r") as fh:
            keys = set(fh.keys())
            if "layer" in keys and isinstance(fh["layer"], h5py.Group):
                return "netx"
            if "node" in keys:
                return "nir"
    except Exception:  # noqa: BLE001 - a damaged HDF5 file: still an HDF5 file
        return "hdf5"
    return "hdf5"


def describe_file(path: str | os.PathLike[str]) -> str:
    """What a model file actually is, by its first bytes, in words for an error message."""
    kind = hdf5_kind(path)
    if kind == "netx":
        return "a lava-dl netx network (HDF5 with a 'layer' group)"
    if kind == "nir":
        return "a NIR graph (HDF5 with a 'node' group)"
    if kind == "hdf5":
        return "an HDF5 file that is neither a NIR graph nor a netx network"
    try:
        with open(path, "rb") as fh:
            head = fh.read(512)
    except OSError as exc:
        return f"an unreadable file ({_one_line(exc)})"
    if head.startswith(b"PK\x03\x04"):
        import zipfile

        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except Exception:  # noqa: BLE001 - a damaged zip is still named as one
            return "a damaged zip archive"
        if "graph.json" in names:
            return "a snn2hw quantized graph (.qgraph)"
        return "a zip archive (a PyTorch checkpoint?)"
    if head.startswith(b"\x80"):
        return "a pickle file (a legacy PyTorch checkpoint?)"
    if len(head) > 8 and int.from_bytes(head[:8], "little") < 2**24 and head[8:9] == b"{":
        return "a safetensors file (a checkpoint)"
    return "not a model file snn2hw knows (no HDF5, zip or pickle header)"


def is_netx_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a netx network file (by content, not by name)."""
    return hdf5_kind(path) == "netx"


def _text(value: Any) -> str:
    v = np.asarray(value)
    if v.shape:
        v = v.reshape(-1)[0]
    else:
        v = v[()]
    if isinstance(v, bytes):
        return v.decode("ascii", errors="replace")
    return str(v)


def _read_group(group: Any, where: str, path: Path) -> dict[str, Any]:
    """Datasets of one group as numpy values (strings for ``type``); nested groups are
    returned as dicts (e.g. ``weight/real``)."""
    import h5py

    out: dict[str, Any] = {}
    for key in group.keys():
        obj = group[key]
        if isinstance(obj, h5py.Group):
            out[key] = _read_group(obj, f"{where}/{key}", path)
            continue
        if key == "type":
            out[key] = _text(obj[()])
            continue
        if obj.dtype.kind not in "biuf":
            raise NetxError(f"{path}: {where}/{key} has dtype {obj.dtype}, expected numbers")
        out[key] = np.asarray(obj[()])
    return out


def _check_size(fh: Any, path: Path) -> None:
    import h5py

    limit = int(os.environ.get("SNN2HW_MAX_NETX_BYTES", MAX_NETX_BYTES))
    total = 0

    def visit(_name: str, obj: Any) -> None:
        nonlocal total
        if isinstance(obj, h5py.Dataset):
            total += int(obj.size or 0) * int(obj.dtype.itemsize)

    fh.visititems(visit)
    if total > limit:
        raise NetxError(
            f"{path}: the file declares {total / 2**20:.0f} MiB of arrays, over the "
            f"{limit / 2**20:.0f} MiB limit; set SNN2HW_MAX_NETX_BYTES to allow it"
        )


def read_netx(path: str | os.PathLike[str]) -> NetxNetwork:
    """Parse a netx ``.net`` file. Raises :class:`NetxError` (one line) when the file is
    missing, not HDF5, truncated, too large, or not laid out as lava-dl writes it."""
    p = Path(path)
    if not p.is_file():
        raise NetxError(f"netx file not found: {p}")
    kind = hdf5_kind(p)
    if kind != "netx" and kind != "hdf5":
        raise NetxError(f"{p} is {describe_file(p)}, not a lava-dl netx network")
    import h5py

    try:
        with h5py.File(p, "r") as fh:
            if "layer" not in fh:
                raise NetxError(f"{p}: an HDF5 file without a 'layer' group, not a lava-dl "
                                "netx network")
            _check_size(fh, p)
            group = fh["layer"]
            keys = list(group.keys())
            if not keys:
                raise NetxError(f"{p}: the 'layer' group is empty")
            if len(keys) > MAX_LAYERS:
                raise NetxError(f"{p}: {len(keys)} layers, more than the {MAX_LAYERS} read")
            if sorted(keys, key=lambda k: (len(k), k)) != [str(i) for i in range(len(keys))]:
                raise NetxError(f"{p}: layers must be named 0..{len(keys) - 1}, found "
                                f"{sorted(keys)[:5]}")
            layers = [_read_layer(group[str(i)], i, p) for i in range(len(keys))]
            sim = {}
            if "simulation" in fh and isinstance(fh["simulation"], h5py.Group):
                for k in ("Ts", "tSample"):
                    if k in fh["simulation"]:
                        sim[k] = float(np.asarray(fh["simulation"][k][()]).reshape(-1)[0])
    except NetxError:
        raise
    except Exception as exc:  # noqa: BLE001 - h5py raises OSError/KeyError/RuntimeError on damage
        raise NetxError(f"{p}: cannot read the netx file, truncated or damaged HDF5 "
                        f"({_one_line(exc)})") from None
    return NetxNetwork(p, layers, sim)


def _read_layer(group: Any, index: int, path: Path) -> NetxLayer:
    import h5py

    if not isinstance(group, h5py.Group):
        raise NetxError(f"{path}: layer {index} is not a group")
    data = _read_group(group, f"layer/{index}", path)
    if "type" not in data:
        raise NetxError(f"{path}: layer {index} has no 'type'")
    kind = str(data.pop("type"))
    if kind not in KNOWN_LAYER_TYPES and kind not in OTHER_LAYER_TYPES:
        raise NetxError(
            f"{path}: layer {index} has unknown block type '{kind}' (netx types: "
            f"{', '.join(KNOWN_LAYER_TYPES + OTHER_LAYER_TYPES)})"
        )
    if "shape" not in data:
        raise NetxError(f"{path}: layer {index} ('{kind}') has no 'shape'")
    shape = tuple(int(v) for v in np.atleast_1d(data.pop("shape")).tolist())
    if not shape or any(s <= 0 for s in shape):
        raise NetxError(f"{path}: layer {index} ('{kind}') has shape {list(shape)}")
    neuron = data.pop("neuron", None)
    if neuron is not None and not isinstance(neuron, dict):
        raise NetxError(f"{path}: layer {index} ('{kind}'): 'neuron' must be a group")
    return NetxLayer(index, kind, shape, neuron, data)
