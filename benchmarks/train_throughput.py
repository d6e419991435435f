"""The real training step on real audio, against the pure-tensor ceiling on the same shapes.

Real path: AN4 FLACs preloaded by `SpeechDataset`, duration-bucketed batches from
`DurationBatchSampler`, the model's own MFCC front end, SpecAugment, our exact-padding
BiLSTM, CTC loss, AdamW, clipping — i.e. what `asr-train` runs per step. Ceiling: the
same batch shapes as random tensors into `torch.nn.LSTM` (bidirectional, padded, no
front end) + CTC + AdamW, as in `ceiling.py`. Both are timed in this one process,
alternating, so machine noise hits both alike.

    python benchmarks/train_throughput.py --manifest ../shared/data/an4/train.jsonl --steps 12

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time

import torch
from ceiling import reference_lstm  # benchmarks/ is on sys.path when run as a script
from training_step import real_batches, real_training_step

from asr.frontend.features import FeatureConfig


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
    _, tok, _, batches = real_batches(a.manifest, a.max_batch_duration, a.steps + 1)

    cfg = FeatureConfig()
    real, real_step = real_training_step(len(tok), a.hidden, a.layers)
    ceil = reference_lstm(a.hidden, a.layers, cfg.output_dim, len(tok))
    ctc = torch.nn.CTCLoss(reduction="sum")
    opt_c = torch.optim.AdamW(ceil.parameters(), lr=1e-4)
    ceil.train()

    def ceiling_step(b):
        frames = real.features.output_lengths(b.wave_lens)
        x = torch.randn(len(frames), int(frames.max()), cfg.output_dim)
        lp = ceil(x)
        loss = ctc(lp.transpose(0, 1), b.targets, frames, b.target_lens) / b.target_lens.sum()
        opt_c.zero_grad(set_to_none=True)
        loss.backward()
        opt_c.step()

    real_step(batches[0])  # warm-up
    ceiling_step(batches[0])
    t_real = t_ceil = audio = 0.0
    for b in batches[1:]:
        t0 = time.perf_counter()
        real_step(b)
        t1 = time.perf_counter()
        ceiling_step(b)
        t2 = time.perf_counter()
        t_real += t1 - t0
        t_ceil += t2 - t1
        audio += b.audio_seconds
    print(json.dumps({
        "benchmark": "train_throughput", "threads": a.threads, "steps": a.steps,
        "model": f"{a.layers}x{a.hidden} BiLSTM", "max_batch_duration_s": a.max_batch_duration,
        "mean_batch_size": sum(len(b.utt_ids) for b in batches[1:]) / a.steps,
        "real_audio_s_per_s": audio / t_real, "ceiling_audio_s_per_s": audio / t_ceil,
        "real_over_ceiling": t_ceil / t_real,
    }))


if __name__ == "__main__":
    main()
