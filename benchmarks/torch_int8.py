"""Where torch's dynamic int8 wins or loses against fp32: per cell type, batch size and quantized engine.

The acoustic model alone (features computed once), fp32 against ``torch.ao.quantization.quantize_dynamic``
with each quantized engine this torch supports, best of ``--repeats``, and a profiler count of the
operator calls of one forward pass: a fused fp32 kernel runs a whole layer direction in one call
(``mkldnn_rnn_layer``), a per-step path makes calls per frame.

    python benchmarks/torch_int8.py --threads 1 --batches 1,8,30

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import torch
from hostinfo import cpu_flags  # benchmarks/ is on sys.path when run as a script
from torch.profiler import ProfilerActivity, profile

from asr.frontend.features import FeatureConfig
from asr.models.acoustic import build_recognizer


def best_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return round(1000 * min(times), 2)


def op_calls(fn, top: int = 4) -> dict[str, int]:
    """Calls of the operators with the most self CPU time in one run of ``fn``."""
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    rows = sorted(prof.key_averages(), key=lambda e: -e.self_cpu_time_total)[:top]
    return {e.key: e.count for e in rows}


def measure(rnn_type: str, batch: int, args, engines: list[str]) -> dict:
    torch.manual_seed(0)
    model = build_recognizer(FeatureConfig(), 28, hidden_size=args.hidden, num_layers=args.layers, rnn_type=rnn_type,
                             dropout=0.0).eval()
    samples = int(args.seconds * 16000)
    with torch.inference_mode():
        feats, lens = model.features(0.1 * torch.randn(batch, samples), torch.full((batch,), samples))
        fp32 = best_ms(lambda: model.acoustic(feats, lens), args.repeats)
        row = {"fp32_ms": fp32, "fp32_top_ops": op_calls(lambda: model.acoustic(feats, lens))}
        for engine in engines:
            torch.backends.quantized.engine = engine
            q = torch.ao.quantization.quantize_dynamic(model, {torch.nn.GRU, torch.nn.LSTM, torch.nn.Linear},
                                                       dtype=torch.qint8)
            ms = best_ms(lambda: q.acoustic(feats, lens), args.repeats)  # noqa: B023 - called right here
            row[engine] = {"int8_ms": ms, "int8_over_fp32": round(ms / fp32, 2)}
        row["int8_top_ops"] = op_calls(lambda: q.acoustic(feats, lens))
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batches", default="1,8,30")
    p.add_argument("--seconds", type=float, default=4.0, help="utterance length")
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    warnings.filterwarnings("ignore", message=".*quantize.*deprecated")
    torch.set_num_threads(args.threads)
    engines = [e for e in torch.backends.quantized.supported_engines if e != "none"]
    flags = cpu_flags()
    result = {"benchmark": "torch_int8", "torch": torch.__version__, "threads": args.threads, "cpu_flags": flags,
              "model": f"{args.layers}x{args.hidden} bidirectional, 40 MFCC x3", "utterance_s": args.seconds,
              "default_engine": torch.backends.quantized.engine, "cells": {}}
    for rnn_type in ("gru", "lstm"):
        result["cells"][rnn_type] = {f"batch_{b}": measure(rnn_type, int(b), args, engines)
                                     for b in args.batches.split(",")}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
