"""AN4 (CMU Census database): download the official archive and prepare JSONL manifests.

A corpus is two functions::

    >>> root = download_an4("downloads")                 # doctest: +SKIP
    >>> paths = prepare_an4(root, "data/an4")             # doctest: +SKIP
    >>> sorted(paths)                                     # doctest: +SKIP
    ['dev', 'test', 'train', 'train_full']

or, from the shell::

    asr download-an4 dir=downloads
    asr prepare-an4 src=downloads/an4 out=data/an4

:func:`prepare_an4` takes either the extracted archive (NIST SPHERE audio plus Sphinx
transcriptions; the audio is converted to FLAC under ``out_dir/audio``) or a directory that
already holds manifests, such as a staged copy (its audio is referenced in place, never copied).

Splits: ``train_full`` is the official training set (948 utterances, 74 speakers), ``dev`` holds
out the six training speakers in :data:`DEV_SPEAKERS`, ``train`` is the rest, and ``test`` is
the official test set (130 utterances, 10 speakers). Every manifest record carries a
``speaker`` field next to ``audio_filepath``, ``duration`` and ``text``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath

import soundfile as sf

from asr.corpora.download import DownloadError, download_file, extract_tar
from asr.data.audio import AudioError, audio_info
from asr.data.manifest import read_manifest, write_manifest
from asr.data.sphere import read_sphere
from asr.data.text import normalize_text
from asr.fileio import atomic_write_text

AN4_URL = "http://www.speech.cs.cmu.edu/databases/an4/an4_sphere.tar.gz"

# Training speakers held out for model selection, drawn once with random.Random(1234) (2 female +
# 4 male). Prepared copies of AN4 hold out the same six, so dev numbers compare across them.
DEV_SPEAKERS = ("fejs", "fnsv", "mblb", "mcfl", "mrab", "mtxj")

SPLITS = ("train", "dev", "test", "train_full")

# Official subsets: Sphinx list-file stem and the audio folder under wav/.
_OFFICIAL = {"train_full": ("an4_train", "an4_clstk"), "test": ("an4_test", "an4test_clstk")}

# Audio extensions tried for a fileid, in order: the CMU archive has .sph; the cmusphinx/an4
# git repository has the same tree as RIFF .wav.
_AUDIO_EXTS = (".sph", ".wav", ".flac")

_ARCHIVE_NAME = ".an4_sphere.tar.gz"     # in target_dir while downloading (as .part) and extracting
_DOWNLOAD_MARKER = ".an4_download.done"  # lives inside an4/, so it appears with the tree in one rename
_PREPARE_MARKER = ".an4_prepared.json"   # in out_dir; also keeps the summary and the skip report

_TRANSCRIPT_LINE = re.compile(r"^(?P<text>.*?)\s*\((?P<utt>[^()\s]+)\)\s*$")


class An4Error(Exception):
    """Download or preparation cannot go on; the message says what failed and what to do."""


# --------------------------------------------------------------------------------------------
# Download


def download_an4(target_dir: str | os.PathLike, *, url: str = AN4_URL, retries: int = 3,
                 timeout_s: float = 60.0) -> Path:
    """Download and extract CMU's ``an4_sphere.tar.gz`` into ``target_dir/an4``; return that path.

    The archive is fetched with :func:`asr.corpora.download.download_file` (an interrupted
    download resumes on the next run), extracted into a temporary folder (members with
    absolute paths, ``..`` or links leaving the folder are refused), and renamed into place in
    one step together with a done-marker, so an interrupted run leaves nothing half-extracted
    and a rerun after success is a no-op.

    Args:
        target_dir: folder that receives ``an4/`` (created if needed).
        url: where to fetch the archive (``http(s)://`` or ``file://``).
        retries: download attempts before giving up (client errors such as 404 are not retried).
        timeout_s: socket timeout per attempt.

    Raises:
        An4Error: the download failed (the message names the URL and how to use an existing copy),
            the archive is not AN4, or it contains an unsafe member.
    """
    target_dir = Path(target_dir)
    root = target_dir / "an4"
    if (root / _DOWNLOAD_MARKER).is_file():
        print(f"AN4 already downloaded in {root} (delete {root / _DOWNLOAD_MARKER} to fetch it again)")
        return root
    if root.exists():
        raise An4Error(f"{root} exists but is not a finished download (no {_DOWNLOAD_MARKER} in it); "
                       f"remove it, or if it is a complete copy run: asr prepare-an4 "
                       f"src={root} out=DIR")
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        archive = download_file(url, target_dir / _ARCHIVE_NAME, retries=retries, timeout_s=timeout_s)
    except DownloadError as err:
        raise An4Error(f"{err}. If you already have AN4 (the extracted an4/ folder, or a directory with "
                       f"manifests), skip the download and run: "
                       f"asr prepare-an4 src=/path/to/an4 out=DIR") from None
    try:
        _extract_into_place(archive, root, url)
    except An4Error:
        archive.unlink(missing_ok=True)  # a damaged or foreign archive: the next run fetches it again
        raise
    archive.unlink()
    print(f"AN4 downloaded to {root}")
    return root


def _extract_into_place(archive: Path, root: Path, url: str) -> None:
    """Extract ``archive`` into a staging folder beside ``root``, then rename its ``an4/`` to ``root``."""
    print(f"extracting {url} into {root}", flush=True)
    staging = Path(tempfile.mkdtemp(prefix=".an4_extract.", dir=root.parent))
    try:
        try:
            extract_tar(archive, staging, what=url)
        except DownloadError as err:
            raise An4Error(str(err)) from None
        extracted = staging / "an4"
        if not (extracted / "etc").is_dir():
            raise An4Error(f"{url}: the archive has no an4/etc/ folder; is it the AN4 sphere archive?")
        (extracted / _DOWNLOAD_MARKER).write_text(f"{url}\n", encoding="utf-8")
        os.replace(extracted, root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Preparation


def prepare_an4(src_dir: str | os.PathLike, out_dir: str | os.PathLike, *,
                dev_speakers: tuple[str, ...] = DEV_SPEAKERS) -> dict[str, Path]:
    """Write ``out_dir/{train,dev,test,train_full}.jsonl`` and return their paths by split name.

    ``src_dir`` is one of:

    * the extracted archive (``an4/`` with ``etc/`` and ``wav/``, or its parent): transcripts are
      normalised (see :func:`parse_transcription_line`), each ``.sph`` becomes a 16-bit FLAC under
      ``out_dir/audio/`` and ``duration`` = frames / sample rate. Manifest paths are relative.
    * a directory with manifests (``test.jsonl`` plus ``train_full.jsonl`` and/or ``train.jsonl``,
      optionally ``dev.jsonl``): every line is validated and the output points at the original
      audio by absolute path. Without ``dev.jsonl`` the training set is split by ``dev_speakers``;
      with it, the given split is kept.

    An utterance whose audio is missing or unreadable, or whose transcript is empty, is skipped
    and reported (path and reason); the rest is prepared. The report is printed and stored in the
    done-marker ``out_dir/.an4_prepared.json``, whose presence makes a rerun a no-op.

    Raises:
        An4Error: ``src_dir`` has neither layout, or a split ends up empty.
        asr.data.manifest.ManifestError: a source manifest line is invalid (names file and line).
    """
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    paths = {split: out_dir / f"{split}.jsonl" for split in SPLITS}
    marker = out_dir / _PREPARE_MARKER
    if marker.is_file() and all(p.is_file() for p in paths.values()):
        print(f"AN4 already prepared in {out_dir} (delete {marker} to prepare again)")
        _print_summary(out_dir, json.loads(marker.read_text(encoding="utf-8"))["splits"])
        return paths
    if not src_dir.is_dir():
        raise An4Error(f"{src_dir}: source folder not found")
    if src_dir.resolve() == out_dir.resolve():
        raise An4Error(f"{out_dir}: the output folder must differ from the source folder")

    if any((src_dir / f"{name}.jsonl").is_file() for name in ("train", "train_full")):
        splits, skipped = _splits_from_manifests(src_dir, dev_speakers)
    else:
        splits, skipped = _splits_from_sphere(_find_sphere_root(src_dir), out_dir, dev_speakers)

    # train.jsonl and train_full.jsonl can list the same missing file: report it once
    skipped = list({(s["path"], s["reason"]): s for s in skipped}.values())
    for s in skipped:
        print(f"  skipped {s['path']}: {s['reason']}")
    for split, records in splits.items():
        if not records:
            raise An4Error(f"{src_dir}: split {split!r} has no usable utterances "
                           f"(dev speakers: {' '.join(dev_speakers)}; see the skipped lines above)")
    for split in SPLITS:
        write_manifest(paths[split], splits[split])

    summary = {split: _split_summary(splits[split], skipped, split, dev_speakers) for split in SPLITS}
    _print_summary(out_dir, summary)
    # the marker is written last: if anything above failed, a rerun starts over
    atomic_write_text(marker, json.dumps({"source": str(src_dir.resolve()), "splits": summary,
                                          "skipped": skipped}, indent=1) + "\n")
    return paths


def parse_transcription_line(line: str) -> tuple[str, str]:
    """Split a Sphinx transcription line into ``(utt_id, normalised text)``.

    Drops the trailing ``(utt-id)`` and the ``<s>``/``</s>`` markers (test lines have none),
    then lowercases and maps everything but ``a-z``/apostrophe to spaces.

    Example:
        >>> parse_transcription_line("<s> H I N I C H </s> (cen1-fash-b)")
        ('cen1-fash-b', 'h i n i c h')
        >>> parse_transcription_line("RUBOUT G M E F THREE NINE (an406-fcaw-b)")
        ('an406-fcaw-b', 'rubout g m e f three nine')

    Raises:
        ValueError: the line does not end with ``(utt-id)``.
    """
    match = _TRANSCRIPT_LINE.match(line.strip())
    if not match:
        raise ValueError("line does not end with '(utterance-id)'")
    words = [w for w in match["text"].split() if w not in ("<s>", "</s>")]
    return match["utt"], normalize_text(" ".join(words))


def _find_sphere_root(src_dir: Path) -> Path:
    """The ``an4/`` folder of the original layout: ``src_dir`` itself or ``src_dir/an4``."""
    for root in (src_dir, src_dir / "an4"):
        if (root / "etc" / "an4_train.transcription").is_file():
            return root
    raise An4Error(f"{src_dir}: not an AN4 folder: expected etc/an4_train.transcription (the extracted "
                   f"an4_sphere archive, or its parent) or train.jsonl/train_full.jsonl manifests")


def _splits_from_sphere(root: Path, out_dir: Path, dev_speakers) -> tuple[dict[str, list[dict]], list[dict]]:
    skipped: list[dict] = []
    official = {}
    for name, (list_stem, audio_dir) in _OFFICIAL.items():
        print(f"converting {name} audio from {root / 'wav' / audio_dir} to FLAC", flush=True)
        official[name] = _sphere_records(root, out_dir, name, list_stem, audio_dir, skipped)
    train, dev = _split_by_speaker(official["train_full"], dev_speakers)
    return {"train": train, "dev": dev, "test": official["test"], "train_full": official["train_full"]}, skipped


def _sphere_records(root: Path, out_dir: Path, split: str, list_stem: str, audio_dir: str,
                    skipped: list[dict]) -> list[dict]:
    """Records for one official subset; appends what it cannot use to ``skipped``."""
    def skip(path, speaker, reason):
        skipped.append({"split": split, "speaker": speaker, "path": str(path), "reason": reason})

    trans_path = root / "etc" / f"{list_stem}.transcription"
    if not trans_path.is_file():
        raise An4Error(f"{trans_path}: transcription file not found")
    texts: dict[str, str] = {}
    for lineno, line in enumerate(trans_path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            utt, text = parse_transcription_line(line)
        except ValueError as err:
            skip(f"{trans_path}:{lineno}", "", str(err))
            continue
        texts[utt] = text

    # fileids give each utterance's folder; without them the folder follows from the id
    fileids_path = root / "etc" / f"{list_stem}.fileids"
    if fileids_path.is_file():
        fileids = [ln.strip() for ln in fileids_path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    else:
        fileids = [f"{audio_dir}/{_speaker_from_id(utt)}/{utt}" for utt in texts]

    records, listed = [], set()
    for fileid in fileids:
        rel = PurePosixPath(fileid)
        utt = rel.name
        listed.add(utt)
        speaker = rel.parent.name or _speaker_from_id(utt)
        expected = root / "wav" / f"{fileid}.sph"
        if rel.is_absolute() or ".." in rel.parts:
            skip(fileids_path, speaker, f"fileid {fileid!r} points outside wav/")
            continue
        if utt not in texts:
            skip(expected, speaker, f"no transcription line for {utt} in {trans_path.name}")
            continue
        if not texts[utt]:
            skip(expected, speaker, "empty transcript")
            continue
        src = next((p for p in (root / "wav" / f"{fileid}{ext}" for ext in _AUDIO_EXTS) if p.is_file()), None)
        if src is None:
            skip(expected, speaker, f"audio file not found (tried {', '.join(_AUDIO_EXTS)})")
            continue
        rel_flac = PurePosixPath("audio") / f"{fileid}.flac"
        try:
            duration_s = _convert_to_flac(src, out_dir / rel_flac)
        except AudioError as err:
            skip(src, speaker, err.reason)
            continue
        records.append({"audio_filepath": str(rel_flac), "duration": duration_s, "text": texts[utt],
                        "speaker": speaker})
    for utt in texts.keys() - listed:
        skip(trans_path, _speaker_from_id(utt), f"{utt} is transcribed but not listed in {fileids_path.name}")
    return records


def _convert_to_flac(src: Path, dst: Path) -> float:
    """Write ``src`` as 16-bit FLAC at ``dst`` (same rate and channels); return its duration in s."""
    if dst.is_file():
        # written atomically by an earlier, interrupted run, so it is complete: reuse it
        info = audio_info(dst)
        return info.num_frames / info.sample_rate_hz
    if src.stat().st_size == 0:
        raise AudioError(src, "empty file (0 bytes)")
    try:
        samples, rate_hz = sf.read(str(src), dtype="int16")
    except Exception as sf_err:  # noqa: BLE001 - libsndfile refuses some valid SPHERE headers
        try:
            samples, rate_hz = read_sphere(src)
        except AudioError as err:
            raise AudioError(src, f"cannot decode ({type(sf_err).__name__}: {sf_err}; {err.reason})") from None
    if len(samples) == 0:
        raise AudioError(src, "no samples (zero-length audio)")
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_name(f".{dst.name}.tmp")
    try:
        sf.write(str(tmp), samples, rate_hz, format="FLAC", subtype="PCM_16")
        os.replace(tmp, dst)
    finally:
        tmp.unlink(missing_ok=True)
    return len(samples) / rate_hz


def _splits_from_manifests(src_dir: Path, dev_speakers) -> tuple[dict[str, list[dict]], list[dict]]:
    """Splits from ready manifests, audio referenced by absolute path."""
    skipped: list[dict] = []
    present = {s for s in SPLITS if (src_dir / f"{s}.jsonl").is_file()}
    if "test" not in present:
        raise An4Error(f"{src_dir}: has training manifests but no test.jsonl")

    def load(split: str) -> list[dict]:
        return _load_manifest(src_dir / f"{split}.jsonl", split, skipped)

    test = load("test")
    if "dev" in present:
        dev = load("dev")
        full = load("train_full") if "train_full" in present else None
        if "train" in present:
            train = load("train")
        else:
            dev_audio = {r["audio_filepath"] for r in dev}
            train = [r for r in full if r["audio_filepath"] not in dev_audio]
        if full is None:
            full = train + dev
    else:
        full = load("train_full" if "train_full" in present else "train")
        train, dev = _split_by_speaker(full, dev_speakers)
    return {"train": train, "dev": dev, "test": test, "train_full": full}, skipped


def _load_manifest(path: Path, split: str, skipped: list[dict]) -> list[dict]:
    """Validated records of ``path`` with absolute audio paths and a speaker; missing audio goes to ``skipped``."""
    utts = read_manifest(path)  # checks every line; raises ManifestError naming file:line
    raw = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    records = []
    for utt, rec in zip(utts, raw, strict=True):  # read_manifest keeps the non-blank lines in order
        audio = Path(utt.audio_path)
        speaker = rec.get("speaker") or _speaker_from_id(audio.stem, folder=audio.parent.name)
        if not audio.is_file():
            skipped.append({"split": "test" if split == "test" else "train_full", "speaker": speaker,
                            "path": str(audio), "reason": "audio file not found"})
            continue
        records.append({**rec, "audio_filepath": str(audio), "speaker": speaker})
    return records


def _speaker_from_id(utt_id: str, folder: str = "") -> str:
    """AN4 ids are ``<prompt>-<speaker>-<mic>`` (``an251-fash-b`` -> ``fash``)."""
    parts = utt_id.split("-")
    return parts[1] if len(parts) == 3 else folder or utt_id


def _split_by_speaker(records: list[dict], dev_speakers) -> tuple[list[dict], list[dict]]:
    dev_set = set(dev_speakers)
    return [r for r in records if r["speaker"] not in dev_set], [r for r in records if r["speaker"] in dev_set]


def _split_summary(records: list[dict], skipped: list[dict], split: str, dev_speakers) -> dict:
    # skips are recorded per official subset; train and dev count the ones of their own speakers
    official = "test" if split == "test" else "train_full"
    n_skipped = 0
    for s in skipped:
        if s["split"] == official and not (split == "train" and s["speaker"] in dev_speakers
                                           or split == "dev" and s["speaker"] not in dev_speakers):
            n_skipped += 1
    return {"utterances": len(records), "speakers": len({r["speaker"] for r in records}),
            "hours": round(sum(r["duration"] for r in records) / 3600, 3), "skipped": n_skipped}


def _print_summary(out_dir: Path, summary: dict) -> None:
    print(f"AN4 manifests in {out_dir}:")
    print(f"  {'split':<11}{'utts':>6}{'speakers':>10}{'hours':>8}{'skipped':>9}")
    for split, s in summary.items():
        print(f"  {split:<11}{s['utterances']:>6}{s['speakers']:>10}{s['hours']:>8.3f}{s['skipped']:>9}")


# --------------------------------------------------------------------------------------------
# Command line


if __name__ == "__main__":  # python -m asr.corpora.an4 download|prepare: asr download-an4 / asr prepare-an4
    from asr.cli.corpora import an4_module_main

    sys.exit(an4_module_main(sys.argv[1:]))
