"""The import contract of snn2hw's packages (docs/architecture.md), checked over the AST.

Imports go down the flow only: cli -> pipeline -> {training, backends, chip, exporters,
reporting} -> netx -> quant -> nir -> nn, data -> common. Every import counts, also one inside a
function (lazy imports are still dependencies). Rules:

* a package imports only the packages listed for it in ``ALLOWED`` (and itself);
* no backend imports another backend (the registry and the shared protocol excepted);
* nothing imports ``snn2hw.cli``.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

ALLOWED: dict[str, set[str]] = {
    "common": set(),
    "compat": {"common"},
    "nn": {"common"},
    "data": {"common"},
    "nir": {"nn", "common"},
    "quant": {"nir", "nn", "common"},
    "netx": {"quant", "nir", "nn", "data", "common"},
    "training": {"nn", "data", "nir", "quant", "netx", "common"},
    "exporters": {"quant", "nir", "nn", "common"},
    "backends": {"exporters", "quant", "common", "compat"},
    "chip": {"quant", "common"},
    "reporting": {"chip", "quant", "common"},
    "pipeline": {"training", "backends", "chip", "exporters", "reporting", "netx", "quant", "nir",
                 "nn",
                 "data", "common", "compat"},
    "cli": {"pipeline", "training", "backends", "chip", "exporters", "reporting", "netx", "quant",
            "nir",
            "nn", "data", "common", "compat"},
}
# Backend modules that may import other modules of backends/: the shared protocol and the
# registry that lists them; a backend and its helper modules (named after it: ``event``,
# ``event_kernels``, ``event_ops``) may also import one another.
BACKEND_SHARED = {"base", "registry", "__init__"}


def _backend_family(module: str, backends: Path) -> str:
    """The backend a module of ``backends/`` belongs to: the shortest module name ``m`` there
    with ``module == m`` or ``module`` starting with ``m + "_"`` (``event_ops`` -> ``event``,
    ``torch_int_ops`` -> ``torch_int``)."""
    names = sorted((p.stem for p in backends.glob("*.py")), key=len)
    return next((m for m in names if module == m or module.startswith(m + "_")), module)


def imports(path: Path, root: Path) -> Iterator[tuple[int, str]]:
    """(line, absolute module name) of every ``snn2hw`` import in ``path``; ``from a import b``
    counts as importing ``a.b`` when ``b`` is a module or package under ``root``."""
    tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.name.split(".")[0] == root.name:
                    yield node.lineno, a.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] != root.name:
                continue
            folder = root.joinpath(*node.module.split(".")[1:])
            subs = [a.name for a in node.names
                    if (folder / a.name).is_dir() or (folder / f"{a.name}.py").is_file()]
            for name in subs:
                yield node.lineno, f"{node.module}.{name}"
            if len(subs) < len(node.names):
                yield node.lineno, node.module


def _package(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def violations(root: Path) -> list[str]:
    """Every breach of the contract under the package folder ``root`` (``.../snn2hw``)."""
    out: list[str] = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root)
        here = "cli" if rel.parts == ("cli.py",) else (rel.parts[0] if len(rel.parts) > 1
                                                       else None)
        for line, mod in imports(path, root):
            there = _package(mod)
            where = f"{root.name}/{rel}:{line}"
            if there == "cli":
                out.append(f"{where}: imports {mod} (nothing may import the CLI)")
                continue
            if here is None or there is None or (there == here and here != "backends"):
                continue
            if here == "backends" and there == "backends":
                mine, theirs = rel.stem, mod.split(".")[2] if mod.count(".") >= 2 else ""
                backends = root / "backends"
                if (mine in BACKEND_SHARED or theirs in BACKEND_SHARED
                        or _backend_family(mine, backends) == _backend_family(theirs, backends)):
                    continue
                out.append(f"{where}: backend '{mine}' imports backend module {mod} "
                           "(backends are independent implementations)")
                continue
            if here in ALLOWED and there not in ALLOWED[here] and there != here:
                out.append(f"{where}: {here} may not import {mod} "
                           f"(allowed: {', '.join(sorted(ALLOWED[here])) or 'nothing'})")
    return out
