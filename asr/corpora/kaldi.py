"""Kaldi data directories to JSONL manifests.

A Kaldi data directory holds one utterance per line in each of these files::

    text        <utt-id> <transcript ...>
    wav.scp     <recording-id> <audio path>          (or "<command ...> |": a shell pipe)
    utt2spk     <utt-id> <speaker-id>
    segments    <utt-id> <recording-id> <start-s> <end-s>   (optional; without it utt-id = recording-id)
    spk2gender  <speaker-id> m|f                             (optional)

:func:`prepare_kaldi` turns one into a manifest of ``{"id", "audio_filepath", "duration",
"text", "speaker"}`` records (plus ``"offset"`` for segments and ``"gender"`` when known), with
absolute audio paths so the manifest can live anywhere. Relative ``wav.scp`` paths resolve against
``root`` (Kaldi's convention is the directory the recipe ran in, which is rarely the data
directory itself).

A ``wav.scp`` entry that ends in ``|`` runs a shell command to produce the audio. Running it
means executing text from a data file, so it is refused, naming the file and line, unless
``allow_pipes=True``; then each command runs once, here, with a time and size limit, and its
output is stored as a FLAC file under ``audio_dir``: training never runs shell commands.

Example:
    >>> report = prepare_kaldi("speechocean762/train", "exp/data/train.jsonl",
    ...                        root="speechocean762")  # doctest: +SKIP
    >>> report["utterances"], report["speakers"]  # doctest: +SKIP
    (2500, 125)
"""

from __future__ import annotations

import io
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import soundfile as sf

from asr.data.audio import AudioError, check_sample_rate
from asr.data.manifest import write_prepared
from asr.data.text import normalize_text
from asr.fileio import atomic_open

log = logging.getLogger(__name__)

PIPE_TIMEOUT_S = 300.0  # one recording's command; a stuck command must not hang the import
PIPE_MAX_BYTES = 2 * 1024 ** 3  # one recording's audio from a pipe: 2 GB is about 18 h of 16 kHz 16-bit mono


class KaldiError(ValueError):
    """A Kaldi data directory cannot be imported; the message names the file and line."""


@dataclass(frozen=True)
class _Entry:
    key: str
    value: str
    where: str  # "file:line", for messages


def read_table(path: Path, *, required: bool = True, min_fields: int = 2) -> dict[str, _Entry]:
    """A Kaldi table (``<key> <value ...>`` per line) as ``{key: entry}``; duplicate keys are an error."""
    if not path.is_file():
        if required:
            raise KaldiError(f"{path}: missing (a Kaldi data directory needs text, wav.scp and utt2spk)")
        return {}
    table: dict[str, _Entry] = {}
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.strip()
            if not line:
                continue
            parts = line.split(maxsplit=1)
            where = f"{path}:{lineno}"
            if len(parts) < 2 and min_fields > 1:
                raise KaldiError(f"{where}: expected '<key> <value>', got {line!r}")
            key, value = parts[0], (parts[1] if len(parts) > 1 else "")
            if key in table:
                raise KaldiError(f"{where}: key {key!r} repeats {table[key].where}")
            table[key] = _Entry(key, value.strip(), where)
    return table


def _segments(path: Path) -> dict[str, tuple[str, float, float, str]]:
    """``segments`` as ``{utt: (recording, start_s, end_s, where)}``; ``end_s`` of -1 means the file's end."""
    out = {}
    for utt, e in read_table(path, required=False).items():
        fields = e.value.split()
        try:
            rec, start, end = fields[0], float(fields[1]), float(fields[2])
        except (IndexError, ValueError):
            raise KaldiError(f"{e.where}: expected '<utt> <recording> <start-s> <end-s>', got {e.value!r}") from None
        if start < 0 or (end != -1 and end <= start):
            raise KaldiError(f"{e.where}: segment {utt} has start {start} s and end {end} s")
        out[utt] = (rec, start, end, e.where)
    return out


def _is_pipe(value: str) -> bool:
    return value.rstrip().endswith("|")


def _run_pipe(entry: _Entry, audio_dir: Path) -> Path:
    """Run a ``wav.scp`` pipe command once and store its audio as ``audio_dir/<recording>.flac``."""
    out = audio_dir / f"{entry.key}.flac"
    if out.is_file():  # an earlier import already ran it; the command's output is the same audio
        return out
    command = entry.value.rstrip()[:-1].strip()
    try:
        proc = subprocess.run(command, shell=True, capture_output=True, timeout=PIPE_TIMEOUT_S, check=False)
    except subprocess.TimeoutExpired:
        raise KaldiError(f"{entry.where}: the command for {entry.key} ran over {PIPE_TIMEOUT_S:.0f} s") from None
    if proc.returncode != 0:
        raise KaldiError(f"{entry.where}: the command for {entry.key} failed with status {proc.returncode}: "
                         f"{proc.stderr.decode(errors='replace').strip()[-300:]}")
    if len(proc.stdout) > PIPE_MAX_BYTES:
        raise KaldiError(f"{entry.where}: the command for {entry.key} wrote over {PIPE_MAX_BYTES} bytes")
    try:
        samples, sr = sf.read(io.BytesIO(proc.stdout), dtype="int16")
    except (RuntimeError, sf.LibsndfileError) as err:
        raise KaldiError(f"{entry.where}: the output of the command for {entry.key} is not audio ({err})") from None
    audio_dir.mkdir(parents=True, exist_ok=True)
    with atomic_open(out, "wb") as f:
        sf.write(f, samples, sr, format="FLAC", subtype="PCM_16")
    return out


def _recordings(data_dir: Path, root: Path, allow_pipes: bool, audio_dir: Path) -> dict[str, tuple[Path, str]]:
    """``wav.scp`` as ``{recording: (absolute audio path, where)}``, pipes refused or materialised."""
    recs = {}
    for key, e in read_table(data_dir / "wav.scp").items():
        if _is_pipe(e.value):
            if not allow_pipes:
                raise KaldiError(f"{e.where}: recording {key} is a shell command ({e.value!r}); importing it would "
                                 "run that command. Convert the audio to files first, or pass allow_pipes=true "
                                 "to run each command once and store its output as FLAC")
            recs[key] = (_run_pipe(e, audio_dir), e.where)
            continue
        if ":" in Path(e.value).name and not Path(e.value).is_file():  # foo.ark:123 — an archive offset
            raise KaldiError(f"{e.where}: recording {key} points into an archive ({e.value!r}); "
                             "only audio files (or, with allow_pipes, commands) are supported")
        path = Path(e.value)
        recs[key] = ((path if path.is_absolute() else root / path).resolve(), e.where)
    return recs


def _duration(path: Path, where: str, cache: dict[Path, float]) -> float:
    if path not in cache:
        try:
            info = sf.info(str(path))
            check_sample_rate(path, info.samplerate)
        except (RuntimeError, sf.LibsndfileError, AudioError) as err:
            raise KaldiError(f"{where}: cannot read {path} ({err})") from None
        cache[path] = info.frames / info.samplerate
    return cache[path]


def kaldi_records(data_dir: str | os.PathLike, *, root: str | os.PathLike | None = None, allow_pipes: bool = False,
                  audio_dir: str | os.PathLike | None = None, normalize: bool = True) -> tuple[list[dict], list[str]]:
    """The manifest records of a Kaldi data directory, and the utterances left out (each with its reason).

    Args:
        data_dir: the directory holding ``text``, ``wav.scp``, ``utt2spk`` (and optionally ``segments``,
            ``spk2gender``).
        root: what relative ``wav.scp`` paths are relative to; default ``data_dir``.
        allow_pipes: run ``wav.scp`` commands (``... |``) once and store their output under ``audio_dir``.
        audio_dir: where piped recordings are stored (default ``<data_dir>/audio_from_pipes``).
        normalize: lowercase the text and keep only ``a-z``, apostrophes and spaces
            (:func:`asr.data.text.normalize_text`), as the other corpora are prepared.
    """
    data_dir = Path(data_dir)
    root = Path(root) if root is not None else data_dir
    text = read_table(data_dir / "text", min_fields=1)
    utt2spk = read_table(data_dir / "utt2spk")
    genders = {k: e.value.lower() for k, e in read_table(data_dir / "spk2gender", required=False).items()}
    recs = _recordings(data_dir, root, allow_pipes, Path(audio_dir or data_dir / "audio_from_pipes"))
    segments = _segments(data_dir / "segments")
    records, skipped, durations = [], [], {}
    for utt, t in text.items():
        words = normalize_text(t.value) if normalize else t.value.strip()
        if not words:
            skipped.append(f"{t.where}: {utt} has no text")
            continue
        if utt not in utt2spk:
            raise KaldiError(f"{t.where}: utterance {utt} has no speaker in {data_dir / 'utt2spk'}")
        rec_id, start, end, where = segments.get(utt, (utt, 0.0, -1.0, t.where))
        if rec_id not in recs:
            raise KaldiError(f"{where}: recording {rec_id} of utterance {utt} is not in {data_dir / 'wav.scp'}")
        path, rec_where = recs[rec_id]
        total = _duration(path, rec_where, durations)
        end = total if end == -1 else min(end, total)
        if end <= start:
            skipped.append(f"{where}: {utt} starts at {start} s, after its recording ends ({total:.2f} s)")
            continue
        speaker = utt2spk[utt].value
        rec = {"id": utt, "audio_filepath": str(path), "duration": round(end - start, 4), "text": words,
               "speaker": speaker}
        if utt in segments:
            rec["offset"] = start
        if speaker in genders:
            rec["gender"] = genders[speaker]
        records.append(rec)
    return records, skipped


def prepare_kaldi(data_dir: str | os.PathLike, out_manifest: str | os.PathLike, **kwargs) -> dict:
    """Write the manifest of :func:`kaldi_records` to ``out_manifest``; returns a report of what was imported."""
    records, skipped = kaldi_records(data_dir, **kwargs)
    if not records:
        raise KaldiError(f"{data_dir}: no usable utterances ({len(skipped)} left out)")
    for reason in skipped:
        log.warning("left out: %s", reason)
    return write_prepared(out_manifest, records, skipped)
