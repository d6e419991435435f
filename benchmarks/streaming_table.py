"""The WER-latency table: offline and streamed WER, algorithmic and measured latency of several model files.

For each ``LABEL=model.pt``:

* ``wer_greedy``: greedy WER over the manifest, the whole utterance at once (``asr evaluate``'s);
* ``wer_lm``: lexicon + n-gram WER (with ``--lexicon`` and ``--lm``; each model's own ``--lm-setting``
  weights, else ``--lm-weight`` / ``--word-score``);
* ``wer_streamed``: greedy WER of the same model run as a stream (:mod:`asr.inference.streaming`, 100 ms
  pieces); equal to ``wer_greedy`` by construction (tested), shown so the table proves it. Full-context
  models cannot stream and get None;
* ``algorithmic_latency_s``: how long after a frame's audio its output can exist at the earliest (chunk
  + look-ahead + front end; a full-context model waits for the whole utterance: its mean duration is shown);
* ``compute_ms_per_chunk``: p50 / p95 of the time one chunk takes through the model on this machine, and
  ``streaming_latency_s`` = algorithmic latency + p95 chunk compute: what a single stream waits, server
  queueing aside (``benchmarks/serve_load.py`` measures it through ``asr serve``).

Prints JSON, then the same as a markdown table.

    python benchmarks/streaming_table.py --manifest recipes/an4/exp/data/test.jsonl \\
        --lexicon recipes/an4/exp/lang/lexicon.txt --lm recipes/an4/exp/lang/lm_3gram.bin \\
        --lm-setting lc_0.4_0.2=0.5,2 blstm=exp/blstm/model.pt lc_0.4_0.2=exp/lc/model.pt ulstm=exp/ulstm/model.pt
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from robustness import labelled  # benchmarks/ is on sys.path when run as a script

from asr.data.audio import load_audio
from asr.data.manifest import read_manifest
from asr.decoding.ctc import build_decoder
from asr.inference.evaluate import Hypothesis, recognize, score
from asr.inference.streaming import StreamingError, StreamingRecognizer
from asr.models.checkpoint import load_model


def streamed(model, tokenizer, utts, piece_s: float = 0.1) -> tuple[list[Hypothesis], list[float], float]:
    """Every utterance as a stream of ``piece_s`` pieces: hypotheses, seconds per chunk, algorithmic latency."""
    rec = StreamingRecognizer(model, tokenizer)
    hyps, chunk_s = [], []
    for u in utts:
        samples = torch.from_numpy(load_audio(u.audio_path, rec.sample_rate_hz))
        stream, step = rec.open(), int(piece_s * rec.sample_rate_hz)
        for i in range(0, len(samples), step):
            before, t0 = stream.frames_done, time.perf_counter()
            stream.accept(samples[i:i + step])
            chunks = (stream.frames_done - before) // rec.chunk_frames
            if chunks:  # a piece that completed chunks: its time is theirs
                chunk_s += [(time.perf_counter() - t0) / chunks] * chunks
        hyps.append(Hypothesis(u.utt_id, stream.finish()[-1]["text"]))
    return hyps, chunk_s, rec.algorithmic_latency_s


def row(label: str, path: str, utts, args, lm_setting: tuple[float, float]) -> dict:
    model, tokenizer, bundle = load_model(path)
    m = bundle["model"]
    out = {"model": label, "file": path, "rnn_type": m["rnn_type"], "bidirectional": m["bidirectional"],
           "layers": m["num_layers"], "hidden": m["hidden_size"], "chunk_s": m.get("chunk_s", 0.0),
           "right_context_s": m.get("right_context_s", 0.0)}
    out["wer_greedy"] = round(score(utts, recognize(model, tokenizer, utts))[0]["wer"], 4)
    if args.lexicon and args.lm:
        lm = build_decoder("beam_lm", tokenizer.vocab, lexicon=args.lexicon, lm=args.lm, lm_weight=lm_setting[0],
                           word_score=lm_setting[1], beam_size=args.beam_size)
        out["lm_setting"] = list(lm_setting)
        out["wer_lm"] = round(score(utts, recognize(model, tokenizer, utts, decoder=lm))[0]["wer"], 4)
    try:
        hyps, chunks, algorithmic = streamed(model, tokenizer, utts)
    except StreamingError:
        out.update(wer_streamed=None, algorithmic_latency_s=round(float(np.mean([u.duration_s for u in utts])), 3),
                   algorithmic_latency="the whole utterance (mean duration)", compute_ms_per_chunk=None,
                   streaming_latency_s=None)
        return out
    p50, p95 = np.percentile(np.asarray(chunks) * 1000, [50, 95]) if chunks else (float("nan"),) * 2
    out.update(wer_streamed=round(score(utts, hyps)[0]["wer"], 4), algorithmic_latency_s=round(algorithmic, 3),
               compute_ms_per_chunk={"p50": round(float(p50), 1), "p95": round(float(p95), 1)},
               streaming_latency_s=round(algorithmic + float(p95) / 1000, 3))
    return out


def markdown(rows: list[dict]) -> str:
    head = ("| model | kind | WER greedy | WER lexicon + LM | WER streamed | algorithmic latency | "
            "streaming latency (p95 compute) |\n|---|---|---:|---:|---:|---:|---:|")
    lines = [head]
    for r in rows:
        kind = (("LC-B" if r["chunk_s"] else "B") if r["bidirectional"] else "uni ") + r["rnn_type"].upper()
        kind += f" {r['layers']}x{r['hidden']}" + (f", {r['chunk_s']:g} + {r['right_context_s']:g} s"
                                                   if r["chunk_s"] else "")
        pct = lambda x: "n/a" if x is None else f"{100 * x:.2f} %"  # noqa: E731
        alg = f"{r['algorithmic_latency_s']:.3f} s" + (" (utterance)" if r["wer_streamed"] is None else "")
        lat = "n/a" if r["streaming_latency_s"] is None else f"{r['streaming_latency_s']:.3f} s"
        lines.append(f"| {r['model']} | {kind} | {pct(r['wer_greedy'])} | {pct(r.get('wer_lm'))} | "
                     f"{pct(r['wer_streamed'])} | {alg} | {lat} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("models", nargs="+", help="LABEL=model.pt")
    p.add_argument("--manifest", required=True)
    p.add_argument("--lexicon")
    p.add_argument("--lm")
    p.add_argument("--lm-weight", type=float, default=0.0)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--lm-setting", action="append", default=[], metavar="LABEL=LM_WEIGHT,WORD_SCORE",
                   help="a model's own tuned weights (default: --lm-weight, --word-score)")
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    models = labelled(args.models, "model")
    settings = {k: tuple(float(v) for v in s.split(",")) for k, s in labelled(args.lm_setting, "--lm-setting").items()}
    for label, s in settings.items():
        if label not in models or len(s) != 2:
            p.error(f"--lm-setting {label}={s}: needs a model label and two numbers")
    utts = read_manifest(args.manifest)
    rows = [row(label, path, utts, args, settings.get(label, (args.lm_weight, args.word_score)))
            for label, path in models.items()]
    print(json.dumps({"manifest": args.manifest, "utterances": len(utts), "threads": args.threads, "rows": rows},
                     indent=2))
    print(markdown(rows))


if __name__ == "__main__":
    main()
