"""GRU against LSTM: training and inference speed of the same-size models on real AN4 batches.

For each size (``--sizes LAYERSxHIDDEN,...``) both cells run ``asr-train``'s real step
(MFCC front end, SpecAugment, exact-padding bidirectional layers, CTC, AdamW, clipping) and
the forward pass under ``inference_mode`` on the same batches, the two cells alternating
step by step so machine noise hits both alike; medians are reported. Prints one JSON object.

    python benchmarks/cell_speed.py --sizes 3x256,4x256 --steps 6 --threads 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch
from training_step import real_batches, real_training_step  # benchmarks/ is on sys.path when run as a script

from asr.models.acoustic import num_parameters


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--manifest", default="../shared/data/an4/train.jsonl")
    p.add_argument("--sizes", default="3x256,4x256")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--max-batch-duration", type=float, default=60.0)
    p.add_argument("--steps", type=int, default=6)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    _, tok, _, batches = real_batches(a.manifest, a.max_batch_duration, a.steps + 1)
    warm, timed = batches[0], batches[1:]
    audio_s = [b.audio_seconds for b in timed]
    out = {"threads": a.threads, "steps": a.steps, "batch_audio_s": round(statistics.median(audio_s), 1), "sizes": {}}
    for size in a.sizes.split(","):
        layers, hidden = (int(x) for x in size.lower().split("x"))
        runs = {}
        for cell in ("lstm", "gru"):
            torch.manual_seed(0)
            model, step = real_training_step(len(tok), hidden_size=hidden, num_layers=layers, rnn_type=cell)
            step(warm)
            runs[cell] = {"model": model, "step": step, "train": [], "infer": [], "params": num_parameters(model)}
        for b, sec in zip(timed, audio_s):
            for r in runs.values():  # alternate: both cells see the same moment's machine
                t0 = time.perf_counter()
                r["step"](b)
                r["train"].append(sec / (time.perf_counter() - t0))
                r["model"].eval()
                with torch.inference_mode():
                    t0 = time.perf_counter()
                    r["model"](b.waves, b.wave_lens)
                    r["infer"].append(sec / (time.perf_counter() - t0))
                r["model"].train()
        res = {cell: {"parameters": r["params"], "train_audio_s_per_s": round(statistics.median(r["train"]), 1),
                      "infer_audio_s_per_s": round(statistics.median(r["infer"]), 1)} for cell, r in runs.items()}
        res["gru_over_lstm"] = {k: round(res["gru"][k] / res["lstm"][k], 2)
                                for k in ("parameters", "train_audio_s_per_s", "infer_audio_s_per_s")}
        out["sizes"][size] = res
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
