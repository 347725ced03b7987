"""Installing lava-nc 0.10.0 on Python >= 3.11, the one way that works.

lava-nc 0.10.0 (archived upstream) declares ``python_requires < 3.11``, so neither
``pip install lava-nc`` nor the ``snn2hw[lava]`` extra can pull it on 3.11: pip refuses the
package. It runs fine on 3.11 once :mod:`snn2hw.compat.lava_py311` fixes its one import-time
bug, so it is installed with ``--no-deps --ignore-requires-python`` plus its own
dependencies pinned to the versions it works with. ``snn2hw install-lava`` runs exactly
these commands with the current interpreter; the ``snn2hw[lava]`` extra (pyproject.toml)
lists the same dependency pins (a test keeps them equal).
"""

from __future__ import annotations

import subprocess
import sys

LAVA_REQUIREMENT = "lava-nc==0.10.0"
LAVA_DEPENDENCIES = ("networkx<=2.8.7", "asteval>=0.9.31,<0.10", "scikit-learn>=1.5")
"""lava-nc's run-time dependencies, at versions it supports (numpy<2 and scipy<1.15 are
snn2hw's own requirements already)."""


def install_commands(python: str | None = None) -> list[list[str]]:
    """The pip commands that install lava-nc for ``python`` (default: this interpreter)."""
    pip = [python or sys.executable, "-m", "pip", "install"]
    return [
        [*pip, *LAVA_DEPENDENCIES],
        [*pip, "--no-deps", "--ignore-requires-python", LAVA_REQUIREMENT],
    ]


def install_lava(python: str | None = None) -> None:
    """Run :func:`install_commands`; a failing pip raises ``CalledProcessError``."""
    for cmd in install_commands(python):
        subprocess.run(cmd, check=True)
