"""Long audio in bounded memory: peak RSS of ``asr-transcribe`` does not grow with the file's length.

Each run is a fresh subprocess started by a small wrapper that reports its children's peak
RSS (the transcriber and its decoding worker), so other tests in this process do not count.
Memory does not depend on the weights, so an untrained model is used.
"""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, TONE_TEXTS, tone_audio

from asr.config.schema import ModelConfig
from asr.data.audio import load_audio
from asr.data.manifest import Utterance
from asr.data.tokenizer import CharTokenizer
from asr.frontend.features import FeatureConfig
from asr.inference import transcribe as transcribe_module
from asr.inference.segment import WindowConfig
from asr.inference.transcribe import transcribe_utterances
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import load_model, model_bundle, save_model

CLI = "import sys; from asr.cli.apps import transcribe_main; sys.argv[0] = 'asr-transcribe'; transcribe_main()"
PEAK_RSS = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
            "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); sys.exit(r.returncode)")


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("model") / "model.pt"
    tok = CharTokenizer.build(TONE_TEXTS)
    cfg = ModelConfig(hidden_size=64, num_layers=2, dropout=0.0)
    torch.manual_seed(0)
    model = build_recognizer(FeatureConfig(), len(tok), **vars(cfg))
    with torch.no_grad():  # sharpen the random output layer, so the path changes with the audio and has words
        model.acoustic.output.weight.mul_(30)
    save_model(path, model_bundle(model, tok.vocab, cfg))
    return path


def write_long_file(path, minutes: float) -> float:
    """Tone speech repeated to ``minutes``, streamed to disk a minute at a time; returns seconds written."""
    rng = np.random.default_rng(0)
    minute = np.concatenate([tone_audio(TONE_TEXTS[i % len(TONE_TEXTS)], rng) for i in range(300)])[: 60 * SR]
    with sf.SoundFile(path, "w", samplerate=SR, channels=1, subtype="PCM_16", format="FLAC") as f:
        for _ in range(int(minutes)):
            f.write(minute)
    return int(minutes) * len(minute) / SR


def transcribe_peak_rss_mb(model_file, audio, output, *overrides: str) -> float:
    """Run the CLI on one file; return the peak RSS (MB) of the process tree."""
    cmd = [sys.executable, "-c", CLI, f"model={model_file}", f"input={audio}", f"output={output}",
           f"hydra.run.dir={output.parent / 'hydra'}", "progress=false", "threads=1", "format=[srt]", *overrides]
    r = subprocess.run([sys.executable, "-c", PEAK_RSS, *cmd], capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return int(r.stdout.strip().splitlines()[-1]) / 1024


def test_a_long_file_is_read_one_window_at_a_time(model_file, tmp_path, monkeypatch):
    """The bound itself, measured without the noise of a process's peak RSS: no read of a 20-minute
    file asks for more than one window of samples, and the reads cover the whole file."""
    audio = tmp_path / "long_20.flac"
    seconds = write_long_file(audio, 20)
    reads = []

    def spy(path, sample_rate_hz, *, offset_s=0.0, duration_s=None):
        samples = load_audio(path, sample_rate_hz, offset_s=offset_s, duration_s=duration_s)
        reads.append((offset_s, len(samples)))
        return samples

    monkeypatch.setattr(transcribe_module, "load_audio", spy)
    model, tokenizer = load_model(model_file)[:2]
    windows = WindowConfig()
    utt = Utterance("long", str(audio), seconds, "")
    (rec,) = [r for done in transcribe_utterances(model.eval(), tokenizer, [utt], windows=windows,
                                                  max_batch_duration_s=60, num_workers=0) for r in done]
    assert rec["error"] is None and rec["words"][-1]["end"] > seconds - 60
    assert max(n for _, n in reads) <= round(windows.window_s * SR)
    end = max(offset * SR + n for offset, n in reads)
    assert end == pytest.approx(seconds * SR, abs=1) and len(reads) == math.ceil(
        (seconds - windows.overlap_s) / (windows.window_s - windows.overlap_s))


def test_peak_memory_does_not_grow_with_file_length(model_file, tmp_path):
    """End to end, in fresh processes: the peak RSS of a 40-minute file is that of a 5-minute one.

    A process's peak RSS varies by some 50 MB between identical runs here (torch alone is
    ~660 MB of it), so each length takes the lower of two runs, and the 40-minute file is
    long enough that reading it whole would add ~150 MB of float32 samples alone."""
    rss = {}
    for minutes in (5, 40):
        audio = tmp_path / f"long_{minutes}.flac"
        seconds = write_long_file(audio, minutes)
        runs = []
        for run in range(2):
            out = tmp_path / f"out_{minutes}_{run}" / "t.jsonl"
            runs.append(transcribe_peak_rss_mb(model_file, audio, out, "batch.max_duration_s=60"))
            (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
            assert rec["error"] is None and rec["duration"] == pytest.approx(seconds, abs=1e-3)
            assert rec["words"] and rec["words"][-1]["end"] > seconds - 60  # recognised to the end
        rss[minutes] = min(runs)
        audio.unlink()
    assert rss[40] - rss[5] < 75, rss


@pytest.mark.slow
def test_an_hour_of_audio_within_1_5_gb(model_file, tmp_path):
    audio = tmp_path / "hour.flac"
    write_long_file(audio, 60)
    rss = transcribe_peak_rss_mb(model_file, audio, tmp_path / "out" / "t.jsonl")
    assert rss <= 1500, rss
