"""Reading what runs leave behind: training logs, JSON summaries, and job folders in order.

``asr-train`` writes ``train_log.jsonl`` (one JSON object per epoch) and ``train_summary.json``;
``asr-evaluate`` writes ``summary.json``. The sweep and evaluation tables and the training
curves read them through these functions, so a malformed file gets the same message,
naming the file (and line), wherever it is read. Nothing here needs matplotlib.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path


def read_train_log(path: str | os.PathLike) -> list[dict]:
    """Rows of a run's ``train_log.jsonl`` (one JSON object per epoch), in file order.

    Raises:
        FileNotFoundError: no such file (the message says what was expected there).
        ValueError: a line is not a JSON object with ``epoch``, ``train_loss`` and ``lr``; names file and line.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no training log here (asr-train writes train_log.jsonl in its run directory)")
    rows = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{n}: not valid JSON ({err.msg})") from None
        if not isinstance(row, dict) or not {"epoch", "train_loss", "lr"} <= set(row):
            raise ValueError(f"{path}:{n}: expected a JSON object with epoch, train_loss and lr")
        rows.append(row)
    if not rows:
        raise ValueError(f"{path}: the training log is empty (no epoch finished yet)")
    return rows


def read_json_object(path: Path) -> dict:
    """A JSON file holding one object (a run's summary); ``ValueError`` naming the file otherwise."""
    try:
        obj = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise ValueError(f"{path}: not readable JSON ({err})") from None
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a JSON object")
    return obj


def finite_or_none(x) -> float | None:
    """``x`` as a float when it is a finite number; ``None`` for anything else (missing, ``inf``, NaN, text)."""
    return float(x) if isinstance(x, (int, float)) and math.isfinite(x) else None


def natural_key(path: str) -> list:
    """Sort key for job folders: digit runs compare as numbers, so ``2`` comes before ``10``."""
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path)]
