"""The limits of ``asr serve`` (see :mod:`asr.inference.serve`): a plain dataclass, light to import for the CLI."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Limits:
    """What one client may ask of the server; each is checked on every request."""

    max_streams: int = 16  # concurrent WebSocket streams; more are answered 503
    max_message_bytes: int = 64000  # one binary message: 2 s of 16 kHz 16-bit audio
    max_stream_s: float = 600.0  # audio per stream
    idle_timeout_s: float = 10.0  # a stream with no message for this long is closed
    max_uploads: int = 2  # concurrent POST /transcribe requests (each holds its body in memory)
    max_upload_bytes: int = 50_000_000  # one uploaded file
    max_batch: int = 16  # stream jobs the model thread takes at once (their chunks share forward passes)
    shutdown_timeout_s: float = 10.0  # SIGTERM: open streams get their final result, then this to close

    def __post_init__(self):
        bad = [k for k, v in asdict(self).items() if not v > 0]
        if bad:
            raise ValueError(", ".join(f"limits.{k} must be > 0, got {getattr(self, k)!r}" for k in bad))
