"""Training configuration: TOML files validated against one schema.

Unknown keys and wrong types are errors that name the section and key (a typo in a
config must never be silently ignored). The model section is validated when the model is
built (snn2hw.nn.model).

May import: ``snn2hw.common`` only (export and the CLI read configs through it).
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path
from typing import Any

from snn2hw.common.errors import ConfigError

# section -> key -> (accepted types, default)
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "experiment": {
        "name": ((str,), "experiment"),
        "seed": ((int,), 0),
        "device": ((str,), "auto"),
        "out_dir": ((str,), ""),
    },
    "data": {
        "dataset": ((str,), "digits"),
        "data_dir": ((str,), ""),
        "batch_size": ((int,), 64),
        "val_fraction": ((int, float), 0.1),  # of the training data; selection uses it
        "options": ((dict,), {}),
    },
    "encoder": {
        "kind": ((str,), "direct"),
        "gain": ((int, float), 1.0),
        "threshold": ((int, float), 0.05),
    },
    "model": {
        "name": ((str,), ""),
        "input_shape": ((list,), None),
        "neuron": ((dict,), {}),
        "layers": ((list,), None),
        # train with the chip's one-step hop per layer (snn2hw.nn.model, docs/nir.md "Delay")
        "hop_delays": ((bool,), False),
    },
    "train": {
        "epochs": ((int,), 10),
        "num_steps": ((int,), 8),
        "lr": ((int, float), 1e-3),
        "optimizer": ((str,), "adam"),
        "weight_decay": ((int, float), 0.0),
        "scheduler": ((str,), "cosine"),
        "loss": ((str,), "rate_ce"),
        "loss_options": ((dict,), {}),
        "grad_clip": ((int, float), 0.0),
        "max_minutes": ((int, float), 0.0),
        "augment_shift": ((int,), 0),
    },
}
REQUIRED = {("model", "layers")}
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULERS = ("none", "cosine")
DEVICES = ("auto", "cpu", "cuda")


def _type_name(types: tuple[type, ...]) -> str:
    return " or ".join(t.__name__ for t in types)


def validate_config(raw: dict[str, Any], source: str = "config") -> dict[str, Any]:
    """Check ``raw`` against :data:`SCHEMA`; return a copy with defaults filled in."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: top level must be a table")
    unknown = set(raw) - set(SCHEMA)
    if unknown:
        raise ConfigError(
            f"{source}: unknown section(s) {sorted(unknown)}; known: {sorted(SCHEMA)}"
        )
    cfg: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        given = raw.get(section, {})
        if not isinstance(given, dict):
            raise ConfigError(f"{source}: [{section}] must be a table")
        bad = set(given) - set(keys)
        if bad:
            raise ConfigError(
                f"{source}: unknown key(s) {sorted(bad)} in [{section}]; known: {sorted(keys)}"
            )
        out: dict[str, Any] = {}
        for key, (types, default) in keys.items():
            if key in given and not (given[key] is None and default is None):
                val = given[key]
                # bool is an int subclass: never accept it for numbers
                if (isinstance(val, bool) and bool not in types) or not isinstance(val, types):
                    raise ConfigError(
                        f"{source}: [{section}].{key} must be {_type_name(types)}, "
                        f"got {type(val).__name__} {val!r}"
                    )
                out[key] = val
            else:
                if (section, key) in REQUIRED:
                    raise ConfigError(f"{source}: [{section}].{key} is required")
                out[key] = copy.deepcopy(default)
        cfg[section] = out
    t = cfg["train"]
    for key in ("epochs", "num_steps"):
        if t[key] < 1:
            raise ConfigError(f"{source}: [train].{key} must be >= 1, got {t[key]}")
    if not t["lr"] > 0:
        raise ConfigError(f"{source}: [train].lr must be > 0, got {t['lr']}")
    for key, meaning in (("grad_clip", "0 turns clipping off"),
                         ("max_minutes", "0 means no time limit"),
                         ("weight_decay", "0 turns it off"),
                         ("augment_shift", "0 turns it off")):
        if not t[key] >= 0:  # also refuses NaN
            raise ConfigError(
                f"{source}: [train].{key} must be >= 0 ({meaning}), got {t[key]}"
            )
    if t["optimizer"] not in OPTIMIZERS:
        raise ConfigError(f"{source}: [train].optimizer must be one of {OPTIMIZERS}")
    if t["scheduler"] not in SCHEDULERS:
        raise ConfigError(f"{source}: [train].scheduler must be one of {SCHEDULERS}")
    if cfg["experiment"]["device"] not in DEVICES:
        raise ConfigError(f"{source}: [experiment].device must be one of {DEVICES}")
    if cfg["data"]["batch_size"] < 1:
        raise ConfigError(f"{source}: [data].batch_size must be >= 1")
    if not 0.0 < cfg["data"]["val_fraction"] <= 0.5:
        raise ConfigError(
            f"{source}: [data].val_fraction must be in (0, 0.5] (model selection needs a "
            f"validation split), got {cfg['data']['val_fraction']}"
        )
    return cfg


def load_config(path: str | Path) -> dict[str, Any]:
    """Read and validate a TOML training config."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    return validate_config(raw, str(path))


def model_arch(cfg: dict[str, Any], input_shape: tuple[int, ...]) -> dict[str, Any]:
    """The architecture dict (plain data) for :class:`snn2hw.nn.model.SpikingNet`."""
    m = cfg["model"]
    arch: dict[str, Any] = {
        "input_shape": list(m["input_shape"] or input_shape),
        "neuron": dict(m["neuron"]),
        "layers": copy.deepcopy(m["layers"]),
    }
    if m.get("name"):
        arch["name"] = m["name"]
    if m.get("hop_delays"):
        arch["hop_delays"] = True
    return arch
