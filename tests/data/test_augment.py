"""Waveform augmentation: exact lengths and levels, seeded per (seed, epoch, utterance), training only."""

import numpy as np
import pytest
import torch

from asr.config.schema import AugmentConfig, ConfigError, Settings
from asr.data.augment import (
    WaveAugment,
    add_noise,
    change_volume,
    colored_noise,
    speed_perturb,
    utterance_rng,
)
from asr.data.dataset import DurationBatchSampler, SpeechDataset, collate
from asr.data.manifest import read_manifest
from asr.data.tokenizer import CharTokenizer

SR = 16000


def sine(seconds: float, hz: float = 440.0) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (0.3 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def dominant_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


@pytest.mark.parametrize("speed", [0.9, 1.1])
def test_speed_changes_length_and_pitch_by_the_factor(speed):
    x = sine(1.0)
    y = speed_perturb(x, speed)
    assert abs(len(y) - len(x) / speed) <= 1
    assert abs(dominant_hz(y) - 440 * speed) < 3  # played faster: higher by the same factor
    assert speed_perturb(x, 1.0) is x


def test_noise_is_mixed_at_the_requested_snr():
    rng = np.random.default_rng(0)
    x = sine(1.0)
    for snr in (0.0, 10.0, 25.0):
        noise = colored_noise(len(x), 1.0, rng)
        y = add_noise(x, noise, snr)
        measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean((y - x).astype(np.float64) ** 2))
        assert abs(measured - snr) < 1e-3


def test_noise_colours_have_their_spectral_slope():
    rng = np.random.default_rng(1)
    for exponent in (0.0, 1.0, 2.0):
        n = colored_noise(2 ** 16, exponent, rng)
        assert abs(np.mean(n.astype(np.float64) ** 2) - 1) < 1e-3  # unit power
        power = np.abs(np.fft.rfft(n)) ** 2
        f = np.arange(len(power))
        band = (f > 100) & (f < 20000)
        slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
        assert abs(slope + exponent) < 0.1  # power ∝ f^-exponent


def test_volume_gain_in_db():
    x = sine(0.5)
    y = change_volume(x, 6.0)
    assert abs(20 * np.log10(np.abs(y).max() / np.abs(x).max()) - 6.0) < 1e-4


def test_reverb_adds_a_room_tail_of_the_drawn_length_keeping_length_and_power():
    sr = 16000
    x = np.zeros(sr, dtype=np.float32)
    x[:800] = sine(0.05)[:800]  # a 50 ms burst, then silence
    aug = WaveAugment(reverb_prob=1.0, reverb_rt60_s=(0.4, 0.4), reverb_drr_db=(0.0, 0.0), sample_rate_hz=sr)
    y = aug(x, utterance_rng(1, 0, 0))
    assert len(y) == len(x) and y.dtype == np.float32
    np.testing.assert_allclose(np.mean(y.astype(np.float64) ** 2), np.mean(x.astype(np.float64) ** 2), rtol=1e-3)

    def level_db(a, b):  # energy of y between a and b seconds
        return 10 * np.log10(np.mean(y[int(a * sr):int(b * sr)].astype(np.float64) ** 2))

    # the silence after the burst now rings, falling about 60 dB per RT60 (15 dB per 0.1 s at 0.4 s)
    drop = level_db(0.10, 0.15) - level_db(0.30, 0.35)
    assert 20 < drop < 40
    assert np.abs(y[int(0.05 * sr + 1.2 * 0.4 * sr) + 100:]).max() < 1e-6  # nothing after the tail (FFT rounding)
    # off, it draws nothing: the other parts' draws are what they were
    plain = WaveAugment(speeds=(0.9, 1.1), noise_prob=1.0)
    assert np.array_equal(plain(x, utterance_rng(2, 0, 5)),
                          WaveAugment(speeds=(0.9, 1.1), noise_prob=1.0, reverb_prob=0.0)(x, utterance_rng(2, 0, 5)))


def test_augment_is_deterministic_per_seed_epoch_and_utterance():
    aug = WaveAugment(speeds=(0.9, 1.0, 1.1), noise_prob=1.0, volume_gain_db=(-6.0, 6.0))
    x = sine(1.0)
    a = aug(x, utterance_rng(7, 3, 12))
    assert np.array_equal(a, aug(x, utterance_rng(7, 3, 12)))
    others = [aug(x, utterance_rng(7, 4, 12)), aug(x, utterance_rng(7, 3, 13)), aug(x, utterance_rng(8, 3, 12))]
    assert all(len(o) != len(a) or not np.array_equal(o, a) for o in others)
    # over many utterances every speed is drawn, about equally often
    lengths = [len(aug(x, utterance_rng(0, 0, i))) for i in range(300)]
    counts = {n: lengths.count(n) for n in set(lengths)}
    assert len(counts) == 3 and min(counts.values()) > 70
    assert not WaveAugment().active and WaveAugment().__call__(x, utterance_rng(0, 0, 0)) is x


def test_dataset_augments_only_epoch_tagged_training_items(tone_corpus):
    utts = read_manifest(tone_corpus)
    tok = CharTokenizer.build(u.text for u in utts)
    aug = AugmentConfig(speed_perturb=True, noise=True, noise_prob=1.0, volume=True).wave_augment()
    ds = SpeechDataset(utts, tok, SR, augment=aug, seed=5)
    plain = SpeechDataset(utts, tok, SR)
    assert torch.equal(ds[2]["samples"], plain[2]["samples"])  # untagged (evaluation): never augmented
    tagged = ds[(2, 0)]["samples"]
    assert not torch.equal(tagged, plain[2]["samples"])
    assert torch.equal(tagged, ds[(2, 0)]["samples"])  # the same epoch gives the same audio
    assert not torch.equal(tagged, ds[(2, 1)]["samples"]) or len(tagged) != len(ds[(2, 1)]["samples"])
    # an utterance too short for its transcript at the faster speed keeps its own speed
    never = SpeechDataset(utts, tok, SR, augment=WaveAugment(speeds=(1.1,)), seed=5, feasible=lambda n, ids: False)
    assert len(never[(2, 0)]["samples"]) == len(plain[2]["samples"])


def test_sampler_tags_batches_with_the_epoch_and_resumes():
    sampler = DurationBatchSampler([1.0] * 10, 3.0, seed=1, tag_epoch=True)
    sampler.set_epoch(4)
    it = iter(sampler)
    first = next(it)
    assert all(e == 4 for _, e in first)
    state = sampler.state_dict()
    rest = list(it)
    resumed = DurationBatchSampler([1.0] * 10, 3.0, seed=1, tag_epoch=True)
    resumed.load_state_dict(state)
    assert list(resumed) == rest  # the same indices and the same epoch tags: the same augmentation


def test_collate_keeps_augmented_lengths(tone_corpus):
    utts = read_manifest(tone_corpus)
    tok = CharTokenizer.build(u.text for u in utts)
    ds = SpeechDataset(utts, tok, SR, augment=WaveAugment(speeds=(0.9,)), seed=0)
    batch = collate([ds[(0, 0)], ds[(1, 0)]])
    assert batch.wave_lens.tolist() == [len(ds[(0, 0)]["samples"]), len(ds[(1, 0)]["samples"])]
    assert abs(batch.wave_lens[0] - len(ds[0]["samples"]) / 0.9) <= 1


def test_augment_settings_are_validated():
    with pytest.raises(ConfigError, match="noise_snr_db"):
        Settings.from_dict({"augment": {"noise": True, "noise_snr_db": [30, 10]}})
    with pytest.raises(ConfigError, match=r"augment\.speeds\[1\]"):
        Settings.from_dict({"augment": {"speeds": [0.9, "fast"]}})
    s = Settings.from_dict({"augment": {"speed_perturb": True, "speeds": [0.8, 1.0, 1.2, 1.4]}})
    assert s.augment.wave_augment().speeds == (0.8, 1.0, 1.2, 1.4)
    assert not Settings.from_dict({}).augment.wave_augment().active  # waveform parts are off by default
    room = Settings.from_dict({"augment": {"reverb": True, "reverb_rt60_s": [0.3, 0.5]}}).augment.wave_augment(8000)
    assert (room.reverb_prob, room.reverb_rt60_s, room.sample_rate_hz, room.active) == (0.3, (0.3, 0.5), 8000, True)
    assert Settings.from_dict({"augment": {"chain_from_epoch": 8}}).augment.wave_augment().chain_from_epoch == 8
    for bad, key in (({"reverb_rt60_s": [0.0, 0.5]}, "reverb_rt60_s"), ({"reverb_drr_db": [10, 0]}, "reverb_drr_db"),
                     ({"reverb_prob": 1.5}, "reverb_prob"), ({"noise_prob": -0.1}, "noise_prob")):
        with pytest.raises(ConfigError, match=rf"augment\.{key}"):
            Settings.from_dict({"augment": {"reverb": True, **bad}})
