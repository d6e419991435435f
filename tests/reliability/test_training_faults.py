"""Training faults: non-finite steps skipped and counted, divergence stops the run, out-of-memory splits the batch."""

import dataclasses
import logging

import pytest
import torch
from conftest import tiny_settings

import asr.models.acoustic
from asr.config.schema import ConfigError
from asr.data.dataset import SpeechDataset, collate
from asr.data.manifest import read_manifest
from asr.frontend.stats import build_vocab
from asr.models.acoustic import build_recognizer
from asr.models.checkpoint import safe_load
from asr.training.state import TrainState
from asr.training.steps import forward_backward
from asr.training.train import TrainingDiverged, train


class _NanGrad(torch.autograd.Function):
    """Identity forward, NaN backward: a finite loss with non-finite gradients."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def _poison_training_steps(monkeypatch, faults: dict[int, str]) -> list[int]:
    """Make training forward pass number ``i`` give a NaN loss ("loss") or NaN gradients ("grad")."""
    real = asr.models.acoustic.Recognizer.forward
    calls = []

    def forward(self, wave, wave_lens):
        log_probs, lengths = real(self, wave, wave_lens)
        if not self.training:
            return log_probs, lengths
        fault = faults.get(len(calls))
        calls.append(len(calls))
        if fault == "loss":
            log_probs = log_probs * float("nan")
        elif fault == "grad":
            log_probs = _NanGrad.apply(log_probs)
        return log_probs, lengths

    monkeypatch.setattr(asr.models.acoustic.Recognizer, "forward", forward)
    return calls


def test_non_finite_steps_are_skipped_counted_and_named(tone_corpus, tmp_path, monkeypatch, caplog, record_property):
    faults = {0: "loss", 1: "grad", 3: "loss", 4: "loss"}  # never 3 in a row
    _poison_training_steps(monkeypatch, faults)
    with caplog.at_level(logging.WARNING, logger="asr.training"):
        summary = train(tiny_settings(tone_corpus, max_epochs=2, max_nonfinite_steps=3), tmp_path / "run")
    assert summary["skipped_batches"] == len(faults) and summary["epochs"] == 2
    skipped = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(skipped) == 4 and sum("non-finite gradient" in m for m in skipped) == 1
    utt_ids = {u.utt_id for u in read_manifest(tone_corpus)}
    assert all(any(u in m for u in utt_ids) for m in skipped)  # each names its utterances
    ckpt = safe_load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    record_property("nonfinite_steps_skipped", summary["skipped_batches"])


def test_a_diverging_run_stops_after_the_patience_with_a_clear_message(tone_corpus, tmp_path, monkeypatch):
    s = tiny_settings(tone_corpus, max_epochs=3, max_nonfinite_steps=4)
    train(dataclasses.replace(s, trainer=dataclasses.replace(s.trainer, max_epochs=1)), tmp_path / "run")
    good = safe_load(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    calls = _poison_training_steps(monkeypatch, {i: "loss" for i in range(100)})
    with pytest.raises(TrainingDiverged, match=r"4 consecutive steps .*trainer\.max_nonfinite_steps=4") as err:
        train(dataclasses.replace(s, trainer=dataclasses.replace(s.trainer, resume=True)), tmp_path / "run")
    assert len(calls) == 4 and "optim.lr" in str(err.value) and "last.pt" in str(err.value)
    # skipped steps never touch the weights, so the checkpoint left behind holds the last good ones
    left = safe_load(tmp_path / "run" / "checkpoints" / "last.pt")["model"]
    assert all(torch.equal(left[k], good[k]) for k in good)


def test_a_run_diverging_before_its_first_checkpoint_says_there_is_none(tone_corpus, tmp_path, monkeypatch):
    _poison_training_steps(monkeypatch, {i: "loss" for i in range(100)})
    with pytest.raises(TrainingDiverged, match="No checkpoint was written") as err:
        train(tiny_settings(tone_corpus, max_epochs=3, max_nonfinite_steps=2), tmp_path / "run")
    assert not (tmp_path / "run" / "checkpoints" / "last.pt").exists() and "is intact" not in str(err.value)


def _batch(manifest, n: int):
    utts = read_manifest(manifest)[:n]
    tok = build_vocab(utts)
    ds = SpeechDataset(utts, tok, 16000)
    return collate([ds[i] for i in range(n)]), tok


def _oom_above(monkeypatch, max_batch: int) -> list[int]:
    """Injected out-of-memory: any training forward pass over more than ``max_batch`` utterances fails."""
    real = asr.models.acoustic.Recognizer.forward
    sizes = []

    def forward(self, wave, wave_lens):
        sizes.append(wave.shape[0])
        if self.training and wave.shape[0] > max_batch:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB (injected by the test)")
        return real(self, wave, wave_lens)

    monkeypatch.setattr(asr.models.acoustic.Recognizer, "forward", forward)
    return sizes


def test_out_of_memory_batch_is_split_and_gives_the_same_gradients(tone_corpus, monkeypatch):
    batch, tok = _batch(tone_corpus, 7)
    torch.manual_seed(0)
    model = build_recognizer(tiny_settings(tone_corpus).features, len(tok), hidden_size=16, num_layers=2, dropout=0.0)
    ctc = torch.nn.CTCLoss(blank=0, reduction="sum")
    tokens = int(batch.target_lens.sum())
    state = TrainState()
    whole = forward_backward(model, ctc, batch, tokens, state)
    grads = [p.grad.clone() for p in model.parameters()]
    sizes = _oom_above(monkeypatch, 2)
    split = forward_backward(model, ctc, batch, tokens, state)
    assert state.oom_splits == 2 and sizes == [7, 4, 2, 2, 1, 2]  # 7 fails, 4+3 fails at 4, then 2+2+1+2
    assert torch.allclose(split, whole, rtol=1e-6)
    for p, g in zip(model.parameters(), grads):
        assert torch.allclose(p.grad, g, rtol=1e-4, atol=1e-6)
    single, _ = _batch(tone_corpus, 1)
    _oom_above(monkeypatch, 0)
    with pytest.raises(RuntimeError, match=r"out of memory on utterance audio/train_000\.flac .*data\.max_duration_s"):
        forward_backward(model, ctc, single, int(single.target_lens.sum()), state)


def test_training_survives_out_of_memory_and_reports_it(tone_corpus, tmp_path, monkeypatch, record_property):
    _oom_above(monkeypatch, 1)
    summary = train(tiny_settings(tone_corpus, max_epochs=2), tmp_path / "run")
    assert summary["epochs"] == 2 and summary["oom_splits"] > 0 and summary["skipped_batches"] == 0
    record_property("oom_batches_split", summary["oom_splits"])


def test_resume_with_other_settings_names_the_key_and_the_allowed_value(tone_corpus, tmp_path):
    s = tiny_settings(tone_corpus, max_epochs=1)
    train(s, tmp_path / "run")
    other = dataclasses.replace(s, features=dataclasses.replace(s.features, sample_rate_hz=8000, f_min_hz=20.0),
                                trainer=dataclasses.replace(s.trainer, resume=True, max_epochs=2))
    with pytest.raises(ConfigError, match=r"features\.sample_rate_hz must be 16000 to continue it \(got 8000\)"):
        train(other, tmp_path / "run")
