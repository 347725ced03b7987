"""Output shared by the benchmarks: a fixed-width text table and the ``--json`` file
(written atomically, like every other output of snn2hw). Imported by the benchmark scripts
run as ``python benchmarks/<name>.py`` (their folder is then on ``sys.path``)."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

# (title, format spec, the cell's value from a row); spec "s" is a left-aligned text
# column, every other spec (">s" for preformatted text included) is right-aligned
Column = tuple[str, str, Callable[[dict[str, Any]], Any]]


def print_table(columns: Sequence[Column], rows: Sequence[dict[str, Any]]) -> None:
    """Print ``rows`` under a header line and a rule, each column as wide as its widest
    cell or title."""
    cells = [[format(get(r), spec.lstrip("<>")) for _, spec, get in columns] for r in rows]
    widths = [max([len(title)] + [len(c[i]) for c in cells])
              for i, (title, _, _) in enumerate(columns)]
    left = [spec == "s" for _, spec, _ in columns]

    def line(values: Sequence[str]) -> str:
        return " ".join(v.ljust(w) if lft else v.rjust(w)
                        for v, w, lft in zip(values, widths, left, strict=True))

    head = line([title for title, _, _ in columns])
    print(head)
    print("-" * len(head))
    for c in cells:
        print(line(c))


def write_json(path: Path, doc: Any, indent: int = 1,
               default: Callable[[Any], Any] | None = None) -> None:
    """Write ``doc`` as JSON to ``path`` (its folder made if missing) atomically. snn2hw is
    imported only here: some benchmarks keep it (and the thread settings it makes) out of
    their parent process."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from snn2hw.common.atomic_io import atomic_write_text

    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, json.dumps(doc, indent=indent, default=default))
    print(f"wrote {path}")
