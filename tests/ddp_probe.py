"""Run :func:`asr.training.train.train` on :func:`conftest.tiny_settings` and record what this rank saw.

Started by ``torchrun`` from tests/test_distributed.py::

    python ddp_probe.py OUT MANIFEST [group.key=value ...] [probe.oom_rank=R] [probe.nan_rank=R probe.nan_call=K]

``probe.oom_rank=R`` makes rank R run out of memory on any training forward pass over more
than one utterance; ``probe.nan_rank=R probe.nan_call=K`` gives rank R's K-th training
forward pass (0-based) a NaN loss. Each rank writes ``OUT/probe-<rank>.json`` (the utterance
ids of every batch it trained on, and the summary) and ``OUT/weights-<rank>.pt`` (its
replica's final weights).
"""

import dataclasses
import json
import sys
from pathlib import Path

import torch
from conftest import tiny_settings

import asr.models.acoustic
import asr.training.inputs
import asr.training.train
from asr.training.distributed import env_world, shutdown


def override(settings, assignment: str):
    key, value = assignment.split("=", 1)
    group, name = key.split(".")
    part = getattr(settings, group)
    value = json.loads(value) if value[:1] in "[{" or value in ("true", "false") or value[:1].isdigit() else value
    return dataclasses.replace(settings, **{group: dataclasses.replace(part, **{name: value})})


def inject_faults(faults: dict, rank: int) -> None:
    real = asr.models.acoustic.Recognizer.forward
    calls = []

    def forward(self, wave, wave_lens):
        if self.training and rank == faults.get("oom_rank") and wave.shape[0] > 1:
            raise RuntimeError("CUDA out of memory (injected by ddp_probe)")
        log_probs, lengths = real(self, wave, wave_lens)
        if self.training and rank == faults.get("nan_rank"):
            calls.append(len(calls))
            if calls[-1] == faults["nan_call"]:
                log_probs = log_probs * float("nan")
        return log_probs, lengths

    asr.models.acoustic.Recognizer.forward = forward


def main() -> None:
    out, manifest, *assignments = sys.argv[1:]
    faults = {a.split("=")[0][len("probe."):]: int(a.split("=")[1]) for a in assignments if a.startswith("probe.")}
    assignments = [a for a in assignments if not a.startswith("probe.")]
    inject_faults(faults, env_world().rank)
    seen, models = [], []
    real_collate, real_build = asr.training.inputs.collate, asr.training.train.build_recognizer

    def recording_collate(items):
        batch = real_collate(items)
        seen.append(batch.utt_ids)
        return batch

    def keeping_build(*args, **kwargs):
        models.append(real_build(*args, **kwargs))
        return models[-1]

    asr.training.inputs.collate, asr.training.train.build_recognizer = recording_collate, keeping_build
    settings = tiny_settings(manifest)
    for a in assignments:
        settings = override(settings, a)
    summary = asr.training.train.train(settings, out)
    rank = env_world().rank
    torch.save(models[0].state_dict(), Path(out) / f"weights-{rank}.pt")
    # leave the group as asr-train does, and record whether it is really gone: a group that outlives
    # destroy_process_group keeps gloo's threads running into interpreter exit, where a rank can abort
    freed = shutdown()
    (Path(out) / f"probe-{rank}.json").write_text(json.dumps({"seen": seen, "summary": summary,
                                                              "group_freed": freed}))


if __name__ == "__main__":
    main()
