"""Atomic writes: whole files or nothing, with the permissions a plain write would give."""

import os
import stat

import pytest

from asr.fileio import atomic_open, atomic_torch_save, atomic_write_text


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_new_file_gets_the_umask_mode_not_0600(tmp_path, umask_022):
    atomic_write_text(tmp_path / "report.txt", "WER 7.5 %\n")
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    assert _mode(tmp_path / "report.txt") == _mode(plain) == 0o644


def test_new_file_follows_a_stricter_umask(tmp_path):
    old = os.umask(0o077)
    try:
        atomic_torch_save({"a": 1}, tmp_path / "model.pt")
    finally:
        os.umask(old)
    assert _mode(tmp_path / "model.pt") == 0o600


def test_replaced_file_keeps_its_mode(tmp_path, umask_022):
    target = tmp_path / "manifest.jsonl"
    target.write_text("old\n")
    os.chmod(target, 0o640)
    with atomic_open(target) as f:
        f.write("new\n")
    assert target.read_text() == "new\n"
    assert _mode(target) == 0o640


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "hyps.jsonl"
    target.write_text("kept\n")
    with pytest.raises(RuntimeError, match="disk gone"):
        with atomic_open(target) as f:
            f.write("half")
            raise RuntimeError("disk gone")
    assert target.read_text() == "kept\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hyps.jsonl"]


def test_read_and_append_modes_are_refused(tmp_path):
    for mode in ("r", "a"):
        with pytest.raises(ValueError, match="whole files"):
            with atomic_open(tmp_path / "x", mode):
                pass
