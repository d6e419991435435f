"""How long the model is quiet inside words and between them: what to set ``endpoint_blank_s`` to.

The model-blank endpointer of a streaming model (``asr serve ... endpoint_blank_s=S``) ends a segment, with its
final result, once the greedy path has been blank (or a space) for ``S`` seconds after a word. Too short and it
cuts words in two; too long and a word's final result waits for the end of the phrase. This runs each model
over a manifest (the whole utterance at once, which for a streaming model is its streamed path: tested) and
reports the quiet runs (:func:`asr.decoding.alignment.blank_runs`) inside words and between words, in ms:

* ``inside_ms``: p50 / p99 / max of the runs within a word; ``shortest_safe_endpoint_s`` is one frame more
  than the longest, the shortest setting that cuts inside no word of this manifest;
* ``between_ms``: p5 / p25 / p50 / p75 of the runs between words, and ``gaps_cut_at_safe_endpoint``: the share
  of them that setting would end a segment at (each one a word whose final result comes at once).

Prints one JSON object.

    python benchmarks/blank_runs.py --manifest exp/an4-lc-0.3-0.15/data/test.jsonl \\
        lc=exp/an4-lc-0.3-0.15/train/model.pt
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from hostinfo import host  # benchmarks/ is on sys.path when run as a script
from robustness import labelled

from asr.data.manifest import read_manifest
from asr.decoding.alignment import blank_runs
from asr.decoding.ctc import GreedyDecoder
from asr.inference.evaluate import recognize
from asr.models.checkpoint import load_model


class PathRecorder(GreedyDecoder):
    """Greedy decoding that also keeps each utterance's frame path."""

    def __init__(self, vocab):
        super().__init__(vocab)
        self.paths: list[list[int]] = []

    def __call__(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        ids = log_probs.argmax(-1)
        self.paths += [ids[b, :int(n)].tolist() for b, n in enumerate(lengths)]
        return super().__call__(log_probs, lengths)


def quantiles_ms(runs: list[int], shift_s: float, qs: tuple[float, ...]) -> dict | None:
    if not runs:
        return None
    values = np.percentile(np.asarray(runs) * shift_s * 1000, [q * 100 for q in qs])
    return {f"p{round(q * 100)}": round(float(v), 1) for q, v in zip(qs, values)} | {"n": len(runs)}


def measure(model_path: str, manifest: str) -> dict:
    model, tokenizer, _ = load_model(model_path)
    shift_s = model.features.config.output_frame_shift_s
    recorder = PathRecorder(tokenizer.vocab)
    recognize(model, tokenizer, read_manifest(manifest), decoder=recorder)
    inside, between = [], []
    for path in recorder.paths:
        a, b = blank_runs(path, tokenizer.vocab)
        inside += a
        between += b
    safe_frames = max(inside, default=0) + 1
    return {"model": model_path, "utterances": len(recorder.paths), "frame_shift_s": shift_s,
            "inside_ms": quantiles_ms(inside, shift_s, (0.5, 0.99)) | {"max": round(max(inside, default=0)
                                                                           * shift_s * 1000, 1)},
            "between_ms": quantiles_ms(between, shift_s, (0.05, 0.25, 0.5, 0.75)),
            "shortest_safe_endpoint_s": round(safe_frames * shift_s, 3),
            "gaps_cut_at_safe_endpoint": round(sum(r >= safe_frames for r in between) / max(len(between), 1), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("models", nargs="+", help="LABEL=model.pt")
    p.add_argument("--manifest", required=True)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    models = labelled(args.models, "model")
    out = {"host": host(), "manifest": args.manifest,
           "models": {label: measure(path, args.manifest) for label, path in models.items()}}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
