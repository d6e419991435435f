"""Speaker-disjoint splits of a manifest: hold out whole speakers, so dev WER measures unseen voices.

Splitting utterances at random lets the same speaker appear on both sides, and dev WER then
rewards remembering voices. :func:`split_by_speaker` draws whole speakers (seeded, so the same
call always gives the same split) until the held-out side holds ``dev_fraction`` of the
utterances, and writes both manifests with their lines unchanged.

Example:
    >>> report = split_by_speaker("all.jsonl", "train.jsonl", "dev.jsonl", dev_fraction=0.1)  # doctest: +SKIP
    >>> report["dev_speakers"][:3]  # doctest: +SKIP
    ['0012', '0071', '1033']
"""

from __future__ import annotations

import json
import os
import random
from collections.abc import Sequence
from pathlib import Path

from asr.fileio import atomic_open


class SplitError(ValueError):
    """A manifest cannot be split by speaker; the message names the file and line."""


def read_speakers(manifest: str | os.PathLike) -> list[tuple[str, str]]:
    """``(speaker, line)`` for every non-empty line; a line without a ``speaker`` field is an error naming it."""
    out = []
    with open(manifest, encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                speaker = json.loads(line).get("speaker")
            except (json.JSONDecodeError, AttributeError):
                raise SplitError(f"{manifest}:{lineno}: not a JSON object") from None
            if not isinstance(speaker, str) or not speaker:
                raise SplitError(f"{manifest}:{lineno}: no 'speaker' field; a speaker-disjoint split needs one "
                                 "on every line (the Kaldi and AN4 importers write it)")
            out.append((speaker, line if line.endswith("\n") else line + "\n"))
    if not out:
        raise SplitError(f"{manifest}: no utterances")
    return out


def choose_speakers(counts: dict[str, int], dev_fraction: float, seed: int) -> list[str]:
    """Seeded choice of held-out speakers whose utterances add up to about ``dev_fraction`` of all.

    Speakers are drawn in a seeded random order; each is taken if it brings the held-out share
    closer to the target. At least one speaker is held out and at least one kept.
    """
    if not 0 < dev_fraction < 1:
        raise SplitError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    if len(counts) < 2:
        raise SplitError(f"a speaker-disjoint split needs at least 2 speakers, got {len(counts)}")
    order = sorted(counts)
    random.Random(seed).shuffle(order)
    target = dev_fraction * sum(counts.values())
    chosen, total = [], 0
    for spk in order:
        if len(chosen) == len(counts) - 1:
            break
        if not chosen or abs(total + counts[spk] - target) < abs(total - target):
            chosen.append(spk)
            total += counts[spk]
    return sorted(chosen)


def split_by_speaker(manifest: str | os.PathLike, train_out: str | os.PathLike, dev_out: str | os.PathLike, *,
                     dev_fraction: float = 0.1, seed: int = 0, hold_out: Sequence[str] | None = None) -> dict:
    """Write ``train_out`` and ``dev_out`` with no speaker in both; returns what went where.

    ``hold_out`` names the held-out speakers instead of drawing them (``dev_fraction`` and ``seed``
    are then unused); a name that is not in the manifest is an error. Refuses to write over
    ``manifest`` itself (the input would be lost).
    """
    src = Path(manifest).resolve()
    for out in (train_out, dev_out):
        if Path(out).resolve() == src:
            raise SplitError(f"{out}: is the input manifest; write the split elsewhere")
    lines = read_speakers(manifest)
    counts: dict[str, int] = {}
    for spk, _ in lines:
        counts[spk] = counts.get(spk, 0) + 1
    if hold_out is None:
        held = set(choose_speakers(counts, dev_fraction, seed))
    else:
        held = set(hold_out)
        unknown = sorted(held - set(counts))
        if unknown:
            raise SplitError(f"{manifest}: no utterances of speaker(s) {', '.join(unknown)}")
    for path, keep in ((train_out, False), (dev_out, True)):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(path) as f:
            f.writelines(line for spk, line in lines if (spk in held) == keep)
    dev_utts = sum(counts[s] for s in held)
    return {"train": str(train_out), "dev": str(dev_out), "train_utterances": len(lines) - dev_utts,
            "dev_utterances": dev_utts, "train_speakers": len(counts) - len(held), "dev_speakers": sorted(held),
            "seed": seed}
