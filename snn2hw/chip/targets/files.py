"""Finding and reading target files: the targets folder, target names, TOML parsing.

Where the files are: the repository's ``targets/`` folder next to the ``snn2hw`` package
(this file is ``snn2hw/chip/targets/files.py``, so the repository root is
``Path(__file__).resolve().parents[3]``); if that folder does not exist (an installed wheel
does not ship it), the folder named by the environment variable ``SNN2HW_TARGETS_DIR``.
Any file can also be loaded by path.

May import: ``snn2hw.common`` and the standard library; nothing else of ``snn2hw``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any

from snn2hw.common.errors import TargetError

TARGETS_ENV = "SNN2HW_TARGETS_DIR"
# snn2hw/chip/targets/files.py -> parents: targets, chip, snn2hw, <repository root>
_REPO_ROOT = Path(__file__).resolve().parents[3]
_REPO_TARGETS = _REPO_ROOT / "targets"
BASELINES_FILE = "baselines.toml"


def targets_dir() -> Path:
    """The folder holding the target files (repo ``targets/``, else ``$SNN2HW_TARGETS_DIR``)."""
    if _REPO_TARGETS.is_dir():
        return _REPO_TARGETS
    env = os.environ.get(TARGETS_ENV)
    if env:
        path = Path(env).expanduser()
        if path.is_dir():
            return path
        raise TargetError(f"{TARGETS_ENV}={env} is not a folder")
    raise TargetError(
        f"no targets folder: {_REPO_TARGETS} does not exist and {TARGETS_ENV} is not set; "
        "point it at a folder of target .toml files"
    )


def list_targets() -> list[str]:
    """Names of the targets in :func:`targets_dir` (file stems, sorted; baselines excluded)."""
    return sorted(p.stem for p in targets_dir().glob("*.toml") if p.name != BASELINES_FILE)


def _display(path: Path) -> str:
    """Path as shown in messages: ``targets/x.toml`` for repo files, else as given."""
    try:
        return str(path.resolve().relative_to(_REPO_ROOT))
    except ValueError:
        return str(path)


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise TargetError(f"target file {path} does not exist")
        return path
    folder = targets_dir()
    path = folder / f"{text}.toml"
    if text == Path(BASELINES_FILE).stem or not path.is_file():
        known = ", ".join(list_targets()) or "(none)"
        raise TargetError(
            f"unknown target '{text}'; known targets: {known} (or pass a path to a .toml file)"
        )
    return path


def _read_toml(path: Path) -> dict[str, Any]:
    disp = _display(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetError(f"cannot read {disp}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TargetError(f"{disp} is not UTF-8 text") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        # tomllib's message ends with "(at line L, column C)"
        raise TargetError(f"{disp}: TOML syntax error: {exc}") from None

