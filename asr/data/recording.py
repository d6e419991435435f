"""What a recording chain does to speech: band limits, codecs, silence habits, microphone colour, babble.

Pure functions of the samples (float32, mono) and explicit parameters, shared by training-time
augmentation (:mod:`asr.data.augment`, parameters drawn per utterance) and the simulated test
conditions (:mod:`asr.data.channels`, parameters fixed). Each returns float32 samples at the
input's rate; all but the silence functions keep the input's length.

Codecs go through libsndfile (via ``soundfile``), the same encoders that write real files:
G.711 mu-law and A-law and GSM 06.10 at 8 kHz (telephone networks), and MPEG layer III and
Opus at low bit rates (voice messages, conferencing).

Example:
    >>> x = np.random.default_rng(0).standard_normal(16000).astype(np.float32) * 0.1
    >>> y = band_limit(x, 16000, 8000)
    >>> len(y) == len(x)
    True
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import soundfile as sf
import torch
import torchaudio

# A steep resampling filter (librosa's "kaiser_best"): the default one lets images of the
# 3-4 kHz band through just above 4 kHz when going back up to 16 kHz.
SHARP_RESAMPLING = dict(lowpass_filter_width=64, rolloff=0.9475, resampling_method="sinc_interp_kaiser",
                        beta=14.769656459379492)

# name -> (container, subtype, coding rate in Hz or None for the input's, compression level or None)
CODECS: dict[str, tuple[str, str, int | None, float | None]] = {
    "ulaw": ("WAV", "ULAW", 8000, None),  # G.711 mu-law, 64 kbit/s: North American and Japanese telephony
    "alaw": ("WAV", "ALAW", 8000, None),  # G.711 A-law: European telephony
    "gsm": ("WAV", "GSM610", 8000, None),  # GSM 06.10 full rate, 13 kbit/s: mobile phones
    "mp3": ("MP3", "MPEG_LAYER_III", None, 0.9),  # about 17 kbit/s at 16 kHz
    "opus": ("OGG", "OPUS", None, 0.9),  # about 13 kbit/s at 16 kHz
}


def _fit(x: np.ndarray, n: int) -> np.ndarray:
    """``x`` cut or zero-padded to ``n`` samples, as float32."""
    out = np.zeros(n, dtype=np.float32)
    m = min(n, len(x))
    out[:m] = x[:m]
    return out


def resample(samples: np.ndarray, from_hz: int, to_hz: int) -> np.ndarray:
    """Band-limited resampling with :data:`SHARP_RESAMPLING` (float32 in, float32 out)."""
    if from_hz == to_hz:
        return np.asarray(samples, dtype=np.float32)
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    return torchaudio.functional.resample(x, from_hz, to_hz, **SHARP_RESAMPLING).numpy()


def band_limit(samples: np.ndarray, sample_rate_hz: int, rate_hz: int) -> np.ndarray:
    """Audio that was recorded at ``rate_hz`` and upsampled: nothing above ``rate_hz / 2`` survives."""
    if rate_hz >= sample_rate_hz:
        return np.asarray(samples, dtype=np.float32)
    return _fit(resample(resample(samples, sample_rate_hz, rate_hz), rate_hz, sample_rate_hz), len(samples))


def codec(samples: np.ndarray, sample_rate_hz: int, name: str) -> np.ndarray:
    """Encode and decode with codec ``name`` (a key of :data:`CODECS`); same rate, length and level as the input.

    8 kHz codecs resample down and back up, so they band-limit as a telephone line does. The
    level is normalised to 0.9 of full scale before coding (codecs clip at full scale) and
    restored after.
    """
    if name not in CODECS:
        raise ValueError(f"unknown codec {name!r}; known: {', '.join(CODECS)}")
    container, subtype, rate, level = CODECS[name]
    rate = rate or sample_rate_hz
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak == 0:
        return np.asarray(samples, dtype=np.float32)
    x = resample(np.asarray(samples, dtype=np.float32) * (0.9 / peak), sample_rate_hz, rate)
    buf = io.BytesIO()
    extra = {} if level is None else {"compression_level": level}
    sf.write(buf, x, rate, format=container, subtype=subtype, **extra)
    buf.seek(0)
    y, _ = sf.read(buf, dtype="float32")
    return _fit(resample(y, rate, sample_rate_hz), len(samples)) * np.float32(peak / 0.9)


def speech_bounds(samples: np.ndarray, sample_rate_hz: int, *, threshold: float = 0.01,
                  window_s: float = 0.02) -> tuple[int, int]:
    """``(start, end)`` sample indices of the audio between the first and last 20 ms windows above ``threshold``.

    ``threshold`` is an RMS amplitude relative to full scale (0.01: sox's ``silence 1 0.02 1%``).
    All-quiet audio gives ``(0, len)``: nothing is trimmed from what might be a quiet recording.
    """
    n = max(1, int(window_s * sample_rate_hz))
    if len(samples) < n:
        return 0, len(samples)
    power = np.convolve(np.asarray(samples, dtype=np.float64) ** 2, np.ones(n) / n, mode="valid")
    loud = np.flatnonzero(power > threshold ** 2)
    if len(loud) == 0:
        return 0, len(samples)
    return int(loud[0]), int(loud[-1]) + n


def trim_silence(samples: np.ndarray, sample_rate_hz: int, *, keep_s: tuple[float, float] = (0.0, 0.0),
                 threshold: float = 0.01) -> np.ndarray:
    """Cut leading and trailing silence down to ``keep_s`` = (leading, trailing) seconds, as an endpointer does."""
    start, end = speech_bounds(samples, sample_rate_hz, threshold=threshold)
    start = max(0, start - int(keep_s[0] * sample_rate_hz))
    end = min(len(samples), end + int(keep_s[1] * sample_rate_hz))
    return np.asarray(samples[start:end], dtype=np.float32)


def pad_silence(samples: np.ndarray, sample_rate_hz: int, lead_s: float, trail_s: float,
                rng: np.random.Generator, *, floor_db: float = -60.0) -> np.ndarray:
    """Add ``lead_s`` and ``trail_s`` seconds of quiet background (Gaussian noise ``floor_db`` below full scale)."""
    lead, trail = int(lead_s * sample_rate_hz), int(trail_s * sample_rate_hz)
    level = 10 ** (floor_db / 20)
    return np.concatenate([level * rng.standard_normal(lead), np.asarray(samples, dtype=np.float64),
                           level * rng.standard_normal(trail)]).astype(np.float32)


def eq_tilt(samples: np.ndarray, sample_rate_hz: int, db_per_octave: float, *, pivot_hz: float = 1000.0,
            max_db: float = 12.0) -> np.ndarray:
    """Colour the spectrum like another microphone: gain ``db_per_octave * log2(f / pivot_hz)``, within ±``max_db``.

    Positive tilts brighten (small electret capsules), negative ones darken (a muffled or distant
    microphone). The output keeps the input's power: the colour changes, not the level.
    """
    if db_per_octave == 0 or len(samples) < 2:
        return np.asarray(samples, dtype=np.float32)
    spec = np.fft.rfft(np.asarray(samples, dtype=np.float64))
    f = np.fft.rfftfreq(len(samples), 1.0 / sample_rate_hz)
    f[0] = f[1]  # the DC bin takes the lowest band's gain
    gain_db = np.clip(db_per_octave * np.log2(f / pivot_hz), -max_db, max_db)
    y = np.fft.irfft(spec * 10 ** (gain_db / 20), n=len(samples))
    p, q = float(np.mean(y ** 2)), float(np.mean(np.asarray(samples, dtype=np.float64) ** 2))
    return (y * math.sqrt(q / p) if p > 0 else y).astype(np.float32)


def babble(num_samples: int, others: Sequence[np.ndarray], talkers: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-power babble: ``talkers`` of ``others`` (distinct, drawn by ``rng``), each looped from a random offset."""
    usable = [o for o in others if np.any(o)]  # non-silent; no float64 copy of every other utterance per call
    if len(usable) < talkers:
        raise ValueError(f"babble needs {talkers} other non-silent utterances, got {len(usable)}")
    mix = np.zeros(num_samples)
    for k in rng.choice(len(usable), size=talkers, replace=False):
        o = usable[int(k)].astype(np.float64)
        start = int(rng.integers(len(o)))
        voice = np.resize(np.roll(o, -start), num_samples)  # loops a short voice to cover the utterance
        mix += voice / math.sqrt(float(np.mean(voice ** 2)) or 1.0)
    power = float(np.mean(mix ** 2))
    return (mix / math.sqrt(power if power > 0 else 1.0)).astype(np.float32)
