"""Manifest validation: every line checked, every problem reported with its line and path.

:func:`validate_manifest` reads a whole manifest (it does not stop at the first bad line)
and returns a report, a plain dict that ``asr-validate`` writes as JSON::

    {"manifest": "data/train.jsonl", "lines": 948, "utterances": 947, "audio_check": "decode",
     "fatal": 1, "warnings": 0, "ok": false, "kinds": {"missing_audio": 1},
     "problems": [{"line": 12, "path": "/abs/audio/x.flac", "kind": "missing_audio", "fatal": true,
                   "message": "/abs/audio/x.flac: file does not exist"}]}

Problem kinds. Fatal ones make an utterance unusable or the manifest ambiguous, so
training refuses to start on them; warnings are left to training, which drops each such
utterance by name (:func:`asr.data.dataset.filter_utterances`) or trains on it as written.

========================  =====  ==========================================================
kind                      fatal  meaning
========================  =====  ==========================================================
bad_line                  yes    not UTF-8, not JSON, not an object, a field missing or of the wrong type
path_escape               yes    a relative ``audio_filepath`` leaves the manifest's directory
missing_audio             yes    the audio file does not exist (or is not a regular file)
unreadable_audio          yes    the file cannot be decoded as audio (empty, truncated, NaN...)
empty_text                yes    the transcript is empty, or nothing is left after normalisation
duplicate                 yes    an utterance id, or an audio file + offset, seen on an earlier line
duration_mismatch         no     the manifest's duration differs from the audio header's
text_not_normalised       no     the transcript changes under :func:`asr.data.text.normalize_text`
out_of_vocabulary         no     characters outside the vocabulary (only with a vocabulary)
transcript_too_long       no     CTC needs more frames than the audio gives after subsampling
========================  =====  ==========================================================

Example:
    >>> report = validate_manifest("data/an4/train.jsonl", audio="header")  # doctest: +SKIP
    >>> report["ok"], report["kinds"]  # doctest: +SKIP
    (True, {})
"""

from __future__ import annotations

import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

from asr.data.audio import AudioError, audio_info, check_exists, load_audio
from asr.data.dataset import ctc_min_frames
from asr.data.manifest import ManifestError, PathEscapeError, Utterance, parse_line
from asr.data.text import normalize_text
from asr.data.tokenizer import Tokenizer
from asr.frontend.features import FeatureConfig, output_frames_for_duration

log = logging.getLogger(__name__)

FATAL_KINDS = ("bad_line", "path_escape", "missing_audio", "unreadable_audio", "empty_text", "duplicate")
WARNING_KINDS = ("duration_mismatch", "text_not_normalised", "out_of_vocabulary", "transcript_too_long")
AUDIO_CHECKS = ("exists", "header", "decode")  # cheapest first; "decode" reads every sample


@dataclass(frozen=True)
class Problem:
    """One problem on one manifest line. ``path`` is the resolved audio path ("" if unparsable)."""

    line: int
    path: str
    kind: str
    message: str

    @property
    def fatal(self) -> bool:
        """Whether the problem makes the utterance unusable (see :data:`FATAL_KINDS`)."""
        return self.kind in FATAL_KINDS

    def __str__(self) -> str:
        return f"line {self.line}: {self.kind}: {self.message}"


def validate_manifest(path: str | os.PathLike, *, features: FeatureConfig | None = None,
                      tokenizer: Tokenizer | None = None, audio: str = "decode",
                      duration_tolerance_s: float = 0.1, require_text: bool = True) -> dict:
    """Check every line of a JSONL manifest; return the report described in the module docstring.

    Args:
        path: the manifest.
        features: front-end settings for the CTC-length check (default :class:`FeatureConfig`).
        tokenizer: if given, transcripts are also checked against its vocabulary.
        audio: ``"exists"`` (stat only), ``"header"`` (read the header: format and duration), or
            ``"decode"`` (decode every sample: finds truncated data and NaN samples too).
        duration_tolerance_s: allowed difference between the manifest's and the header's duration
            (manifests often round durations to 0.1 s).
        require_text: False for manifests without transcripts (transcription input).

    Raises:
        ManifestError: only when the manifest itself is missing.
    """
    if audio not in AUDIO_CHECKS:
        raise ValueError(f"audio={audio!r} is not one of {', '.join(AUDIO_CHECKS)}")
    features = features or FeatureConfig()
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    base = path.resolve().parent
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    seen_audio: dict[tuple[str, float], int] = {}
    audio_seconds: dict[str, float | AudioError] = {}  # per file: duration, or why it is unusable
    lines = utterances = 0
    with open(path, "rb") as f:
        raw_lines = f.read().split(b"\n")
    for lineno, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        lines += 1
        u = _parse_raw_line(raw, base, f"{path}:{lineno}")
        if isinstance(u, tuple):  # (kind, message): the line gives no utterance
            problems.append(Problem(lineno, "", *u))
            continue
        found = _check_duplicates(u, lineno, seen_ids, seen_audio)
        found += _check_audio(u, audio, audio_seconds, duration_tolerance_s)
        if require_text:
            found += _check_text(u.text, u.duration_s, features, tokenizer)
        problems += [Problem(lineno, u.audio_path, kind, msg) for kind, msg in found]
        utterances += not any(kind in FATAL_KINDS for kind, _ in found)
    return make_report(path, problems, lines=lines, utterances=utterances, audio=audio)


def _parse_raw_line(raw: bytes, base: Path, where: str) -> Utterance | tuple[str, str]:
    """The utterance on one manifest line, or ``(kind, message)`` of why there is none."""
    try:
        line = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        return "bad_line", f"{where}: not UTF-8 ({err.reason} at byte {err.start})"
    try:
        return parse_line(line, base, where, require_text=False)
    except PathEscapeError as err:
        return "path_escape", str(err)
    except ManifestError as err:
        return "bad_line", str(err)


def _check_duplicates(u: Utterance, lineno: int, seen_ids: dict[str, int],
                      seen_audio: dict[tuple[str, float], int]) -> list[tuple[str, str]]:
    """A repeated utterance id, or else a repeated (audio file, offset); records this line's."""
    first_id = seen_ids.setdefault(u.utt_id, lineno)
    first_audio = seen_audio.setdefault((u.audio_path, u.offset_s), lineno)
    if first_id != lineno:
        return [("duplicate", f"utterance id {u.utt_id!r} is already on line {first_id}")]
    if first_audio != lineno:
        return [("duplicate", f"the same audio (offset {u.offset_s} s) is already on line {first_audio}")]
    return []


def _check_audio(u, level: str, cache: dict, tolerance_s: float) -> list[tuple[str, str]]:
    got = cache.get(u.audio_path)
    if got is None:
        try:
            if level == "exists":
                check_exists(u.audio_path)  # a file, or a member of a shard (asr.data.shards)
                got = -1.0
            elif level == "header":
                got = audio_info(u.audio_path).duration_s
            else:
                sr = audio_info(u.audio_path).sample_rate_hz
                got = len(load_audio(u.audio_path, sr)) / sr  # at its own rate: no resampling cost
        except AudioError as err:
            got = err
        cache[u.audio_path] = got
    if isinstance(got, AudioError):
        missing = got.reason in ("file does not exist", "not a regular file")
        return [("missing_audio" if missing else "unreadable_audio", str(got))]
    if got < 0:  # "exists": no duration read
        return []
    if u.offset_s:  # a segment must lie inside its file
        if u.offset_s + u.duration_s > got + tolerance_s:
            return [("duration_mismatch", f"segment {u.offset_s} s + {u.duration_s} s ends after the audio "
                                          f"({got:.3f} s)")]
    elif abs(got - u.duration_s) > tolerance_s:
        return [("duration_mismatch", f"manifest says {u.duration_s} s, the audio is {got:.3f} s")]
    return []


def _check_text(text: str, duration_s: float, features: FeatureConfig,
                tokenizer: Tokenizer | None) -> list[tuple[str, str]]:
    norm = normalize_text(text)
    if not text.strip() or not norm:
        return [("empty_text", "empty transcript" if not text.strip() else
                 f"transcript {text!r} is empty after normalisation")]
    found = []
    if norm != text:
        found.append(("text_not_normalised", f"transcript {text!r} normalises to {norm!r}"))
    if tokenizer is not None and tokenizer.unknown_chars(text):
        found.append(("out_of_vocabulary", f"characters {sorted(tokenizer.unknown_chars(text))!r} are not in the "
                                           f"vocabulary"))
    # without a tokenizer (or text it cannot encode) count characters: one token per character
    tokens = tokenizer.encode(text) if tokenizer is not None and not tokenizer.unknown_chars(text) else text
    need, have = ctc_min_frames(tokens), output_frames_for_duration(features, duration_s)
    if need > have:
        found.append(("transcript_too_long", f"transcript needs {need} CTC frames but {duration_s} s of audio "
                                             f"gives {have} after subsampling"))
    return found


def make_report(path, problems: list[Problem], *, lines: int, utterances: int, audio: str) -> dict:
    """The report dict of the module docstring from a manifest's problems and counts.

    Args:
        path: the manifest. problems: every problem, in line order.
        lines: non-blank lines read. utterances: lines without a fatal problem.
        audio: the audio check that ran (one of :data:`AUDIO_CHECKS`).
    """
    kinds: dict[str, int] = {}
    for p in problems:
        kinds[p.kind] = kinds.get(p.kind, 0) + 1
    fatal = sum(p.fatal for p in problems)
    return {"manifest": str(path), "lines": lines, "utterances": utterances, "audio_check": audio,
            "fatal": fatal, "warnings": len(problems) - fatal, "ok": fatal == 0, "kinds": kinds,
            "problems": [{**asdict(p), "fatal": p.fatal} for p in problems]}


def require_valid(path: str | os.PathLike, key: str, *, features: FeatureConfig,
                  tokenizer: Tokenizer | None = None, audio: str = "header", show: int = 20) -> dict:
    """Validate a manifest before work starts; raise :class:`ManifestError` naming its fatal problems.

    ``key`` is the setting that named the manifest (``data.train_manifest``), so the message
    says what to fix. Warnings are counted in the log, not raised; the first ``show`` fatal
    problems are listed in the error.
    """
    report = validate_manifest(path, features=features, tokenizer=tokenizer, audio=audio)
    fatal = [p for p in report["problems"] if p["fatal"]]
    warnings = [p for p in report["problems"] if not p["fatal"]]
    if fatal:
        listed = "\n".join(f"  line {p['line']}: {p['kind']}: {p['message']}" for p in fatal[:show])
        more = f"\n  ... and {len(fatal) - show} more" if len(fatal) > show else ""
        raise ManifestError(f"{key}: {path} has {len(fatal)} fatal problem(s) "
                            f"({', '.join(f'{k} {n}' for k, n in report['kinds'].items() if k in FATAL_KINDS)}); "
                            f"fix them, or see `asr-validate data.manifest={path}` for the full report "
                            f"(data.validate=false skips this check):\n{listed}{more}")
    kinds = ", ".join(f"{k} {n}" for k, n in report["kinds"].items())
    if warnings:  # training drops or keeps these utterances itself, naming each one
        log.warning("%s: %d utterances checked (audio: %s); %d warning(s): %s", key, report["utterances"], audio,
                    len(warnings), kinds)
    else:
        log.info("%s: %d utterances checked (audio: %s), no problems", key, report["utterances"], audio)
    return report
