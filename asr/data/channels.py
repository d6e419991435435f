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

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.data.augment import add_noise, change_volume, colored_noise, match_power, reverberate, room_impulse_response

__all__ = ["CONDITIONS", "Condition", "babble", "clip", "get_conditions", "reverberate",
           "room_impulse_response", "telephone"]


# A steep resampling filter (librosa's "kaiser_best"): the default one lets images of the
# 3-4 kHz band through just above 4 kHz when going back up to 16 kHz.
_SHARP = dict(lowpass_filter_width=64, rolloff=0.9475, resampling_method="sinc_interp_kaiser", beta=14.769656459379492)


def telephone(samples: np.ndarray, sample_rate_hz: int, *, band_hz: tuple[float, float] = (300.0, 3400.0),
              quantization_channels: int = 256) -> np.ndarray:
    """A narrow-band telephone line: resample to 8 kHz, band-pass, mu-law code and decode, resample back.

    The result has ``sample_rate_hz`` and the input's length; nothing above 4 kHz survives.
    """
    x = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    x = torchaudio.functional.resample(x, sample_rate_hz, 8000, **_SHARP)
    x = torchaudio.functional.highpass_biquad(x, 8000, band_hz[0])
    x = torchaudio.functional.lowpass_biquad(x, 8000, band_hz[1])
    peak = float(x.abs().max())
    if peak > 0:  # mu-law codes [-1, 1]; a line's level is set by the handset, not by the file
        code = torchaudio.functional.mu_law_encoding(x / peak, quantization_channels)
        x = torchaudio.functional.mu_law_decoding(code, quantization_channels) * peak
    x = torchaudio.functional.resample(x, 8000, sample_rate_hz, **_SHARP)
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


@dataclass(frozen=True)
class Condition:
    """A named recording condition: ``apply(samples, sample_rate_hz, rng, others)`` → samples of the same length.

    ``others`` are other utterances of the same set (babble is made of them); the other
    conditions ignore them.
    """

    name: str
    description: str
    apply: Callable[[np.ndarray, int, np.random.Generator, Sequence[np.ndarray]], np.ndarray]


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
]}


def get_conditions(names: Sequence[str]) -> list[Condition]:
    """The conditions called ``names``, in that order; an unknown name raises ``KeyError`` listing the known ones."""
    unknown = [n for n in names if n not in CONDITIONS]
    if unknown:
        raise KeyError(f"unknown condition(s) {unknown}; known: {', '.join(CONDITIONS)}")
    return [CONDITIONS[n] for n in names]
