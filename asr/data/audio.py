"""Audio I/O in one place: read any file soundfile or librosa can decode, as mono float32.

Every part of the toolkit (training, evaluation, transcription, corpus preparation)
reads audio through :func:`load_audio`, so resampling and channel mixing happen the
same way everywhere. Failures raise :class:`AudioError`, which names the file and says
why, so batch jobs can report a bad file and go on.
"""

from __future__ import annotations

import io
import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.data import shards


class AudioError(Exception):
    """A file could not be used as audio. ``str(err)`` names the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


# sample rates a recording can have; a header outside says something else (a broken or hostile file): at 2 Hz
# a 32 kB file would claim hours of audio and resample to gigabytes
MIN_SAMPLE_RATE_HZ = 1000
MAX_SAMPLE_RATE_HZ = 768_000


def check_sample_rate(path: str | os.PathLike, sr) -> int:
    """``sr`` as an int, or :class:`AudioError` when it is not a rate audio is recorded at."""
    if not (isinstance(sr, (int, float)) and math.isfinite(sr) and MIN_SAMPLE_RATE_HZ <= sr <= MAX_SAMPLE_RATE_HZ):
        raise AudioError(path, f"sample rate {sr} Hz in the header is outside {MIN_SAMPLE_RATE_HZ}-"
                               f"{MAX_SAMPLE_RATE_HZ} Hz: not a recording (a damaged or mislabelled file?)")
    return int(sr)


@dataclass(frozen=True)
class AudioInfo:
    """Header facts of an audio file, read without decoding the samples."""

    sample_rate_hz: int
    num_frames: int
    num_channels: int

    @property
    def duration_s(self) -> float:
        """Length in seconds: frames / sample rate."""
        return self.num_frames / self.sample_rate_hz


def audio_info(path: str | os.PathLike) -> AudioInfo:
    """Read sample rate, length and channel count from the header.

    Falls back to decoding with librosa for formats libsndfile cannot read (e.g. mp3
    with old libsndfile builds). ``path`` may be a shard member reference (:mod:`asr.data.shards`).
    """
    source = _source(path)
    try:
        with sf.SoundFile(source) as f:  # the header only: frames are counted, not decoded
            return AudioInfo(check_sample_rate(path, f.samplerate), int(f.frames), int(f.channels))
    except AudioError:
        raise
    except Exception:  # noqa: BLE001 - fall through to the slower decoder
        samples, sr = _decode_librosa(path, source=source)
        return AudioInfo(sr, samples.shape[-1], 1)


def load_audio(path: str | os.PathLike, sample_rate_hz: int, *, offset_s: float = 0.0,
               duration_s: float | None = None) -> np.ndarray:
    """Decode ``path`` to a mono float32 array at ``sample_rate_hz``.

    Args:
        path: any format libsndfile reads (wav, flac, ogg, NIST sphere, mp3 with
            libsndfile >= 1.1), or that librosa/audioread can decode.
        sample_rate_hz: the rate the caller needs; other rates are resampled.
        offset_s, duration_s: read only a window of the file (for long audio).

    Returns:
        ``(num_samples,)`` float32 in [-1, 1] (channels averaged).

    Raises:
        AudioError: missing, empty, undecodable, zero-length or non-finite audio.
    """
    source = _source(path)
    try:
        with sf.SoundFile(source) as f:
            sr = check_sample_rate(path, f.samplerate)
            start = int(round(offset_s * sr))
            if start:
                f.seek(min(start, f.frames))
            frames = -1 if duration_s is None else int(round(duration_s * sr))
            samples = f.read(frames, dtype="float32", always_2d=True)  # (n, channels)
        samples = samples.mean(axis=1) if samples.shape[1] > 1 else samples[:, 0]
    except AudioError:
        raise
    except Exception as sf_err:  # noqa: BLE001 - try the general decoder before giving up
        try:
            samples, sr = _decode_librosa(path, offset_s=offset_s, duration_s=duration_s, source=source)
        except AudioError as err:
            raise AudioError(path, f"cannot decode audio ({_short(sf_err)}; {err.reason})") from None
    if samples.size == 0:
        raise AudioError(path, "no samples (zero-length audio)")
    if not np.isfinite(samples).all():
        raise AudioError(path, "audio contains NaN or infinite samples")
    if sr != sample_rate_hz:
        samples = resample(samples, sr, sample_rate_hz)
    return np.ascontiguousarray(samples, dtype=np.float32)


def resample(samples: np.ndarray, orig_hz: int, target_hz: int) -> np.ndarray:
    """Band-limited resampling of ``samples: (S,)`` (soxr high quality) to ``ceil(S * target_hz / orig_hz)`` samples.

    The same samples as ``librosa.resample(..., res_type="soxr_hq")``, which calls soxr the same way,
    without importing librosa's signal stack (0.7 s: cold transcription of a file at another rate).
    """
    import soxr

    if orig_hz == target_hz:
        return samples
    n = int(np.ceil(samples.shape[-1] * (float(target_hz) / orig_hz)))  # librosa's length rule
    out = soxr.resample(samples, orig_hz, target_hz, quality="soxr_hq")
    out = out[:n] if out.shape[-1] >= n else np.pad(out, (0, n - out.shape[-1]))
    return np.asarray(out, dtype=samples.dtype)


def _source(path: str | os.PathLike) -> str | io.BytesIO:
    """What the decoders open: the file's path, or a shard member's bytes (its shard named in every error)."""
    member = shards.split_member(path)
    if member is None:
        _check_file(path)
        return str(path)
    try:
        return io.BytesIO(shards.read_member(*member))
    except shards.ShardError as err:
        raise AudioError(path, str(err).removeprefix(f"{os.fspath(path)}: ")) from None


def check_exists(path: str | os.PathLike) -> None:
    """:class:`AudioError` ("file does not exist", ...) unless ``path`` is a readable file or an intact shard member."""
    member = shards.split_member(path)
    if member is None:
        _check_file(path)
    elif not shards.member_exists(*member):
        raise AudioError(path, "file does not exist" if not os.path.isfile(member[0]) else
                         "no such member in the shard (or the shard is truncated)")


def _check_file(path: str | os.PathLike) -> None:
    p = Path(path)
    if not p.exists():
        raise AudioError(path, "file does not exist")
    if not p.is_file():
        raise AudioError(path, "not a regular file")
    if not os.access(p, os.R_OK):
        raise AudioError(path, "permission denied")
    if p.stat().st_size == 0:
        raise AudioError(path, "empty file (0 bytes)")


def _decode_librosa(path, offset_s: float = 0.0, duration_s: float | None = None, source=None):
    import librosa

    if isinstance(source, io.BytesIO):
        source.seek(0)  # a first decoder may have read part of it
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            samples, sr = librosa.load(str(path) if source is None else source, sr=None, mono=True, offset=offset_s,
                                       duration=duration_s, dtype=np.float32)
    except Exception as err:  # noqa: BLE001 - any decoder failure becomes our error
        raise AudioError(path, _short(err)) from None
    return samples, check_sample_rate(path, sr)


def _short(err: BaseException) -> str:
    msg = str(err).strip().splitlines()
    return f"{type(err).__name__}: {msg[0] if msg else ''}".strip()
