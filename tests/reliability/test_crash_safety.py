"""Crash safety: kill -9 at any moment leaves a loadable checkpoint, and resuming reproduces the uninterrupted run.

Training and transcription both run as a user runs them (a subprocess), are killed with
SIGKILL part way, and are run again; the results must equal an uninterrupted run's exactly.
"""

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from conftest import SR, TONE_TEXTS, tone_audio, train_tone_model, write_tone_corpus

from asr.models.checkpoint import ModelFileError, safe_load

BIN = Path(sys.executable).parent
CLI = "import sys; from asr.cli.apps import transcribe_main; sys.argv[0] = 'asr-transcribe'; transcribe_main()"


def _train_cmd(manifest: Path, run_dir: Path, *extra: str) -> list[str]:
    exe = shutil.which("asr-train", path=str(BIN))
    assert exe, "asr-train is not installed (pip install -e .)"
    # the tone-corpus model of tiny_settings, in one-or-two-utterance batches so an epoch has several steps
    return [exe, f"data.train_manifest={manifest}", f"data.dev_manifest={manifest}", "data.max_batch_duration_s=1.0",
            "data.max_duration_s=1.0", "data.sort_jitter=0", "model.hidden_size=48", "model.num_layers=2",
            "model.dropout=0", "augment=none", "optim.lr=5e-3", "optim.warmup_steps=10", "optim.final_lr_ratio=0.5",
            "trainer.max_epochs=5", "trainer.seed=7", "trainer.threads=1", "trainer.device=cpu",
            "trainer.progress=false", "trainer.tensorboard=false", "trainer.checkpoint_every_steps=1",
            f"hydra.run.dir={run_dir}", *extra]


def _epochs(run_dir: Path) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    # wall-clock and memory figures differ between any two runs
    timing = {"epoch_seconds", "train_audio_s_per_s", "rss_mb", "peak_rss_mb"}
    return [{k: v for k, v in r.items() if k not in timing} for r in rows]


@pytest.mark.slow
def test_training_killed_mid_epoch_resumes_to_the_same_weights(tmp_path, record_property):
    manifest = write_tone_corpus(tmp_path / "corpus", TONE_TEXTS)
    ref = subprocess.run(_train_cmd(manifest, tmp_path / "ref"), capture_output=True, text=True, timeout=600)
    assert ref.returncode == 0, ref.stderr[-3000:]

    cut = tmp_path / "cut"
    last = cut / "checkpoints" / "last.pt"
    proc = subprocess.Popen(_train_cmd(manifest, cut), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    loads = 0
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            state = safe_load(last)["state"]  # read while it is being rewritten: must always load
            loads += 1
        except ModelFileError as err:
            assert "not found" in str(err), err  # only before the first checkpoint exists
            state = None
        if state and state["epoch"] >= 2 and state["batches_done"] >= 1:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.003)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    state = safe_load(last)["state"]  # what kill -9 left behind loads
    assert state["batches_done"] >= 1, "killed at an epoch boundary: the test wants mid-epoch"
    again = subprocess.run(_train_cmd(manifest, cut, "trainer.resume=true"), capture_output=True, text=True,
                           timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{state['batches_done']} batches into the epoch" in again.stdout
    assert not list(last.parent.glob(".*.tmp"))  # a temp file a kill left behind is cleared on resume

    a, b = safe_load(tmp_path / "ref" / "checkpoints" / "last.pt"), safe_load(last)
    assert a["state"]["step"] == b["state"]["step"]
    equal = all(torch.equal(a["model"][k], b["model"][k]) for k in a["model"])
    assert equal
    ma, mb = safe_load(tmp_path / "ref" / "model.pt"), safe_load(cut / "model.pt")
    assert all(torch.equal(ma["state_dict"][k], mb["state_dict"][k]) for k in ma["state_dict"])
    assert _epochs(tmp_path / "ref") == _epochs(cut)  # losses, WER, CER, lr: the same to the last digit
    record_property("kill9_train_resumed_equal", int(equal))
    record_property("kill9_train_checkpoint_loads", loads)


@pytest.fixture(scope="module")
def tone_model(tmp_path_factory):
    """``(model file, train manifest)``: a 2 x 48 BiLSTM overfit on the 8 tone utterances."""
    return train_tone_model(tmp_path_factory.mktemp("tone"))


def records(path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def _cli(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-c", CLI, *args, "hydra.run.dir=hydra", "progress=false", "threads=1"]


def kill_after_lines(proc: subprocess.Popen, out: Path, lines: int) -> None:
    """``kill -9`` the transcription ``proc`` once ``out`` holds ``lines`` records; it must not finish first."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if out.exists() and out.read_bytes().count(b"\n") >= lines:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.002)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"


@pytest.mark.slow
def test_transcription_killed_resumes_to_the_same_output(tone_model, tmp_path, record_property):
    model_file, _ = tone_model
    rng = np.random.default_rng(3)
    (tmp_path / "in").mkdir()
    for i in range(60):
        sf.write(tmp_path / "in" / f"u{i:02d}.flac", tone_audio(TONE_TEXTS[i % 8], rng), SR)
    # one file per batch and no workers: slow enough to be killed half way, identical arithmetic in every run
    common = [f"model={model_file}", f"input={tmp_path / 'in'}", "batch.max_duration_s=0.01", "batch.num_workers=0",
              "format=[txt]"]
    ref = subprocess.run(_cli(*common, f"output={tmp_path / 'ref.jsonl'}", cwd=tmp_path), cwd=tmp_path,
                         capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr[-3000:]

    out = tmp_path / "cut.jsonl"
    proc = subprocess.Popen(_cli(*common, f"output={out}", cwd=tmp_path), cwd=tmp_path, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    kill_after_lines(proc, out, 5)
    done_before = out.read_bytes().count(b"\n")
    assert 5 <= done_before < 60
    with open(out, "a") as f:
        f.write('{"id": "u59.flac", "path": ')  # as if killed in the middle of writing a line
    again = subprocess.run(_cli(*common, f"output={out}", cwd=tmp_path), cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"{done_before} already done" in again.stdout
    assert out.read_text() == (tmp_path / "ref.jsonl").read_text()  # same lines, same order, none twice
    assert (tmp_path / "cut.txt").read_text() == (tmp_path / "ref.txt").read_text()
    assert len(records(out)) == 60 and len({r["id"] for r in records(out)}) == 60
    summary = json.loads((tmp_path / "cut.jsonl.summary.json").read_text())
    assert summary["this_run"]["resumed_files"] == done_before and summary["transcribed"] == 60
    # a third run has nothing left to do and changes nothing
    third = subprocess.run(_cli(*common, f"output={out}", cwd=tmp_path), cwd=tmp_path, capture_output=True,
                           text=True, timeout=300)
    assert third.returncode == 0 and "60 already done" in third.stdout
    assert out.read_text() == (tmp_path / "ref.jsonl").read_text()
    record_property("kill9_transcribe_resumed_equal", 1)


@pytest.mark.slow
def test_killed_transcription_leaves_no_lock_behind_in_its_workers(tone_model, tmp_path):
    from asr.inference.outputs import TranscriptLog

    model_file, _ = tone_model
    rng = np.random.default_rng(4)
    (tmp_path / "in").mkdir()
    for i in range(200):
        sf.write(tmp_path / "in" / f"u{i:03d}.flac", tone_audio(TONE_TEXTS[i % 8], rng), SR)
    out = tmp_path / "out.jsonl"
    # two decoding workers: forked after the output is locked, they carry copies of its descriptor
    proc = subprocess.Popen(_cli(f"model={model_file}", f"input={tmp_path / 'in'}", f"output={out}",
                                 "batch.max_duration_s=0.01", "batch.num_workers=2", cwd=tmp_path),
                            cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    kill_after_lines(proc, out, 3)
    killed_at = time.monotonic()
    with TranscriptLog(out, resume=True) as log:  # at once: a worker holding the lock would refuse this
        assert len(log.done) >= 3
    assert time.monotonic() - killed_at < 1.0
