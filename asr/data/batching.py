"""Duration-bucketed batch plans, importable without torch.

:func:`make_batches` is pure Python: training's sampler (:mod:`asr.data.dataset`), evaluation and
transcription all plan with it, and ``asr transcribe runtime=onnx`` does so without loading torch.
"""

from __future__ import annotations

import random
from collections.abc import Sequence


def make_batches(durations: Sequence[float], max_batch_duration_s: float, *, seed: int = 0, epoch: int = 0,
                 shuffle: bool = True, sort_jitter: float = 0.0) -> list[list[int]]:
    """Group utterance indices into batches of similar duration.

    Utterances are sorted by (optionally jittered) duration and cut into consecutive
    batches whose padded duration, ``len(batch) * max(duration)``, stays within
    ``max_batch_duration_s``; the batch order is then shuffled. The plan depends only on
    ``(seed, epoch)``, so every process computes the same one.
    """
    rng = random.Random(seed * 100_003 + epoch)
    keys = [d * (1 + sort_jitter * (2 * rng.random() - 1)) if sort_jitter else d for d in durations]
    order = sorted(range(len(durations)), key=lambda i: (keys[i], i))
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0.0
    for i in order:
        d = durations[i]
        new_max = max(cur_max, d)
        if cur and new_max * (len(cur) + 1) > max_batch_duration_s:
            batches.append(cur)
            cur, new_max = [], d
        cur.append(i)
        cur_max = new_max
    if cur:
        batches.append(cur)
    if shuffle:
        rng.shuffle(batches)
    return batches
