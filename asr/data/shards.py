"""WebDataset tar shards: a corpus in a few large files for networked filesystems, read by random access.

A shard is a plain tar in WebDataset's naming convention: each utterance is ``<key>.<ext>`` (its audio
file's bytes, unchanged) beside ``<key>.json`` (id, text, duration, speaker), so ``webdataset``, lhotse's
importer or ``tar -x`` read it as it is. A manifest line points into a shard with a member reference::

    {"audio_filepath": "shard-000003.tar#000001234-an251-fash-b.flac", "duration": 1.0, "text": "yes"}

Training's sampler is index-based (duration buckets, exact mid-epoch resume, DDP's split of each global
batch), so reading stays random access: each process scans a shard's tar headers once (a seek per
member, no data read), keeps ``member -> (offset, size)``, and reads a member with one ``pread``.
Nothing else changes: :func:`asr.data.audio.load_audio` decodes a member reference as it decodes a file.

Example:
    >>> write_shards("data/an4/train.jsonl", "shards/an4-train", shard_size_mb=64)  # doctest: +SKIP
    >>> load_audio("shards/an4-train/shard-000000.tar#000000000-an251-fash-b.flac", 16000)  # doctest: +SKIP
"""

from __future__ import annotations

import collections
import io
import json
import os
import re
import shutil
import tarfile
from dataclasses import dataclass
from pathlib import Path

SHARD_NAME = "shard-{:06d}.tar"
SHARD_RE = re.compile(r"shard-\d{6}\.tar")
MANIFEST_NAME = "manifest.jsonl"
# a shard's index and a member's bytes come from a file, so both are bounded: 256 MB shards of 1 s FLACs hold
# about 10 k members; an utterance of hours at 16 kHz is well under 1 GiB
MAX_MEMBERS = 1_000_000
MAX_MEMBER_BYTES = 1 << 30
MAX_OPEN_SHARDS = 32  # file handles one process keeps (an epoch touches every shard; the oldest are closed)


class ShardError(Exception):
    """A shard (or a reference into one) is unusable; the message names the shard and the member."""


def split_member(path: str | os.PathLike) -> tuple[str, str] | None:
    """``(shard path, member name)`` of a reference ``<dir>/shard.tar#<member>``, else None.

    A real file whose name holds ``#`` stays a file: the reference form applies only when the part
    before the last ``#`` is a ``.tar`` and the whole path is not itself a file.
    """
    s = os.fspath(path)
    shard, sep, member = s.rpartition("#")
    if not sep or not member or not shard.endswith(".tar") or os.path.isfile(s):
        return None
    return shard, member


@dataclass
class _Shard:
    pid: int  # the process that opened it: a forked worker opens its own rather than share its parent's
    fd: int
    stat_key: tuple[int, int, int]  # (inode, size, mtime): a shard replaced on disk is indexed anew
    members: dict[str, tuple[int, int]]  # name -> (data offset, size)
    damage: str  # "" or why the scan stopped early (a truncated or corrupt tail)


_OPEN: collections.OrderedDict[str, _Shard] = collections.OrderedDict()
# every index this process has built, kept when its handle is closed: a shuffled epoch touches shards in any
# order, and rescanning a 256 MB shard each time its handle came back would cost more than the reads. About
# 100 bytes a member, as much as the manifest line that points to it; forked workers inherit the parent's.
_INDEXES: dict[str, tuple[tuple[int, int, int], dict[str, tuple[int, int]], str]] = {}


def _index(shard: str, size_bytes: int) -> tuple[dict[str, tuple[int, int]], str]:
    """Scan the tar headers of ``shard``: ``member -> (offset, size)`` and why the scan stopped early, if it did."""
    members: dict[str, tuple[int, int]] = {}
    damage = ""
    try:
        with tarfile.open(shard, mode="r:") as tf:
            while (info := tf.next()) is not None:
                tf.members.clear()  # tarfile keeps every TarInfo; our index is all we need of them
                if not info.isreg():
                    continue
                if len(members) >= MAX_MEMBERS:
                    raise ShardError(f"{shard}: more than {MAX_MEMBERS} members; not a shard this tool reads")
                members[info.name] = (info.offset_data, info.size)
                if info.offset_data + info.size > size_bytes:
                    damage = f"the file ends at byte {size_bytes}, inside member {info.name} (truncated?)"
                    break
            else:
                # tarfile ends quietly at a partial header; an intact tar ends in zero blocks (or nothing)
                tf.fileobj.seek(tf.offset)
                if tf.fileobj.read(1024).strip(b"\0"):
                    damage = f"an unreadable header at byte {tf.offset} (truncated or corrupt)"
    except tarfile.ReadError as err:
        if not members:
            raise ShardError(f"{shard}: not a readable tar file ({err})") from None
        damage = f"the tar is unreadable after member {next(reversed(members))} ({err}; truncated?)"
    return members, damage


def _open_shard(shard: str) -> _Shard:
    st = os.stat(shard)
    key = (st.st_ino, st.st_size, st.st_mtime_ns)
    got = _OPEN.get(shard)
    if got is not None and got.pid == os.getpid() and got.stat_key == key:
        _OPEN.move_to_end(shard)
        return got
    if got is not None:
        _forget(shard)
    known = _INDEXES.get(shard)
    if known is None or known[0] != key:
        known = _INDEXES[shard] = (key, *_index(shard, st.st_size))
    _, members, damage = known
    _OPEN[shard] = got = _Shard(os.getpid(), os.open(shard, os.O_RDONLY), key, members, damage)
    while len(_OPEN) > MAX_OPEN_SHARDS:
        _forget(next(iter(_OPEN)))
    return got


def _forget(shard: str) -> None:
    got = _OPEN.pop(shard)
    if got.pid == os.getpid():  # a handle inherited from the parent stays the parent's to close
        os.close(got.fd)


def read_member(shard: str, member: str) -> bytes:
    """The bytes of ``member`` in ``shard``; :class:`ShardError` naming both when it is missing or truncated."""
    try:
        got = _open_shard(shard)
    except OSError as err:
        raise ShardError(f"{shard}: {err.strerror or err}") from None
    where = f"{shard}#{member}"
    if member not in got.members:
        hint = f"; the shard is damaged: {got.damage}" if got.damage else ""
        raise ShardError(f"{where}: no such member in the shard{hint}")
    offset, size = got.members[member]
    if size > MAX_MEMBER_BYTES:
        raise ShardError(f"{where}: member of {size} bytes is larger than any utterance ({MAX_MEMBER_BYTES})")
    data = os.pread(got.fd, size, offset)
    if len(data) != size:
        raise ShardError(f"{where}: truncated shard: the member needs {size} bytes at offset {offset}, "
                         f"the file holds {len(data)} of them")
    return data


def member_exists(shard: str, member: str) -> bool:
    """Whether ``shard`` holds an intact ``member`` (headers only, nothing decoded)."""
    try:
        got = _open_shard(shard)
    except (OSError, ShardError):
        return False
    offset, size = got.members.get(member, (0, -1))
    return size >= 0 and offset + size <= got.stat_key[1]


def member_key(index: int, utt_id: str) -> str:
    """A WebDataset key: unique by position, readable by id. A key holds no dot (WebDataset splits the
    extension at the first one) and stays short enough for a plain ustar header."""
    name = utt_id.rsplit("/", 1)[-1]  # an id that is an audio path reads best as its file name
    stem, dot, ext = name.rpartition(".")
    name = stem if dot and stem and ext.isalpha() and len(ext) <= 5 else name  # "x.flac" -> "x"; "utt-1.7" stays
    return f"{index:09d}-" + re.sub(r"[^A-Za-z0-9_-]+", "_", name)[-60:].strip("_")


def _member_audio(u) -> tuple[bytes, str]:
    """``(bytes, extension)`` of an utterance's audio: its file unchanged, or a segment cut out losslessly
    (float32 WAV of the frames :func:`asr.data.audio.load_audio` would read, so decoding gives the same samples)."""
    import soundfile as sf

    from asr.data.audio import AudioError, audio_info

    audio_info(u.audio_path)  # refuse unreadable audio here, not in the middle of training
    if not u.offset_s:
        ext = Path(u.audio_path).suffix.lower().lstrip(".") or "audio"
        return Path(u.audio_path).read_bytes(), re.sub(r"[^a-z0-9]", "", ext) or "audio"
    try:
        with sf.SoundFile(u.audio_path) as f:
            f.seek(min(int(round(u.offset_s * f.samplerate)), f.frames))
            samples = f.read(int(round(u.duration_s * f.samplerate)), dtype="float32", always_2d=True)
            sr = f.samplerate
    except Exception as err:  # noqa: BLE001 - any decoder failure names the file
        raise AudioError(u.audio_path, f"cannot cut the segment at {u.offset_s} s ({err})") from None
    buf = io.BytesIO()
    sf.write(buf, samples, sr, format="WAV", subtype="FLOAT")
    return buf.getvalue(), "wav"


def _add(tf: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o444, 0  # fixed metadata: the same corpus gives the same bytes
    tf.addfile(info, io.BytesIO(data))


def _check_output(out: Path, overwrite: bool) -> None:
    """Refuse an existing ``out`` unless ``overwrite``, and even then anything but a shard folder of ours."""
    if not out.exists():
        return
    if not overwrite:
        raise ShardError(f"{out}: already exists; choose another out= or set overwrite=true to replace it")
    if not out.is_dir():
        raise ShardError(f"{out}: exists and is not a folder of shards; refusing to replace it")
    stray = [p.name for p in out.iterdir() if p.name != MANIFEST_NAME and not SHARD_RE.fullmatch(p.name)]
    if stray:  # overwrite=true on the wrong folder must not delete someone's data
        raise ShardError(f"{out}: holds {stray[0]!r}, which asr shard did not write; refusing to replace it")


def _write_all(utts, tmp: Path, limit_bytes: int) -> tuple[list[dict], list[str], int]:
    """Write ``utts`` into shards under ``tmp``; return the manifest records, what was left out, the shard count."""
    from asr.data.audio import AudioError

    records, skipped, tf, shard_bytes, n_shards = [], [], None, 0, 0
    try:
        for n, u in enumerate(utts):
            try:
                data, ext = _member_audio(u)
            except AudioError as err:
                skipped.append(f"{u.utt_id}: {err}")
                continue
            if tf is None or shard_bytes + len(data) > limit_bytes:
                if tf is not None:
                    tf.close()
                name, n_shards, shard_bytes = SHARD_NAME.format(n_shards), n_shards + 1, 0
                tf = tarfile.open(tmp / name, mode="w", format=tarfile.USTAR_FORMAT)
            key = member_key(n, u.utt_id)
            meta = {"id": u.utt_id, "text": u.text, "duration": u.duration_s, **({"speaker": u.speaker}
                                                                                 if u.speaker else {})}
            _add(tf, f"{key}.{ext}", data)
            _add(tf, f"{key}.json", json.dumps(meta, ensure_ascii=False).encode())
            shard_bytes += len(data)
            records.append({"audio_filepath": f"{name}#{key}.{ext}", **meta})
    finally:
        if tf is not None:
            tf.close()
    return records, skipped, n_shards


def write_shards(manifest, out: str | os.PathLike, *, shard_size_mb: float = 256.0,
                 overwrite: bool = False) -> dict:
    """Pack a manifest's audio into ``<out>/shard-000000.tar, ...`` and write ``<out>/manifest.jsonl`` into them.

    The manifest keeps the input's order, ids, texts, durations and speakers, so training on it gives
    the same batches (and, with the same seed, the same weights) as training on the input. The folder
    appears whole or not at all (written beside it, then renamed); unreadable audio is left out and
    listed in the result's ``skipped``.

    Args:
        manifest: a JSONL manifest, a glob or a list of them (:func:`asr.data.manifest.read_manifests`).
        out: the shard folder; an existing one is replaced only with ``overwrite`` and only if it holds
            nothing but shards and their manifest.
        shard_size_mb: audio bytes per shard before the next one starts (a member never spans two).

    Returns:
        ``{"out", "manifest", "shards", "utterances", "skipped"}``.
    """
    from asr.data.manifest import read_manifests, write_manifest

    if not shard_size_mb > 0:
        raise ShardError(f"shard_size_mb must be > 0, got {shard_size_mb}")
    out = Path(out)
    _check_output(out, overwrite)
    utts = read_manifests(manifest, require_text=False)
    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        records, skipped, n_shards = _write_all(utts, tmp, int(shard_size_mb * 1e6))
        if not records:
            raise ShardError(f"{manifest}: no readable audio to shard ({len(skipped)} unreadable)")
        write_manifest(tmp / MANIFEST_NAME, records)
        for p in tmp.iterdir():  # durable before the rename makes the folder visible
            with open(p, "rb") as f:
                os.fsync(f.fileno())
        old = out.parent / f".{out.name}.old-{os.getpid()}"
        if out.exists():
            os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return {"out": str(out), "manifest": str(out / MANIFEST_NAME), "shards": n_shards,
            "utterances": len(records), "skipped": skipped}
