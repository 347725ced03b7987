"""The bundled example training configs (package data ``snn2hw/examples/*.toml``).

``snn2hw train digits_lif`` names one of them; a path (anything ending in ``.toml`` or
holding a path separator, or an existing file) is used as given. Found with
:mod:`importlib.resources`, so an installed wheel has them too.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

from snn2hw.common.errors import ConfigError


def examples_dir() -> Path:
    """The folder of the bundled example configs."""
    return Path(str(resources.files("snn2hw") / "examples"))


def list_examples() -> list[str]:
    """Names of the bundled example configs (file stems, sorted)."""
    return sorted(p.stem for p in examples_dir().glob("*.toml"))


def resolve_config(name_or_path: str | Path) -> Path:
    """A config path: an existing file or path as given, else a bundled config by name."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    looks_like_path = text.endswith(".toml") or os.sep in text or "/" in text
    if path.is_file() or looks_like_path or isinstance(name_or_path, Path):
        return path
    bundled = examples_dir() / f"{text}.toml"
    if bundled.is_file():
        return bundled
    raise ConfigError(
        f"config '{text}' is neither a file nor a bundled example; "
        f"bundled: {', '.join(list_examples()) or '(none)'}"
    )
