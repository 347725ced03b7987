"""The package layering of docs/architecture.md holds, and the check itself catches breaches."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from layers import ALLOWED, violations

PACKAGE = Path(__file__).resolve().parents[2] / "snn2hw"


def test_snn2hw_imports_only_go_down_the_flow():
    assert violations(PACKAGE) == []


def test_every_package_is_covered_by_the_contract():
    packages = {p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert packages <= set(ALLOWED), packages - set(ALLOWED)


def _copy(tmp_path: Path) -> Path:
    root = tmp_path / "snn2hw"
    shutil.copytree(PACKAGE, root, ignore=shutil.ignore_patterns("__pycache__"))
    return root


@pytest.mark.parametrize(
    ("module", "bad_import", "expected"),
    [
        ("chip/mapping/partition.py", "from snn2hw.backends.torch_int import run",
         "chip may not import"),
        ("chip/targets/loading.py", "    import snn2hw.pipeline.simulate", "chip may not import"),
        ("backends/event.py", "from snn2hw.backends.torch_int import lif_step",
         "imports backend module"),
        ("backends/torch_int.py", "from snn2hw.backends import event", "imports backend module"),
        # a backend's helper module may use its own family only
        ("backends/event_ops.py", "from snn2hw.backends.torch_int_ops import lif_step",
         "imports backend module"),
        ("backends/lava_lowering.py", "from snn2hw.backends.event_plan import Plan",
         "imports backend module"),
        ("pipeline/compare.py", "from snn2hw.cli import main", "nothing may import the CLI"),
        ("nn/model.py", "from snn2hw.training.train import train", "nn may not import"),
        ("quant/ptq.py", "from snn2hw.chip.targets import load_target", "quant may not import"),
    ],
)
def test_a_deliberately_bad_import_is_caught(tmp_path, module, bad_import, expected):
    root = _copy(tmp_path)
    path = root / module
    text = path.read_text(encoding="utf-8")
    if bad_import.startswith("    "):  # a lazy import inside a function counts too
        text += f"\n\ndef _lazy():\n{bad_import}\n"
    else:
        text += f"\n{bad_import}\n"
    path.write_text(text, encoding="utf-8")
    found = sorted(set(violations(root)) - set(violations(PACKAGE)))  # only the new breach
    assert len(found) == 1 and expected in found[0] and module in found[0], found
