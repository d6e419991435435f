"""Long audio in bounded memory: peak RSS of ``asr-transcribe`` does not grow with the file's length.

Each run is a fresh subprocess started by a small wrapper that reports its children's peak
RSS (the transcriber and its decoding worker), so other tests in this process do not count.
Memory does not depend on the weights, so an untrained model is used.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, TONE_TEXTS, tone_audio

from asr.config.schema import ModelConfig
from asr.data.tokenizer import CharTokenizer
from asr.frontend.features import FeatureConfig
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import model_bundle, save_model

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


def test_peak_memory_does_not_grow_with_file_length(model_file, tmp_path):
    rss = {}
    for minutes in (5, 20):
        audio = tmp_path / f"long_{minutes}.flac"
        seconds = write_long_file(audio, minutes)
        out = tmp_path / f"out_{minutes}" / "t.jsonl"
        # 60 s batches: the allocator reaches its steady state within the first few batches of either file
        rss[minutes] = transcribe_peak_rss_mb(model_file, audio, out, "batch.max_duration_s=60")
        (rec,) = [json.loads(line) for line in out.read_text().splitlines()]
        assert rec["error"] is None and rec["duration"] == pytest.approx(seconds, abs=1e-3)
        assert rec["words"] and rec["words"][-1]["end"] > seconds - 60  # recognised to the end
        audio.unlink()
    # reading the 20-minute file whole would add ~77 MB of float32 samples alone (more while decoding)
    assert rss[20] - rss[5] < 40, rss


@pytest.mark.slow
def test_an_hour_of_audio_within_1_5_gb(model_file, tmp_path):
    audio = tmp_path / "hour.flac"
    write_long_file(audio, 60)
    rss = transcribe_peak_rss_mb(model_file, audio, tmp_path / "out" / "t.jsonl")
    assert rss <= 1500, rss
