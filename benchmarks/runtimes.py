"""Inference runtimes on one test set, in one run: torch fp32, torch dynamic int8, onnxruntime fp32 and int8.

For every runtime: agreement with torch fp32 (max abs log-posterior difference over every valid
frame of every utterance, transcripts identical), WER greedy and with the lexicon + LM decoder,
file size, and speed of the recognizer itself (features + network on decoded audio, the same
duration-bucketed batches as ``asr transcribe``) at each thread count, runtimes alternating,
median of ``--repeats``. int8 activations are quantized once per batch, so ``batched_eq_alone``
counts the utterances whose greedy transcript batched equals the one recognised alone.

    python benchmarks/runtimes.py --model recipes/an4/exp/train/model.pt --manifest recipes/an4/exp/data/test.jsonl \\
        --lexicon recipes/an4/exp/lang/lexicon.txt --lm recipes/an4/exp/lang/lm_3gram.bin --threads 1,2

Prints one JSON object.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

import torch
from hostinfo import cpu_flags  # benchmarks/ is on sys.path when run as a script

from asr.data.dataset import SpeechDataset, collate, make_batches
from asr.data.manifest import read_manifest
from asr.decoding.ctc import GreedyDecoder, build_decoder
from asr.inference.backends import load_recognizer
from asr.inference.evaluate import Hypothesis, score
from asr.inference.export import export_onnx

RUNTIMES = {"torch": ("torch", False), "torch-int8": ("torch-int8", False), "onnx": ("onnx", False),
            "onnx-int8": ("onnx", True)}  # name: (asr runtime, int8 export)




def decoded_batches(utts, sample_rate_hz: int, max_batch_duration_s: float) -> list:
    """The manifest's audio, decoded once, in the duration-bucketed batches transcription uses."""
    batches = make_batches([u.duration_s for u in utts], max_batch_duration_s, shuffle=False)
    loader = torch.utils.data.DataLoader(SpeechDataset(utts, None, sample_rate_hz), batch_sampler=batches,
                                         collate_fn=collate, num_workers=0)
    return list(loader)


def posteriors(model, batches) -> dict[str, torch.Tensor]:
    """Every utterance's valid-frame log-posteriors ``(T, V)`` by id."""
    out = {}
    with torch.inference_mode():
        for b in batches:
            log_probs, lengths = model(b.waves, b.wave_lens)
            for i, utt_id in enumerate(b.utt_ids):
                out[utt_id] = log_probs[i, : int(lengths[i])].float().clone()
    return out


def transcripts(post: dict[str, torch.Tensor], decoder) -> dict[str, str]:
    return {k: decoder(v[None], torch.tensor([v.shape[0]]))[0] for k, v in post.items()}


def model_bytes(name: str, model, files: dict[str, Path]) -> int:
    """Bytes of the runtime's model: its file, or for torch-int8 its serialized quantized state dict."""
    if name == "torch-int8":
        buf = io.BytesIO()
        torch.save(model.state_dict(), buf)
        return buf.getbuffer().nbytes
    return files[name].stat().st_size


def accuracy(models: dict, batches, utts, decoders: dict) -> dict:
    """Agreement with torch fp32 and WER per decoder, for every runtime (one thread, one pass each)."""
    ref = None
    out = {}
    for name, model in models.items():
        post = posteriors(model, batches)
        ref = ref or post
        row = {"max_abs_diff_vs_torch": max(float((post[k] - ref[k]).abs().max()) for k in ref)}
        for dec_name, decoder in decoders.items():
            hyps = transcripts(post, decoder)
            row[f"wer_{dec_name}"] = score(utts, [Hypothesis(u.utt_id, hyps[u.utt_id]) for u in utts])[0]["wer"]
            row[f"transcripts_{dec_name}"] = hyps
        out[name] = row
    for row in out.values():  # compare after every runtime is decoded
        for dec_name in decoders:
            mine, torch_fp32 = row[f"transcripts_{dec_name}"], out["torch"][f"transcripts_{dec_name}"]
            row[f"identical_{dec_name}"] = sum(mine[k] == torch_fp32[k] for k in mine)
    return out


def batched_vs_alone(model, batches, greedy) -> int:
    """Utterances whose greedy transcript batched equals the one recognised in a batch of its own."""
    batched = transcripts(posteriors(model, batches), greedy)
    same = 0
    with torch.inference_mode():
        for b in batches:
            for i, utt_id in enumerate(b.utt_ids):
                n = int(b.wave_lens[i])
                log_probs, lengths = model(b.waves[i:i + 1, :n], b.wave_lens[i:i + 1])
                same += greedy(log_probs, lengths)[0] == batched[utt_id]
    return same


def speed(paths: dict, files: dict, batches, threads: list[int], repeats: int, audio_s: float) -> dict:
    """Audio seconds per wall second of the recognizer per runtime and thread count (median of ``repeats``)."""
    out = {}
    for t in threads:
        torch.set_num_threads(t)
        models = {name: load_recognizer(files[name], runtime, threads=t)[0] for name, runtime in paths.items()}
        for model in models.values():
            posteriors(model, batches[:2])  # warm-up: kernels, onnxruntime's first-run allocations
        walls: dict[str, list[float]] = {name: [] for name in models}
        for _ in range(repeats):
            for name, model in models.items():
                t0 = time.perf_counter()
                posteriors(model, batches)
                walls[name].append(time.perf_counter() - t0)
        for name, w in walls.items():
            out.setdefault(name, {})[f"{t}_threads"] = {"wall_s": [round(x, 3) for x in w],
                                                        "x_real_time": round(audio_s / statistics.median(w), 1)}
        for name in models:
            out[name][f"{t}_threads"]["speed_vs_torch"] = round(
                statistics.median(walls["torch"]) / statistics.median(walls[name]), 2)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", required=True)
    p.add_argument("--manifest", required=True)
    p.add_argument("--lexicon")
    p.add_argument("--lm")
    p.add_argument("--lm-weight", type=float, default=0.0)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--max-batch-duration", type=float, default=120.0)
    p.add_argument("--out-dir", help="where the exports go (default: a temporary folder)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run(args, Path(args.out_dir or tmp))


def run(args, out_dir: Path) -> None:
    torch.set_num_threads(1)
    files = {"torch": Path(args.model), "torch-int8": Path(args.model)}
    for name, (_, int8) in RUNTIMES.items():
        if name.startswith("onnx"):
            files[name] = out_dir / f"model{'.int8' if int8 else ''}.onnx"
            export_onnx(args.model, files[name], int8=int8, overwrite=True, card=False)
    paths = {name: runtime for name, (runtime, _) in RUNTIMES.items()}
    models = {name: load_recognizer(files[name], runtime, threads=1)[0] for name, runtime in paths.items()}
    tokenizer = load_recognizer(files["onnx"], "onnx")[1]
    utts = read_manifest(args.manifest)
    batches = decoded_batches(utts, models["torch"].features.config.sample_rate_hz, args.max_batch_duration)
    decoders = {"greedy": GreedyDecoder(tokenizer.vocab)}
    if args.lexicon and args.lm:
        decoders["lm"] = build_decoder("beam_lm", tokenizer.vocab, lexicon=args.lexicon, lm=args.lm,
                                       lm_weight=args.lm_weight, word_score=args.word_score)
    acc = accuracy(models, batches, utts, decoders)
    audio_s = sum(u.duration_s for u in utts)
    result = {"benchmark": "runtimes", "model": str(Path(args.model).resolve()), "manifest": args.manifest,
              "utterances": len(utts), "audio_seconds": round(audio_s, 2), "cpu_flags": cpu_flags(),
              "torch": torch.__version__, "decoder_lm": {"lm_weight": args.lm_weight, "word_score": args.word_score},
              "runtimes": {}}
    for name, model in models.items():
        row = {k: v for k, v in acc[name].items() if not k.startswith("transcripts_")}
        row["bytes"] = model_bytes(name, model, files)
        row["batched_eq_alone"] = batched_vs_alone(model, batches, decoders["greedy"])
        result["runtimes"][name] = row
    for name, s in speed(paths, files, batches, [int(t) for t in args.threads.split(",")], args.repeats,
                         audio_s).items():
        result["runtimes"][name]["speed"] = s
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
