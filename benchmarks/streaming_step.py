"""What bounded future context costs in training: one real step of full-context, latency-controlled and
unidirectional models of the same size, on the same AN4 batches.

Every model runs ``asr-train``'s real step (MFCC front end, SpecAugment, exact-padding layers, CTC, AdamW,
clipping) on each batch in turn, the models alternating step by step so machine noise hits all alike; medians
are reported, and each model's time relative to the full-context one. ``--lc CHUNK/RIGHT,...`` are
latency-controlled settings in seconds. ``--chunk-loop`` adds each latency-controlled GRU setting once more
with its forward direction run chunk by chunk (the state carried by a loop, as an LSTM's must be) instead of
one pass over the chunks in order, so both ways are timed in the same run. Prints one JSON object.

    python benchmarks/streaming_step.py --cell gru --size 3x256 --lc 0.15/0.09,0.3/0.15,0.6/0.3 --steps 8 --threads 1
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from unittest import mock

import torch
from hostinfo import host  # benchmarks/ is on sys.path when run as a script
from training_step import real_batches, real_training_step

from asr.models import chunked
from asr.models.acoustic import num_parameters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="../shared/data/an4/train.jsonl")
    p.add_argument("--cell", choices=("gru", "lstm"), default="gru")
    p.add_argument("--size", default="3x256", help="LAYERSxHIDDEN")
    p.add_argument("--lc", default="0.15/0.09,0.3/0.15,0.6/0.3", help="latency-controlled CHUNK_S/RIGHT_S,...")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--max-batch-duration", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--chunk-loop", action="store_true", help="also time LC GRUs with the chunk-by-chunk forward")
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    layers, hidden = (int(x) for x in a.size.lower().split("x"))
    variants: dict[str, dict] = {"full": {}}
    for setting in filter(None, a.lc.split(",")):
        chunk_s, right_s = (float(x) for x in setting.split("/"))
        variants[f"lc {chunk_s}/{right_s}"] = {"chunk_s": chunk_s, "right_context_s": right_s}
        if a.chunk_loop and a.cell == "gru":
            variants[f"lc {chunk_s}/{right_s} chunk loop"] = {"chunk_s": chunk_s, "right_context_s": right_s}
    variants["unidirectional"] = {"bidirectional": False}
    _, tok, _, batches = real_batches(a.manifest, a.max_batch_duration, a.steps + 1)
    warm, timed = batches[0], batches[1:]
    runs = {}
    for name, kwargs in variants.items():
        torch.manual_seed(0)
        model, step = real_training_step(len(tok), hidden_size=hidden, num_layers=layers, rnn_type=a.cell,
                                         **kwargs)
        if name.endswith("chunk loop"):
            step = looped(step)
        step(warm)
        runs[name] = {"step": step, "seconds": [], "parameters": num_parameters(model)}
    for b in timed:
        for r in runs.values():  # alternate: every model sees the same moment's machine
            t0 = time.perf_counter()
            r["step"](b)
            r["seconds"].append(time.perf_counter() - t0)
    full = statistics.median(runs["full"]["seconds"])
    out = {"host": host(), "cell": a.cell, "size": a.size, "threads": a.threads, "steps": a.steps,
           "batch_audio_s": round(statistics.median(b.audio_seconds for b in timed), 1),
           "batch_utterances": round(statistics.median(len(b.wave_lens) for b in timed), 1), "models": {}}
    for name, r in runs.items():
        med = statistics.median(r["seconds"])
        out["models"][name] = {"parameters": r["parameters"], "step_s": round(med, 3),
                               "relative_to_full": round(med / full, 2)}
    print(json.dumps(out, indent=2))


def looped(step):
    """``step`` with the forward direction of latency-controlled layers carried chunk by chunk."""
    def run(batch):
        with mock.patch.object(chunked, "state_is_output", lambda rnn: False):
            return step(batch)
    return run


if __name__ == "__main__":
    main()
