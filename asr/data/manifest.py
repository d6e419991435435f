"""JSONL manifests: one utterance per line, NeMo's format.

A manifest line looks like::

    {"audio_filepath": "audio/an251-fash-b.flac", "duration": 1.0, "text": "yes"}

``audio_filepath`` is relative to the directory that holds the manifest (absolute
paths are accepted as written). Rule for relative paths: they are resolved against
the manifest's directory and must stay inside it after resolution (``..`` that leaves
the manifest's tree is refused unless ``allow_outside=True``), so a manifest handed
over with a corpus cannot point a job at unrelated files by accident.

Example:
    >>> utts = read_manifest("data/an4/train.jsonl")  # doctest: +SKIP
    >>> utts[0].audio_path, utts[0].duration_s, utts[0].text  # doctest: +SKIP
"""

from __future__ import annotations

import glob
import json
import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.fileio import atomic_open

# A week and a half of audio in one line: longer than any recording a manifest describes, and small enough that
# every count derived from it (samples, frames, windows) stays far from overflow and from the memory of one machine.
MAX_DURATION_S = 1e6


class ManifestError(Exception):
    """A manifest (or one of its lines) is unusable; the message names file and line."""


class PathEscapeError(ManifestError):
    """A relative ``audio_filepath`` resolves outside the manifest's directory."""


@dataclass(frozen=True)
class Utterance:
    """One manifest entry, with its audio path resolved.

    Attributes:
        utt_id: stable identifier (the audio path relative to the manifest, or ``id``).
        audio_path: absolute path of the audio file.
        duration_s: duration in seconds, as the manifest says.
        text: the transcript ("" when the manifest has none, e.g. for transcription).
        offset_s: start of the segment inside the file (for segmented long files).
        speaker: the manifest's ``speaker`` field ("" when it has none); babble augmentation draws
            other speakers' voices by it, and speaker-disjoint splits hold speakers out by it.
    """

    utt_id: str
    audio_path: str
    duration_s: float
    text: str = ""
    offset_s: float = 0.0
    speaker: str = ""


def read_manifest(path: str | os.PathLike, *, require_text: bool = True,
                  allow_outside: bool = False) -> list[Utterance]:
    """Parse a JSONL manifest; raise :class:`ManifestError` naming the first bad line."""
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = path.resolve().parent
    utts: list[Utterance] = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            utts.append(parse_line(line, base, f"{path}:{lineno}", require_text=require_text,
                                   allow_outside=allow_outside))
    if not utts:
        raise ManifestError(f"{path}: manifest has no utterances")
    return utts


def manifest_files(spec: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Expand a manifest setting into files: one path, a glob pattern, or a list of either.

    Sharded corpora keep their metadata in many JSONL files (``shards/train-*.jsonl``);
    glob matches are sorted, so every process expands a pattern to the same list.

    Raises:
        ManifestError: a pattern that matches no file, or an empty list.
    """
    items = [spec] if isinstance(spec, (str, os.PathLike)) else list(spec)
    files: list[Path] = []
    for item in items:
        item = str(item)
        if glob.has_magic(item):
            matches = sorted(glob.glob(item))
            if not matches:
                raise ManifestError(f"{item}: no manifest matches this pattern")
            files += [Path(m) for m in matches]
        else:
            files.append(Path(item))
    if not files:
        raise ManifestError("empty list of manifests")
    return files


def read_manifests(spec: str | os.PathLike | Sequence[str | os.PathLike], **kwargs) -> list[Utterance]:
    """:func:`read_manifest` over every file of :func:`manifest_files`, concatenated in order."""
    return [u for path in manifest_files(spec) for u in read_manifest(path, **kwargs)]


def parse_line(line: str, base: Path, where: str, *, require_text: bool = True,
               allow_outside: bool = False) -> Utterance:
    """Parse one manifest line; ``where`` ("file:line") goes into every error message."""
    try:
        rec = json.loads(line)
    except json.JSONDecodeError as err:
        raise ManifestError(f"{where}: not valid JSON ({err.msg})") from None
    except RecursionError:
        raise ManifestError(f"{where}: JSON nested too deeply to be a manifest line") from None
    if not isinstance(rec, dict):
        raise ManifestError(f"{where}: expected a JSON object, got {type(rec).__name__}")
    audio = rec.get("audio_filepath")
    if not isinstance(audio, str) or not audio:
        raise ManifestError(f"{where}: missing or empty 'audio_filepath'")
    if "\x00" in audio:
        raise ManifestError(f"{where}: audio_filepath {audio!r} contains a NUL character")
    duration = rec.get("duration")
    if not _is_seconds(duration) or duration <= 0:
        raise ManifestError(f"{where}: 'duration' must be a positive number of seconds up to {MAX_DURATION_S:g}, "
                            f"got {duration!r}")
    text = rec.get("text", "")
    if not isinstance(text, str):
        raise ManifestError(f"{where}: 'text' must be a string, got {type(text).__name__}")
    if require_text and not text.strip():
        raise ManifestError(f"{where}: missing or empty 'text'")
    offset = rec.get("offset", 0.0)
    if not _is_seconds(offset) or offset < 0:
        raise ManifestError(f"{where}: 'offset' must be a non-negative number of seconds up to {MAX_DURATION_S:g}, "
                            f"got {offset!r}")
    audio_path = Path(audio)
    if not audio_path.is_absolute():
        resolved = (base / audio_path).resolve()
        if not allow_outside and not resolved.is_relative_to(base):
            raise PathEscapeError(f"{where}: audio_filepath {audio!r} escapes the manifest's directory {base}")
        audio_path = resolved
    utt_id = rec.get("id", audio)
    if not isinstance(utt_id, str) or not utt_id:
        raise ManifestError(f"{where}: 'id' must be a non-empty string")
    if "\x00" in utt_id:  # ids name output files (subtitles), and no file name holds a NUL
        raise ManifestError(f"{where}: id {utt_id!r} contains a NUL character")
    speaker = rec.get("speaker", "")
    if not isinstance(speaker, (str, int)) or isinstance(speaker, bool):
        raise ManifestError(f"{where}: 'speaker' must be a string, got {type(speaker).__name__}")
    return Utterance(utt_id=utt_id, audio_path=str(audio_path), duration_s=float(duration), text=text,
                     offset_s=float(offset), speaker=str(speaker))


def _is_seconds(value) -> bool:
    """A finite number no larger than :data:`MAX_DURATION_S` (booleans are not numbers here)."""
    return (not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            and value <= MAX_DURATION_S)


def write_prepared(path: str | os.PathLike, records: list[dict], skipped: list[str]) -> dict:
    """Write a corpus split's manifest (making its folder) and return what corpus preparation reports of it.

    ``records`` carry ``speaker`` and ``duration``; ``skipped`` names what was left out.
    """
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    write_manifest(path, records)
    return {"manifest": str(path), "utterances": len(records), "skipped": skipped,
            "speakers": len({r["speaker"] for r in records}), "hours": sum(r["duration"] for r in records) / 3600}


def write_manifest(path: str | os.PathLike, records: Iterable[dict]) -> int:
    """Write manifest records atomically; return how many lines were written.

    Each record needs ``audio_filepath`` (relative to ``path``'s directory or absolute),
    ``duration`` and ``text``.
    """
    n = 0
    with atomic_open(path, "w") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
            n += 1
    return n
