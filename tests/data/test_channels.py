"""Simulated recording conditions (asr.data.channels) and the robustness benchmark that uses them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from asr.data.channels import CONDITIONS, babble, clip, get_conditions, reverberate, room_impulse_response, telephone

SR = 16000
ROOT = Path(__file__).resolve().parents[2]


def power_db(x) -> float:
    return 10 * np.log10(np.mean(np.asarray(x, dtype=np.float64) ** 2))


def speechlike(seconds: float = 1.5, seed: int = 0) -> np.ndarray:
    """Harmonics of a 150 Hz voice, amplitude-modulated like syllables: energy across the band, not one tone."""
    t = np.arange(int(seconds * SR)) / SR
    x = sum(np.sin(2 * np.pi * 150 * k * t) / k for k in range(1, 40))
    x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
    return (0.1 * x + 0.001 * np.random.default_rng(seed).standard_normal(len(t))).astype(np.float32)


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_every_condition_keeps_length_is_finite_and_repeats_with_its_seed(name):
    x = np.concatenate([np.zeros(SR // 4, dtype=np.float32), speechlike(), np.zeros(SR // 4, dtype=np.float32)])
    others = [speechlike(0.7 + 0.1 * k, seed=k + 1) for k in range(5)]
    cond = CONDITIONS[name]
    a = cond.apply(x, SR, np.random.default_rng([3, 1]), others)
    b = cond.apply(x, SR, np.random.default_rng([3, 1]), others)
    assert np.isfinite(a).all()
    if not cond.keeps_length:  # the one condition that shortens the audio: the silent quarter-seconds go, up to
        # one 20 ms detection window at each end
        assert len(x) - SR // 2 <= len(a) <= len(x) - SR // 2 + 2 * SR // 50
    else:
        assert len(a) == len(x)
    np.testing.assert_array_equal(a, b)
    if name != "clean":
        assert not np.array_equal(a, x)


@pytest.mark.parametrize("name,snr_db", [("white_20dB", 20.0), ("white_10dB", 10.0), ("pink_10dB", 10.0),
                                         ("babble_10dB", 10.0)])
def test_noise_is_added_at_the_stated_snr(name, snr_db):
    x = speechlike()
    others = [speechlike(1.0, seed=k + 1) for k in range(5)]
    y = CONDITIONS[name].apply(x, SR, np.random.default_rng(0), others)
    assert power_db(x) - power_db(y - x) == pytest.approx(snr_db, abs=0.01)


def test_pink_noise_puts_more_power_low_than_white_noise_does():
    x = np.zeros(SR, dtype=np.float32)
    x[::400] = 1.0  # a click train: some signal power, flat spectrum
    low_share = {}
    for name in ("white_10dB", "pink_10dB"):
        noise = CONDITIONS[name].apply(x, SR, np.random.default_rng(0), []) - x
        spec = np.abs(np.fft.rfft(noise)) ** 2
        low_share[name] = spec[: len(spec) // 8].sum() / spec.sum()  # below 1 kHz
    assert low_share["white_10dB"] == pytest.approx(1 / 8, abs=0.02)
    assert low_share["pink_10dB"] > 0.5


def test_room_impulse_response_decays_60_db_in_rt60():
    rt60 = 0.4
    h = room_impulse_response(rt60, SR, np.random.default_rng(0))
    start = int(0.0025 * SR)
    tail = h[start:]
    w = int(0.05 * SR)  # equal windows, one at the tail's start and one rt60 later: 60 dB apart
    early, late = tail[:w], tail[int(rt60 * SR): int(rt60 * SR) + w]
    assert power_db(early) - power_db(late) == pytest.approx(60.0, abs=2.0)
    assert h[0] == 1.0 and np.sum(tail ** 2) == pytest.approx(1.0)  # direct path = reverberant energy
    with pytest.raises(ValueError, match="RT60"):
        room_impulse_response(0.0, SR, np.random.default_rng(0))


def test_reverberation_smears_an_impulse_over_the_rt60_and_keeps_the_power():
    x = np.zeros(SR, dtype=np.float32)
    x[1000] = 1.0
    y = reverberate(x, 0.3, SR, np.random.default_rng(0))
    assert power_db(y) == pytest.approx(power_db(x), abs=1e-3)
    assert np.abs(y[:1000]).max() < 1e-6  # causal (FFT round-off aside)
    energy = np.cumsum(y.astype(np.float64) ** 2) / np.sum(y.astype(np.float64) ** 2)
    assert 0.4 < energy[1000] < 0.6  # the direct path: half the energy
    assert energy[1000 + int(0.15 * SR)] > 0.99  # the rest within half the RT60 (-30 dB by then)


def test_telephone_line_removes_everything_above_4_khz_and_below_300_hz():
    x = np.random.default_rng(0).standard_normal(2 * SR).astype(np.float32) * 0.1
    y = telephone(x, SR)
    assert len(y) == len(x) and power_db(y) == pytest.approx(power_db(x), abs=1e-3)
    spec = np.abs(np.fft.rfft(y)) ** 2
    hz = np.fft.rfftfreq(len(y), 1 / SR)
    in_band = spec[(hz > 500) & (hz < 3000)].mean()
    assert 10 * np.log10(spec[hz > 4200].mean() / in_band) < -40
    assert 10 * np.log10(spec[hz < 100].mean() / in_band) < -15  # second-order high-pass at 300 Hz


def test_clipping_flattens_the_peaks_and_keeps_the_power():
    x = speechlike()
    y = clip(x, 12.0)
    assert power_db(y) == pytest.approx(power_db(x), abs=1e-3)
    top = np.abs(y).max()
    assert np.mean(np.abs(y) >= top * 0.999) > 0.01  # many samples sit at the clipping level
    assert np.array_equal(clip(np.zeros(10, dtype=np.float32), 12.0), np.zeros(10))


def test_quiet_condition_is_20_db_down():
    x = speechlike()
    y = CONDITIONS["quiet_-20dB"].apply(x, SR, np.random.default_rng(0), [])
    assert power_db(x) - power_db(y) == pytest.approx(20.0, abs=1e-3)


def test_babble_mixes_distinct_talkers_and_needs_enough_of_them():
    others = [speechlike(1.0, seed=k + 1) for k in range(4)]
    b = babble(SR // 2, others, 4, np.random.default_rng(0))
    assert len(b) == SR // 2 and power_db(b) == pytest.approx(0.0, abs=1e-3)
    with pytest.raises(ValueError, match="babble needs 4 other non-silent utterances, got 3"):
        babble(SR, others[:3] + [np.zeros(SR, dtype=np.float32)], 4, np.random.default_rng(0))


def test_unknown_condition_names_the_known_ones():
    assert [c.name for c in get_conditions(["telephone", "clean"])] == ["telephone", "clean"]
    with pytest.raises(KeyError, match="unknown condition.*'hall'.*known: clean, white_20dB"):
        get_conditions(["clean", "hall"])


def test_robustness_benchmark_scores_every_model_on_the_same_degraded_audio(tmp_path):
    from conftest import train_tone_model

    model, manifest = train_tone_model(tmp_path)
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "robustness.py"), "--manifest", str(manifest),
         "--model", f"a={model}", "--model", f"b={model}", "--conditions", "clean,white_10dB,babble_10dB,telephone",
         "--threads", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    res = report["results"]
    assert report["utterances"] == 8 and list(res["a"]) == ["clean", "white_10dB", "babble_10dB", "telephone"]
    assert res["a"]["clean"]["greedy"]["wer"] == 0.0  # the tone model overfits its corpus
    assert res["a"] == res["b"]  # same model, same degraded audio: same words
    assert "| telephone |" in report["markdown"]

    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "robustness.py"), "--manifest", str(manifest),
                          "--model", f"a={model}", "--conditions", "clean,hall"],
                         capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert bad.returncode == 1 and "unknown condition(s) ['hall']" in bad.stderr


def test_generalization_benchmark_scores_conditions_and_held_out_digit_readers(tmp_path):
    """Trimmed audio changes length and still scores; the held-out set is the digit readers' digit strings."""
    import soundfile as sf
    from conftest import train_tone_model

    model, manifest = train_tone_model(tmp_path)
    so = tmp_path / "speechocean"
    (so / "train").mkdir(parents=True)
    texts = {"u1": ("s1", "ZERO ONE"), "u2": ("s1", "HELLO"), "u3": ("s2", "WE CALL IT BEAR"), "u4": ("s3", "TWO")}
    for utt in texts:
        sf.write(so / f"{utt}.flac", speechlike(0.8, seed=len(utt)), SR, subtype="PCM_16")
    (so / "train" / "text").write_text("".join(f"{u} {t}\n" for u, (_, t) in texts.items()))
    (so / "train" / "utt2spk").write_text("".join(f"{u} {s}\n" for u, (s, _) in texts.items()))
    (so / "train" / "wav.scp").write_text("".join(f"{u} {u}.flac\n" for u in texts))
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "generalization.py"), "--manifest", str(manifest),
         "--model", f"tone={model}", "--conditions", "clean,trimmed,8kHz", "--speechocean", str(so), "--threads", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    res = report["results"]["tone"]
    assert list(res) == ["clean", "trimmed", "8kHz", "speechocean762_held_out_digits"]
    assert res["clean"]["greedy"]["wer"] == 0.0
    assert report["held_out"]["speechocean762_held_out_digits"]["utterances"] == 2  # u1 and u4, not u2 or u3
    assert res["speechocean762_held_out_digits"]["greedy"]["words"]["ref_len"] == 3
    assert "| speechocean762_held_out_digits |" in report["markdown"]
