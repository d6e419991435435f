"""Transcription outputs: the resumable JSONL record, and txt / csv / srt / vtt made from it.

The JSONL file is the record of a run, one line per input::

    {"id": "fcaw/an406-fcaw-b.flac", "path": "/data/an4/.../an406-fcaw-b.flac", "duration": 4.0,
     "text": "rubout g m e f", "words": [{"word": "rubout", "start": 0.45, "end": 0.87, "confidence": 0.94}, ...],
     "error": null}

A file that could not be transcribed has ``"text": null`` and the reason in ``"error"``. A file
transcribed despite a problem (a manifest duration longer than the audio) has a ``"warning"``.

Crash safety: lines are appended whole and flushed + fsynced after every batch, so a
killed run leaves complete lines plus at most one partial line at the end. Reopening
the file (:class:`TranscriptLog`) truncates that partial line, and the ids already
present are skipped, so a rerun neither duplicates nor loses a line. At the end the
file is rewritten (atomically) in input order, and the other formats are derived from
it, each written atomically through :mod:`asr.fileio`. While a run writes the file it
holds an exclusive lock on it, so a second run into the same output stops with a message
instead of interleaving lines.

A file at the output path that is not such a record is never touched unless
``overwrite=True``.
"""

from __future__ import annotations

import csv
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from asr.fileio import atomic_open, atomic_write_text, track_lock_fd, with_path

FORMATS = ("jsonl", "txt", "csv", "srt", "vtt")
RECORD_KEYS = ("id", "path", "duration", "text", "words", "error")
_LINE_PREFIX = '{"id": '  # every record line starts with this (json.dumps keeps key order)


class OutputError(RuntimeError):
    """The output path cannot be used (it holds something else); the message says what to do."""


def make_record(utt_id: str, path: str, duration_s: float | None, text: str | None, words: Sequence[dict] = (),
                error: str | None = None, warning: str | None = None) -> dict:
    """One JSONL line: see the module docstring. ``warning`` (only when given) notes a transcript made anyway."""
    record = {"id": utt_id, "path": path, "duration": None if duration_s is None else round(duration_s, 3),
              "text": text, "words": list(words), "error": error}
    return record if warning is None else {**record, "warning": warning}


def _is_record(obj) -> bool:
    return isinstance(obj, dict) and all(k in obj for k in RECORD_KEYS)


def scan(path: str | os.PathLike) -> tuple[list[tuple[str, int, int]], int]:
    """Index a record file: ``([(id, byte offset, byte length), ...], bytes of complete lines)``.

    Raises:
        OutputError: a complete line is not one of our records (the file is something else).
    """
    index, pos = [], 0
    with open(path, "rb") as f:
        for raw in f:
            if not raw.endswith(b"\n"):
                # a run killed mid-write: only a fragment of one of our lines is acceptable
                if not (raw.startswith(_LINE_PREFIX.encode()) or _LINE_PREFIX.encode().startswith(raw)):
                    raise OutputError(f"{path}: ends with text that is not a transcription record")
                break
            if raw.strip():
                try:
                    obj = json.loads(raw)
                except ValueError:  # not JSON, or not UTF-8
                    obj = None
                if not _is_record(obj):
                    raise OutputError(f"{path}: line {len(index) + 1} is not a transcription record")
                index.append((obj["id"], pos, len(raw)))
            pos += len(raw)
    return index, pos


class TranscriptLog:
    """Append-only JSONL of finished transcripts that survives ``kill -9``.

    Args:
        path: the JSONL file.
        resume: keep the records already there and report their ids in :attr:`done`.
        overwrite: start afresh even if ``path`` holds something that is not ours.

    Raises:
        OutputError: ``path`` exists, is not a transcription record, and ``overwrite`` is false.
    """

    def __init__(self, path: str | os.PathLike, *, resume: bool = True, overwrite: bool = False):
        self.path = Path(path)
        self.done: set[str] = set()
        if self.path.is_dir():
            raise OutputError(f"output {self.path} is a folder; give a file name such as {self.path}/transcripts.jsonl")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # O_APPEND: every write lands at the end; the lock keeps a second run from interleaving lines
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        except PermissionError:
            raise OutputError(f"cannot write {self.path}: permission denied") from None
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            track_lock_fd(self._fd)
            keep = self._existing_bytes(resume, overwrite)
        except BlockingIOError:
            os.close(self._fd)
            raise OutputError(f"{self.path} is being written by another asr-transcribe run") from None
        except BaseException:
            self.close()
            raise
        try:
            os.ftruncate(self._fd, keep)  # drops a partial last line, or everything when starting afresh
            os.fsync(self._fd)
        except OSError as err:
            self.close()
            raise with_path(err, self.path) from None

    def _existing_bytes(self, resume: bool, overwrite: bool) -> int:
        """Bytes of complete records to keep (filling :attr:`done`); refuse a file that is not ours."""
        if overwrite or self.path.stat().st_size == 0:
            return 0
        try:
            index, keep = scan(self.path)
        except OutputError as err:
            raise OutputError(f"refusing to overwrite {self.path}: it exists and is not a transcription output "
                              f"of asr-transcribe ({err}); choose another output or set overwrite=true") from None
        if not resume:
            return 0
        self.done = {utt_id for utt_id, _, _ in index}
        return keep

    def write(self, records: Sequence[dict]) -> None:
        """Append complete lines and make them durable before returning."""
        if not records:
            return
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records).encode()
        try:
            while data:  # a regular file takes it in one write unless the disk is full or a signal interrupts
                data = data[os.write(self._fd, data):]
            os.fsync(self._fd)
        except OSError as err:  # the lines before this batch are complete on disk: a rerun resumes after them
            raise with_path(err, self.path) from None
        self.done.update(r["id"] for r in records)

    def close(self) -> None:
        """Close the file and release its lock (every record written is already on disk)."""
        track_lock_fd(self._fd, held=False)
        os.close(self._fd)  # releases the lock

    def __enter__(self) -> TranscriptLog:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def sort_records(path: str | os.PathLike, order: Sequence[str]) -> None:
    """Rewrite the record file atomically with lines in ``order`` (ids not in it keep their place at the end).

    Lines are copied by byte offset, so memory does not grow with the file.
    """
    index, _ = scan(path)
    rank = {utt_id: i for i, utt_id in enumerate(order)}
    ordered = sorted(index, key=lambda e: rank.get(e[0], len(rank)))
    if ordered == index:
        return
    with open(path, "rb") as src, atomic_open(path, "wb") as dst:
        for _, offset, length in ordered:
            src.seek(offset)
            dst.write(src.read(length))


def iter_records(path: str | os.PathLike) -> Iterator[dict]:
    """The records of a JSONL record file in file order; a half-written last line is left out."""
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                yield json.loads(line)


# ---- derived formats ----------------------------------------------------------------------------

@dataclass(frozen=True)
class SubtitleConfig:
    """How words are grouped into SRT/VTT cues.

    A new cue starts at a pause of ``max_gap_s`` or more, or when the cue would last longer
    than ``max_cue_s`` or hold more than ``max_chars`` characters (two lines of 42, the
    usual broadcast limit).
    """

    max_gap_s: float = 0.6
    max_cue_s: float = 6.0
    max_chars: int = 84

    def __post_init__(self):
        if self.max_gap_s <= 0 or self.max_cue_s <= 0 or self.max_chars < 1:
            raise ValueError(f"subtitle limits must be positive, got {self}")


def derived_paths(output: str | os.PathLike, formats: Sequence[str]) -> dict[str, Path]:
    """Where each derived format goes: ``out.jsonl`` → ``out.txt``, ``out.csv``, ``out_srt/``, ``out_vtt/``."""
    out = Path(output)
    base = out.with_suffix("") if out.suffix == ".jsonl" else out
    paths = {}
    for fmt in formats:
        if fmt in ("txt", "csv"):
            paths[fmt] = base.with_name(f"{base.name}.{fmt}")
        elif fmt in ("srt", "vtt"):
            paths[fmt] = base.with_name(f"{base.name}_{fmt}")
    return paths


def txt_field(value: str) -> str:
    """``value`` on one line of a tab-separated file: backslash, tab, newline and carriage return escaped.

    A file name may hold any of them; unescaped, one would split or shift a line of the ``.txt`` output.
    """
    return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


def csv_cell(value: str) -> str:
    """A text cell a spreadsheet shows as text: a leading ``=``, ``+``, ``-``, ``@``, tab or CR gets a ``'``.

    Spreadsheets run such a cell as a formula (CSV injection); a file name is not to be trusted.
    """
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


def write_derived(output: str | os.PathLike, formats: Sequence[str], subtitles: SubtitleConfig = SubtitleConfig()
                  ) -> dict[str, str]:
    """Write the derived formats from the record file; return ``{format: path}``.

    ``txt``: ``id<TAB>text`` per transcribed file; ``csv``: id, path, duration, text, error
    for every file; ``srt``/``vtt``: one subtitle file per transcribed input, under a folder,
    at the input's relative path with the format's suffix.
    """
    paths = derived_paths(output, formats)
    if "txt" in paths:
        with atomic_open(paths["txt"]) as f:
            for r in iter_records(output):
                if r["text"] is not None:
                    f.write(f"{txt_field(r['id'])}\t{r['text']}\n")
    if "csv" in paths:
        with atomic_open(paths["csv"], "w") as f:
            w = csv.writer(f)
            w.writerow(["id", "path", "duration", "text", "error"])
            for r in iter_records(output):
                w.writerow([csv_cell(r["id"]), csv_cell(r["path"]), r["duration"], csv_cell(r["text"] or ""),
                            csv_cell(r["error"] or "")])
    for fmt in ("srt", "vtt"):
        if fmt in paths:
            used: set[Path] = set()
            for r in iter_records(output):
                if r["text"] is None:
                    continue
                target = _subtitle_path(paths[fmt], r["id"], fmt, used)
                cues = make_cues(r["words"], subtitles)
                atomic_write_text(target, render_srt(cues) if fmt == "srt" else render_vtt(cues))
    return {k: str(v) for k, v in paths.items()}


def _subtitle_path(folder: Path, utt_id: str, fmt: str, used: set[Path]) -> Path:
    # ids can be absolute or contain '..' (manifests): keep only the name parts, inside the folder
    parts = [p for p in PurePosixPath(utt_id.replace("\\", "/")).parts if p not in ("/", ".", "..")] or ["audio"]
    target = folder.joinpath(*parts).with_suffix(f".{fmt}")
    if target in used:  # a.wav and a.flac side by side: keep both names
        target = folder.joinpath(*parts[:-1], f"{parts[-1]}.{fmt}")
    used.add(target)
    return target


def make_cues(words: Sequence[dict], config: SubtitleConfig = SubtitleConfig()) -> list[tuple[float, float, str]]:
    """Group timed words (``{"word", "start", "end"}``) into ``(start_s, end_s, text)`` cues."""
    cues: list[tuple[float, float, str]] = []
    cur: list[dict] = []
    for w in words:
        if cur:
            text_len = sum(len(x["word"]) + 1 for x in cur) + len(w["word"])
            if (w["start"] - cur[-1]["end"] >= config.max_gap_s or w["end"] - cur[0]["start"] > config.max_cue_s
                    or text_len > config.max_chars):
                cues.append((cur[0]["start"], cur[-1]["end"], " ".join(x["word"] for x in cur)))
                cur = []
        cur.append(w)
    if cur:
        cues.append((cur[0]["start"], cur[-1]["end"], " ".join(x["word"] for x in cur)))
    return cues


def _wrap(text: str, width: int = 42) -> str:
    """Break a cue longer than one subtitle line at the space nearest its middle."""
    if len(text) <= width or " " not in text:
        return text
    mid = len(text) // 2
    cut = min((i for i, c in enumerate(text) if c == " "), key=lambda i: abs(i - mid))
    return text[:cut] + "\n" + text[cut + 1:]


def _timestamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, ms = divmod(ms, 3_600_000)
    m, ms = divmod(ms, 60_000)
    s, ms = divmod(ms, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render_srt(cues: Sequence[tuple[float, float, str]]) -> str:
    """SubRip: numbered cues, ``HH:MM:SS,mmm --> HH:MM:SS,mmm``."""
    out = io.StringIO()
    for i, (start, end, text) in enumerate(cues, start=1):
        out.write(f"{i}\n{_timestamp(start, ',')} --> {_timestamp(end, ',')}\n{_wrap(text)}\n\n")
    return out.getvalue()


def render_vtt(cues: Sequence[tuple[float, float, str]]) -> str:
    """WebVTT: a ``WEBVTT`` header, then ``HH:MM:SS.mmm --> HH:MM:SS.mmm`` cues."""
    out = io.StringIO()
    out.write("WEBVTT\n\n")
    for start, end, text in cues:
        out.write(f"{_timestamp(start, '.')} --> {_timestamp(end, '.')}\n{_wrap(text)}\n\n")
    return out.getvalue()
