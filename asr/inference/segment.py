"""Long audio: fixed windows with overlap, and stitching their words back together.

A recording of any length is cut into windows of ``window_s`` seconds that overlap by
``overlap_s``; each window is read on its own (``load_audio(..., offset_s, duration_s)``),
so memory depends on the window, never on the file. A bidirectional model needs context
on both sides of a word, so each window keeps only the words whose midpoint lies in its
*central* region: the overlap between two windows is split in the middle, and each side
of the cut keeps ``overlap_s / 2`` of context that it recognises but does not keep::

    window 0  [==========keep==========|···)
    window 1                       (···|=========keep=========|···)
    window 2                                              (···|====keep====]

Files no longer than ``window_s`` are one window, read whole, so a short file is
transcribed exactly as :func:`asr.inference.evaluate.recognize` would.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from asr.data.manifest import MAX_DURATION_S
from asr.decoding.alignment import Word


@dataclass(frozen=True)
class WindowConfig:
    """Window length and overlap for long files (seconds).

    30 s windows keep a batch of windows small (4 per 120 s batch) while giving the
    LSTM far more context than the few seconds a word needs; 4 s of overlap leaves 2 s of
    context on each side of every cut, longer than any spoken word.
    """

    window_s: float = 30.0
    overlap_s: float = 4.0

    def __post_init__(self):
        if not (self.window_s > 0 and 0 <= self.overlap_s < self.window_s):
            raise ValueError(f"need window_s > 0 and 0 <= overlap_s < window_s, got window_s={self.window_s}, "
                             f"overlap_s={self.overlap_s}")


@dataclass(frozen=True)
class Window:
    """One piece of a file to recognise.

    Attributes:
        offset_s: where the window starts in the file.
        duration_s: how much to read; None reads to the end of the file.
        nominal_s: the window's expected length (for batching by duration).
        keep_from_s, keep_to_s: words whose midpoint lies in ``[keep_from_s, keep_to_s)`` belong to this window.
        index, count: position of the window in its file.
    """

    offset_s: float
    duration_s: float | None
    nominal_s: float
    keep_from_s: float = -math.inf
    keep_to_s: float = math.inf
    index: int = 0
    count: int = 1


def plan_windows(duration_s: float, config: WindowConfig, *, offset_s: float = 0.0, to_end: bool = True,
                 frame_shift_s: float | None = None) -> list[Window]:
    """Windows covering ``[offset_s, offset_s + duration_s)``.

    Args:
        duration_s: length of the audio to cover (header or manifest duration).
        config: window length and overlap.
        offset_s: start of the audio in the file (manifest segments).
        to_end: the audio runs to the end of the file, so the last window reads to the
            end (a header or manifest duration may be rounded).
        frame_shift_s: the model's frame shift; the step between windows is rounded to a
            multiple of it, so every window's frames fall on the whole file's frame grid and
            stitched timestamps are the ones a single pass would give.

    Example:
        >>> [(w.offset_s, w.duration_s, w.keep_from_s, w.keep_to_s) for w in plan_windows(50, WindowConfig(30, 4))]
        [(0.0, 30.0, -inf, 28.0), (26.0, None, 28.0, inf)]
    """
    if not (math.isfinite(duration_s) and math.isfinite(offset_s) and 0 < duration_s <= MAX_DURATION_S):
        # the window count grows with the duration: a corrupt number must not become an endless plan
        raise ValueError(f"duration {duration_s!r} s is not a positive number up to {MAX_DURATION_S:g} s")
    if duration_s <= config.window_s:
        return [Window(offset_s, None if to_end else duration_s, duration_s)]
    hop = config.window_s - config.overlap_s
    if frame_shift_s:
        hop = max(1, round(hop / frame_shift_s)) * frame_shift_s
    # window k starts at k * hop; the last one must reach the end
    count = math.ceil((duration_s - config.window_s) / hop - 1e-9) + 1
    end_s = offset_s + duration_s
    windows = []
    for k in range(count):
        start = offset_s + k * hop
        last = k == count - 1
        length = min(config.window_s, end_s - start)
        windows.append(Window(
            offset_s=start,
            duration_s=None if last and to_end else length,
            nominal_s=length,
            keep_from_s=-math.inf if k == 0 else start + config.overlap_s / 2,
            keep_to_s=math.inf if last else offset_s + (k + 1) * hop + config.overlap_s / 2,  # = next keep_from_s
            index=k, count=count))
    return windows


def keep_central(words: Iterable[Word], window: Window) -> list[Word]:
    """The words that belong to ``window`` (midpoint inside its central region)."""
    return [w for w in words if window.keep_from_s <= w.mid_s < window.keep_to_s]
