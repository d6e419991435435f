"""Batched inference over a manifest, and scoring (WER, CER, per-utterance report)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from asr.data.dataset import SpeechDataset, collate, make_batches
from asr.data.manifest import Utterance
from asr.data.tokenizer import Tokenizer
from asr.decoding.ctc import Decoder, GreedyDecoder
from asr.fileio import atomic_open, atomic_write_text, drop_inherited_locks
from asr.inference.metrics import Hypothesis, alignment_text, score
from asr.models.acoustic import Recognizer
from asr.training import distributed

log = logging.getLogger(__name__)


@torch.inference_mode()
def recognize(model: Recognizer, tokenizer: Tokenizer, utts: Sequence[Utterance], *,
              max_batch_duration_s: float = 300.0, device: torch.device | str = "cpu",
              num_workers: int = 0, dataset: SpeechDataset | None = None, decoder: Decoder | None = None,
              timing: dict | None = None) -> list[Hypothesis]:
    """Transcripts for ``utts`` (in their order), batching by duration.

    ``decoder`` turns ``(log_probs, lengths)`` into text (default: greedy, see
    :func:`asr.decoding.ctc.build_decoder`). Utterances whose audio fails to load come back
    with ``text=None`` and the reason. When ``timing`` is given, its ``search_seconds``
    grows by the time spent in the decoder (the rest is features and the network).
    """
    decoder = decoder or GreedyDecoder(tokenizer.vocab)
    was_training = model.training
    model.eval()
    device = torch.device(device)
    dataset = dataset or SpeechDataset(utts, None, model.features.config.sample_rate_hz)
    batches = make_batches([u.duration_s for u in utts], max_batch_duration_s, shuffle=False)
    loader = torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate,
                                         num_workers=num_workers, worker_init_fn=drop_inherited_locks)
    out: dict[str, Hypothesis] = {}
    for batch in loader:
        for utt_id, reason in batch.skipped:
            out[utt_id] = Hypothesis(utt_id, None, reason)
        if not batch.utt_ids:
            continue
        batch = batch.to(device)
        log_probs, lengths = model(batch.waves, batch.wave_lens)
        t0 = time.perf_counter()
        texts = decoder(log_probs, lengths)
        if timing is not None:
            timing["search_seconds"] = timing.get("search_seconds", 0.0) + time.perf_counter() - t0
        for utt_id, text in zip(batch.utt_ids, texts):
            out[utt_id] = Hypothesis(utt_id, text)
    model.train(was_training)
    return [out[u.utt_id] for u in utts]


def write_report(out_dir: str | Path, summary: dict, rows: list[dict]) -> None:
    """``summary.json``, ``hyps.jsonl`` and a readable ``report.txt`` (worst utterances first)."""
    out_dir = Path(out_dir)
    atomic_write_text(out_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    with atomic_open(out_dir / "hyps.jsonl") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    w, c = summary["words"], summary["chars"]
    lines = [
        f"WER {100 * summary['wer']:.2f} % ({w['errors']} errors / {w['ref_len']} words: "
        f"{w['substitutions']} sub, {w['deletions']} del, {w['insertions']} ins)",
        f"CER {100 * summary['cer']:.2f} % ({c['errors']} errors / {c['ref_len']} characters)",
        f"utterances {summary['utterances']}, with errors {100 * summary['sentence_error_rate']:.1f} %",
        "",
    ]
    for f_ in summary["failed"]:
        lines.append(f"UNREADABLE {f_['utt_id']}: {f_['reason']}")
    for r in rows:
        lines += [f"{r['utt_id']}  WER {100 * r['wer']:.1f} %  ({r['word_errors']}/{r['ref_words']})",
                  alignment_text(r["ref"], r["hyp"]), ""]
    atomic_write_text(out_dir / "report.txt", "\n".join(lines))


def evaluate(model: Recognizer, tokenizer: Tokenizer, utts: Sequence[Utterance], *, out_dir: str | Path | None,
             max_batch_duration_s: float = 300.0, device="cpu", num_workers: int = 0, rank: int = 0,
             world_size: int = 1, decoder: Decoder | None = None) -> dict:
    """Recognize, score, write the report (when ``out_dir``), and return the summary with timing.

    ``real_time_factor`` is all of recognition (audio reading, features, network, search)
    over the audio duration; ``search_real_time_factor`` the decoder's search alone.
    With ``world_size`` > 1 (a running process group), each rank recognizes every
    ``world_size``-th utterance and the hypotheses are gathered, so every rank returns the
    same scores, equal to a single process's (padding never changes a transcript).
    """
    t0 = time.perf_counter()
    timing = {"search_seconds": 0.0}
    hyps = recognize(model, tokenizer, utts[rank::world_size], max_batch_duration_s=max_batch_duration_s,
                     device=device, num_workers=num_workers, decoder=decoder, timing=timing)
    if world_size > 1:
        by_id = {h.utt_id: h for part in distributed.all_gather(hyps) for h in part}
        hyps = [by_id[u.utt_id] for u in utts]
    elapsed = time.perf_counter() - t0
    summary, rows = score(utts, hyps)
    audio_s = sum(u.duration_s for u in utts)
    per_s = 1 / max(audio_s, 1e-9)
    summary.update(audio_seconds=audio_s, decode_seconds=elapsed, real_time_factor=elapsed * per_s,
                   search_seconds=timing["search_seconds"], search_real_time_factor=timing["search_seconds"] * per_s)
    if out_dir is not None:
        write_report(out_dir, summary, rows)
    return summary
