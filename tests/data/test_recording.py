"""Recording-chain transforms (band limits, codecs, silence, tilt, babble) and their use in WaveAugment."""

from __future__ import annotations

import numpy as np
import pytest
from test_channels import SR, speechlike

from asr.data.augment import WaveAugment, utterance_rng
from asr.data.recording import (
    CODECS,
    band_limit,
    codec,
    eq_tilt,
    pad_silence,
    speech_bounds,
    trim_silence,
)


def _db(x: float) -> float:
    return float(10 * np.log10(x))


def _energy_above(x: np.ndarray, hz: float) -> float:
    """Share of the energy above ``hz``, in dB."""
    spec = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / SR)
    return _db(spec[f > hz].sum() / spec.sum())


def _snr_db(out: np.ndarray, ref: np.ndarray) -> float:
    return _db(np.mean(ref ** 2) / np.mean((out - ref) ** 2))


def test_band_limit_removes_everything_above_the_lower_nyquist_and_keeps_the_rest():
    x = speechlike(2.0)
    assert _energy_above(x, 4100) > -25  # the test voice has energy up there to remove
    y = band_limit(x, SR, 8000)
    assert len(y) == len(x) and _energy_above(y, 4100) < -55
    assert _snr_db(band_limit(y, SR, 8000), y) > 40  # what is left is what was below 4 kHz, unchanged


@pytest.mark.parametrize("name,min_snr_db", [("ulaw", 35), ("alaw", 35), ("gsm", 14), ("mp3", 20), ("opus", 16)])
def test_codecs_keep_length_and_level_and_cost_what_their_bit_rate_says(name, min_snr_db):
    x = speechlike(2.0)
    y = codec(x, SR, name)
    narrow = CODECS[name][2] == 8000
    ref = band_limit(x, SR, 8000) if narrow else x
    assert len(y) == len(x) and np.isfinite(y).all()
    assert abs(_db(np.mean(y ** 2) / np.mean(x ** 2))) < 0.5
    assert min_snr_db < _snr_db(y, ref) < 60  # lossy, but the speech is still there
    if narrow:
        assert _energy_above(y, 4100) < -50
    with pytest.raises(ValueError, match="unknown codec 'amr'"):
        codec(x, SR, "amr")


def _padded(lead_s: float, trail_s: float) -> np.ndarray:
    return np.concatenate([np.zeros(int(lead_s * SR)), speechlike(1.0), np.zeros(int(trail_s * SR))]).astype(
        np.float32)


def test_trim_silence_finds_the_speech_and_keeps_the_asked_margins():
    x = _padded(0.3, 0.4)
    start, end = speech_bounds(x, SR)
    assert abs(start - 0.3 * SR) < 0.02 * SR and abs(end - 1.3 * SR) < 0.02 * SR
    assert abs(len(trim_silence(x, SR)) - SR) < 0.04 * SR
    kept = trim_silence(x, SR, keep_s=(0.1, 0.2))
    assert abs(len(kept) - 1.3 * SR) < 0.04 * SR
    quiet = np.full(SR, 1e-4, dtype=np.float32)  # all below threshold: nothing to cut
    assert len(trim_silence(quiet, SR)) == SR


def test_pad_silence_adds_exactly_the_asked_quiet_background():
    x = speechlike(1.0)
    y = pad_silence(x, SR, 0.25, 0.5, np.random.default_rng(0))
    assert len(y) == len(x) + SR // 4 + SR // 2
    np.testing.assert_array_equal(y[SR // 4: SR // 4 + len(x)], x)
    assert abs(_db(np.mean(y[: SR // 4].astype(np.float64) ** 2)) - (-60)) < 1


def test_eq_tilt_changes_the_balance_by_the_stated_slope_and_keeps_the_power():
    x = np.random.default_rng(0).standard_normal(4 * SR).astype(np.float32) * 0.1
    y = eq_tilt(x, SR, 4.0)
    f = np.fft.rfftfreq(len(x), 1 / SR)

    def band(z, lo, hi):
        return (np.abs(np.fft.rfft(z)) ** 2)[(f > lo) & (f < hi)].mean()

    # +4 dB per octave: 2 octaves up at 4 kHz (+8 dB), 2 down at 250 Hz (-8 dB)
    gain_4k = _db(band(y, 3900, 4100) / band(x, 3900, 4100))
    gain_250 = _db(band(y, 240, 260) / band(x, 240, 260))
    assert abs((gain_4k - gain_250) - 16.0) < 1.0
    assert abs(_db(np.mean(y ** 2) / np.mean(x ** 2))) < 0.01


def _voices(rng, k):
    return [speechlike(0.8, seed=10 + int(rng.integers(100))) for _ in range(k)]


def test_recording_chain_parts_never_shift_the_other_parts_draws():
    x = speechlike(1.5)
    base = WaveAugment(speeds=(0.9, 1.0, 1.1), noise_prob=1.0, volume_gain_db=(-6, 6))
    # a chain part that is on but changes nothing (a tilt of 0 dB) must leave the output bit-identical
    flat = WaveAugment(speeds=(0.9, 1.0, 1.1), noise_prob=1.0, volume_gain_db=(-6, 6), tilt_prob=1.0,
                       tilt_db_per_octave=(0.0, 0.0))
    for i in range(4):
        np.testing.assert_array_equal(base(x, utterance_rng(5, 2, i)), flat(x, utterance_rng(5, 2, i)))


def test_babble_from_other_voices_is_mixed_at_the_drawn_snr_and_is_seeded():
    x = speechlike(1.5)
    aug = WaveAugment(babble_prob=1.0, babble_snr_db=(10.0, 10.0), babble_talkers=(3, 3))
    y = aug(x, utterance_rng(1, 0, 0), others=_voices)
    assert abs(_snr_db(y, x) - 10.0) < 0.1
    np.testing.assert_array_equal(y, aug(x, utterance_rng(1, 0, 0), others=_voices))
    np.testing.assert_array_equal(aug(x, utterance_rng(1, 0, 0)), x)  # no voices to draw from: no babble


def test_every_chain_part_is_seeded_per_utterance_and_epoch():
    x = _padded(0.3, 0.3)
    aug = WaveAugment(silence_prob=1.0, tilt_prob=1.0, bandlimit_prob=0.5, codec_prob=0.5, babble_prob=1.0)
    outs = [aug(x, utterance_rng(9, epoch, 0), others=_voices) for epoch in range(4)]
    for epoch in range(4):
        np.testing.assert_array_equal(outs[epoch], aug(x, utterance_rng(9, epoch, 0), others=_voices))
    assert len({o.tobytes() for o in outs}) == 4
    assert len({len(o) for o in outs}) > 1  # silent ends trimmed or padded


def test_rooms_and_the_chain_wait_for_chain_from_epoch_and_leave_the_other_draws_alone():
    x = _padded(0.3, 0.3)
    parts = dict(silence_prob=1.0, tilt_prob=1.0, bandlimit_prob=1.0, babble_prob=1.0, reverb_prob=1.0)
    later = WaveAugment(speeds=(0.9, 1.1), noise_prob=1.0, chain_from_epoch=3, **parts)
    now = WaveAugment(speeds=(0.9, 1.1), noise_prob=1.0, **parts)
    plain = WaveAugment(speeds=(0.9, 1.1), noise_prob=1.0)
    for epoch in range(5):
        def rng(epoch=epoch):
            return utterance_rng(9, epoch, 0)

        got = later(x, rng(), others=_voices, epoch=epoch)
        if epoch < 3:  # speed and noise as without the chain, nothing else
            want = WaveAugment(speeds=(0.9, 1.1), noise_prob=1.0, reverb_prob=1.0, chain_from_epoch=9)
            np.testing.assert_array_equal(got, want(x, rng(), epoch=epoch))
            assert not np.array_equal(got, plain(x, rng()))  # noise and speed are there
        else:
            np.testing.assert_array_equal(got, now(x, rng(), others=_voices, epoch=epoch))
    np.testing.assert_array_equal(later(x, utterance_rng(9, 0, 0), others=_voices),
                                  now(x, utterance_rng(9, 0, 0), others=_voices))  # no epoch given: all on
    with pytest.raises(ValueError, match="chain_from_epoch must be >= 0"):
        WaveAugment(chain_from_epoch=-1)


def test_every_part_waits_for_from_epoch():
    x = _padded(0.3, 0.3)
    parts = dict(speeds=(0.9, 1.1), noise_prob=1.0, volume_gain_db=(-6.0, 6.0), silence_prob=1.0, reverb_prob=1.0)
    late, now = WaveAugment(from_epoch=2, **parts), WaveAugment(**parts)
    for epoch in range(4):
        got = late(x, utterance_rng(9, epoch, 0), others=_voices, epoch=epoch)
        if epoch < 2:
            assert got is x  # as recorded
        else:
            np.testing.assert_array_equal(got, now(x, utterance_rng(9, epoch, 0), others=_voices, epoch=epoch))
    with pytest.raises(ValueError, match="from_epoch must be >= 0"):
        WaveAugment(from_epoch=-1)


def test_chain_settings_are_checked():
    with pytest.raises(ValueError, match="codecs must be a non-empty list"):
        WaveAugment(codec_prob=0.5, codecs=("amr",))
    with pytest.raises(ValueError, match=r"bandlimit_prob \+ codec_prob must be <= 1"):
        WaveAugment(codec_prob=0.6, bandlimit_prob=0.6)
    with pytest.raises(ValueError, match="bandlimit_rates_hz must be rates below 16000"):
        WaveAugment(bandlimit_prob=0.5, bandlimit_rates_hz=(16000,))
    with pytest.raises(ValueError, match="silence probability must be in"):
        WaveAugment(silence_prob=1.5)
    assert WaveAugment(tilt_prob=0.1).active and not WaveAugment().active


def test_dataset_babble_draws_other_speakers_only(tmp_path):
    import json

    import soundfile as sf

    from asr.data.dataset import SpeechDataset
    from asr.data.manifest import read_manifest

    lines = []
    for k, spk in enumerate(["a", "a", "b", "c"]):
        sf.write(tmp_path / f"{k}.flac", speechlike(0.5 + 0.1 * k, seed=k), SR, subtype="PCM_16")
        lines.append(json.dumps({"audio_filepath": f"{k}.flac", "duration": 0.5 + 0.1 * k, "text": "a",
                                 "speaker": spk}))
    (tmp_path / "m.jsonl").write_text("\n".join(lines) + "\n")
    utts = read_manifest(tmp_path / "m.jsonl")
    assert [u.speaker for u in utts] == ["a", "a", "b", "c"]
    ds = SpeechDataset(utts, None, SR)
    voices = ds.other_voices(0)(np.random.default_rng(0), 2)
    lengths = sorted(len(v) for v in voices)
    assert lengths == [int(0.7 * SR), int(0.8 * SR)]  # utterances 2 and 3; never 1, the same speaker "a"
