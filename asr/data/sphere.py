"""NIST SPHERE decoding without libsndfile, for headers libsndfile refuses.

SPHERE is the format of the LDC-era corpora (AN4, TIMIT, WSJ, Switchboard). libsndfile
reads most of it but rejects some valid headers (a real-valued ``sample_rate``, for
one), so corpus preparation falls back to :func:`read_sphere`.

The header is ASCII: ``NIST_1A``, the header size in bytes (1024 for AN4) on the second
line, then ``key -type value`` lines up to ``end_head``; the samples follow the header.

Example:
    >>> samples, rate_hz = read_sphere("an4/wav/an4_clstk/fash/an251-fash-b.sph")  # doctest: +SKIP
    >>> samples.dtype, rate_hz                                                       # doctest: +SKIP
    (dtype('int16'), 16000)
"""

from __future__ import annotations

import os

import numpy as np

from asr.data.audio import AudioError

_FIRST_READ_BYTES = 1024  # the usual header size; a larger header is read on demand


def read_sphere(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Decode an uncompressed 16-bit PCM NIST SPHERE file.

    ``sample_byte_format`` 01 is little endian, 10 big endian. Shorten- and wavpack-compressed
    files are refused (decompress them with ``sph2pipe``).

    Args:
        path: the ``.sph`` file.

    Returns:
        ``(samples, sample_rate_hz)``: int16 samples, ``(frames,)`` for mono or
        ``(frames, channels)``.

    Raises:
        AudioError: not SPHERE, unsupported coding, or fewer samples than the header promises.
    """
    fields, data = read_sphere_header(path)
    rate_hz, channels, dtype = _sample_layout(path, fields)
    frames = int(fields.get("sample_count", len(data) // (2 * channels)))
    if len(data) < frames * channels * 2:
        raise AudioError(path, f"truncated: header says {frames} samples, file holds {len(data) // (2 * channels)}")
    samples = np.frombuffer(data, dtype=dtype, count=frames * channels).astype(np.int16)
    samples = samples.reshape(frames, channels) if channels > 1 else samples  # interleaved -> (frames, channels)
    return samples, rate_hz


def read_sphere_header(path: str | os.PathLike) -> tuple[dict[str, int | float | str], bytes]:
    """The header fields of a SPHERE file (``-i`` values as int, ``-r`` as float, others as str)
    and the bytes after the header.

    Raises:
        AudioError: no ``NIST_1A`` magic, no valid header size, or a field whose value does not parse.
    """
    with open(path, "rb") as f:
        head = f.read(_FIRST_READ_BYTES)
        if not head.startswith(b"NIST_1A"):
            raise AudioError(path, "not a NIST SPHERE file (no NIST_1A header)")
        lines = head.decode("ascii", errors="replace").splitlines()
        try:
            header_bytes = int(lines[1])
        except (IndexError, ValueError):
            raise AudioError(path, "NIST SPHERE header has no valid size on its second line") from None
        if header_bytes > len(head):
            head += f.read(header_bytes - len(head))
            lines = head.decode("ascii", errors="replace").splitlines()
        f.seek(header_bytes)
        data = f.read()

    fields: dict[str, int | float | str] = {}
    for line in lines[2:]:
        parts = line.strip().split(None, 2)
        if parts == ["end_head"]:
            break
        if len(parts) == 3:
            key, kind, value = parts
            try:
                fields[key] = int(value) if kind == "-i" else float(value) if kind == "-r" else value
            except ValueError:
                raise AudioError(path, f"bad SPHERE header field {line.strip()!r}") from None
    return fields, data


def _sample_layout(path, fields: dict) -> tuple[int, int, str]:
    """``(sample_rate_hz, channels, numpy dtype)`` from the header; refuses what is not 16-bit PCM."""
    coding = str(fields.get("sample_coding", "pcm"))
    if "shorten" in coding or "wavpack" in coding:
        raise AudioError(path, f"compressed SPHERE ({coding}) is not supported; decompress it with sph2pipe")
    if not coding.startswith("pcm") or fields.get("sample_n_bytes", 2) != 2:
        raise AudioError(path, f"unsupported SPHERE coding {coding!r} with {fields.get('sample_n_bytes')} bytes "
                               "per sample (only 16-bit PCM)")
    byte_format = str(fields.get("sample_byte_format", "01"))
    if byte_format not in ("01", "10"):
        raise AudioError(path, f"unsupported sample_byte_format {byte_format!r} (expected 01 or 10)")
    try:
        rate_hz = int(fields["sample_rate"])
        channels = int(fields.get("channel_count", 1))
    except (KeyError, ValueError, TypeError):
        raise AudioError(path, "SPHERE header lacks a usable sample_rate or channel_count") from None
    if rate_hz <= 0 or channels <= 0:
        raise AudioError(path, f"invalid sample_rate {rate_hz} or channel_count {channels}")
    return rate_hz, channels, "<i2" if byte_format == "01" else ">i2"
