"""Decoder speed and accuracy on CPU: greedy vs beam search vs beam search + lexicon + KenLM n-gram.

The network runs once over the manifest (timed: audio reading, features and the BiLSTM);
each decoder then searches the same posteriors, ``--repeats`` times, and the median search
time is reported. RTF = seconds / audio seconds: ``search_rtf`` is the decoder alone,
``total_rtf`` the network plus the search, what ``asr-evaluate`` costs per audio second.

    python benchmarks/decode_rtf.py --model exp/an4/train/model.pt --manifest exp/an4/data/test.jsonl \\
        --lexicon exp/an4/lang/lexicon.txt --lm exp/an4/lang/lm_3gram.bin --lm-weight 1 --word-score 1

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from asr.data.dataset import SpeechDataset, collate, make_batches
from asr.data.manifest import read_manifest
from asr.decoding.ctc import build_decoder
from asr.inference.evaluate import Hypothesis, score
from asr.models.checkpoint import load_model
from asr.runtime import setup_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from transcribe_rtf import cpu_name  # noqa: E402


@torch.inference_mode()
def posteriors(model, utts, max_batch_duration_s: float, dataset: SpeechDataset | None = None):
    """``[(utt_ids, log_probs (B, T, V), lengths (B,))]`` for the manifest, and the seconds it took.

    ``dataset`` supplies the audio (default: read from the manifest's files).
    """
    t0 = time.perf_counter()
    dataset = dataset or SpeechDataset(utts, None, model.features.config.sample_rate_hz)
    batches = make_batches([u.duration_s for u in utts], max_batch_duration_s, shuffle=False)
    out = []
    for idx in batches:
        batch = collate([dataset[i] for i in idx])
        if batch.skipped:
            raise RuntimeError(f"unreadable audio: {batch.skipped}")
        log_probs, lengths = model(batch.waves, batch.wave_lens)
        out.append((batch.utt_ids, log_probs.contiguous(), lengths))
    return out, time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--lexicon", default=None, help="lexicon.txt (recipe stage 5); without it only greedy and beam")
    p.add_argument("--lm", default=None, help="KenLM model (lm_3gram.bin)")
    p.add_argument("--lm-weight", type=float, default=1.0)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--threads", type=int, default=1, help="torch threads for the network (the search is 1 thread)")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-batch-duration", type=float, default=120.0)
    args = p.parse_args()

    threads = setup_threads(args.threads)
    model, tokenizer, _ = load_model(args.model)
    utts = read_manifest(args.manifest)
    audio_s = sum(u.duration_s for u in utts)
    posteriors(model, utts[:8], args.max_batch_duration)  # warm-up: kernels, caches
    post, network_s = posteriors(model, utts, args.max_batch_duration)

    beam = {"beam_size": args.beam_size}
    decoders = {"greedy": build_decoder("greedy", tokenizer.vocab),
                "beam": build_decoder("beam", tokenizer.vocab, **beam)}
    if args.lexicon and args.lm:
        t0 = time.perf_counter()
        decoders["beam_lm"] = build_decoder("beam_lm", tokenizer.vocab, lexicon=args.lexicon, lm=args.lm,
                                            lm_weight=args.lm_weight, word_score=args.word_score, **beam)
        lm_load_s = time.perf_counter() - t0
    results = {}
    for name, decode in decoders.items():
        times, texts = [], {}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            for ids, log_probs, lengths in post:
                texts.update(zip(ids, decode(log_probs, lengths)))
            times.append(time.perf_counter() - t0)
        summary, _ = score(utts, [Hypothesis(u.utt_id, texts[u.utt_id]) for u in utts])
        search_s = statistics.median(times)
        results[name] = {"wer": summary["wer"], "cer": summary["cer"], "search_seconds": search_s,
                         "search_rtf": search_s / audio_s, "total_rtf": (network_s + search_s) / audio_s}
    report = {"model": str(Path(args.model).resolve()), "manifest": str(Path(args.manifest).resolve()),
              "utterances": len(utts), "audio_seconds": audio_s, "threads": threads, "cpu": cpu_name(),
              "network_seconds": network_s, "network_rtf": network_s / audio_s, "beam_size": args.beam_size,
              "lm": args.lm, "lm_weight": args.lm_weight, "word_score": args.word_score, "decoders": results}
    if "beam_lm" in decoders:
        report["lm_load_seconds"] = lm_load_s
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
