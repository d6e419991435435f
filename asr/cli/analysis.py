"""Looking at models and runs: ``asr inspect``, ``asr plot``, ``asr sweep-table``, ``asr eval-table``."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from omegaconf import DictConfig

from asr.cli.common import Flags, command_flags, conf_app, store_app, tool, validated
from asr.config.commands import EvalTableConfig, InspectConfig, PlotConfig, SweepTableConfig
from asr.config.schema import ConfigError
from asr.fileio import refuse_to_replace

# asr-sweep-table DIR [--output DIR]
TABLE_FLAGS = command_flags(Flags(positional=("dir",), options={"--output": "output"}), "sweep-table", "eval-table")


@store_app("inspect", groups=())
def inspect_main(cfg: DictConfig) -> None:
    import torch

    from asr.analysis.inspection import figure_names, inspect_utterance, write_inspection
    from asr.data.audio import load_audio
    from asr.models.checkpoint import load_model
    from asr.runtime import setup_threads

    c = validated(cfg, InspectConfig)
    setup_threads(c.threads)
    model, tokenizer, _ = load_model(c.model)
    wave = torch.from_numpy(load_audio(c.audio, model.features.config.sample_rate_hz))
    insp = inspect_utterance(model, tokenizer, wave, layer=c.layer, direction=c.direction)
    out = Path(c.output)
    refuse_to_replace([out / "inspect.json", *(out / n for n in figure_names(insp.layer, insp.direction).values())],
                      overwrite=c.overwrite)
    summary = write_inspection(insp, c.output, top_k=c.top_k, name=Path(c.audio).name, dpi=c.dpi)
    print(f'recognised "{summary["text"]}"; layer {summary["layer"]} {summary["direction"]}: units '
          f'{", ".join(str(u["unit"]) for u in summary["units"])} (recomputed gates match the model to '
          f'{summary["recompute_max_abs_error"]:.1e}) -> {Path(c.output)}/ '
          f'{" ".join(summary["figures"].values())} inspect.json')


@conf_app("plot")
def plot_main(cfg: DictConfig) -> None:
    from asr.analysis.plots import write_training_curves

    c = validated(cfg, PlotConfig)
    out = Path(c.output) if c.output is not None else Path(c.run) / "plots"
    try:
        written = write_training_curves(c.run, out, dpi=c.dpi)
    except ValueError as err:  # a malformed train_log.jsonl: the message names file and line
        raise ConfigError(f"run={c.run}: {err}") from None
    print("wrote " + ", ".join(str(p) for p in written))


def _sweep_table(c: SweepTableConfig) -> int:
    from asr.analysis.sweep import collect_sweep, write_sweep

    jobs = collect_sweep(c.dir)
    written = write_sweep(jobs, c.output if c.output is not None else c.dir)
    print(written["markdown"].read_text(), end="")
    unfinished = [j.job for j in jobs if not j.finished]
    if unfinished:
        print(f"warning: {len(unfinished)} job(s) not finished (no train_summary.json): {', '.join(unfinished)}",
              file=sys.stderr)
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def sweep_table_main(argv: list[str] | None = None) -> int:
    """``asr sweep-table dir=<asr train -m sweep dir> [output=DIR]``: one table + figure of the sweep."""
    return tool("sweep-table", _sweep_table, argv, TABLE_FLAGS)


def _eval_table(c: EvalTableConfig) -> int:
    from asr.analysis.eval_table import collect_evals, write_tables

    written = write_tables(collect_evals(c.dir), c.output if c.output is not None else c.dir)
    print(written["markdown"].read_text(), end="")
    best = json.loads(written["best"].read_text())
    print(f"best: job {best['job']}  WER {100 * best['wer']:.2f} %  CER {100 * best['cer']:.2f} %  "
          f"{' '.join(best['overrides'])}")
    print("wrote " + ", ".join(str(p) for p in written.values()))
    return 0


def eval_table_main(argv: list[str] | None = None) -> int:
    """``asr eval-table dir=<asr evaluate -m multirun dir> [output=DIR]``: its table and best job."""
    return tool("eval-table", _eval_table, argv, TABLE_FLAGS)
