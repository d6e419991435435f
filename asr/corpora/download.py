"""Fetching corpora: resumable, checksum-verified, atomic HTTP downloads and safe tar extraction.

A corpus module downloads its archive with :func:`download_file` and unpacks it with
:func:`extract_tar`::

    >>> archive = download_file(url, "downloads/x.tar.gz", sha256="9f86d0...")  # doctest: +SKIP
    >>> extract_tar(archive, "downloads/x_staging")                            # doctest: +SKIP

``download_file`` writes to ``<dest>.part`` and renames it to ``dest`` only once every byte
is there (and matches ``sha256`` when one is given), so ``dest`` is either absent or complete.
A dropped connection is resumed from the bytes already on disk with an HTTP ``Range``
request, on the next attempt and on the next run alike; a server that ignores ``Range``
is read again from the start. ``extract_tar`` refuses members that would write outside
the destination (absolute paths, ``..``, links pointing out, device files).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path, PurePosixPath

_RETRY_WAIT_S = 5.0  # first back-off between download attempts; doubles each time
_CHUNK_BYTES = 1 << 20
_PROGRESS_STEP_BYTES = 10 * 10**6  # progress line interval when the server sends no size


class DownloadError(Exception):
    """A download or an extraction cannot go on; the message names the URL or archive and why."""


def download_file(url: str, dest: str | os.PathLike, *, sha256: str | None = None, retries: int = 3,
                  timeout_s: float = 60.0) -> Path:
    """Download ``url`` to ``dest`` (atomically, resuming partial data); return ``dest``.

    Args:
        url: ``http(s)://`` or ``file://`` address.
        dest: the file to write; its folder must exist. Partial data lives in ``<dest>.part``.
            An existing ``dest`` is a finished download and is not fetched again (it is checked
            against ``sha256`` when one is given, and fetched again if it differs).
        sha256: expected SHA-256 of the file, hex; None skips the check.
        retries: attempts before giving up; client errors (HTTP 4xx, a missing ``file://``
            path) are not retried, since asking again gives the same answer.
        timeout_s: socket timeout per attempt, in seconds.

    Raises:
        DownloadError: every attempt failed (the message names the URL and the last error), or
            the data does not match ``sha256`` (the partial file is removed, so a rerun starts over).
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    if dest.is_file():
        if sha256 is None or _sha256_of(dest) == sha256.lower():
            return dest
        dest.unlink()  # a different file under that name: fetch the right one
    _fetch(url, part, retries=retries, timeout_s=timeout_s)
    if sha256 is not None:
        got = _sha256_of(part)
        if got != sha256.lower():
            part.unlink(missing_ok=True)
            raise DownloadError(f"{url}: SHA-256 mismatch (expected {sha256.lower()}, got {got}); the partial file "
                                f"was removed, so a rerun downloads it again")
    os.replace(part, dest)
    return dest


def _sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def _fetch(url: str, part: Path, *, retries: int, timeout_s: float) -> None:
    """Stream ``url`` into ``part`` with progress lines, retrying transient failures from where they stopped."""
    last_err: BaseException | None = None
    try:
        for attempt in range(1, max(1, retries) + 1):
            try:
                print(f"downloading {url}", flush=True)
                _fetch_once(url, part, timeout_s)
                return
            except (OSError, http.client.HTTPException) as err:  # URLError and socket timeouts are OSErrors
                last_err = err
                if _is_final(err):
                    break
                if attempt < retries:
                    wait_s = _RETRY_WAIT_S * 2 ** (attempt - 1)
                    print(f"  attempt {attempt}/{retries} failed ({_why(err)}); retrying in {wait_s:.0f} s",
                          flush=True)
                    time.sleep(wait_s)
    finally:
        if part.is_file() and part.stat().st_size == 0:
            part.unlink()  # nothing worth resuming
    raise DownloadError(f"could not download {url}: {_why(last_err)}")


def _fetch_once(url: str, part: Path, timeout_s: float) -> None:
    """One attempt: append to ``part`` from its current size if the server honours ``Range``."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    try:
        resp = urllib.request.urlopen(request, timeout=timeout_s)
    except urllib.error.HTTPError as err:
        if err.code != 416 or not have:  # 416: nothing past our bytes, so they are stale; start over
            raise
        part.unlink()
        have, resp = 0, urllib.request.urlopen(url, timeout=timeout_s)
    with resp:
        resumed = have and getattr(resp, "status", None) == 206 \
            and str(resp.headers.get("Content-Range", "")).startswith(f"bytes {have}-")
        offset = have if resumed else 0
        size = int(resp.headers.get("Content-Length") or 0)
        with open(part, "ab" if resumed else "wb") as out:
            _copy_with_progress(resp, out, offset, offset + size if size else 0)


def _is_final(err: BaseException) -> bool:
    """The server said no (or a file:// path is wrong): asking again will not help."""
    return (isinstance(err, urllib.error.HTTPError) and 400 <= err.code < 500
            or isinstance(err, urllib.error.URLError) and isinstance(err.reason, FileNotFoundError))


def _copy_with_progress(resp, out, done: int, total: int) -> None:
    """Copy in chunks after ``done`` bytes already on disk, printing a line every 10% (every 10 MB
    when ``total``, the full size, is unknown: 0)."""
    next_report = done / total + 0.1 if total else 0.1
    while chunk := resp.read(_CHUNK_BYTES):
        out.write(chunk)
        done += len(chunk)
        if total and done / total >= next_report:
            print(f"  {done / 1e6:.1f} / {total / 1e6:.1f} MB ({100 * done / total:.0f}%)", flush=True)
            next_report = min(1.0, done / total + 0.1)
        elif not total and done // _PROGRESS_STEP_BYTES > (done - len(chunk)) // _PROGRESS_STEP_BYTES:
            print(f"  {done / 1e6:.1f} MB", flush=True)
    if total and done < total:
        # a connection dropped mid-body can end the stream quietly; treat it as a failed attempt
        raise OSError(f"connection closed after {done} of {total} bytes")


def _why(err: BaseException | None) -> str:
    if isinstance(err, urllib.error.HTTPError):
        return f"HTTP {err.code} {err.reason}"
    if isinstance(err, urllib.error.URLError):
        return str(err.reason)
    return f"{type(err).__name__}: {err}"


def extract_tar(archive: str | os.PathLike, dest: str | os.PathLike, *, what: str | None = None) -> None:
    """Extract ``archive`` (any compression tarfile reads) into ``dest``, refusing any member that could
    write outside it.

    Every member is checked before anything is written, on every Python; tarfile's
    ``filter="data"`` (Python >= 3.11.4) adds its checks (permissions, special files) on top
    where available.

    Args:
        archive: the tar file.
        dest: the folder to extract into (created by the caller).
        what: how messages name the archive (e.g. its URL); default: its path.

    Raises:
        DownloadError: a member is unsafe (the message names it and why), or the archive is damaged.
    """
    dest = Path(dest).resolve()
    what = what or str(archive)
    try:
        with tarfile.open(archive, "r:*") as tar:
            members = tar.getmembers()
            for member in members:
                reason = unsafe_member(member, dest)
                if reason:
                    raise DownloadError(f"{what}: refusing to extract archive member {member.name!r}: {reason}")
            if hasattr(tarfile, "data_filter"):
                tar.extractall(dest, members=members, filter="data")
            else:
                tar.extractall(dest, members=members)
    except tarfile.TarError as err:  # includes tarfile.FilterError from filter="data"
        raise DownloadError(f"{what}: cannot extract the archive ({err})") from None


def unsafe_member(member: tarfile.TarInfo, dest: Path) -> str | None:
    """Why ``member`` must not be extracted into the resolved folder ``dest``, or None when it is safe."""
    def inside(path: str) -> bool:
        return Path(os.path.normpath(dest / path)).is_relative_to(dest)

    if os.path.isabs(member.name) or member.name.startswith(("/", "\\")):
        return "absolute path"
    if not inside(member.name):
        return "path leaves the extraction folder"
    if member.issym():
        link_from = str(PurePosixPath(member.name).parent / member.linkname)
        if os.path.isabs(member.linkname) or not inside(link_from):
            return f"symbolic link to {member.linkname!r} outside the extraction folder"
    elif member.islnk():
        if os.path.isabs(member.linkname) or not inside(member.linkname):
            return f"hard link to {member.linkname!r} outside the extraction folder"
    elif not (member.isfile() or member.isdir()):
        return "device, FIFO or other special file"
    return None
