"""speechocean762 (OpenSLR 101): real speakers for AN4-domain models, and held-out readers of AN4's digits.

speechocean762's train directory is a Kaldi data directory (:mod:`asr.corpora.kaldi`): 2,500 read
sentences and digit strings ("ZERO THREE FIVE ONE") by 125 Mandarin-L1 speakers, children and adults.
Only 26 of them read digit strings, so :func:`prepare_speechocean762` holds exactly those speakers out:
``train.jsonl`` has the other 99 (voices an AN4-domain model can learn from) and ``digits.jsonl`` the
digit strings of the 26 (AN4's own kind of text read by people a model trained on ``train.jsonl``
never heard; ``benchmarks/generalization.py`` scores them).

    >>> report = prepare_speechocean762("../shared/data/speechocean762", "exp/so762")  # doctest: +SKIP
    >>> report["train"]["speakers"], report["digits"]["utterances"]  # doctest: +SKIP
    (99, 77)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from asr.corpora.kaldi import KaldiError, prepare_kaldi
from asr.data.split import split_by_speaker
from asr.fileio import atomic_open

DIGITS = frozenset({"zero", "oh", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"})


def prepare_speechocean762(src: str | os.PathLike, out_dir: str | os.PathLike, *, apostrophes: bool = True) -> dict:
    """Write ``all``, ``train`` (no digit reader), ``held_out`` and ``digits`` manifests into ``out_dir``.

    Args:
        src: the speechocean762 directory that holds ``train/`` (``wav.scp`` paths are relative to it).
        out_dir: where the four manifests go (this function's own files, rewritten atomically).
        apostrophes: keep ``'`` ("it's"); False writes "its", for a model whose alphabet has none (AN4's).

    Returns:
        ``{name: {"manifest", "utterances", "speakers"}}`` for the four manifests.
    """
    src, out = Path(src), Path(out_dir)
    prepare_kaldi(src / "train", out / "all.jsonl", root=src)
    rows = [json.loads(x) for x in (out / "all.jsonl").read_text().splitlines() if x.strip()]
    if not apostrophes:
        rows = [{**r, "text": " ".join(r["text"].replace("'", "").split())} for r in rows]
        _write(out / "all.jsonl", rows)
    readers = sorted({r["speaker"] for r in rows if set(r["text"].split()) <= DIGITS})
    if not readers:
        raise KaldiError(f"{src}: no speaker reads a digit string, so there is no held-out set to make")
    split = split_by_speaker(out / "all.jsonl", out / "train.jsonl", out / "held_out.jsonl", hold_out=readers)
    digits = [r for r in rows if r["speaker"] in split["dev_speakers"] and set(r["text"].split()) <= DIGITS]
    _write(out / "digits.jsonl", digits)
    counts = {"all": (len(rows), len({r["speaker"] for r in rows})),
              "train": (split["train_utterances"], split["train_speakers"]),
              "held_out": (split["dev_utterances"], len(split["dev_speakers"])),
              "digits": (len(digits), len({r["speaker"] for r in digits}))}
    return {name: {"manifest": str(out / f"{name}.jsonl"), "utterances": n, "speakers": k}
            for name, (n, k) in counts.items()}


def _write(path: Path, rows: list[dict]) -> None:
    with atomic_open(path) as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
