"""``asr evaluate``: score a model file on a manifest, with any decoder (see EvaluateConfig)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from asr.cli.common import resolved, run_dir, store_app
from asr.config.commands import EvaluateConfig
from asr.config.schema import ConfigError, DecoderConfig, check_decoder, from_dict
from asr.fileio import atomic_write_text, hold_lock, refuse_to_replace, release_lock


@store_app("evaluate")
def evaluate_main(cfg: DictConfig) -> float:
    import torch

    from asr.data.manifest import read_manifest
    from asr.inference.backends import device_for, load_recognizer
    from asr.inference.evaluate import evaluate
    from asr.runtime import resolve_device, setup_threads

    d = resolved(cfg)
    c = from_dict(EvaluateConfig, d, "")
    check_decoder(c.decoder)
    threads = setup_threads(c.threads)
    device = resolve_device(device_for(c.runtime, c.device))
    model, tokenizer = load_recognizer(c.model, c.runtime, threads)
    model.to(device)
    decoder = build(c.decoder, tokenizer.vocab)
    utts = read_manifest(c.data.manifest)
    out = run_dir()
    hold_lock(out)  # two evaluations into one directory would mix their reports
    refuse_to_replace([out / name for name in ("summary.json", "report.txt", "hyps.jsonl")], overwrite=c.overwrite,
                      same_job=_evaluation_of(out / "summary.json", c.model, c.data.manifest))
    with torch.inference_mode():
        summary = evaluate(model, tokenizer, utts, out_dir=out, device=device,
                           max_batch_duration_s=c.data.max_batch_duration_s, num_workers=c.data.num_workers,
                           decoder=decoder)
    # decoder settings as given (lm_weight=1 stays 1): asr eval-table turns them back into overrides
    summary.update(model=str(Path(c.model).resolve()), manifest=str(Path(c.data.manifest).resolve()),
                   decoder=c.decoder.name, decoder_settings=d["decoder"], threads=threads, device=str(device),
                   runtime=c.runtime)
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2) + "\n")
    release_lock(out)  # a multirun goes on to other directories
    w = summary["words"]
    print(f"WER {100 * summary['wer']:.2f} %  CER {100 * summary['cer']:.2f} %  "
          f"({w['substitutions']} sub, {w['deletions']} del, {w['insertions']} ins / {w['ref_len']} words, "
          f"{summary['utterances']} utterances)  RTF {summary['real_time_factor']:.4f} "
          f"(search {summary['search_real_time_factor']:.4f})  report: {out}/report.txt")
    if summary["failed"]:
        print(f"warning: {len(summary['failed'])} utterance(s) could not be read, scored as deletions "
              f"(see {out}/report.txt)", file=sys.stderr)
    return summary["wer"]


def build(cfg: DecoderConfig, vocab):
    """The configured decoder; a missing or malformed lexicon or LM file becomes a ConfigError naming it."""
    from asr.decoding.ctc import build_decoder

    try:
        return build_decoder(cfg.name, vocab, **cfg.options())
    except (ValueError, RuntimeError) as err:  # RuntimeError: a decoder this machine cannot run
        raise ConfigError(f"decoder={cfg.name}: {err}") from None


def _evaluation_of(summary: Path, model: str, manifest: str) -> bool:
    """Whether ``summary`` is asr evaluate's summary of ``model`` on ``manifest`` (a rerun may replace it)."""
    try:
        d = json.loads(summary.read_text(encoding="utf-8"))
        return (d["model"], d["manifest"]) == (str(Path(model).resolve()), str(Path(manifest).resolve()))
    except (OSError, ValueError, TypeError, KeyError):
        return False
