"""`snn2hw install-lava` installs lava-nc the only way pip accepts on Python 3.11, and the
snn2hw[lava] extra pins the same dependencies."""

from __future__ import annotations

import tomllib
from pathlib import Path

from click.testing import CliRunner

from snn2hw.cli import main
from snn2hw.compat.lava_install import LAVA_DEPENDENCIES, LAVA_REQUIREMENT, install_commands

ROOT = Path(__file__).resolve().parents[2]


def test_lava_is_installed_without_deps_ignoring_its_python_bound_after_its_dependencies():
    deps, lava = install_commands("py")
    assert deps == ["py", "-m", "pip", "install", *LAVA_DEPENDENCIES]
    assert lava == ["py", "-m", "pip", "install", "--no-deps", "--ignore-requires-python",
                    LAVA_REQUIREMENT]


def test_the_lava_extra_pins_exactly_the_dependencies_install_lava_installs():
    meta = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert sorted(meta["project"]["optional-dependencies"]["lava"]) == sorted(LAVA_DEPENDENCIES)


def test_setup_script_installs_the_same_lava_version():
    assert LAVA_REQUIREMENT in (ROOT / "scripts/setup_env.sh").read_text(encoding="utf-8")


def test_cli_dry_run_prints_the_commands_and_runs_nothing():
    r = CliRunner().invoke(main, ["install-lava", "--dry-run"])
    assert r.exit_code == 0, r.output
    assert "--ignore-requires-python lava-nc==0.10.0" in r.output
    assert len(r.output.strip().splitlines()) == 2
