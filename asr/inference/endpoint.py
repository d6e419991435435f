"""An energy endpointer: where a pause after speech ends a segment of a live stream.

Audio is cut into 10 ms frames and each frame's level (dB relative to full scale) is compared with a noise
floor that the endpointer tracks itself: it starts ``margin_db`` under ``min_speech_db``, drops at once to any
quieter frame and rises slowly (``floor_rise_db_per_s``), so it follows the background of the room or line
rather than a fixed threshold (a loud background is taken for speech until the floor has risen to it).
A frame is speech when it is ``margin_db`` above the floor and above ``min_speech_db``. After speech,
``silence_s`` of non-speech frames end the segment; the cut falls at the end of that pause, so no audio is
lost between segments. A segment also ends after ``max_segment_s`` whatever the level, which bounds the audio
held and the latency of a talker who never pauses.

It serves full-context models in ``asr serve``: each segment is recognised whole once it ends (streaming
models have the model-blank endpointer of :class:`asr.inference.streaming.StreamingRecognizer` instead).

Example:
    >>> import numpy as np
    >>> ep = EnergyEndpointer(16000, silence_s=0.3)
    >>> tone = 0.3 * np.sin(np.arange(8000) / 5.0).astype(np.float32)
    >>> ep.push(np.concatenate([tone, np.zeros(8000, np.float32)]))  # 0.5 s of speech, 0.5 s quiet
    [12800]
"""

from __future__ import annotations

import numpy as np


class EnergyEndpointer:
    """Segment ends in a stream of samples (see the module docstring); positions are stream sample indices."""

    def __init__(self, sample_rate_hz: int, *, silence_s: float, max_segment_s: float = 30.0,
                 margin_db: float = 12.0, min_speech_db: float = -50.0, floor_rise_db_per_s: float = 6.0,
                 frame_s: float = 0.01):
        if silence_s <= 0 or max_segment_s <= silence_s:
            raise ValueError(f"silence_s must be > 0 and max_segment_s above it, got {silence_s}, {max_segment_s}")
        self.frame = max(1, int(round(frame_s * sample_rate_hz)))
        self.silence_frames = max(1, int(round(silence_s / frame_s)))
        self.max_frames = int(round(max_segment_s / frame_s))
        self.margin_db, self.min_speech_db = margin_db, min_speech_db
        self.rise_db = floor_rise_db_per_s * frame_s
        self.floor_db = min_speech_db - margin_db
        self.rest = np.zeros(0, dtype=np.float32)  # samples of a frame not yet whole
        self.position = 0  # stream samples in whole frames so far
        self.segment_frames = 0
        self.heard_speech = False
        self.quiet_run = 0

    def push(self, samples: np.ndarray) -> list[int]:
        """Add samples; the stream positions (sample indices) where segments ended within them."""
        x = np.concatenate([self.rest, np.asarray(samples, dtype=np.float32).ravel()])
        whole = len(x) // self.frame * self.frame
        self.rest = x[whole:]
        if not whole:
            return []
        frames = x[:whole].reshape(-1, self.frame).astype(np.float64)
        levels = 10.0 * np.log10(np.mean(frames ** 2, axis=1) + 1e-12)
        cuts = []
        for level in levels:
            self.position += self.frame
            self.segment_frames += 1
            self.floor_db = min(level, self.floor_db + self.rise_db)
            speech = level > max(self.floor_db + self.margin_db, self.min_speech_db)
            if speech:
                self.heard_speech, self.quiet_run = True, 0
            else:
                self.quiet_run += 1
            if (self.heard_speech and self.quiet_run >= self.silence_frames) or self.segment_frames >= self.max_frames:
                cuts.append(self.position)
                self.segment_frames, self.heard_speech, self.quiet_run = 0, False, 0
        return cuts
