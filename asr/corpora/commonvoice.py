"""Mozilla Common Voice: a downloaded release to JSONL manifests.

Common Voice is downloaded by hand (its site asks for an e-mail address and an agreement), as one
folder per language::

    cv-corpus-<version>/<lang>/train.tsv, dev.tsv, test.tsv, validated.tsv, ...
    cv-corpus-<version>/<lang>/clips/<clip>.mp3

Each ``.tsv`` is tab-separated with a header line; :func:`prepare_commonvoice` reads its
``client_id`` (the speaker), ``path`` (the clip under ``clips/``) and ``sentence`` columns and writes
``out_dir/<split>.jsonl`` with one record per clip: ``{"id", "audio_filepath" (absolute), "duration"
(s, read from the MP3), "text" (normalised), "speaker"}``. Clips stay where they are, as MP3 (asr
reads MP3 through libsndfile >= 1.1 and resamples the 48 kHz clips on load).

Example::

    >>> report = prepare_commonvoice("cv-corpus-17.0/en", "data/cv_en")   # doctest: +SKIP
    >>> sorted(report)                                                   # doctest: +SKIP
    ['dev', 'test', 'train']

or ``asr prepare-commonvoice src=cv-corpus-17.0/en out=data/cv_en``.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Iterable
from pathlib import Path

import soundfile as sf

from asr.data.audio import AudioError, check_sample_rate
from asr.data.manifest import write_prepared
from asr.data.text import normalize_text

SPLITS = ("train", "dev", "test")
REQUIRED_COLUMNS = ("client_id", "path", "sentence")


class CommonVoiceError(Exception):
    """A release cannot be prepared; the message names the file (and line) and why."""


def prepare_commonvoice(src: str | os.PathLike, out_dir: str | os.PathLike, splits: Iterable[str] = SPLITS, *,
                        normalize: bool = True) -> dict[str, dict]:
    """Write ``out_dir/<split>.jsonl`` for each ``<split>.tsv`` of a Common Voice language folder.

    Args:
        src: the language folder (holds ``train.tsv`` ... and ``clips/``).
        out_dir: where the manifests go (created if needed).
        splits: tsv stems to prepare; ``validated``, ``other`` and ``invalidated`` work too.
        normalize: lowercase and keep only ``a-z``, apostrophes and spaces
            (:func:`asr.data.text.normalize_text`), as the other corpora are prepared; false keeps the
            sentence as written (for languages outside ``a-z``).

    Returns:
        ``{split: {"manifest", "utterances", "speakers", "hours", "skipped"}}``. A row whose clip is
        missing or unreadable, or whose sentence is empty, is left out and listed in ``skipped`` as
        ``"<tsv>:<line>: <reason>"``; the rest is prepared.

    Raises:
        CommonVoiceError: a ``.tsv`` is missing or lacks a required column, or a split has no usable rows.
    """
    src, out_dir = Path(src).resolve(), Path(out_dir)
    report = {}
    for split in [splits] if isinstance(splits, str) else list(dict.fromkeys(splits)):
        records, skipped = commonvoice_records(src / f"{split}.tsv", src / "clips", normalize=normalize)
        if not records:
            raise CommonVoiceError(f"{src / f'{split}.tsv'}: no usable rows ({len(skipped)} left out)")
        report[split] = write_prepared(out_dir / f"{split}.jsonl", records, skipped)
    return report


def commonvoice_records(tsv: str | os.PathLike, clips_dir: str | os.PathLike, *,
                        normalize: bool = True) -> tuple[list[dict], list[str]]:
    """The manifest records of one Common Voice ``.tsv`` (in file order), and the rows left out with reasons."""
    tsv, clips_dir = Path(tsv), Path(clips_dir).resolve()
    if not tsv.is_file():
        raise CommonVoiceError(f"{tsv}: not found (a Common Voice language folder holds train.tsv, dev.tsv, "
                               f"test.tsv and clips/)")
    records, skipped, seen = [], [], {}
    # QUOTE_NONE: sentences hold quote marks that are text, not CSV quoting
    with open(tsv, encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        missing = [c for c in REQUIRED_COLUMNS if c not in (reader.fieldnames or ())]
        if missing:
            raise CommonVoiceError(f"{tsv}:1: no column(s) {', '.join(missing)} in the header "
                                   f"(expected Common Voice's client_id, path, sentence, ...)")
        for row in reader:
            where = f"{tsv}:{reader.line_num}"
            rec = _row_record(row, clips_dir, normalize)
            if isinstance(rec, str):
                skipped.append(f"{where}: {rec}")
            elif rec["id"] in seen:
                skipped.append(f"{where}: clip {row['path']} repeats line {seen[rec['id']]}")
            else:
                seen[rec["id"]] = reader.line_num
                records.append(rec)
    return records, skipped


def _row_record(row: dict, clips_dir: Path, normalize: bool) -> dict | str:
    """One tsv row as a manifest record, or the reason it is left out."""
    name, speaker = (row.get("path") or "").strip(), (row.get("client_id") or "").strip()
    sentence = row.get("sentence") or ""
    text = normalize_text(sentence) if normalize else " ".join(sentence.split())
    if not name:
        return "no clip path"
    if not text:
        return f"clip {name} has an empty sentence"
    if not speaker:
        return f"clip {name} has no client_id"
    if Path(name).is_absolute() or ".." in Path(name).parts:
        return f"clip path {name!r} leaves {clips_dir}"
    audio = clips_dir / name
    if not audio.is_file() and not audio.suffix and audio.with_suffix(".mp3").is_file():
        audio = audio.with_suffix(".mp3")  # the earliest releases list clips without their extension
    if not audio.is_file():
        return f"clip {audio} not found"
    try:
        info = sf.info(str(audio))
        check_sample_rate(audio, info.samplerate)
    except (RuntimeError, sf.LibsndfileError, AudioError) as err:
        return f"cannot read clip {audio} ({str(err).splitlines()[0]})"
    if info.frames <= 0 or info.samplerate <= 0:
        return f"clip {audio} has no samples"
    return {"id": audio.stem, "audio_filepath": str(audio), "duration": round(info.frames / info.samplerate, 4),
            "text": text, "speaker": speaker}
