"""Shared fixtures: a tiny, learnable "tone language" corpus generated in tmp_path.

Each character is a tone of its own frequency, so a recognizer can learn the mapping in
a few dozen steps; tests use it to check numbers (WER 0 after overfitting) in seconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asr.config.schema import AugmentConfig, DataConfig, ModelConfig, OptimConfig, Settings, TrainerConfig

SR = 16000
TONE_HZ = {"a": 400.0, "b": 900.0, "c": 1600.0, " ": None}  # a space is a short silence


def tone_audio(text: str, rng: np.random.Generator, sr: int = SR, char_s: float = 0.12) -> np.ndarray:
    parts = [np.zeros(int(0.05 * sr))]
    for ch in text:
        n = int(char_s * sr * rng.uniform(0.9, 1.1))
        t = np.arange(n) / sr
        hz = TONE_HZ[ch]
        seg = np.zeros(n) if hz is None else 0.5 * np.sin(2 * np.pi * hz * t) * np.hanning(n)
        parts.append(seg)
        parts.append(np.zeros(int(0.02 * sr)))  # gap, so repeated letters are separable
    parts.append(np.zeros(int(0.05 * sr)))
    audio = np.concatenate(parts)
    return (audio + 0.003 * rng.standard_normal(len(audio))).astype(np.float32)


def write_tone_corpus(root: Path, texts: list[str], name: str = "train", seed: int = 0) -> Path:
    """FLAC files + ``<name>.jsonl`` manifest under ``root``; returns the manifest path."""
    rng = np.random.default_rng(seed)
    (root / "audio").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, text in enumerate(texts):
        audio = tone_audio(text, rng)
        rel = f"audio/{name}_{i:03d}.flac"
        sf.write(root / rel, audio, SR, subtype="PCM_16")
        lines.append(json.dumps({"audio_filepath": rel, "duration": round(len(audio) / SR, 4), "text": text}))
    manifest = root / f"{name}.jsonl"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


TONE_TEXTS = ["abc", "cab", "a b", "bca", "cc a", "ab ba", "c", "b a c"]


@pytest.fixture
def tone_corpus(tmp_path: Path) -> Path:
    """A train manifest of 8 tone utterances (dev = the same manifest)."""
    return write_tone_corpus(tmp_path / "corpus", TONE_TEXTS)


def tiny_settings(manifest, **trainer) -> Settings:
    """A 2 x 48 BiLSTM that overfits the tone corpus (dev = train) in a few seconds."""
    return Settings(
        data=DataConfig(train_manifest=str(manifest), dev_manifest=str(manifest), max_batch_duration_s=2.5,
                        max_duration_s=2.5, sort_jitter=0.0),
        model=ModelConfig(hidden_size=48, num_layers=2, dropout=0.0),
        optim=OptimConfig(lr=5e-3, warmup_steps=10, final_lr_ratio=0.5),
        augment=AugmentConfig(spec_augment=False),
        trainer=TrainerConfig(**{"max_epochs": 40, "threads": 1, "progress": False, "tensorboard": False,
                                 "device": "cpu", "seed": 7, **trainer}),
    )


def train_tone_model(root: Path) -> tuple[Path, Path]:
    """Train :func:`tiny_settings` on a fresh tone corpus under ``root``; return ``(model file, manifest)``."""
    from asr.training.train import train

    manifest = write_tone_corpus(root / "corpus", TONE_TEXTS)
    assert train(tiny_settings(manifest), root / "run")["best_dev_wer"] == 0.0
    return root / "run" / "model.pt", manifest


TRACEBACK = "Traceback (most recent call last)"


@pytest.fixture(autouse=True)
def watch_commands(request, monkeypatch, record_property):
    """In tests/reliability: count the commands a test runs and those that printed a Python traceback.

    ``benchmarks/reliability.py`` adds these up (``commands_run``, ``tracebacks``), so a command that fails
    with a traceback is counted even where a test only checks its exit status.
    """
    if "reliability" not in request.node.path.parts:
        yield
        return
    import subprocess

    real = subprocess.run
    seen = {"commands_run": 0, "tracebacks": 0}

    def run(*args, **kwargs):
        done = real(*args, **kwargs)
        seen["commands_run"] += 1
        out = "".join(x if isinstance(x, str) else x.decode(errors="replace")
                      for x in (done.stdout, done.stderr) if x is not None)
        seen["tracebacks"] += TRACEBACK in out
        return done

    monkeypatch.setattr(subprocess, "run", run)
    yield
    for name, value in seen.items():
        record_property(name, value)


def train_killed_mid_epoch(settings, run_dir, monkeypatch, *, epoch: int = 1, batches: int = 2) -> None:
    """Train until the checkpoint ``batches`` into ``epoch`` is saved, then die as a kill would (KeyboardInterrupt)."""
    from asr.training import checkpoints
    from asr.training.train import train

    real_save = checkpoints.save_checkpoint

    def save_then_die(ckpt_dir, model, optimizer, scheduler, sampler, state, keep):
        real_save(ckpt_dir, model, optimizer, scheduler, sampler, state, keep)
        if state.epoch == epoch and state.batches_done == batches:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(checkpoints, "save_checkpoint", save_then_die)
    with pytest.raises(KeyboardInterrupt):
        train(settings, run_dir)
    monkeypatch.undo()
