"""Collect an ``asr-evaluate -m`` multirun (e.g. a decoder weight grid) into one table and pick the best.

Each job folder holds the ``summary.json`` that ``asr-evaluate`` writes (WER, CER, speed and
the decoder settings it used). The columns are the settings that differ between jobs, so a
grid over ``decoder.lm_weight`` and ``decoder.word_score`` reads as exactly that.

Usage::

    asr-evaluate -m model=exp/train/model.pt data.manifest=data/dev.jsonl decoder=beam_lm \\
        decoder.lexicon=lang/lexicon.txt decoder.lm=lang/lm_3gram.bin \\
        decoder.lm_weight=0,0.5,1,2 decoder.word_score=-1,0,1 hydra.sweep.dir=exp/tune_lm
    asr eval-table dir=exp/tune_lm

writes ``eval_table.md``, ``eval_table.csv`` and ``best.json`` (the job with the lowest WER,
ties broken by CER, and the overrides that reproduce it) into the multirun folder or ``--output``.
"""

from __future__ import annotations

import json
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from asr.analysis import tables
from asr.analysis.runs import natural_key, read_json_object
from asr.fileio import atomic_write_text


@dataclass(frozen=True)
class EvalJob:
    """One evaluation: its folder, settings (``decoder.<key>`` → value) and scores (fractions, seconds)."""

    job: str
    settings: dict = field(default_factory=dict)
    wer: float = math.nan
    cer: float = math.nan
    real_time_factor: float | None = None
    search_real_time_factor: float | None = None
    utterances: int = 0
    manifest: str = ""


def read_eval_job(summary_path: Path, root: Path) -> EvalJob:
    """One job from an ``asr-evaluate`` ``summary.json``; raises ``ValueError`` naming the file."""
    s = read_json_object(summary_path)
    try:
        settings = {f"decoder.{k}": v for k, v in (s.get("decoder_settings") or {"name": s["decoder"]}).items()}
        settings["model"] = s.get("model", "")
        return EvalJob(job=summary_path.parent.relative_to(root).as_posix() or ".", settings=settings,
                       wer=float(s["wer"]), cer=float(s["cer"]), real_time_factor=s.get("real_time_factor"),
                       search_real_time_factor=s.get("search_real_time_factor"), utterances=int(s["utterances"]),
                       manifest=str(s.get("manifest", "")))
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{summary_path}: not an asr-evaluate summary ({type(err).__name__}: {err})") from None


def collect_evals(root: str | os.PathLike) -> list[EvalJob]:
    """Every evaluation below ``root`` (a folder holding ``summary.json``), in job order.

    Raises:
        FileNotFoundError: ``root`` is not a folder or holds no evaluation.
        ValueError: a summary is malformed (the message names it).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected an asr-evaluate -m multirun directory)")
    paths = sorted(root.rglob("summary.json"), key=lambda p: natural_key(str(p.parent)))
    if not paths:
        raise FileNotFoundError(f"{root}: no evaluations found (no summary.json in any folder below)")
    return [read_eval_job(p, root) for p in paths]


def varying_keys(jobs: list[EvalJob]) -> list[str]:
    """Settings whose value is not the same in every job, in a stable order."""
    keys = sorted({k for j in jobs for k in j.settings})
    return [k for k in keys if len({json.dumps(j.settings.get(k)) for j in jobs}) > 1]


def best_job(jobs: list[EvalJob]) -> EvalJob:
    """Lowest WER, then lowest CER, then the first job."""
    return min(jobs, key=lambda j: (j.wer, j.cer))


def _value(v) -> str:
    return "null" if v is None else str(v).lower() if isinstance(v, bool) else str(v)


def markdown_table(jobs: list[EvalJob]) -> str:
    """The evaluations as a markdown table; the best row's WER is bold."""
    keys = varying_keys(jobs)
    best = best_job(jobs)
    rows = []
    for j in jobs:
        wer = f"{100 * j.wer:.2f} %"  # a NaN score reads "nan %": a broken evaluation, not a missing one
        rtf = "–" if j.real_time_factor is None else f"{j.real_time_factor:.4f}"
        srtf = "–" if j.search_real_time_factor is None else f"{j.search_real_time_factor:.4f}"
        rows.append([j.job, *(_value(j.settings.get(k)) for k in keys),
                     f"**{wer}**" if j is best else wer, f"{100 * j.cer:.2f} %", rtf, srtf])
    return tables.markdown_table(["job", *keys, "WER", "CER", "RTF", "search RTF"], rows, left=1 + len(keys))


def csv_table(jobs: list[EvalJob]) -> str:
    """Raw values: the varying settings, WER/CER as fractions, real-time factors, utterances."""
    keys = varying_keys(jobs)
    head = ["job", *keys, "wer", "cer", "real_time_factor", "search_real_time_factor", "utterances"]
    return tables.csv_text(head, [[j.job, *(_value(j.settings.get(k)) for k in keys), j.wer, j.cer,
                                   "" if j.real_time_factor is None else j.real_time_factor,
                                   "" if j.search_real_time_factor is None else j.search_real_time_factor,
                                   j.utterances] for j in jobs])


def write_tables(jobs: list[EvalJob], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``eval_table.md``, ``eval_table.csv`` and ``best.json``; return their paths by kind."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    best = best_job(jobs)
    keys = varying_keys(jobs)
    written = {"markdown": out / "eval_table.md", "csv": out / "eval_table.csv", "best": out / "best.json"}
    atomic_write_text(written["markdown"], markdown_table(jobs))
    atomic_write_text(written["csv"], csv_table(jobs))
    best_info = {"job": best.job, "wer": best.wer, "cer": best.cer, "manifest": best.manifest,
                 "overrides": [f"{k}={_value(best.settings.get(k))}" for k in keys if k != "model"],
                 "settings": best.settings}
    atomic_write_text(written["best"], json.dumps(best_info, indent=2) + "\n")
    return written


if __name__ == "__main__":  # python -m asr.analysis.eval_table DIR: the same as asr eval-table
    from asr.cli.analysis import eval_table_main

    sys.exit(eval_table_main())
