"""Training from WebDataset shards equals training from the files: same losses, same weights, exact resume."""

import dataclasses
import json

import torch
from conftest import tiny_settings, train_killed_mid_epoch

from asr.data.shards import write_shards
from asr.models.checkpoint import safe_load
from asr.training.train import train


def _on(s, manifest, **data):
    return dataclasses.replace(s, data=dataclasses.replace(s.data, train_manifest=str(manifest),
                                                           dev_manifest=str(manifest), **data))


def _losses(run) -> list[float]:
    return [json.loads(line)["train_loss"] for line in (run / "train_log.jsonl").read_text().splitlines()]


def _weights(run) -> dict:
    return safe_load(run / "checkpoints" / "last.pt")["model"]


def test_training_from_shards_streamed_by_two_workers_equals_training_from_the_files(tone_corpus, tmp_path):
    sharded = write_shards(tone_corpus, tmp_path / "sh", shard_size_mb=0.02)["manifest"]  # several shards
    s = tiny_settings(tone_corpus, max_epochs=3)
    train(s, tmp_path / "files")
    train(_on(s, sharded, preload=False, num_workers=2), tmp_path / "shards")
    assert _losses(tmp_path / "files") == _losses(tmp_path / "shards")
    a, b = _weights(tmp_path / "files"), _weights(tmp_path / "shards")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_resume_mid_epoch_from_shards_continues_exactly(tone_corpus, tmp_path, monkeypatch):

    sharded = write_shards(tone_corpus, tmp_path / "sh", shard_size_mb=0.02)["manifest"]
    s = _on(tiny_settings(tone_corpus, max_epochs=2, checkpoint_every_steps=1), sharded, preload=False,
            num_workers=2)
    train(s, tmp_path / "straight")
    train_killed_mid_epoch(s, tmp_path / "cut", monkeypatch)  # two batches into the second epoch
    assert safe_load(tmp_path / "cut" / "checkpoints" / "last.pt")["state"]["batches_done"] == 2
    train(dataclasses.replace(s, trainer=dataclasses.replace(s.trainer, resume=True)), tmp_path / "cut")
    a, b = _weights(tmp_path / "straight"), _weights(tmp_path / "cut")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _losses(tmp_path / "straight") == _losses(tmp_path / "cut")
