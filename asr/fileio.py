"""Atomic file writes: a reader (or a crash) never sees a half-written file.

Every output the toolkit writes (manifests, reports, checkpoints, model files) goes
through here: the bytes land in a temporary file in the same directory, are fsynced,
and the temporary file is renamed over the target, which POSIX makes atomic.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import io
import os
import stat
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO


def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:  # some filesystems refuse to open directories; the rename still happened
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _umask() -> int:
    """The process's umask, read without changing it where Linux allows (``os.umask`` is a set-and-return)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _final_mode(path: Path) -> int:
    """The permissions the new file gets: those of the file it replaces, else what ``open()`` would give."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO]:
    """Open ``path`` for writing so that it appears complete or not at all.

    The file ends up with the permissions of the file it replaces, or, for a new file, those
    a plain ``open(path, "w")`` would give under the current umask (not ``mkstemp``'s 0600).

    Example:
        >>> with atomic_open("out.txt") as f:  # doctest: +SKIP
        ...     f.write("hello\\n")
    """
    if "r" in mode or "a" in mode:
        raise ValueError(f"atomic_open writes whole files; mode {mode!r} is not supported")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # a short temporary name: a target name near the 255-byte limit must not fail on its temporary's
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name[:32]}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as f:
            yield f
            f.flush()
            os.fchmod(f.fileno(), _final_mode(path))
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as err:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise with_path(err, path) from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def with_path(err: OSError, path: str | os.PathLike) -> OSError:
    """``err`` naming ``path`` (a failed write or fsync names no file of its own)."""
    if err.filename is not None or err.errno is None:
        return err
    return type(err)(err.errno, err.strerror, str(path))


_OS_ADVICE = {
    errno.EROFS: "the file system is read-only; choose an output on a writable disk",
    errno.EACCES: "permission denied; choose an output you may write, or change its permissions",
    errno.EPERM: "operation not permitted; choose an output you may write",
    errno.ENOSPC: "no space left on the device; free some space and rerun (finished work is kept: asr train "
                  "resumes with trainer.resume=true, asr transcribe resumes by itself)",
    errno.EDQUOT: "disk quota exceeded; free some space and rerun (finished work is kept)",
    errno.ENAMETOOLONG: "file name too long; choose a shorter output name",
    errno.EMFILE: "too many open files; raise the limit (ulimit -n) or use fewer decoding workers",
}


def describe_os_error(err: OSError) -> str:
    """One line for the user: the path, what went wrong, and what to do."""
    advice = _OS_ADVICE.get(err.errno, err.strerror or str(err))
    return f"{err.filename}: {advice}" if err.filename is not None else f"{err}: {advice}"


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_open(path, "w") as f:
        f.write(text)


def atomic_torch_save(obj, path: str | os.PathLike) -> None:
    """``torch.save`` through a temporary file: a crash leaves the old file intact."""
    import torch  # here, so light commands (corpus preparation) start without loading torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    with atomic_open(path, "wb") as f:
        f.write(buf.getbuffer())


class DirectoryInUse(RuntimeError):
    """Another process holds the lock on a directory (see :func:`hold_lock`)."""


LOCK_NAME = ".lock"
_held: dict[str, list[int]] = {}  # resolved directory -> [fd, holds] for the locks this process holds
_lock_fds: set[int] = set()  # every descriptor that carries one of this process's flock locks


def track_lock_fd(fd: int, held: bool = True) -> None:
    """Note (or, with ``held=False``, forget) a descriptor that carries a ``flock`` lock of this process."""
    (_lock_fds.add if held else _lock_fds.discard)(fd)


def drop_inherited_locks(_worker_id: int | None = None) -> None:
    """Close, in a forked child, the descriptors that carry the parent's locks (a DataLoader ``worker_init_fn``).

    A ``flock`` lock lives until every descriptor of it is closed, and a forked worker holds
    copies: after ``kill -9`` of the parent its decoding workers would keep the output locked
    until they notice the parent is gone (about 5 s), and an immediate rerun would be refused.
    Closing the copies leaves the parent's lock as it is.
    """
    for fd in list(_lock_fds):
        with contextlib.suppress(OSError):
            os.close(fd)
    _lock_fds.clear()
    _held.clear()


def hold_lock(directory: str | os.PathLike) -> None:
    """Take an exclusive lock on ``directory`` (``<directory>/.lock``), or raise :class:`DirectoryInUse`.

    The lock is ``flock``'s, so it dies with the process, ``kill -9`` included: no stale lock
    is ever left to clear by hand. A process may take the same lock again (nested holds are
    counted); :func:`release_lock` undoes one hold.
    """
    directory = Path(directory)
    key = str(directory.resolve())
    if key in _held:
        _held[key][1] += 1
        return
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise DirectoryInUse(f"{directory} is in use by another running job (it holds {directory / LOCK_NAME}); "
                             "wait for it to finish, or choose another directory") from None
    _held[key] = [fd, 1]
    track_lock_fd(fd)


def release_lock(directory: str | os.PathLike) -> None:
    """Undo one :func:`hold_lock` of ``directory``; the last one releases the lock."""
    key = str(Path(directory).resolve())
    entry = _held.get(key)
    if entry is None:
        return
    entry[1] -= 1
    if entry[1] == 0:
        track_lock_fd(entry[0], held=False)
        os.close(entry[0])
        del _held[key]


@contextlib.contextmanager
def locked(directory: str | os.PathLike) -> Iterator[None]:
    """:func:`hold_lock` for the duration of a ``with`` block."""
    hold_lock(directory)
    try:
        yield
    finally:
        release_lock(directory)


class WouldReplace(RuntimeError):
    """An output path holds a file this command did not write for the same job (see :func:`refuse_to_replace`)."""


def refuse_to_replace(paths: Iterable[str | os.PathLike], *, overwrite: bool, same_job: bool = False) -> None:
    """Raise :class:`WouldReplace` naming those of ``paths`` that exist, unless ``overwrite`` or ``same_job``.

    ``same_job``: the caller recognised the existing outputs as its own for the same inputs
    (a rerun of the same evaluation), which it may replace without being told.
    """
    existing = [str(p) for p in paths if os.path.lexists(p)]
    if existing and not (overwrite or same_job):
        raise WouldReplace(f"refusing to replace {', '.join(existing)}: not written by this command for the same "
                           "job; choose another output or set overwrite=true")
