"""Waveform augmentation for training: speed perturbation, additive noise, volume.

Each transform is a pure function of the samples and explicit random draws; the
:class:`WaveAugment` wrapper draws them from a ``numpy.random.Generator`` that the dataset
seeds with ``(seed, epoch, utterance index)``, so an epoch's augmentation is the same in
any worker, and a resumed run sees exactly what the uninterrupted run would have.
(SpecAugment, the feature-level masking, lives in :mod:`asr.features`.)

The noise source is synthetic, so nothing needs to be downloaded: Gaussian noise whose
power spectrum falls as ``1 / f^exponent``, with the exponent drawn between 0 (white)
and 2 (brown), pink (1) in between: broadband hiss to low-frequency rumble.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torchaudio


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


def change_volume(samples: np.ndarray, gain_db: float) -> np.ndarray:
    """Scale by ``gain_db`` decibels (no clipping: samples are floats)."""
    return (samples * 10 ** (gain_db / 20)).astype(np.float32)


@dataclass(frozen=True)
class WaveAugment:
    """Training-time waveform augmentation with plain settings; every part off by default.

    Args:
        speeds: speed factors to draw from uniformly (e.g. ``(0.9, 1.0, 1.1)``); empty: off.
        noise_prob: chance that an utterance gets noise; 0: off.
        noise_snr_db: SNR range in dB, drawn uniformly.
        volume_gain_db: gain range in dB, drawn uniformly; ``None``: off.

    ``__call__(samples, rng)`` returns the augmented samples (a new length after speed change).
    """

    speeds: tuple[float, ...] = ()
    noise_prob: float = 0.0
    noise_snr_db: tuple[float, float] = (10.0, 30.0)
    volume_gain_db: tuple[float, float] | None = None

    def __post_init__(self):
        if any(s <= 0 for s in self.speeds):
            raise ValueError(f"speed factors must be > 0, got {self.speeds}")
        if not 0 <= self.noise_prob <= 1:
            raise ValueError(f"noise probability must be in [0, 1], got {self.noise_prob}")
        for name, rng in (("noise_snr_db", self.noise_snr_db), ("volume_gain_db", self.volume_gain_db)):
            if rng is not None and rng[0] > rng[1]:
                raise ValueError(f"{name}: range ({rng[0]}, {rng[1]}) has its low end above its high end")

    @property
    def active(self) -> bool:
        return bool(self.speeds) or self.noise_prob > 0 or self.volume_gain_db is not None

    def draw_speed(self, rng: np.random.Generator) -> float:
        return float(self.speeds[rng.integers(len(self.speeds))]) if self.speeds else 1.0

    def __call__(self, samples: np.ndarray, rng: np.random.Generator, speed: float | None = None) -> np.ndarray:
        """Augment; ``speed`` (if given) replaces the drawn speed factor, the other draws stay the same."""
        drawn = self.draw_speed(rng)  # always drawn first, so the later draws do not depend on ``speed``
        samples = speed_perturb(samples, drawn if speed is None else speed)
        if self.noise_prob > 0 and rng.random() < self.noise_prob:
            noise = colored_noise(len(samples), float(rng.uniform(0.0, 2.0)), rng)
            samples = add_noise(samples, noise, float(rng.uniform(*self.noise_snr_db)))
        if self.volume_gain_db is not None:
            samples = change_volume(samples, float(rng.uniform(*self.volume_gain_db)))
        return samples


def utterance_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random stream for one utterance in one epoch: independent of workers, batch order and resume."""
    return np.random.default_rng([seed, epoch, index])
