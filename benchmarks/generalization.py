"""Does a model recognize speech, or the training microphone? Scores off the training conditions, in one run.

Two kinds of test, for any set of model files:

- the in-domain test set (``--manifest``, AN4 test) under the recording conditions users bring:
  trimmed silences, 8 kHz, a telephone line, GSM and low-bit-rate MP3/Opus, babble at 10 dB,
  a 0.6 s room, far field, another microphone's colour, clipping, a quiet microphone
  (:mod:`asr.data.channels`; every model hears the same seeded audio);
- held-out real speakers: with ``--speechocean DIR``, the digit strings ("ZERO THREE FIVE ONE")
  of speechocean762's train directory, AN4's own domain read by other people (the 26 speakers who
  read them are held out; :func:`speechocean_digits`).

Greedy and, with ``--lexicon`` and ``--lm``, lexicon + n-gram beam search. Besides WER/CER the
held-out cells report ``spelled``: the share of hypothesis words that are single letters (the
references have none), the telltale of a model biased toward AN4's spelled letters ("zero" -> "c e o o").

    python benchmarks/generalization.py --manifest recipes/an4/exp/data/test.jsonl \\
        --model default=recipes/an4/exp/train/model.pt --speechocean ../shared/data/speechocean762 \\
        --lexicon recipes/an4/exp/lang/lexicon.txt --lm recipes/an4/exp/lang/lm_3gram.bin --lm-setting default=0,0

Prints one JSON object (``results[model][condition][decoder]``) with ``markdown``: the greedy and LM
WER of every model and condition as a table.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from robustness import (  # noqa: E402
    build_decoders,
    check_args,
    decode_all,
    labelled,
    load_models,
    parser,
    read_clean,
    score_conditions,
)

from asr.analysis.tables import markdown_table  # noqa: E402
from asr.corpora.speechocean762 import prepare_speechocean762  # noqa: E402
from asr.inference.evaluate import score  # noqa: E402
from asr.runtime import setup_threads  # noqa: E402

CONDITIONS = ("clean", "trimmed", "8kHz", "telephone", "gsm", "mp3_17kbps", "opus_13kbps", "babble_10dB",
              "reverb_0.6s", "far_field", "bright_mic", "clipped_12dB", "quiet_-20dB")


def spelled_rate(refs: list[str], hyps: list[str]) -> float | None:
    """Share of hypothesis words that are single letters, over utterances whose reference has no such word."""
    words = [w for r, h in zip(refs, hyps) if not any(len(x) == 1 for x in r.split()) for w in h.split()]
    return sum(len(w) == 1 for w in words) / len(words) if words else None


def speechocean_digits(root: Path, out_dir: Path) -> Path:
    """The digit strings of speechocean762's 26 speakers who read any, as ``out_dir/digits.jsonl``.

    :func:`asr.corpora.speechocean762.prepare_speechocean762` holds those speakers out, so a model
    trained on its ``train.jsonl`` (the other 99; ``recipes/an4``'s extra corpus) has never heard them.
    """
    return Path(prepare_speechocean762(root, out_dir)["digits"]["manifest"])


def score_held_out(manifest: Path, loaded: dict, decoders: dict) -> dict:
    """``{model: {decoder: WER, CER, words, spelled}}`` on a manifest of real recordings, as recorded."""
    rates = {m.features.config.sample_rate_hz for m, _, _ in loaded.values()}
    utts, clean, _ = read_clean(str(manifest), rates.pop())
    out = {}
    for label, (model, _, _) in loaded.items():
        out[label] = {}
        for name, hyps in decode_all(model, utts, clean, decoders[label]).items():
            summary, _ = score(utts, hyps)
            out[label][name] = {"wer": summary["wer"], "cer": summary["cer"], "words": summary["words"],
                                "spelled": spelled_rate([u.text for u in utts], [h.text for h in hyps])}
    return out, len(utts)


def markdown(results: dict, rows: list[str]) -> str:
    cols = [(m, d) for m, per in results.items() for d in next(iter(per.values()))]
    body = [[r, *(f"{100 * results[m][r][d]['wer']:.2f}" for m, d in cols)] for r in rows]
    return markdown_table(["condition", *(f"{m} {d} WER %" for m, d in cols)], body).rstrip("\n")


def main() -> None:
    p = parser(__doc__.splitlines()[0], ",".join(CONDITIONS))
    p.add_argument("--speechocean", default=None, help="speechocean762 directory: adds its held-out speakers' digits")
    p.add_argument("--edge-pad", action="append", default=[], metavar="LABEL=SECONDS",
                   help="hear that model's input with quiet background added at both ends (model.edge_pad_s)")
    args = p.parse_args()
    models, settings, conditions = check_args(args)
    threads = setup_threads(args.threads)
    loaded, rate = load_models(models)
    for label, seconds in labelled(args.edge_pad, "--edge-pad").items():
        if label not in loaded:
            sys.exit(f"--edge-pad {label}={seconds}: needs a --model label")
        loaded[label][0].set_edge_pad(float(seconds))
    utts, clean, failed = read_clean(args.manifest, rate)
    decoders = {label: build_decoders(tokenizer, args, settings.get(label, (args.lm_weight, args.word_score)))
                for label, (_, tokenizer, _) in loaded.items()}
    t0 = time.perf_counter()
    results, seconds = score_conditions(conditions, loaded, decoders, utts, clean, rate, args.seed)
    rows = [c.name for c in conditions]
    held_out = {}
    if args.speechocean:
        with tempfile.TemporaryDirectory() as tmp:
            digits = speechocean_digits(Path(args.speechocean), Path(tmp))
            per_model, n = score_held_out(digits, loaded, decoders)
        for label, cells in per_model.items():
            results[label]["speechocean762_held_out_digits"] = cells
        held_out = {"speechocean762_held_out_digits": {"utterances": n, "speakers": "the 26 who read digit strings"}}
        rows.append("speechocean762_held_out_digits")
    print(json.dumps({"manifest": str(Path(args.manifest).resolve()), "utterances": len(utts), "skipped": failed,
                      "seed": args.seed, "threads": threads, "models": {k: str(Path(v).resolve())
                                                                         for k, v in models.items()},
                      "edge_pad_s": {label: m.edge_pad_s for label, (m, _, _) in loaded.items()},
                      "lexicon": args.lexicon, "lm": args.lm, "held_out": held_out,
                      "conditions": {c.name: c.description for c in conditions}, "seconds": seconds,
                      "total_seconds": round(time.perf_counter() - t0, 1), "results": results,
                      "markdown": markdown(results, rows)}, indent=2))


if __name__ == "__main__":
    main()
