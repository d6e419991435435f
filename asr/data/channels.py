"""Simulated recording conditions: how a model holds up away from its training microphones.

AN4's test speakers were recorded like its training speakers (one room, one close-talking
microphone), so a test WER says little about other microphones and rooms. These functions
turn clean test audio into what other recording chains would have produced, offline and
deterministically, so :mod:`benchmarks.robustness` can score one model file under each:

- additive noise at a fixed SNR: white or pink (:func:`asr.data.augment.colored_noise`), or
  babble made of other utterances of the same test set;
- reverberation: a synthetic room impulse response (exponentially decaying noise tail with
  a given RT60, the time the tail takes to fall by 60 dB);
- a telephone channel: 8 kHz, 300-3400 Hz band, 8-bit mu-law, back to the model's rate;
- an overdriven microphone (hard clipping) and a quiet one (gain).

Each condition is a pure function of the samples and a ``numpy.random.Generator``; the
registry :data:`CONDITIONS` names them. Noise, the impulse response and babble are drawn
from that generator only, so a condition is the same audio every time it is seeded alike.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.data.augment import add_noise, change_volume, colored_noise, match_power, reverberate, room_impulse_response
from asr.data.recording import SHARP_RESAMPLING, babble, band_limit, codec, eq_tilt, trim_silence

__all__ = ["CONDITIONS", "Condition", "babble", "clip", "far_field", "get_conditions", "reverberate",
           "room_impulse_response", "telephone"]


def telephone(samples: np.ndarray, sample_rate_hz: int, *, band_hz: tuple[float, float] = (300.0, 3400.0),
              quantization_channels: int = 256) -> np.ndarray:
    """A narrow-band telephone line: resample to 8 kHz, band-pass, mu-law code and decode, resample back.

    The result has ``sample_rate_hz`` and the input's length; nothing above 4 kHz survives.
    """
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    x = torchaudio.functional.resample(x, sample_rate_hz, 8000, **SHARP_RESAMPLING)
    x = torchaudio.functional.highpass_biquad(x, 8000, band_hz[0])
    x = torchaudio.functional.lowpass_biquad(x, 8000, band_hz[1])
    peak = float(x.abs().max())
    if peak > 0:  # mu-law codes [-1, 1]; a line's level is set by the handset, not by the file
        code = torchaudio.functional.mu_law_encoding(x / peak, quantization_channels)
        x = torchaudio.functional.mu_law_decoding(code, quantization_channels) * peak
    x = torchaudio.functional.resample(x, 8000, sample_rate_hz, **SHARP_RESAMPLING)
    out = np.zeros(len(samples), dtype=np.float32)
    n = min(len(out), len(x))
    out[:n] = x[:n].numpy()
    return match_power(out, samples)


def clip(samples: np.ndarray, overdrive_db: float) -> np.ndarray:
    """An overdriven microphone: hard clipping at ``overdrive_db`` dB below the peak, then the input's power."""
    peak = float(np.max(np.abs(samples))) if len(samples) else 0.0
    if peak == 0:
        return samples
    limit = peak * 10 ** (-overdrive_db / 20)
    return match_power(np.clip(samples, -limit, limit), samples)


def far_field(samples: np.ndarray, sample_rate_hz: int, rng: np.random.Generator) -> np.ndarray:
    """A microphone across the room: RT60 0.5 s with more echo than direct sound (-3 dB), pink noise at 20 dB SNR."""
    wet = reverberate(samples, 0.5, sample_rate_hz, rng, direct_to_reverb_db=-3.0)
    return add_noise(wet, colored_noise(len(wet), 1.0, rng), 20.0)


@dataclass(frozen=True)
class Condition:
    """A named recording condition: ``apply(samples, sample_rate_hz, rng, others)`` → samples.

    ``others`` are other utterances of the same set (babble is made of them); the other
    conditions ignore them. ``keeps_length`` is false for conditions that cut audio (``trimmed``).
    """

    name: str
    description: str
    apply: Callable[[np.ndarray, int, np.random.Generator, Sequence[np.ndarray]], np.ndarray]
    keeps_length: bool = True


def _noise(exponent: float, snr_db: float):
    return lambda x, sr, rng, others: add_noise(x, colored_noise(len(x), exponent, rng), snr_db)


def _babble(snr_db: float, talkers: int = 4):
    return lambda x, sr, rng, others: add_noise(x, babble(len(x), others, talkers, rng), snr_db)


CONDITIONS: dict[str, Condition] = {c.name: c for c in [
    Condition("clean", "the test audio as recorded", lambda x, sr, rng, others: x),
    Condition("white_20dB", "white noise, SNR 20 dB", _noise(0.0, 20.0)),
    Condition("white_10dB", "white noise, SNR 10 dB", _noise(0.0, 10.0)),
    Condition("pink_10dB", "pink (1/f) noise, SNR 10 dB", _noise(1.0, 10.0)),
    Condition("babble_10dB", "4 other test utterances talking at once, SNR 10 dB", _babble(10.0)),
    Condition("reverb_0.3s", "room impulse response, RT60 0.3 s, direct = reverberant energy",
              lambda x, sr, rng, others: reverberate(x, 0.3, sr, rng)),
    Condition("reverb_0.6s", "room impulse response, RT60 0.6 s, direct = reverberant energy",
              lambda x, sr, rng, others: reverberate(x, 0.6, sr, rng)),
    Condition("telephone", "8 kHz, 300-3400 Hz band, 8-bit mu-law",
              lambda x, sr, rng, others: telephone(x, sr)),
    Condition("clipped_12dB", "overdriven microphone: clipped 12 dB below the peak",
              lambda x, sr, rng, others: clip(x, 12.0)),
    Condition("quiet_-20dB", "20 dB quieter (distant or low-gain microphone)",
              lambda x, sr, rng, others: change_volume(x, -20.0)),
    Condition("trimmed", "leading and trailing silence cut at 1 % of full scale (sox silence 1 0.02 1%, both ends)",
              lambda x, sr, rng, others: trim_silence(x, sr), keeps_length=False),
    Condition("8kHz", "recorded at 8 kHz (nothing above 4 kHz), upsampled",
              lambda x, sr, rng, others: band_limit(x, sr, 8000)),
    Condition("gsm", "GSM 06.10 mobile phone codec at 8 kHz", lambda x, sr, rng, others: codec(x, sr, "gsm")),
    Condition("mp3_17kbps", "MPEG layer III at about 17 kbit/s", lambda x, sr, rng, others: codec(x, sr, "mp3")),
    Condition("opus_13kbps", "Opus at about 13 kbit/s", lambda x, sr, rng, others: codec(x, sr, "opus")),
    Condition("bright_mic", "another microphone's colour: +4 dB per octave above 1 kHz, -4 below",
              lambda x, sr, rng, others: eq_tilt(x, sr, 4.0)),
    Condition("far_field", "across the room: RT60 0.5 s, reverberant energy 3 dB above direct, pink noise 20 dB",
              lambda x, sr, rng, others: far_field(x, sr, rng)),
]}


def get_conditions(names: Sequence[str]) -> list[Condition]:
    """The conditions called ``names``, in that order; an unknown name raises ``KeyError`` listing the known ones."""
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise KeyError(f"unknown condition(s) {unknown}; known: {', '.join(CONDITIONS)}")
    return [CONDITIONS[n] for n in names]
