"""What to transcribe: list a folder, a file or a manifest; read durations; shard.

Kept as plain functions over lists so a distributed run can call them in order and
split the work: ``list_inputs`` → ``shard`` → ``probe_durations`` → transcribe.

Every input becomes an :class:`~asr.data.manifest.Utterance` whose ``utt_id`` is its key in
the outputs: the path relative to the input folder, the file name for a single file, or
the manifest's ``id`` / ``audio_filepath``.
"""

from __future__ import annotations

import fnmatch
import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from asr.data.audio import AudioError, audio_info, load_audio
from asr.data.manifest import Utterance, read_manifest

log = logging.getLogger(__name__)

# what libsndfile reads (wav, flac, ogg/opus, mp3, aiff, NIST sphere), plus m4a through librosa/audioread
AUDIO_EXTENSIONS = ("wav", "flac", "ogg", "opus", "mp3", "m4a", "aiff", "aif", "sph")
MANIFEST_SUFFIXES = (".jsonl",)


@dataclass(frozen=True)
class Skipped:
    """A path that was not transcribed, and why (e.g. ``hidden file``, ``not an audio file``)."""

    path: str
    reason: str


@dataclass
class Inputs:
    """The result of :func:`list_inputs`.

    Attributes:
        utts: audio to transcribe (``duration_s`` is 0 until :func:`probe_durations` reads it,
            except for manifests, which give it).
        skipped: paths left out on purpose (hidden, not audio, excluded by the pattern, duplicate).
        from_manifest: durations (and maybe reference texts) came from a manifest.
    """

    utts: list[Utterance]
    skipped: list[Skipped] = field(default_factory=list)
    from_manifest: bool = False

    @property
    def has_references(self) -> bool:
        """Whether a manifest gave reference transcripts, so the outputs can be scored."""
        return self.from_manifest and any(u.text.strip() for u in self.utts)


def list_inputs(path: str | os.PathLike, *, extensions: Sequence[str] = AUDIO_EXTENSIONS,
                include: str = "*") -> Inputs:
    """Everything to transcribe under ``path``: a folder (recursively), one audio file, or a manifest.

    Args:
        path: a folder, an audio file, or a ``.jsonl`` manifest (``audio_filepath``, ``duration``,
            optional ``text``).
        extensions: file name endings that count as audio in a folder (case-insensitive, no dot).
        include: shell pattern matched against the path relative to the folder (``*`` crosses
            ``/``), e.g. ``"*.flac"`` or ``"speaker1/*"``.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ManifestError: a manifest line is unusable.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"input {str(path)!r} does not exist (give a folder, an audio file or a manifest)")
    if p.is_dir():
        return _list_folder(p, tuple(e.lower().lstrip(".") for e in extensions), include)
    if p.suffix.lower() in MANIFEST_SUFFIXES:
        return _dedupe(read_manifest(p, require_text=False), from_manifest=True)
    return Inputs([Utterance(p.name, str(p.absolute()), 0.0)])


def _list_folder(root: Path, extensions: tuple[str, ...], include: str) -> Inputs:
    utts, skipped = [], []
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        for d in list(dirnames):
            if d.startswith("."):
                dirnames.remove(d)  # do not descend into hidden folders (.git, .cache, ...)
                skipped.append(Skipped(str(here / d), "hidden folder"))
            elif _has_extension(d, extensions):
                skipped.append(Skipped(str(here / d), "a folder, not an audio file (searched inside it)"))
        dirnames.sort()  # deterministic order, whatever the file system returns
        for name in sorted(filenames):
            full = here / name
            rel = full.relative_to(root).as_posix()
            if name.startswith("."):
                skipped.append(Skipped(str(full), "hidden file"))
            elif not _has_extension(name, extensions):
                skipped.append(Skipped(str(full), "not an audio file (by extension)"))
            elif not fnmatch.fnmatch(rel, include):
                skipped.append(Skipped(str(full), f"excluded by include={include!r}"))
            else:
                utts.append(Utterance(rel, str(full.absolute()), 0.0))  # a symlink keeps the name it was found under
    return Inputs(utts, skipped)


def _has_extension(name: str, extensions: tuple[str, ...]) -> bool:
    return "." in name and name.rsplit(".", 1)[1].lower() in extensions


def _dedupe(utts: list[Utterance], from_manifest: bool) -> Inputs:
    """Keep the first of several inputs with the same id (an output has one line per id)."""
    seen, kept, skipped = set(), [], []
    for u in utts:
        if u.utt_id in seen:
            skipped.append(Skipped(u.audio_path, "duplicate id (transcribed once)"))
        else:
            seen.add(u.utt_id)
            kept.append(u)
    return Inputs(kept, skipped, from_manifest)


def shard(utts: Sequence[Utterance], rank: int = 0, world_size: int = 1) -> list[Utterance]:
    """This rank's share: every ``world_size``-th input, in the original order."""
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in [0, {world_size})")
    return [u for i, u in enumerate(utts) if i % world_size == rank]


def probe_durations(utts: Sequence[Utterance], *, sample_rate_hz: int, min_duration_s: float = 0.0
                    ) -> tuple[list[Utterance], list[tuple[Utterance, str]]]:
    """Read durations from file headers (no decoding) and set aside unusable files.

    A manifest's duration is only a claim: every input is measured by its header, and what is
    transcribed is the audio that exists. A manifest duration (plus offset) that runs past the end
    of the audio is cut at the end (:func:`duration_warning` words it for the output record).

    Returns:
        ``(usable, failed)``; ``failed`` pairs each unusable input with the reason.
    """
    usable, failed = [], []
    for u in utts:
        try:
            audio_s = _header_duration(u.audio_path, sample_rate_hz)
        except AudioError as err:
            failed.append((u, err.reason))
            continue
        available = audio_s - u.offset_s
        duration = available if u.duration_s <= 0 else min(u.duration_s, available)
        if u.offset_s and available <= 0:
            failed.append((u, f"the segment starts at {u.offset_s} s, after the end of the audio ({audio_s:.3f} s)"))
        elif duration <= 0:
            failed.append((u, "no samples (zero-length audio)"))
        elif duration < min_duration_s:
            failed.append((u, f"too short: {duration:.4f} s (< min_duration_s={min_duration_s})"))
        else:
            usable.append(replace(u, duration_s=duration))
    return usable, failed


def duration_warning(claimed: Utterance, measured: Utterance, tolerance_s: float = 0.1) -> str | None:
    """Why ``claimed``'s manifest duration was cut to ``measured``'s (from :func:`probe_durations`), or None."""
    if claimed.duration_s <= measured.duration_s + tolerance_s:
        return None
    u, audio_s = claimed, measured.offset_s + measured.duration_s
    where = f"offset {u.offset_s} s + duration {u.duration_s} s" if u.offset_s else f"duration {u.duration_s} s"
    return f"the manifest says {where}, but the audio is {audio_s:.3f} s long; transcribed the audio that exists"


def _header_duration(path: str, sample_rate_hz: int) -> float:
    try:
        return audio_info(path).duration_s
    except AudioError as err:
        # audio_info's reason names only its fallback decoder; a short decode says why libsndfile refused too
        load_audio(path, sample_rate_hz, duration_s=0.5)
        raise err from None
