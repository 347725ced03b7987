"""The built wheel is self-contained: installed into a fresh venv and run from a folder
outside the checkout, ``snn2hw targets``, ``energy`` and a tiny train -> export -> energy
pipeline find the bundled targets and example configs (package data), not the source tree.

The fresh venv must see torch & co. but not the checkout's snn2hw. It is created with
``--system-site-packages`` from the project venv's interpreter; as that interpreter is
itself a venv, its "system" is the base Python, which lacks the dependencies, so the outer
venv's site-packages is appended through a plain ``.pth`` line. A directory added that way
has its own ``.pth`` files (the outer editable install's finder) not processed, and the
new venv's site-packages comes first, so ``snn2hw`` is imported from the wheel: checked.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def _run(cmd: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    proc = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    assert proc.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    )
    return proc.stdout


@pytest.fixture(scope="module")
def wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    base = tmp_path_factory.mktemp("wheel")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    env["PIP_NO_INDEX"] = "1"
    # build from a copy so that build/ and *.egg-info never land in the checkout
    src = base / "src"
    shutil.copytree(
        ROOT, src,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "dist", "runs", "*.egg-info",
                                      "__pycache__", ".pytest_cache", "tests", "docs"),
    )
    wheels = base / "wheels"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "-w", str(wheels), str(src)], cwd=base, env=env, timeout=300)
    (wheel,) = wheels.glob("snn2hw-*.whl")
    venv = base / "venv"
    _run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], cwd=base, env=env)
    py = venv / "bin" / "python"
    site = Path(_run([str(py), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=base, env=env).strip())
    outer = sysconfig.get_path("purelib")
    (site / "zz_outer_venv.pth").write_text(outer + "\n", encoding="utf-8")
    _run([str(py), "-m", "pip", "install", "--no-deps", str(wheel)], cwd=base, env=env,
         timeout=300)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env.pop("SNN2HW_TARGETS_DIR", None)  # user target folders must not leak in
    return venv, env


def test_installed_wheel_runs_from_outside_the_checkout(wheel_venv, tmp_path: Path) -> None:
    venv, env = wheel_venv
    py, cli = str(venv / "bin" / "python"), str(venv / "bin" / "snn2hw")
    where = _run([py, "-c", "import snn2hw; print(snn2hw.__file__)"], cwd=tmp_path, env=env)
    assert Path(where.strip()).resolve().is_relative_to(venv.resolve()), where
    assert not Path(where.strip()).resolve().is_relative_to(ROOT), where

    listing = _run([cli, "targets"], cwd=tmp_path, env=env)
    for name in ("loihi", "loihi2", "generic4"):
        assert name in listing, listing
    _run([cli, "targets", "show", "generic4"], cwd=tmp_path, env=env)

    run, exp = tmp_path / "run", tmp_path / "exp"
    _run([cli, "train", "digits_lif", "--epochs", "1", "--device", "cpu", "--quiet",
          "--out", str(run)], cwd=tmp_path, env=env, timeout=300)
    _run([cli, "export", str(run / "best.pt"), "--target", "loihi", "-o", str(exp)],
         cwd=tmp_path, env=env)
    _run([cli, "energy", str(exp), "--target", "loihi"], cwd=tmp_path, env=env)

    # a user folder adds targets, and its file of a bundled name wins
    user = tmp_path / "my_targets"
    user.mkdir()
    bundled = Path(where.strip()).parent / "chip" / "targets" / "data" / "generic4.toml"
    text = bundled.read_text(encoding="utf-8").replace('name = "generic4"', 'name = "mychip"')
    (user / "mychip.toml").write_text(text, encoding="utf-8")
    env2 = dict(env, SNN2HW_TARGETS_DIR=str(user))
    listing = _run([cli, "targets"], cwd=tmp_path, env=env2)
    assert "mychip" in listing and "loihi" in listing, listing
