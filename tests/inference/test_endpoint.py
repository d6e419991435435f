"""The energy endpointer: cuts at pauses after speech, whatever the piece sizes, and never in a quiet stream."""

import numpy as np
import pytest

from asr.inference.endpoint import EnergyEndpointer

SR = 16000


def speech(seconds: float, rng: np.random.Generator, level: float = 0.3) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    return (level * np.sin(2 * np.pi * 300 * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))
            + 0.001 * rng.standard_normal(len(t))).astype(np.float32)


def quiet(seconds: float, rng: np.random.Generator, level: float = 0.001) -> np.ndarray:
    return (level * rng.standard_normal(int(seconds * SR))).astype(np.float32)


def cuts_in_pieces(audio: np.ndarray, seed: int, **kw) -> list[int]:
    ep, rng, out, i = EnergyEndpointer(SR, **kw), np.random.default_rng(seed), [], 0
    while i < len(audio):
        n = int(rng.integers(1, 9000))
        out += ep.push(audio[i:i + n])
        i += n
    return out


def test_a_pause_after_speech_ends_a_segment_at_its_end_for_any_piece_sizes():
    rng = np.random.default_rng(0)
    parts = [quiet(0.5, rng), speech(1.0, rng), quiet(0.2, rng), speech(0.5, rng), quiet(0.8, rng),
             speech(0.7, rng), quiet(0.3, rng)]
    audio = np.concatenate(parts)
    # the 0.2 s gap is too short to end a segment; the 0.8 s pause ends one 0.5 s into it
    pause_start = sum(len(p) for p in parts[:4])
    want = [pause_start + SR // 2]
    whole = EnergyEndpointer(SR, silence_s=0.5).push(audio)
    assert whole == pytest.approx(want, abs=160)  # within one 10 ms frame
    for seed in range(4):
        assert cuts_in_pieces(audio, seed, silence_s=0.5) == whole


def test_the_floor_follows_a_loud_background():
    rng = np.random.default_rng(1)
    noisy = lambda s: quiet(s, rng, level=0.02)  # noqa: E731 - a line at -34 dBFS, well above min_speech_db
    audio = np.concatenate([noisy(4.0), speech(1.0, rng) + noisy(1.0), noisy(1.0), speech(1.0, rng) + noisy(1.0),
                            noisy(1.0)])
    cuts = EnergyEndpointer(SR, silence_s=0.5).push(audio)
    # the first seconds of background count as speech until the floor has risen to them; after that each pause
    # ends a segment, and the background alone never does
    assert [round(c / SR, 1) for c in cuts if c > 4 * SR] == [5.5, 7.5]


def test_quiet_audio_never_ends_a_segment_and_a_talker_who_never_pauses_is_cut_at_max_segment_s():
    rng = np.random.default_rng(2)
    assert EnergyEndpointer(SR, silence_s=0.3).push(quiet(5.0, rng)) == []
    assert EnergyEndpointer(SR, silence_s=0.3).push(np.zeros(5 * SR, dtype=np.float32)) == []
    assert EnergyEndpointer(SR, silence_s=0.3, max_segment_s=2.0).push(speech(5.0, rng)) == [2 * SR, 4 * SR]


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="silence_s must be > 0 and max_segment_s above it"):
        EnergyEndpointer(SR, silence_s=0.5, max_segment_s=0.4)
