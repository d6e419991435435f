"""Run :func:`asr.training.train.train` on :func:`conftest.tiny_settings` and record what this rank saw.

Started by ``torchrun`` from tests/test_distributed.py::

    python ddp_probe.py OUT MANIFEST [group.key=value ...]

Each rank writes ``OUT/probe-<rank>.json`` (the utterance ids of every batch it trained on,
and the summary) and ``OUT/weights-<rank>.pt`` (its replica's final weights).
"""

import dataclasses
import json
import sys
from pathlib import Path

import torch
from conftest import tiny_settings

import asr.training.train
from asr.training.distributed import env_world, shutdown


def override(settings, assignment: str):
    key, value = assignment.split("=", 1)
    group, name = key.split(".")
    part = getattr(settings, group)
    value = json.loads(value) if value[:1] in "[{" or value in ("true", "false") or value[:1].isdigit() else value
    return dataclasses.replace(settings, **{group: dataclasses.replace(part, **{name: value})})


def main() -> None:
    out, manifest, *assignments = sys.argv[1:]
    seen, models = [], []
    real_collate, real_build = asr.training.train.collate, asr.training.train.build_recognizer

    def recording_collate(items):
        batch = real_collate(items)
        seen.append(batch.utt_ids)
        return batch

    def keeping_build(*args, **kwargs):
        models.append(real_build(*args, **kwargs))
        return models[-1]

    asr.training.train.collate, asr.training.train.build_recognizer = recording_collate, keeping_build
    settings = tiny_settings(manifest)
    for a in assignments:
        settings = override(settings, a)
    try:
        summary = asr.training.train.train(settings, out)
        rank = env_world().rank
        torch.save(models[0].state_dict(), Path(out) / f"weights-{rank}.pt")
        (Path(out) / f"probe-{rank}.json").write_text(json.dumps({"seen": seen, "summary": summary}))
    finally:
        # leave the group as asr-train does: exiting with gloo's threads alive can abort a rank
        # ("terminate called without an active exception"), which failed one CI-like run
        shutdown()


if __name__ == "__main__":
    main()
