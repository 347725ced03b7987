"""Checkpoints: architecture as plain data plus weights, never pickled classes.

Two formats, chosen by file suffix:

* ``.pt`` — ``torch.save`` of a dict holding only tensors and plain Python data
  (``format``, ``version``, ``arch``, ``config``, ``state_dict``, ``epoch``, ``metrics``,
  optionally ``optimizer`` and ``rng``: the random-number states at the end of the saved
  epoch, as uint8/int64 tensors and plain numbers, so ``--resume`` continues bit-identically);
  loaded with ``torch.load(weights_only=True)``.
* ``.safetensors`` — the weights, with ``arch``/``config``/``metrics`` as JSON metadata.

A file that needs real unpickling (for example a whole pickled ``nn.Module``) is refused
unless the caller passes ``trust_pickle=True`` (CLI: ``--trust-pickle``). Writes are atomic.
Weights that are not finite (NaN/inf, e.g. saved from a diverged run) are refused on load.

May import: ``snn2hw.common`` and ``snn2hw.nn`` (to rebuild the model). Nothing else in snn2hw.
"""

from __future__ import annotations

import io
import json
import pickle
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from snn2hw.common.atomic_io import atomic_write_bytes
from snn2hw.common.errors import CheckpointError, ConfigError

FORMAT = "snn2hw.checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    arch: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    config: dict[str, Any] = field(default_factory=dict)
    epoch: int = 0
    metrics: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None
    rng: dict[str, Any] | None = None  # random-number states (snn2hw.training.runtime.rng_state)

    def build_model(self, source: str = "checkpoint"):
        """Instantiate the :class:`~snn2hw.nn.model.SpikingNet` and load the weights."""
        from snn2hw.nn.model import SpikingNet

        try:
            model = SpikingNet(self.arch)
        except ConfigError as exc:
            raise CheckpointError(f"{source}: unknown or invalid architecture: {exc}") from None
        check_finite(self.state_dict, source)
        expected = model.state_dict()
        for name, value in self.state_dict.items():
            if not isinstance(value, torch.Tensor):
                raise CheckpointError(
                    f"{source}: weight '{name}' is a {type(value).__name__}, not a tensor: "
                    "the file is corrupt or was edited; re-save it from training"
                )
            want = expected.get(name)
            if want is not None and tuple(value.shape) != tuple(want.shape):
                raise CheckpointError(
                    f"{source}: weight '{name}' has shape {list(value.shape)} but the "
                    f"architecture stored with it needs {list(want.shape)}: the file is "
                    "corrupt or was edited; re-save it from training"
                )
        missing, unexpected = model.load_state_dict(self.state_dict, strict=False)
        if missing or unexpected:
            raise CheckpointError(
                f"{source}: weights do not match the architecture "
                f"(missing {sorted(missing)[:3]}, unexpected {sorted(unexpected)[:3]})"
            )
        return model


def save_checkpoint(path: str | Path, ckpt: Checkpoint) -> None:
    """Write ``ckpt`` atomically as ``.pt`` (default) or ``.safetensors``."""
    path = Path(path)
    state = {k: v.detach().cpu().contiguous() for k, v in ckpt.state_dict.items()}
    if path.suffix == ".safetensors":
        from safetensors.torch import save

        meta = {
            "format": FORMAT,
            "version": str(VERSION),
            "arch": json.dumps(ckpt.arch),
            "config": json.dumps(ckpt.config),
            "epoch": str(ckpt.epoch),
            "metrics": json.dumps(ckpt.metrics),
        }
        atomic_write_bytes(path, save(state, metadata=meta))
        return
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "arch": ckpt.arch,
        "config": ckpt.config,
        "state_dict": state,
        "epoch": int(ckpt.epoch),
        "metrics": ckpt.metrics,
    }
    if ckpt.optimizer is not None:
        payload["optimizer"] = ckpt.optimizer
    if ckpt.rng is not None:
        payload["rng"] = ckpt.rng
    buf = io.BytesIO()
    torch.save(payload, buf)
    atomic_write_bytes(path, buf.getvalue())


def load_checkpoint(path: str | Path, *, trust_pickle: bool = False) -> Checkpoint:
    """Load a checkpoint safely; raise :class:`CheckpointError` with a one-line reason."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        return _load_safetensors(path)
    what = _sniff_other_format(path)
    if what:
        raise CheckpointError(f"{path}: {what}, not a snn2hw checkpoint")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if not trust_pickle:
            raise CheckpointError(
                f"{path}: contains pickled Python objects ({_first_line(exc)}); refusing to "
                "unpickle untrusted data. If you trust this file, pass --trust-pickle"
            ) from None
        obj = _load_trusted(path)
    except Exception as exc:  # noqa: BLE001 - a damaged archive fails in many ways (KeyError,
        # RuntimeError, EOFError, BadZipFile, ...); each is one corrupt-file message
        raise CheckpointError(
            f"{path}: corrupt or truncated checkpoint ({type(exc).__name__}: "
            f"{_first_line(exc)}); retrain or restore it from a backup"
        ) from None
    return _from_object(obj, path)


def _sniff_other_format(path: Path) -> str | None:
    """Name the file when its first bytes say it is something else than a torch checkpoint
    (so a NIR graph or a config is not reported as "pickled objects")."""
    with open(path, "rb") as fh:
        head = fh.read(512)
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        from snn2hw.netx.reader import hdf5_kind

        kind = hdf5_kind(path)
        if kind == "netx":
            return ("a lava-dl netx network (HDF5 with a 'layer' group); export it with "
                    "`snn2hw export FILE.net --target loihi --inputs FRAMES.npy`")
        if kind == "nir":
            return "a NIR graph (HDF5); export it with `snn2hw export FILE.nir --target ...`"
        return "an HDF5 file that is neither a NIR graph nor a lava-dl netx network"
    if head.startswith(b"PK\x03\x04"):
        try:
            with zipfile.ZipFile(path) as zf:
                if "graph.json" in zf.namelist():
                    return ("a snn2hw quantized graph; run it with `snn2hw simulate` or "
                            "`snn2hw compare`")
        except Exception:  # noqa: BLE001 - a damaged zip: torch.load names the damage
            return None
        return None
    if head.startswith(b"\x80"):  # pickle protocol 2+: torch's legacy format
        return None
    text = head.lstrip()
    if text[:1] in (b"#", b"[") or text.startswith(b"name") or b"=" in text.split(b"\n")[0]:
        try:
            head.decode("utf-8")
        except UnicodeDecodeError:
            return None
        return ("a text file (a TOML training config?); train it with `snn2hw train FILE`, "
                "then use the checkpoint it writes")
    return None


def _load_trusted(path: Path) -> Any:
    try:
        return torch.load(path, map_location="cpu", weights_only=False)  # trust_pickle=True only
    except Exception as exc:  # noqa: BLE001 - any failure of a trusted load is reported
        raise CheckpointError(
            f"{path}: cannot load even as trusted pickle: {_first_line(exc)}"
        ) from None


def _from_object(obj: Any, path: Path) -> Checkpoint:
    from snn2hw.nn.model import SpikingNet

    if isinstance(obj, SpikingNet):  # only reachable with trust_pickle
        check_finite(obj.state_dict(), str(path))
        return Checkpoint(arch=obj.arch, state_dict=obj.state_dict())
    if isinstance(obj, torch.nn.Module):
        raise CheckpointError(
            f"{path}: holds a pickled {type(obj).__name__}, not a snn2hw model; export it to "
            "NIR with its own framework and use `snn2hw export model.nir`"
        )
    if not isinstance(obj, dict) or obj.get("format") != FORMAT:
        raise CheckpointError(
            f"{path}: not a snn2hw checkpoint (no '{FORMAT}' format tag); "
            "for models from other frameworks export NIR and use `snn2hw export model.nir`"
        )
    if int(obj.get("version", 0)) > VERSION:
        raise CheckpointError(
            f"{path}: checkpoint version {obj.get('version')} is newer than supported"
        )
    for key in ("arch", "state_dict"):
        if not isinstance(obj.get(key), dict):
            raise CheckpointError(f"{path}: checkpoint is missing its '{key}' table")
    check_finite(obj["state_dict"], str(path))
    rng = obj.get("rng")
    return Checkpoint(
        arch=obj["arch"],
        state_dict=obj["state_dict"],
        config=obj.get("config") or {},
        epoch=int(obj.get("epoch", 0)),
        metrics=obj.get("metrics") or {},
        optimizer=obj.get("optimizer"),
        rng=rng if isinstance(rng, dict) else None,
    )


def check_finite(state: dict[str, Any], source: str) -> None:
    """Refuse weights holding NaN or inf (a diverged run): evaluated, they classify at chance
    and look like a bad model instead of a broken file."""
    for name, t in state.items():
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(
            torch.isfinite(t).all()
        ):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(
                f"{source}: weight '{name}' has {bad} non-finite value(s) (NaN/inf); the run "
                "that wrote it diverged: retrain (lower [train].lr) or use an earlier checkpoint"
            )


def _load_safetensors(path: Path) -> Checkpoint:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as fh:
            meta = fh.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise CheckpointError(
            f"{path}: corrupt safetensors checkpoint ({_first_line(exc)})"
        ) from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: safetensors file has no snn2hw architecture metadata")
    check_finite(state, str(path))
    try:
        return Checkpoint(
            arch=json.loads(meta["arch"]),
            state_dict=state,
            config=json.loads(meta.get("config", "{}")),
            epoch=int(meta.get("epoch", 0)),
            metrics=json.loads(meta.get("metrics", "{}")),
        )
    except (KeyError, ValueError) as exc:
        raise CheckpointError(f"{path}: bad metadata in safetensors checkpoint ({exc})") from None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
