"""Atomic writes: complete or untouched, flushed to disk, with the permissions of a plain open()."""

from __future__ import annotations

import os
import stat

import pytest

from snn2hw.common import atomic_io
from snn2hw.common.atomic_io import atomic_path, atomic_write_text, current_umask


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_written_files_respect_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask


def test_file_and_directory_are_fsynced_before_and_after_the_rename(tmp_path, monkeypatch):
    calls = []
    real = os.fsync
    monkeypatch.setattr(atomic_io.os, "fsync", lambda fd: (calls.append(fd), real(fd)))
    atomic_write_text(tmp_path / "a.txt", "x")
    assert len(calls) == 2  # the file's data, then the directory entry


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]
