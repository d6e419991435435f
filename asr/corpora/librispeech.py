"""LibriSpeech (OpenSLR 12): download the official archives and prepare JSONL manifests.

A corpus is two functions::

    >>> root = download_librispeech("downloads", subsets=["dev-clean"])    # doctest: +SKIP
    >>> report = prepare_librispeech(root, "data/librispeech")            # doctest: +SKIP
    >>> report["dev-clean"]["utterances"]                                 # doctest: +SKIP
    2703

or, from the shell::

    asr download-librispeech dir=downloads subsets=[dev-clean,test-clean]
    asr prepare-librispeech src=downloads/LibriSpeech out=data/librispeech

The tree both work on is LibriSpeech's own::

    LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac
    LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>.trans.txt   (<utt-id> <TRANSCRIPT> per line)

:func:`prepare_librispeech` writes ``out_dir/<subset>.jsonl`` with one record per utterance:
``{"id", "audio_filepath" (absolute), "duration" (s, from the FLAC header), "text"
(normalised), "speaker", "chapter"}``. The audio is referenced in place, never copied.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path

import soundfile as sf

from asr.corpora.download import DownloadError, download_file, extract_tar
from asr.data.audio import AudioError, check_sample_rate
from asr.data.manifest import write_prepared
from asr.data.text import normalize_text

OPENSLR_URL = "https://www.openslr.org/resources/12"  # <OPENSLR_URL>/<subset>.tar.gz

SUBSETS = ("train-clean-100", "train-clean-360", "train-other-500", "dev-clean", "dev-other", "test-clean",
           "test-other")

# SHA-256 of the official archives, as torchaudio.datasets.LIBRISPEECH verifies them; dev-clean's was also
# seen to come from the archive matching the publisher's MD5 list (openslr.org/resources/12/md5sum.txt).
SHA256 = {
    "dev-clean": "76f87d090650617fca0cac8f88b9416e0ebf80350acb97b343a85fa903728ab3",
    "dev-other": "12661c48e8c3fe1de2c1caa4c3e135193bfb1811584f11f569dd12645aa84365",
    "test-clean": "39fde525e59672dc6d1551919b1478f724438a95aa55f874b576be21967e6c23",
    "test-other": "d09c181bba5cf717b3dee7d4d592af11a3ee3a09e08ae025c5506f6ebe961c29",
    "train-clean-100": "d4ddd1d5a6ab303066f14971d768ee43278a5f2a0aa43dc716b0e64ecbbbf6e2",
    "train-clean-360": "146a56496217e96c14334a160df97fffedd6e0a04e66b9c5af0d40be3c792ecf",
    "train-other-500": "ddb22f27f96ec163645d53215559df6aa36515f26e01dd70798188350adcb6d2",
}

_DOWNLOAD_MARKER = ".librispeech_download.done"  # inside <subset>/, so it appears with the tree in one rename


class LibriSpeechError(Exception):
    """Download or preparation cannot go on; the message names the subset, file or URL and why."""


def read_checksums(path: str | os.PathLike) -> dict[str, str]:
    """``sha256sum`` output (``<hex>  <subset>.tar.gz`` per line) as ``{subset: hex}``.

    Raises:
        LibriSpeechError: a line is not ``<64 hex digits> <file name>`` (names the file and line).
    """
    out = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        fields = line.split()
        digest, name = fields[0].lower(), fields[-1].lstrip("*")
        if len(fields) != 2 or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
            raise LibriSpeechError(f"{path}:{lineno}: expected '<sha256 hex> <archive name>', got {line.strip()!r}")
        out[Path(name).name.removesuffix(".tar.gz")] = digest
    return out


# --------------------------------------------------------------------------------------------
# Download


def download_librispeech(target_dir: str | os.PathLike, subsets: Iterable[str] = ("dev-clean",), *,
                         base_url: str = OPENSLR_URL, sha256: Mapping[str, str] | None = None, retries: int = 3,
                         timeout_s: float = 60.0) -> Path:
    """Download and extract ``<base_url>/<subset>.tar.gz`` into ``target_dir/LibriSpeech/<subset>``; return
    ``target_dir/LibriSpeech``.

    Each archive is checked against its SHA-256 (:data:`SHA256`, the official archives' sums; ``sha256``
    adds or replaces entries, e.g. from :func:`read_checksums` for a mirror that repacked them); a subset
    with no known sum is refused rather than fetched unverified. Downloads resume where an interrupted run
    stopped (:func:`asr.corpora.download.download_file`), an archive is extracted into a staging folder
    and its ``<subset>/`` renamed into place with a done-marker, so a subset is either absent or complete,
    and a rerun after success fetches nothing. The archive is deleted once extracted; one that fails to
    extract is kept (its checksum matched), so a rerun extracts it again without fetching it.

    Args:
        target_dir: folder that receives ``LibriSpeech/`` (created if needed).
        subsets: any of :data:`SUBSETS` (or other names that ``sha256`` gives a sum for).
        base_url: where the archives are (``http(s)://`` or ``file://``), without the trailing ``/``.
        sha256: ``{subset: hex}`` sums that override or extend :data:`SHA256`.
        retries, timeout_s: per archive, as in :func:`~asr.corpora.download.download_file`.

    Raises:
        LibriSpeechError: an unknown subset, a failed or mismatching download (names the URL), a
            ``<subset>/`` folder that exists but is not a finished download, or an archive without
            ``LibriSpeech/<subset>/``.
    """
    target_dir = Path(target_dir)
    sums = {**SHA256, **{k: v.lower() for k, v in (sha256 or {}).items()}}
    subsets = list(dict.fromkeys([subsets] if isinstance(subsets, str) else subsets))
    unknown = [s for s in subsets if s not in sums]
    if unknown:
        raise LibriSpeechError(f"unknown LibriSpeech subset(s) {', '.join(unknown)}: expected some of "
                               f"{', '.join(SUBSETS)} (or pass a checksum for another archive)")
    root = target_dir / "LibriSpeech"
    for subset in subsets:
        _download_subset(target_dir, subset, f"{base_url.rstrip('/')}/{subset}.tar.gz", sums[subset],
                         retries=retries, timeout_s=timeout_s)
    return root


def _download_subset(target_dir: Path, subset: str, url: str, sha256: str, *, retries: int,
                     timeout_s: float) -> None:
    dest = target_dir / "LibriSpeech" / subset
    if (dest / _DOWNLOAD_MARKER).is_file():
        print(f"LibriSpeech {subset} already downloaded in {dest} (delete {dest / _DOWNLOAD_MARKER} to fetch it "
              f"again)")
        return
    if dest.exists():
        raise LibriSpeechError(f"{dest} exists but is not a finished download (no {_DOWNLOAD_MARKER} in it); "
                               f"remove it, or if it is a complete copy run: asr prepare-librispeech "
                               f"src={dest.parent} out=DIR")
    target_dir.mkdir(parents=True, exist_ok=True)
    try:
        archive = download_file(url, target_dir / f".{subset}.tar.gz", sha256=sha256, retries=retries,
                                timeout_s=timeout_s)
    except DownloadError as err:
        raise LibriSpeechError(str(err)) from None
    _extract_into_place(archive, target_dir / "LibriSpeech", subset, url)
    archive.unlink()
    print(f"LibriSpeech {subset} downloaded to {dest}")


def _extract_into_place(archive: Path, root: Path, subset: str, url: str) -> None:
    """Extract ``archive`` into a staging folder beside ``root``, then rename its ``LibriSpeech/<subset>``
    to ``root/<subset>``; the corpus-wide files (README.TXT, SPEAKERS.TXT, ...) join ``root`` unless there."""
    print(f"extracting {url} into {root / subset}", flush=True)
    staging = Path(tempfile.mkdtemp(prefix=f".librispeech_extract.{subset}.", dir=root.parent))
    try:
        try:
            extract_tar(archive, staging, what=url)
        except DownloadError as err:
            raise LibriSpeechError(str(err)) from None
        extracted = staging / "LibriSpeech" / subset
        if not extracted.is_dir():
            raise LibriSpeechError(f"{url}: the archive has no LibriSpeech/{subset}/ folder; is it the "
                                   f"{subset} archive?")
        (extracted / _DOWNLOAD_MARKER).write_text(f"{url}\n", encoding="utf-8")
        root.mkdir(exist_ok=True)
        for item in (staging / "LibriSpeech").iterdir():
            if item.is_file() and not (root / item.name).exists():
                os.replace(item, root / item.name)
        os.replace(extracted, root / subset)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


# --------------------------------------------------------------------------------------------
# Preparation


def prepare_librispeech(src: str | os.PathLike, out_dir: str | os.PathLike,
                        subsets: Iterable[str] | None = None) -> dict[str, dict]:
    """Write ``out_dir/<subset>.jsonl`` for each subset of a LibriSpeech tree; return a report per subset.

    Args:
        src: the ``LibriSpeech/`` folder, or the folder holding it.
        out_dir: where the manifests go (created if needed); the audio stays where it is.
        subsets: subset folders to prepare (``dev-clean``, ...; any folder in the LibriSpeech layout, such
            as Mini LibriSpeech's ``dev-clean-2``); None: every one of :data:`SUBSETS` present.

    Returns:
        ``{subset: {"manifest", "utterances", "speakers", "hours", "skipped"}}``; ``skipped`` lists each
        utterance left out as ``"<file>[:<line>]: <reason>"`` (no audio, no transcript, unreadable FLAC,
        empty text). The rest is prepared.

    Raises:
        LibriSpeechError: ``src`` holds no subsets, a named subset is missing, or one has no usable utterances.
    """
    root = Path(src)
    subsets = [subsets] if isinstance(subsets, str) else subsets
    if not any((root / s).is_dir() for s in (*SUBSETS, *(subsets or ()))) and (root / "LibriSpeech").is_dir():
        root = root / "LibriSpeech"
    if subsets is None:
        subsets = [s for s in SUBSETS if (root / s).is_dir()]
        if not subsets:
            raise LibriSpeechError(f"{src}: no LibriSpeech subsets found (expected folders such as "
                                   f"LibriSpeech/dev-clean/<speaker>/<chapter>/)")
    report = {}
    for subset in dict.fromkeys(subsets):
        if not (root / subset).is_dir():
            raise LibriSpeechError(f"{root / subset}: subset folder not found")
        records, skipped = librispeech_records(root / subset)
        if not records:
            raise LibriSpeechError(f"{root / subset}: no usable utterances ({len(skipped)} left out)")
        report[subset] = write_prepared(Path(out_dir) / f"{subset}.jsonl", records, skipped)
    return report


def librispeech_records(subset_dir: str | os.PathLike) -> tuple[list[dict], list[str]]:
    """The manifest records of one subset folder (sorted by id), and the utterances left out with reasons."""
    subset_dir = Path(subset_dir).resolve()
    records: list[dict] = []
    skipped: list[str] = []
    listed: set[Path] = set()
    for trans in sorted(subset_dir.glob("*/*/*.trans.txt")):
        records += _chapter_records(trans, listed, skipped)
    for flac in sorted(subset_dir.glob("*/*/*.flac")):
        if flac not in listed:
            skipped.append(f"{flac}: no line for {flac.stem} in {flac.parent.name}'s .trans.txt")
    return sorted(records, key=lambda r: r["id"]), skipped


def _chapter_records(trans: Path, listed: set[Path], skipped: list[str]) -> list[dict]:
    """Records of one chapter's ``<speaker>-<chapter>.trans.txt``; marks the audio it names in ``listed``."""
    chapter, speaker = trans.parent.name, trans.parent.parent.name
    records = []
    for lineno, line in enumerate(trans.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{trans}:{lineno}"
        utt, _, text = line.strip().partition(" ")
        if not utt.startswith(f"{speaker}-{chapter}-"):
            skipped.append(f"{where}: utterance id {utt!r} does not start with {speaker}-{chapter}- (its folder)")
            continue
        audio = trans.parent / f"{utt}.flac"
        listed.add(audio)
        words = normalize_text(text)
        if not words:
            skipped.append(f"{where}: {utt} has no text")
            continue
        if not audio.is_file():
            skipped.append(f"{where}: audio {audio} not found")
            continue
        try:
            info = sf.info(str(audio))
            check_sample_rate(audio, info.samplerate)
        except (RuntimeError, sf.LibsndfileError, AudioError) as err:
            skipped.append(f"{where}: cannot read {audio} ({err})")
            continue
        if info.frames <= 0:
            skipped.append(f"{where}: {audio} has no samples")
            continue
        duration_s = round(info.frames / info.samplerate, 4)
        records.append({"id": utt, "audio_filepath": str(audio), "duration": duration_s, "text": words,
                        "speaker": speaker, "chapter": chapter})
    return records
