"""Does batching streams pay? One chunk block of B streams in one forward pass, against B passes of one.

``asr serve``'s model thread runs the waiting chunks of all streams as one batch (:func:`asr.inference.
streaming.run_blocks`). This times :meth:`asr.models.acoustic.AcousticModel.step` on random weights of the
recipe's size (3 x 256, LSTM and GRU, latency-controlled 0.4 s + 0.2 s) for B = 1, 2, 4, 8, 16 streams: the
milliseconds per pass, per stream, and the speed-up over one pass per stream. Prints one JSON object.

    python benchmarks/stream_batching.py --threads 1
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from asr.frontend.features import FeatureConfig
from asr.models.acoustic import build_recognizer


def time_step(acoustic, block: torch.Tensor, repeats: int) -> float:
    """Median seconds of one ``step`` over ``block: (B, L, F)`` from zero states."""
    states = [None] * len(acoustic.layers)
    lengths = torch.full((block.shape[0],), block.shape[1])
    times = []
    with torch.inference_mode():
        acoustic.step(block, lengths, states)  # warm-up
        for _ in range(repeats):
            t0 = time.perf_counter()
            acoustic.step(block, lengths, states)
            times.append(time.perf_counter() - t0)
    return sorted(times)[len(times) // 2]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--hidden", type=int, default=256)
    p.add_argument("--layers", type=int, default=3)
    p.add_argument("--chunk-s", type=float, default=0.4)
    p.add_argument("--right-context-s", type=float, default=0.2)
    p.add_argument("--repeats", type=int, default=20)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = {"threads": args.threads, "hidden": args.hidden, "layers": args.layers, "chunk_s": args.chunk_s,
           "right_context_s": args.right_context_s, "models": {}}
    for rnn in ("lstm", "gru"):
        model = build_recognizer(FeatureConfig(), 29, hidden_size=args.hidden, num_layers=args.layers, rnn_type=rnn,
                                 dropout=0.0, chunk_s=args.chunk_s, right_context_s=args.right_context_s).eval()
        a = model.acoustic
        frames = a.chunk_frames + a.right_context_frames
        one = time_step(a, torch.randn(1, frames, 120), args.repeats)
        rows = []
        for b in (1, 2, 4, 8, 16):
            batched = time_step(a, torch.randn(b, frames, 120), args.repeats)
            rows.append({"streams": b, "ms_per_pass": round(batched * 1000, 2),
                         "ms_per_stream": round(batched * 1000 / b, 2),
                         "speedup_vs_one_by_one": round(b * one / batched, 2)})
        out["models"][rnn] = {"chunk_audio_ms": round(a.chunk_frames * model.features.config.output_frame_shift_s
                                                      * 1000), "rows": rows}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
