"""``asr average``: a model file from the mean weights of a run's last epochs (see AverageConfig)."""

from __future__ import annotations

from pathlib import Path

from asr.cli.common import Flags, tool
from asr.config.commands import AverageConfig

FLAGS = Flags(positional=("run",), options={"--last": "last", "--output": "output"})  # asr-average RUN --last N


def _average(c: AverageConfig) -> int:
    from asr.models.checkpoint import average_checkpoints, last_epoch_checkpoints

    run = Path(c.run)
    paths = last_epoch_checkpoints(run, c.last)
    out = average_checkpoints(paths, run / "model.pt", c.output or run / "model_avg.pt")
    print(f"averaged {', '.join(p.name for p in paths)} -> {out}")
    return 0


def average_main(argv: list[str] | None = None) -> int:
    """``asr average run=<run dir> [last=5] [output=FILE]``; returns the exit status."""
    return tool("average", _average, argv, FLAGS)
