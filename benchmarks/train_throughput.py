"""The real training step on real audio, against the pure-tensor ceiling on the same shapes.

Real path: AN4 FLACs preloaded by `SpeechDataset`, duration-bucketed batches from
`DurationBatchSampler` through a `DataLoader` (batch assembly is timed), the model's own
MFCC front end, SpecAugment, our exact-padding BiLSTM, CTC loss, AdamW, clipping — i.e.
what `asr-train` runs per step. Ceiling: the same batch shapes as random tensors into
`torch.nn.LSTM` (bidirectional, padded, no front end) + CTC + AdamW, as in `ceiling.py`.
Both are timed in this one process, alternating, so machine noise hits both alike.

    python benchmarks/train_throughput.py --manifest ../shared/data/an4/train.jsonl --steps 12

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from ceiling import reference_lstm  # benchmarks/ is on sys.path when run as a script

from asr.data import DurationBatchSampler, SpeechDataset, collate
from asr.features import FeatureConfig, SpecAugment
from asr.manifest import read_manifest
from asr.model import build_recognizer
from asr.stats import build_vocab


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="../shared/data/an4/train.jsonl")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-batch-duration", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=12)
    p.add_argument("--hidden", type=int, default=320)
    p.add_argument("--layers", type=int, default=4)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    utts = read_manifest(a.manifest)
    tok = build_vocab(utts)
    ds = SpeechDataset(utts, tok, 16000)
    ds.preload()
    sampler = DurationBatchSampler([u.duration_s for u in utts], a.max_batch_duration, seed=0, sort_jitter=0.1)
    # the real path pulls its batches through the DataLoader as asr-train does (timed); the ceiling gets the shapes
    loader = iter(torch.utils.data.DataLoader(ds, batch_sampler=sampler, collate_fn=collate, num_workers=0))

    cfg = FeatureConfig()
    real = build_recognizer(cfg, len(tok), spec_augment=SpecAugment(), hidden_size=a.hidden, num_layers=a.layers)
    ceil = reference_lstm(a.hidden, a.layers, cfg.output_dim, len(tok))
    ctc = torch.nn.CTCLoss(reduction="sum")
    opt_r = torch.optim.AdamW(real.parameters(), lr=1e-4)
    opt_c = torch.optim.AdamW(ceil.parameters(), lr=1e-4)
    real.train()
    ceil.train()

    def real_step(b):
        lp, lens = real(b.waves, b.wave_lens)
        loss = ctc(lp.transpose(0, 1), b.targets, lens, b.target_lens) / b.target_lens.sum()
        opt_r.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(real.parameters(), 5.0)
        opt_r.step()

    def ceiling_step(b):
        frames = real.features.output_lengths(b.wave_lens)
        x = torch.randn(len(frames), int(frames.max()), cfg.output_dim)
        lp = ceil(x)
        loss = ctc(lp.transpose(0, 1), b.targets, frames, b.target_lens) / b.target_lens.sum()
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()

    first = next(loader)
    real_step(first)  # warm-up
    ceiling_step(first)
    t_real = t_ceil = audio = 0.0
    sizes = []
    for _ in range(a.steps):
        t0 = time.perf_counter()
        b = next(loader)
        real_step(b)
        t1 = time.perf_counter()
        ceiling_step(b)
        t2 = time.perf_counter()
        t_real += t1 - t0
        t_ceil += t2 - t1
        audio += b.audio_seconds
        sizes.append(len(b.utt_ids))
    print(json.dumps({
        "benchmark": "train_throughput", "threads": a.threads, "steps": a.steps,
        "model": f"{a.layers}x{a.hidden} BiLSTM", "max_batch_duration_s": a.max_batch_duration,
        "mean_batch_size": sum(sizes) / len(sizes),
        "real_audio_s_per_s": audio / t_real, "ceiling_audio_s_per_s": audio / t_ceil,
        "real_over_ceiling": t_ceil / t_real,
    }))


if __name__ == "__main__":
    main()
