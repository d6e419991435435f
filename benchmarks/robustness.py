"""Accuracy away from the training microphone: one test set under simulated recording conditions.

Every utterance of ``--manifest`` is passed through each condition of :mod:`asr.data.channels`
(noise, babble, reverberation, a telephone line, clipping, a quiet microphone), seeded by
``(--seed, utterance index)`` so every model hears exactly the same degraded audio, and
each ``--model`` is scored on it with the greedy decoder, and with lexicon + n-gram beam
search when ``--lexicon`` and ``--lm`` are given.

    python benchmarks/robustness.py --manifest exp/an4/data/test.jsonl \\
        --model augmented=exp/an4/train/model.pt --model plain=exp/an4_noaug/train/model.pt \\
        --lexicon exp/an4/lang/lexicon.txt --lm exp/an4/lang/lm_3gram.bin --lm-setting augmented=0.25,2

Prints one JSON object: per model, per condition, per decoder WER and CER (and the word
error counts), plus ``markdown``, the same numbers as a table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from asr.analysis.tables import markdown_table
from asr.data.audio import AudioError
from asr.data.channels import CONDITIONS, get_conditions
from asr.data.dataset import SpeechDataset
from asr.data.manifest import read_manifest
from asr.decoding.ctc import build_decoder
from asr.inference.evaluate import Hypothesis, score
from asr.models.checkpoint import load_model
from asr.runtime import setup_threads

sys.path.insert(0, str(Path(__file__).resolve().parent))
from decode_rtf import posteriors  # noqa: E402


class FixedAudio(SpeechDataset):
    """A dataset whose audio is given as arrays (one per utterance) instead of read from files."""

    def __init__(self, utts, arrays, sample_rate_hz):
        super().__init__(utts, None, sample_rate_hz)
        self.arrays = arrays

    def load(self, i):
        return self.arrays[i]


def decode_all(model, utts, arrays: list[np.ndarray], decoders: dict, max_batch_duration_s: float = 120.0) -> dict:
    """``{decoder name: [Hypothesis per utterance]}``: the network runs once, every decoder searches its output."""
    dataset = FixedAudio(utts, arrays, model.features.config.sample_rate_hz)
    batches, _ = posteriors(model, utts, max_batch_duration_s, dataset=dataset)
    texts: dict[str, dict[str, str]] = {name: {} for name in decoders}
    for utt_ids, log_probs, lengths in batches:
        for name, decoder in decoders.items():
            texts[name].update(zip(utt_ids, decoder(log_probs, lengths)))
    return {name: [Hypothesis(u.utt_id, t[u.utt_id]) for u in utts] for name, t in texts.items()}


def degrade(condition, clean: list[np.ndarray], sample_rate_hz: int, seed: int) -> list[np.ndarray]:
    """``clean`` through ``condition``; utterance i draws from ``(seed, i)`` and babbles with the others."""
    out = []
    for i, x in enumerate(clean):
        others = clean[:i] + clean[i + 1:]
        y = condition.apply(x, sample_rate_hz, np.random.default_rng([seed, i]), others)
        assert len(y) == len(x) or not condition.keeps_length, f"{condition.name} changed the length of utterance {i}"
        out.append(np.ascontiguousarray(y, dtype=np.float32))
    return out


def labelled(specs: list[str], what: str) -> dict[str, str]:
    out = {}
    for spec in specs:
        label, sep, value = spec.partition("=")
        if not sep or not label or not value:
            sys.exit(f"{what} {spec!r}: expected LABEL=VALUE")
        if label in out:
            sys.exit(f"{what}: label {label!r} given twice")
        out[label] = value
    return out


def markdown(results: dict, conditions: list[str]) -> str:
    """WER / CER in percent, a row per condition and a column per model and decoder."""
    cols = [(m, d) for m, per in results.items() for d in next(iter(per.values()))]
    rows = [[c, *(f"{100 * results[m][c][d]['wer']:.2f} / {100 * results[m][c][d]['cer']:.2f}" for m, d in cols)]
            for c in conditions]
    return markdown_table(["condition", *(f"{m} {d} WER / CER" for m, d in cols)], rows).rstrip("\n")


def parser(description: str, conditions: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that score models under conditions (this one and generalization.py)."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--manifest", required=True)
    p.add_argument("--model", action="append", required=True, metavar="LABEL=PATH", help="repeat for several models")
    p.add_argument("--conditions", default=conditions, help="comma-separated names")
    p.add_argument("--lexicon", default=None, help="lexicon.txt (recipe stage 5): adds lexicon + LM beam search")
    p.add_argument("--lm", default=None, help="KenLM model (lm_3gram.bin)")
    p.add_argument("--lm-weight", type=float, default=1.0)
    p.add_argument("--word-score", type=float, default=0.0)
    p.add_argument("--lm-setting", action="append", default=[], metavar="LABEL=LM_WEIGHT,WORD_SCORE",
                   help="a model's own tuned weights (default: --lm-weight, --word-score)")
    p.add_argument("--beam-size", type=int, default=50)
    p.add_argument("--seed", type=int, default=1234)
    p.add_argument("--threads", type=int, default=2)
    return p


def load_models(models: dict[str, str]) -> tuple[dict, int]:
    """``{label: (model, tokenizer, bundle)}`` and their one sample rate; models of different rates are refused."""
    loaded = {label: load_model(path) for label, path in models.items()}
    rates = {m.features.config.sample_rate_hz for m, _, _ in loaded.values()}
    if len(rates) != 1:
        sys.exit(f"the models expect different sample rates {sorted(rates)}; compare models of one rate")
    return loaded, rates.pop()


def main() -> None:
    args = parser(__doc__.splitlines()[0], ",".join(CONDITIONS)).parse_args()
    models, settings, conditions = check_args(args)
    threads = setup_threads(args.threads)
    loaded, sample_rate_hz = load_models(models)
    utts, clean, failed = read_clean(args.manifest, sample_rate_hz)
    decoders = {label: build_decoders(tokenizer, args, settings.get(label, (args.lm_weight, args.word_score)))
                for label, (_, tokenizer, _) in loaded.items()}
    results, seconds = score_conditions(conditions, loaded, decoders, utts, clean, sample_rate_hz, args.seed)
    report = {"manifest": str(Path(args.manifest).resolve()), "utterances": len(utts),
              "audio_seconds": sum(u.duration_s for u in utts), "skipped": failed, "seed": args.seed,
              "threads": threads, "models": {k: str(Path(v).resolve()) for k, v in models.items()},
              "lexicon": args.lexicon, "lm": args.lm,
              "lm_settings": ({k: settings.get(k, (args.lm_weight, args.word_score)) for k in models}
                              if args.lm else None),
              "conditions": {c.name: c.description for c in conditions}, "seconds": seconds,
              "results": results, "markdown": markdown(results, [c.name for c in conditions])}
    print(json.dumps(report, indent=2))


def check_args(args) -> tuple[dict[str, str], dict[str, tuple[float, ...]], list]:
    """Models by label, per-model LM settings and the conditions; exits with a message naming a bad option."""
    models = labelled(args.model, "--model")
    settings = {k: tuple(float(v) for v in s.split(",")) for k, s in labelled(args.lm_setting, "--lm-setting").items()}
    for label, s in settings.items():
        if label not in models or len(s) != 2:
            sys.exit(f"--lm-setting {label}={s}: needs a --model label and two numbers")
    if bool(args.lexicon) != bool(args.lm):
        sys.exit("--lexicon and --lm go together")
    try:
        conditions = get_conditions([c for c in args.conditions.split(",") if c])
    except KeyError as err:
        sys.exit(str(err.args[0]))
    return models, settings, conditions


def read_clean(manifest: str, sample_rate_hz: int) -> tuple[list, list[np.ndarray], list[tuple[str, str]]]:
    """The readable utterances and their audio, and ``(utt_id, reason)`` of each unreadable one."""
    utts = read_manifest(manifest)
    reader = SpeechDataset(utts, None, sample_rate_hz)
    clean, kept, failed = [], [], []
    for i, u in enumerate(utts):
        try:
            clean.append(reader.load(i))
            kept.append(u)
        except AudioError as err:  # scored without it, and said so: unreadable audio has no degraded copy
            failed.append((u.utt_id, err.reason))
    if failed:
        print(f"skipping {len(failed)} unreadable utterance(s): {failed}", file=sys.stderr)
    return kept, clean, failed


def build_decoders(tokenizer, args, lm_setting: tuple[float, float]) -> dict:
    """Greedy, and lexicon + LM beam search with ``lm_setting`` = (LM weight, word score) when a lexicon is given."""
    decoders = {"greedy": build_decoder("greedy", tokenizer.vocab)}
    if args.lexicon:
        w, s = lm_setting
        decoders["lm"] = build_decoder("beam_lm", tokenizer.vocab, lexicon=args.lexicon, lm=args.lm,
                                       lm_weight=w, word_score=s, beam_size=args.beam_size)
    return decoders


def score_conditions(conditions, loaded: dict, decoders: dict, utts, clean: list[np.ndarray], sample_rate_hz: int,
                     seed: int) -> tuple[dict, dict]:
    """``{model: {condition: {decoder: WER, CER, word errors}}}`` and the seconds each condition took."""
    results: dict = {label: {} for label in loaded}
    seconds: dict = {}
    for cond in conditions:
        t0 = time.perf_counter()
        degraded = degrade(cond, clean, sample_rate_hz, seed)
        for label, (model, _, _) in loaded.items():
            hyps = decode_all(model, utts, degraded, decoders[label])
            results[label][cond.name] = {}
            for name, h in hyps.items():
                summary, _ = score(utts, h)
                results[label][cond.name][name] = {"wer": summary["wer"], "cer": summary["cer"],
                                                   "words": summary["words"]}
        seconds[cond.name] = round(time.perf_counter() - t0, 1)
        print(f"{cond.name}: " + ", ".join(f"{m} {d} {100 * r['wer']:.2f} %" for m, per in results.items()
                                           for d, r in per[cond.name].items()), file=sys.stderr)
    return results, seconds


if __name__ == "__main__":
    main()
