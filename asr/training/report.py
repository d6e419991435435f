"""What a run shows while it trains: the per-epoch log file, TensorBoard, and a progress bar on a terminal."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from asr.fileio import atomic_open

log = logging.getLogger(__name__)


def read_history(path: Path, epochs_done: int) -> list[dict]:
    """The ``train_log.jsonl`` rows of the first ``epochs_done`` epochs (a resumed run drops any later ones)."""
    if not path.is_file():
        return []
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r["epoch"] <= epochs_done]


def write_history(path: Path, history: list[dict]) -> None:
    """Rewrite ``train_log.jsonl`` atomically, one JSON row per epoch."""
    with atomic_open(path) as f:
        for h in history:
            f.write(json.dumps(h) + "\n")


def tensorboard(run_dir: Path):
    """A ``SummaryWriter`` on ``run_dir/tensorboard``, or None when tensorboard is not installed."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is a dependency, but a trimmed install should still train
        log.warning("tensorboard is not installed; no TensorBoard logs (pip install tensorboard)")
        return None
    return SummaryWriter(str(run_dir / "tensorboard"))


def progress_bar(total: int, epoch: int, max_epochs: int):
    """A tqdm bar over an epoch's ``total`` batches, or None when stderr is not a terminal."""
    if not sys.stderr.isatty():  # logs get one line per epoch instead of a redrawn bar
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"epoch {epoch + 1}/{max_epochs}", unit="batch", leave=False, dynamic_ncols=True)
