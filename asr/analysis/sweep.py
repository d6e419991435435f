"""Collect a model-size sweep into one table and a WER-against-size figure.

A sweep is any ``asr-train -m`` multirun directory: one folder per job, each with
``config.resolved.yaml`` (the job's settings) and, once training has finished,
``train_summary.json`` (parameters, minutes, best dev WER). A job stopped before its last
epoch is listed as unfinished with what its ``train_log.jsonl`` reached (epochs, best dev WER
so far), never ranked with the finished ones. A test WER is read from an
``asr-evaluate`` ``summary.json`` in the job folder or one folder below it (e.g.
``hydra.run.dir=<job>/eval_test``); with several, the one whose manifest path mentions
``test`` wins.

Usage::

    asr-train -m data=an4 model.hidden_size=128,256,384 model.num_layers=2,3,4,5 hydra.sweep.dir=exp/an4/size
    asr sweep-table dir=exp/an4/size

writes ``sweep_table.md``, ``sweep_table.csv`` and ``wer_vs_params.png`` in the sweep
folder (or ``--output``). Jobs still running or failed (no ``train_summary.json``) are
listed as unfinished, never silently dropped.
"""

from __future__ import annotations

import os
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import yaml

from asr.analysis import tables
from asr.analysis.runs import finite_or_none, natural_key, read_json_object, read_train_log
from asr.fileio import atomic_write_text
from asr.inference.metrics import format_pct

NA = "–"  # a cell with nothing to show: not finished, not evaluated, no dev set


@dataclass(frozen=True)
class SweepJob:
    """One job of a sweep. WERs are fractions; ``None``: not available (unfinished, no dev/test set)."""

    job: str  # the job folder, relative to the sweep folder
    rnn_type: str
    bidirectional: bool
    num_layers: int
    hidden_size: int
    parameters: int | None = None
    train_minutes: float | None = None
    epochs: int | None = None
    best_epoch: int | None = None
    dev_wer: float | None = None
    test_wer: float | None = None
    planned_epochs: int | None = None  # trainer.max_epochs of the job's config

    @property
    def finished(self) -> bool:
        return self.parameters is not None

    @property
    def label(self) -> str:
        return f"{self.num_layers}×{self.hidden_size}"


def _test_wer(job_dir: Path) -> float | None:
    """WER of an evaluation ``summary.json`` in the job folder or one below; ``test`` manifests first."""
    found = [p for p in [job_dir / "summary.json", *sorted(job_dir.glob("*/summary.json"))] if p.is_file()]
    summaries = [(p, s) for p, s in zip(found, map(read_json_object, found)) if "wer" in s]
    if not summaries:
        return None
    # file names only: a folder above (a pytest tmp dir, say) may say "test" for any manifest
    _, best = min(summaries, key=lambda ps: ("test" not in Path(str(ps[1].get("manifest", ""))).name.lower(),
                                            "test" not in ps[0].parent.name.lower()))
    return finite_or_none(best["wer"])


def read_job(job_dir: Path, root: Path) -> SweepJob:
    """One job from its ``config.resolved.yaml`` and ``train_summary.json`` (or, unfinished, ``train_log.jsonl``)."""
    cfg_path = job_dir / "config.resolved.yaml"
    try:
        cfg = yaml.safe_load(cfg_path.read_text()) or {}
        model = cfg.get("model") or {}
        size = {k: model[k] for k in ("rnn_type", "bidirectional", "num_layers", "hidden_size")}
        planned = (cfg.get("trainer") or {}).get("max_epochs")
    except (OSError, yaml.YAMLError, AttributeError, KeyError) as err:
        raise ValueError(f"{cfg_path}: not a resolved training config with model.rnn_type, model.bidirectional, "
                         f"model.num_layers and model.hidden_size ({type(err).__name__}: {err})") from None
    job = SweepJob(job=job_dir.relative_to(root).as_posix() or ".", **size,
                   planned_epochs=planned if isinstance(planned, int) else None)
    summary_path = job_dir / "train_summary.json"
    if not summary_path.is_file():
        return _progress(job, job_dir)
    s = read_json_object(summary_path)
    try:
        done = {"parameters": int(s["parameters"]), "train_minutes": finite_or_none(s.get("train_minutes")),
                "epochs": s.get("epochs"), "best_epoch": s.get("best_epoch"),
                "dev_wer": finite_or_none(s.get("best_dev_wer"))}
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{summary_path}: no usable parameter count ({type(err).__name__}: {err})") from None
    return SweepJob(**{**asdict(job), **done, "test_wer": _test_wer(job_dir)})


def _progress(job: SweepJob, job_dir: Path) -> SweepJob:
    """An unfinished job with the epochs its ``train_log.jsonl`` records and the best dev WER among them."""
    log_path = job_dir / "train_log.jsonl"
    if not log_path.is_file():
        return job
    entries = read_train_log(log_path)  # ValueError naming the file and line of a malformed entry
    epochs = max(int(e["epoch"]) for e in entries)
    scored = [(w, int(e["epoch"])) for e in entries if (w := finite_or_none(e.get("dev_wer"))) is not None]
    dev, best_epoch = min(scored) if scored else (None, None)
    return SweepJob(**{**asdict(job), "epochs": epochs, "best_epoch": best_epoch, "dev_wer": dev,
                       "test_wer": _test_wer(job_dir)})


def collect_sweep(root: str | os.PathLike) -> list[SweepJob]:
    """Every job under ``root`` (any folder holding ``config.resolved.yaml``).

    Returns:
        Finished jobs by parameter count (smallest first), then unfinished ones by name.

    Raises:
        FileNotFoundError: ``root`` is not a folder, or holds no training job.
        ValueError: a job's files are malformed (the message names the file).
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder (expected an asr-train -m sweep directory)")
    job_dirs = sorted({p.parent for p in root.rglob("config.resolved.yaml")}, key=lambda p: natural_key(str(p)))
    if not job_dirs:
        raise FileNotFoundError(f"{root}: no training jobs found (no config.resolved.yaml in any folder below)")
    jobs = [read_job(d, root) for d in job_dirs]
    return sorted([j for j in jobs if j.finished], key=lambda j: (j.parameters, natural_key(j.job))) + \
        [j for j in jobs if not j.finished]


def markdown_table(jobs: list[SweepJob]) -> str:
    """A markdown table of the sweep; the best dev WER is bold, and the test column appears when any job has one."""
    with_test = any(j.test_wer is not None for j in jobs)
    best = min((j.dev_wer for j in jobs if j.finished and j.dev_wer is not None), default=None)
    head = ["job", "rnn", "layers", "hidden", "parameters", "train min", "epochs (best)", "dev WER"]
    head += ["test WER"] if with_test else []
    rows = []
    for j in jobs:
        size = [j.job, ("B" if j.bidirectional else "") + j.rnn_type.upper(), str(j.num_layers), str(j.hidden_size)]
        cells = _finished_cells(j, best) if j.finished else _unfinished_cells(j)
        rows.append(size + cells + ([format_pct(j.test_wer, NA)] if with_test else []))
    return tables.markdown_table(head, rows, left=2)


def _finished_cells(j: SweepJob, best_dev_wer: float | None) -> list[str]:
    """Parameters, minutes, epochs (best) and dev WER of a finished job; the sweep's best dev WER in bold."""
    dev = format_pct(j.dev_wer, NA)
    bold = j.dev_wer is not None and j.dev_wer == best_dev_wer
    return [f"{j.parameters / 1e6:.2f} M", NA if j.train_minutes is None else f"{j.train_minutes:.1f}",
            f"{j.epochs} ({j.best_epoch})", f"**{dev}**" if bold else dev]


def _unfinished_cells(j: SweepJob) -> list[str]:
    """What an unfinished job reached before it stopped; never bold, whatever its dev WER."""
    reached = "not finished" if j.epochs is None else \
        f"stopped at {j.epochs}" + (f" of {j.planned_epochs}" if j.planned_epochs else "") + \
        (f" ({j.best_epoch})" if j.best_epoch is not None else "")
    return [NA, NA, reached, format_pct(j.dev_wer, NA)]


def csv_table(jobs: list[SweepJob]) -> str:
    """The sweep as CSV with raw values (WER as a fraction, minutes, parameter count); empty: not available."""
    names = [f.name for f in fields(SweepJob)]
    return tables.csv_text(names, [["" if getattr(j, n) is None else getattr(j, n) for n in names] for j in jobs])


def _line_groups(jobs: list[SweepJob]) -> list[str]:
    """Which points one line joins: same cell and depth across widths, or, for a cell swept at one
    width only, that width across depths (so a GRU run at 256 units and 2-5 layers is one line)."""
    kind = lambda j: ("B" if j.bidirectional else "") + j.rnn_type.upper()  # noqa: E731
    several_kinds = len({kind(j) for j in jobs}) > 1
    widths = {k: {j.hidden_size for j in jobs if kind(j) == k} for k in {kind(j) for j in jobs}}
    return [(f"{kind(j)} " if several_kinds else "")
            + (f"{j.num_layers} layers" if len(widths[kind(j)]) > 1 else f"{j.hidden_size} units, by depth")
            for j in jobs]


def write_sweep(jobs: list[SweepJob], out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write ``sweep_table.md``, ``sweep_table.csv`` and ``wer_vs_params.png`` for collected jobs.

    The figure is left out when no job has a dev WER yet. Returns the written paths by kind.
    """
    from asr.analysis.plots import save_figure, wer_vs_params_figure  # matplotlib only when a figure is drawn

    out = Path(out_dir)
    written = {"markdown": out / "sweep_table.md", "csv": out / "sweep_table.csv"}
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(written["markdown"], markdown_table(jobs))
    atomic_write_text(written["csv"], csv_table(jobs))
    scored = [j for j in jobs if j.finished and j.dev_wer is not None]
    if scored:
        groups = _line_groups(scored)
        fig = wer_vs_params_figure([j.parameters for j in scored], [j.dev_wer for j in scored],
                                   [j.label for j in scored], groups, [j.test_wer for j in scored])
        written["figure"] = save_figure(fig, out / "wer_vs_params.png")
    return written


if __name__ == "__main__":  # python -m asr.analysis.sweep DIR: the same as asr sweep-table
    from asr.cli.analysis import sweep_table_main

    sys.exit(sweep_table_main())
