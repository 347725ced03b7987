"""Finding and reading target files: the search path, target names, TOML parsing.

Where the files are (the search path, first match wins):

1. every folder named by the environment variable ``SNN2HW_TARGETS_DIR`` (several may be
   given, separated by ``os.pathsep``), in that order: user target files, which take
   precedence over the bundled ones of the same name (also in a source checkout);
2. the bundled targets, package data of ``snn2hw`` (``snn2hw/chip/targets/data/*.toml``),
   read with :mod:`importlib.resources` so that an installed wheel finds them.

Any file can also be loaded by path.

May import: ``snn2hw.common`` and the standard library; nothing else of ``snn2hw``.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from snn2hw.common.errors import TargetError

TARGETS_ENV = "SNN2HW_TARGETS_DIR"
BASELINES_FILE = "baselines.toml"
BUNDLED_SUBDIR = "data"


def bundled_targets_dir() -> Path:
    """The folder of the target files shipped with the package (package data).

    ``importlib.resources`` gives a real folder for a package installed from a wheel or
    a checkout; a package imported from a zip archive is not supported.
    """
    folder = resources.files(__package__) / BUNDLED_SUBDIR
    return Path(str(folder))


def user_targets_dirs() -> list[Path]:
    """The folders named by ``$SNN2HW_TARGETS_DIR`` (``os.pathsep``-separated), in order."""
    env = os.environ.get(TARGETS_ENV, "")
    dirs: list[Path] = []
    for part in env.split(os.pathsep):
        if not part.strip():
            continue
        path = Path(part).expanduser()
        if not path.is_dir():
            raise TargetError(f"{TARGETS_ENV}: {part} is not a folder")
        dirs.append(path)
    return dirs


def search_path() -> list[Path]:
    """Folders searched for a target given by name: user folders first, then bundled."""
    return [*user_targets_dirs(), bundled_targets_dir()]


def targets_dir() -> Path:
    """The bundled targets folder (kept for callers that want one folder; see
    :func:`search_path` for where names are looked up)."""
    return bundled_targets_dir()


def find_target_file(filename: str) -> Path | None:
    """The first ``filename`` on the search path, or ``None``."""
    for folder in search_path():
        path = folder / filename
        if path.is_file():
            return path
    return None


def list_targets() -> list[str]:
    """Names of the targets on the search path (file stems, sorted; baselines excluded)."""
    names = {
        p.stem for folder in search_path() for p in folder.glob("*.toml")
        if p.name != BASELINES_FILE
    }
    return sorted(names)


def _display(path: Path) -> str:
    """Path as shown in messages: ``<bundled>/x.toml`` for bundled files, else as given."""
    try:
        rel = path.resolve().relative_to(bundled_targets_dir().resolve())
    except (ValueError, OSError):
        return str(path)
    return f"snn2hw/chip/targets/data/{rel.as_posix()}"


def _resolve(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or text.endswith(".toml") or os.sep in text or "/" in text:
        path = Path(name_or_path).expanduser()
        if not path.is_file():
            raise TargetError(f"target file {path} does not exist")
        return path
    found = None if text == Path(BASELINES_FILE).stem else find_target_file(f"{text}.toml")
    if found is None:
        known = ", ".join(list_targets()) or "(none)"
        raise TargetError(
            f"unknown target '{text}'; known targets: {known} (or pass a path to a .toml "
            f"file, or add a folder of target files with {TARGETS_ENV})"
        )
    return found


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
