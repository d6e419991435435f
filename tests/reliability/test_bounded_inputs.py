"""Untrusted numbers in manifests never drive allocation: durations are checked against limits and headers."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.data.manifest import MAX_DURATION_S, ManifestError, read_manifest
from asr.data.tokenizer import CharTokenizer
from asr.data.validate import validate_manifest
from asr.frontend.features import FeatureConfig, FeatureExtractor
from asr.inference.segment import WindowConfig, plan_windows
from asr.inference.transcribe import transcribe

SR = 16000


class LoudIsA(torch.nn.Module):
    """Every loud output frame reads "a", every quiet one a word break: one word per stretch of tone."""

    vocab = ["<blank>", " ", "a"]

    def __init__(self):
        super().__init__()
        self.features = FeatureExtractor(FeatureConfig())

    def forward(self, wave, wave_lens):
        lengths = self.features.output_lengths(wave_lens)
        hop = int(self.features.config.sample_rate_hz * self.features.config.output_frame_shift_s)
        need = int(lengths.max()) * hop  # the last frame may reach past the samples (centred framing)
        wave = torch.nn.functional.pad(wave, (0, max(0, need - wave.shape[1])))
        frames = wave[:, :need].reshape(len(wave), -1, hop).abs().amax(-1)  # (B, T)
        sym = torch.where(frames > 0.1, 2, 1)  # (B, T)
        return torch.nn.functional.one_hot(sym, 3).float().mul(20).log_softmax(-1), lengths


def _tone_file(path: Path, seconds: float) -> Path:
    t = np.arange(int(seconds * SR)) / SR
    wave = 0.5 * np.sin(2 * np.pi * 440 * t) * (np.floor(t) % 2 == 0)  # 1 s tone, 1 s silence, ...
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, wave.astype(np.float32), SR, subtype="PCM_16")
    return path


def _manifest(root: Path, audio: Path, duration) -> Path:
    m = root / "in.jsonl"
    m.write_text(json.dumps({"audio_filepath": str(audio), "duration": duration}) + "\n")
    return m


@pytest.mark.parametrize("duration", [1e308, 1e7, MAX_DURATION_S * 1.01])
def test_an_impossible_duration_is_a_bad_line_for_validate_and_readers(tmp_path, duration):
    audio = _tone_file(tmp_path / "a.wav", 2.0)
    manifest = _manifest(tmp_path, audio, duration)
    for level in ("exists", "header", "decode"):
        report = validate_manifest(manifest, audio=level, require_text=False)
        assert report["kinds"] == {"bad_line": 1} and "duration" in report["problems"][0]["message"], report
        assert f"{manifest}:1" in report["problems"][0]["message"]
    with pytest.raises(ManifestError, match="duration"):
        read_manifest(manifest, require_text=False)


def test_window_planning_refuses_a_duration_beyond_the_limit_instead_of_looping():
    t0 = time.perf_counter()
    for bad in (1e308, float("inf"), float("nan"), MAX_DURATION_S * 2):
        with pytest.raises(ValueError, match="duration"):
            plan_windows(bad, WindowConfig())
    assert time.perf_counter() - t0 < 1.0
    assert len(plan_windows(MAX_DURATION_S, WindowConfig())) < 50_000  # the limit keeps the plan small


def test_a_manifest_duration_far_beyond_the_audio_reads_only_the_audio(tmp_path):
    audio = _tone_file(tmp_path / "a.wav", 3.0)
    manifest = _manifest(tmp_path, audio, 1e5)  # under the limit, but 27 h for a 3 s file
    t0 = time.perf_counter()
    summary = transcribe(LoudIsA(), CharTokenizer(LoudIsA.vocab), manifest, tmp_path / "out.jsonl", num_workers=0)
    assert time.perf_counter() - t0 < 10
    (rec,) = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rec["text"] is not None and rec["duration"] == pytest.approx(3.0, abs=0.01)
    assert "1e+05" in rec["warning"] or "100000" in rec["warning"]
    assert summary["audio_seconds"] == pytest.approx(3.0, abs=0.01)


def test_a_manifest_longer_than_its_audio_transcribes_what_exists_and_reports_it(tmp_path):
    audio = _tone_file(tmp_path / "a.wav", 40.0)
    manifest = _manifest(tmp_path, audio, 60.0)
    summary = transcribe(LoudIsA(), CharTokenizer(LoudIsA.vocab), manifest, tmp_path / "out.jsonl",
                         windows=WindowConfig(12.0, 4.0), num_workers=0)
    (rec,) = [json.loads(x) for x in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert rec["error"] is None and rec["text"] is not None
    assert len(rec["words"]) == 20  # one word per second of tone, in all 40 s
    assert rec["words"][-1]["start"] == pytest.approx(38.0, abs=0.05)
    assert rec["duration"] == pytest.approx(40.0, abs=0.01)
    assert "60" in rec["warning"] and "40.0" in rec["warning"]
    assert summary["failed"] == 0 and summary["warnings"] == [{"id": rec["id"], "warning": rec["warning"]}]


def test_a_segment_past_the_end_of_its_audio_is_reported_not_read(tmp_path):
    audio = _tone_file(tmp_path / "a.wav", 4.0)
    m = tmp_path / "in.jsonl"
    m.write_text(json.dumps({"audio_filepath": str(audio), "duration": 2.0, "offset": 9.0, "id": "late"}) + "\n"
                 + json.dumps({"audio_filepath": str(audio), "duration": 3.0, "offset": 2.0, "id": "cut"}) + "\n")
    summary = transcribe(LoudIsA(), CharTokenizer(LoudIsA.vocab), m, tmp_path / "out.jsonl", num_workers=0)
    recs = {r["id"]: r for r in map(json.loads, (tmp_path / "out.jsonl").read_text().splitlines())}
    assert recs["late"]["text"] is None and "after the end" in recs["late"]["error"]
    assert recs["cut"]["text"] is not None and recs["cut"]["duration"] == pytest.approx(2.0, abs=0.01)
    assert "warning" in recs["cut"] and summary["failed"] == 1


@pytest.mark.parametrize("rate", [2, 999, 16_777_216])
def test_a_header_sample_rate_no_recording_has_is_refused_before_any_resampling(tmp_path, rate):
    from asr.data.audio import AudioError, audio_info, load_audio

    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(32000, dtype=np.float32), rate, subtype="PCM_16")  # at 2 Hz: 4.4 hours "of audio"
    for read in (audio_info, lambda p: load_audio(p, SR)):
        with pytest.raises(AudioError, match=f"sample rate {rate} Hz in the header is outside 1000-768000 Hz"):
            read(path)


class PaddedLoudIsA(LoudIsA):
    """:class:`LoudIsA` hearing 0.3 s of silence before each utterance, as a model with ``edge_pad_s=0.3`` does."""

    time_offset_s = -0.3

    def forward(self, wave, wave_lens):
        return super().forward(torch.nn.functional.pad(wave, (4800, 0)), wave_lens + 4800)


def test_word_times_of_a_model_that_pads_its_input_are_the_audios_own(tmp_path):
    audio = _tone_file(tmp_path / "a.wav", 4.0)
    manifest = _manifest(tmp_path, audio, 4.0)
    tok = CharTokenizer(LoudIsA.vocab)
    transcribe(LoudIsA(), tok, manifest, tmp_path / "plain.jsonl", num_workers=0)
    transcribe(PaddedLoudIsA(), tok, manifest, tmp_path / "padded.jsonl", num_workers=0)
    plain, padded = ([t for w in json.loads(p.read_text())["words"] for t in (w["start"], w["end"])]
                     for p in (tmp_path / "plain.jsonl", tmp_path / "padded.jsonl"))
    assert len(plain) == 4 and padded == pytest.approx(plain, abs=1e-6)
    assert all(0.0 <= t <= 4.0 for t in padded)
