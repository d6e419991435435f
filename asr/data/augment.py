"""Waveform augmentation for training: speed perturbation, reverberation, additive noise, volume.

Each transform is a pure function of the samples and explicit random draws; the
:class:`WaveAugment` wrapper draws them from a ``numpy.random.Generator`` that the dataset
seeds with ``(seed, epoch, utterance index)``, so an epoch's augmentation is the same in
any worker, and a resumed run sees exactly what the uninterrupted run would have.
(SpecAugment, the feature-level masking, lives in :mod:`asr.frontend.features`.)

The noise source is synthetic, so nothing needs to be downloaded: Gaussian noise whose
power spectrum falls as ``1 / f^exponent``, with the exponent drawn between 0 (white)
and 2 (brown), pink (1) in between: broadband hiss to low-frequency rumble. Rooms are
synthetic too: an impulse response whose tail is noise decaying 60 dB in the drawn RT60.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio

from asr.data.recording import CODECS, babble, band_limit, codec, eq_tilt, pad_silence, trim_silence


def speed_perturb(samples: np.ndarray, speed: float) -> np.ndarray:
    """Play ``samples`` ``speed`` times faster (tempo and pitch change together, as in Kaldi's recipes).

    Implemented as resampling by ``1 / speed`` and reading the result at the original rate:
    1.0 returns the input, 1.1 a signal of ``len / 1.1`` samples.

    Example:
        >>> len(speed_perturb(np.zeros(16000, dtype=np.float32), 1.1))
        14546
    """
    if speed <= 0:
        raise ValueError(f"speed must be > 0, got {speed}")
    if speed == 1.0:
        return samples
    num, den = round(speed * 100), 100
    g = math.gcd(num, den)
    out = torchaudio.functional.resample(torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32)),
                                         orig_freq=num // g, new_freq=den // g)
    return out.numpy()


def colored_noise(num_samples: int, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Unit-power Gaussian noise with power spectrum ∝ ``1 / f^exponent`` (0 white, 1 pink, 2 brown)."""
    white = rng.standard_normal(num_samples)
    if exponent:
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float64)
        f[0] = 1.0  # keep the DC bin finite (its weight is that of the lowest frequency)
        spec *= f ** (-exponent / 2)
        white = np.fft.irfft(spec, n=num_samples)
    power = float(np.mean(white ** 2))
    return (white / math.sqrt(power if power > 0 else 1.0)).astype(np.float32)


def add_noise(samples: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix ``noise`` into ``samples`` at signal-to-noise ratio ``snr_db`` (powers over the whole utterance)."""
    signal_power = float(np.mean(samples.astype(np.float64) ** 2))
    noise_power = float(np.mean(noise.astype(np.float64) ** 2))
    if signal_power == 0 or noise_power == 0:
        return samples
    scale = math.sqrt(signal_power / (noise_power * 10 ** (snr_db / 10)))
    return (samples + scale * noise[: len(samples)]).astype(np.float32)


def room_impulse_response(rt60_s: float, sample_rate_hz: int, rng: np.random.Generator, *,
                          direct_to_reverb_db: float = 0.0, predelay_s: float = 0.0025) -> np.ndarray:
    """A synthetic room impulse response: a unit direct path, then a noise tail decaying 60 dB in ``rt60_s``.

    The tail starts ``predelay_s`` after the direct path, lasts ``1.2 * rt60_s`` and holds
    ``direct_to_reverb_db`` dB less energy than the direct path (0 dB: as much; a far-field
    microphone in a lively room).

    Example:
        >>> h = room_impulse_response(0.5, 16000, np.random.default_rng(0))
        >>> float(h[0]), len(h)
        (1.0, 9640)
    """
    if rt60_s <= 0:
        raise ValueError(f"RT60 must be > 0 s, got {rt60_s}")
    start = int(round(predelay_s * sample_rate_hz))
    n = int(round(1.2 * rt60_s * sample_rate_hz))
    t = np.arange(n) / sample_rate_hz
    tail = rng.standard_normal(n) * np.exp(-3.0 * math.log(10.0) * t / rt60_s)  # amplitude: -60 dB at rt60
    tail *= math.sqrt(10 ** (-direct_to_reverb_db / 10) / float(np.sum(tail ** 2)))
    h = np.zeros(start + n)
    h[0] = 1.0
    h[start:] += tail
    return h


def match_power(samples: np.ndarray, like: np.ndarray) -> np.ndarray:
    """``samples`` scaled to the mean power of ``like`` (a channel changes the sound, not the level)."""
    p, q = float(np.mean(samples.astype(np.float64) ** 2)), float(np.mean(like.astype(np.float64) ** 2))
    return (samples * math.sqrt(q / p) if p > 0 else samples).astype(np.float32)


def reverberate(samples: np.ndarray, rt60_s: float, sample_rate_hz: int, rng: np.random.Generator, *,
                direct_to_reverb_db: float = 0.0) -> np.ndarray:
    """Convolve with :func:`room_impulse_response`; same length and power as the input (the tail is cut)."""
    h = room_impulse_response(rt60_s, sample_rate_hz, rng, direct_to_reverb_db=direct_to_reverb_db)
    # scipy pads to a fast FFT length; torchaudio's fftconvolve uses len(x) + len(h) - 1, often
    # a length with large prime factors: 25 ms against 2.5 ms for 3 s of audio in a 0.5 s room
    import scipy.signal  # here: importing scipy's signal stack (and its BLAS threads) costs ~60 MB in every process

    wet = scipy.signal.fftconvolve(np.asarray(samples, dtype=np.float32), h.astype(np.float32))[: len(samples)]
    return match_power(wet, samples)


def change_volume(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` decibels (no clipping: samples are floats)."""
    return (samples * 10 ** (gain_db / 20)).astype(np.float32)


# ``others(rng, k)``: k other training utterances as float32 samples (babble is made of them)
OtherVoices = Callable[[np.random.Generator, int], list[np.ndarray]]


@dataclass(frozen=True)
class WaveAugment:
    """Training-time waveform augmentation with plain settings; every part off by default.

    Args:
        speeds: speed factors to draw from uniformly (e.g. ``(0.9, 1.0, 1.1)``); empty: off.
        noise_prob: chance that an utterance gets noise; 0: off.
        noise_snr_db: SNR range in dB, drawn uniformly.
        volume_gain_db: gain range in dB, drawn uniformly; ``None``: off.
        reverb_prob: chance that an utterance is played in a synthetic room; 0: off.
        reverb_rt60_s: RT60 range in seconds, drawn uniformly.
        reverb_drr_db: direct-to-reverberant energy range in dB, drawn uniformly (0: as much
            echo as direct sound, a distant microphone; 10: a close one).
        sample_rate_hz: the rate of the samples (the room's impulse response is built at it).
        silence_prob: chance that an utterance's silent ends change: half of those are trimmed to
            margins drawn from ``silence_keep_s``, half padded by ``silence_pad_s`` of quiet background.
        babble_prob: chance of babble from ``babble_talkers`` other training utterances at
            ``babble_snr_db`` (needs ``others`` in the call).
        tilt_prob: chance of a microphone colour, a spectral tilt drawn from ``tilt_db_per_octave``.
        bandlimit_prob: chance that the audio was recorded at one of ``bandlimit_rates_hz`` (e.g. 8 kHz).
        codec_prob: chance that it went through one of ``codecs`` (:data:`asr.data.recording.CODECS`);
            band limit and codec exclude each other.
        chain_from_epoch: rooms and the recording chain start at this epoch (0-based).
        from_epoch: every part starts at this epoch; before it the samples come back as they are.

    Order: speed, silence, room, babble, noise, microphone colour, band limit or codec, volume
    (what a recording chain does, from the talker to the file). Parts that are off draw nothing.
    Speed, room, noise and volume draw from ``rng`` in that order, so turning one of them on
    leaves the others' draws as they were only up to its place; the recording-chain parts draw
    from a child stream and never shift the others' draws.

    ``__call__(samples, rng)`` returns the augmented samples (a new length after speed change).
    """

    speeds: tuple[float, ...] = ()
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    volume_gain_db: tuple[float, float] | None = None
    reverb_prob: float = 0.0
    reverb_rt60_s: tuple[float, float] = (0.2, 0.8)
    reverb_drr_db: tuple[float, float] = (0.0, 10.0)
    sample_rate_hz: int = 16000
    silence_prob: float = 0.0
    silence_keep_s: tuple[float, float] = (0.0, 0.3)
    silence_pad_s: tuple[float, float] = (0.0, 0.5)
    babble_prob: float = 0.0
    babble_snr_db: tuple[float, float] = (5.0, 20.0)
    babble_talkers: tuple[int, int] = (2, 6)
    tilt_prob: float = 0.0
    tilt_db_per_octave: tuple[float, float] = (-4.0, 4.0)
    bandlimit_prob: float = 0.0
    bandlimit_rates_hz: tuple[int, ...] = (8000,)
    codec_prob: float = 0.0
    codecs: tuple[str, ...] = ("ulaw", "alaw", "gsm", "mp3", "opus")
    chain_from_epoch: int = 0
    from_epoch: int = 0

    def __post_init__(self):
        for name in ("chain_from_epoch", "from_epoch"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if any(s <= 0 for s in self.speeds):
            raise ValueError(f"speed factors must be > 0, got {self.speeds}")
        for name, p in (("noise", self.noise_prob), ("reverb", self.reverb_prob), ("silence", self.silence_prob),
                        ("babble", self.babble_prob), ("tilt", self.tilt_prob), ("bandlimit", self.bandlimit_prob),
                        ("codec", self.codec_prob)):
            if not 0 <= p <= 1:
                raise ValueError(f"{name} probability must be in [0, 1], got {p}")
        if self.reverb_rt60_s[0] <= 0:
            raise ValueError(f"reverb_rt60_s: RT60 must be > 0 s, got {self.reverb_rt60_s}")
        for name, rng in (("noise_snr_db", self.noise_snr_db), ("volume_gain_db", self.volume_gain_db),
                          ("reverb_rt60_s", self.reverb_rt60_s), ("reverb_drr_db", self.reverb_drr_db),
                          ("silence_keep_s", self.silence_keep_s), ("silence_pad_s", self.silence_pad_s),
                          ("babble_snr_db", self.babble_snr_db), ("babble_talkers", self.babble_talkers),
                          ("tilt_db_per_octave", self.tilt_db_per_octave)):
            if rng is not None and rng[0] > rng[1]:
                raise ValueError(f"{name}: range ({rng[0]}, {rng[1]}) has its low end above its high end")
        if min(self.silence_keep_s + self.silence_pad_s) < 0:
            raise ValueError(f"silence_keep_s and silence_pad_s must be >= 0 s, got {self.silence_keep_s}, "
                             f"{self.silence_pad_s}")
        if self.babble_talkers[0] < 1:
            raise ValueError(f"babble_talkers must be >= 1, got {self.babble_talkers}")
        if self.bandlimit_prob > 0 and (not self.bandlimit_rates_hz
                                        or any(r <= 0 or r >= self.sample_rate_hz for r in self.bandlimit_rates_hz)):
            raise ValueError(f"bandlimit_rates_hz must be rates below {self.sample_rate_hz} Hz, "
                             f"got {self.bandlimit_rates_hz}")
        if self.bandlimit_prob + self.codec_prob > 1:
            raise ValueError(f"bandlimit_prob + codec_prob must be <= 1 (an utterance gets one line or none), "
                             f"got {self.bandlimit_prob} + {self.codec_prob}")
        if self.codec_prob > 0 and (not self.codecs or any(c not in CODECS for c in self.codecs)):
            raise ValueError(f"codecs must be a non-empty list of {', '.join(CODECS)}, got {self.codecs}")

    @property
    def active(self) -> bool:
        """Whether any augmentation is switched on (otherwise the dataset skips calling this)."""
        return bool(self.speeds) or self.noise_prob > 0 or self.volume_gain_db is not None or self.reverb_prob > 0 \
            or self.multi_condition

    @property
    def multi_condition(self) -> bool:
        """Whether any recording-chain part (silence, babble, tilt, band limit, codec) is on."""
        return max(self.silence_prob, self.babble_prob, self.tilt_prob, self.bandlimit_prob, self.codec_prob) > 0

    def draw_speed(self, rng: np.random.Generator) -> float:
        """One speed factor from ``speeds`` (1.0 when there are none); always one draw from ``rng``."""
        return float(self.speeds[rng.integers(len(self.speeds))]) if self.speeds else 1.0

    def __call__(self, samples: np.ndarray, rng: np.random.Generator, speed: float | None = None,
                 others: OtherVoices | None = None, epoch: int | None = None) -> np.ndarray:
        """Augment; ``speed`` (if given) replaces the drawn speed factor, the other draws stay the same.

        ``epoch`` below ``chain_from_epoch``: rooms and the recording chain are left out (speed, noise
        and volume stay), so the network leaves CTC's all-blank start on near-clean audio first. ``epoch``
        below ``from_epoch``: the samples come back as they are.

        ``others(rng, k)`` returns ``k`` other training utterances (other speakers where known),
        the voices babble is made of; without it babble is skipped.

        The recording-chain parts draw from a child stream of ``rng`` (``SeedSequence.spawn``),
        not from ``rng`` itself, so turning them on leaves every other part's draws unchanged.
        """
        if epoch is not None and epoch < self.from_epoch:
            return samples
        drawn = self.draw_speed(rng)  # always drawn first, so the later draws do not depend on ``speed``
        samples = speed_perturb(samples, drawn if speed is None else speed)
        later = epoch is not None and epoch < self.chain_from_epoch
        chain = np.random.default_rng(rng.bit_generator.seed_seq.spawn(1)[0]) \
            if self.multi_condition and not later else None
        if chain is not None:
            samples = self._silence(samples, chain)
        if self.reverb_prob > 0 and rng.random() < self.reverb_prob and not later:
            rt60, drr = float(rng.uniform(*self.reverb_rt60_s)), float(rng.uniform(*self.reverb_drr_db))
            samples = reverberate(samples, rt60, self.sample_rate_hz, rng, direct_to_reverb_db=drr)
        if chain is not None:
            samples = self._babble(samples, chain, others)
        if self.noise_prob > 0 and rng.random() < self.noise_prob:
            noise = colored_noise(len(samples), float(rng.uniform(0.0, 2.0)), rng)
            samples = add_noise(samples, noise, float(rng.uniform(*self.noise_snr_db)))
        if chain is not None:
            samples = self._microphone_and_line(samples, chain)
        if self.volume_gain_db is not None:
            samples = change_volume(samples, float(rng.uniform(*self.volume_gain_db)))
        return samples

    def _silence(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Recording habits: half the chosen utterances lose their silent ends (to a drawn margin), half get more."""
        if not (self.silence_prob > 0 and rng.random() < self.silence_prob):
            return samples
        sr = self.sample_rate_hz
        if rng.random() < 0.5:
            keep = (float(rng.uniform(*self.silence_keep_s)), float(rng.uniform(*self.silence_keep_s)))
            return trim_silence(samples, sr, keep_s=keep)
        lead, trail = float(rng.uniform(*self.silence_pad_s)), float(rng.uniform(*self.silence_pad_s))
        return pad_silence(samples, sr, lead, trail, rng)

    def _babble(self, samples: np.ndarray, rng: np.random.Generator, others: OtherVoices | None) -> np.ndarray:
        """Other training speakers talking at once, at a drawn SNR."""
        if not (self.babble_prob > 0 and rng.random() < self.babble_prob) or others is None:
            return samples
        talkers = int(rng.integers(self.babble_talkers[0], self.babble_talkers[1] + 1))
        voices = others(rng, talkers)
        if len(voices) < talkers:
            return samples
        return add_noise(samples, babble(len(samples), voices, talkers, rng), float(rng.uniform(*self.babble_snr_db)))

    def _microphone_and_line(self, samples: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Microphone colour (spectral tilt), then the line: a lower recording rate or a codec (one of the two)."""
        sr = self.sample_rate_hz
        if self.tilt_prob > 0 and rng.random() < self.tilt_prob:
            samples = eq_tilt(samples, sr, float(rng.uniform(*self.tilt_db_per_octave)))
        line = rng.random()
        if line < self.bandlimit_prob:
            rate = int(self.bandlimit_rates_hz[rng.integers(len(self.bandlimit_rates_hz))])
            return band_limit(samples, sr, rate)
        if line < self.bandlimit_prob + self.codec_prob:
            return codec(samples, sr, str(self.codecs[rng.integers(len(self.codecs))]))
        return samples


def utterance_rng(seed: int, epoch: int, index: int, copy: int = 0) -> np.random.Generator:
    """The random stream for one utterance in one epoch: independent of workers, batch order and resume.

    ``copy`` > 0: another copy of the utterance in the same epoch (a corpus weighted above 1) hears its own draw.
    """
    return np.random.default_rng([seed, epoch, index] if copy == 0 else [seed, epoch, index, copy])
